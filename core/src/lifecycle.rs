//! A workqueue's life: delayed-item and in-flight accounting, drain and
//! destroy, and the orphaned workqueue (last handle dropped on one of the
//! system's own threads) finalized once it is empty.

use crate::blocking::blocking_on;
use crate::platform::{Arc, Platform};
use crate::shared::{PwqState, Work, WqShared};
use core::sync::atomic::Ordering;

impl<P: Platform> WqShared<P> {
    /// Delayed item `work` was armed.
    pub(crate) fn delayed_armed(&self, work: &Work<P>) {
        let previous = self.delayed.lock().insert(work.key(), work.clone());
        debug_assert!(previous.is_none(), "a delayed item armed twice");
    }

    /// Delayed item `work`'s timer fired (and it was queued) or was
    /// cancelled. Lock order D → T: the finalize event is armed under D.
    pub(crate) fn delayed_done(self: &Arc<Self>, work: &Work<P>) {
        let mut delayed = self.delayed.lock();
        let removed = delayed.remove(&work.key());
        debug_assert!(removed.is_some(), "a delayed item finished that was not armed");
        if delayed.is_empty() {
            self.delayed_cv.notify_all();
            self.schedule_finalize_if_orphaned();
        }
        drop(delayed);
        // Not the last reference: the caller holds the item.
        drop(removed);
    }

    /// The delayed items armed now.
    pub(crate) fn armed_delayed(&self) -> Vec<Work<P>> {
        self.delayed.lock().values().cloned().collect()
    }

    /// An instance left one of this workqueue's pool-workqueues. Called
    /// under that pool's lock.
    pub(crate) fn instance_left(self: &Arc<Self>) {
        if self.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.schedule_finalize_if_orphaned();
        }
    }

    /// If orphaned, asks the timer service to try [`WqShared::finalize_orphan`]
    /// now (a timer event, because the callers hold pool or delayed locks
    /// and may run on any thread).
    pub(crate) fn schedule_finalize_if_orphaned(self: &Arc<Self>) {
        if self.orphaned.load(Ordering::Acquire) != 0 {
            let now = self.system.platform.now();
            let wq = self.clone();
            self.system.timers.arm_new(now, Box::new(move || wq.finalize_orphan()));
        }
    }

    /// The last handle was dropped on one of the system's own threads (a
    /// work item, the `Drop` of an item's captured state, a timer): refuse
    /// new work now and finalize once empty, without waiting here.
    pub(crate) fn orphan(self: &Arc<Self>) {
        if self.control.lock().destroyed {
            return; // destroyed explicitly already: nothing left to finalize
        }
        self.draining.fetch_add(1, Ordering::AcqRel);
        self.dying.store(1, Ordering::Release);
        self.system.orphans.lock().push(self.clone());
        self.orphaned.store(1, Ordering::Release);
        self.schedule_finalize_if_orphaned();
    }

    /// Finalizes an orphaned workqueue if nothing of it is left: no delayed
    /// item armed, no instance in flight. Removes its pool-workqueues, stops
    /// its rescuer and takes it off the system's orphan list. Never waits:
    /// on one of the system's threads the rescuer's thread is handed to the
    /// system to join (it has exited or is about to), elsewhere it is
    /// joined here.
    pub(crate) fn finalize_orphan(self: &Arc<Self>) {
        // Delayed first: a firing timer inserts (inflight up) before it
        // lowers `delayed`, so reading in this order cannot miss it.
        if !self.delayed.lock().is_empty() || self.inflight.load(Ordering::Acquire) > 0 {
            return;
        }
        let first = {
            let mut control = self.control.lock();
            !core::mem::replace(&mut control.destroyed, true)
        };
        if first {
            self.finalize_now();
        }
        let mine = {
            let mut orphans = self.system.orphans.lock();
            orphans.iter().position(|wq| Arc::ptr_eq(wq, self)).map(|pos| orphans.swap_remove(pos))
        };
        drop(mine);
    }

    /// The body of [`WqShared::finalize_orphan`], run once.
    fn finalize_now(&self) {
        for pool in &self.pools {
            let removed = pool.locked.lock().pwqs.remove(&self.id);
            debug_assert!(removed.as_ref().is_none_or(PwqState::is_empty), "finalized a non-empty pool-workqueue");
            drop(removed);
        }
        let on_engine = crate::blocking::on_engine_thread::<P>(&self.system);
        if let Some(rescuer) = &self.rescuer {
            if on_engine {
                if let Some(thread) = rescuer.stop_without_join() {
                    self.system.reap.lock().push(thread);
                }
            } else {
                rescuer.stop();
            }
        }
        if !on_engine {
            // Threads handed over earlier by threads that must not wait.
            let reaped = core::mem::take(&mut *self.system.reap.lock());
            for thread in reaped {
                P::join(thread);
            }
        }
        self.draining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits until no delayed item of this workqueue is armed.
    pub(crate) fn wait_delayed(&self) {
        let mut delayed = self.delayed.lock();
        while !delayed.is_empty() {
            delayed = self.delayed_cv.wait(delayed);
        }
    }

    /// Whether every pool-workqueue is empty and no delayed item is armed.
    pub(crate) fn is_empty(&self) -> bool {
        if !self.delayed.lock().is_empty() {
            return false;
        }
        self.pools.iter().all(|pool| {
            let guard = pool.locked.lock();
            guard.pwqs.get(&self.id).is_none_or(PwqState::is_empty)
        })
    }

    /// `drain_workqueue` without the self-check.
    pub(crate) fn drain(&self) {
        self.draining.fetch_add(1, Ordering::AcqRel);
        loop {
            blocking_on::<P, _>(|| self.wait_delayed());
            self.flush.flush(self);
            if self.is_empty() {
                break;
            }
        }
        self.draining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Destroys the workqueue: refuse new work, drain, and take the
    /// pool-workqueues off the pools. Idempotent.
    pub(crate) fn destroy(&self) {
        let mut control = self.control.lock();
        if control.destroyed {
            return;
        }
        // Outside queueing is refused from here on; the drain lets chained
        // queueing finish, and afterwards nothing of ours runs, so nothing
        // can chain any more.
        self.draining.fetch_add(1, Ordering::AcqRel);
        self.dying.store(1, Ordering::Release);
        drop(control);
        // A queueing accepted just before `dying` was set may still insert
        // after a drain found the workqueue empty (found by the loom model
        // `destroy_racing_queue`). So each pool-workqueue is removed only
        // if it is empty under its pool lock; otherwise drain again. An
        // insertion after the removal finds no pool-workqueue and is
        // refused, handing the item back.
        loop {
            self.drain();
            let mut all_removed = true;
            for pool in &self.pools {
                let mut guard = pool.locked.lock();
                match guard.pwqs.get(&self.id) {
                    Some(pwq) if !pwq.is_empty() => all_removed = false,
                    Some(_) => {
                        guard.pwqs.remove(&self.id);
                    }
                    None => {}
                }
            }
            if all_removed {
                break;
            }
        }
        // Nothing of ours is queued any more, so no mayday can be sent for
        // us; the rescuer empties its list and exits.
        if let Some(rescuer) = &self.rescuer {
            rescuer.stop();
        }
        control = self.control.lock();
        control.destroyed = true;
        self.draining.fetch_sub(1, Ordering::AcqRel);
    }
}
