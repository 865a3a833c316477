//! The system: the pools (per CPU and priority, plus unbound), the timer
//! service, the process-wide default system and its workqueues, and
//! shutdown.
//!
//! # Shutdown
//!
//! A [`System`] lives while any handle to it does; every [`Workqueue`]
//! holds one, so by the time the last handle goes every workqueue has been
//! drained and destroyed and no work is left. Shutdown then:
//! 1. stops the timer service (dropping its events) and joins its thread;
//! 2. marks every pool stopping, so no manager creates workers any more,
//!    and waits for a manager mid-spawn to finish;
//! 3. retires every worker and waits until each has exited;
//! 4. joins every worker thread. No thread outlives the system.

use crate::config::Config;
use crate::error::BuildError;
use crate::hotplug::{self, HotplugError};
use crate::manager;
use crate::platform::{Arc, AtomicUsize, Mutex, Platform, Std};
use crate::shared::{HotplugState, Pool, Reap, Rescuer, SystemShared};
use crate::timer::{fire_all, Due, TimerService};
use crate::watch::MonitorPass;
use core::fmt;
use core::time::Duration;

/// Owner of the pools; shuts the system down when dropped.
struct SystemHandle<P: Platform> {
    shared: Arc<SystemShared<P>>,
    /// I: `cpus` normal pools, `cpus` high-priority pools, then the unbound
    /// normal and unbound high-priority pools (those configured).
    pools: Vec<Arc<Pool<P>>>,
    /// The timer thread, if any.
    timer_thread: Mutex<P, Option<P::JoinHandle>>,
    /// The blocking monitor's thread, if any (`monitor.rs`).
    monitor_thread: Mutex<P, Option<P::JoinHandle>>,
}

/// A set of worker pools shared by all the workqueues built on it.
///
/// Cheap to clone. Shuts down (joining every thread) when the last handle,
/// including those held by its workqueues, is dropped.
///
/// ```
/// use cmwq::{System, Workqueue, Work};
/// let system = System::builder().cpus(1).build()?;
/// let wq = Workqueue::builder("demo").build(&system)?;
/// let work = Work::new(|| {});
/// wq.queue(&work).unwrap();
/// wq.flush().unwrap();
/// # Ok::<(), cmwq::BuildError>(())
/// ```
pub struct System<P: Platform = Std> {
    handle: Arc<SystemHandle<P>>,
}

impl<P: Platform> Clone for System<P> {
    fn clone(&self) -> Self {
        System { handle: self.handle.clone() }
    }
}

impl<P: Platform> fmt::Debug for System<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System").field("cpus", &self.cpus()).finish()
    }
}

/// Builds a [`System`] on platform `P`: [`System::builder`] (std) or
/// `System::<P>::builder()` (any platform), then [`SystemBuilder::build`]
/// (std) or [`SystemBuilder::build_on`] with the platform instance.
pub struct SystemBuilder<P: Platform = Std> {
    config: Config,
    reporter: Option<crate::platform::Arc<crate::report::ReportFn>>,
    platform: core::marker::PhantomData<fn() -> P>,
}

impl<P: Platform> Default for SystemBuilder<P> {
    fn default() -> Self {
        SystemBuilder { config: Config::default(), reporter: None, platform: core::marker::PhantomData }
    }
}

impl<P: Platform> Clone for SystemBuilder<P> {
    fn clone(&self) -> Self {
        SystemBuilder {
            config: self.config.clone(),
            reporter: self.reporter.clone(),
            platform: core::marker::PhantomData,
        }
    }
}

impl<P: Platform> fmt::Debug for SystemBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemBuilder").field("config", &self.config).finish()
    }
}

impl SystemBuilder<Std> {
    /// Builds a system on the std platform.
    pub fn build(&self) -> Result<System<Std>, BuildError> {
        self.build_on(Std::new())
    }
}

impl<P: Platform> SystemBuilder<P> {
    /// Number of virtual CPUs (default: the CPUs this process may use).
    pub fn cpus(&mut self, cpus: usize) -> &mut Self {
        self.config.cpus = cpus;
        self
    }

    /// How long a surplus idle worker lives (default 300 s).
    pub fn idle_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long to wait before retrying a failed worker creation (default 1 s).
    pub fn create_cooldown(&mut self, cooldown: Duration) -> &mut Self {
        self.config.create_cooldown = cooldown;
        self
    }

    /// Delay from a failed worker creation to the first mayday (default
    /// 10 ms), and between maydays while the pool stays without an idle
    /// worker (default 100 ms).
    pub fn mayday_timeouts(&mut self, initial: Duration, interval: Duration) -> &mut Self {
        self.config.mayday_initial_timeout = initial;
        self.config.mayday_interval = interval;
        self
    }

    /// Items a rescuer runs for one pool-workqueue before turning to the
    /// next mayday (default 16; 0 is refused at build).
    pub fn rescuer_batch(&mut self, batch: usize) -> &mut Self {
        self.config.rescuer_batch = batch;
        self
    }

    /// Follow the process's CPU set (default off): CPUs leaving it are
    /// taken down, CPUs coming back are brought up, checked every
    /// `interval`. Virtual CPU `i` is the `i`-th CPU of the set at build.
    pub fn follow_cpu_set(&mut self, enabled: bool, interval: Duration) -> &mut Self {
        self.config.follow_cpu_set = enabled;
        self.config.cpu_set_poll_interval = interval;
        self
    }

    /// Pin each CPU's workers to that CPU (default off).
    pub fn pin_workers(&mut self, enabled: bool) -> &mut Self {
        self.config.pin_workers = enabled;
        self
    }

    /// Upper bound on workers per pool (default 1024).
    pub fn max_workers_per_pool(&mut self, max: usize) -> &mut Self {
        self.config.max_workers_per_pool = max;
        self
    }

    /// Whether a thread delivers timer events (default true). Without it,
    /// call [`System::run_due_timers`].
    pub fn timer_thread(&mut self, enabled: bool) -> &mut Self {
        self.config.timer_thread = enabled;
        self
    }

    /// Whether blocking sections hand the CPU to another worker (default
    /// true). Off, the pools behave like fixed thread pools: for
    /// experiments and tests only.
    pub fn concurrency_management(&mut self, enabled: bool) -> &mut Self {
        self.config.concurrency_management = enabled;
        self
    }

    /// Blocking detection without annotation (default: on, after 100 µs;
    /// `None` switches it off): a worker seen asleep this long outside any
    /// blocking section (a `std` sleep, lock, channel or file read inside an
    /// item) stops counting as running until it runs again, so a waiting
    /// item gets a worker, as the kernel's scheduler hook does. On std it
    /// works on Linux (a monitor thread reads `/proc`); on other platforms
    /// and model checkers it does nothing unless the platform implements
    /// [`Platform::probe`]. See `Config::detect_blocking`.
    pub fn detect_blocking(&mut self, after: Option<Duration>) -> &mut Self {
        self.config.detect_blocking = after;
        self
    }

    /// CPU-hog detection (default: on, after 10 ms, the kernel's
    /// `wq_cpu_intensive_thresh_us`; `None` switches it off): an item seen
    /// using this much CPU time in one stretch is counted out as
    /// CPU-intensive for the rest of its run, so the items behind it get a
    /// worker; counted in [`WorkqueueStats::cpu_intensive`] and reported
    /// once per function ([`SystemBuilder::on_report`]). Needs a platform
    /// that reports CPU time (std on Linux). See `Config::cpu_hog`.
    ///
    /// [`WorkqueueStats::cpu_intensive`]: crate::WorkqueueStats::cpu_intensive
    pub fn cpu_hog(&mut self, after: Option<Duration>) -> &mut Self {
        self.config.cpu_hog = after;
        self
    }

    /// The stall watchdog (default: on, 30 s, the kernel's
    /// `wq_watchdog_thresh`; `None` switches it off): a pool whose waiting
    /// items see none begin for this long is reported
    /// ([`crate::Report::Stall`]) with its oldest waiting item and what each
    /// worker does, and counted in [`PoolStats::stalls`]. At least 1 ms with
    /// a timer thread. See `Config::watchdog`.
    pub fn watchdog(&mut self, threshold: Option<Duration>) -> &mut Self {
        self.config.watchdog = threshold;
        self
    }

    /// Where the engine's reports go ([`crate::Report`]: a CPU hog, a
    /// stall). By default each is written as one line to standard error,
    /// as the kernel writes to its log. The handler runs on the monitor
    /// thread (or the caller of [`System::watchdog_check`] or
    /// [`System::monitor_pass`]) with no lock of the engine held; it must
    /// not block for long (the monitor's passes wait for it).
    pub fn on_report(&mut self, handler: impl Fn(&crate::Report) + Send + Sync + 'static) -> &mut Self {
        self.reporter = Some(crate::platform::Arc::new(handler));
        self
    }

    /// Yields of an idle worker before it parks (default 64; 0 parks at once).
    pub fn idle_spins(&mut self, spins: u32) -> &mut Self {
        self.config.idle_spins = spins;
        self
    }

    /// Whether the high-priority pools exist (default true).
    pub fn highpri_pools(&mut self, enabled: bool) -> &mut Self {
        self.config.highpri_pools = enabled;
        self
    }

    /// Whether the unbound pools exist (default true).
    pub fn unbound_pools(&mut self, enabled: bool) -> &mut Self {
        self.config.unbound_pools = enabled;
        self
    }

    /// The unbound pools' concurrency target (SPEC.md C6): how many of
    /// their workers may run items at once without blocking (default: the
    /// CPU count; at least 1). Items that wait without telling the pool
    /// (`std` locks, channels, I/O outside [`crate::blocking`]) hold their
    /// worker, so with the default an unbound item that waits unannotated
    /// for another unbound item can wait for good.
    /// [`UNBOUND_UNMANAGED`](crate::UNBOUND_UNMANAGED) keeps the kernel's
    /// rule instead: every waiting item gets a worker, at the price of a
    /// thread per waiting item under a CPU-bound batch.
    pub fn unbound_concurrency(&mut self, target: usize) -> &mut Self {
        self.config.unbound_concurrency = Some(target);
        self
    }

    /// Switches seeded bugs on (bits of [`crate::SeededBug::bit`]).
    #[cfg(feature = "seeded-bugs")]
    pub fn seeded_bugs(&mut self, bugs: u64) -> &mut Self {
        self.config.seeded_bugs = bugs;
        self
    }

    /// Prefix of worker thread names (default `kworker`).
    pub fn thread_name_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.config.thread_name_prefix = prefix.into();
        self
    }

    /// The configuration built so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Builds a system on `platform`: creates every pool with its first
    /// worker, and the timer thread if configured. On failure everything
    /// already started is stopped and joined.
    pub fn build_on(&self, platform: P) -> Result<System<P>, BuildError> {
        let config = self.config.clone();
        config.validate()?;
        let cpus = config.cpus;
        let os_cpus = match platform.allowed_os_cpus() {
            Some(set) if !set.is_empty() => (0..cpus).map(|i| set[i % set.len()]).collect(),
            _ => Vec::new(),
        };
        let virtual_of_os = SystemShared::<P>::index_os_cpus(&os_cpus);
        let shared = Arc::new(SystemShared {
            os_cpus,
            virtual_of_os,
            platform,
            config,
            timers: TimerService::new(),
            next_wq_id: AtomicUsize::new(0),
            live_workqueues: AtomicUsize::new(0),
            stray_panics: AtomicUsize::new(0),
            worker_body: crate::worker::worker_main::<P>,
            tracer: crate::trace::Tracer::new(),
            orphans: Mutex::new(Vec::new()),
            reap: Mutex::new(Reap { threads: Vec::new(), armed: false }),
            hotplug: Mutex::new(HotplugState::new(cpus)),
            online: (0..cpus).map(|_| AtomicUsize::new(1)).collect(),
            monitor: crate::watch::MonitorControl::new(self.reporter.clone()),
        });
        let mut pools = Vec::with_capacity(2 * cpus + 2);
        let priorities: &[bool] = if shared.config.highpri_pools { &[false, true] } else { &[false] };
        for &highpri in priorities {
            for cpu in 0..cpus {
                pools.push(Arc::new(Pool::new(Some(cpu), highpri, shared.clone())));
            }
        }
        if shared.config.unbound_pools {
            for &highpri in priorities {
                pools.push(Arc::new(Pool::new(None, highpri, shared.clone())));
            }
        }
        let handle = SystemHandle {
            shared: shared.clone(),
            pools,
            timer_thread: Mutex::new(None),
            monitor_thread: Mutex::new(None),
        };
        if shared.config.follow_cpu_set {
            hotplug::arm_cpu_set_poll(&shared, &handle.pools);
        }
        // From here on, dropping `handle` shuts down whatever was started.
        for pool in &handle.pools {
            let mut guard = pool.lock();
            let _ = guard.machine.manager_enter();
            let (mut guard, created) = manager::create_worker(pool, guard, None);
            guard.machine.manager_leave();
            drop(guard);
            if let Err(err) = created {
                let err = match err {
                    manager::CreateError::Spawn(err) => BuildError::Spawn(err),
                    // Unreachable after validation (at least one worker per
                    // pool, not stopping); reported as the limit it would be.
                    manager::CreateError::AtLimit => BuildError::OutOfRange {
                        field: "max_workers_per_pool",
                        value: shared.config.max_workers_per_pool.to_string(),
                        allowed: format!("1..={}", crate::config::MAX_WORKERS_PER_POOL),
                    },
                };
                return Err(err);
            }
        }
        if shared.config.timer_thread {
            let timer_shared = shared.clone();
            let name = format!("{}/timer", shared.config.thread_name_prefix);
            let thread =
                crate::platform::spawn_engine_thread(&shared.platform, name, move || timer_thread(timer_shared))
                    .map_err(BuildError::Spawn)?;
            *handle.timer_thread.lock() = Some(thread);
        }
        if crate::monitor::wanted(&shared) {
            let pools = handle.pools.clone();
            let name = format!("{}/monitor", shared.config.thread_name_prefix);
            let thread = crate::platform::spawn_engine_thread(&shared.platform, name, move || {
                crate::monitor::monitor_main(pools)
            })
            .map_err(BuildError::Spawn)?;
            *handle.monitor_thread.lock() = Some(thread);
        }
        Ok(System { handle: Arc::new(handle) })
    }
}

impl<P: Platform> System<P> {
    /// Starts building a system: `System::builder()` on std (finish with
    /// [`SystemBuilder::build`]), `System::<P>::builder()` on platform `P`
    /// (finish with [`SystemBuilder::build_on`]).
    pub fn builder() -> SystemBuilder<P> {
        SystemBuilder::default()
    }
}

/// A snapshot of one pool, for monitoring (kernel `wq_monitor.py` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// The CPU served, `None` for an unbound pool.
    pub cpu: Option<usize>,
    /// High-priority pool.
    pub highpri: bool,
    /// Workers alive.
    pub workers: usize,
    /// Idle workers.
    pub idle: usize,
    /// Workers counted as running.
    pub running: usize,
    /// Items waiting on the worklist.
    pub pending: usize,
    /// Failed worker creations so far.
    pub create_failures: usize,
    /// Workers the blocking monitor has seen blocked outside a blocking
    /// section so far (`SystemBuilder::detect_blocking`).
    pub detected: usize,
    /// The pool's CPU is offline: concurrency management is suspended.
    pub disassociated: bool,
    /// Stalls the watchdog has reported so far (`SystemBuilder::watchdog`).
    pub stalls: usize,
}

impl<P: Platform> System<P> {
    pub(crate) fn shared(&self) -> &Arc<SystemShared<P>> {
        &self.handle.shared
    }

    /// Pools a workqueue with these flags uses: one per CPU, or the unbound one.
    pub(crate) fn pools_for(&self, unbound: bool, highpri: bool) -> Result<Vec<Arc<Pool<P>>>, BuildError> {
        let config = self.config();
        if highpri && !config.highpri_pools {
            return Err(BuildError::PoolDisabled { pools: "highpri" });
        }
        if unbound && !config.unbound_pools {
            return Err(BuildError::PoolDisabled { pools: "unbound" });
        }
        let pools = &self.handle.pools;
        Ok(pools.iter().filter(|p| p.cpu.is_none() == unbound && p.highpri == highpri).cloned().collect())
    }

    /// Takes `cpu` offline (CPU hotplug; kernel `workqueue_offline_cpu`).
    /// Returns as soon as a trustee is in charge of the CPU's pools, without
    /// waiting for their items: those run on, without concurrency
    /// management (each waiting item gets a worker), and the trustee
    /// retires the pools' idle workers once they are empty.
    ///
    /// While the CPU is offline, plain [`Workqueue::queue`](crate::Workqueue::queue) picks the next
    /// online CPU; [`Workqueue::queue_on`](crate::Workqueue::queue_on) the offline CPU is accepted and
    /// the item runs on its pool, without CPU affinity (as in the kernel).
    /// Fails for a CPU that does not exist, is offline already, or is the
    /// last one online.
    pub fn cpu_down(&self, cpu: usize) -> Result<(), HotplugError> {
        hotplug::cpu_down(&self.handle.shared, &self.handle.pools, cpu)
    }

    /// Brings `cpu` back online (kernel `workqueue_online_cpu`): its pools'
    /// trustee is released even if they have not drained, their workers
    /// count as running again, and items still waiting run under
    /// concurrency management as before. Fails for a CPU that does not
    /// exist or is online.
    pub fn cpu_up(&self, cpu: usize) -> Result<(), HotplugError> {
        hotplug::cpu_up(&self.handle.shared, &self.handle.pools, cpu)
    }

    /// Whether `cpu` is online (a snapshot; `false` for a CPU that does not exist).
    pub fn is_cpu_online(&self, cpu: usize) -> bool {
        self.handle.shared.is_online(cpu)
    }

    /// Number of (virtual) CPUs.
    pub fn cpus(&self) -> usize {
        self.handle.shared.config.cpus
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.handle.shared.config
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.handle.shared.platform
    }

    /// One pass of the blocking monitor over every pool (what its thread
    /// does every 0.02 to 5 ms where it runs): workers seen asleep outside a
    /// blocking section for the configured `detect_blocking` threshold stop
    /// counting as running; detected workers seen running again count
    /// again. For model checkers and simulators, whose platforms implement
    /// [`Platform::probe`] but run no monitor thread; does nothing with
    /// detection off.
    pub fn monitor_pass(&self) -> MonitorPass {
        let limits = crate::watch::Thresholds::of(&self.handle.shared.config);
        if !limits.any() {
            return MonitorPass::default();
        }
        crate::monitor::pass(&self.handle.pools, limits, false, true)
    }

    /// Runs the stall watchdog's check now (what the monitor thread does
    /// every quarter of the `watchdog` threshold): each pool whose waiting
    /// items have seen none begin since a check at least the threshold ago
    /// is reported (to [`SystemBuilder::on_report`]'s handler) and
    /// returned. For systems without a timer thread (models, simulators),
    /// and for tests; returns nothing with the watchdog off.
    pub fn watchdog_check(&self) -> Vec<crate::StallReport> {
        let shared = &self.handle.shared;
        match shared.config.watchdog {
            Some(threshold) => crate::watchdog::check(&self.handle.pools, threshold, shared.platform.now()),
            None => Vec::new(),
        }
    }

    /// Every live workqueue's counters (kernel `wq_monitor.py`), with its
    /// name, in creation order: see [`Workqueue::stats`](crate::Workqueue::stats).
    pub fn workqueue_stats(&self) -> Vec<(String, crate::WorkqueueStats)> {
        let mut wqs = std::collections::BTreeMap::new();
        for pool in &self.handle.pools {
            let guard = pool.lock();
            for (&id, wq) in &guard.wqs {
                wqs.entry(id).or_insert_with(|| wq.clone());
            }
        }
        wqs.into_values().map(|wq| (wq.name.clone(), crate::stats::stats_of(&wq))).collect()
    }

    /// A snapshot of every pool.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.handle
            .pools
            .iter()
            .map(|pool| {
                let guard = pool.lock();
                let state = guard.machine.pool();
                PoolStats {
                    cpu: pool.cpu,
                    highpri: pool.highpri,
                    workers: state.nr_workers(),
                    idle: state.idle().len(),
                    running: state.nr_running(),
                    pending: state.worklist().len(),
                    create_failures: state.create_failures(),
                    detected: state.detections(),
                    disassociated: state.disassociated(),
                    stalls: pool.stall.lock().stalls,
                }
            })
            .collect()
    }

    /// Delivers every timer event due now (delayed work, idle culling,
    /// creation retries); returns how many fired. Needed only when the
    /// system was built without a timer thread.
    ///
    /// The events are the engine's own code, run on the calling thread: a
    /// panic in one of them is an engine bug and goes to
    /// [`Platform::engine_thread_panicked`] (on [`Std`]: a message naming
    /// `<prefix>/run_due_timers`, then abort), as on the timer thread. A
    /// panic in the `Drop` of an item's captured state is contained and
    /// counted in [`System::stray_panics`].
    pub fn run_due_timers(&self) -> usize {
        let shared = &self.handle.shared;
        shared.timers.run_due(shared.platform.now(), || format!("{}/run_due_timers", shared.config.thread_name_prefix))
    }

    /// Starts recording the engine's transitions (feature `trace`; see
    /// `cmwq::machine::trace`), dropping anything recorded before. Start on
    /// a system that has run nothing yet: the replay assumes every pool
    /// has its one initial worker (id 0), idle, and no high-priority pools
    /// in use (they are not traced). The blocking monitor's reports that
    /// take effect are recorded too (`SeenAsleep`, `SeenRunning`,
    /// `SeenHogging`).
    #[cfg(feature = "trace")]
    pub fn start_trace(&self) {
        self.handle.shared.tracer.start();
    }

    /// The transitions recorded since the last call (feature `trace`).
    #[cfg(feature = "trace")]
    pub fn take_trace(&self) -> Vec<crate::machine::trace::Event> {
        self.handle.shared.tracer.take()
    }

    /// How many workqueues of this system still hold memory: built and not
    /// yet freed. A workqueue is freed once it is destroyed (explicitly or
    /// by dropping its last handle) and its last handle is gone; a count
    /// that stays up after that is a leak.
    pub fn live_workqueues(&self) -> usize {
        self.handle.shared.live_workqueues.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Panics caught on the system's threads outside a work item's function
    /// and not attributable to a workqueue: the `Drop` of an item's captured
    /// state run by the timer thread or at shutdown. (Panics of items, and
    /// of drops by the worker that ran them, are counted by
    /// [`Workqueue::panic_count`](crate::Workqueue::panic_count).) The thread carried on each time.
    pub fn stray_panics(&self) -> usize {
        self.handle.shared.stray_panics.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Tells the timer thread that the platform's clock moved: it re-reads
    /// [`Platform::now`] and fires what is due. A platform whose clock
    /// jumps (a virtual clock advanced by hand) calls this after each
    /// jump; a clock that only runs forward in real time never needs it.
    /// Without a timer thread, call [`System::run_due_timers`] instead.
    ///
    /// ```
    /// # use cmwq::System;
    /// let system = System::builder().cpus(1).build()?;
    /// system.wake_timer(); // harmless on a real clock
    /// # Ok::<(), cmwq::BuildError>(())
    /// ```
    pub fn wake_timer(&self) {
        self.handle.shared.timers.clock_changed();
    }

    /// The earliest armed timer deadline, on the platform clock.
    pub fn next_timer_deadline(&self) -> Option<Duration> {
        self.handle.shared.timers.next_deadline()
    }
}

/// Body of the timer thread: deliver due events until the service stops.
/// A panic escaping an event is an engine bug: it unwinds to the engine
/// thread's panic path (`spawn_engine_thread`). Events contain the user
/// code they may run (the `Drop` of an item's captured state).
fn timer_thread<P: Platform>(shared: Arc<SystemShared<P>>) {
    P::set_thread_context(Some(Arc::new(crate::blocking::EngineThread::of(&shared))));
    while let Due::Fire(events) = shared.timers.wait_step(&shared.platform) {
        fire_all(events);
    }
}

impl<P: Platform> SystemHandle<P> {
    /// The last handle went on one of this system's own threads, which the
    /// shutdown would wait for: shut down on a thread of its own instead.
    /// If that thread cannot be created, the system is left running
    /// (parked, idle) rather than hang; this is reported on stderr.
    fn shut_down_elsewhere(&mut self) {
        // ManuallyDrop: if the platform drops the body without running it
        // (a failed spawn), the handle is leaked, not dropped again here
        // on this engine thread (which would try this again, forever).
        let moved = core::mem::ManuallyDrop::new(SystemHandle {
            shared: self.shared.clone(),
            pools: core::mem::take(&mut self.pools),
            timer_thread: Mutex::new(self.timer_thread.lock().take()),
            monitor_thread: Mutex::new(self.monitor_thread.lock().take()),
        });
        let name = format!("{}/shutdown", self.shared.config.thread_name_prefix);
        // An engine thread like the others (an engine panic in the shutdown
        // aborts loudly). Its handle is dropped: it is the one thread of the
        // system nobody is left to join, and it exits once every other
        // thread has been joined.
        let shut_down = move || drop(core::mem::ManuallyDrop::into_inner(moved));
        if let Err(err) = crate::platform::spawn_engine_thread(&self.shared.platform, name, shut_down) {
            std::eprintln!(
                "cmwq: the last handle of a system was dropped on one of its own threads and \
                 no thread could be created to shut it down ({err}); its threads stay parked"
            );
        }
    }
}

impl<P: Platform> Drop for SystemHandle<P> {
    fn drop(&mut self) {
        if self.pools.is_empty() {
            return; // moved to a shutdown thread
        }
        if !P::may_wait_while_unwinding() && crate::platform::os_thread::panicking() {
            return; // left to the model checker (see the Platform item)
        }
        if crate::blocking::on_engine_thread::<P>(&self.shared) {
            self.shut_down_elsewhere();
            return;
        }
        // Step 0: workqueues orphaned on the system's own threads and not
        // finalized yet are drained and destroyed (their rescuers joined);
        // then any rescuer still attached to a pool-workqueue is stopped.
        // Their armed delayed items fire now: nobody can flush or cancel
        // them any more, and waiting for their deadlines could take forever.
        let orphans = core::mem::take(&mut *self.shared.orphans.lock());
        for wq in orphans {
            crate::delayed::fire_armed_now(&wq);
            wq.destroy();
        }
        self.shared.join_handed_over();
        let mut left: Vec<Arc<Rescuer<P>>> = Vec::new();
        for pool in &self.pools {
            let guard = pool.lock();
            for rescuer in guard.wqs.values().filter_map(|wq| wq.rescuer.as_ref()) {
                // A workqueue has a pool-workqueue on several pools.
                if !left.iter().any(|known| Arc::ptr_eq(known, rescuer)) {
                    left.push(rescuer.clone());
                }
            }
        }
        for rescuer in left {
            rescuer.stop();
        }
        // Trustees of offline CPUs are released and joined.
        for pool in &self.pools {
            if let Some(trustee) = pool.lock().trustee.take() {
                trustee.wake.notify_all();
            }
        }
        let trustees: Vec<_> = self.shared.hotplug.lock().trustees.iter_mut().filter_map(Option::take).collect();
        for trustee in trustees {
            P::join(trustee);
        }
        // The monitor first: it takes pool locks.
        self.shared.monitor.stop();
        if let Some(thread) = self.monitor_thread.lock().take() {
            P::join(thread);
        }
        // Step 1.
        let panics = self.shared.timers.stop();
        self.shared.stray_panics.fetch_add(panics, core::sync::atomic::Ordering::AcqRel);
        if let Some(thread) = self.timer_thread.lock().take() {
            P::join(thread);
        }
        // A finalization the timer thread ran may have handed over a
        // rescuer thread meanwhile.
        self.shared.join_handed_over();
        for pool in &self.pools {
            // Step 2.
            let mut guard = pool.lock();
            guard.machine.begin_stop();
            while guard.machine.pool().manager_active() {
                drop(guard);
                P::yield_now();
                guard = pool.lock();
            }
            // Step 3.
            let ids: Vec<_> = guard.machine.pool().workers().keys().copied().collect();
            for id in ids {
                guard.retire_worker(id);
            }
            while !guard.machine.pool().workers().is_empty() {
                guard = pool.exited.wait(guard);
            }
            // Step 4.
            let zombies = core::mem::take(&mut guard.zombies);
            // Pool-workqueues left by workqueues dropped from inside their
            // own items hold references back to this system; release them.
            let pwqs = (guard.machine.take_pwqs(), core::mem::take(&mut guard.wqs));
            drop(guard);
            if crate::platform::contain(move || drop(pwqs)).is_some() {
                self.shared.stray_panics.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
            }
            for thread in zombies {
                P::join(thread);
            }
        }
    }
}
