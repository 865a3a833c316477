//! Workqueues: named front doors onto the shared pools, with their flags,
//! `max_active`, draining and destruction.
//!
//! A workqueue owns no threads. It has one pool-workqueue on every pool it
//! uses (each CPU's pool of its priority, or the unbound pool) and queues
//! items there; the pools' workers, shared by every workqueue, run them.

use crate::config::{DEFAULT_MAX_ACTIVE, MAX_ACTIVE_LIMIT};
use crate::delayed::DelayedWork;
use crate::error::{BuildError, QueueError, WaitError};
use crate::job::JobHandle;
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform, Std};
use crate::shared::{Control, DelayedSet, FlushState, PanicReport, Rescuer, Work, WqFlags, WqShared};
use crate::system::System;
use core::fmt;
use core::sync::atomic::Ordering;
use core::time::Duration;
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;

/// Validates a `max_active` request; 0 means the default.
fn effective_max_active(requested: usize, ordered: bool) -> Result<usize, BuildError> {
    if ordered {
        return match requested {
            0 | 1 => Ok(1),
            _ => Err(BuildError::OrderedMaxActive { requested }),
        };
    }
    match requested {
        0 => Ok(DEFAULT_MAX_ACTIVE),
        n if n > MAX_ACTIVE_LIMIT => Err(BuildError::MaxActiveTooLarge { requested: n, limit: MAX_ACTIVE_LIMIT }),
        n => Ok(n),
    }
}

/// Builds a [`Workqueue`] (kernel `alloc_workqueue`).
///
/// ```
/// use cmwq::{System, Workqueue};
/// let system = System::builder().cpus(2).build()?;
/// let wq = Workqueue::builder("events_io").max_active(16).build(&system)?;
/// assert_eq!(wq.max_active(), 16);
/// assert!(Workqueue::builder("too_many").max_active(4096).build(&system).is_err());
/// # Ok::<(), cmwq::BuildError>(())
/// ```
///
/// On another platform: `Workqueue::<P>::builder(name)` or
/// `WorkqueueBuilder::new(name)`, built on a `System<P>`.
pub struct WorkqueueBuilder<P: Platform = Std> {
    name: String,
    max_active: usize,
    flags: WqFlags,
    platform: core::marker::PhantomData<fn() -> P>,
}

impl<P: Platform> Clone for WorkqueueBuilder<P> {
    fn clone(&self) -> Self {
        WorkqueueBuilder {
            name: self.name.clone(),
            max_active: self.max_active,
            flags: self.flags,
            platform: core::marker::PhantomData,
        }
    }
}

impl<P: Platform> fmt::Debug for WorkqueueBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkqueueBuilder")
            .field("name", &self.name)
            .field("max_active", &self.max_active)
            .field("flags", &self.flags)
            .finish()
    }
}

impl<P: Platform> WorkqueueBuilder<P> {
    /// Starts building a workqueue called `name` (see also
    /// [`Workqueue::builder`]); the platform is the system's it is built on.
    pub fn new(name: impl Into<String>) -> Self {
        WorkqueueBuilder {
            name: name.into(),
            max_active: 0,
            flags: WqFlags::default(),
            platform: core::marker::PhantomData,
        }
    }

    /// Items that may be active at once per pool (per CPU for a bound
    /// workqueue); the rest wait in FIFO order. 0 means the default (256);
    /// above 512 is an error.
    pub fn max_active(&mut self, max_active: usize) -> &mut Self {
        self.max_active = max_active;
        self
    }

    /// Served by the unbound pool: no CPU affinity, and concurrency
    /// management with a target of one running worker per CPU (a
    /// departure: the kernel does not manage unbound pools), so CPU-bound
    /// items use up to every CPU and an item that blocks in
    /// [`blocking`](crate::blocking) is replaced. An item that waits
    /// without telling the pool keeps its worker counted as running: see
    /// [`SystemBuilder::unbound_concurrency`](crate::SystemBuilder::unbound_concurrency)
    /// for the kernel's unmanaged rule.
    pub fn unbound(&mut self) -> &mut Self {
        self.flags.unbound = true;
        self
    }

    /// Served by the high-priority pools.
    pub fn highpri(&mut self) -> &mut Self {
        self.flags.highpri = true;
        self
    }

    /// Items may hog the CPU: while one runs, it does not hold back other
    /// items of the pool.
    pub fn cpu_intensive(&mut self) -> &mut Self {
        self.flags.cpu_intensive = true;
        self
    }

    /// One item at a time, in queueing order (kernel
    /// `alloc_ordered_workqueue`): unbound with `max_active` 1.
    pub fn ordered(&mut self) -> &mut Self {
        self.flags.ordered = true;
        self.flags.unbound = true;
        self
    }

    /// The workqueue must make progress even when no worker thread can be
    /// created (kernel `WQ_MEM_RECLAIM`): it gets its own rescuer thread,
    /// created now, which runs its items when a pool needs a worker it
    /// cannot have. Building fails with [`BuildError::RescuerSpawn`] if that
    /// thread cannot be created.
    ///
    /// The rescuer is one thread: two items of the same workqueue that wait
    /// for each other can still deadlock once both need rescue, as in the
    /// kernel. Give each step of such a chain its own `mem_reclaim`
    /// workqueue.
    pub fn mem_reclaim(&mut self) -> &mut Self {
        self.flags.mem_reclaim = true;
        self
    }

    /// Checks the name and `max_active` (the one validation point of
    /// [`WorkqueueBuilder::build`]); returns the effective `max_active`.
    pub fn validate(&self) -> Result<usize, BuildError> {
        crate::config::check_name("workqueue name", &self.name)?;
        effective_max_active(self.max_active, self.flags.ordered)
    }

    /// Creates the workqueue on `system` (and its rescuer thread, for a
    /// `mem_reclaim` workqueue).
    pub fn build(&self, system: &System<P>) -> Result<Workqueue<P>, BuildError> {
        let max_active = self.validate()?;
        let shared = system.shared();
        let pools = system.pools_for(self.flags.unbound, self.flags.highpri)?;
        let rescuer = if self.flags.mem_reclaim {
            let rescuer = Rescuer::start(&shared.platform, &shared.config, &self.name)
                .map_err(|source| BuildError::RescuerSpawn { workqueue: self.name.clone(), source })?;
            Some(rescuer)
        } else {
            None
        };
        shared.live_workqueues.fetch_add(1, Ordering::AcqRel);
        let wq = Arc::new(WqShared {
            id: shared.next_wq_id.fetch_add(1, Ordering::Relaxed),
            name: self.name.clone(),
            flags: self.flags,
            system: shared.clone(),
            pools,
            draining: AtomicUsize::new(0),
            dying: AtomicUsize::new(0),
            orphaned: AtomicUsize::new(0),
            inflight: CachePadded::new(AtomicUsize::new(0)),
            control: Mutex::new(Control { max_active, destroyed: false }),
            delayed: Mutex::new(DelayedSet::default()),
            delayed_cv: Condvar::new(),
            delayed_wakers: Mutex::new(Default::default()),
            flush: FlushState::new(),
            panics: AtomicUsize::new(0),
            panic_log: Mutex::new(VecDeque::new()),
            rescuer,
        });
        for pool in &wq.pools {
            let mut guard = pool.lock();
            guard.add_pwq(&wq, max_active, 0);
        }
        Ok(Workqueue { handle: Arc::new(WqHandle { shared: wq, system: system.clone() }) })
    }
}

/// Destroys the workqueue when the last [`Workqueue`] clone goes.
struct WqHandle<P: Platform> {
    shared: Arc<WqShared<P>>,
    /// Keeps the system (and its pools) alive while the workqueue exists.
    system: System<P>,
}

impl<P: Platform> Drop for WqHandle<P> {
    fn drop(&mut self) {
        if !P::may_wait_while_unwinding() && crate::platform::os_thread::panicking() {
            return; // left to the model checker (see the Platform item)
        }
        if crate::blocking::on_engine_thread::<P>(&self.shared.system) {
            // Dropped on one of the system's own threads (inside an item,
            // maybe one of ours; or by the engine dropping an item's
            // captured state): draining here could wait for this very
            // thread. Refuse new work now; finalize once empty.
            self.shared.orphan();
            return;
        }
        self.shared.destroy();
    }
}

/// A workqueue: a handle for queueing work onto the shared worker pools.
///
/// Cheap to clone; the workqueue is drained and destroyed when the last
/// clone is dropped, or explicitly with [`Workqueue::destroy`].
pub struct Workqueue<P: Platform = Std> {
    handle: Arc<WqHandle<P>>,
}

impl<P: Platform> Clone for Workqueue<P> {
    fn clone(&self) -> Self {
        Workqueue { handle: self.handle.clone() }
    }
}

impl<P: Platform> fmt::Debug for Workqueue<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workqueue")
            .field("name", &self.handle.shared.name)
            .field("flags", &self.handle.shared.flags)
            .field("max_active", &self.max_active())
            .finish()
    }
}

impl<P: Platform> Workqueue<P> {
    /// Starts building a workqueue called `name`: `Workqueue::builder(name)`
    /// (the platform is inferred from the system it is built on) or
    /// `Workqueue::<P>::builder(name)`.
    pub fn builder(name: impl Into<String>) -> WorkqueueBuilder<P> {
        WorkqueueBuilder::new(name)
    }
}

impl<P: Platform> Workqueue<P> {
    fn wq(&self) -> &WqShared<P> {
        &self.handle.shared
    }

    /// The workqueue's name.
    pub fn name(&self) -> &str {
        &self.wq().name
    }

    /// The system this workqueue belongs to.
    pub fn system(&self) -> &System<P> {
        &self.handle.system
    }

    /// The workqueue's identity in trace events (feature `trace`).
    #[cfg(feature = "trace")]
    pub fn trace_id(&self) -> usize {
        self.wq().id
    }

    /// Queues `work` (kernel `queue_work`). Returns `Ok(false)` if it was
    /// already pending (nothing is added).
    ///
    /// Where it goes (SPEC.md C9): called from one of this system's workers
    /// of a CPU's pool, that CPU's pool, as in the kernel; from any other
    /// thread, the pool of the CPU the caller runs on while it is idle,
    /// else another online CPU's pool if that one is less loaded, so that
    /// one submitter keeps every CPU busy (a departure from the kernel).
    /// An item that still runs goes where it runs. Items of a workqueue
    /// that is not ordered have no order across pools.
    ///
    /// Fails, handing the item back, if the workqueue is destroyed, or is
    /// draining and the caller is not one of its own items.
    pub fn queue(&self, work: &Work<P>) -> Result<bool, QueueError<Work<P>>> {
        self.wq().queue_work(None, work)
    }

    /// Queues `work` on `cpu` (kernel `queue_work_on`). For an unbound
    /// workqueue the CPU is only checked, not honoured.
    pub fn queue_on(&self, cpu: usize, work: &Work<P>) -> Result<bool, QueueError<Work<P>>> {
        self.check_cpu(cpu, work)?;
        self.wq().queue_work(Some(cpu), work)
    }

    /// Runs `func` once as a work item of this workqueue, placed as
    /// [`Workqueue::queue`] places an item, and returns its handle: [`JobHandle::join`] waits for the value,
    /// and the handle is a `Future` of it. The job is an item like any
    /// other (exactly once, `max_active`, ordering, flush, drain and
    /// destroy count it); a panic in it is contained and counted on the
    /// workqueue, and comes back from `join` as an error. One allocation
    /// holds the function, the item and the outcome.
    ///
    /// Fails, handing `func` back, where [`Workqueue::queue`] would.
    ///
    /// ```
    /// use cmwq::{System, Workqueue};
    /// let system = System::builder().cpus(2).build()?;
    /// let wq = Workqueue::builder("jobs").build(&system)?;
    /// let jobs: Vec<_> = (0..4u64).map(|n| wq.spawn(move || n * n).unwrap()).collect();
    /// let squares: Vec<u64> = jobs.into_iter().map(|job| job.join().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// # Ok::<(), cmwq::BuildError>(())
    /// ```
    pub fn spawn<T, F>(&self, func: F) -> Result<JobHandle<T, P>, QueueError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_job(None, func)
    }

    /// [`Workqueue::spawn`] on `cpu` (kernel `queue_work_on`). For an
    /// unbound workqueue the CPU is only checked, not honoured.
    pub fn spawn_on<T, F>(&self, cpu: usize, func: F) -> Result<JobHandle<T, P>, QueueError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let cpus = self.wq().system.config.cpus;
        if cpu >= cpus {
            return Err(QueueError::NoSuchCpu { work: func, cpu, cpus });
        }
        self.spawn_job(Some(cpu), func)
    }

    fn spawn_job<T, F>(&self, cpu: Option<usize>, func: F) -> Result<JobHandle<T, P>, QueueError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let job = JobHandle::new(func);
        match self.wq().queue_work(cpu, job.work()) {
            Ok(_) => Ok(job),
            // Never queued, so never run: the function is still there.
            Err(refused) => Err(refused.map(|work| {
                drop(work);
                job.into_func::<F>().expect("a refused job still holds its function")
            })),
        }
    }

    fn check_cpu<W: Clone>(&self, cpu: usize, work: &W) -> Result<(), QueueError<W>> {
        let cpus = self.wq().system.config.cpus;
        if cpu >= cpus {
            return Err(QueueError::NoSuchCpu { work: work.clone(), cpu, cpus });
        }
        Ok(())
    }

    /// Queues `work` after `delay` (kernel `queue_delayed_work`). Returns
    /// `Ok(false)` if it was already pending. A zero delay queues at once.
    pub fn queue_delayed(&self, work: &DelayedWork<P>, delay: Duration) -> Result<bool, QueueError<DelayedWork<P>>> {
        crate::delayed::queue_delayed(&self.handle.shared, None, work, delay)
    }

    /// Queues `work` on `cpu` after `delay` (kernel `queue_delayed_work_on`).
    pub fn queue_delayed_on(
        &self,
        cpu: usize,
        work: &DelayedWork<P>,
        delay: Duration,
    ) -> Result<bool, QueueError<DelayedWork<P>>> {
        self.check_cpu(cpu, work)?;
        crate::delayed::queue_delayed(&self.handle.shared, Some(cpu), work, delay)
    }

    /// Queues `work` after `delay`, replacing any pending timer or queued
    /// instance (kernel `mod_delayed_work`). Returns `Ok(true)` if it was
    /// pending before, `Ok(false)` if it was idle (or being cancelled, in
    /// which case it is not queued).
    pub fn mod_delayed(&self, work: &DelayedWork<P>, delay: Duration) -> Result<bool, QueueError<DelayedWork<P>>> {
        crate::delayed::mod_delayed(&self.handle.shared, None, work, delay)
    }

    /// [`Workqueue::mod_delayed`] on `cpu`.
    pub fn mod_delayed_on(
        &self,
        cpu: usize,
        work: &DelayedWork<P>,
        delay: Duration,
    ) -> Result<bool, QueueError<DelayedWork<P>>> {
        self.check_cpu(cpu, work)?;
        crate::delayed::mod_delayed(&self.handle.shared, Some(cpu), work, delay)
    }

    /// Waits for every item queued before this call to finish (kernel
    /// `flush_workqueue`). Items queued after it started are not waited
    /// for, so concurrent queueing cannot livelock it. Delayed items whose
    /// timer has not fired are not waited for.
    ///
    /// Refused from one of this workqueue's own items (it would wait for
    /// itself).
    pub fn flush(&self) -> Result<(), WaitError> {
        self.wq().check_not_own("flush_workqueue")?;
        self.wq().flush.flush(self.wq());
        Ok(())
    }

    /// Waits until the workqueue is empty, delayed items included (kernel
    /// `drain_workqueue`). Meanwhile only the workqueue's own items may
    /// queue onto it (chained queueing); others get
    /// [`QueueError::Draining`].
    pub fn drain(&self) -> Result<(), WaitError> {
        self.wq().check_not_own("drain_workqueue")?;
        self.wq().drain();
        Ok(())
    }

    /// [`Workqueue::flush`] without blocking: the flush begins now (it takes
    /// its ticket, so items queued after this call are not waited for),
    /// and the returned future is ready once every item queued before the
    /// call has finished. No runtime is needed: the future wakes the task's
    /// [`Waker`](core::task::Waker). If 15 flushes are in progress already,
    /// the future first waits for the oldest, then begins, as
    /// [`Workqueue::flush`] does.
    ///
    /// Refused at the call from one of this workqueue's own items: the
    /// error comes back here, not from the future. Dropping the future
    /// before it is ready gives up waiting but not the flush, which the
    /// next flush of the workqueue completes if need be: nothing waits for
    /// a dropped future.
    ///
    /// The workers report a finished colour under a pool lock, where no
    /// waker may run: that wakeup is delivered by a timer event due at
    /// once (the timer thread, or [`System::run_due_timers`] on a system
    /// built without one).
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
    /// use cmwq::{System, Work, Workqueue};
    /// let system = System::builder().cpus(2).build()?;
    /// let wq = Workqueue::builder("async_flush").build(&system)?;
    /// let work = Work::new(|| cmwq::sleep(core::time::Duration::from_millis(5)));
    /// wq.queue(&work).unwrap();
    /// let flushed = wq.flush_async().unwrap();
    /// block_on(flushed);
    /// assert!(work.busy().is_idle());
    /// # Ok::<(), cmwq::BuildError>(())
    /// ```
    pub fn flush_async(&self) -> Result<crate::FlushWorkqueue<P>, WaitError> {
        self.wq().check_not_own("flush_workqueue")?;
        Ok(self.handle.shared.flush_async())
    }

    /// [`Workqueue::drain`] without blocking: the drain begins now (from
    /// this call on only the workqueue's own items may queue onto it), and
    /// the returned future is ready once the workqueue is empty, delayed
    /// items and chained queueing included.
    ///
    /// Refused at the call from one of this workqueue's own items: the
    /// error comes back here. Dropping the future before it is ready ends
    /// the drain (queueing from outside is accepted again, unless another
    /// drain or a destroy is in progress). Wakeups as for
    /// [`Workqueue::flush_async`].
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
    /// use cmwq::{System, Work, Workqueue};
    /// let system = System::builder().cpus(2).build()?;
    /// let wq = Workqueue::builder("async_drain").build(&system)?;
    /// let work = Work::new(|| cmwq::sleep(core::time::Duration::from_millis(5)));
    /// wq.queue(&work).unwrap();
    /// let drained = wq.drain_async().unwrap();
    /// assert!(wq.is_draining());
    /// block_on(drained);
    /// assert!(!wq.is_draining() && work.busy().is_idle());
    /// # Ok::<(), cmwq::BuildError>(())
    /// ```
    pub fn drain_async(&self) -> Result<crate::DrainWorkqueue<P>, WaitError> {
        self.wq().check_not_own("drain_workqueue")?;
        Ok(self.handle.shared.drain_async())
    }

    /// Drains and destroys the workqueue now (kernel `destroy_workqueue`);
    /// later queueing through any clone fails with
    /// [`QueueError::Destroyed`]. Idempotent. Dropping the last clone does
    /// the same.
    pub fn destroy(&self) -> Result<(), WaitError> {
        self.wq().check_not_own("destroy_workqueue")?;
        self.wq().destroy();
        Ok(())
    }

    /// Changes `max_active` at run time (kernel `workqueue_set_max_active`);
    /// waiting items are activated at once if the limit grew.
    pub fn set_max_active(&self, max_active: usize) -> Result<(), BuildError> {
        let wq = self.wq();
        let max_active = effective_max_active(max_active, wq.flags.ordered)?;
        let mut control = wq.control.lock();
        control.max_active = max_active;
        for pool in &wq.pools {
            pool.lock().step(|m, fx| m.set_max_active(wq.id, max_active, fx));
        }
        Ok(())
    }

    /// The current `max_active`.
    pub fn max_active(&self) -> usize {
        self.wq().control.lock().max_active
    }

    /// How many `flush` calls are in progress (monitoring; a snapshot).
    pub fn flushes_in_progress(&self) -> usize {
        self.wq().flush.in_progress()
    }

    /// Whether a drain (or destruction) is in progress (a snapshot).
    pub fn is_draining(&self) -> bool {
        self.wq().draining.load(Ordering::Acquire) != 0
    }

    /// Whether this is an ordered workqueue.
    pub fn is_ordered(&self) -> bool {
        self.wq().flags.ordered
    }

    /// Whether this workqueue is served by the unbound pool.
    pub fn is_unbound(&self) -> bool {
        self.wq().flags.unbound
    }

    /// How many work items of this workqueue panicked (each panic was
    /// caught; the worker carried on).
    pub fn panic_count(&self) -> usize {
        self.wq().panics.load(Ordering::Acquire)
    }

    /// Takes the most recent panic reports (up to 64 are kept).
    pub fn take_panics(&self) -> Vec<PanicReport> {
        self.wq().panic_log.lock().drain(..).collect()
    }

    /// Whether this workqueue has a rescuer ([`WorkqueueBuilder::mem_reclaim`]).
    pub fn is_mem_reclaim(&self) -> bool {
        self.wq().flags.mem_reclaim
    }

    /// The workqueue's counters (kernel `pwq->stats`, as
    /// `tools/workqueue/wq_monitor.py` prints them), summed over its pools
    /// (each pool's under its lock, one after the other: a snapshot per
    /// pool, not of the whole).
    pub fn stats(&self) -> crate::WorkqueueStats {
        crate::stats::stats_of(self.wq())
    }
}
