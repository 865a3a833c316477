//! Model checking cmwq: loom and shuttle platforms for the core's
//! `Platform` seam, and the scenarios ("models") that both run, each
//! targeting one invariant and one interleaving. See `README.md`.

pub mod budget;
pub mod hotplug;
pub mod lifecycle;
pub mod loom_platform;
mod platform_macro;
pub mod rescue;
pub mod scenarios;
pub mod shuttle_platform;
pub mod traced;

use cmwq::{Platform, SpawnError};

/// A platform a model can construct with its own fault plan.
pub trait ModelPlatform: Platform {
    /// The platform, failing spawns as `faults` says.
    fn with_faults(faults: FaultPlan) -> Self;
}

impl ModelPlatform for shuttle_platform::Shuttle {
    fn with_faults(faults: FaultPlan) -> Self {
        shuttle_platform::Shuttle { faults }
    }
}

impl ModelPlatform for loom_platform::Loom {
    fn with_faults(faults: FaultPlan) -> Self {
        loom_platform::Loom { faults }
    }
}
use std::sync::atomic::{AtomicUsize, Ordering};

/// A deterministic fault plan for thread creation: the first `allowed`
/// spawns succeed, every later one fails, except that the spawns listed in
/// `fail` (1-based attempt numbers) fail as well. The counter is a plain atomic on
/// purpose: the model checker serialises threads, so it is deterministic,
/// and it is not part of the state under test.
#[derive(Debug)]
pub struct FaultPlan {
    allowed: usize,
    fail: Vec<usize>,
    spawned: AtomicUsize,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::allow(usize::MAX)
    }
}

impl FaultPlan {
    /// Lets `allowed` spawns succeed, then fails every spawn.
    pub fn allow(allowed: usize) -> Self {
        FaultPlan { allowed, fail: Vec::new(), spawned: AtomicUsize::new(0) }
    }

    /// Fails exactly the listed spawn attempts (1-based); all others succeed.
    pub fn fail_attempts(attempts: &[usize]) -> Self {
        FaultPlan { allowed: usize::MAX, fail: attempts.to_vec(), spawned: AtomicUsize::new(0) }
    }

    /// Counts a spawn attempt; fails it if over the plan.
    pub fn check(&self) -> Result<(), SpawnError> {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        if n >= self.allowed || self.fail.contains(&(n + 1)) {
            return Err(SpawnError::new(format!("fault plan: spawn #{} refused (allowed {})", n + 1, self.allowed)));
        }
        Ok(())
    }
}
