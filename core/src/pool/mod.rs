//! Worker pools: the per-CPU (and unbound) sets of workers shared by every
//! workqueue, and the pool-locked state that concurrency management reads.
//!
//! See `README.md` in this directory for the protocol. Every field of
//! [`PoolLocked`] is protected by the pool lock (`L:` in the crate legend);
//! the compiler enforces that by keeping them inside the pool's mutex.

use crate::hotplug::TrusteeState;
use crate::machine::policy::{self, PoolCounts};
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform};
use crate::pool_workqueue::{Entry, PwqState};
use crate::system::SystemShared;
use crate::workqueue::WqId;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

/// Identifies a worker within its pool.
pub(crate) type WorkerId = usize;

/// Worker flag: between waking and starting to work (kernel `WORKER_PREP`);
/// idle workers carry it too.
pub(crate) const WORKER_PREP: u8 = 1 << 0;
/// Worker flag: running an item of a `cpu_intensive` workqueue.
pub(crate) const WORKER_CPU_INTENSIVE: u8 = 1 << 1;
/// Worker flag: belongs to an unbound pool (never concurrency managed).
pub(crate) const WORKER_UNBOUND: u8 = 1 << 2;
/// Worker flag: a workqueue's rescuer attached to this pool (see
/// `rescuer.rs`); not in `nr_workers`, never idle.
pub(crate) const WORKER_RESCUER: u8 = 1 << 3;
/// Worker flag: its pool's CPU is offline (kernel 2010 `WORKER_ROGUE`):
/// concurrency management is suspended until the CPU comes back.
pub(crate) const WORKER_ROGUE: u8 = 1 << 4;
/// Flags that keep a worker out of `nr_running`.
pub(crate) const WORKER_NOT_RUNNING: u8 =
    WORKER_PREP | WORKER_CPU_INTENSIVE | WORKER_UNBOUND | WORKER_RESCUER | WORKER_ROGUE;

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

/// What the worker is executing (kernel `current_pwq`); the item itself is
/// in the worker's thread context and the pool's `busy` map.
pub(crate) struct Current {
    /// The workqueue it was queued on.
    pub(crate) wq: WqId,
}

/// A worker as the pool sees it.
pub(crate) struct WorkerSlot<P: Platform> {
    /// I: the worker waits on this, with the pool lock.
    pub(crate) wakeup: Arc<Condvar<P>>,
    /// A: a copy of `woken` an idle-spinning worker polls without the pool
    /// lock; set (Release) with `woken`, read (Acquire) before re-locking.
    pub(crate) wake_hint: Arc<AtomicUsize<P>>,
    /// `WORKER_*` flags.
    pub(crate) flags: u8,
    /// Inside `blocking()` (the kernel's "task went to sleep").
    pub(crate) sleeping: bool,
    /// A wakeup was sent and not yet consumed.
    pub(crate) woken: bool,
    /// Waiting on `wakeup` (not merely idle-spinning): only then does a
    /// wakeup need a notification (a syscall on most platforms).
    pub(crate) parked: bool,
    /// Told to exit (idle cull, shutdown).
    pub(crate) die: bool,
    /// Registered by the manager after a successful spawn.
    pub(crate) registered: bool,
    /// Items deferred to this worker because it is running them already
    /// (kernel `scheduled` list, used for non-reentrancy collisions).
    pub(crate) scheduled: VecDeque<Entry<P>>,
    /// The item being executed.
    pub(crate) current: Option<Current>,
    /// When the worker last became idle.
    pub(crate) last_active: Duration,
    /// The thread handle, joined on shutdown.
    pub(crate) handle: Option<P::JoinHandle>,
}

impl<P: Platform> WorkerSlot<P> {
    /// A slot with `flags`, last active at `now`; `registered` once its
    /// thread exists.
    pub(crate) fn new(flags: u8, now: Duration, registered: bool) -> Self {
        WorkerSlot {
            wakeup: Arc::new(Condvar::new()),
            wake_hint: Arc::new(AtomicUsize::new(0)),
            flags,
            sleeping: false,
            woken: false,
            parked: false,
            die: false,
            registered,
            scheduled: VecDeque::new(),
            current: None,
            last_active: now,
            handle: None,
        }
    }

    fn counts_as_running(&self) -> bool {
        self.flags & WORKER_NOT_RUNNING == 0 && !self.sleeping
    }
}

/// Item identity → executing worker (kernel `busy_hash`).
#[derive(Default)]
pub(crate) struct BusyMap {
    entries: Vec<(usize, WorkerId)>,
}

impl BusyMap {
    /// The worker executing item `key`.
    pub(crate) fn get(&self, key: &usize) -> Option<&WorkerId> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, w)| w)
    }

    /// Records that `worker` executes `key`.
    pub(crate) fn insert(&mut self, key: usize, worker: WorkerId) {
        debug_assert!(self.get(&key).is_none(), "item executed by two workers of one pool");
        self.entries.push((key, worker));
    }

    /// Forgets `key`.
    pub(crate) fn remove(&mut self, key: &usize) {
        if let Some(pos) = self.entries.iter().position(|(k, _)| k == key) {
            self.entries.swap_remove(pos);
        }
    }
}

/// Pool state protected by the pool lock (kernel `L:` fields).
pub(crate) struct PoolLocked<P: Platform> {
    /// Active items waiting for a worker, FIFO.
    pub(crate) worklist: VecDeque<Entry<P>>,
    /// Workers counted as running (no `NOT_RUNNING` flag, not blocking).
    pub(crate) nr_running: usize,
    /// Workers alive (idle, working, or managing).
    pub(crate) nr_workers: usize,
    /// Idle workers, most recently idle first (LIFO: hot caches first, the
    /// coldest at the back are culled first).
    pub(crate) idle: VecDeque<WorkerId>,
    /// Every worker, by id (ordered for deterministic shutdown).
    pub(crate) workers: BTreeMap<WorkerId, WorkerSlot<P>>,
    /// Which worker executes which item (kernel `busy_hash`), keyed by the
    /// item's identity. A short vector: one entry per busy worker.
    pub(crate) busy: BusyMap,
    /// A manager (creating a worker) is active; at most one at a time.
    pub(crate) manager_active: bool,
    /// Workers inside `manage_workers` (checked to be at most one).
    pub(crate) nr_managers: usize,
    /// Next worker id.
    pub(crate) next_worker_id: WorkerId,
    /// Per-workqueue state on this pool (kernel pool_workqueue).
    pub(crate) pwqs: BTreeMap<WqId, PwqState<P>>,
    /// The idle-cull timer is armed.
    pub(crate) idle_timer_armed: bool,
    /// A create-retry timer is armed (after a failed spawn).
    pub(crate) create_retry_armed: bool,
    /// The mayday timer is armed (after a failed creation, see `rescuer.rs`).
    pub(crate) mayday_timer_armed: bool,
    /// Handles of workers that exited, waiting to be joined.
    pub(crate) zombies: Vec<P::JoinHandle>,
    /// The system is shutting down: create no more workers.
    pub(crate) stopping: bool,
    /// Spawn failures seen by this pool.
    pub(crate) create_failures: usize,
    /// The pool's CPU is offline (see `hotplug.rs`): its workers are rogue.
    pub(crate) disassociated: bool,
    /// The trustee in charge while the pool is disassociated and not yet
    /// empty.
    pub(crate) trustee: Option<TrusteeState<P>>,
    /// Bumped on every `cpu_down` / `cpu_up`: workers re-pin when they see
    /// a new value (`Config::pin_workers`).
    pub(crate) pin_generation: u64,
}

impl<P: Platform> Pool<P> {
    pub(crate) fn new(cpu: Option<usize>, highpri: bool, shared: Arc<SystemShared<P>>) -> Self {
        Pool {
            cpu,
            highpri,
            shared,
            exited: Condvar::new(),
            locked: Mutex::new(PoolLocked {
                worklist: VecDeque::new(),
                nr_running: 0,
                nr_workers: 0,
                idle: VecDeque::new(),
                workers: BTreeMap::new(),
                busy: BusyMap::default(),
                manager_active: false,
                nr_managers: 0,
                next_worker_id: 0,
                pwqs: BTreeMap::new(),
                idle_timer_armed: false,
                create_retry_armed: false,
                mayday_timer_armed: false,
                zombies: Vec::new(),
                stopping: false,
                create_failures: 0,
                disassociated: false,
                trustee: None,
                pin_generation: 1,
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
    /// The counters the policy functions look at.
    pub(crate) fn counts(&self) -> PoolCounts {
        PoolCounts {
            pending: self.worklist.len(),
            running: self.nr_running,
            idle: self.idle.len(),
            workers: self.nr_workers,
            managing: self.manager_active,
        }
    }

    /// Changes a worker's flags or sleeping state through `change`, keeping
    /// `nr_running` equal to the number of workers that count as running.
    pub(crate) fn update_worker(&mut self, id: WorkerId, change: impl FnOnce(&mut WorkerSlot<P>)) {
        let Some(slot) = self.workers.get_mut(&id) else {
            debug_assert!(false, "update_worker: worker {id} is not in its pool");
            return;
        };
        let before = slot.counts_as_running();
        change(slot);
        let after = slot.counts_as_running();
        match (before, after) {
            (false, true) => self.nr_running += 1,
            (true, false) => {
                debug_assert!(self.nr_running > 0, "nr_running underflow");
                self.nr_running -= 1;
            }
            _ => {}
        }
    }

    /// Wakes the first idle worker if work waits and nobody runs
    /// (kernel `kick_pool`). Queueing onto a pool whose worker is running
    /// therefore wakes nobody: that worker will reach the item itself.
    pub(crate) fn kick(&mut self) {
        if policy::need_more_worker(self.counts()) {
            self.wake_first_idle();
        }
    }

    /// Sends a wakeup to the most recently idle worker, if any.
    pub(crate) fn wake_first_idle(&mut self) {
        if let Some(&id) = self.idle.front() {
            if let Some(slot) = self.workers.get_mut(&id) {
                if !slot.woken {
                    slot.woken = true;
                    slot.wake_hint.store(1, Ordering::Release);
                    if slot.parked {
                        slot.wakeup.notify_one();
                    }
                }
            }
        }
    }

    /// Puts a worker on the idle list. Returns true if the idle-cull timer
    /// must be armed (too many idle workers and no timer pending).
    pub(crate) fn worker_enter_idle(&mut self, id: WorkerId, now: Duration) -> bool {
        self.update_worker(id, |w| {
            w.flags |= WORKER_PREP;
            w.last_active = now;
        });
        debug_assert!(!self.idle.contains(&id), "worker {id} entered idle twice");
        self.idle.push_front(id);
        self.nr_idle_sanity();
        self.poke_trustee();
        if policy::too_many_workers(self.counts()) && !self.idle_timer_armed {
            self.idle_timer_armed = true;
            return true;
        }
        false
    }

    /// Takes a worker off the idle list (it stays `PREP` until it works).
    pub(crate) fn worker_leave_idle(&mut self, id: WorkerId) {
        if let Some(pos) = self.idle.iter().position(|&w| w == id) {
            self.idle.remove(pos);
        }
    }

    /// Retires worker `id`: off the idle list, out of `nr_workers`, told to
    /// exit. It exits when it next looks (at once if idle).
    pub(crate) fn retire_worker(&mut self, id: WorkerId) {
        self.worker_leave_idle(id);
        if let Some(slot) = self.workers.get_mut(&id) {
            debug_assert!(slot.flags & WORKER_RESCUER == 0, "retiring an attached rescuer");
            if !slot.die {
                slot.die = true;
                slot.wake_hint.store(1, Ordering::Release);
                slot.wakeup.notify_one();
                debug_assert!(self.nr_workers > 0, "nr_workers underflow");
                self.nr_workers -= 1;
            }
        }
    }

    fn nr_idle_sanity(&self) {
        debug_assert!(self.idle.len() <= self.nr_workers, "more idle workers than workers");
    }

    /// The pool-workqueue of `wq` on this pool.
    pub(crate) fn pwq_mut(&mut self, wq: WqId) -> Option<&mut PwqState<P>> {
        self.pwqs.get_mut(&wq)
    }
}
