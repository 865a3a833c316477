//! A workqueue's life: delayed-item and in-flight accounting, drain and
//! destroy, and the orphaned workqueue (last handle dropped on one of the
//! system's own threads) finalized once it is empty.
//!
//! # Delayed items and destroy
//!
//! A delayed queueing is accepted long before its item reaches a
//! pool-workqueue (when the timer fires), so destroy must see it in
//! between, or it would take the pool-workqueues away under an item it
//! already accepted:
//! 1. **Accept.** Under the delayed lock (D), the call checks that the
//!    workqueue accepts work and that the set is not closed, and counts
//!    itself in `accepting` ([`DelayedAcceptance`]). Only then does it
//!    claim PENDING (and `mod_delayed` take a queued instance away), so a
//!    refused call has changed nothing.
//! 2. **Arm.** Under D again, the acceptance becomes an armed item (or,
//!    for `mod_delayed` without delay, the item is inserted while the
//!    acceptance still counts; or the call gives up, the item already
//!    pending). Drain and destroy wait while anything is armed or
//!    accepting.
//! 3. **Close.** Destroy (and finalization of an orphan) takes the
//!    pool-workqueues away only under D, with nothing armed or accepting,
//!    and marks the set closed in the same critical section. A call that
//!    comes later finds it closed (or `dying`) and is refused with
//!    `Destroyed`; a call that came earlier was counted and waited for.
//!
//! Lock order: D → pool lock → timer lock (step 3 holds D while it takes
//! each pool lock; nothing takes D under a pool lock).

use crate::blocking::blocking_on;
use crate::config::seeded;
use crate::error::QueueError;
use crate::flush::FlushWorkqueue;
use crate::platform::{Arc, Platform, Std};
use crate::seeded::SeededBug;
use crate::shared::{StoppedRescuer, SystemShared, Work, WqShared};
use crate::wakers::PendingWakes;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

/// Evidence that a workqueue accepted a delayed queueing and that drain,
/// destroy and finalization wait for it (step 1). Consumed by arming the
/// item; dropped, it withdraws (the call gave up, or inserted its item).
pub(crate) struct DelayedAcceptance<'a, P: Platform> {
    wq: &'a Arc<WqShared<P>>,
    /// Counted in `accepting` (always, except under the seeded bug
    /// `DelayedAcceptedUncounted`).
    counted: bool,
}

impl<P: Platform> DelayedAcceptance<'_, P> {
    /// Step 2: records `work`, whose PENDING the caller owns, as armed.
    pub(crate) fn arm(mut self, work: &Work<P>) {
        let mut delayed = self.wq.delayed.lock();
        if core::mem::take(&mut self.counted) {
            delayed.arm(work.key(), work.clone());
        } else {
            delayed.arm_uncounted(work.key(), work.clone());
        }
    }
}

impl<P: Platform> Drop for DelayedAcceptance<'_, P> {
    fn drop(&mut self) {
        if self.counted {
            let mut delayed = self.wq.delayed.lock();
            let wakes = if delayed.withdraw() { self.wq.delayed_emptied() } else { PendingWakes::none() };
            drop(delayed);
            drop(wakes.wake());
        }
    }
}

impl<P: Platform> WqShared<P> {
    /// Step 1: accepts a delayed queueing of `item` (handed back in the
    /// error) or refuses it as [`WqShared::check_accepting`] would, and as
    /// `Destroyed` once the set is closed.
    pub(crate) fn accept_delayed<W: Clone>(
        self: &Arc<Self>,
        item: &W,
    ) -> Result<DelayedAcceptance<'_, P>, QueueError<W>> {
        if seeded(&self.system.config, SeededBug::DelayedAcceptedUncounted) {
            self.check_accepting(item)?;
            return Ok(DelayedAcceptance { wq: self, counted: false });
        }
        // Outside D: it reads the worker's own slot.
        let chained = self.is_chained();
        let mut delayed = self.delayed.lock();
        if delayed.is_closed() {
            return Err(QueueError::Destroyed { work: item.clone(), workqueue: self.name.clone() });
        }
        self.check_accepting_with(item, || chained)?;
        let accepted = delayed.accept();
        debug_assert!(accepted, "the set was open a moment ago");
        Ok(DelayedAcceptance { wq: self, counted: true })
    }

    /// Delayed item `work`'s timer fired (and it was queued) or was
    /// cancelled.
    pub(crate) fn delayed_done(self: &Arc<Self>, work: &Work<P>) {
        let mut delayed = self.delayed.lock();
        let (removed, emptied) = delayed.done(work.key());
        let wakes = if emptied { self.delayed_emptied() } else { PendingWakes::none() };
        drop(delayed);
        drop(wakes.wake());
        // Not the last reference: the caller holds the item.
        drop(removed);
    }

    /// The delayed set became empty: wake drainers, and finalize an
    /// orphan. Called under D (D → T: the finalize event is armed here).
    /// The async drains' wakers come back, to be woken once D is released.
    fn delayed_emptied(self: &Arc<Self>) -> PendingWakes {
        self.delayed_cv.notify_all();
        self.schedule_finalize_if_orphaned();
        self.delayed_wakers.lock().take()
    }

    /// The delayed items armed now.
    pub(crate) fn armed_delayed(&self) -> Vec<Work<P>> {
        self.delayed.lock().armed().cloned().collect()
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
    /// item armed or being accepted, no instance in flight. Closes its
    /// delayed set, removes its pool-workqueues, stops its rescuer and
    /// takes it off the system's orphan list. Never waits: on one of the
    /// system's threads the rescuer's thread is handed over for joining
    /// once it has exited (`SystemShared::hand_over`), elsewhere it is
    /// joined here.
    pub(crate) fn finalize_orphan(self: &Arc<Self>) {
        // Every inbox first, `dying` being set: an item a queueing left
        // before it could see `dying` is counted in `inflight` once
        // spliced, and one that sees it leaves nothing (`inbox.rs`).
        for pool in &self.pools {
            pool.lock().splice_all();
        }
        {
            // Delayed first: a firing timer inserts (inflight up) before it
            // lowers `delayed`, so reading in this order cannot miss it.
            // Closed in the same section (step 3 of "Delayed items and
            // destroy"): with `dying` set and nothing of ours running,
            // nothing can be accepted any more anyway.
            let mut delayed = self.delayed.lock();
            if !delayed.close_if(self.inflight.load(Ordering::Acquire) == 0) {
                return;
            }
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
            let removed = pool.lock().remove_pwq(self.id);
            debug_assert!(
                removed.as_ref().is_none_or(|(pwq, _)| pwq.is_empty()),
                "finalized a non-empty pool-workqueue"
            );
            drop(removed);
        }
        let on_engine = crate::blocking::on_engine_thread::<P>(&self.system);
        if let Some(rescuer) = &self.rescuer {
            if on_engine {
                if let Some(thread) = rescuer.stop_without_join() {
                    self.system.hand_over(StoppedRescuer { thread, rescuer: rescuer.clone() });
                }
            } else {
                rescuer.stop();
            }
        }
        if !on_engine {
            self.system.join_handed_over();
        }
        self.draining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits until no delayed item of this workqueue is armed or being
    /// accepted.
    pub(crate) fn wait_delayed(&self) {
        let mut delayed = self.delayed.lock();
        while !delayed.is_empty() {
            delayed = self.delayed_cv.wait(delayed);
        }
    }

    /// Whether every pool-workqueue is empty and no delayed item is armed
    /// or being accepted.
    pub(crate) fn is_empty(&self) -> bool {
        if !self.delayed.lock().is_empty() {
            return false;
        }
        self.pools.iter().all(|pool| pool.lock().machine.pwq_is_empty(self.id))
    }

    /// Step 3 of "Delayed items and destroy": under D, if no delayed item
    /// is armed or being accepted, takes every empty pool-workqueue off its
    /// pool; if all are gone, closes the delayed set and returns true.
    fn close_if_empty(&self) -> bool {
        let mut delayed = self.delayed.lock();
        if !delayed.is_empty() {
            return false;
        }
        let mut all_removed = true;
        for pool in &self.pools {
            let mut guard = pool.lock();
            guard.splice_all();
            match guard.machine.remove_pwq_if_empty(self.id) {
                Ok(Some(_)) => drop(guard.wqs.remove(&self.id)),
                Ok(None) => {}
                Err(()) => all_removed = false,
            }
        }
        delayed.close_if(all_removed)
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

    /// `drain_workqueue`'s async form, without the self-check: counted as a
    /// drainer now (outside queueing is refused from the call on) and, if
    /// no delayed item is armed, its first flush begun now.
    pub(crate) fn drain_async(self: &Arc<Self>) -> DrainWorkqueue<P> {
        self.draining.fetch_add(1, Ordering::AcqRel);
        let mut drain = DrainWorkqueue { wq: self.clone(), stage: DrainStage::Delayed, slot: None };
        if self.delayed.lock().is_empty() {
            drain.stage = DrainStage::Flush(self.flush_async());
        }
        drain
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
        // refused, handing the item back. Delayed queueings are settled by
        // the delayed set instead (step 3 of "Delayed items and destroy";
        // `destroy_racing_queue_delayed`, `destroy_racing_mod_delayed`).
        loop {
            self.drain();
            if self.close_if_empty() {
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

/// Where an async drain is (the blocking drain's loop: wait for the
/// delayed set, flush, check empty).
enum DrainStage<P: Platform> {
    /// Waiting until no delayed item is armed or being accepted.
    Delayed,
    /// Flushing.
    Flush(FlushWorkqueue<P>),
    /// Empty: the drain is over (no longer counted).
    Done,
}

/// The future of [`Workqueue::drain_async`] (kernel `drain_workqueue`,
/// without blocking): ready once the workqueue is empty, delayed items
/// included.
///
/// The drain began at the call: from then on only the workqueue's own
/// items may queue onto it (chained queueing), until the future is ready
/// or dropped. It runs the blocking drain's loop (wait for the armed
/// delayed items, flush, check empty; again while chained queueing added
/// items), waiting by registering the task's waker.
///
/// Dropping it before it is ready ends the drain (queueing is accepted
/// again, unless another drain or a destroy is in progress); a flush it had
/// begun is given up as a dropped [`FlushWorkqueue`] is.
///
/// [`Workqueue::drain_async`]: crate::Workqueue::drain_async
#[must_use = "the drain began at the call; await the future to wait for it"]
pub struct DrainWorkqueue<P: Platform = Std> {
    wq: Arc<WqShared<P>>,
    stage: DrainStage<P>,
    /// The task's entry in the delayed set's waker list.
    slot: Option<u64>,
}

impl<P: Platform> fmt::Debug for DrainWorkqueue<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            DrainStage::Delayed => "delayed",
            DrainStage::Flush(_) => "flush",
            DrainStage::Done => "done",
        };
        f.debug_struct("DrainWorkqueue").field("workqueue", &self.wq.name).field("stage", &stage).finish()
    }
}

impl<P: Platform> DrainWorkqueue<P> {
    /// One poll of the drain loop. Registers `cx`'s waker (under D, or
    /// through the flush) before it returns `Pending`.
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.stage {
                DrainStage::Done => return Poll::Ready(()),
                DrainStage::Delayed => {
                    let delayed = self.wq.delayed.lock();
                    if !delayed.is_empty() {
                        self.wq.delayed_wakers.lock().register(&mut self.slot, cx.waker());
                        return Poll::Pending;
                    }
                    drop(delayed);
                    self.stage = DrainStage::Flush(self.wq.flush_async());
                }
                DrainStage::Flush(flush) => {
                    if Pin::new(flush).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if self.wq.is_empty() {
                        self.stage = DrainStage::Done;
                        self.wq.draining.fetch_sub(1, Ordering::AcqRel);
                    } else {
                        self.stage = DrainStage::Delayed;
                    }
                }
            }
        }
    }

    /// Takes the task's entry out of the delayed set's waker list.
    fn unregister(&mut self) -> Option<Waker> {
        self.slot?;
        let removed = self.wq.delayed_wakers.lock().remove(&mut self.slot);
        removed
    }
}

impl<P: Platform> Future for DrainWorkqueue<P> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let ready = this.step(cx);
        if ready.is_ready() {
            drop(this.unregister());
        }
        ready
    }
}

impl<P: Platform> Drop for DrainWorkqueue<P> {
    /// Ends the drain if it is not over; a flush begun is dropped with it.
    fn drop(&mut self) {
        drop(self.unregister());
        if !matches!(self.stage, DrainStage::Done) {
            self.stage = DrainStage::Done;
            self.wq.draining.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// How soon the timer looks again for handed-over rescuer threads that
/// have not exited yet (they exit as soon as their mayday list is empty,
/// which for a finalized workqueue is at once).
const REAP_RETRY: Duration = Duration::from_millis(1);

impl<P: Platform> SystemShared<P> {
    /// A thread that must not wait (one of the system's own) stopped a
    /// rescuer: its thread is joined by a timer event once it has exited,
    /// so that such threads never pile up on a system that lives forever.
    pub(crate) fn hand_over(self: &Arc<Self>, stopped: StoppedRescuer<P>) {
        let mut reap = self.reap.lock();
        reap.threads.push(stopped);
        if !core::mem::replace(&mut reap.armed, true) {
            self.arm_reap();
        }
    }

    fn arm_reap(self: &Arc<Self>) {
        let deadline = crate::timer::deadline_after(self.platform.now(), REAP_RETRY);
        let system = self.clone();
        self.timers.arm_new(deadline, Box::new(move || system.reap_exited()));
    }

    /// Timer: joins the handed-over threads that have exited. Such a join
    /// waits for nothing (the thread is past its last line of engine code),
    /// so the timer thread may do it; the others are tried again later.
    fn reap_exited(self: &Arc<Self>) {
        let exited: Vec<_> = {
            let mut reap = self.reap.lock();
            let (exited, running) =
                core::mem::take(&mut reap.threads).into_iter().partition(|stopped| stopped.rescuer.has_exited());
            reap.threads = running;
            reap.armed = !reap.threads.is_empty();
            if reap.armed {
                self.arm_reap();
            }
            exited
        };
        for stopped in exited {
            P::join(stopped.thread);
        }
    }

    /// Joins every handed-over thread, waiting for those still running.
    /// Only for threads that may wait (not the system's own).
    pub(crate) fn join_handed_over(&self) {
        let handed_over = core::mem::take(&mut self.reap.lock().threads);
        for stopped in handed_over {
            P::join(stopped.thread);
        }
    }
}
