//! CPU hotplug as steps of a pool's section (kernel 2.6.36's
//! `workqueue_cpu_callback` with its trustee; rule M15).
//!
//! HP1. [`PoolSection::cpu_down`] (hotplug lock, then each of the CPU's pool
//!     locks; the executor installs the trustee in the same section): the
//!     pool is disassociated, every worker rogue (out of the running
//!     count), and the pool kicked: items that waited behind a worker
//!     that no longer counts start now.
//! HP2. [`PoolSection::trustee_check`] (pool lock, on the trustee's thread,
//!     each time the pool tells it of a change): once the pool holds
//!     nothing and every worker is idle, the idle workers are retired down
//!     to one ([`Effect::Retire`]) and the trustee is done with the pool.
//! HP3. [`PoolSection::cpu_up`] (hotplug lock, then each pool lock; the
//!     executor releases the trustee in the same section): rebind: the
//!     workers count again, the inactive items stay, and the pool is
//!     kicked.

use super::effect::{Effect, Effects};
use super::section::{Instance, PoolSection};
use super::seeded_in;
use crate::SeededBug;

impl<E: Instance> PoolSection<E> {
    /// HP1: the pool's CPU goes down.
    pub fn cpu_down(&mut self, fx: &mut impl Effects) {
        if let Some(worker) = self.state.disassociate() {
            fx.push(Effect::Wake(worker));
        }
    }

    /// HP2: whether the trustee is done with this pool (it retired the idle
    /// workers beyond one); false: wait for the next change.
    pub fn trustee_check(&mut self, fx: &mut impl Effects) -> bool {
        // Empty, and every worker back on the idle list (one that just
        // finished the last item may not be yet).
        if !self.state.trustee_may_retire(self.holds_nothing()) {
            return false;
        }
        for worker in self.state.trustee_retire() {
            fx.push(Effect::Retire(worker));
        }
        true
    }

    /// HP3: the pool's CPU comes back.
    pub fn cpu_up(&mut self, fx: &mut impl Effects) {
        if seeded_in(self.state.bugs, SeededBug::RebindLosesInactive) {
            // The seeded mistake: rebinding forgets the inactive items
            // (their PENDING stays set, so they are lost for good).
            for slot in self.pwqs.values_mut() {
                for lost in slot.pwq.take_inactive() {
                    let _ = slot.pwq.leave(lost.color, false);
                }
            }
        }
        if let Some(worker) = self.state.rebind() {
            fx.push(Effect::Wake(worker));
        }
    }
}

#[cfg(test)]
#[path = "hotplug_tests.rs"]
mod tests;
