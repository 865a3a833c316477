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
use crate::platform::{os_thread, Arc, Mutex, Platform, Std};
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
    /// I: the worker's slot on its pool's watch list, if the blocking
    /// monitor observes it (`monitor.rs`).
    pub(crate) watch: Option<Arc<crate::watch::WatchSlot<P>>>,
}

impl<P: Platform> WorkerContext<P> {
    /// A context for worker `id` of `pool`, not observed by the monitor.
    pub(crate) fn new(pool: Arc<Pool<P>>, id: WorkerId) -> Self {
        WorkerContext { pool, id, current: Mutex::new(None), watch: None }
    }

    /// A context for worker `id` of `pool`, called on the worker's own
    /// thread: observed by the blocking monitor if the system detects
    /// blocking or CPU hogs and the platform can probe this thread (its
    /// slot goes on the pool's watch list; [`WorkerContext::unwatch`] takes
    /// it off).
    pub(crate) fn new_watched(pool: Arc<Pool<P>>, id: WorkerId) -> Self {
        let shared = &pool.shared;
        let watch = Some(())
            .filter(|_| crate::watch::Thresholds::of(&shared.config).any())
            .and_then(|_| shared.platform.thread_probe())
            .map(|probe| Arc::new(crate::watch::WatchSlot::new(id, probe)));
        if let Some(slot) = &watch {
            pool.watch.lock().push(slot.clone());
        }
        WorkerContext { pool, id, current: Mutex::new(None), watch }
    }

    /// Takes the worker's slot off its pool's watch list (as it exits).
    pub(crate) fn unwatch(&self) {
        if let Some(slot) = &self.watch {
            self.pool.watch.lock().retain(|s| !Arc::ptr_eq(s, slot));
        }
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
        let mut guard = ctx.pool.lock();
        let worker = ctx.id;
        // Machine PS7; a nested section is accounted for by the outer one.
        guard.begin(crate::machine::trace::StepId::Block);
        if !guard.step(|m, fx| m.worker_blocked(worker, fx)).result {
            return SleepingWorker { ctx: None };
        }
        guard.tracer.record(|pool| crate::trace::Event::Blocked { pool, worker });
        drop(guard);
        // Counted out already: the monitor need not look at it until it
        // leaves (it would only be told so under the pool lock).
        if let Some(slot) = &ctx.watch {
            slot.end();
        }
        SleepingWorker { ctx: Some(ctx) }
    }
}

impl<P: Platform> Drop for SleepingWorker<P> {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            let mut guard = ctx.pool.lock();
            let worker = ctx.id;
            guard.begin(crate::machine::trace::StepId::Unblock);
            guard.tracer.record(|pool| crate::trace::Event::Unblocked { pool, worker });
            guard.machine.worker_unblocked(worker);
            guard.publish_load();
            // A new run, for the monitor to watch again.
            if let Some(slot) = &ctx.watch {
                if let Some(state) = guard.machine.pool().worker(worker).filter(|w| w.current().is_some()) {
                    slot.begin(state.run(), &ctx.pool.shared.monitor);
                }
            }
        }
    }
}

/// A worker of some platform, its platform type erased: what the untyped
/// [`blocking`], [`sleep`] and [`current_work`] need on a worker of a
/// platform other than [`Std`].
trait AnyWorker {
    /// Enters a blocking section; dropping the value leaves it.
    fn block(&self) -> Box<dyn core::any::Any>;
    /// Sleeps on the worker's platform (its clock), as a blocking section.
    fn sleep(&self, duration: Duration);
    /// The platform's type name, for messages.
    fn platform(&self) -> &'static str;
}

impl<P: Platform> AnyWorker for WorkerContext<P> {
    fn block(&self) -> Box<dyn core::any::Any> {
        Box::new(SleepingWorker::<P>::enter())
    }

    fn sleep(&self, duration: Duration) {
        let _sleeping = SleepingWorker::<P>::enter();
        self.pool.shared.platform.sleep(duration)
    }

    fn platform(&self) -> &'static str {
        core::any::type_name::<P>()
    }
}

/// How to find the calling thread's worker of one platform.
type Lookup = fn() -> Option<Arc<dyn AnyWorker>>;

fn lookup<P: Platform>() -> Option<Arc<dyn AnyWorker>> {
    current_worker::<P>().map(|ctx| ctx as Arc<dyn AnyWorker>)
}

/// A worker of platform `P` runs on this OS thread while this lives
/// (nothing for [`Std`], which [`blocking`] asks directly). On a platform
/// whose threads are OS threads that is the thread's own worker; on a
/// model checker's (loom, shuttle: its threads share one OS thread) every
/// worker of the model registers on that thread, and each lookup goes
/// through the model's own thread-local context, so it still finds the
/// calling thread's.
pub(crate) struct Registered {
    platform: Option<core::any::TypeId>,
}

/// Registers platform `P` for the calling thread's worker (see
/// [`Registered`]).
pub(crate) fn register<P: Platform>() -> Registered {
    let id = core::any::TypeId::of::<P>();
    if id == core::any::TypeId::of::<Std>() {
        return Registered { platform: None };
    }
    os_thread::register(id, || std::rc::Rc::new(lookup::<P> as Lookup));
    Registered { platform: Some(id) }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(id) = self.platform {
            os_thread::unregister(id);
        }
    }
}

/// The calling thread's worker on a platform other than [`Std`], if it is
/// one.
fn other_worker() -> Option<Arc<dyn AnyWorker>> {
    os_thread::lookups().into_iter().filter_map(|lookup| lookup.downcast_ref::<Lookup>().copied()).find_map(|f| f())
}

/// Runs `f` as a blocking section on platform `P` (see [`blocking`], which
/// finds the platform by itself).
pub fn blocking_on<P: Platform, R>(f: impl FnOnce() -> R) -> R {
    let _sleeping = SleepingWorker::<P>::enter();
    f()
}

/// Runs `f`, telling the pool that the calling worker is blocked meanwhile,
/// so that another worker can run pending items on this CPU.
///
/// Works on a worker of any platform (the std one, or one of your own:
/// the worker's platform is found through the thread it runs on).
/// Outside a worker thread it simply runs `f`. Wrap every wait that may
/// take a while and is not a library wait already: I/O, locks held by
/// others, channel receives.
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
    if current_worker::<Std>().is_some() {
        return blocking_on::<Std, R>(f);
    }
    let _sleeping = other_worker().map(|worker| worker.block());
    f()
}

/// Sleeps for `duration` as a blocking section: on a worker, on its
/// platform's clock ([`Platform::sleep`]: a virtual clock's time on a
/// platform that has one); elsewhere a real sleep of the OS thread.
pub fn sleep(duration: Duration) {
    let worker = current_worker::<Std>().map(|ctx| ctx as Arc<dyn AnyWorker>).or_else(other_worker);
    match worker {
        Some(worker) => worker.sleep(duration),
        None => os_thread::sleep(duration),
    }
}

/// The work item the calling thread is executing on platform `P`.
pub fn current_work_on<P: Platform>() -> Option<Work<P>> {
    let ctx = current_worker::<P>()?;
    let current = ctx.current.lock();
    current.as_ref().map(|(work, _)| work.clone())
}

/// The work item the calling thread is executing, if it is a worker of
/// the std platform (kernel `current_work`).
///
/// # Panics
/// On a worker of another platform, whose items are `Work<P>`, not
/// `Work<Std>`: the message names the call to make instead,
/// [`current_work_on::<P>()`](current_work_on).
pub fn current_work() -> Option<Work<Std>> {
    if let Some(work) = current_work_on::<Std>() {
        return Some(work);
    }
    if let Some(worker) = other_worker() {
        panic!(
            "cmwq::current_work() returns a Work<Std>, but this thread is a worker of platform `{0}`: \
             call cmwq::current_work_on::<{0}>() instead",
            worker.platform()
        );
    }
    None
}
