//! Run-time configuration of a [`crate::System`]: sizes and timeouts.
//!
//! Everything that a model checker needs to shrink (CPU count, worker
//! limits, whether a timer thread exists) is a value here, never a `cfg`.

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
/// Kernel `MAX_IDLE_WORKERS_RATIO`: one idle worker per this many busy ones
/// may stay beyond the two always kept.
pub const MAX_IDLE_WORKERS_RATIO: usize = 4;
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

/// Default [`Config::idle_spins`].
pub const DEFAULT_IDLE_SPINS: u32 = 64;

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
    /// Seeded bugs switched on (bits of [`crate::SeededBug::bit`]); only
    /// with the `seeded-bugs` feature.
    #[cfg(feature = "seeded-bugs")]
    pub seeded_bugs: u32,
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
            #[cfg(feature = "seeded-bugs")]
            seeded_bugs: 0,
        }
    }
}
