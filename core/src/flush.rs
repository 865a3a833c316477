//! Flushing: `flush_workqueue` with flush colours, and `flush_work`.
//!
//! # Flush colours (`flush_workqueue`)
//!
//! Every queued instance carries the colour its pool-workqueue had when it
//! was queued, and each pool-workqueue counts in-flight instances per
//! colour. A flush must wait for exactly the instances queued before it:
//!
//! 1. The flusher takes a ticket `t` (FIFO among flushers) under the flush
//!    mutex. Ticket `t` owns colour `t % NR_COLORS`.
//! 2. It flips every pool-workqueue's `work_color` to the next colour, each
//!    under that pool's lock. Instances queued after the flip get the new
//!    colour, so they are never waited for: later queueing cannot livelock
//!    the flush.
//! 3. Flushes complete in ticket order. The oldest ticket (the *head*) is
//!    *started*: every pool-workqueue that still has instances of its colour
//!    is marked (`flush_color`) and counted in `to_flush`, with a bias of
//!    one held while marking so that workers cannot complete it early.
//! 4. Workers decrement a colour's count when an instance finishes or is
//!    cancelled; the one that empties a marked pool-workqueue decrements
//!    `to_flush`; the one that reaches zero signals the head's flusher.
//! 5. That flusher marks its ticket done (waking everyone whose ticket is
//!    not newer) and starts the next ticket, cascading while tickets
//!    complete at once.
//!
//! Colours are reused only after their ticket is done: at most
//! `NR_COLORS - 1` tickets are outstanding, and a flusher that would need a
//! 16th waits for the head to finish (the kernel's overflow queue).
//!
//! These are the machine's steps FW1-FW6 (`machine/flush.rs`), which also
//! name the lock each one holds. Lock order: flush mutex → pool lock →
//! signal (leaf) → the async flushers (leaf).
//!
//! # Async flushes
//!
//! [`Workqueue::flush_async`] runs the same steps without blocking: FW1-FW3
//! at the call (the ticket is taken there, so the flush waits for exactly
//! what was queued before the call; if every colour is taken it waits for
//! the head in `poll` and takes its ticket then, as the blocking flush
//! does), FW5 in `poll` (the task's waker is registered under the signal
//! lock, beside the condition variable) and FW6 in `poll` too: it takes
//! only the flush mutex and the pool locks, each for a bounded section.
//!
//! A future may be dropped, or simply not polled, while its ticket is the
//! head; yet the machine needs the head's flusher to run FW6, and every
//! later flush waits for that. So the ticket of an async flush is
//! *drivable*: it is recorded (under the flush mutex, before FW3 can
//! start it) in the signal's async side, and whichever flusher finds it to
//! be the complete head first (its own future, any other flush waiting,
//! blocking or not, or the future's `Drop`) claims it there and runs FW6.
//! Claiming under the signal lock makes that flusher the only one. A
//! dropped future thus leaves its ticket as a blocking flusher that has not
//! yet woken up would: the next flush of the workqueue finishes it, and
//! nothing waits for the dropped future itself. Its `Drop` finishes the
//! ticket at once if it is already the complete head.
//!
//! Workers complete a colour (FW4) under a pool lock, where no waker may
//! run: the async flushers' wakers are handed to a timer event due at
//! once ([`WqShared::wake_later`]), which wakes them on the timer thread
//! (or `System::run_due_timers`). FW6 wakes them after the flush mutex is
//! released.
//!
//! [`Workqueue::flush_async`]: crate::Workqueue::flush_async

use crate::blocking::{blocking_on, current_work_on};
use crate::config::seeded;
use crate::error::WaitError;
use crate::machine::flush::{flush_begin, flush_heads_done, FlushLocks, FlushSignal, FlushWait};
use crate::machine::section::PoolSection;
use crate::platform::{Arc, Platform, Std};
use crate::seeded::SeededBug;
use crate::shared::{Entry, FlushState, Work, WorkState, WqShared};
use crate::wakers::PendingWakes;
use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

/// The flush's locks as the engine keeps them, for the machine's steps.
/// The async flushers' wakers taken by FW6 are kept here, to be woken once
/// the flush mutex is released ([`EngineFlush::into_wakes`]).
struct EngineFlush<'a, P: Platform> {
    state: &'a FlushState<P>,
    wq: &'a WqShared<P>,
    wakes: RefCell<PendingWakes>,
}

impl<'a, P: Platform> EngineFlush<'a, P> {
    fn new(state: &'a FlushState<P>, wq: &'a WqShared<P>) -> Self {
        EngineFlush { state, wq, wakes: RefCell::new(PendingWakes::none()) }
    }

    /// The wakers FW6 took, to wake with no engine lock held.
    fn into_wakes(self) -> PendingWakes {
        self.wakes.into_inner()
    }
}

impl<P: Platform> FlushLocks<Entry<P>> for EngineFlush<'_, P> {
    fn each_pool(&self, mut f: impl FnMut(&mut PoolSection<Entry<P>>)) {
        for pool in &self.wq.pools {
            f(&mut pool.lock().machine);
        }
    }

    fn with_signal<R>(&self, f: impl FnOnce(&mut FlushSignal) -> R) -> R {
        f(&mut self.state.signal.lock())
    }

    fn notify(&self) {
        // After the signal changed (FW6): a registration either is in the
        // list taken here or saw the change.
        self.state.signal_cv.notify_all();
        let taken = self.state.async_side.lock().wakers.take();
        self.wakes.borrow_mut().append(taken);
    }
}

impl<P: Platform> FlushState<P> {
    /// `flush_workqueue`: machine steps FW1-FW3 (`flush_begin`), the wait
    /// (FW5) and, when this flusher's ticket is the complete head, FW6.
    /// While it waits it also finishes a complete head that an async flush
    /// left drivable ("Async flushes").
    pub(crate) fn flush(&self, wq: &WqShared<P>) {
        let ticket = loop {
            match self.begin(wq, false) {
                Ok(ticket) => break ticket,
                // Keep one colour free for new work.
                Err(head) => blocking_on::<P, _>(|| self.wait_done(wq, head)),
            }
        };
        blocking_on::<P, _>(|| {
            let mut signal = self.signal.lock();
            loop {
                match signal.poll(ticket) {
                    FlushWait::Done => return,
                    FlushWait::Drive => break,
                    FlushWait::Wait => match self.claim_drivable(&signal) {
                        Some(head) => {
                            drop(signal);
                            self.drive(wq, head);
                            signal = self.signal.lock();
                        }
                        None => signal = self.signal_cv.wait(signal),
                    },
                }
            }
            drop(signal);
            self.drive(wq, ticket);
        });
    }

    /// FW1-FW3 under the flush mutex: `Ok(ticket)`, or `Err(head)` if
    /// every colour is taken. A `drivable` ticket (an async flush's) is
    /// recorded as such before FW3 can start it.
    fn begin(&self, wq: &WqShared<P>, drivable: bool) -> Result<u64, u64> {
        let locks = EngineFlush::new(self, wq);
        let begun = {
            let mut tickets = self.tickets.lock();
            // Under the flush mutex, the ticket `take` hands out next.
            let next = tickets.next();
            if drivable {
                self.async_side.lock().drivable.insert(next);
            }
            let begun = flush_begin(&mut tickets, wq.id, &locks);
            if drivable && begun.is_err() {
                self.async_side.lock().drivable.remove(&next);
            }
            begun
        };
        drop(locks.into_wakes().wake());
        begun
    }

    /// FW6 for `ticket`, the complete head, which the caller drives (its
    /// own, or one it claimed); wakes the async flushers after the flush
    /// mutex is released.
    fn drive(&self, wq: &WqShared<P>, ticket: u64) {
        let locks = EngineFlush::new(self, wq);
        flush_heads_done(&mut self.tickets.lock(), ticket, wq.id, &locks);
        drop(locks.into_wakes().wake());
    }

    /// Under the signal lock: claims the head for FW6 if it is a drivable
    /// ticket and complete (only one caller gets it). Forgets drivable
    /// tickets that are done.
    fn claim_drivable(&self, signal: &FlushSignal) -> Option<u64> {
        let mut side = self.async_side.lock();
        while let Some(&first) = side.drivable.first() {
            if signal.is_done(first) {
                side.drivable.remove(&first);
                continue;
            }
            if signal.poll(first) == FlushWait::Drive {
                side.drivable.remove(&first);
                return Some(first);
            }
            return None;
        }
        None
    }

    /// Flushes that have taken a ticket and not finished.
    pub(crate) fn in_progress(&self) -> usize {
        self.tickets.lock().in_progress() as usize
    }

    /// Waits until `ticket` is done (finishing a drivable head meanwhile).
    fn wait_done(&self, wq: &WqShared<P>, ticket: u64) {
        let mut signal = self.signal.lock();
        while !signal.is_done(ticket) {
            match self.claim_drivable(&signal) {
                Some(head) => {
                    drop(signal);
                    self.drive(wq, head);
                    signal = self.signal.lock();
                }
                None => signal = self.signal_cv.wait(signal),
            }
        }
    }
}

impl<P: Platform> WqShared<P> {
    /// The blocking `flush_workqueue`'s async form, begun now (FW1-FW3).
    pub(crate) fn flush_async(self: &Arc<Self>) -> FlushWorkqueue<P> {
        let stage = match self.flush.begin(self, true) {
            Ok(ticket) => FlushStage::Ticket(ticket),
            Err(head) => FlushStage::Full { head },
        };
        FlushWorkqueue { wq: self.clone(), stage, slot: None }
    }
}

/// Where an async `flush_workqueue` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushStage {
    /// Every colour was taken: wait until ticket `head` is done, then take
    /// a ticket (FW1 again).
    Full { head: u64 },
    /// Waiting for this ticket (FW5).
    Ticket(u64),
    /// The ticket is done.
    Done,
}

/// The future of [`Workqueue::flush_async`] (kernel `flush_workqueue`,
/// without blocking): ready once every item queued before the call has
/// finished.
///
/// The flush ticket was taken at the call (so items queued after it are
/// not waited for). Polling it never blocks: it waits by registering the
/// task's waker, and when its ticket is the complete head it finishes it
/// itself (bounded sections under the flush mutex and the pool locks).
///
/// Dropping it before it is ready gives up waiting, not the ticket: the
/// flush goes on without a waiter, and the next flush of the workqueue
/// (blocking or not) finishes it if nobody has (see the `flush` module's
/// "Async flushes"); nothing ever waits for the dropped future.
///
/// [`Workqueue::flush_async`]: crate::Workqueue::flush_async
#[must_use = "the flush began at the call; await the future to wait for it"]
pub struct FlushWorkqueue<P: Platform = Std> {
    wq: Arc<WqShared<P>>,
    stage: FlushStage,
    /// The task's entry in the async flushers' waker list.
    slot: Option<u64>,
}

impl<P: Platform> fmt::Debug for FlushWorkqueue<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushWorkqueue").field("workqueue", &self.wq.name).field("stage", &self.stage).finish()
    }
}

impl<P: Platform> FlushWorkqueue<P> {
    /// One poll: FW5 (and FW6, or FW1 again after a full wait). Registers
    /// `waker` under the signal lock before it returns `Pending`.
    fn step(&mut self, waker: &Waker) -> Poll<()> {
        let (wq, flush) = (&*self.wq, &self.wq.flush);
        loop {
            let signal = flush.signal.lock();
            let waiting = match self.stage {
                FlushStage::Done => return Poll::Ready(()),
                FlushStage::Full { head } => !signal.is_done(head),
                FlushStage::Ticket(ticket) => signal.poll(ticket) != FlushWait::Done,
            };
            if !waiting {
                drop(signal);
                self.stage = match self.stage {
                    FlushStage::Full { .. } => match flush.begin(wq, true) {
                        Ok(ticket) => FlushStage::Ticket(ticket),
                        Err(head) => FlushStage::Full { head },
                    },
                    FlushStage::Ticket(ticket) => {
                        // Done: no longer anyone's to drive (kept bounded).
                        flush.async_side.lock().drivable.remove(&ticket);
                        FlushStage::Done
                    }
                    FlushStage::Done => FlushStage::Done,
                };
                continue;
            }
            // Our own complete head, or another async flush's: drive it.
            if let Some(head) = flush.claim_drivable(&signal) {
                drop(signal);
                flush.drive(wq, head);
                continue;
            }
            flush.async_side.lock().wakers.register(&mut self.slot, waker);
            return Poll::Pending;
        }
    }

    /// Takes the task's waker entry out (dropped outside the locks).
    fn unregister(&mut self) {
        if self.slot.is_some() {
            let removed = self.wq.flush.async_side.lock().wakers.remove(&mut self.slot);
            drop(removed);
        }
    }
}

impl<P: Platform> Future for FlushWorkqueue<P> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let ready = this.step(cx.waker());
        if ready.is_ready() {
            this.unregister();
        }
        ready
    }
}

impl<P: Platform> Drop for FlushWorkqueue<P> {
    /// Gives up waiting. A ticket that is the complete head now is
    /// finished here (FW6, bounded); one that is not stays drivable, for
    /// the next flusher to finish.
    fn drop(&mut self) {
        self.unregister();
        if let FlushStage::Ticket(_) = self.stage {
            let flush = &self.wq.flush;
            let signal = flush.signal.lock();
            if let Some(head) = flush.claim_drivable(&signal) {
                drop(signal);
                flush.drive(&self.wq, head);
            }
        }
    }
}

/// `flush_work`: waits for the last instance of `work` queued before the
/// call (or the running one) to finish. Returns whether it waited.
pub(crate) fn flush_work<P: Platform>(work: &Work<P>) -> Result<bool, WaitError> {
    if current_work_on::<P>().is_some_and(|current| current == *work) {
        return Err(WaitError::OwnWork { operation: "flush_work" });
    }
    let target = {
        let state = work.inner.state.lock();
        match flush_target(&state) {
            Some(target) => target,
            None => return Ok(false),
        }
    };
    wait_instance(work, target);
    Ok(true)
}

/// Rule M29: the instance `flush_work` waits for, read under the item's
/// lock (`state`).
fn flush_target<P: Platform>(state: &WorkState<P>) -> Option<u64> {
    let ignore_running =
        state.last_pool().is_some_and(|pool| seeded(&pool.shared.config, SeededBug::FlushWorkIgnoresRunning));
    state.flush_target(ignore_running)
}

/// Waits (as a blocking section) until instance `target` of `work` is done.
pub(crate) fn wait_instance<P: Platform>(work: &Work<P>, target: u64) {
    blocking_on::<P, _>(|| {
        let mut state = work.inner.state.lock();
        state.add_waiter();
        while !state.instance_done(target) {
            state = work.inner.changed.wait(state);
        }
        state.remove_waiter();
    });
}

/// `flush_work`'s async form: the target is read now; `Err` from the item
/// itself.
pub(crate) fn flush_work_async<P: Platform>(work: &Work<P>) -> Result<FlushWork<P>, WaitError> {
    if current_work_on::<P>().is_some_and(|current| current == *work) {
        return Err(WaitError::OwnWork { operation: "flush_work" });
    }
    let target = flush_target(&work.inner.state.lock());
    Ok(FlushWork::new(work, target))
}

/// The future of [`Work::flush_async`] (kernel `flush_work`, without
/// blocking) and [`DelayedWork::flush_async`]: ready, with whether it
/// waited, once the last instance queued before the call (or the one
/// running then) has finished. The instance was chosen at the call;
/// instances queued later are not waited for.
///
/// While pending it counts as a waiter on the item, as a blocked
/// `flush_work` does; dropping it before it is ready withdraws it, and
/// changes nothing else.
///
/// [`DelayedWork::flush_async`]: crate::DelayedWork::flush_async
#[must_use = "the instance to wait for was chosen at the call; await the future to wait for it"]
pub struct FlushWork<P: Platform = Std> {
    work: Work<P>,
    /// The instance waited for; `None`: the item was idle, ready at once.
    target: Option<u64>,
    /// Counted as a waiter on the item (from the call until ready or drop).
    counted: bool,
    /// The task's entry in the item's waker list.
    slot: Option<u64>,
}

impl<P: Platform> fmt::Debug for FlushWork<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushWork").field("work", &self.work).field("target", &self.target).finish()
    }
}

impl<P: Platform> FlushWork<P> {
    /// A wait for instance `target` of `work` (counted as a waiter now).
    pub(crate) fn new(work: &Work<P>, target: Option<u64>) -> Self {
        if target.is_some() {
            work.inner.state.lock().add_waiter();
        }
        FlushWork { work: work.clone(), target, counted: target.is_some(), slot: None }
    }

    /// Stops counting as a waiter and takes the waker entry out; `state`
    /// is the item's state, locked by the caller. The waker comes back, to
    /// be dropped outside the lock.
    fn withdraw(&mut self, state: &mut WorkState<P>) -> Option<Waker> {
        if core::mem::take(&mut self.counted) {
            state.remove_waiter();
        }
        self.work.inner.wakers.lock().remove(&mut self.slot)
    }
}

impl<P: Platform> Future for FlushWork<P> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        let Some(target) = this.target else { return Poll::Ready(false) };
        let work = this.work.clone();
        let mut state = work.inner.state.lock();
        if state.instance_done(target) {
            let removed = this.withdraw(&mut state);
            drop(state);
            drop(removed);
            return Poll::Ready(true);
        }
        work.inner.wakers.lock().register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

impl<P: Platform> Drop for FlushWork<P> {
    fn drop(&mut self) {
        if self.counted || self.slot.is_some() {
            let work = self.work.clone();
            let mut state = work.inner.state.lock();
            let removed = self.withdraw(&mut state);
            drop(state);
            drop(removed);
        }
    }
}
