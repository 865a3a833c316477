//! Workqueues: named front doors onto the shared pools, with their flags,
//! `max_active`, draining and destruction.
//!
//! A workqueue owns no threads. It has one pool-workqueue on every pool it
//! uses (each CPU's pool of its priority, or the unbound pool) and queues
//! items there; the pools' workers, shared by every workqueue, run them.

use crate::blocking::{blocking_on, current_worker};
use crate::config::seeded;
use crate::config::{DEFAULT_MAX_ACTIVE, MAX_ACTIVE_LIMIT};
use crate::delayed::DelayedWork;
use crate::error::{BuildError, QueueError, WaitError};
use crate::flush::FlushState;
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform, Std};
use crate::pool::Pool;
use crate::pool_workqueue::PwqState;
use crate::rescuer::Rescuer;
use crate::seeded::SeededBug;
use crate::system::{System, SystemShared};
use crate::work::Work;
use core::fmt;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::VecDeque;

pub(crate) use crate::machine::pool::WqId;

/// How many panic reports a workqueue keeps (the count is kept in full).
const PANIC_LOG_LEN: usize = 64;

/// Workqueue flags (kernel `WQ_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WqFlags {
    /// Served by the unbound pool, not concurrency managed.
    pub(crate) unbound: bool,
    /// Served by the high-priority pools.
    pub(crate) highpri: bool,
    /// Items do not count toward the pool's concurrency while they run.
    pub(crate) cpu_intensive: bool,
    /// One item at a time, in queueing order.
    pub(crate) ordered: bool,
    /// Has a rescuer, so that its items progress when no worker can be
    /// created.
    pub(crate) mem_reclaim: bool,
}

/// A panic caught inside a work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicReport {
    /// The workqueue the item was queued on.
    pub workqueue: String,
    /// The panic message (or a placeholder for non-string payloads).
    pub message: String,
}

/// Destruction and draining state. WQ: `WqShared::control`.
struct Control {
    /// Current `max_active` (applied to every pool-workqueue).
    max_active: usize,
    /// Destruction has completed.
    destroyed: bool,
}

/// Shared state of a workqueue, referenced by its pool-workqueues.
pub(crate) struct WqShared<P: Platform> {
    /// I: identity within the system.
    pub(crate) id: WqId,
    /// I: name, for errors and reports.
    pub(crate) name: String,
    /// I: flags.
    pub(crate) flags: WqFlags,
    /// I: the system.
    pub(crate) system: Arc<SystemShared<P>>,
    /// I: pools holding this workqueue's pool-workqueues (bound: indexed by
    /// CPU; unbound: one).
    pub(crate) pools: Vec<Arc<Pool<P>>>,
    /// A: number of drainers (kernel `nr_drainers`); queueing from outside
    /// is refused while non-zero.
    draining: AtomicUsize<P>,
    /// A: 1 once destruction began; queueing is refused.
    dying: AtomicUsize<P>,
    /// A: 1 once the last handle was dropped on one of the system's own
    /// threads, which must not wait: the workqueue is then finalized by
    /// [`WqShared::finalize_orphan`] once it is empty (see "Lifecycle").
    orphaned: AtomicUsize<P>,
    /// A: instances in flight on all pools together (inserted and not yet
    /// finished or cancelled); changed under the pool lock of the instance.
    /// Once the workqueue is orphaned it can only grow from one of its own
    /// running items (chained queueing) or an armed delayed item, so zero
    /// here with no delayed item armed stays zero.
    inflight: AtomicUsize<P>,
    /// WQ: serialises `set_max_active`, drain and destroy bookkeeping.
    control: Mutex<P, Control>,
    /// D: delayed items whose timer has not fired yet.
    delayed: Mutex<P, usize>,
    /// Notified when `delayed` drops to zero.
    delayed_cv: Condvar<P>,
    /// Flush colours and flushers.
    pub(crate) flush: FlushState<P>,
    /// A: panics caught in this workqueue's items.
    panics: AtomicUsize<P>,
    /// Most recent panic reports (leaf lock).
    panic_log: Mutex<P, VecDeque<PanicReport>>,
    /// I: the rescuer of a `mem_reclaim` workqueue.
    pub(crate) rescuer: Option<Arc<Rescuer<P>>>,
}

impl<P: Platform> Drop for WqShared<P> {
    fn drop(&mut self) {
        self.system.live_workqueues.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<P: Platform> WqShared<P> {
    /// Refuses queueing onto a dying workqueue, or onto a draining one from
    /// anywhere but its own items (only chained queueing is allowed).
    pub(crate) fn check_accepting<W: Clone>(&self, work: &W) -> Result<(), QueueError<W>> {
        if self.dying.load(Ordering::Acquire) != 0 && !self.is_chained() {
            return Err(QueueError::Destroyed { work: work.clone(), workqueue: self.name.clone() });
        }
        if self.draining.load(Ordering::Acquire) != 0 && !self.is_chained() {
            return Err(QueueError::Draining { work: work.clone(), workqueue: self.name.clone() });
        }
        Ok(())
    }

    /// Whether the caller is a work item of this workqueue (kernel
    /// `is_chained_work`).
    pub(crate) fn is_chained(&self) -> bool {
        current_worker::<P>()
            .is_some_and(|ctx| Arc::ptr_eq(&ctx.pool.shared, &self.system) && ctx.current_wq() == Some(self.id))
    }

    /// The pool for `cpu` (or the caller's CPU) on this workqueue.
    fn select_pool(&self, cpu: Option<usize>) -> &Arc<Pool<P>> {
        if self.flags.unbound {
            return &self.pools[0];
        }
        let cpus = self.pools.len();
        // `queue_on` honours an offline CPU (its pool runs the item
        // unbound); plain `queue` never picks one.
        let cpu = match cpu {
            Some(cpu) => cpu % cpus,
            None => self.system.online_cpu_near(self.local_cpu() % cpus),
        };
        &self.pools[cpu]
    }

    /// The CPU a plain `queue` uses: the caller's own pool's CPU for a
    /// worker of this system, else the CPU the thread runs on.
    fn local_cpu(&self) -> usize {
        if let Some(ctx) = current_worker::<P>() {
            if Arc::ptr_eq(&ctx.pool.shared, &self.system) {
                if let Some(cpu) = ctx.pool.cpu {
                    return cpu;
                }
            }
        }
        self.system.platform.current_cpu().map_or(0, |os_cpu| self.system.virtual_cpu_of(os_cpu))
    }

    /// Whether this workqueue has a pool-workqueue on `pool`.
    fn uses_pool(&self, pool: &Arc<Pool<P>>) -> bool {
        self.pools.iter().any(|p| Arc::ptr_eq(p, pool))
    }

    /// `queue` / `queue_on`.
    pub(crate) fn queue_work(&self, cpu: Option<usize>, work: &Work<P>) -> Result<bool, QueueError<Work<P>>> {
        self.check_accepting(work)?;
        let Some(last_pool) = work.try_claim() else {
            return Ok(false);
        };
        match self.insert_claimed(cpu, work, last_pool) {
            Ok(_) => Ok(true),
            Err(()) => {
                work.release();
                Err(QueueError::Destroyed { work: work.clone(), workqueue: self.name.clone() })
            }
        }
    }

    /// Inserts an item whose PENDING the caller owns (kernel
    /// `__queue_work`) and returns the new instance's number. Fails only if
    /// the workqueue was destroyed meanwhile; the caller then still owns
    /// PENDING.
    ///
    /// Non-reentrancy: if the item may still be running on the pool it last
    /// used, for this workqueue, it is queued there instead of on the pool
    /// asked for; that pool's workers never run one item twice at once
    /// (a collision is deferred to the running worker, see `worker.rs`).
    pub(crate) fn insert_claimed(
        &self,
        cpu: Option<usize>,
        work: &Work<P>,
        last_pool: Option<Arc<Pool<P>>>,
    ) -> Result<u64, ()> {
        let mut pool = self.select_pool(cpu);
        if let Some(last) = last_pool.as_ref() {
            let skip = seeded(&self.system.config, SeededBug::SkipNonReentrancyLookup);
            if !Arc::ptr_eq(last, pool) && self.uses_pool(last) && !skip {
                let guard = last.locked.lock();
                if guard.state.is_running_for(work.key(), self.id) {
                    pool = last;
                }
            }
        }
        let mut guard = pool.locked.lock();
        if !guard.pwqs.contains_key(&self.id) {
            return Err(());
        }
        let instance = {
            let mut state = work.inner.state.lock();
            state.insert(pool.clone())
        };
        self.inflight.fetch_add(1, Ordering::AcqRel);
        let inserted = guard.pwq_insert(self.id, work.clone());
        debug_assert!(inserted.is_ok(), "pool-workqueue vanished under the pool lock");
        Ok(instance)
    }

    /// Records a caught panic.
    pub(crate) fn record_panic(&self, message: String) {
        self.panics.fetch_add(1, Ordering::AcqRel);
        let mut log = self.panic_log.lock();
        if log.len() == PANIC_LOG_LEN {
            log.pop_front();
        }
        log.push_back(PanicReport { workqueue: self.name.clone(), message });
    }

    /// A delayed item was armed.
    pub(crate) fn delayed_armed(&self) {
        *self.delayed.lock() += 1;
    }

    /// A delayed item's timer fired (and it was queued) or was cancelled.
    pub(crate) fn delayed_done(self: &Arc<Self>) {
        let mut delayed = self.delayed.lock();
        debug_assert!(*delayed > 0, "delayed count underflow");
        *delayed -= 1;
        if *delayed == 0 {
            self.delayed_cv.notify_all();
            self.schedule_finalize_if_orphaned();
        }
    }

    /// An instance left one of this workqueue's pool-workqueues. Called
    /// under that pool's lock.
    pub(crate) fn instance_left(self: &Arc<Self>) {
        if self.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.schedule_finalize_if_orphaned();
        }
    }

    /// If orphaned, asks the timer service to try [`WqShared::finalize_orphan`]
    /// now (a timer event, because the callers hold pool or delayed locks
    /// and may run on any thread).
    fn schedule_finalize_if_orphaned(self: &Arc<Self>) {
        if self.orphaned.load(Ordering::Acquire) != 0 {
            let now = self.system.platform.now();
            let wq = self.clone();
            self.system.timers.arm_new(now, Box::new(move || wq.finalize_orphan()));
        }
    }

    /// The last handle was dropped on one of the system's own threads (a
    /// work item, the `Drop` of an item's captured state, a timer): refuse
    /// new work now and finalize once empty, without waiting here.
    fn orphan(self: &Arc<Self>) {
        self.draining.fetch_add(1, Ordering::AcqRel);
        self.dying.store(1, Ordering::Release);
        self.system.orphans.lock().push(self.clone());
        self.orphaned.store(1, Ordering::Release);
        self.schedule_finalize_if_orphaned();
    }

    /// Finalizes an orphaned workqueue if nothing of it is left: no delayed
    /// item armed, no instance in flight. Removes its pool-workqueues, stops
    /// its rescuer and takes it off the system's orphan list. Never waits:
    /// on one of the system's threads the rescuer's thread is handed to the
    /// system to join (it has exited or is about to), elsewhere it is
    /// joined here.
    pub(crate) fn finalize_orphan(self: &Arc<Self>) {
        // Delayed first: a firing timer inserts (inflight up) before it
        // lowers `delayed`, so reading in this order cannot miss it.
        if *self.delayed.lock() > 0 || self.inflight.load(Ordering::Acquire) > 0 {
            return;
        }
        {
            let mut control = self.control.lock();
            if control.destroyed {
                return;
            }
            control.destroyed = true;
        }
        for pool in &self.pools {
            let removed = pool.locked.lock().pwqs.remove(&self.id);
            debug_assert!(removed.as_ref().is_none_or(PwqState::is_empty), "finalized a non-empty pool-workqueue");
            drop(removed);
        }
        if let Some(rescuer) = &self.rescuer {
            if crate::blocking::on_engine_thread::<P>(&self.system) {
                if let Some(thread) = rescuer.stop_without_join() {
                    self.system.reap.lock().push(thread);
                }
            } else {
                rescuer.stop();
            }
        }
        self.draining.fetch_sub(1, Ordering::AcqRel);
        let mine = {
            let mut orphans = self.system.orphans.lock();
            orphans.iter().position(|wq| Arc::ptr_eq(wq, self)).map(|pos| orphans.swap_remove(pos))
        };
        drop(mine);
    }

    /// Waits until no delayed item of this workqueue is armed.
    fn wait_delayed(&self) {
        let mut delayed = self.delayed.lock();
        while *delayed > 0 {
            delayed = self.delayed_cv.wait(delayed);
        }
    }

    /// Whether every pool-workqueue is empty and no delayed item is armed.
    fn is_empty(&self) -> bool {
        if *self.delayed.lock() > 0 {
            return false;
        }
        self.pools.iter().all(|pool| {
            let guard = pool.locked.lock();
            guard.pwqs.get(&self.id).is_none_or(PwqState::is_empty)
        })
    }

    /// Refuses waits from this workqueue's own items.
    pub(crate) fn check_not_own(&self, operation: &'static str) -> Result<(), WaitError> {
        if self.is_chained() {
            return Err(WaitError::OwnWorkqueue { operation, workqueue: self.name.clone() });
        }
        Ok(())
    }

    /// `drain_workqueue` without the self-check.
    fn drain(&self) {
        self.draining.fetch_add(1, Ordering::AcqRel);
        loop {
            blocking_on::<P, _>(|| self.wait_delayed());
            self.flush.flush(self);
            if self.is_empty() {
                break;
            }
        }
        self.draining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Destroys the workqueue: refuse new work, drain, and take the
    /// pool-workqueues off the pools. Idempotent.
    pub(crate) fn destroy(&self) {
        let mut control = self.control.lock();
        if control.destroyed {
            return;
        }
        // Outside queueing is refused from here on; the drain lets chained
        // queueing finish, and afterwards nothing of ours runs, so nothing
        // can chain any more.
        self.draining.fetch_add(1, Ordering::AcqRel);
        self.dying.store(1, Ordering::Release);
        drop(control);
        // A queueing accepted just before `dying` was set may still insert
        // after a drain found the workqueue empty (found by the loom model
        // `destroy_racing_queue`). So each pool-workqueue is removed only
        // if it is empty under its pool lock; otherwise drain again. An
        // insertion after the removal finds no pool-workqueue and is
        // refused, handing the item back.
        loop {
            self.drain();
            let mut all_removed = true;
            for pool in &self.pools {
                let mut guard = pool.locked.lock();
                match guard.pwqs.get(&self.id) {
                    Some(pwq) if !pwq.is_empty() => all_removed = false,
                    Some(_) => {
                        guard.pwqs.remove(&self.id);
                    }
                    None => {}
                }
            }
            if all_removed {
                break;
            }
        }
        // Nothing of ours is queued any more, so no mayday can be sent for
        // us; the rescuer empties its list and exits.
        if let Some(rescuer) = &self.rescuer {
            rescuer.stop();
        }
        control = self.control.lock();
        control.destroyed = true;
        self.draining.fetch_sub(1, Ordering::AcqRel);
    }
}

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
#[derive(Debug, Clone)]
pub struct WorkqueueBuilder {
    name: String,
    max_active: usize,
    flags: WqFlags,
}

impl WorkqueueBuilder {
    /// Starts building a workqueue called `name` (on any platform; see also
    /// [`Workqueue::builder`]).
    pub fn new(name: impl Into<String>) -> Self {
        WorkqueueBuilder { name: name.into(), max_active: 0, flags: WqFlags::default() }
    }

    /// Items that may be active at once per pool (per CPU for a bound
    /// workqueue); the rest wait in FIFO order. 0 means the default (256);
    /// above 512 is an error.
    pub fn max_active(&mut self, max_active: usize) -> &mut Self {
        self.max_active = max_active;
        self
    }

    /// Served by the unbound pool: no CPU affinity and no concurrency
    /// management (one worker per concurrently active item).
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
    pub fn build<P: Platform>(&self, system: &System<P>) -> Result<Workqueue<P>, BuildError> {
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
            inflight: AtomicUsize::new(0),
            control: Mutex::new(Control { max_active, destroyed: false }),
            delayed: Mutex::new(0),
            delayed_cv: Condvar::new(),
            flush: FlushState::new(),
            panics: AtomicUsize::new(0),
            panic_log: Mutex::new(VecDeque::new()),
            rescuer,
        });
        for pool in &wq.pools {
            let mut guard = pool.locked.lock();
            guard.pwqs.insert(wq.id, PwqState::new(wq.clone(), max_active, 0));
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

impl Workqueue<Std> {
    /// Starts building a workqueue called `name`.
    pub fn builder(name: impl Into<String>) -> WorkqueueBuilder {
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

    /// Queues `work` on the caller's CPU (kernel `queue_work`). Returns
    /// `Ok(false)` if it was already pending (nothing is added).
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
            let mut guard = pool.locked.lock();
            if let Some(pwq) = guard.pwq_mut(wq.id) {
                pwq.machine.set_max_active(max_active);
            }
            if guard.pwq_activate(wq.id) {
                guard.kick();
            }
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

    /// Rescue statistics (kernel `MAYDAY` and `RESCUED` counters); all zero
    /// for a workqueue without a rescuer.
    pub fn stats(&self) -> WorkqueueStats {
        match &self.wq().rescuer {
            Some(rescuer) => WorkqueueStats {
                maydays: rescuer.maydays_sent(),
                rescued: rescuer.rescued(),
                mayday_pending: rescuer.pending(),
            },
            None => WorkqueueStats::default(),
        }
    }
}

/// Rescue statistics of a workqueue (see [`Workqueue::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkqueueStats {
    /// Times the mayday timer put one of this workqueue's pool-workqueues
    /// on its rescuer's list (kernel `MAYDAY`).
    pub maydays: usize,
    /// Items the rescuer took on (kernel `RESCUED`).
    pub rescued: usize,
    /// Pool-workqueues on the rescuer's mayday list now (each is there at
    /// most once, so never more than the pools the workqueue uses).
    pub mayday_pending: usize,
}
