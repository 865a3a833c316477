//! Platforms for model checking code that uses cmwq: [`Loom`] (feature
//! `loom`) and [`Shuttle`] (feature `shuttle`), the same engine on the
//! checker's threads and primitives, for your own `cargo test` under loom
//! or shuttle (see the crate documentation, "Model-testing your code").
//!
//! What the checkers see: only the checker's own primitives. The engine
//! uses them throughout on these platforms; in your items and your test,
//! use the re-exported checker crate's (`cmwq::model_check::loom::sync`,
//! `cmwq::model_check::shuttle::sync`, their `thread`s), never
//! `std::sync`, std atomics or std thread-locals: the checker neither
//! schedules around nor explores those, so a race through them passes
//! silently. Time stands still on these platforms: timers fire only when
//! the test calls `System::run_due_timers` (build without the timer
//! thread). A spawn fails as the platform's [`FaultPlan`] says.

pub use crate::platform::checkers::*;

use crate::platform::Platform;
use crate::system::SystemBuilder;

/// A system builder sized for model checking on platform `P`: no timer
/// thread (time stands still: call `System::run_due_timers` to fire what
/// is due), no high-priority or unbound pools, idle workers park at once,
/// at most 2 workers per pool, zero creation cooldown and mayday timeouts
/// (a timer is due as soon as it is armed), no blocking detection (a model
/// that wants it sets a threshold, marks its items' waits with the
/// platform's `Sleepers` and calls `System::monitor_pass`). One CPU unless `cpus` says
/// otherwise; set it and anything else before `build_on`; every extra CPU,
/// worker and pool multiplies the schedules the checker explores.
pub fn system_builder<P: Platform>() -> SystemBuilder<P> {
    let mut builder = SystemBuilder::default();
    builder
        .cpus(1)
        .timer_thread(false)
        .idle_spins(0)
        .highpri_pools(false)
        .unbound_pools(false)
        .max_workers_per_pool(2)
        .detect_blocking(None)
        .cpu_hog(None)
        .create_cooldown(core::time::Duration::ZERO)
        .mayday_timeouts(core::time::Duration::ZERO, core::time::Duration::ZERO);
    builder
}
