//! Delayed work: a work item plus a timer that queues it (kernel
//! `delayed_work`).
//!
//! While the timer is armed the item is PENDING with location `Delayed`;
//! the timer event carries an id, and a firing whose id no longer matches
//! (the item was cancelled or re-armed) does nothing. A workqueue records
//! its armed items, and the calls accepted but not yet armed, so that
//! draining and destroy wait for them (`lifecycle.rs`, "Delayed items and
//! destroy").

use crate::cancel;
use crate::error::{QueueError, WaitError};
use crate::flush;
use crate::lifecycle::DelayedAcceptance;
use crate::platform::{contain, Arc, Platform, Std};
use crate::shared::{Pool, SystemShared, Work, WqShared};
use crate::work::WorkBusy;
use core::fmt;
use core::sync::atomic::Ordering;
use core::time::Duration;

/// A work item that is queued after a delay.
///
/// ```
/// use cmwq::{DelayedWork, system_wq};
/// use core::time::Duration;
///
/// let work = DelayedWork::new(|| println!("later"));
/// assert!(system_wq().queue_delayed(&work, Duration::from_secs(3600)).unwrap());
/// assert!(work.cancel(), "it was pending on its timer");
/// assert!(work.busy().is_idle());
/// ```
pub struct DelayedWork<P: Platform = Std> {
    work: Work<P>,
}

impl<P: Platform> Clone for DelayedWork<P> {
    fn clone(&self) -> Self {
        DelayedWork { work: self.work.clone() }
    }
}

impl<P: Platform> fmt::Debug for DelayedWork<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DelayedWork").field(&self.work).finish()
    }
}

impl<P: Platform> DelayedWork<P> {
    /// A delayed work item running `f`.
    pub fn new<F: Fn() + Send + Sync + 'static>(f: F) -> Self {
        DelayedWork { work: Work::new(f) }
    }

    /// A delayed work item whose function receives its inner [`Work`].
    pub fn with_self<F: Fn(&Work<P>) + Send + Sync + 'static>(f: F) -> Self {
        DelayedWork { work: Work::with_self(f) }
    }

    /// The inner work item (what `current_work()` reports while it runs).
    pub fn work(&self) -> &Work<P> {
        &self.work
    }

    /// Pending (timer armed or queued) and/or running.
    pub fn busy(&self) -> WorkBusy {
        self.work.busy()
    }

    /// Cancels the timer or the queued instance (kernel
    /// `cancel_delayed_work`); does not wait for a running instance.
    /// Returns whether it was pending.
    pub fn cancel(&self) -> bool {
        cancel::cancel(&self.work)
    }

    /// Cancels and waits for a running instance (kernel
    /// `cancel_delayed_work_sync`). Returns whether it was pending.
    pub fn cancel_sync(&self) -> Result<bool, WaitError> {
        cancel::cancel_sync(&self.work)
    }

    /// Fires an armed timer now and waits for the item to finish (kernel
    /// `flush_delayed_work`). Returns whether it waited.
    pub fn flush(&self) -> Result<bool, WaitError> {
        if let Some(Some(instance)) = fire_now(&self.work) {
            // Wait for the instance we queued, even if it already ran: the
            // item was pending, so this flush did wait for it.
            if crate::blocking::current_work_on::<P>().is_some_and(|c| c == self.work) {
                return Err(WaitError::OwnWork { operation: "flush_delayed" });
            }
            flush::wait_instance(&self.work, instance);
            return Ok(true);
        }
        flush::flush_work(&self.work)
    }

    /// [`DelayedWork::cancel_sync`] without blocking (see
    /// [`Work::cancel_sync_async`]): the timer or queued instance is
    /// cancelled now; the future is ready, with whether it was pending,
    /// once a running instance has finished.
    pub fn cancel_sync_async(&self) -> Result<crate::CancelWorkSync<P>, WaitError> {
        cancel::cancel_sync_async(&self.work)
    }

    /// [`DelayedWork::flush`] without blocking: an armed timer is fired
    /// now, and the future is ready, with whether it waited, once the
    /// instance queued by that (or else, as [`Work::flush_async`], the last
    /// one queued before the call, or the one running) has finished.
    ///
    /// ```
    /// # use std::{future::Future, pin::pin, sync::Arc, task::{Context, Poll, Wake, Waker}};
    /// # struct Unpark(std::thread::Thread);
    /// # impl Wake for Unpark { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// # fn block_on<F: Future>(future: F) -> F::Output {
    /// #     let mut future = pin!(future);
    /// #     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    /// #     loop {
    /// #         if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) { return out }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// use cmwq::{system_wq, DelayedWork};
    /// use core::time::Duration;
    /// let work = DelayedWork::new(|| {});
    /// system_wq().queue_delayed(&work, Duration::from_secs(3600)).unwrap();
    /// assert!(block_on(work.flush_async().unwrap()), "fired now and waited for");
    /// assert!(work.busy().is_idle());
    /// ```
    pub fn flush_async(&self) -> Result<crate::FlushWork<P>, WaitError> {
        if let Some(Some(instance)) = fire_now(&self.work) {
            // As `flush`: the instance it queued, even if it already ran.
            if crate::blocking::current_work_on::<P>().is_some_and(|c| c == self.work) {
                return Err(WaitError::OwnWork { operation: "flush_delayed" });
            }
            return Ok(flush::FlushWork::new(&self.work, Some(instance)));
        }
        flush::flush_work_async(&self.work)
    }
}

/// Inserts a claimed item; if its workqueue vanished (it cannot while a
/// delayed item is armed: destroy and finalization wait for armed items
/// before they take the pool-workqueues away), gives PENDING back rather
/// than leaving the item owned for good.
fn insert_or_release<P: Platform>(
    wq: &WqShared<P>,
    cpu: Option<usize>,
    work: &Work<P>,
    last_pool: Option<Arc<Pool<P>>>,
) -> Option<u64> {
    match wq.insert_claimed(cpu, work, last_pool) {
        Ok(instance) => Some(instance),
        Err(()) => {
            debug_assert!(false, "delayed item fired into a destroyed workqueue `{}`", wq.name);
            work.release();
            None
        }
    }
}

/// Fires `work`'s armed timer now, if it has one (kernel
/// `flush_delayed_work`'s first half): `Some(instance)` if it was armed and
/// is queued now as that instance, `Some(None)` if it was armed but its
/// workqueue was gone, `None` if no timer was armed.
fn fire_now<P: Platform>(work: &Work<P>) -> Option<Option<u64>> {
    let (timer, deadline, wq, cpu, last_pool) = work.inner.state.lock().fire(None)?;
    wq.system.timers.cancel(deadline, timer);
    let instance = insert_or_release(&wq, cpu, work, last_pool);
    wq.delayed_done(work);
    Some(instance)
}

/// Fires every armed delayed item of `wq` now, so that its items run
/// instead of holding up a drain until their deadlines (system shutdown
/// destroying a workqueue nobody holds any more).
pub(crate) fn fire_armed_now<P: Platform>(wq: &WqShared<P>) {
    for work in wq.armed_delayed() {
        let _ = fire_now(&work);
    }
}

/// Arms the timer of an item whose PENDING the caller owns, ending the
/// workqueue's acceptance of it (step 2 of `lifecycle.rs`'s "Delayed items
/// and destroy").
fn arm<P: Platform>(
    acceptance: DelayedAcceptance<'_, P>,
    wq: &Arc<WqShared<P>>,
    cpu: Option<usize>,
    work: &Work<P>,
    delay: Duration,
) {
    let timers = &wq.system.timers;
    let deadline = crate::timer::deadline_after(wq.system.platform.now(), delay);
    let timer = timers.reserve_id();
    acceptance.arm(work);
    {
        let mut state = work.inner.state.lock();
        state.arm(timer, deadline, wq.clone(), cpu);
    }
    let (fired, system) = (work.clone(), wq.system.clone());
    timers.arm(deadline, timer, Box::new(move || timer_fired(&system, fired, timer)));
}

/// `queue_delayed` / `queue_delayed_on`.
pub(crate) fn queue_delayed<P: Platform>(
    wq: &Arc<WqShared<P>>,
    cpu: Option<usize>,
    dwork: &DelayedWork<P>,
    delay: Duration,
) -> Result<bool, QueueError<DelayedWork<P>>> {
    if delay.is_zero() {
        return wq.queue_work(cpu, &dwork.work).map_err(|err| rewrap(err, dwork));
    }
    let acceptance = wq.accept_delayed(dwork)?;
    if dwork.work.try_claim().is_none() {
        return Ok(false);
    }
    arm(acceptance, wq, cpu, &dwork.work, delay);
    Ok(true)
}

/// `mod_delayed` / `mod_delayed_on`. Acceptance is settled before the
/// queued instance is taken away, so a refused call changes nothing.
pub(crate) fn mod_delayed<P: Platform>(
    wq: &Arc<WqShared<P>>,
    cpu: Option<usize>,
    dwork: &DelayedWork<P>,
    delay: Duration,
) -> Result<bool, QueueError<DelayedWork<P>>> {
    let acceptance = wq.accept_delayed(dwork)?;
    let Some(was_pending) = cancel::grab(&dwork.work, false, false) else {
        // Being cancelled synchronously: the cancel wins (kernel -ENOENT).
        return Ok(false);
    };
    if delay.is_zero() {
        // Inserted while the acceptance still counts: destroy cannot have
        // taken the pool-workqueues away (the error is for robustness).
        let last_pool = dwork.work.inner.state.lock().last_pool().cloned();
        let inserted = wq.insert_claimed(cpu, &dwork.work, last_pool);
        drop(acceptance);
        if inserted.is_err() {
            dwork.work.release();
            return Err(QueueError::Destroyed { work: dwork.clone(), workqueue: wq.name.clone() });
        }
    } else {
        arm(acceptance, wq, cpu, &dwork.work, delay);
    }
    Ok(was_pending)
}

fn rewrap<P: Platform>(err: QueueError<Work<P>>, dwork: &DelayedWork<P>) -> QueueError<DelayedWork<P>> {
    let work = dwork.clone();
    match err {
        QueueError::Draining { workqueue, .. } => QueueError::Draining { work, workqueue },
        QueueError::Destroyed { workqueue, .. } => QueueError::Destroyed { work, workqueue },
        QueueError::NoSuchCpu { cpu, cpus, .. } => QueueError::NoSuchCpu { work, cpu, cpus },
    }
}

/// The timer of a delayed item fired: queue it, unless the event is stale.
/// Engine code, except the drop of `work` at the end, which may be the
/// item's last reference (its captured state's `Drop` is user code):
/// contained and counted as a stray panic.
pub(crate) fn timer_fired<P: Platform>(system: &SystemShared<P>, work: Work<P>, timer: u64) {
    let claimed = work.inner.state.lock().fire(Some(timer));
    if let Some((_, _, wq, cpu, last_pool)) = claimed {
        let _ = insert_or_release(&wq, cpu, &work, last_pool);
        wq.delayed_done(&work);
    }
    if contain(move || drop(work)).is_some() {
        system.stray_panics.fetch_add(1, Ordering::AcqRel);
    }
}
