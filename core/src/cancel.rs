//! Cancelling: taking PENDING away from wherever the item is (kernel
//! `try_to_grab_pending`), and `cancel` / `cancel_sync` on top of it.
//!
//! # Grabbing PENDING
//!
//! 1. Lock the item. If it is not pending, take PENDING: done, it was idle.
//! 2. If it waits for its timer, take PENDING and drop the timer; a timer
//!    that fires later finds a stale id and does nothing.
//! 3. If it is queued on pool X: unlock the item, lock X, lock the item
//!    again, splice X's inbox (a queueing may have left the item there
//!    after X's section began) and check it is still queued on X (it may
//!    have started running or moved meanwhile). If so, take it off X's lists (worklist, a
//!    worker's scheduled list, or an inactive list), give back its
//!    in-flight colour and, if it was active, its active slot.
//! 4. If someone else owns PENDING transiently (a queuer mid-insert), yield
//!    and retry; if `cancel_sync` owns it, wait for that to finish.
//!
//! Removing an *inactive* item must not free an active slot: it never held
//! one. (The kernel decremented `nr_active` here until 2010.)

use crate::blocking::{blocking_on, current_work_on};
use crate::config::seeded;
use crate::error::WaitError;
use crate::machine::{queue, work};
use crate::platform::{Arc, Platform, Std};
use crate::seeded::SeededBug;
use crate::shared::{Location, Pool, Work, WorkState};
use crate::wakers::PendingWakes;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll, Waker};

/// Outcome of one grab attempt.
enum Grab {
    /// The caller owns PENDING now; `was_pending` says whether it took it
    /// from a queued or delayed instance.
    Owned { was_pending: bool },
    /// Someone owns PENDING transiently; retry.
    Busy,
    /// `cancel_sync` owns PENDING; wait for it.
    Cancelling,
}

/// One attempt at grabbing PENDING (machine rule M28); on success the
/// item's location becomes `Owned` or, for `cancelling`, `Cancelling`.
fn try_grab<P: Platform>(work: &Work<P>, cancelling: bool) -> Grab {
    let first = work.inner.state.lock().grab(cancelling);
    match first {
        work::Grab::Owned { was_pending, timer } => {
            if let Some((timer, deadline, wq)) = timer {
                wq.system.timers.cancel(deadline, timer);
                wq.delayed_done(work);
            }
            Grab::Owned { was_pending }
        }
        work::Grab::Busy => Grab::Busy,
        work::Grab::Cancelling => Grab::Cancelling,
        work::Grab::Queued(pool) => {
            let mut guard = pool.lock();
            guard.begin(crate::machine::trace::StepId::Cancel);
            let mut state = work.inner.state.lock();
            // Splice again under the item's lock: a queueing may have left
            // the item in the inbox after this section's first splice (it
            // needs only the item's lock), and holding the item's lock now,
            // any such leave is done (`inbox.rs`).
            if !crate::machine::seeded_in(guard.bugs, crate::SeededBug::CancelSkipsResplice) {
                guard.splice();
            }
            let key = work.key();
            // Machine: still queued here? Then PENDING and the instance
            // are taken (the pool kicked for what that activated).
            let here = |p: &Arc<Pool<P>>| Arc::ptr_eq(p, &pool);
            if !guard.step(|m, fx| queue::cancel_grab_queued(m, &mut state, key, cancelling, here, fx)).result {
                return Grab::Busy; // it started running or moved meanwhile
            }
            work.inner.queued_hint.store(0, Ordering::Relaxed);
            guard.tracer.record(|pool| crate::trace::Event::Cancelled { item: key, pool });
            let wakes = if state.waiters() > 0 { work.notify_waiters() } else { PendingWakes::none() };
            drop(state);
            drop(guard);
            // Async waiters' wakers run with no lock held.
            drop(wakes.wake());
            Grab::Owned { was_pending: true }
        }
    }
}

/// Grabs PENDING, retrying through transient owners. Returns `None` if a
/// `cancel_sync` owns it and `wait_for_cancel` is false.
pub(crate) fn grab<P: Platform>(work: &Work<P>, cancelling: bool, wait_for_cancel: bool) -> Option<bool> {
    loop {
        match try_grab(work, cancelling) {
            Grab::Owned { was_pending } => return Some(was_pending),
            Grab::Busy => P::yield_now(),
            Grab::Cancelling if !wait_for_cancel => return None,
            Grab::Cancelling => blocking_on::<P, _>(|| {
                let mut state = work.inner.state.lock();
                state.add_waiter();
                while matches!(state.location(), Location::Cancelling) {
                    state = work.inner.changed.wait(state);
                }
                state.remove_waiter();
            }),
        }
    }
}

/// `cancel`: takes a pending instance off its queue or timer. Does not wait
/// for a running instance. Returns whether it was pending.
pub(crate) fn cancel<P: Platform>(work: &Work<P>) -> bool {
    match grab(work, false, false) {
        Some(was_pending) => {
            work.release();
            was_pending
        }
        // A cancel_sync owns it and will leave it idle; as in the kernel,
        // this cancel reports that it cancelled nothing.
        None => false,
    }
}

/// `cancel_sync`: like `cancel`, then waits for a running instance; the
/// item is neither pending nor running on return, even if it requeues
/// itself (its requeue finds PENDING taken and is a no-op).
pub(crate) fn cancel_sync<P: Platform>(work: &Work<P>) -> Result<bool, WaitError> {
    if current_work_on::<P>().is_some_and(|current| current == *work) {
        return Err(WaitError::OwnWork { operation: "cancel_sync" });
    }
    let was_pending = grab(work, true, true).unwrap_or(true);
    let skip_wait = skips_wait(&work.inner.state.lock());
    blocking_on::<P, _>(|| {
        let mut state = work.inner.state.lock();
        state.add_waiter();
        while !state.cancel_sync_may_return(skip_wait) {
            state = work.inner.changed.wait(state);
        }
        state.remove_waiter();
    });
    work.release();
    Ok(was_pending)
}

/// The seeded bug `CancelSyncSkipsWait`, read under the item's lock.
fn skips_wait<P: Platform>(state: &WorkState<P>) -> bool {
    state.last_pool().is_some_and(|pool| seeded(&pool.shared.config, SeededBug::CancelSyncSkipsWait))
}

/// `cancel_sync`'s async form: cancels now (or, if another `cancel_sync`
/// owns the item, waits for it in `poll` and cancels then, as the blocking
/// one does); `Err` from the item itself.
pub(crate) fn cancel_sync_async<P: Platform>(work: &Work<P>) -> Result<CancelWorkSync<P>, WaitError> {
    if current_work_on::<P>().is_some_and(|current| current == *work) {
        return Err(WaitError::OwnWork { operation: "cancel_sync" });
    }
    // Counted as a waiter before the grab, as the blocking one is while it
    // waits: every change from now on wakes it.
    work.inner.state.lock().add_waiter();
    let mut wait = CancelWorkSync { work: work.clone(), stage: CancelStage::OtherCancel, slot: None };
    wait.try_grab();
    Ok(wait)
}

/// Where an async `cancel_sync` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelStage {
    /// Another `cancel_sync` owns the item: wait until it is done, then
    /// grab.
    OtherCancel,
    /// This wait owns PENDING (`Cancelling`): wait until no instance runs.
    Owned { was_pending: bool, skip_wait: bool },
    /// Returned; PENDING given back.
    Done,
}

/// The future of [`Work::cancel_sync_async`] (kernel `cancel_work_sync`,
/// without blocking) and [`DelayedWork::cancel_sync_async`]: the item was
/// cancelled at the call (its pending instance or timer taken away, and
/// PENDING kept, so that neither a requeue from the running instance nor
/// anyone else queues it again); the future is ready, with whether it was
/// pending, once the running instance (if any) has finished. The item is
/// then neither pending nor running.
///
/// If another `cancel_sync` owned the item at the call, this one waits
/// for it first and cancels then, as the blocking one does.
///
/// While pending it counts as a waiter on the item, as a blocked
/// `cancel_sync` does. Dropping it before it is ready gives PENDING back:
/// what is left is what [`Work::cancel`] leaves (nothing queued; an
/// instance running then may go on, and requeue itself).
///
/// [`DelayedWork::cancel_sync_async`]: crate::DelayedWork::cancel_sync_async
#[must_use = "the item was cancelled at the call; await the future to wait for a running instance"]
pub struct CancelWorkSync<P: Platform = Std> {
    work: Work<P>,
    stage: CancelStage,
    /// The task's entry in the item's waker list.
    slot: Option<u64>,
}

impl<P: Platform> fmt::Debug for CancelWorkSync<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelWorkSync").field("work", &self.work).field("stage", &self.stage).finish()
    }
}

impl<P: Platform> CancelWorkSync<P> {
    /// Grabs PENDING unless another `cancel_sync` owns it (retrying only
    /// through transient owners, as `cancel` does). True if it owns it now.
    fn try_grab(&mut self) -> bool {
        let Some(was_pending) = grab(&self.work, true, false) else { return false };
        let skip_wait = skips_wait(&self.work.inner.state.lock());
        self.stage = CancelStage::Owned { was_pending, skip_wait };
        true
    }

    /// One poll. Registers `waker` under the item's lock before it returns
    /// `Pending`.
    fn step(&mut self, waker: &Waker) -> Poll<bool> {
        let work = self.work.clone();
        loop {
            let mut state = work.inner.state.lock();
            match self.stage {
                CancelStage::Done => unreachable!("polled after it was ready"),
                CancelStage::OtherCancel if !matches!(state.location(), Location::Cancelling) => {
                    drop(state);
                    // The other is done: grab now (it may own it again).
                    self.try_grab();
                    continue;
                }
                CancelStage::Owned { was_pending, skip_wait } if state.cancel_sync_may_return(skip_wait) => {
                    let removed = self.withdraw(&mut state);
                    drop(state);
                    drop(removed);
                    self.stage = CancelStage::Done;
                    work.release();
                    return Poll::Ready(was_pending);
                }
                _ => {
                    work.inner.wakers.lock().register(&mut self.slot, waker);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Stops counting as a waiter and takes the waker entry out (under the
    /// item's lock, `state`); the waker comes back, to be dropped outside.
    fn withdraw(&mut self, state: &mut WorkState<P>) -> Option<Waker> {
        state.remove_waiter();
        self.work.inner.wakers.lock().remove(&mut self.slot)
    }
}

impl<P: Platform> Future for CancelWorkSync<P> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        assert!(this.stage != CancelStage::Done, "a CancelWorkSync was polled after it completed");
        this.step(cx.waker())
    }
}

impl<P: Platform> Drop for CancelWorkSync<P> {
    /// Withdraws the waiter; gives PENDING back if this wait owns it.
    fn drop(&mut self) {
        if self.stage == CancelStage::Done {
            return;
        }
        let work = self.work.clone();
        let mut state = work.inner.state.lock();
        let removed = self.withdraw(&mut state);
        drop(state);
        drop(removed);
        if let CancelStage::Owned { .. } = self.stage {
            work.release();
        }
    }
}
