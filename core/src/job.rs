//! One-shot jobs: [`Workqueue::spawn`] runs an `FnOnce() -> T` once, as a
//! work item of the workqueue, and hands back a [`JobHandle`] that joins
//! it (blocking, [`JobHandle::join`]) or awaits it (it is a [`Future`]).
//!
//! A job is a work item like any other (exactly once, `max_active`,
//! ordering, flush, drain and destroy all count it); it only differs in
//! what it runs and in its outcome, kept beside its state in the item's
//! own allocation. Its outcome is published by the executor once the
//! instance is finished on the item ([`Runnable::finished`]): after a panic
//! is counted on the workqueue, and after the item stops running, so a
//! `join` that returns has seen everything a `flush_work` of the item
//! would (a `flush_workqueue` may still count the instance in flight for a
//! moment: the pool's section ends it after the item's).
//!
//! The handle owns the only way to cancel the job (the item is private), so
//! "cancelled" is exact: [`JobHandle::cancel`] returned `true` and the
//! function never ran.
//!
//! [`Workqueue::spawn`]: crate::Workqueue::spawn

use crate::blocking::{blocking_on, current_work_on};
use crate::error::WaitError;
use crate::platform::{panic_message, Arc, AtomicUsize, Condvar, Mutex, Platform, Std};
use crate::shared::{Runnable, Work, WorkInner};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

/// Why a job gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The job's function panicked; the panic was contained and counted on
    /// the workqueue (`Workqueue::panic_count`) before this was returned.
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// [`JobHandle::cancel`] took the job off its queue before it started:
    /// its function never ran.
    Cancelled,
    /// `join` was called from inside the job itself, which would wait for
    /// itself forever.
    Wait(WaitError),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked { message } => write!(f, "the job panicked: {message}"),
            JobError::Cancelled => write!(f, "the job was cancelled before it started; its function never ran"),
            JobError::Wait(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for JobError {}

/// How a job ended.
enum Outcome<T> {
    Value(T),
    Panicked(String),
    Cancelled,
}

/// A job's outcome and who waits for it. J: the job's own lock (a leaf,
/// like the item's state lock: nothing is locked under it).
struct Slot<T> {
    /// Set by the run, published by `finished` (or set by a cancel).
    outcome: Option<Outcome<T>>,
    /// The outcome may be taken: the instance is finished on the item.
    published: bool,
    /// The outcome was taken by the handle.
    taken: bool,
    /// The function started (so a later cancel of a re-queued instance,
    /// through `current_work`, is not "never ran").
    ran: bool,
    /// The task awaiting the handle, if any.
    waker: Option<Waker>,
}

/// The part of a job the handle sees (independent of the function's type).
struct JobCore<T: Send, P: Platform> {
    slot: Mutex<P, Slot<T>>,
    /// Notified when the outcome is published.
    ready: Condvar<P>,
}

impl<T, P: Platform> JobCore<T, P>
where
    T: Send,
{
    fn new() -> Self {
        JobCore {
            slot: Mutex::new(Slot { outcome: None, published: false, taken: false, ran: false, waker: None }),
            ready: Condvar::new(),
        }
    }

    /// Publishes the outcome (setting it first, if given) and wakes the
    /// waiters; the waker is woken outside the lock.
    fn publish(&self, outcome: Option<Outcome<T>>) {
        let waker = {
            let mut slot = self.slot.lock();
            // The first outcome stands (a cancel publishes only where the
            // function never ran).
            if let Some(outcome) = outcome.filter(|_| !slot.published) {
                slot.outcome = Some(outcome);
            }
            slot.published = true;
            self.ready.notify_all();
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A job: its function (taken when it runs) and its outcome.
struct Job<F: Send, T: Send, P: Platform> {
    core: JobCore<T, P>,
    func: Mutex<P, Option<F>>,
}

/// The handle's view of a job: its core, whatever the function.
trait JobView<T: Send, P: Platform>: Send + Sync + 'static {
    fn core(&self) -> &JobCore<T, P>;
    /// Takes the function back (a refused queueing).
    fn take_func(&self) -> Option<Box<dyn core::any::Any + Send>>;
}

impl<F, T, P> JobView<T, P> for Job<F, T, P>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    P: Platform,
{
    fn core(&self) -> &JobCore<T, P> {
        &self.core
    }

    fn take_func(&self) -> Option<Box<dyn core::any::Any + Send>> {
        let func = self.func.lock().take()?;
        Some(Box::new(func))
    }
}

impl<F, T, P> Runnable<P> for Job<F, T, P>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    P: Platform,
{
    fn run(&self, _me: &Work<P>) {
        let Some(func) = self.func.lock().take() else { return };
        self.core.slot.lock().ran = true;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(func)) {
            Ok(value) => self.core.slot.lock().outcome = Some(Outcome::Value(value)),
            Err(payload) => {
                self.core.slot.lock().outcome = Some(Outcome::Panicked(panic_message(payload.as_ref())));
                // The worker counts it on the workqueue, as for any item.
                std::panic::resume_unwind(payload)
            }
        }
    }

    fn finished(&self) {
        self.core.publish(None);
    }

    fn has_outcome(&self) -> bool {
        true
    }
}

/// The handle of a job started by [`Workqueue::spawn`]: join it
/// ([`JobHandle::join`]), await it (it is a [`Future`] of the same
/// result), or cancel it before it starts. Dropping the handle detaches
/// the job: it still runs.
///
/// ```
/// use cmwq::system_wq;
/// let job = system_wq().spawn(|| 6 * 7).unwrap();
/// assert_eq!(job.join().unwrap(), 42);
/// ```
///
/// [`Workqueue::spawn`]: crate::Workqueue::spawn
pub struct JobHandle<T: Send + 'static, P: Platform = Std> {
    job: Arc<WorkInner<P, dyn JobView<T, P>>>,
    work: Work<P>,
}

impl<T: Send + 'static, P: Platform> fmt::Debug for JobHandle<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("work", &self.work).field("finished", &self.is_finished()).finish()
    }
}

impl<T: Send + 'static, P: Platform> JobHandle<T, P> {
    /// A job running `func`, not yet queued: the handle and the item, one
    /// allocation.
    pub(crate) fn new<F: FnOnce() -> T + Send + 'static>(func: F) -> Self {
        let job: Arc<WorkInner<P, Job<F, T, P>>> = Arc::new(WorkInner {
            state: Mutex::new(Default::default()),
            queued_hint: AtomicUsize::new(0),
            changed: Condvar::new(),
            wakers: Mutex::new(Default::default()),
            name: core::any::type_name::<F>(),
            func: Job { core: JobCore::new(), func: Mutex::new(Some(func)) },
        });
        let work = Work { inner: job.clone() };
        JobHandle { job, work }
    }

    /// The job's item, to queue it.
    pub(crate) fn work(&self) -> &Work<P> {
        &self.work
    }

    /// The function back, after a refused queueing.
    pub(crate) fn into_func<F: 'static>(self) -> Option<F> {
        self.job.func.take_func()?.downcast::<F>().ok().map(|f| *f)
    }

    fn core(&self) -> &JobCore<T, P> {
        self.job.func.core()
    }

    /// Whether the job has finished (run, panicked or been cancelled):
    /// `join` would return at once.
    pub fn is_finished(&self) -> bool {
        self.core().slot.lock().published
    }

    /// Takes the job off its queue if it has not started (kernel
    /// `cancel_work`): returns whether it did. Then its function never
    /// runs (it is dropped here, with what it captured), and `join`
    /// returns [`JobError::Cancelled`]. A job already running or finished
    /// is left alone (`false`).
    pub fn cancel(&self) -> bool {
        if !self.work.cancel() {
            return false;
        }
        let core = self.core();
        if core.slot.lock().ran {
            // An instance queued again from inside the job (through
            // `current_work`) was taken off; the job itself ran.
            return false;
        }
        core.publish(Some(Outcome::Cancelled));
        drop(self.job.func.take_func());
        true
    }

    /// Waits for the job and returns its value: blocks the calling thread
    /// (on a worker, as a blocking section, so that the pool's other items
    /// go on). A panic in the job comes back as [`JobError::Panicked`],
    /// counted on the workqueue by the time it returns.
    ///
    /// Refused from inside the job itself ([`JobError::Wait`]). As with
    /// `flush_work` in the kernel, a job that joins another job queued
    /// behind it on an ordered or `max_active`-limited workqueue waits
    /// forever: the joiner holds the active slot the other needs.
    ///
    /// # Panics
    /// If the handle was already awaited to completion (its outcome is
    /// taken).
    pub fn join(self) -> Result<T, JobError> {
        if current_work_on::<P>().is_some_and(|running| running == self.work) {
            return Err(JobError::Wait(WaitError::OwnWork { operation: "JobHandle::join" }));
        }
        let core = self.core();
        // The outcome is taken inside the blocking section: J is released
        // before the section's end takes the pool lock (J is a leaf).
        blocking_on::<P, _>(|| {
            let mut slot = core.slot.lock();
            assert!(!slot.taken, "JobHandle::join after the handle was awaited to completion");
            while !slot.published {
                slot = core.ready.wait(slot);
            }
            take(&mut slot)
        })
    }
}

/// The published outcome, taken once.
fn take<T>(slot: &mut Slot<T>) -> Result<T, JobError> {
    slot.taken = true;
    match slot.outcome.take() {
        Some(Outcome::Value(value)) => Ok(value),
        Some(Outcome::Panicked(message)) => Err(JobError::Panicked { message }),
        Some(Outcome::Cancelled) => Err(JobError::Cancelled),
        // Published without an outcome: the function was gone when the
        // item ran, which only a second run of a one-shot item could see.
        None => Err(JobError::Panicked { message: "the job's outcome was taken already".to_string() }),
    }
}

/// Awaiting a handle: ready once the job has finished, with what
/// [`JobHandle::join`] would return (without blocking; the executor's
/// waker is woken when the job finishes). Polling it again after it was
/// ready panics, as for any future.
impl<T: Send + 'static, P: Platform> Future for JobHandle<T, P> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.core().slot.lock();
        assert!(!slot.taken, "a JobHandle was polled after it completed");
        if slot.published {
            return Poll::Ready(take(&mut slot));
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
