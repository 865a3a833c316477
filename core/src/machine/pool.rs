//! A worker pool's concurrency-management state as pure data (kernel
//! `worker_pool` and the `worker` fields the pool reads).
//!
//! # Rules (the protocol in words is `core/src/pool/README.md`)
//! - M1. **Running count.** `nr_running` is never written directly:
//!   `PoolState::update_worker` recomputes it from the worker's flags and
//!   its `sleeping` and `detected` bits, so it always equals the workers
//!   that count as running (no `NOT_RUNNING` flag, not blocked, not seen
//!   asleep by the monitor). (C1, C4)
//! - M2. **Kick.** If items wait and fewer workers run than the pool's
//!   concurrency target (`need_more_worker`; target 1 on a CPU's pool:
//!   nobody runs), the most recently idle worker is woken, once: a wakeup
//!   not yet consumed is not sent again. Queueing behind the target's
//!   running workers wakes nobody. (C1, C3, C6)
//! - M3. **Idle list.** A worker entering idle goes to the front (hot first)
//!   and becomes `PREP`; the coldest, at the back, are retired first. When
//!   there are too many idle workers and no cull timer is armed, one must
//!   be armed. (C7)
//! - M4. **Retire.** A retired worker leaves the idle list and `nr_workers`
//!   and is told to exit, exactly once.
//! - M5. **Manager.** At most one worker manages (creates workers) at a time.
//!
//! `E` is the driver's queued entry; the machine only moves it between the
//! worklist and the workers' scheduled lists.
//!
//! The fields are private to the machine, so that only these rules change
//! them; executors read them through the views in `view.rs`.

use super::policy::{self, PoolCounts};
use super::SeededBits;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

/// Identifies a worker within its pool.
pub type WorkerId = usize;

/// Identifies a workqueue within its system.
pub type WqId = usize;

/// Worker flag: between waking and starting to work (kernel `WORKER_PREP`);
/// idle workers carry it too.
pub const WORKER_PREP: u8 = 1 << 0;
/// Worker flag: running an item of a `cpu_intensive` workqueue.
pub const WORKER_CPU_INTENSIVE: u8 = 1 << 1;
/// Worker flag: a workqueue's rescuer attached to this pool; not in
/// `nr_workers`, never idle.
pub const WORKER_RESCUER: u8 = 1 << 3;
/// Worker flag: its pool's CPU is offline (kernel 2010 `WORKER_ROGUE`;
/// today's kernel sets `WORKER_UNBOUND` for this): concurrency management
/// is suspended until the CPU comes back. Workers of the unbound pool do
/// not carry it: that pool is managed, with a target of its own.
pub const WORKER_ROGUE: u8 = 1 << 4;
/// Flags that keep a worker out of `nr_running`.
pub const WORKER_NOT_RUNNING: u8 = WORKER_PREP | WORKER_CPU_INTENSIVE | WORKER_RESCUER | WORKER_ROGUE;

/// A worker as the pool sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerState<E> {
    /// `WORKER_*` flags.
    pub(super) flags: u8,
    /// Inside a blocking section (the kernel's "task went to sleep").
    pub(super) sleeping: bool,
    /// Seen asleep by the blocking monitor outside any blocking section
    /// (rules M32-M33): out of the running count until seen running.
    pub(super) detected: bool,
    /// How many instances it has begun (rule M9): the monitor's
    /// observations name the run they were made in (rule M32).
    pub(super) run: u64,
    /// A wakeup was sent and not yet consumed.
    pub(super) woken: bool,
    /// Told to exit (idle cull, shutdown).
    pub(super) die: bool,
    /// Its thread exists (registered by the manager after the spawn).
    pub(super) registered: bool,
    /// Items deferred to this worker because it runs them already (kernel
    /// `scheduled` list, for non-reentrancy collisions).
    pub(super) scheduled: VecDeque<E>,
    /// The workqueue of the item being executed (kernel `current_pwq`).
    pub(super) current: Option<WqId>,
    /// The name of its function (kernel `current_func`), for reports.
    pub(super) func: &'static str,
    /// When the worker last became idle (time is an input).
    pub(super) last_active: Duration,
}

impl<E> WorkerState<E> {
    /// A worker with `flags`, last active at `now`.
    pub(super) fn new(flags: u8, now: Duration, registered: bool) -> Self {
        WorkerState {
            flags,
            sleeping: false,
            detected: false,
            run: 0,
            woken: false,
            die: false,
            registered,
            scheduled: VecDeque::new(),
            current: None,
            func: "",
            last_active: now,
        }
    }

    /// Whether it counts in `nr_running`.
    pub fn counts_as_running(&self) -> bool {
        self.flags & WORKER_NOT_RUNNING == 0 && !self.sleeping && !self.detected
    }
}

/// Item identity → executing worker (kernel `busy_hash`). A short vector:
/// one entry per busy worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BusyMap {
    entries: Vec<(usize, WorkerId)>,
}

impl BusyMap {
    /// The worker executing item `key`.
    pub fn get(&self, key: &usize) -> Option<&WorkerId> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, w)| w)
    }

    /// Records that `worker` executes `key`.
    pub fn insert(&mut self, key: usize, worker: WorkerId) {
        debug_assert!(self.get(&key).is_none(), "item executed by two workers of one pool");
        self.entries.push((key, worker));
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &usize) {
        if let Some(pos) = self.entries.iter().position(|(k, _)| k == key) {
            self.entries.swap_remove(pos);
        }
    }
}

/// A pool's state (kernel `L:` fields). The driver keeps it under the pool
/// lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolState<E> {
    /// Active items waiting for a worker, FIFO.
    pub(super) worklist: VecDeque<E>,
    /// Workers counted as running (rule M1: derived, never set directly).
    pub(super) nr_running: usize,
    /// Workers the blocking monitor has taken out of the count (rule M32),
    /// ever: a statistic.
    pub(super) detections: usize,
    /// Workers alive (idle, working, or managing); rescuers excluded.
    pub(super) nr_workers: usize,
    /// Idle workers, most recently idle first.
    pub(super) idle: VecDeque<WorkerId>,
    /// Every worker, by id (ordered: deterministic iteration).
    pub(super) workers: BTreeMap<WorkerId, WorkerState<E>>,
    /// Which worker executes which item.
    pub(super) busy: BusyMap,
    /// A manager (creating a worker) is active; at most one at a time.
    pub(super) manager_active: bool,
    /// Workers inside the manager role (checked to be at most one).
    pub(super) nr_managers: usize,
    /// Next worker id.
    pub(super) next_worker_id: WorkerId,
    /// The idle-cull timer is armed.
    pub(super) idle_timer_armed: bool,
    /// A create-retry timer is armed (after a failed spawn).
    pub(super) create_retry_armed: bool,
    /// The mayday timer is armed (after a failed creation).
    pub(super) mayday_timer_armed: bool,
    /// The system is shutting down: create no more workers.
    pub(super) stopping: bool,
    /// Spawn failures seen by this pool.
    pub(super) create_failures: usize,
    /// The pool's CPU is offline: its workers are rogue.
    pub(super) disassociated: bool,
    /// Bumped on every `cpu_down` / `cpu_up`: pinned workers re-pin.
    pub(super) pin_generation: u64,
    /// Seeded bugs for this pool (0 in production).
    pub(super) bugs: SeededBits,
    /// The concurrency target (`policy::PoolCounts::concurrency`), fixed
    /// at construction: 1 for a CPU's pool, the CPU count for the unbound
    /// pool.
    pub(super) concurrency: usize,
}

impl<E> Default for PoolState<E> {
    fn default() -> Self {
        PoolState {
            worklist: VecDeque::new(),
            nr_running: 0,
            detections: 0,
            nr_workers: 0,
            idle: VecDeque::new(),
            workers: BTreeMap::new(),
            busy: BusyMap::default(),
            manager_active: false,
            nr_managers: 0,
            next_worker_id: 0,
            idle_timer_armed: false,
            create_retry_armed: false,
            mayday_timer_armed: false,
            stopping: false,
            create_failures: 0,
            disassociated: false,
            pin_generation: 1,
            bugs: 0,
            concurrency: 1,
        }
    }
}

impl<E> PoolState<E> {
    /// An empty pool with seeded `bugs` switched on (0 in production) and
    /// `concurrency` as its concurrency target (1: a CPU's pool).
    pub fn new(bugs: SeededBits, concurrency: usize) -> Self {
        assert!(concurrency >= 1, "a pool's concurrency target is at least one running worker");
        PoolState { bugs, concurrency, ..PoolState::default() }
    }

    /// The counters the policy predicates look at.
    pub fn counts(&self) -> PoolCounts {
        PoolCounts {
            pending: self.worklist.len(),
            running: self.nr_running,
            idle: self.idle.len(),
            workers: self.nr_workers,
            managing: self.manager_active,
            concurrency: if super::seeded_in(self.bugs, crate::SeededBug::UnboundTargetIgnored) {
                1
            } else {
                self.concurrency
            },
        }
    }

    /// Rule M1: changes worker `id` through `change`, keeping `nr_running`
    /// equal to the workers that count as running.
    pub(super) fn update_worker(&mut self, id: WorkerId, change: impl FnOnce(&mut WorkerState<E>)) {
        let Some(worker) = self.workers.get_mut(&id) else {
            debug_assert!(false, "update_worker: worker {id} is not in its pool");
            return;
        };
        let before = worker.counts_as_running();
        change(worker);
        match (before, worker.counts_as_running()) {
            (false, true) => self.nr_running += 1,
            (true, false) => {
                debug_assert!(self.nr_running > 0, "nr_running underflow");
                self.nr_running = self.nr_running.saturating_sub(1);
            }
            _ => {}
        }
    }

    /// Rule M2: the worker to wake, if items wait and fewer than the target
    /// run.
    #[must_use = "the driver must wake the returned worker"]
    pub fn kick(&mut self) -> Option<WorkerId> {
        if policy::need_more_worker(self.counts()) {
            self.wake_first_idle()
        } else {
            None
        }
    }

    /// Rule M2: marks the most recently idle worker woken and returns it,
    /// unless a wakeup is pending for it already.
    #[must_use = "the driver must wake the returned worker"]
    pub fn wake_first_idle(&mut self) -> Option<WorkerId> {
        let id = *self.idle.front()?;
        let worker = self.workers.get_mut(&id)?;
        if worker.woken {
            return None;
        }
        worker.woken = true;
        Some(id)
    }

    /// Rule M3: worker `id` becomes idle at `now`. Returns whether the
    /// idle-cull timer must be armed.
    #[must_use = "the driver must arm the idle timer when asked"]
    pub fn worker_enter_idle(&mut self, id: WorkerId, now: Duration) -> bool {
        self.update_worker(id, |w| {
            w.flags |= WORKER_PREP;
            w.last_active = now;
        });
        debug_assert!(!self.idle.contains(&id), "worker {id} entered idle twice");
        self.idle.push_front(id);
        debug_assert!(self.idle.len() <= self.nr_workers, "more idle workers than workers");
        if policy::too_many_workers(self.counts()) && !self.idle_timer_armed {
            self.idle_timer_armed = true;
            return true;
        }
        false
    }

    /// Takes worker `id` off the idle list (it stays `PREP` until it works).
    pub fn worker_leave_idle(&mut self, id: WorkerId) {
        if let Some(pos) = self.idle.iter().position(|&w| w == id) {
            self.idle.remove(pos);
        }
    }

    /// Rule M4: retires worker `id`. Returns whether it was newly told to
    /// exit (the driver then wakes it).
    pub fn retire_worker(&mut self, id: WorkerId) -> bool {
        self.worker_leave_idle(id);
        let Some(worker) = self.workers.get_mut(&id) else { return false };
        debug_assert!(worker.flags & WORKER_RESCUER == 0, "retiring an attached rescuer");
        if worker.die {
            return false;
        }
        worker.die = true;
        debug_assert!(self.nr_workers > 0, "nr_workers underflow");
        self.nr_workers = self.nr_workers.saturating_sub(1);
        true
    }

    /// Rule M11: the thread of worker `id` (added by the manager) started:
    /// it counts in `nr_workers` from now on.
    pub fn worker_registered(&mut self, id: WorkerId) {
        if let Some(worker) = self.workers.get_mut(&id) {
            worker.registered = true;
            self.nr_workers += 1;
        }
    }

    /// Rule M11: the thread of worker `id` could not be started: it never was.
    pub fn worker_spawn_failed(&mut self, id: WorkerId) {
        let gone = self.workers.remove(&id);
        debug_assert!(gone.is_some_and(|w| !w.registered), "a registered worker's spawn failed");
    }

    /// A waiting worker `id` looks for its wakeup: true, consuming it, if
    /// it was woken or told to exit (or is gone).
    pub fn take_wakeup(&mut self, id: WorkerId) -> bool {
        let Some(worker) = self.workers.get_mut(&id) else { return true };
        if worker.woken || worker.die {
            worker.woken = false;
            return true;
        }
        false
    }

    /// Rule M4: retired worker `id` leaves the pool for good.
    pub fn worker_exit(&mut self, id: WorkerId) {
        let gone = self.workers.remove(&id);
        debug_assert!(gone.is_none_or(|w| w.die), "worker {id} exited without being retired");
    }

    /// Rule M5: takes the manager role if free.
    pub fn manager_enter(&mut self) -> bool {
        if self.manager_active {
            return false;
        }
        self.manager_active = true;
        self.nr_managers += 1;
        assert!(self.nr_managers == 1, "invariant broken: two managers in one pool");
        true
    }

    /// Rule M5: gives the manager role back.
    pub fn manager_leave(&mut self) {
        self.nr_managers = self.nr_managers.saturating_sub(1);
        self.manager_active = false;
    }

    /// A fresh worker id.
    pub(super) fn next_id(&mut self) -> WorkerId {
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        id
    }

    /// Whether item `key` is executing on this pool for workqueue `wq`
    /// (kernel `find_worker_executing_work` and its `current_pwq` check):
    /// then a requeue of it on `wq` must come here (non-reentrancy, W4).
    pub fn is_running_for(&self, key: usize, wq: WqId) -> bool {
        if super::seeded_in(self.bugs, crate::SeededBug::SkipNonReentrancyLookup) {
            return false;
        }
        self.busy.get(&key).and_then(|id| self.workers.get(id)).is_some_and(|w| w.current == Some(wq))
    }

    /// The workers that count as running, counted one by one (what rule M1
    /// keeps `nr_running` equal to).
    pub fn running_workers(&self) -> usize {
        self.workers.values().filter(|w| w.counts_as_running()).count()
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
