//! A property test over both builders (`SystemBuilder`, `WorkqueueBuilder`).
//!
//! Every knob is drawn from {0, 1, small, typical, huge, MAX} (the limit
//! itself and one past it included), names from {empty, plain, with a NUL,
//! longer than `MAX_NAME_LEN`, exactly `MAX_NAME_LEN`, non-ASCII}. Each
//! configuration either
//! * fails in `build()` with an error that names the offending field (an
//!   oracle computed here from the documented limits says which fields are
//!   wrong, and a configuration within every limit must build), or
//! * builds, runs a small workload (queue + flush, a 1 ms delayed item, a
//!   `Duration::MAX` delayed item cancelled and requeued, `cpu_down` /
//!   `cpu_up` of the last CPU, `queue_on` the offline CPU), stays idle for
//!   half a second using under 10% of one CPU (process CPU time from
//!   `/proc/self/stat`), and shuts down leaving no thread behind.
//!
//! Each case runs on its own thread under a guard that fails the test if it
//! does not finish within a minute (a hang), naming the configuration.
//!
//! The CPU check measures the whole process, so this file holds exactly one
//! `#[test]`: the test binary then runs nothing else at the same time.
//!
//! `PROPTEST_CASES=n` runs more (or fewer) cases than the default 48.

use cmwq::{
    BuildError, DelayedWork, HotplugError, System, Work, Workqueue, WorkqueueBuilder, DEFAULT_MAX_ACTIVE,
    MAX_ACTIVE_LIMIT, MAX_CPUS, MAX_IDLE_SPINS, MAX_NAME_LEN, MAX_RESCUER_BATCH, MAX_WORKERS_PER_POOL,
    MIN_CPU_SET_POLL_INTERVAL, MIN_TIMER_INTERVAL,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestError, TestRunner};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long one case may take before it counts as a hang.
const HANG_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle measurement window, and the settling time before it.
const IDLE_WINDOW: Duration = Duration::from_millis(500);
const IDLE_SETTLE: Duration = Duration::from_millis(100);

/// Set once a case hung: later cases (proptest's shrinking) pass at once, so
/// the hung configuration is what gets reported, without waiting a minute
/// for each shrink step.
static HUNG: AtomicBool = AtomicBool::new(false);

// ---------------------------------------------------------------------------
// The configurations.

#[derive(Clone, Debug)]
struct SysCfg {
    cpus: usize,
    max_workers_per_pool: usize,
    idle_spins: u32,
    rescuer_batch: usize,
    /// `None`: the builder's default prefix.
    thread_name_prefix: Option<String>,
    idle_timeout: Duration,
    create_cooldown: Duration,
    mayday_initial: Duration,
    mayday_interval: Duration,
    follow_cpu_set: bool,
    cpu_set_poll_interval: Duration,
    pin_workers: bool,
    timer_thread: bool,
    concurrency_management: bool,
    highpri_pools: bool,
    unbound_pools: bool,
}

#[derive(Clone, Debug)]
struct WqCfg {
    name: String,
    max_active: usize,
    unbound: bool,
    highpri: bool,
    cpu_intensive: bool,
    ordered: bool,
    mem_reclaim: bool,
}

#[derive(Clone, Debug)]
struct Case {
    /// Drawn from the accepted values only (most cases), so that enough
    /// configurations build; otherwise from every value.
    within_limits: bool,
    sys: SysCfg,
    wq: WqCfg,
}

fn names() -> Vec<String> {
    vec![
        String::new(),
        "ok".to_string(),
        "a\0b".to_string(),
        "x".repeat(MAX_NAME_LEN + 44),
        "ünï-côdé/名前".to_string(),
        "x".repeat(MAX_NAME_LEN),
    ]
}

fn name_ok(name: &str) -> bool {
    !name.contains('\0') && name.len() <= MAX_NAME_LEN
}

const DURATIONS: [Duration; 7] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_secs(300),
    Duration::MAX,
];

/// `all`, or only its values that `ok` accepts.
fn pick<T: Clone + Debug + 'static>(within_limits: bool, all: Vec<T>, ok: impl Fn(&T) -> bool) -> BoxedStrategy<T> {
    let values: Vec<T> = if within_limits { all.into_iter().filter(|v| ok(v)).collect() } else { all };
    select(values).boxed()
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (prop::bool::weighted(0.7), any::<bool>()).prop_flat_map(|(within, timer_thread)| {
        let interval_ok = move |d: &Duration| !timer_thread || *d >= MIN_TIMER_INTERVAL;
        let poll_ok = move |d: &Duration| !timer_thread || *d >= MIN_CPU_SET_POLL_INTERVAL;
        let mut prefixes: Vec<Option<String>> = vec![None];
        prefixes.extend(names().into_iter().map(Some));
        let sizes = (
            pick(within, vec![0, 1, 2, 4, MAX_CPUS + 1, usize::MAX], |&n| (1..=MAX_CPUS).contains(&n)),
            pick(within, vec![0, 1, 2, 1024, MAX_WORKERS_PER_POOL, MAX_WORKERS_PER_POOL + 1, usize::MAX], |&n| {
                (1..=MAX_WORKERS_PER_POOL).contains(&n)
            }),
            pick(within, vec![0, 1, 8, 64, MAX_IDLE_SPINS, MAX_IDLE_SPINS + 1, u32::MAX], |&n| n <= MAX_IDLE_SPINS),
            pick(within, vec![0, 1, 4, 16, MAX_RESCUER_BATCH, MAX_RESCUER_BATCH + 1, usize::MAX], |&n| {
                (1..=MAX_RESCUER_BATCH).contains(&n)
            }),
            pick(within, prefixes, |p| p.as_deref().is_none_or(name_ok)),
        );
        let intervals = (
            pick(within, DURATIONS.to_vec(), interval_ok),
            pick(within, DURATIONS.to_vec(), interval_ok),
            pick(within, DURATIONS.to_vec(), interval_ok),
            pick(within, DURATIONS.to_vec(), interval_ok),
            pick(within, DURATIONS.to_vec(), poll_ok),
        );
        let switches = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>());
        let sys = (sizes, intervals, switches).prop_map(
            move |(
                (cpus, max_workers_per_pool, idle_spins, rescuer_batch, thread_name_prefix),
                (idle_timeout, create_cooldown, mayday_initial, mayday_interval, cpu_set_poll_interval),
                (follow_cpu_set, pin_workers, concurrency_management, highpri_pools, unbound_pools),
            )| SysCfg {
                cpus,
                max_workers_per_pool,
                idle_spins,
                rescuer_batch,
                thread_name_prefix,
                idle_timeout,
                create_cooldown,
                mayday_initial,
                mayday_interval,
                follow_cpu_set,
                cpu_set_poll_interval,
                pin_workers,
                timer_thread,
                concurrency_management,
                highpri_pools,
                unbound_pools,
            },
        );
        let wq =
            (
                pick(within, names(), |n| name_ok(n)),
                pick(within, vec![0, 1, 2, MAX_ACTIVE_LIMIT, MAX_ACTIVE_LIMIT + 1, usize::MAX], |&n| {
                    n <= MAX_ACTIVE_LIMIT
                }),
                (any::<bool>(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.3), any::<bool>()),
            )
                .prop_map(|(name, max_active, (unbound, highpri, cpu_intensive, ordered, mem_reclaim))| {
                    WqCfg { name, max_active, unbound, highpri, cpu_intensive, ordered, mem_reclaim }
                });
        (sys, wq).prop_map(move |(sys, mut wq)| {
            if within {
                // Keep the workqueue buildable on this system too.
                if wq.ordered {
                    wq.max_active = wq.max_active.min(1);
                }
                if !sys.highpri_pools {
                    wq.highpri = false;
                }
                if !sys.unbound_pools {
                    wq.unbound = false;
                    wq.ordered = false;
                }
            }
            Case { within_limits: within, sys, wq }
        })
    })
}

// ---------------------------------------------------------------------------
// The oracles: what the documented limits say about a configuration.

/// The `SystemBuilder` fields out of their documented range.
fn system_problems(c: &SysCfg) -> Vec<&'static str> {
    let mut wrong = Vec::new();
    if !(1..=MAX_CPUS).contains(&c.cpus) {
        wrong.push("cpus");
    }
    if !(1..=MAX_WORKERS_PER_POOL).contains(&c.max_workers_per_pool) {
        wrong.push("max_workers_per_pool");
    }
    if c.idle_spins > MAX_IDLE_SPINS {
        wrong.push("idle_spins");
    }
    if !(1..=MAX_RESCUER_BATCH).contains(&c.rescuer_batch) {
        wrong.push("rescuer_batch");
    }
    if c.thread_name_prefix.as_deref().is_some_and(|p| !name_ok(p)) {
        wrong.push("thread_name_prefix");
    }
    if c.timer_thread {
        for (field, value) in [
            ("idle_timeout", c.idle_timeout),
            ("create_cooldown", c.create_cooldown),
            ("mayday_initial_timeout", c.mayday_initial),
            ("mayday_interval", c.mayday_interval),
        ] {
            if value < MIN_TIMER_INTERVAL {
                wrong.push(field);
            }
        }
        if c.follow_cpu_set && c.cpu_set_poll_interval < MIN_CPU_SET_POLL_INTERVAL {
            wrong.push("cpu_set_poll_interval");
        }
    }
    wrong
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WqProblem {
    Name,
    OrderedMaxActive,
    MaxActiveTooLarge,
    NoHighpriPools,
    NoUnboundPools,
}

/// What is wrong with a workqueue configuration; `sys` `None`: only what
/// `WorkqueueBuilder::validate` checks (no system to build on).
fn wq_problems(c: &WqCfg, sys: Option<&SysCfg>) -> Vec<WqProblem> {
    let mut wrong = Vec::new();
    if !name_ok(&c.name) {
        wrong.push(WqProblem::Name);
    }
    if c.ordered && c.max_active > 1 {
        wrong.push(WqProblem::OrderedMaxActive);
    }
    if !c.ordered && c.max_active > MAX_ACTIVE_LIMIT {
        wrong.push(WqProblem::MaxActiveTooLarge);
    }
    if let Some(sys) = sys {
        if c.highpri && !sys.highpri_pools {
            wrong.push(WqProblem::NoHighpriPools);
        }
        if (c.unbound || c.ordered) && !sys.unbound_pools {
            wrong.push(WqProblem::NoUnboundPools);
        }
    }
    wrong
}

/// The `max_active` a workqueue built from `c` reports.
fn effective_max_active(c: &WqCfg) -> usize {
    match (c.ordered, c.max_active) {
        (true, _) => 1,
        (false, 0) => DEFAULT_MAX_ACTIVE,
        (false, n) => n,
    }
}

/// Every error says something, and not too much (a long name is shown
/// abbreviated).
fn check_message(err: &BuildError) -> String {
    let msg = err.to_string();
    assert!(!msg.trim().is_empty(), "empty message for {err:?}");
    assert!(msg.len() < 512, "message of {} bytes: {msg}", msg.len());
    msg
}

fn check_system_error(err: &BuildError, wrong: &[&'static str]) {
    let msg = check_message(err);
    match err {
        BuildError::OutOfRange { field, .. } | BuildError::InvalidName { field, .. } => {
            assert!(wrong.contains(field), "refused `{field}` ({msg}), but the wrong fields are {wrong:?}");
            assert!(msg.contains(field), "message does not name `{field}`: {msg}");
        }
        other => panic!("unexpected system build error {other:?} ({msg}); wrong fields: {wrong:?}"),
    }
    if let BuildError::InvalidName { field, .. } = err {
        assert_eq!(*field, "thread_name_prefix", "{msg}");
    }
}

fn check_wq_error(err: &BuildError, wrong: &[WqProblem]) {
    let msg = check_message(err);
    let kind = match err {
        BuildError::InvalidName { field, .. } => {
            assert!(msg.contains(field), "message does not name `{field}`: {msg}");
            assert_eq!(*field, "workqueue name", "{msg}");
            WqProblem::Name
        }
        BuildError::OrderedMaxActive { .. } => WqProblem::OrderedMaxActive,
        BuildError::MaxActiveTooLarge { limit, .. } => {
            assert_eq!(*limit, MAX_ACTIVE_LIMIT);
            WqProblem::MaxActiveTooLarge
        }
        BuildError::PoolDisabled { pools: "highpri" } => WqProblem::NoHighpriPools,
        BuildError::PoolDisabled { pools: "unbound" } => WqProblem::NoUnboundPools,
        other => panic!("unexpected workqueue build error {other:?} ({msg}); problems: {wrong:?}"),
    };
    assert!(wrong.contains(&kind), "refused for {kind:?} ({msg}), but the problems are {wrong:?}");
}

fn wq_builder(c: &WqCfg) -> WorkqueueBuilder {
    let mut b = Workqueue::builder(c.name.clone());
    b.max_active(c.max_active);
    if c.unbound {
        b.unbound();
    }
    if c.highpri {
        b.highpri();
    }
    if c.cpu_intensive {
        b.cpu_intensive();
    }
    if c.ordered {
        b.ordered();
    }
    if c.mem_reclaim {
        b.mem_reclaim();
    }
    b
}

// ---------------------------------------------------------------------------
// One case.

fn counter() -> (Arc<AtomicUsize>, impl Fn() + Send + Sync + 'static) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    (ran, move || {
        r.fetch_add(1, SeqCst);
    })
}

/// Waits until `done` holds, delivering timer events by hand on a system
/// without a timer thread. No timeout: the guard catches a hang.
fn wait_timers(system: &System, timer_thread: bool, done: impl Fn() -> bool) {
    while !done() {
        if !timer_thread {
            system.run_due_timers();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Queue and flush, a short delayed item, and a never-due delayed item
/// cancelled, requeued and run.
fn workload(system: &System, wq: &Workqueue, timer_thread: bool) {
    let (ran, f) = counter();
    let work = Work::new(f);
    assert!(wq.queue(&work).unwrap(), "an idle item is queued");
    work.flush().unwrap();
    assert_eq!(ran.load(SeqCst), 1, "flush waited for the item");
    wq.flush().unwrap();
    assert!(work.busy().is_idle());
    assert!(!work.flush().unwrap(), "nothing to wait for");

    let (ran, f) = counter();
    let delayed = DelayedWork::new(f);
    assert!(wq.queue_delayed(&delayed, Duration::from_millis(1)).unwrap());
    if !timer_thread {
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ran.load(SeqCst), 0, "without a timer thread only run_due_timers fires a timer");
    }
    wait_timers(system, timer_thread, || ran.load(SeqCst) == 1);
    delayed.flush().unwrap();
    assert_eq!(ran.load(SeqCst), 1);
    assert!(delayed.busy().is_idle());

    let (ran, f) = counter();
    let never = DelayedWork::new(f);
    assert!(wq.queue_delayed(&never, Duration::MAX).unwrap());
    assert!(never.busy().pending);
    assert!(!wq.queue_delayed(&never, Duration::MAX).unwrap(), "already pending");
    wq.flush().unwrap(); // does not wait for armed timers
    if !timer_thread {
        system.run_due_timers();
    }
    // Nothing runs, so cancel_sync has nothing to wait for: it returns (a
    // hang would trip the case's guard) and takes the armed timer.
    assert!(!never.busy().running, "an armed item is not running");
    assert!(never.cancel_sync().unwrap(), "it was pending on its timer");
    assert!(never.busy().is_idle());
    assert!(!never.cancel_sync().unwrap());
    assert_eq!(ran.load(SeqCst), 0, "a cancelled item does not run");
    assert!(wq.queue_delayed(&never, Duration::MAX).unwrap(), "queueable again after cancel");
    assert!(never.cancel_sync().unwrap());
    assert!(wq.queue_delayed(&never, Duration::ZERO).unwrap());
    never.flush().unwrap();
    assert_eq!(ran.load(SeqCst), 1);
    assert!(never.busy().is_idle());
}

/// Takes the last CPU down and up again, queueing onto it meanwhile.
fn hotplug(system: &System, wqs: &[Workqueue], c: &SysCfg) {
    if c.cpus < 2 {
        assert_eq!(system.cpu_down(0), Err(HotplugError::LastCpu { cpu: 0 }));
        assert!(system.is_cpu_online(0));
        return;
    }
    let last = c.cpus - 1;
    system.cpu_down(last).unwrap();
    // With follow_cpu_set the CPU-set poll may bring it back at any moment
    // (it is still in the process's set): both are fine for what follows.
    if !c.follow_cpu_set {
        assert!(!system.is_cpu_online(last));
    }
    for wq in wqs {
        let (ran, f) = counter();
        let work = Work::new(f);
        assert!(wq.queue_on(last, &work).unwrap(), "queue_on an offline CPU is accepted");
        work.flush().unwrap();
        assert!(wq.queue(&work).unwrap());
        work.flush().unwrap();
        assert_eq!(ran.load(SeqCst), 2);
    }
    match system.cpu_up(last) {
        Ok(()) => {}
        Err(HotplugError::AlreadyOnline { .. }) if c.follow_cpu_set => {}
        Err(err) => panic!("cpu_up({last}): {err}"),
    }
    assert!(system.is_cpu_online(last));
    for wq in wqs {
        let (ran, f) = counter();
        let work = Work::new(f);
        assert!(wq.queue_on(last, &work).unwrap());
        work.flush().unwrap();
        assert_eq!(ran.load(SeqCst), 1);
    }
}

/// Process CPU time (user + system, all threads).
#[cfg(target_os = "linux")]
fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Field 2 (comm) is parenthesised and may hold spaces; fields 3.. follow
    // the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[14 - 3].parse::<u64>().unwrap() + fields[15 - 3].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(hz > 0, "_SC_CLK_TCK");
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz as u64)
}

/// An idle system uses under 10% of one CPU.
#[cfg(target_os = "linux")]
fn check_idle_cpu() {
    std::thread::sleep(IDLE_SETTLE);
    let before = process_cpu_time();
    std::thread::sleep(IDLE_WINDOW);
    let used = process_cpu_time().saturating_sub(before);
    assert!(used < IDLE_WINDOW / 10, "an idle system used {used:?} of CPU in {IDLE_WINDOW:?}");
}

#[cfg(not(target_os = "linux"))]
fn check_idle_cpu() {}

fn system_builder(c: &SysCfg) -> cmwq::SystemBuilder {
    let mut b = System::builder();
    b.cpus(c.cpus)
        .max_workers_per_pool(c.max_workers_per_pool)
        .idle_spins(c.idle_spins)
        .rescuer_batch(c.rescuer_batch)
        .idle_timeout(c.idle_timeout)
        .create_cooldown(c.create_cooldown)
        .mayday_timeouts(c.mayday_initial, c.mayday_interval)
        .follow_cpu_set(c.follow_cpu_set, c.cpu_set_poll_interval)
        .pin_workers(c.pin_workers)
        .timer_thread(c.timer_thread)
        .concurrency_management(c.concurrency_management)
        .highpri_pools(c.highpri_pools)
        .unbound_pools(c.unbound_pools);
    if let Some(prefix) = &c.thread_name_prefix {
        b.thread_name_prefix(prefix.clone());
    }
    b
}

fn run_case(case: &Case) {
    let c = &case.sys;
    let wrong = system_problems(c);
    let system = match system_builder(c).build() {
        Ok(system) => {
            assert!(wrong.is_empty(), "built although {wrong:?} are out of range");
            system
        }
        Err(err) => {
            assert!(!wrong.is_empty(), "refused a configuration within every limit: {err}");
            check_system_error(&err, &wrong);
            // The workqueue builder's own checks need no system.
            let problems = wq_problems(&case.wq, None);
            match wq_builder(&case.wq).validate() {
                Ok(max_active) => {
                    assert!(problems.is_empty(), "validated despite {problems:?}");
                    assert_eq!(max_active, effective_max_active(&case.wq));
                }
                Err(err) => check_wq_error(&err, &problems),
            }
            return;
        }
    };
    assert_eq!(system.cpus(), c.cpus);

    let problems = wq_problems(&case.wq, Some(c));
    let mut wqs = vec![Workqueue::builder("bound").build(&system).expect("a plain bound workqueue")];
    match wq_builder(&case.wq).build(&system) {
        Ok(wq) => {
            assert!(problems.is_empty(), "built despite {problems:?}");
            assert_eq!(wq.name(), case.wq.name);
            assert_eq!(wq.max_active(), effective_max_active(&case.wq));
            assert_eq!(wq.is_ordered(), case.wq.ordered);
            assert_eq!(wq.is_unbound(), case.wq.unbound || case.wq.ordered);
            assert_eq!(wq.is_mem_reclaim(), case.wq.mem_reclaim);
            wqs.push(wq);
        }
        Err(err) => {
            assert!(!problems.is_empty(), "refused a valid workqueue: {err}");
            check_wq_error(&err, &problems);
        }
    }
    assert_eq!(system.live_workqueues(), wqs.len());

    for wq in &wqs {
        workload(&system, wq, c.timer_thread);
    }
    hotplug(&system, &wqs, c);

    let per_cpu = if c.highpri_pools { 2 } else { 1 };
    let stats = system.pool_stats();
    let expected_pools = c.cpus * per_cpu + if c.unbound_pools { per_cpu } else { 0 };
    assert_eq!(stats.len(), expected_pools, "{stats:?}");
    for pool in &stats {
        assert!(pool.workers >= 1, "a pool without workers: {pool:?}");
        assert!(pool.workers <= c.max_workers_per_pool, "over max_workers_per_pool: {pool:?}");
        assert_eq!(pool.pending, 0, "everything queued has run: {pool:?}");
    }

    // Idle, with a never-due timer armed.
    let (ran, f) = counter();
    let never = DelayedWork::new(f);
    assert!(wqs[0].queue_delayed(&never, Duration::MAX).unwrap());
    check_idle_cpu();
    assert!(never.cancel_sync().unwrap());
    assert_eq!(ran.load(SeqCst), 0);

    for wq in &wqs {
        assert_eq!(wq.panic_count(), 0);
    }
    assert_eq!(system.stray_panics(), 0);
    drop(wqs);
    assert_eq!(system.live_workqueues(), 0, "dropped workqueues are freed");
    drop(system); // shutdown joins every thread

    // No thread of the system is left (names are cut to 15 bytes by Linux;
    // an empty or non-ASCII prefix cannot be told apart reliably).
    let prefix = c.thread_name_prefix.clone().unwrap_or_else(|| "kworker".to_string());
    if !prefix.is_empty() && prefix.is_ascii() {
        let shown = &prefix[..prefix.len().min(15)];
        assert_eq!(cmwq_tests::threads_left_after_join(shown), 0, "threads named {shown:?} outlived the system");
    }
}

/// Runs `run_case` on its own thread; a case that does not finish in
/// `HANG_TIMEOUT` fails the test (the stuck thread is left behind).
fn guarded(case: Case) -> Result<(), TestCaseError> {
    if HUNG.load(SeqCst) {
        return Ok(());
    }
    let (tx, rx) = mpsc::channel();
    let body = case.clone();
    let thread = std::thread::Builder::new()
        .name("builder-case".to_string())
        .spawn(move || {
            run_case(&body);
            let _ = tx.send(());
        })
        .expect("spawn the case thread");
    match rx.recv_timeout(HANG_TIMEOUT) {
        Ok(()) => {
            thread.join().expect("case thread");
            Ok(())
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = thread.join().expect_err("the case thread ended without reporting");
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string());
            Err(TestCaseError::fail(format!("{msg}\nconfiguration: {case:#?}")))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            HUNG.store(true, SeqCst);
            panic!("hang: the case did not finish within {HANG_TIMEOUT:?}\nconfiguration: {case:#?}");
        }
    }
}

#[test]
fn builders_refuse_with_a_message_or_build_a_working_idle_system() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 128,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    };
    let started = Instant::now();
    // Cases drawn from every value, and cases whose system builds.
    // (Shrinking, after a failure, adds runs.)
    let total = Arc::new(AtomicUsize::new(0));
    let unrestricted = Arc::new(AtomicUsize::new(0));
    let built = Arc::new(AtomicUsize::new(0));
    let (total_seen, unrestricted_seen, built_seen) = (total.clone(), unrestricted.clone(), built.clone());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case_strategy(), move |case| {
        total_seen.fetch_add(1, SeqCst);
        if !case.within_limits {
            unrestricted_seen.fetch_add(1, SeqCst);
        }
        if system_problems(&case.sys).is_empty() {
            built_seen.fetch_add(1, SeqCst);
        }
        guarded(case)
    });
    eprintln!(
        "builder_props: {} runs ({} drawn from every value), {} systems built, in {:?}",
        total.load(SeqCst),
        unrestricted.load(SeqCst),
        built.load(SeqCst),
        started.elapsed()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!("{reason}\nminimal failing case: {case:#?}"),
        Err(TestError::Abort(reason)) => panic!("aborted: {reason}"),
    }
}
