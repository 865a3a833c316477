//! A pool that needs a worker, as steps of its section: creating one
//! (kernel `create_worker`, `maybe_create_worker`), and what happens when
//! it cannot: the create-retry timer and the mayday timer (kernel
//! `pool_mayday_timeout`).
//!
//! # Creating a worker
//! CR1. [`PoolSection::create_begin`] (pool lock; the caller holds the
//!     manager role, or builds the pool): at the limit or while stopping,
//!     nothing ([`Creating::AtLimit`]; a manager then takes CR3 with
//!     [`PoolSection::create_at_limit`], a retry stops); otherwise a new worker
//!     is added, `PREP` and (on a disassociated pool) rogue, not yet
//!     counted, and the executor spawns its thread outside the lock.
//! CR2. [`PoolSection::create_end`] (pool lock again): spawned, the worker
//!     counts and goes idle (PS6); refused, it never was, and CR3.
//! CR3. A failed creation (rule M11) arms the mayday timer and, for a
//!     refusal by the platform, the create-retry timer, each once
//!     ([`Effect::ArmMayday`], [`Effect::ArmCreateRetry`]).
//!
//! A manager gives its role back in its own next step (WP2 in `pass.rs`).
//! A creator that is not a worker (the engine building a pool's first
//! worker) takes and gives back the role around CR1-CR2 with
//! [`PoolSection::manager_enter`] and [`PoolSection::manager_leave`].
//!
//! # Timers
//! TM1. [`PoolSection::create_retry_fired`]: rule M11's retry; if the pool
//!     still has no idle worker and nobody manages, the caller now holds
//!     the manager role and takes CR1.
//!     [`PoolSection::create_retry_done`] then gives the role back and,
//!     if a worker was created, kicks the pool (rule M2).
//! TM2. [`PoolSection::mayday_fired`]: rule M13: if the pool needs a worker
//!     it cannot have, every workqueue with an item on the worklist and a
//!     rescuer is called ([`Effect::Mayday`]); the timer re-arms while no
//!     worker idles.
//! TM3. [`PoolSection::idle_cull_fired`]: rule M12: idle workers beyond `too_many_workers`
//!     that have idled for the timeout retire, coldest first
//!     ([`Effect::Retire`]); the timer re-arms for the next one.

use super::effect::{Effect, Effects};
use super::pool::{WorkerId, WorkerState, WORKER_PREP, WORKER_ROGUE};
use super::section::{Instance, PoolSection};
use core::time::Duration;

/// What [`PoolSection::create_begin`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creating {
    /// Spawn this worker's thread (outside the pool lock), then CR2.
    Spawn(WorkerId),
    /// No worker may be created (limit, or stopping): CR3 was taken.
    AtLimit,
}

impl<E: Instance> PoolSection<E> {
    /// CR1: a new worker for this pool if it may have one; `max` is its
    /// worker limit.
    pub fn create_begin(&mut self, max: usize, now: Duration) -> Creating {
        if !self.state.may_create(max) {
            return Creating::AtLimit;
        }
        let id = self.state.next_id();
        let rogue = if self.state.disassociated { WORKER_ROGUE } else { 0 };
        self.state.workers.insert(id, WorkerState::new(WORKER_PREP | rogue, now, false));
        Creating::Spawn(id)
    }

    /// CR2: the spawn of `worker` returned; `spawned` says whether its
    /// thread started. Returns whether a worker was created.
    pub fn create_end(&mut self, worker: WorkerId, spawned: bool, now: Duration, fx: &mut impl Effects) -> bool {
        if spawned {
            self.state.worker_registered(worker);
            self.enter_idle(worker, now, fx);
        } else {
            self.state.worker_spawn_failed(worker);
            self.creation_failed(true, fx);
        }
        spawned
    }

    /// CR3 for a manager that found the pool at its limit (a failure, not a
    /// refusal: no retry). A create-retry at the limit does nothing more:
    /// the failure that armed it armed the mayday timer too.
    pub fn create_at_limit(&mut self, fx: &mut impl Effects) {
        self.creation_failed(false, fx);
    }

    /// CR3: rule M11's failure; `refused`: by the platform, not the limit.
    fn creation_failed(&mut self, refused: bool, fx: &mut impl Effects) {
        let todo = self.state.worker_create_failed(refused);
        if todo.arm_retry {
            fx.push(Effect::ArmCreateRetry);
        }
        if todo.arm_mayday {
            fx.push(Effect::ArmMayday { first: true });
        }
    }

    /// Rule M5 for a creator that is not a worker (the engine building a
    /// pool's first worker, CR1-CR2 in between): takes the manager role if
    /// free.
    pub fn manager_enter(&mut self) -> bool {
        self.state.manager_enter()
    }

    /// Rule M5: that creator gives the manager role back.
    pub fn manager_leave(&mut self) {
        self.state.manager_leave();
    }

    /// TM1: the create-retry timer fired. True if the caller now holds the
    /// manager role and should take CR1 (then give the role back).
    pub fn create_retry_fired(&mut self) -> bool {
        self.state.create_retry_due()
    }

    /// TM1, end (pool lock again, after CR1-CR2): the retry's creation
    /// returned; the manager role goes back, and a new idle worker takes
    /// pending work if the pool needs a worker (rule M2).
    pub fn create_retry_done(&mut self, created: bool, fx: &mut impl Effects) {
        self.state.manager_leave();
        if created {
            self.kick(fx);
        }
    }

    /// TM3: the idle-cull timer fired at `now` (rule M12, idle `timeout`).
    /// Returns when to fire again, if a surplus worker is not yet cold.
    pub fn idle_cull_fired(&mut self, now: Duration, timeout: Duration, fx: &mut impl Effects) -> Option<Duration> {
        let cull = self.state.idle_cull(now, timeout);
        for worker in cull.retired {
            fx.push(Effect::Retire(worker));
        }
        cull.rearm
    }

    /// TM2: the mayday timer fired.
    pub fn mayday_fired(&mut self, fx: &mut impl Effects) {
        let (called, rearm) = self.state.mayday_timeout();
        for wq in called {
            if self.pwqs.get(&wq).is_some_and(|slot| slot.rescuer) {
                fx.push(Effect::Mayday(wq));
            }
        }
        if rearm {
            fx.push(Effect::ArmMayday { first: false });
        }
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
