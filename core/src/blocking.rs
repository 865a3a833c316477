//! Blocking hooks: the user-space stand-in for the scheduler's
//! `wq_worker_sleeping` / `wq_worker_running`, and the worker's own
//! thread context (`current_work`).
//!
//! A worker that enters [`blocking`] stops counting as running; if work is
//! then pending and nobody runs, the first idle worker is woken (and, if it
//! was the last idle one, it creates a spare before starting). On leaving,
//! the worker counts as running again, so briefly more than one may run;
//! `keep_working` lets the surplus finish its item and go idle.
//!
//! The library's own waits (flushes, `cancel_sync`, drains, [`sleep`]) are
//! blocking sections already.

use crate::machine::pool::WqId;
use crate::platform::{Arc, Mutex, Platform, Std};
use crate::pool::WorkerId;
use crate::shared::{Pool, SystemShared, Work};
use core::time::Duration;

/// A worker thread's identity, kept in the platform's thread context.
pub(crate) struct WorkerContext<P: Platform> {
    /// I: the worker's pool.
    pub(crate) pool: Arc<Pool<P>>,
    /// I: the worker's id in the pool.
    pub(crate) id: WorkerId,
    /// S: the item being executed and its workqueue (written only by the
    /// worker itself; read by its own thread for self-deadlock checks).
    pub(crate) current: Mutex<P, Option<(Work<P>, WqId)>>,
}

impl<P: Platform> WorkerContext<P> {
    /// A context for worker `id` of `pool`.
    pub(crate) fn new(pool: Arc<Pool<P>>, id: WorkerId) -> Self {
        WorkerContext { pool, id, current: Mutex::new(None) }
    }
}

impl<P: Platform> WorkerContext<P> {
    /// The workqueue of the item being executed.
    pub(crate) fn current_wq(&self) -> Option<WqId> {
        self.current.lock().as_ref().map(|(_, wq)| *wq)
    }
}

/// The thread context of a system's engine thread that is not a worker
/// (the timer thread): marks it so that handles dropped there are not
/// allowed to wait.
pub(crate) struct EngineThread {
    /// I: the address of the system's shared state (identity only).
    system: usize,
}

impl EngineThread {
    /// The marker of `system`'s threads.
    pub(crate) fn of<P: Platform>(system: &Arc<SystemShared<P>>) -> Self {
        EngineThread { system: Arc::as_ptr(system) as usize }
    }
}

/// Whether the calling thread is one of `system`'s own threads (a worker,
/// an attached rescuer, the timer thread), where dropping a handle must not
/// wait for the system's work: it could wait for this very thread.
pub(crate) fn on_engine_thread<P: Platform>(system: &Arc<SystemShared<P>>) -> bool {
    let Some(context) = P::thread_context() else {
        return false;
    };
    if let Some(marker) = context.downcast_ref::<EngineThread>() {
        return marker.system == Arc::as_ptr(system) as usize;
    }
    context.downcast_ref::<WorkerContext<P>>().is_some_and(|ctx| Arc::ptr_eq(&ctx.pool.shared, system))
}

/// The calling thread's worker context, if it is a worker of platform `P`.
pub(crate) fn current_worker<P: Platform>() -> Option<Arc<WorkerContext<P>>> {
    P::thread_context()?.downcast::<WorkerContext<P>>().ok()
}

/// Marks the caller asleep for the pool while it lives (kernel
/// `wq_worker_sleeping` on creation, `wq_worker_running` on drop).
struct SleepingWorker<P: Platform> {
    ctx: Option<Arc<WorkerContext<P>>>,
}

impl<P: Platform> SleepingWorker<P> {
    fn enter() -> Self {
        let Some(ctx) = current_worker::<P>() else {
            return SleepingWorker { ctx: None };
        };
        if !ctx.pool.shared.config.concurrency_management {
            return SleepingWorker { ctx: None };
        }
        let mut guard = ctx.pool.locked.lock();
        let worker = ctx.id;
        // Machine PS7; a nested section is accounted for by the outer one.
        guard.begin(crate::machine::trace::StepId::Block);
        if !guard.step(|m, fx| m.worker_blocked(worker, fx)).result {
            return SleepingWorker { ctx: None };
        }
        guard.tracer.record(|pool| crate::trace::Event::Blocked { pool, worker });
        drop(guard);
        SleepingWorker { ctx: Some(ctx) }
    }
}

impl<P: Platform> Drop for SleepingWorker<P> {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            let mut guard = ctx.pool.locked.lock();
            let worker = ctx.id;
            guard.begin(crate::machine::trace::StepId::Unblock);
            guard.tracer.record(|pool| crate::trace::Event::Unblocked { pool, worker });
            guard.machine.worker_unblocked(worker);
        }
    }
}

/// Runs `f` as a blocking section on platform `P` (see [`blocking`]).
pub fn blocking_on<P: Platform, R>(f: impl FnOnce() -> R) -> R {
    let _sleeping = SleepingWorker::<P>::enter();
    f()
}

/// Runs `f`, telling the pool that the calling worker is blocked meanwhile,
/// so that another worker can run pending items on this CPU.
///
/// Outside a worker thread it simply runs `f`. Wrap every wait that may take
/// a while and is not a library wait already: I/O, locks held by others,
/// channel receives.
///
/// ```
/// use cmwq::{blocking, system_wq, Work};
/// let work = Work::new(|| {
///     let answer = blocking(|| { cmwq::sleep(core::time::Duration::from_millis(5)); 42 });
///     assert_eq!(answer, 42);
/// });
/// system_wq().queue(&work).unwrap();
/// work.flush().unwrap();
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    blocking_on::<Std, R>(f)
}

/// Sleeps for `duration` as a blocking section.
pub fn sleep(duration: Duration) {
    blocking(|| Std::sleep(duration))
}

/// The work item the calling thread is executing on platform `P`.
pub fn current_work_on<P: Platform>() -> Option<Work<P>> {
    let ctx = current_worker::<P>()?;
    let current = ctx.current.lock();
    current.as_ref().map(|(work, _)| work.clone())
}

/// The work item the calling thread is executing, if it is a worker
/// (kernel `current_work`).
pub fn current_work() -> Option<Work<Std>> {
    current_work_on::<Std>()
}
