//! Work items: a reusable, re-queueable function, and its state word.
//!
//! # The state of an item
//!
//! Kernel work items keep a packed `data` word (PENDING bit, pool or pwq
//! pointer, colour). Here the same information lives in [`WorkState`]
//! behind the item's own small lock, a *leaf* lock: it is only ever taken
//! last (after a pool lock, never before one), and nothing blocks under it.
//!
//! The states, the PENDING token and the instance bookkeeping are the
//! machine's rules M26-M29 (`machine/work.rs`, with its table). Only the
//! holder of the lock of the pool named in `Queued` may take the item off
//! that pool, so a canceller that sees `Queued` locks that pool and checks
//! again; seeing `Owned` it retries (the owner is mid-flight).

use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform};
use crate::shared::{Work, WorkFn, WorkInner, WorkState};
use core::fmt;

impl<P: Platform> fmt::Debug for Work<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let busy = self.busy();
        f.debug_struct("Work")
            .field("id", &format_args!("{:#x}", self.key()))
            .field("pending", &busy.pending)
            .field("running", &busy.running)
            .finish()
    }
}

/// What [`Work::busy`] reports (kernel `work_busy`: `WORK_BUSY_PENDING`,
/// `WORK_BUSY_RUNNING`). A snapshot: it may be stale as soon as it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkBusy {
    /// Queued, waiting for its timer, or being queued or cancelled.
    pub pending: bool,
    /// A worker is executing it.
    pub running: bool,
}

impl WorkBusy {
    /// Neither pending nor running.
    pub fn is_idle(self) -> bool {
        !self.pending && !self.running
    }
}

impl<P: Platform> Work<P> {
    /// A work item running `f` each time it is executed.
    pub fn new<F: Fn() + Send + Sync + 'static>(f: F) -> Self {
        Self::build(core::any::type_name::<F>(), move |_| f())
    }

    /// A work item running `f`, named `name` in reports (a stall, a CPU
    /// hog: see [`crate::Report`]) instead of its function's type name.
    pub fn named(name: &'static str, f: impl Fn() + Send + Sync + 'static) -> Self {
        Self::build(name, move |_| f())
    }

    /// The name reports give the item's function: the one given to
    /// [`Work::named`], else the function's type name (a closure's names
    /// the function it was written in).
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// A work item whose function receives the item itself, so that it can
    /// requeue itself or inspect its state without a reference cycle.
    ///
    /// ```
    /// use cmwq::{Work, system_wq};
    /// use std::{sync::Arc, sync::atomic::{AtomicUsize, Ordering}};
    ///
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let r = runs.clone();
    /// let work = Work::with_self(move |me| {
    ///     if r.fetch_add(1, Ordering::SeqCst) < 2 {
    ///         system_wq().queue(me).unwrap(); // runs again afterwards
    ///     }
    /// });
    /// system_wq().queue(&work).unwrap();
    /// while runs.load(Ordering::SeqCst) < 3 { cmwq::sleep(core::time::Duration::from_millis(1)); }
    /// work.flush().unwrap();
    /// assert_eq!(runs.load(Ordering::SeqCst), 3);
    /// ```
    pub fn with_self<F: Fn(&Work<P>) + Send + Sync + 'static>(f: F) -> Self {
        Self::build(core::any::type_name::<F>(), f)
    }

    fn build(name: &'static str, f: impl Fn(&Work<P>) + Send + Sync + 'static) -> Self {
        let inner: Arc<WorkInner<P, WorkFn<P>>> = Arc::new(WorkInner {
            state: Mutex::new(WorkState::default()),
            queued_hint: AtomicUsize::new(0),
            changed: Condvar::new(),
            wakers: Mutex::new(Default::default()),
            name,
            func: f,
        });
        Work { inner }
    }

    /// Whether the item is pending and/or running (kernel `work_busy`).
    pub fn busy(&self) -> WorkBusy {
        let state = self.inner.state.lock();
        WorkBusy { pending: state.is_pending(), running: state.running().is_some() }
    }

    /// Whether the item is pending (kernel `work_pending`).
    pub fn is_pending(&self) -> bool {
        self.busy().pending
    }

    /// The item's identity in trace events (feature `trace`); stable while
    /// the item exists.
    #[cfg(feature = "trace")]
    pub fn trace_id(&self) -> usize {
        self.key()
    }
}

impl<P: Platform> Work<P> {
    /// Waits until the last instance queued before this call (or the one
    /// running) has finished (kernel `flush_work`). Returns whether it
    /// waited: `Ok(false)` if the item was idle.
    ///
    /// Refused from inside the item itself, which would wait forever.
    pub fn flush(&self) -> Result<bool, crate::WaitError> {
        crate::flush::flush_work(self)
    }

    /// Takes a pending instance off its queue (kernel `cancel_work`). Does
    /// not wait for a running instance. Returns whether it was pending.
    pub fn cancel(&self) -> bool {
        crate::cancel::cancel(self)
    }

    /// Cancels and waits for a running instance (kernel
    /// `cancel_work_sync`): on return the item is neither pending nor
    /// running, even if it requeues itself. Returns whether it was pending.
    ///
    /// Refused from inside the item itself.
    pub fn cancel_sync(&self) -> Result<bool, crate::WaitError> {
        crate::cancel::cancel_sync(self)
    }

    /// [`Work::flush`] without blocking: the instance to wait for (the last
    /// one queued before this call, or the one running) is chosen now, and
    /// the returned future is ready, with whether it waited, once that
    /// instance has finished. Instances queued after the call are not
    /// waited for. No runtime is needed: the future wakes the task's
    /// [`Waker`](core::task::Waker).
    ///
    /// Refused at the call, from inside the item itself (as
    /// [`Work::flush`] is): the error comes back here, not from the future.
    /// Dropping the future before it is ready withdraws the wait and
    /// changes nothing else.
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
    /// use cmwq::{system_wq, Work};
    /// let work = Work::new(|| cmwq::sleep(core::time::Duration::from_millis(5)));
    /// system_wq().queue(&work).unwrap();
    /// let flushed = work.flush_async().unwrap(); // waits for that instance
    /// assert!(block_on(flushed));
    /// assert!(!block_on(work.flush_async().unwrap()), "idle: nothing to wait for");
    /// ```
    pub fn flush_async(&self) -> Result<crate::FlushWork<P>, crate::WaitError> {
        crate::flush::flush_work_async(self)
    }

    /// [`Work::cancel_sync`] without blocking: the item is cancelled now
    /// (its pending instance taken off its queue or timer, and PENDING
    /// kept, so that nothing queues it again meanwhile, not even the
    /// running instance requeueing itself); the returned future is ready,
    /// with whether it was pending, once the running instance (if any) has
    /// finished. The item is then neither pending nor running. If another
    /// `cancel_sync` owns the item at the call, the future waits for it and
    /// cancels then, as [`Work::cancel_sync`] does.
    ///
    /// Refused at the call, from inside the item itself. Dropping the
    /// future before it is ready gives PENDING back: the item is left as
    /// [`Work::cancel`] leaves it (nothing queued; a running instance goes
    /// on).
    /// Until then the future holds PENDING: every queueing of the item
    /// returns `Ok(false)` and a blocking `cancel_sync` waits. Await it or
    /// drop it; do not keep it unpolled.
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
    /// use cmwq::{system_wq, Work};
    /// let work = Work::with_self(|me| { let _ = system_wq().queue(me); }); // requeues itself
    /// system_wq().queue(&work).unwrap();
    /// let cancelled = work.cancel_sync_async().unwrap();
    /// block_on(cancelled);
    /// assert!(work.busy().is_idle());
    /// ```
    pub fn cancel_sync_async(&self) -> Result<crate::CancelWorkSync<P>, crate::WaitError> {
        crate::cancel::cancel_sync_async(self)
    }
}
