//! Worker pools: the per-CPU (and unbound) sets of workers shared by every
//! workqueue, and the pool-locked state that concurrency management reads.
//!
//! See `README.md` in this directory for the protocol. Every field of
//! [`PoolLocked`] is protected by the pool lock (`L:` in the crate legend);
//! the compiler enforces that by keeping them inside the pool's mutex.

use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform};
use crate::pool_workqueue::{Entry, PwqState};
use crate::system::SystemShared;
use crate::workqueue::WqId;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::BTreeMap;

pub(crate) use crate::machine::pool::{
    PoolState, WorkerId, WorkerState, WORKER_PREP, WORKER_RESCUER, WORKER_ROGUE, WORKER_UNBOUND,
};

/// A pool of workers serving one CPU and priority, or the unbound pool of a
/// priority.
pub(crate) struct Pool<P: Platform> {
    /// I: the CPU served; `None` for an unbound pool.
    pub(crate) cpu: Option<usize>,
    /// I: high-priority pool (kernel `-H` workers).
    pub(crate) highpri: bool,
    /// I: the system this pool belongs to.
    pub(crate) shared: Arc<SystemShared<P>>,
    /// The pool lock and everything it protects.
    pub(crate) locked: Mutex<P, PoolLocked<P>>,
    /// Notified (with the pool lock) when a worker exits.
    pub(crate) exited: Condvar<P>,
}

/// The thread side of a worker: how to wake it and how to join it.
pub(crate) struct WorkerThread<P: Platform> {
    /// I: the worker waits on this, with the pool lock.
    pub(crate) wakeup: Arc<Condvar<P>>,
    /// A: a copy of the machine's `woken` that an idle-spinning worker
    /// polls without the pool lock; set (Release) with `woken`, read
    /// (Acquire) before re-locking.
    pub(crate) wake_hint: Arc<AtomicUsize<P>>,
    /// Waiting on `wakeup` (not merely idle-spinning): only then does a
    /// wakeup need a notification (a syscall on most platforms).
    pub(crate) parked: bool,
    /// The thread handle, joined on shutdown.
    pub(crate) handle: Option<P::JoinHandle>,
}

impl<P: Platform> WorkerThread<P> {
    pub(crate) fn new() -> Self {
        WorkerThread {
            wakeup: Arc::new(Condvar::new()),
            wake_hint: Arc::new(AtomicUsize::new(0)),
            parked: false,
            handle: None,
        }
    }
}

/// Everything the pool lock protects (kernel `L:` fields): the pure pool
/// state (`machine::pool`, whose rules keep `nr_running` and the idle list
/// right) and the driver's side of it.
pub(crate) struct PoolLocked<P: Platform> {
    /// The pure state: worklist, workers, idle list, counters.
    pub(crate) state: PoolState<Entry<P>>,
    /// Each worker's thread side, by the same ids as `state.workers`.
    pub(crate) threads: BTreeMap<WorkerId, WorkerThread<P>>,
    /// Per-workqueue state on this pool (kernel pool_workqueue).
    pub(crate) pwqs: BTreeMap<WqId, PwqState<P>>,
    /// Handles of workers that exited, waiting to be joined.
    pub(crate) zombies: Vec<P::JoinHandle>,
    /// The trustee in charge while the pool is disassociated and not yet
    /// empty.
    pub(crate) trustee: Option<TrusteeState<P>>,
}

impl<P: Platform> Pool<P> {
    pub(crate) fn new(cpu: Option<usize>, highpri: bool, shared: Arc<SystemShared<P>>) -> Self {
        let bugs = shared.config.seeded_bits();
        Pool {
            cpu,
            highpri,
            shared,
            exited: Condvar::new(),
            locked: Mutex::new(PoolLocked {
                state: PoolState::new(bugs),
                threads: BTreeMap::new(),
                pwqs: BTreeMap::new(),
                zombies: Vec::new(),
                trustee: None,
            }),
        }
    }

    /// Worker flags every worker of this pool carries permanently.
    pub(crate) fn permanent_flags(&self) -> u8 {
        if self.cpu.is_none() {
            WORKER_UNBOUND
        } else {
            0
        }
    }

    /// The OS CPUs a worker of this pool should be pinned to: its CPU
    /// while online, the process's whole set while offline.
    pub(crate) fn pin_target(&self, disassociated: bool) -> Vec<usize> {
        let shared = &self.shared;
        match self.cpu.and_then(|cpu| shared.os_cpus.get(cpu)) {
            Some(&os_cpu) if !disassociated => vec![os_cpu],
            _ => shared.platform.allowed_os_cpus().unwrap_or_default(),
        }
    }

    /// The kernel-style thread name of worker `id`: `kworker/<cpu>:<id>[H]`,
    /// or `kworker/u:<id>[H]` for unbound pools.
    pub(crate) fn worker_name(&self, id: WorkerId) -> String {
        let prefix = &self.shared.config.thread_name_prefix;
        let suffix = if self.highpri { "H" } else { "" };
        match self.cpu {
            Some(cpu) => format!("{prefix}/{cpu}:{id}{suffix}"),
            None => format!("{prefix}/u:{id}{suffix}"),
        }
    }
}

impl<P: Platform> PoolLocked<P> {
    /// Wakes the first idle worker if work waits and nobody runs
    /// (kernel `kick_pool`). Queueing onto a pool whose worker is running
    /// therefore wakes nobody: that worker will reach the item itself.
    pub(crate) fn kick(&mut self) {
        if let Some(id) = self.state.kick() {
            self.wake(id);
        }
    }

    /// Carries out a wakeup the machine decided on: the hint for a spinning
    /// worker, a notification for a parked one.
    pub(crate) fn wake(&mut self, id: WorkerId) {
        if let Some(thread) = self.threads.get(&id) {
            thread.wake_hint.store(1, Ordering::Release);
            if thread.parked {
                thread.wakeup.notify_one();
            }
        }
    }

    /// Puts a worker on the idle list. Returns true if the idle-cull timer
    /// must be armed (too many idle workers and no timer pending).
    pub(crate) fn worker_enter_idle(&mut self, id: WorkerId, now: Duration) -> bool {
        let arm = self.state.worker_enter_idle(id, now);
        self.poke_trustee();
        arm
    }

    /// Retires worker `id`: off the idle list, out of `nr_workers`, told to
    /// exit. It exits when it next looks (at once if idle).
    pub(crate) fn retire_worker(&mut self, id: WorkerId) {
        if self.state.retire_worker(id) {
            self.tell_exit(id);
        }
    }

    /// Wakes a worker the machine retired, so that it sees `die` and exits.
    pub(crate) fn tell_exit(&mut self, id: WorkerId) {
        if let Some(thread) = self.threads.get(&id) {
            thread.wake_hint.store(1, Ordering::Release);
            thread.wakeup.notify_one();
        }
    }

    /// The pool-workqueue of `wq` on this pool.
    pub(crate) fn pwq_mut(&mut self, wq: WqId) -> Option<&mut PwqState<P>> {
        self.pwqs.get_mut(&wq)
    }
}

/// A trustee in charge of a disassociated pool. L: pool lock.
pub(crate) struct TrusteeState<P: Platform> {
    /// Wakes the trustee: an item left the pool, or it is released.
    pub(crate) wake: Arc<Condvar<P>>,
}

impl<P: Platform> PoolLocked<P> {
    /// Whether the pool holds no item: none waiting, inactive, deferred to
    /// a worker or running.
    pub(crate) fn holds_nothing(&self) -> bool {
        self.state.worklist.is_empty() && self.pwqs.values().all(|pwq| pwq.is_empty())
    }

    /// Tells the trustee, if any, that the pool changed.
    pub(crate) fn poke_trustee(&self) {
        if let Some(trustee) = &self.trustee {
            trustee.wake.notify_all();
        }
    }
}
