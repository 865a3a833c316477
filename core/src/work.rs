//! Work items: a reusable, re-queueable function, and its state word.
//!
//! # The state of an item
//!
//! Kernel work items keep a packed `data` word (PENDING bit, pool or pwq
//! pointer, colour). Here the same information lives in [`WorkState`]
//! behind the item's own small lock, a *leaf* lock: it is only ever taken
//! last (after a pool lock, never before one), and nothing blocks under it.
//!
//! | `location`   | pending | meaning                                          |
//! |--------------|---------|--------------------------------------------------|
//! | `Off`        | no      | not queued (may be running: see `running`)       |
//! | `Owned`      | yes     | PENDING owned by a queuer or canceller in flight |
//! | `Queued`     | yes     | on a pool's worklist, a worker's scheduled list, or a pwq's inactive list |
//! | `Delayed`    | yes     | waiting for its timer                            |
//! | `Cancelling` | yes     | owned by `cancel_sync`, which waits for the running instance |
//!
//! PENDING is an ownership token, as in the kernel: whoever turns `Off`
//! into `Owned` must either queue the item or give PENDING back. Only the
//! holder of the lock of the pool named in `Queued` may take the item off
//! that pool, so a canceller that sees `Queued` locks that pool and checks
//! again; seeing `Owned` it retries (the owner is mid-flight).
//!
//! # Instances
//!
//! Every insertion onto a pool is a new *instance*, numbered by `queued`.
//! `running` is the instance executing now, `finished` the highest instance
//! that ran to completion or was cancelled. `flush_work` waits for the last
//! instance queued before it; instances run in order because an item is
//! never pending twice and never runs on two workers at once.

use crate::platform::{Arc, Condvar, Mutex, Platform, Std};
use crate::pool::Pool;
use crate::workqueue::WqShared;
use core::fmt;
use core::time::Duration;

/// Where a work item is (see the module table).
pub(crate) enum Location<P: Platform> {
    /// Not queued.
    Off,
    /// PENDING held by someone in the middle of queueing or grabbing it.
    Owned,
    /// On `pool`, queued on workqueue `wq`.
    Queued {
        /// The pool whose lock protects the entry.
        pool: Arc<Pool<P>>,
    },
    /// Waiting for timer `timer` (due at `deadline`) to queue it.
    Delayed {
        /// Timer id; a stale timer event carries another id.
        timer: u64,
        /// When the timer is due.
        deadline: Duration,
        /// Where the timer will queue it.
        wq: Arc<WqShared<P>>,
        /// The CPU asked for (`None`: the timer's local choice).
        cpu: Option<usize>,
    },
    /// Owned by `cancel_sync`, which is waiting for the running instance.
    Cancelling,
}

/// An item's state. Leaf lock: taken after pool locks, never before.
pub(crate) struct WorkState<P: Platform> {
    /// Where the item is.
    pub(crate) location: Location<P>,
    /// The pool it last ran on or was queued on (kernel: pool id in `data`),
    /// consulted for non-reentrancy.
    pub(crate) last_pool: Option<Arc<Pool<P>>>,
    /// Instances inserted so far.
    pub(crate) queued: u64,
    /// Highest instance finished or cancelled.
    pub(crate) finished: u64,
    /// The instance executing now.
    pub(crate) running: Option<u64>,
    /// Threads waiting on `changed` (flushers, cancellers).
    pub(crate) waiters: usize,
}

impl<P: Platform> WorkState<P> {
    /// Whether PENDING is set.
    pub(crate) fn is_pending(&self) -> bool {
        !matches!(self.location, Location::Off)
    }

    /// Whether instance `target` is neither queued nor running any more.
    pub(crate) fn instance_done(&self, target: u64) -> bool {
        self.finished >= target && self.running.is_none_or(|r| r > target)
    }
}

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
        let inner: Arc<WorkInner<P, WorkFn<P>>> = Arc::new(WorkInner {
            state: Mutex::new(WorkState {
                location: Location::Off,
                last_pool: None,
                queued: 0,
                finished: 0,
                running: None,
                waiters: 0,
            }),
            changed: Condvar::new(),
            func: f,
        });
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
        let mut state = self.inner.state.lock();
        if state.is_pending() {
            return None;
        }
        state.location = Location::Owned;
        Some(state.last_pool.clone())
    }

    /// Gives PENDING back without queueing (an error path, or a cancel).
    pub(crate) fn release(&self) {
        let mut state = self.inner.state.lock();
        debug_assert!(
            matches!(state.location, Location::Owned | Location::Cancelling),
            "releasing PENDING that this caller does not own"
        );
        state.location = Location::Off;
        if state.waiters > 0 {
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
