//! The engine's shared objects: the data the mechanism modules act on,
//! each field tagged with the lock that protects it (legend in `lib.rs`).
//!
//! A system's pools, its workqueues, their pool-workqueues, work items and
//! rescuers reference one another (an item queued on a pool, a pool
//! holding a workqueue's share, a workqueue its pools and its rescuer), so
//! their types live together here, below every module that acts on them;
//! what they do lives in the module of each concept, and the rules they
//! follow in `machine/`. The only methods here are those the lowest
//! mechanism modules need on these objects (identity, PENDING claim and
//! release, mayday sending, flush signalling).

use crate::config::Config;
use crate::inbox::Inbox;
use crate::machine::flush::{FlushSignal, FlushTickets};
use crate::machine::mayday::MaydayList;
use crate::machine::pool::{WorkerId, WqId};
use crate::machine::pwq::{Color, Colored};
use crate::machine::section::{Instance, PoolSection};
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform, Std};
use crate::timer::TimerService;
use crate::wakers::{PendingWakes, WakerList};
use core::sync::atomic::Ordering;
use crossbeam_utils::CachePadded;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

// ---------------------------------------------------------------------------
// The system

/// State shared by the pools and workqueues of one system.
pub(crate) struct SystemShared<P: Platform> {
    /// I: the platform.
    pub(crate) platform: P,
    /// I: the configuration.
    pub(crate) config: Config,
    /// Timer events.
    pub(crate) timers: TimerService<P>,
    /// A: next workqueue id.
    pub(crate) next_wq_id: AtomicUsize<P>,
    /// A: workqueue states not yet freed (built, minus dropped).
    pub(crate) live_workqueues: AtomicUsize<P>,
    /// A: panics caught on engine threads outside any item's function
    /// (the `Drop` of captured state run by the timer or at shutdown).
    pub(crate) stray_panics: AtomicUsize<P>,
    /// HP: the hotplug lock (serialises `cpu_down` / `cpu_up`).
    pub(crate) hotplug: Mutex<P, HotplugState<P>>,
    /// A: 1 for each online CPU (written under the hotplug lock, read
    /// lock-free when choosing a CPU for plain `queue`).
    pub(crate) online: Vec<AtomicUsize<P>>,
    /// Workqueues whose last handle was dropped on one of the system's own
    /// threads and that are not finalized yet (see `workqueue.rs`); shutdown
    /// destroys what is left. Leaf lock.
    pub(crate) orphans: Mutex<P, Vec<Arc<WqShared<P>>>>,
    /// Rescuer threads stopped by a thread that must not wait, to be
    /// joined once they have exited (see `SystemShared::hand_over`). R:
    /// the reap lock (timer lock under it: R → T).
    pub(crate) reap: Mutex<P, Reap<P>>,
    /// I: the body of a worker thread (`worker::worker_main`), handed to
    /// the manager so that creating workers does not depend on the loop
    /// they run.
    pub(crate) worker_body: fn(Arc<Pool<P>>, WorkerId),
    /// I: the system's trace log (feature `trace`); pools record through
    /// their own views of it (`Pool::tracer`, `PoolLocked::tracer`).
    pub(crate) tracer: crate::trace::Tracer,
    /// I: the OS CPU behind each virtual CPU (the process's CPU set at
    /// build, repeated if shorter); empty if the platform cannot tell.
    pub(crate) os_cpus: Vec<usize>,
    /// I: the inverse of `os_cpus`, indexed by OS CPU: the first virtual
    /// CPU on it (`usize::MAX` for none), so that a plain `queue` maps the
    /// CPU it runs on in one look-up.
    pub(crate) virtual_of_os: Vec<usize>,
    /// Stops the blocking monitor's thread (`monitor.rs`).
    pub(crate) monitor: crate::watch::MonitorControl<P>,
}

impl<P: Platform> SystemShared<P> {
    /// Records `cpu`'s state for lock-free readers. Call under the hotplug lock.
    pub(crate) fn set_online(&self, cpu: usize, online: bool) {
        if let Some(flag) = self.online.get(cpu) {
            flag.store(usize::from(online), core::sync::atomic::Ordering::Release);
        }
    }

    /// Whether `cpu` is online (a snapshot).
    pub(crate) fn is_online(&self, cpu: usize) -> bool {
        self.online.get(cpu).is_some_and(|flag| flag.load(core::sync::atomic::Ordering::Acquire) != 0)
    }

    /// The virtual CPU that OS CPU `os_cpu` is: its place in the CPU table
    /// taken at build (so a restricted affinity mask maps correctly), or,
    /// for a CPU outside that table or a platform that cannot tell,
    /// `os_cpu` modulo the CPU count.
    pub(crate) fn virtual_cpu_of(&self, os_cpu: usize) -> usize {
        match self.virtual_of_os.get(os_cpu) {
            Some(&cpu) if cpu != usize::MAX => cpu,
            _ => os_cpu % self.config.cpus,
        }
    }

    /// Builds `virtual_of_os` from `os_cpus` (which repeats OS CPUs when
    /// there are more virtual CPUs: the first one wins, as a scan would).
    pub(crate) fn index_os_cpus(os_cpus: &[usize]) -> Vec<usize> {
        let mut index = vec![usize::MAX; os_cpus.iter().max().map_or(0, |&max| max + 1)];
        for (cpu, &os_cpu) in os_cpus.iter().enumerate().rev() {
            index[os_cpu] = cpu;
        }
        index
    }
}

/// Stopped rescuer threads waiting to be joined. R: `SystemShared::reap`.
pub(crate) struct Reap<P: Platform> {
    /// The threads, each with its rescuer (which says whether it exited).
    pub(crate) threads: Vec<StoppedRescuer<P>>,
    /// A timer event that joins the exited ones is armed.
    pub(crate) armed: bool,
}

/// A rescuer that was told to stop, and its thread.
pub(crate) struct StoppedRescuer<P: Platform> {
    /// The thread to join.
    pub(crate) thread: P::JoinHandle,
    /// The rescuer, kept until the join: it says when the thread is done.
    pub(crate) rescuer: Arc<Rescuer<P>>,
}

/// HP: the hotplug lock's state. Which CPUs are online is kept in
/// `SystemShared` (atomics written only under this lock).
pub(crate) struct HotplugState<P: Platform> {
    /// The trustee thread of each offline CPU, joined by `cpu_up` or at
    /// shutdown.
    pub(crate) trustees: Vec<Option<P::JoinHandle>>,
}

impl<P: Platform> HotplugState<P> {
    pub(crate) fn new(cpus: usize) -> Self {
        HotplugState { trustees: (0..cpus).map(|_| None).collect() }
    }
}

// ---------------------------------------------------------------------------
// Pools

/// A pool of workers serving one CPU and priority, or the unbound pool of a
/// priority.
pub(crate) struct Pool<P: Platform> {
    /// I: the CPU served; `None` for an unbound pool.
    pub(crate) cpu: Option<usize>,
    /// I: high-priority pool (kernel `-H` workers).
    pub(crate) highpri: bool,
    /// I: its concurrency target (machine rule M2): 1 for a CPU's pool.
    pub(crate) concurrency: usize,
    /// I: the system this pool belongs to.
    pub(crate) shared: Arc<SystemShared<P>>,
    /// The pool lock and everything it protects.
    pub(crate) locked: Mutex<P, PoolLocked<P>>,
    /// Notified (with the pool lock) when a worker exits.
    pub(crate) exited: Condvar<P>,
    /// I: where this pool's transitions are recorded when no pool lock is
    /// held (a rescuer's list); `PoolLocked::tracer` otherwise.
    pub(crate) tracer: crate::trace::Tracer,
    /// A: the pool's load (machine QU3 `load`), written under the pool lock
    /// after each step, insert, unblocking and exit
    /// (`PoolLocked::publish_load`, through `PoolLocked::load`, the same
    /// counter) and read without it by a plain `queue` choosing where to
    /// go: a hint.
    pub(crate) load: Arc<CachePadded<AtomicUsize<P>>>,
    /// Where queueings leave items while the pool is at its concurrency
    /// target (`inbox.rs`); the same inbox as `PoolLocked::inbox`.
    pub(crate) inbox: Arc<CachePadded<Inbox<P, Left<P>>>>,
    /// The workers the blocking monitor observes (`monitor.rs`): taken by a
    /// worker as it starts and exits (no other lock held) and by a pass
    /// (under the monitor's `passing` lock; a slot's `seen` under it).
    pub(crate) watch: Mutex<P, Vec<Arc<crate::watch::WatchSlot<P>>>>,
    /// What the stall watchdog's last check saw (`watchdog.rs`). Leaf,
    /// taken under the pool lock.
    pub(crate) stall: Mutex<P, crate::watch::StallWatch>,
}

/// The thread side of a worker: how to wake it and how to join it.
pub(crate) struct WorkerThread<P: Platform> {
    /// I: the worker waits on this, with the pool lock.
    pub(crate) wakeup: Arc<Condvar<P>>,
    /// A: a copy of the machine's `woken` that an idle-spinning worker
    /// polls without the pool lock; set (Release) with `woken`, read
    /// (Acquire) before re-locking.
    pub(crate) wake_hint: Arc<AtomicUsize<P>>,
    /// Waiting on `wakeup` (not merely idle-spinning): only then does a
    /// wakeup need a notification (a syscall on most platforms).
    pub(crate) parked: bool,
    /// The thread handle, joined on shutdown.
    pub(crate) handle: Option<P::JoinHandle>,
}

/// Everything the pool lock protects (kernel `L:` fields): the pure
/// section (`machine::section`: the pool and its pool-workqueues, whose
/// steps this lock runs) and the driver's side of it.
pub(crate) struct PoolLocked<P: Platform> {
    /// The pure state: worklist, workers, idle list, counters, and each
    /// workqueue's pool-workqueue here.
    pub(crate) machine: PoolSection<Entry<P>>,
    /// Each worker's thread side, by the same ids as `machine.pool().workers()`.
    pub(crate) threads: BTreeMap<WorkerId, WorkerThread<P>>,
    /// The workqueue of each pool-workqueue in `machine` (`machine.pwq`), by
    /// the same ids (kept in step by `PoolLocked::add_pwq` and `remove_pwq`).
    pub(crate) wqs: BTreeMap<WqId, Arc<WqShared<P>>>,
    /// Handles of workers that exited, waiting to be joined.
    pub(crate) zombies: Vec<P::JoinHandle>,
    /// The trustee in charge while the pool is disassociated and not yet
    /// empty.
    pub(crate) trustee: Option<TrusteeState<P>>,
    /// I: where this pool's transitions are recorded (feature `trace`).
    pub(crate) tracer: crate::trace::Tracer,
    /// I: the pool's published load (`Pool::load`).
    pub(crate) load: Arc<CachePadded<AtomicUsize<P>>>,
    /// I: the pool's inbox (`Pool::inbox`).
    pub(crate) inbox: Arc<CachePadded<Inbox<P, Left<P>>>>,
    /// Whether this pool last set its inbox open (`PoolLocked::settle`).
    pub(crate) inbox_open: bool,
    /// The list a splice takes the inbox's items into (kept for its
    /// capacity; empty between sections).
    pub(crate) spliced: Vec<Left<P>>,
    /// I: the seeded bugs switched on (the driver's own: `seeded.rs`).
    pub(crate) bugs: crate::machine::SeededBits,
    /// The step the section under way runs, as last begun (`begin`): a
    /// splice in its midst records its own, then this one again.
    pub(crate) section_step: core::cell::Cell<Option<crate::machine::trace::StepId>>,
}

/// A trustee in charge of a disassociated pool. L: pool lock.
pub(crate) struct TrusteeState<P: Platform> {
    /// Wakes the trustee: an item left the pool, or it is released.
    pub(crate) wake: Arc<Condvar<P>>,
}

// ---------------------------------------------------------------------------
// Pool-workqueues

/// An item a queueing left in a pool's inbox, with its workqueue.
pub(crate) type Left<P> = (Work<P>, WqId);

/// A queued instance of a work item.
pub(crate) struct Entry<P: Platform> {
    /// The item.
    pub(crate) work: Work<P>,
    /// The workqueue it was queued on.
    pub(crate) wq: WqId,
    /// The flush colour it was queued with.
    pub(crate) color: Color,
}

impl<P: Platform> crate::machine::Queued for Entry<P> {
    fn key(&self) -> usize {
        self.work.key()
    }

    fn wq(&self) -> WqId {
        self.wq
    }

    fn func(&self) -> &'static str {
        self.work.inner.name
    }
}

impl<P: Platform> Instance for Entry<P> {
    type Item = Work<P>;

    fn item_key(item: &Work<P>) -> usize {
        item.key()
    }

    fn from_colored(wq: WqId, colored: Colored<Work<P>>) -> Self {
        Entry { work: colored.item, wq, color: colored.color }
    }

    fn color(&self) -> Color {
        self.color
    }
}

// ---------------------------------------------------------------------------
// Workqueues

/// How many panic reports a workqueue keeps (the count is kept in full).
pub(crate) const PANIC_LOG_LEN: usize = 64;

/// Workqueue flags (kernel `WQ_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WqFlags {
    /// Served by the unbound pool (one running worker per CPU).
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
pub(crate) struct Control {
    /// Current `max_active` (applied to every pool-workqueue).
    pub(crate) max_active: usize,
    /// Destruction has completed.
    pub(crate) destroyed: bool,
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
    pub(crate) draining: AtomicUsize<P>,
    /// A: 1 once destruction began; queueing is refused.
    pub(crate) dying: AtomicUsize<P>,
    /// A: 1 once the last handle was dropped on one of the system's own
    /// threads, which must not wait: the workqueue is then finalized by
    /// [`WqShared::finalize_orphan`] once it is empty (see "Lifecycle").
    pub(crate) orphaned: AtomicUsize<P>,
    /// A: instances in flight on all pools together (inserted and not yet
    /// finished or cancelled); changed under the pool lock of the instance.
    /// Once the workqueue is orphaned it can only grow from one of its own
    /// running items (chained queueing) or an armed delayed item, so zero
    /// here with no delayed item armed stays zero.
    /// Padded: written on every insert and finish, while queueing reads
    /// `draining` and `dying` beside it.
    pub(crate) inflight: CachePadded<AtomicUsize<P>>,
    /// WQ: serialises `set_max_active`, drain and destroy bookkeeping.
    pub(crate) control: Mutex<P, Control>,
    /// D: delayed items armed or being accepted, and whether any more may
    /// be accepted (see `lifecycle.rs`, "Delayed items and destroy").
    pub(crate) delayed: Mutex<P, DelayedSet<P>>,
    /// Notified when `delayed` becomes empty.
    pub(crate) delayed_cv: Condvar<P>,
    /// The async drains waiting for `delayed` to become empty (leaf, taken
    /// under D; see `wakers.rs`).
    pub(crate) delayed_wakers: Mutex<P, WakerList>,
    /// Flush colours and flushers.
    pub(crate) flush: FlushState<P>,
    /// A: panics caught in this workqueue's items.
    pub(crate) panics: AtomicUsize<P>,
    /// Most recent panic reports (leaf lock).
    pub(crate) panic_log: Mutex<P, VecDeque<PanicReport>>,
    /// I: the rescuer of a `mem_reclaim` workqueue.
    pub(crate) rescuer: Option<Arc<Rescuer<P>>>,
}

/// A workqueue's delayed items (machine rules M30-M31). D: `WqShared::delayed`.
pub(crate) type DelayedSet<P> = crate::machine::lifecycle::DelayedSet<Work<P>>;

impl<P: Platform> Drop for WqShared<P> {
    fn drop(&mut self) {
        self.system.live_workqueues.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<P: Platform> WqShared<P> {
    /// Wakes `wakes` from a timer event due now: for wakers taken under a
    /// pool lock (FW4), which must not run there. The wakers are woken
    /// even if the event is dropped unfired ([`PendingWakes`] wakes on
    /// drop). On a system without a timer thread they wait for
    /// `System::run_due_timers`, as every timer event does. Once the timer
    /// service is stopped (shutdown) it refuses the event, which is then
    /// dropped at once, so the wakers run there, contained.
    pub(crate) fn wake_later(&self, wakes: PendingWakes) {
        if wakes.is_empty() {
            return;
        }
        let now = self.system.platform.now();
        self.system.timers.arm_new(now, Box::new(move || drop(wakes)));
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
}

// ---------------------------------------------------------------------------
// Flushing

/// A workqueue's flush machinery (machine `flush.rs`, steps FW1-FW6).
pub(crate) struct FlushState<P: Platform> {
    /// WQ: the flush mutex, over the tickets (rules M24-M25).
    pub(crate) tickets: Mutex<P, FlushTickets>,
    /// The signal lock (a leaf, taken by workers under a pool lock): the
    /// head's completion and which tickets are done.
    pub(crate) signal: Mutex<P, FlushSignal>,
    /// Notified on every change of `signal` a flusher waits for.
    pub(crate) signal_cv: Condvar<P>,
    /// The async flushers (leaf, taken under the signal lock).
    pub(crate) async_side: Mutex<P, AsyncFlushers>,
}

/// The async flushers of a workqueue (`flush.rs`, "Async flushes"): their
/// wakers, and their tickets, which any flusher may drive.
#[derive(Default)]
pub(crate) struct AsyncFlushers {
    /// The tasks waiting on the signal.
    pub(crate) wakers: WakerList,
    /// Tickets taken by async flushes and not yet claimed for FW6: when
    /// one is the complete head, whichever flusher sees it first drives it
    /// (so a future that is dropped, or not polled, holds nobody up).
    pub(crate) drivable: BTreeSet<u64>,
}

impl<P: Platform> FlushState<P> {
    pub(crate) fn new() -> Self {
        FlushState {
            tickets: Mutex::new(FlushTickets::default()),
            signal: Mutex::new(FlushSignal::default()),
            signal_cv: Condvar::new(),
            async_side: Mutex::new(AsyncFlushers::default()),
        }
    }

    /// FW4: a marked pool-workqueue emptied its flush colour. Called under
    /// that pool's lock: the async flushers' wakers come back, to be woken
    /// once no engine lock is held ([`WqShared::wake_later`]).
    pub(crate) fn pwq_flushed(&self) -> PendingWakes {
        let mut signal = self.signal.lock();
        if !signal.pwq_flushed() {
            return PendingWakes::none();
        }
        self.signal_cv.notify_all();
        self.async_side.lock().wakers.take()
    }
}

// ---------------------------------------------------------------------------
// Rescuers

/// A pool-workqueue asking for rescue: the pool, and a reference to the
/// workqueue that keeps it alive until the rescuer is done with the entry.
pub(crate) struct Mayday<P: Platform> {
    pub(crate) pool: Arc<Pool<P>>,
    pub(crate) wq: Arc<WqShared<P>>,
}

/// A `mem_reclaim` workqueue's rescuer.
pub(crate) struct Rescuer<P: Platform> {
    /// MD: the mayday list (machine rules M16-M18) under the mayday lock.
    pub(crate) maydays: Mutex<P, MaydayList<Mayday<P>>>,
    /// Wakes the rescuer (with the mayday lock).
    pub(crate) wake: Condvar<P>,
    /// The thread; taken and joined by `stop`.
    pub(crate) thread: Mutex<P, Option<P::JoinHandle>>,
    /// A: pool-workqueues put on the list by the mayday timer (kernel
    /// `PWQ_STAT_MAYDAY`).
    pub(crate) maydays_sent: AtomicUsize<P>,
    /// A: items the rescuer took on (kernel `PWQ_STAT_RESCUED`).
    pub(crate) rescued: AtomicUsize<P>,
    /// A: 1 once the thread has left its loop for good (stored Release as
    /// its last engine step, read Acquire before joining it from a thread
    /// that must not wait).
    pub(crate) exited: AtomicUsize<P>,
}

impl<P: Platform> Rescuer<P> {
    /// Puts `wq`'s pool-workqueue on `pool` on the list unless it is there
    /// already, and wakes the rescuer. Called with `pool`'s lock held.
    /// `counted`: a mayday from the timer (counted in the statistics), not
    /// the rescuer re-queueing a pool-workqueue it has not finished.
    pub(crate) fn send(&self, pool: &Arc<Pool<P>>, wq: &Arc<WqShared<P>>, counted: bool) -> bool {
        let mut maydays = self.maydays.lock();
        let entry = Mayday { pool: pool.clone(), wq: wq.clone() };
        if !maydays.send(entry, |m| Arc::ptr_eq(&m.pool, pool)) {
            return false;
        }
        // Recorded before the rescuer can take it (it needs this lock).
        let sent = vec![wq.id];
        pool.tracer.record(|pool| crate::trace::Event::Maydays { pool, sent });
        if counted {
            self.maydays_sent.fetch_add(1, Ordering::Relaxed);
        }
        self.wake.notify_one();
        true
    }

    /// Stops the rescuer after it has emptied its mayday list, and joins
    /// it. Idempotent. Must not be called from the rescuer itself.
    pub(crate) fn stop(&self) {
        {
            let mut maydays = self.maydays.lock();
            maydays.stop();
            self.wake.notify_one();
        }
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            P::join(thread);
            // Each entry holds a reference to the workqueue, which holds
            // this rescuer: an entry left behind would leak both. (Checked
            // only after joining: a stop that found the thread taken by
            // another stop cannot know it has exited.)
            let left = self.maydays.lock().len();
            debug_assert!(left == 0, "the rescuer exited with {left} maydays pending");
        }
    }

    /// Tells the rescuer to stop once its mayday list is empty, without
    /// waiting; returns its thread for someone else to join. For callers
    /// that must not wait (the system's own threads).
    pub(crate) fn stop_without_join(&self) -> Option<P::JoinHandle> {
        {
            let mut maydays = self.maydays.lock();
            maydays.stop();
            self.wake.notify_one();
        }
        self.thread.lock().take()
    }

    /// Whether the thread has left its loop for good: joining it then
    /// waits for nothing but the thread's own exit.
    pub(crate) fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire) != 0
    }

    /// Maydays sent by the mayday timer so far.
    pub(crate) fn maydays_sent(&self) -> usize {
        self.maydays_sent.load(Ordering::Relaxed)
    }

    /// Items rescued so far.
    pub(crate) fn rescued(&self) -> usize {
        self.rescued.load(Ordering::Relaxed)
    }

    /// Pool-workqueues on the mayday list now.
    pub(crate) fn pending(&self) -> usize {
        self.maydays.lock().len()
    }
}

// ---------------------------------------------------------------------------
// Work items

/// Where a work item is (machine rules M26-M29; see the module table).
pub(crate) type Location<P> = crate::machine::work::Location<Arc<Pool<P>>, Arc<WqShared<P>>>;

/// An item's state (`machine::work`). Leaf lock: taken after pool locks,
/// never before.
pub(crate) type WorkState<P> = crate::machine::work::WorkState<Arc<Pool<P>>, Arc<WqShared<P>>>;

/// The shared part of a work item; `F` is erased to `dyn Runnable` in
/// [`Work`], so that a closure and a one-shot job (`job.rs`) share one
/// allocation with the item's state.
pub(crate) struct WorkInner<P: Platform, F: ?Sized> {
    /// Leaf lock over the item's state.
    pub(crate) state: Mutex<P, WorkState<P>>,
    /// A: 1 while an instance is queued on a pool, from the insert until
    /// it starts or a cancel takes it (written under `state`): a hint that lets a queueing of a pending item coalesce
    /// under the item's lock alone. Only a hint: it is confirmed under
    /// the lock, and a stale 0 costs the pool lock, never a wrong answer.
    pub(crate) queued_hint: AtomicUsize<P>,
    /// Notified when an instance finishes or a cancel ends (with `state`).
    pub(crate) changed: Condvar<P>,
    /// The async waits on `state` (leaf, taken under `state`; see
    /// `wakers.rs`). Taken with every notification of `changed`.
    pub(crate) wakers: Mutex<P, WakerList>,
    /// I: the function's name, for reports (its type name unless given).
    pub(crate) name: &'static str,
    /// I: the function.
    pub(crate) func: F,
}

/// What a work item runs: a closure (re-runnable), or a one-shot job.
pub(crate) trait Runnable<P: Platform>: Send + Sync + 'static {
    /// Runs one instance. A panic unwinds to the worker, which counts it.
    fn run(&self, me: &Work<P>);
    /// Called by the executor once the instance is finished on the item
    /// (after a panic is counted and the item's state says not running):
    /// where a job publishes its outcome.
    fn finished(&self) {}
    /// Whether [`Runnable::finished`] does anything (a job): the executor
    /// skips the call, and its panic guard, for every other item.
    fn has_outcome(&self) -> bool {
        false
    }
}

impl<P: Platform, F: Fn(&Work<P>) + Send + Sync + 'static> Runnable<P> for F {
    fn run(&self, me: &Work<P>) {
        self(me)
    }
}

/// The erased function type of a work item.
pub(crate) type WorkFn<P> = dyn Runnable<P>;

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

impl<P: Platform> PartialEq for Work<P> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<P: Platform> Eq for Work<P> {}

impl<P: Platform> Work<P> {
    /// The item's identity (stable for its lifetime).
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }

    /// Runs the item's function.
    pub(crate) fn call(&self) {
        self.inner.func.run(self)
    }

    /// The instance that ran is finished on the item (see
    /// [`Runnable::finished`]).
    pub(crate) fn finished(&self) {
        self.inner.func.finished()
    }

    /// Whether the item is a job with an outcome to publish.
    pub(crate) fn has_outcome(&self) -> bool {
        self.inner.func.has_outcome()
    }

    /// Takes PENDING if it is free: `Some(last_pool)` if this caller now
    /// owns the item (and must queue it or release it), `None` if it was
    /// pending already.
    pub(crate) fn try_claim(&self) -> Option<Option<Arc<Pool<P>>>> {
        self.inner.state.lock().try_claim()
    }

    /// Tells the item's waiters that its state changed: notifies the
    /// blocked threads and takes the async waits' wakers, to be woken once
    /// the caller holds no engine lock. Call under the item's state lock.
    pub(crate) fn notify_waiters(&self) -> PendingWakes {
        self.inner.changed.notify_all();
        self.inner.wakers.lock().take()
    }

    /// Gives PENDING back without queueing (an error path, or a cancel).
    /// Wakes async waiters: the caller holds no engine lock.
    pub(crate) fn release(&self) {
        let wakes = {
            let mut state = self.inner.state.lock();
            if state.release() {
                self.notify_waiters()
            } else {
                PendingWakes::none()
            }
        };
        drop(wakes.wake());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_cpus_map_back_to_their_first_virtual_cpu() {
        let index = SystemShared::<Std>::index_os_cpus(&[4, 7, 4, 7]);
        assert_eq!(index, vec![usize::MAX, usize::MAX, usize::MAX, usize::MAX, 0, usize::MAX, usize::MAX, 1]);
        assert!(SystemShared::<Std>::index_os_cpus(&[]).is_empty());
    }
}
