//! Run-time configuration of a [`crate::System`]: sizes and timeouts.
//!
//! Everything that a model checker needs to shrink (CPU count, worker
//! limits, whether a timer thread exists) is a value here, never a `cfg`.

use crate::error::BuildError;
use core::time::Duration;

/// Kernel `IDLE_WORKER_TIMEOUT`: idle workers beyond the policy are retired
/// after this long.
pub const IDLE_WORKER_TIMEOUT: Duration = Duration::from_secs(300);
/// Kernel `CREATE_COOLDOWN`: wait this long after a failed worker creation.
pub const CREATE_COOLDOWN: Duration = Duration::from_secs(1);
/// Kernel `WQ_MAX_ACTIVE`: the largest accepted `max_active`.
pub const MAX_ACTIVE_LIMIT: usize = 512;
/// Kernel `WQ_DFL_ACTIVE`: what `max_active(0)` means.
pub const DEFAULT_MAX_ACTIVE: usize = MAX_ACTIVE_LIMIT / 2;
/// Default cap on workers in one pool (the kernel has none; a user-space
/// process should not create threads without bound).
pub const DEFAULT_MAX_WORKERS_PER_POOL: usize = 1024;

/// Kernel `MAYDAY_INITIAL_TIMEOUT`: after a failed worker creation, call
/// the rescuers this long later.
pub const MAYDAY_INITIAL_TIMEOUT: Duration = Duration::from_millis(10);
/// Kernel `MAYDAY_INTERVAL`: and then again this often while the pool has
/// no idle worker.
pub const MAYDAY_INTERVAL: Duration = Duration::from_millis(100);
/// Kernel `RESCUER_BATCH`: items a rescuer runs for one pool-workqueue
/// before it turns to the next mayday.
pub const RESCUER_BATCH: usize = 16;

/// [`Config::unbound_concurrency`] for unbound pools that are not
/// concurrency managed, as in the kernel: every waiting item gets a worker,
/// also items that block without `cmwq::blocking`.
pub const UNBOUND_UNMANAGED: usize = usize::MAX;

/// Default [`Config::detect_blocking`]: a worker asleep this long outside
/// a blocking section is taken for blocked. Short enough that a waiting item
/// starts well within a millisecond, long enough that a worker waiting a
/// moment for a lock another worker holds briefly is not.
pub const DEFAULT_DETECT_BLOCKING_AFTER: Duration = Duration::from_micros(100);
/// The longest accepted [`Config::detect_blocking`] threshold.
pub const MAX_DETECT_BLOCKING_AFTER: Duration = Duration::from_secs(60);

/// Default [`Config::cpu_hog`]: an item that keeps its worker on the CPU
/// this long is counted out as CPU-intensive (kernel 6.5
/// `wq_cpu_intensive_thresh_us`, 10 ms).
pub const DEFAULT_CPU_HOG_AFTER: Duration = Duration::from_millis(10);
/// Default [`Config::watchdog`]: a pool whose waiting items make no
/// progress this long is reported stalled (kernel `wq_watchdog_thresh`).
pub const DEFAULT_WATCHDOG_THRESHOLD: Duration = Duration::from_secs(30);
/// The longest accepted threshold for [`Config::detect_blocking`],
/// [`Config::cpu_hog`] and [`Config::watchdog`] is this, except for the
/// watchdog's, whose limit is [`MAX_WATCHDOG_THRESHOLD`].
pub const MAX_MONITOR_THRESHOLD: Duration = MAX_DETECT_BLOCKING_AFTER;
/// The longest accepted [`Config::watchdog`] threshold (a day).
pub const MAX_WATCHDOG_THRESHOLD: Duration = Duration::from_secs(24 * 3600);

/// Default [`Config::idle_spins`].
pub const DEFAULT_IDLE_SPINS: u32 = 64;

/// The most CPUs a system may have (the kernel's largest `CONFIG_NR_CPUS`).
/// Each CPU gets two pools with a thread each, so this is also a bound on
/// the threads a build starts.
pub const MAX_CPUS: usize = 8192;
/// The largest accepted [`Config::max_workers_per_pool`] (the Linux default
/// `pid_max`: more threads than that cannot exist in one pool anyway).
pub const MAX_WORKERS_PER_POOL: usize = 32_768;
/// The largest accepted [`Config::idle_spins`]: a spinning idle worker burns
/// its CPU, so the spin stays short (about a millisecond of yields).
pub const MAX_IDLE_SPINS: u32 = 4096;
/// The largest accepted [`Config::rescuer_batch`].
pub const MAX_RESCUER_BATCH: usize = 65_536;
/// The longest accepted thread-name prefix or workqueue name, in bytes.
/// Linux shows only the first 15 bytes of a thread name; longer names are
/// accepted up to this bound and truncated there.
pub const MAX_NAME_LEN: usize = 256;
/// With a timer thread, the shortest accepted periodic interval
/// (`create_cooldown`, `mayday_timeouts`, `idle_timeout`): a zero interval
/// would make the timer thread fire back to back. Without a timer thread the
/// embedder delivers events and any interval is accepted.
pub const MIN_TIMER_INTERVAL: Duration = Duration::from_millis(1);
/// With a timer thread, the shortest accepted CPU-set poll interval (each
/// poll is a system call).
pub const MIN_CPU_SET_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Configuration of a [`crate::System`]. Built by [`crate::SystemBuilder`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of (virtual) CPUs, each with a normal and a high-priority pool.
    pub cpus: usize,
    /// Idle workers beyond the policy are retired after this long.
    pub idle_timeout: Duration,
    /// After a failed worker creation, retry after this long.
    pub create_cooldown: Duration,
    /// Upper bound on workers per pool (counting idle ones).
    pub max_workers_per_pool: usize,
    /// After a failed worker creation, the first mayday is sent this long
    /// later.
    pub mayday_initial_timeout: Duration,
    /// Maydays are then repeated this often while the pool has no idle
    /// worker.
    pub mayday_interval: Duration,
    /// Items a rescuer runs for one pool-workqueue per turn (at least 1).
    pub rescuer_batch: usize,
    /// Follow the process's CPU set: virtual CPU `i` is the `i`-th CPU the
    /// process could use when the system was built; when it leaves the set
    /// the system takes it down (`cpu_down`), when it comes back, up.
    /// Needs a platform that reports the set, and timer delivery.
    pub follow_cpu_set: bool,
    /// How often the CPU set is read when following it.
    pub cpu_set_poll_interval: Duration,
    /// Pin each per-CPU pool's workers to their CPU (unpinned, to the
    /// whole set, while the CPU is offline). Workers re-pin when they next
    /// wake up after a change.
    pub pin_workers: bool,
    /// Whether a timer thread delivers timer events. Without it the embedder
    /// (a model, a simulator) calls [`crate::System::run_due_timers`].
    pub timer_thread: bool,
    /// Whether blocking hooks release the CPU to another worker. Switching
    /// it off turns the pool into a fixed set of busy workers: only for
    /// experiments and for tests that show what concurrency management buys.
    pub concurrency_management: bool,
    /// Prefix of worker thread names.
    pub thread_name_prefix: String,
    /// How many times an idle worker yields, checking for a wakeup, before
    /// it parks. Saves a park/unpark pair per item under a steady stream;
    /// 0 parks at once (what model checkers want).
    pub idle_spins: u32,
    /// Whether the high-priority pools exist (a model may drop them to fit
    /// its thread budget; highpri workqueues then cannot be built).
    pub highpri_pools: bool,
    /// Whether the unbound pools exist (likewise for unbound workqueues).
    pub unbound_pools: bool,
    /// The unbound pools' concurrency target (SPEC.md C6): how many of
    /// their workers may run items at once without blocking. `None`: the
    /// CPU count. [`UNBOUND_UNMANAGED`]: not managed, as in the kernel
    /// (every waiting item gets a worker).
    pub unbound_concurrency: Option<usize>,
    /// Blocking detection without annotation (`core/src/monitor.rs`): a
    /// worker seen asleep for this long outside any blocking section (a
    /// `std` sleep, lock, channel or file read inside an item) stops
    /// counting as running until it runs again, so that a waiting item gets
    /// a worker. `None`: off, only `cmwq::blocking` sections count. Needs
    /// a platform that can observe its threads ([`crate::Platform::probe`];
    /// std on Linux); elsewhere it does nothing. Zero is accepted (models
    /// use it); on real threads it counts a worker out at the first probe
    /// that finds it waiting even a moment (a contended lock).
    pub detect_blocking: Option<Duration>,
    /// CPU hogs (`core/src/monitor.rs`, machine rule M34): an item seen
    /// using this much CPU time in one stretch (since it began, or since it
    /// last left a blocking section) is counted out as CPU-intensive for
    /// the rest of its run, so the items behind it get a worker; counted
    /// per workqueue (`WorkqueueStats`) and reported once per function
    /// (`SystemBuilder::on_report`). `None`: off. Needs a platform that
    /// reports CPU time ([`crate::ThreadSample::cpu`]: std on Linux).
    pub cpu_hog: Option<Duration>,
    /// The stall watchdog (`core/src/watchdog.rs`, kernel `wq_watchdog`): a
    /// pool with waiting items and none begun for this long is reported
    /// stalled, with its oldest waiting item and what each worker does, at
    /// most once per threshold while it stays stalled. `None`: off. Checked
    /// by the monitor thread, so only with a timer thread (a model or
    /// simulator calls [`crate::System::watchdog_check`]).
    pub watchdog: Option<Duration>,
    /// Seeded bugs switched on (bits of [`crate::SeededBug::bit`]); only
    /// with the `seeded-bugs` feature.
    #[cfg(feature = "seeded-bugs")]
    pub seeded_bugs: u64,
}

impl Config {
    /// The seeded bugs switched on, as bits (always 0 without the
    /// `seeded-bugs` feature), for the machine's transitions.
    pub(crate) fn seeded_bits(&self) -> crate::machine::SeededBits {
        #[cfg(feature = "seeded-bugs")]
        {
            self.seeded_bugs
        }
        #[cfg(not(feature = "seeded-bugs"))]
        {
            0
        }
    }

    /// Checks every value against its documented limit: the one validation
    /// point of [`crate::SystemBuilder::build`]. Intervals have minimums
    /// (with a timer thread) but no maximum: every deadline is computed with
    /// saturating arithmetic, so `Duration::MAX` means "never".
    pub fn validate(&self) -> Result<(), BuildError> {
        check_range("cpus", self.cpus, 1, MAX_CPUS)?;
        check_range("max_workers_per_pool", self.max_workers_per_pool, 1, MAX_WORKERS_PER_POOL)?;
        check_range("idle_spins", self.idle_spins, 0, MAX_IDLE_SPINS)?;
        check_range("rescuer_batch", self.rescuer_batch, 1, MAX_RESCUER_BATCH)?;
        if let Some(target) = self.unbound_concurrency {
            check_range("unbound_concurrency", target, 1, UNBOUND_UNMANAGED)?;
        }
        check_name("thread_name_prefix", &self.thread_name_prefix)?;
        check_threshold("detect_blocking", self.detect_blocking, Duration::ZERO, MAX_MONITOR_THRESHOLD)?;
        check_threshold("cpu_hog", self.cpu_hog, Duration::ZERO, MAX_MONITOR_THRESHOLD)?;
        let min_watchdog = if self.timer_thread { MIN_TIMER_INTERVAL } else { Duration::ZERO };
        check_threshold("watchdog", self.watchdog, min_watchdog, MAX_WATCHDOG_THRESHOLD)?;
        if self.timer_thread {
            check_interval("idle_timeout", self.idle_timeout, MIN_TIMER_INTERVAL)?;
            check_interval("create_cooldown", self.create_cooldown, MIN_TIMER_INTERVAL)?;
            check_interval("mayday_initial_timeout", self.mayday_initial_timeout, MIN_TIMER_INTERVAL)?;
            check_interval("mayday_interval", self.mayday_interval, MIN_TIMER_INTERVAL)?;
            if self.follow_cpu_set {
                check_interval("cpu_set_poll_interval", self.cpu_set_poll_interval, MIN_CPU_SET_POLL_INTERVAL)?;
            }
        }
        Ok(())
    }
}

/// Refuses `value` outside `min..=max`.
fn check_range<T: PartialOrd + core::fmt::Display>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), BuildError> {
    if value < min || value > max {
        return Err(BuildError::OutOfRange { field, value: value.to_string(), allowed: format!("{min}..={max}") });
    }
    Ok(())
}

/// Refuses a monitor threshold outside `min..=max` (`None`, off, is fine).
fn check_threshold(
    field: &'static str,
    value: Option<Duration>,
    min: Duration,
    max: Duration,
) -> Result<(), BuildError> {
    match value {
        Some(after) if after < min || after > max => Err(BuildError::OutOfRange {
            field,
            value: format!("{after:?}"),
            allowed: format!("{min:?}..={max:?} (None switches it off)"),
        }),
        _ => Ok(()),
    }
}

/// Refuses an interval below `min` (with a timer thread).
fn check_interval(field: &'static str, value: Duration, min: Duration) -> Result<(), BuildError> {
    if value < min {
        return Err(BuildError::OutOfRange {
            field,
            value: format!("{value:?}"),
            allowed: format!("at least {min:?} with a timer thread (any value without one)"),
        });
    }
    Ok(())
}

/// Refuses a name that cannot be part of a thread name: an interior NUL
/// byte, or more than [`MAX_NAME_LEN`] bytes.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), BuildError> {
    let reason = if name.contains('\0') {
        "contains a NUL byte, which no thread name can hold"
    } else if name.len() > MAX_NAME_LEN {
        "is longer than 256 bytes (MAX_NAME_LEN)"
    } else {
        return Ok(());
    };
    let mut shown: String = name.chars().take(40).collect();
    if shown.len() < name.len() {
        shown.push_str("...");
    }
    Err(BuildError::InvalidName { field, name: shown, reason })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cpus: crate::platform::allowed_cpus(),
            idle_timeout: IDLE_WORKER_TIMEOUT,
            create_cooldown: CREATE_COOLDOWN,
            max_workers_per_pool: DEFAULT_MAX_WORKERS_PER_POOL,
            mayday_initial_timeout: MAYDAY_INITIAL_TIMEOUT,
            mayday_interval: MAYDAY_INTERVAL,
            rescuer_batch: RESCUER_BATCH,
            follow_cpu_set: false,
            cpu_set_poll_interval: Duration::from_secs(1),
            pin_workers: false,
            timer_thread: true,
            concurrency_management: true,
            thread_name_prefix: "kworker".to_string(),
            idle_spins: DEFAULT_IDLE_SPINS,
            highpri_pools: true,
            unbound_pools: true,
            unbound_concurrency: None,
            detect_blocking: Some(DEFAULT_DETECT_BLOCKING_AFTER),
            cpu_hog: Some(DEFAULT_CPU_HOG_AFTER),
            watchdog: Some(DEFAULT_WATCHDOG_THRESHOLD),
            #[cfg(feature = "seeded-bugs")]
            seeded_bugs: 0,
        }
    }
}

/// Whether seeded bug `bug` is switched on in `config` (a constant `false`
/// without the `seeded-bugs` feature, so every check compiles away).
#[inline(always)]
pub(crate) fn seeded(config: &Config, bug: crate::SeededBug) -> bool {
    crate::machine::seeded_in(config.seeded_bits(), bug)
}
