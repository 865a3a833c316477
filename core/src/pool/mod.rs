//! Worker pools: the per-CPU (and unbound) sets of workers shared by every
//! workqueue, and the pool-locked state that concurrency management reads.
//!
//! See `README.md` in this directory for the protocol. Every field of
//! [`PoolLocked`] is protected by the pool lock (`L:` in the crate legend);
//! the compiler enforces that by keeping them inside the pool's mutex.

use crate::config::seeded;
use crate::inbox::Inbox;
use crate::machine::section::PoolSection;
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform};
use crate::seeded::SeededBug;
use crate::shared::{Pool, PoolLocked, SystemShared, WorkerThread};
use core::sync::atomic::Ordering;
use crossbeam_utils::CachePadded;
use std::collections::BTreeMap;

pub(crate) use crate::machine::pool::WorkerId;

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

impl<P: Platform> Pool<P> {
    pub(crate) fn new(cpu: Option<usize>, highpri: bool, shared: Arc<SystemShared<P>>) -> Self {
        let bugs = shared.config.seeded_bits();
        // The unbound pool's concurrency target is the CPU count unless
        // configured (a departure from the kernel, which does not manage
        // it); a CPU's pool wants one runner.
        let config = &shared.config;
        let concurrency = if cpu.is_none() { config.unbound_concurrency.unwrap_or(config.cpus) } else { 1 };
        // High-priority pools are not traced.
        let tracer = shared.tracer.for_pool((!highpri).then(|| cpu.unwrap_or(shared.config.cpus)));
        let unlocked_tracer = tracer.clone();
        let load = Arc::new(CachePadded::new(AtomicUsize::new(0)));
        let inbox = Arc::new(CachePadded::new(Inbox::new()));
        Pool {
            cpu,
            highpri,
            concurrency,
            tracer: unlocked_tracer,
            shared,
            exited: Condvar::new(),
            load: load.clone(),
            inbox: inbox.clone(),
            watch: Mutex::new(Vec::new()),
            stall: Mutex::new(Default::default()),
            locked: Mutex::new(PoolLocked {
                load,
                inbox,
                inbox_open: false,
                spliced: Vec::new(),
                bugs,
                section_step: core::cell::Cell::new(None),
                machine: PoolSection::new(bugs, concurrency),
                threads: BTreeMap::new(),
                wqs: BTreeMap::new(),
                zombies: Vec::new(),
                trustee: None,
                tracer,
            }),
        }
    }

    /// The pool's load as a plain `queue` reads it (machine QU3): the
    /// published load and the items left in the inbox, both hints.
    #[inline]
    pub(crate) fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed) + self.inbox.left_hint()
    }

    /// Takes the pool lock and begins a section: what queueings left in
    /// the inbox is moved onto the pool first (`inbox.rs`).
    #[inline]
    pub(crate) fn lock(&self) -> P::Guard<'_, PoolLocked<P>> {
        let mut guard = self.locked.lock();
        guard.section_step.set(None);
        if !seeded(&self.shared.config, SeededBug::SectionSkipsSplice) {
            guard.splice();
        }
        guard
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
    /// Retires worker `id`: off the idle list, out of `nr_workers`, told to
    /// exit. It exits when it next looks (at once if idle).
    pub(crate) fn retire_worker(&mut self, id: WorkerId) {
        if self.machine.retire_worker(id) {
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
}
