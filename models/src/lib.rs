//! Model checking cmwq: loom and shuttle platforms for the core's
//! `Platform` seam, and the scenarios ("models") that both run, each
//! targeting one invariant and one interleaving. See `README.md`.

pub mod budget;
pub mod hotplug;
pub mod inbox;
pub mod jobs;
pub mod lifecycle;
pub mod loom_platform;
pub mod placement;
pub mod rescue;
pub mod scenarios;
pub mod shuttle_platform;
pub mod traced;

use cmwq::Platform;

/// A platform a model can construct with its own fault plan.
pub trait ModelPlatform: Platform {
    /// The platform, failing spawns as `faults` says.
    fn with_faults(faults: FaultPlan) -> Self;
}

impl ModelPlatform for shuttle_platform::Shuttle {
    fn with_faults(faults: FaultPlan) -> Self {
        shuttle_platform::Shuttle::with_faults(faults)
    }
}

impl ModelPlatform for loom_platform::Loom {
    fn with_faults(faults: FaultPlan) -> Self {
        loom_platform::Loom::with_faults(faults)
    }
}

/// The fault plan of the model platforms (`cmwq::model_check`).
pub use cmwq::model_check::FaultPlan;
