//! A worker's passage through its pool as pure transitions on
//! [`PoolState`] (kernel `worker_thread`, `process_one_work`,
//! `wq_worker_sleeping` / `wq_worker_running`).
//!
//! # Rules
//! - M6. **Wake.** A woken worker leaves the idle list but stays `PREP`. It
//!   works only if items wait and fewer workers than the pool's target run
//!   (`need_more_worker`; target 1: nobody runs); otherwise the wakeup was
//!   only a hint and it goes back to idle. (C3)
//! - M7. **Spare first.** Before working it needs an idle spare to take over
//!   if it blocks (`may_start_working`); without one it becomes the
//!   manager and creates one (the driver spawns). If creation fails it
//!   works anyway if `need_more_worker` still holds (`worker_recheck`). (C1)
//! - M8. **Work.** Working clears `PREP` (now running) and takes items while
//!   `keep_working`: items wait and at most the target run, this worker
//!   included (target 1: only this worker). (C4, C6)
//! - M9. **Non-reentrancy.** An item another worker of the pool is executing
//!   is deferred to that worker's scheduled list, which it runs after its
//!   current item; otherwise the item is recorded as executed here. (W4)
//! - M10. **Blocking.** A worker entering a blocking section stops counting
//!   as running and, if `need_more_worker` then holds, the first idle
//!   worker is woken; leaving, it counts again. Nested sections count
//!   once. (C1, C6)

use super::policy;
use super::pool::{PoolState, WorkerId, WqId, WORKER_CPU_INTENSIVE, WORKER_PREP};
use super::{seeded_in, Queued};
use crate::SeededBug;

/// What a worker does after waking (rules M6 and M7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStep {
    /// Nothing for it to do: back to idle.
    Idle,
    /// It holds the manager role now: the driver creates a worker, then
    /// calls [`PoolState::manager_leave`] and asks again.
    Manage,
    /// Work: the driver calls [`PoolState::worker_start_working`].
    Work,
}

/// Where [`PoolState::item_begin`] put an item (rule M9).
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// The worker executes it: the driver runs the function.
    Run,
    /// Another worker executes it already; it went on that worker's
    /// scheduled list.
    Deferred,
}

/// What [`PoolState::worker_sleeping`] decided (rule M10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sleep {
    /// Already inside a blocking section (or not a worker of this pool):
    /// the outer section accounts for it; leaving must not be reported.
    Nested,
    /// Now blocked; wake this worker, if any.
    Slept(Option<WorkerId>),
}

impl<E: Queued> PoolState<E> {
    /// Rule M7: after a failed creation (the pool lock was dropped meanwhile),
    /// whether the manager should still work: `need_more_worker`.
    /// Otherwise it goes back to idle (the kernel rechecks the same way).
    pub fn worker_recheck(&self) -> bool {
        policy::need_more_worker(self.counts())
    }

    /// Rules M6 and M7: worker `id` woke up (or finished managing). Takes it
    /// off the idle list and says what it does next; `Manage` means it
    /// took the manager role.
    pub fn worker_decide(&mut self, id: WorkerId) -> WorkerStep {
        self.worker_leave_idle(id);
        if !policy::need_more_worker(self.counts()) {
            return WorkerStep::Idle;
        }
        let no_spare = seeded_in(self.bugs, SeededBug::NoSpareWorker);
        if !policy::may_start_working(self.counts()) && !no_spare && self.manager_enter() {
            return WorkerStep::Manage;
        }
        WorkerStep::Work
    }

    /// Rule M8: worker `id` starts working (counts as running).
    pub fn worker_start_working(&mut self, id: WorkerId) {
        self.update_worker(id, |w| w.flags &= !WORKER_PREP);
    }

    /// Rule M8: the next item for a working worker: the first one always,
    /// later ones while `keep_working`.
    pub fn worker_next_item(&mut self, first: bool) -> Option<E> {
        if !first {
            let ignore_runners = seeded_in(self.bugs, SeededBug::KeepWorkingIgnoresRunners);
            let keep = policy::keep_working(self.counts()) || (ignore_runners && !self.worklist.is_empty());
            if !keep {
                return None;
            }
        }
        self.worklist.pop_front()
    }

    /// Rule M8: worker `id` stops working (back to `PREP`).
    pub fn worker_stop_working(&mut self, id: WorkerId) {
        self.update_worker(id, |w| w.flags |= WORKER_PREP);
    }

    /// Rule M9: worker `id` is about to execute `entry`. Defers it to the
    /// worker executing it already, if another one is; else records it as
    /// executed by `id`, marks the worker busy for `entry`'s workqueue and,
    /// for a `cpu_intensive` one, out of the running count.
    pub fn item_begin(&mut self, id: WorkerId, entry: E, cpu_intensive: bool) -> (Begin, Option<E>) {
        let key = entry.key();
        let collision_check = !seeded_in(self.bugs, SeededBug::SkipCollisionCheck);
        if let Some(&other) = self.busy.get(&key).filter(|_| collision_check) {
            if other != id {
                if let Some(worker) = self.workers.get_mut(&other) {
                    worker.scheduled.push_back(entry);
                    return (Begin::Deferred, None);
                }
            }
        }
        if collision_check || self.busy.get(&key).is_none() {
            self.busy.insert(key, id);
        }
        let (wq, func): (WqId, _) = (entry.wq(), entry.func());
        self.update_worker(id, |w| {
            w.current = Some(wq);
            w.func = func;
            w.run = w.run.wrapping_add(1);
            if cpu_intensive {
                w.flags |= WORKER_CPU_INTENSIVE;
            }
        });
        (Begin::Run, Some(entry))
    }

    /// Rule M9: worker `id` finished executing item `key`.
    pub fn item_end(&mut self, id: WorkerId, key: usize) {
        if !seeded_in(self.bugs, SeededBug::FinishKeepsDetection) {
            self.worker_steps(id);
        }
        self.update_worker(id, |w| {
            w.current = None;
            w.func = "";
            w.flags &= !WORKER_CPU_INTENSIVE;
        });
        self.busy.remove(&key);
    }

    /// Rule M9: the next item deferred to worker `id`.
    pub fn next_scheduled(&mut self, id: WorkerId) -> Option<E> {
        self.workers.get_mut(&id)?.scheduled.pop_front()
    }

    /// Rule M10: worker `id` enters a blocking section.
    pub fn worker_sleeping(&mut self, id: WorkerId) -> Sleep {
        self.worker_steps(id);
        if self.workers.get(&id).is_none_or(|w| w.sleeping) {
            return Sleep::Nested;
        }
        self.update_worker(id, |w| w.sleeping = true);
        let no_wake = seeded_in(self.bugs, SeededBug::NoWakeOnSleep);
        let wake = if policy::need_more_worker(self.counts()) && !no_wake { self.wake_first_idle() } else { None };
        Sleep::Slept(wake)
    }

    /// Rule M10: worker `id` leaves its blocking section.
    pub fn worker_running(&mut self, id: WorkerId) {
        self.worker_steps(id);
        // A new run for the monitor (rule M32): what it saw of the
        // section is out of date now.
        self.update_worker(id, |w| {
            w.sleeping = false;
            w.run = w.run.wrapping_add(1);
        });
        if seeded_in(self.bugs, SeededBug::DoubleCountRunning) {
            self.nr_running += 1;
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
