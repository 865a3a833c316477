//! The manager's and the rescuer's decisions as pure transitions on
//! [`PoolState`]: creating workers, culling idle ones, maydays, rescue, and
//! the CPU-hotplug handoff (kernel `maybe_create_worker`,
//! `idle_worker_timeout`, `pool_mayday_timeout`, `rescuer_thread`,
//! `unbind_workers`, `rebind_workers`).
//!
//! # Rules
//! - M11. **Create.** A worker may be created while the pool is not stopping
//!   and has fewer than the configured maximum. A created worker enters
//!   idle (and may ask for the cull timer); a failed creation is counted.
//!   Any failure, including the limit, arms the mayday timer; a platform
//!   refusal also arms the create-retry timer. (F4)
//! - M12. **Cull.** When the cull timer fires at `now`, idle workers beyond
//!   the policy that have been idle for the timeout are retired, coldest
//!   first; if the coldest is not old enough, the timer is re-armed for
//!   when it will be. (C7)
//! - M13. **Mayday.** When the mayday timer fires and the pool needs a worker
//!   it cannot have (`need_to_create_worker`), every workqueue with an
//!   item on the worklist is called (once each, by id); the
//!   timer re-arms while no worker idles. (R1, R6)
//! - M14. **Rescue.** A rescuer takes a workqueue's first item off the
//!   worklist while that workqueue has active items here and the pool
//!   still needs a worker. (R1, R3)
//! - M15. **Hotplug.** Taking the CPU down marks the pool disassociated and
//!   every worker rogue (out of the running count, so every waiting item
//!   gets a worker); bringing it up clears both. The trustee may retire
//!   the pool's idle workers, down to one, once the pool holds nothing
//!   and every worker is idle. (H1, H2)

use super::policy;
use super::pool::{PoolState, WorkerId, WqId, WORKER_ROGUE};
use super::{seeded_in, Queued};
use crate::SeededBug;
use core::time::Duration;

/// What the pool's driver does after a failed creation (rule M11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateFailed {
    /// Arm the mayday timer (it was not armed).
    pub arm_mayday: bool,
    /// Arm the create-retry timer (a platform refusal; it was not armed).
    pub arm_retry: bool,
}

/// What the cull timer does (rule M12).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cull {
    /// Workers retired now (the driver wakes them so they exit).
    pub retired: Vec<WorkerId>,
    /// Re-arm the timer for this deadline.
    pub rearm: Option<Duration>,
}

impl<E: Queued> PoolState<E> {
    /// Rule M11: whether a worker may be created now, with at most `max`.
    pub fn may_create(&self, max: usize) -> bool {
        !self.stopping && self.nr_workers < max
    }

    /// Rule M11: a creation failed; `refused` says the platform refused the
    /// thread (rather than the limit).
    pub fn worker_create_failed(&mut self, refused: bool) -> CreateFailed {
        if refused {
            self.create_failures += 1;
        }
        let arm_retry = refused && !self.create_retry_armed && !self.stopping;
        self.create_retry_armed |= arm_retry;
        let arm_mayday = !self.mayday_timer_armed && !self.stopping;
        self.mayday_timer_armed |= arm_mayday;
        CreateFailed { arm_mayday, arm_retry }
    }

    /// Rule M11: the create-retry timer fired. Returns whether to try now
    /// (the pool still has no idle worker and nobody manages); the caller
    /// then holds the manager role.
    pub fn create_retry_due(&mut self) -> bool {
        self.create_retry_armed = false;
        !self.stopping && self.idle.is_empty() && self.manager_enter()
    }

    /// Rule M12: the cull timer fired at `now`.
    pub fn idle_cull(&mut self, now: Duration, timeout: Duration) -> Cull {
        self.idle_timer_armed = false;
        let mut cull = Cull::default();
        while policy::too_many_workers(self.counts()) {
            let Some(&coldest) = self.idle.back() else { break };
            let expires = self.workers.get(&coldest).map_or(now, |w| w.last_active.saturating_add(timeout));
            if expires > now {
                self.idle_timer_armed = true;
                cull.rearm = Some(expires);
                break;
            }
            if self.retire_worker(coldest) {
                cull.retired.push(coldest);
            }
        }
        cull
    }

    /// Rule M13: the mayday timer fired. Returns the workqueues to call (the
    /// driver calls those with a rescuer) and whether to re-arm.
    pub fn mayday_timeout(&mut self) -> (Vec<WqId>, bool) {
        self.mayday_timer_armed = false;
        if self.stopping {
            return (Vec::new(), false);
        }
        let mut called = Vec::new();
        let no_mayday = seeded_in(self.bugs, SeededBug::NoMayday);
        if policy::need_to_create_worker(self.counts()) && !no_mayday {
            called = self.worklist.iter().map(Queued::wq).collect();
            called.sort_unstable();
            called.dedup();
        }
        let rearm = self.idle.is_empty();
        self.mayday_timer_armed = rearm;
        (called, rearm)
    }

    /// Rule M14: whether a rescuer should take another item of `wq`, whose
    /// pool-workqueue here has `nr_active` active items.
    pub fn needs_rescue(&self, nr_active: usize) -> bool {
        nr_active > 0 && policy::need_to_create_worker(self.counts())
    }

    /// Rule M14: takes `wq`'s first item off the worklist for a rescuer.
    pub fn take_for_rescue(&mut self, wq: WqId) -> Option<E> {
        let pos = self.worklist.iter().position(|e| e.wq() == wq)?;
        self.worklist.remove(pos)
    }

    /// Rule M14: a rescuer leaves the pool. Completions of rescued items may
    /// have activated items without waking anyone (rule M8 reaches them only
    /// from a working worker), so the pool is kicked: the worker to wake.
    pub fn rescuer_leave(&mut self) -> Option<WorkerId> {
        if seeded_in(self.bugs, SeededBug::RescuerLeavesWithoutWake) {
            return None;
        }
        self.kick()
    }

    /// Rule M15: the pool's CPU goes down. Returns the worker to wake (items
    /// that waited behind a running worker may start now).
    pub fn disassociate(&mut self) -> Option<WorkerId> {
        self.disassociated = true;
        self.pin_generation += 1;
        let busy_stay_bound = seeded_in(self.bugs, SeededBug::OfflinePoolCountsRunning);
        let ids: Vec<_> = self.workers.keys().copied().collect();
        for id in ids {
            let busy = self.workers.get(&id).is_some_and(|w| w.current.is_some());
            if !(busy && busy_stay_bound) {
                self.update_worker(id, |w| w.flags |= WORKER_ROGUE);
            }
        }
        if seeded_in(self.bugs, SeededBug::TrusteeSkipsItem) {
            return None;
        }
        self.kick()
    }

    /// Rule M15: the pool's CPU comes back. Returns the worker to wake.
    pub fn rebind(&mut self) -> Option<WorkerId> {
        self.disassociated = false;
        self.pin_generation += 1;
        let ids: Vec<_> = self.workers.keys().copied().collect();
        for id in ids {
            self.update_worker(id, |w| w.flags &= !WORKER_ROGUE);
        }
        self.kick()
    }

    /// Rule M15: whether the trustee may retire idle workers: `holds_nothing`
    /// (no item waiting, inactive, deferred or running; the driver knows
    /// the pool-workqueues) and every worker is idle.
    pub fn trustee_may_retire(&self, holds_nothing: bool) -> bool {
        holds_nothing && self.worklist.is_empty() && self.idle.len() == self.nr_workers
    }

    /// Rule M15: the trustee retires idle workers down to one, coldest first.
    pub fn trustee_retire(&mut self) -> Vec<WorkerId> {
        let mut retired = Vec::new();
        while self.idle.len() > 1 {
            let Some(&coldest) = self.idle.back() else { break };
            if self.retire_worker(coldest) {
                retired.push(coldest);
            }
        }
        retired
    }
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;
