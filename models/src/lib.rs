//! Model checking cmwq: loom and shuttle platforms for the core's
//! `Platform` seam, and the scenarios ("models") that both run, each
//! targeting one invariant and one interleaving. See `README.md`.

pub mod budget;
pub mod hotplug;
pub mod inbox;
pub mod jobs;
pub mod lifecycle;
pub mod loom_platform;
pub mod monitor;
pub mod placement;
pub mod rescue;
pub mod scenarios;
pub mod shuttle_platform;
pub mod traced;

use cmwq::Platform;

/// A platform a model can construct with its own fault plan.
pub trait ModelPlatform: Platform {
    /// The platform's marks of asleep threads, for the blocking monitor.
    type Sleepers: SleepMarks;
    /// The platform, failing spawns as `faults` says.
    fn with_faults(faults: FaultPlan) -> Self;
    /// A handle on what the blocking monitor sees of the platform's threads.
    fn sleepers(&self) -> Self::Sleepers;
}

/// Marks a thread asleep for the blocking monitor while it waits without
/// telling the pool (`cmwq::model_check`'s `Sleepers`).
pub trait SleepMarks: Clone + Send + Sync + 'static {
    /// Runs `wait` with the calling thread marked asleep.
    fn asleep_while<R>(&self, wait: impl FnOnce() -> R) -> R;
    /// Runs `work` with the calling thread marked hogging the CPU (each
    /// probe sees it use an hour more).
    fn hogging_while<R>(&self, work: impl FnOnce() -> R) -> R;
}

impl ModelPlatform for shuttle_platform::Shuttle {
    type Sleepers = cmwq::model_check::ShuttleSleepers;
    fn with_faults(faults: FaultPlan) -> Self {
        shuttle_platform::Shuttle::with_faults(faults)
    }
    fn sleepers(&self) -> Self::Sleepers {
        shuttle_platform::Shuttle::sleepers(self)
    }
}

impl ModelPlatform for loom_platform::Loom {
    type Sleepers = cmwq::model_check::LoomSleepers;
    fn with_faults(faults: FaultPlan) -> Self {
        loom_platform::Loom::with_faults(faults)
    }
    fn sleepers(&self) -> Self::Sleepers {
        loom_platform::Loom::sleepers(self)
    }
}

impl SleepMarks for cmwq::model_check::ShuttleSleepers {
    fn asleep_while<R>(&self, wait: impl FnOnce() -> R) -> R {
        cmwq::model_check::ShuttleSleepers::asleep_while(self, wait)
    }
    fn hogging_while<R>(&self, work: impl FnOnce() -> R) -> R {
        cmwq::model_check::ShuttleSleepers::hogging_while(self, work)
    }
}

impl SleepMarks for cmwq::model_check::LoomSleepers {
    fn asleep_while<R>(&self, wait: impl FnOnce() -> R) -> R {
        cmwq::model_check::LoomSleepers::asleep_while(self, wait)
    }
    fn hogging_while<R>(&self, work: impl FnOnce() -> R) -> R {
        cmwq::model_check::LoomSleepers::hogging_while(self, work)
    }
}

/// The fault plan of the model platforms (`cmwq::model_check`).
pub use cmwq::model_check::FaultPlan;
