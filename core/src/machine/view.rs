//! Read-only views of a pool and its workers. Their fields are private to
//! the machine, so that only its transitions change them; executors (the
//! engine, the refinement's harness, a simulator) read them through these.

use super::pool::{PoolState, WorkerId, WorkerState, WqId};
use std::collections::{BTreeMap, VecDeque};

impl<E> WorkerState<E> {
    /// Its `WORKER_*` flags.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Inside a blocking section (rule M10).
    #[inline]
    pub fn sleeping(&self) -> bool {
        self.sleeping
    }

    /// Seen asleep by the blocking monitor, out of the running count
    /// (rules M32-M33).
    #[inline]
    pub fn detected(&self) -> bool {
        self.detected
    }

    /// How many instances it has begun: the run the monitor's observations
    /// name (rule M32).
    #[inline]
    pub fn run(&self) -> u64 {
        self.run
    }

    /// A wakeup was sent and not yet consumed (rule M2).
    #[inline]
    pub fn woken(&self) -> bool {
        self.woken
    }

    /// Told to exit (rule M4).
    #[inline]
    pub fn die(&self) -> bool {
        self.die
    }

    /// Its thread exists (CR2 registered it).
    #[inline]
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// The items deferred to it (rule M9), next first.
    #[inline]
    pub fn scheduled(&self) -> &VecDeque<E> {
        &self.scheduled
    }

    /// The workqueue of the item it executes (rule M9).
    #[inline]
    pub fn current(&self) -> Option<WqId> {
        self.current
    }

    /// The name of the function it executes ("" between items).
    #[inline]
    pub fn func(&self) -> &'static str {
        self.func
    }
}

impl<E> PoolState<E> {
    /// Active items waiting for a worker, next first.
    #[inline]
    pub fn worklist(&self) -> &VecDeque<E> {
        &self.worklist
    }

    /// Workers counted as running (rule M1).
    #[inline]
    pub fn nr_running(&self) -> usize {
        self.nr_running
    }

    /// Workers alive; rescuers excluded.
    #[inline]
    pub fn nr_workers(&self) -> usize {
        self.nr_workers
    }

    /// Idle workers, most recently idle first (rule M3).
    #[inline]
    pub fn idle(&self) -> &VecDeque<WorkerId> {
        &self.idle
    }

    /// Every worker (attached rescuers included), by id.
    #[inline]
    pub fn workers(&self) -> &BTreeMap<WorkerId, WorkerState<E>> {
        &self.workers
    }

    /// Worker `id`, if it is in the pool.
    #[inline]
    pub fn worker(&self, id: WorkerId) -> Option<&WorkerState<E>> {
        self.workers.get(&id)
    }

    /// A worker holds the manager role (rule M5).
    #[inline]
    pub fn manager_active(&self) -> bool {
        self.manager_active
    }

    /// The idle-cull timer is armed (rule M3).
    #[inline]
    pub fn idle_timer_armed(&self) -> bool {
        self.idle_timer_armed
    }

    /// The mayday timer is armed (rule M11).
    #[inline]
    pub fn mayday_timer_armed(&self) -> bool {
        self.mayday_timer_armed
    }

    /// Shutting down: no more workers are created (rule M11).
    #[inline]
    pub fn stopping(&self) -> bool {
        self.stopping
    }

    /// Workers the blocking monitor has seen blocked so far (rule M32).
    #[inline]
    pub fn detections(&self) -> usize {
        self.detections
    }

    /// Spawn failures seen by this pool.
    #[inline]
    pub fn create_failures(&self) -> usize {
        self.create_failures
    }

    /// The pool's CPU is offline (rule M15).
    #[inline]
    pub fn disassociated(&self) -> bool {
        self.disassociated
    }

    /// Bumped on every `cpu_down` / `cpu_up`: a pinned worker re-pins when
    /// it changes.
    #[inline]
    pub fn pin_generation(&self) -> u64 {
        self.pin_generation
    }
}
