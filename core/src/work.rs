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
//! machine's rules 26-29 (`machine/work.rs`, with its table). Only the
//! holder of the lock of the pool named in `Queued` may take the item off
//! that pool, so a canceller that sees `Queued` locks that pool and checks
//! again; seeing `Owned` it retries (the owner is mid-flight).

use crate::platform::{Arc, Condvar, Mutex, Platform, Std};
use crate::pool::Pool;
use crate::workqueue::WqShared;
use core::fmt;

/// Where a work item is (machine rules 26-29; see the module table).
pub(crate) type Location<P> = crate::machine::work::Location<Arc<Pool<P>>, Arc<WqShared<P>>>;

/// An item's state (`machine::work`). Leaf lock: taken after pool locks,
/// never before.
pub(crate) type WorkState<P> = crate::machine::work::WorkState<Arc<Pool<P>>, Arc<WqShared<P>>>;

/// The shared part of a work item; `F` is erased to `dyn Fn` in [`Work`].
pub(crate) struct WorkInner<P: Platform, F: ?Sized> {
    /// Leaf lock over the item's state.
    pub(crate) state: Mutex<P, WorkState<P>>,
    /// Notified when an instance finishes or a cancel ends (with `state`).
    pub(crate) changed: Condvar<P>,
    /// I: the function.
    pub(crate) func: F,
}

/// The erased function type of a work item.
pub(crate) type WorkFn<P> = dyn Fn(&Work<P>) + Send + Sync + 'static;

/// A reusable, re-queueable work item that owns its function.
///
/// `Work` is a cheap handle (an `Arc`): clones refer to the same item. An
/// item is queued at most once at a time: queueing a pending item returns
/// `false` and adds nothing; queueing it while it runs makes it run once
/// more afterwards, never concurrently with itself on the same workqueue.
///
/// ```
/// use cmwq::{Work, system_wq};
/// use std::{sync::Arc, sync::atomic::{AtomicUsize, Ordering}};
///
/// let hits = Arc::new(AtomicUsize::new(0));
/// let h = hits.clone();
/// let work = Work::new(move || { h.fetch_add(1, Ordering::SeqCst); });
/// assert_eq!(system_wq().queue(&work).unwrap(), true);
/// work.flush().unwrap();
/// assert_eq!(hits.load(Ordering::SeqCst), 1);
/// ```
pub struct Work<P: Platform = Std> {
    pub(crate) inner: Arc<WorkInner<P, WorkFn<P>>>,
}

impl<P: Platform> Clone for Work<P> {
    fn clone(&self) -> Self {
        Work { inner: self.inner.clone() }
    }
}

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

impl<P: Platform> PartialEq for Work<P> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<P: Platform> Eq for Work<P> {}

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
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Self::with_self(move |_| f())
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
    pub fn with_self(f: impl Fn(&Work<P>) + Send + Sync + 'static) -> Self {
        let inner: Arc<WorkInner<P, WorkFn<P>>> =
            Arc::new(WorkInner { state: Mutex::new(WorkState::default()), changed: Condvar::new(), func: f });
        Work { inner }
    }

    /// Whether the item is pending and/or running (kernel `work_busy`).
    pub fn busy(&self) -> WorkBusy {
        let state = self.inner.state.lock();
        WorkBusy { pending: state.is_pending(), running: state.running.is_some() }
    }

    /// Whether the item is pending (kernel `work_pending`).
    pub fn is_pending(&self) -> bool {
        self.busy().pending
    }

    /// The item's identity (stable for its lifetime).
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }

    /// Runs the item's function.
    pub(crate) fn call(&self) {
        (self.inner.func)(self)
    }

    /// Takes PENDING if it is free: `Some(last_pool)` if this caller now
    /// owns the item (and must queue it or release it), `None` if it was
    /// pending already.
    pub(crate) fn try_claim(&self) -> Option<Option<Arc<Pool<P>>>> {
        self.inner.state.lock().try_claim()
    }

    /// Gives PENDING back without queueing (an error path, or a cancel).
    pub(crate) fn release(&self) {
        if self.inner.state.lock().release() {
            self.inner.changed.notify_all();
        }
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
}
