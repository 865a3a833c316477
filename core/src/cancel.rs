//! Cancelling: taking PENDING away from wherever the item is (kernel
//! `try_to_grab_pending`), and `cancel` / `cancel_sync` on top of it.
//!
//! # Grabbing PENDING
//!
//! 1. Lock the item. If it is not pending, take PENDING: done, it was idle.
//! 2. If it waits for its timer, take PENDING and drop the timer; a timer
//!    that fires later finds a stale id and does nothing.
//! 3. If it is queued on pool X: unlock the item, lock X, lock the item
//!    again and check it is still queued on X (it may have started running
//!    or moved meanwhile). If so, take it off X's lists (worklist, a
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
use crate::platform::{Arc, Platform};
use crate::seeded::SeededBug;
use crate::shared::{Location, Pool, Work};

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
            let mut guard = pool.locked.lock();
            guard.begin(crate::machine::trace::StepId::Cancel);
            let mut state = work.inner.state.lock();
            let key = work.key();
            // Machine: still queued here? Then PENDING and the instance
            // are taken (the pool kicked for what that activated).
            let here = |p: &Arc<Pool<P>>| Arc::ptr_eq(p, &pool);
            if !guard.step(|m, fx| queue::cancel_grab_queued(m, &mut state, key, cancelling, here, fx)).result {
                return Grab::Busy; // it started running or moved meanwhile
            }
            guard.tracer.record(|pool| crate::trace::Event::Cancelled { item: key, pool });
            if state.waiters() > 0 {
                work.inner.changed.notify_all();
            }
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
    let skip_wait = work
        .inner
        .state
        .lock()
        .last_pool()
        .is_some_and(|pool| seeded(&pool.shared.config, SeededBug::CancelSyncSkipsWait));
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
