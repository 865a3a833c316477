//! A workqueue's end: its delayed set, drain and destroy (kernel
//! `drain_workqueue`, `destroy_workqueue`), as pure state and steps.
//!
//! # Rules
//! - M30. **Accepted delayed queueing.** A delayed queueing is accepted (QU1
//!   holds and the set is open) and counted *before* it claims PENDING,
//!   and stays counted until its item is armed, inserted or given up; an
//!   armed item stays in the set until its timer fires (and it is
//!   inserted) or a cancel takes it. Armings are counted per item: a
//!   fired item, inserted before its firing leaves the set, may run and
//!   be armed again meanwhile, and stays in the set for the new timer. Drain and destroy wait while the
//!   set holds anything, so an accepted call is never missed. (Q6)
//! - M31. **Close.** Destroy (or the finalization of an orphaned workqueue)
//!   takes the pool-workqueues away only while the set is empty and
//!   every pool-workqueue is empty, and closes the set in the same
//!   critical section: later delayed queueings are refused. (Q6)
//!
//! # Steps (locks in order)
//! - **Delayed queueing**: DQ1 [`DelayedSet::accept`] (delayed lock D) →
//!   claim PENDING (item lock) → DQ2 [`DelayedSet::arm`] (D) or
//!   [`DelayedSet::withdraw`] (D); the timer firing: insert as queueing's
//!   QU5, then DQ3 [`DelayedSet::done`] (D; a cancel that takes the timer
//!   does the same).
//! - **Drain**: DR1 `draining` up (refusing outside queueing, QU1); then
//!   until empty: DR2 wait until the set is empty (D), DR3 `flush_workqueue`
//!   (FW1-FW6), DR4 the workqueue is empty (D, then each pool lock:
//!   [`PoolSection::pwq_is_empty`]); DR5 `draining` down.
//! - **Destroy**: DS1 `dying` set, once (the workqueue's control lock);
//!   then until closed: drain (DR1-DR5), DS2 D held, then each pool lock:
//!   [`PoolSection::remove_pwq_if_empty`], and [`DelayedSet::close_if`]
//!   all were removed (rule M31); DS3 the rescuer is stopped; DS4 marked
//!   destroyed (control lock). A queueing that was accepted before DS1
//!   and inserts after a drain found the workqueue empty keeps its
//!   pool-workqueue in DS2, so the loop drains again; one that inserts
//!   after DS2 finds no pool-workqueue and is refused.

use super::pool::WqId;
use super::pwq::Pwq;
use super::section::{Instance, PoolSection};
use std::collections::BTreeMap;

/// A workqueue's delayed items (rules M30 and M31), by item key. `W` is the
/// executor's item handle. The engine keeps it under the delayed lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DelayedSet<W> {
    /// Items whose timer has not fired yet or whose firing has not ended
    /// (DQ3), each with the number of such armings: a fired item is
    /// inserted before its DQ3 (so that destroy never finds it in neither
    /// place), and may run and be armed again in between. It then counts
    /// once per firing still ending (the timer thread's and a `flush`'s
    /// may both be) and once for its new timer.
    armed: BTreeMap<usize, (W, usize)>,
    /// Delayed queueings accepted and not yet armed, inserted or given up.
    accepting: usize,
    /// The pool-workqueues are gone: nothing is accepted any more.
    closed: bool,
}

impl<W> Default for DelayedSet<W> {
    fn default() -> Self {
        DelayedSet { armed: BTreeMap::new(), accepting: 0, closed: false }
    }
}

impl<W> DelayedSet<W> {
    /// DQ1 (rule M30): a delayed queueing that QU1 accepted asks the set; false
    /// once the set is closed (the workqueue is destroyed).
    pub fn accept(&mut self) -> bool {
        if self.closed {
            return false;
        }
        self.accepting += 1;
        true
    }

    /// DQ2: an accepted queueing armed item `key`'s timer.
    pub fn arm(&mut self, key: usize, item: W) {
        debug_assert!(self.accepting > 0, "armed without being accepted");
        self.accepting = self.accepting.saturating_sub(1);
        self.arm_uncounted(key, item);
    }

    /// DQ2 for an item armed without acceptance (the seeded bug
    /// `DelayedAcceptedUncounted` only).
    pub fn arm_uncounted(&mut self, key: usize, item: W) {
        self.armed.entry(key).or_insert((item, 0)).1 += 1;
    }

    /// DQ2: an accepted queueing inserted its item at once or gave up.
    /// True if the set is empty now (drainers and an orphan's
    /// finalization wait for that).
    pub fn withdraw(&mut self) -> bool {
        debug_assert!(self.accepting > 0, "withdrew without being accepted");
        self.accepting = self.accepting.saturating_sub(1);
        self.is_empty()
    }

    /// DQ3: item `key`'s timer fired (and it was inserted) or was cancelled.
    /// The item once its last arming ended, and whether the set is empty
    /// now.
    pub fn done(&mut self, key: usize) -> (Option<W>, bool) {
        let removed = match self.armed.get_mut(&key) {
            Some((_, armings)) if *armings > 1 => {
                *armings -= 1;
                None
            }
            Some(_) => self.armed.remove(&key).map(|(item, _)| item),
            None => {
                debug_assert!(false, "a delayed item finished that was not armed");
                None
            }
        };
        (removed, self.is_empty())
    }

    /// Nothing armed and nothing being accepted.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty() && self.accepting == 0
    }

    /// Whether the set is closed (rule M31).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The items armed now.
    pub fn armed(&self) -> impl Iterator<Item = &W> {
        self.armed.values().map(|(item, _)| item)
    }

    /// Rule M31 (DS2, or an orphan's finalization): closes the set if it is
    /// empty and `all_removed` (every pool-workqueue is gone). Returns
    /// whether it is closed.
    pub fn close_if(&mut self, all_removed: bool) -> bool {
        if self.is_empty() && all_removed {
            self.closed = true;
        }
        self.closed
    }
}

impl<E: Instance> PoolSection<E> {
    /// DR4 (pool lock): whether `wq` has nothing in flight here (or no
    /// pool-workqueue at all).
    pub fn pwq_is_empty(&self, wq: WqId) -> bool {
        self.pwq(wq).is_none_or(Pwq::is_empty)
    }

    /// DS2 (delayed lock, then this pool lock): takes `wq`'s pool-workqueue
    /// away if nothing is in flight on it (rule M31). `Err(())` if it still
    /// holds something (the caller drains again); `Ok(None)` if it was gone.
    #[allow(clippy::result_unit_err)]
    pub fn remove_pwq_if_empty(&mut self, wq: WqId) -> Result<Option<Pwq<E::Item>>, ()> {
        if !self.pwq_is_empty(wq) {
            return Err(());
        }
        Ok(self.remove_pwq(wq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_queueing_keeps_the_set_open_until_it_is_armed_and_done() {
        let mut set = DelayedSet::default();
        assert!(set.accept());
        assert!(!set.close_if(true), "an accepted queueing is counted: destroy must wait");
        set.arm(7, "item");
        assert!(!set.is_empty());
        assert!(!set.close_if(true), "an armed item keeps the set open");
        assert_eq!(set.done(7), (Some("item"), true));
        assert!(!set.close_if(false), "a pool-workqueue still holds work");
        assert!(set.close_if(true));
        assert!(!set.accept(), "closed: refused");
    }

    #[test]
    fn an_item_armed_again_before_its_firing_ended_stays_in_the_set() {
        // The timer fired and inserted the item; it ran, and was armed
        // again before the firing's DQ3.
        let mut set = DelayedSet::default();
        assert!(set.accept());
        set.arm(7, "item");
        assert!(set.accept());
        set.arm(7, "item");
        assert_eq!(set.armed().count(), 1, "one item");
        assert_eq!(set.done(7), (None, false), "the new timer is still armed: destroy must wait");
        assert!(!set.close_if(true));
        assert_eq!(set.done(7), (Some("item"), true));
    }

    #[test]
    fn a_withdrawn_acceptance_empties_the_set() {
        let mut set = DelayedSet::<()>::default();
        assert!(set.accept() && set.accept());
        assert!(!set.withdraw());
        assert!(set.withdraw());
        assert_eq!(set.armed().count(), 0);
        assert!(!set.is_closed());
    }
}
