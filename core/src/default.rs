//! The process-wide default system and its workqueues (kernel
//! `system_wq`, `system_highpri_wq`, `system_long_wq`,
//! `system_unbound_wq`): a convenience on top of [`System`] that the engine
//! itself never reaches for.

use crate::error::BuildError;
use crate::platform::{RetryOnce, Std};
use crate::system::System;
use crate::workqueue::Workqueue;

/// The process-wide default system and its workqueues (kernel
/// `system_wq`, `system_highpri_wq`, `system_long_wq`,
/// `system_unbound_wq`), created on first use.
#[derive(Debug)]
pub struct DefaultSystem {
    /// The system (one pool pair per CPU this process may use).
    pub system: System<Std>,
    /// Bound, normal priority.
    pub system_wq: Workqueue<Std>,
    /// Bound, high priority.
    pub system_highpri_wq: Workqueue<Std>,
    /// Bound, for items that may run long (separate so flushing it does not
    /// wait for short items, as in the kernel).
    pub system_long_wq: Workqueue<Std>,
    /// Unbound.
    pub system_unbound_wq: Workqueue<Std>,
}

static DEFAULT: RetryOnce<DefaultSystem> = RetryOnce::new();

/// The default system, created on first use. A failure (its threads could
/// not be created) is returned and not remembered: the next call tries
/// again, so a transient resource shortage does not disable the default
/// system for the life of the process.
pub fn try_default_system() -> Result<&'static DefaultSystem, BuildError> {
    DEFAULT.get_or_try_init(|| {
        let system = System::builder().build()?;
        let mut unbound = Workqueue::builder("events_unbound");
        unbound.unbound().max_active(crate::config::MAX_ACTIVE_LIMIT);
        Ok(DefaultSystem {
            system_wq: Workqueue::builder("events").build(&system)?,
            system_highpri_wq: Workqueue::builder("events_highpri").highpri().build(&system)?,
            system_long_wq: Workqueue::builder("events_long").build(&system)?,
            system_unbound_wq: unbound.build(&system)?,
            system,
        })
    })
}

fn default_system_or_panic() -> &'static DefaultSystem {
    match try_default_system() {
        Ok(default) => default,
        Err(err) => panic!("cmwq: the default system could not start: {err}"),
    }
}

/// The default system.
///
/// # Panics
/// If its threads cannot be created on first use; use
/// [`try_default_system`] to handle that.
pub fn default_system() -> &'static System<Std> {
    &default_system_or_panic().system
}

/// The default bound workqueue (kernel `system_wq`). Panics like [`default_system`].
pub fn system_wq() -> &'static Workqueue<Std> {
    &default_system_or_panic().system_wq
}

/// The default high-priority workqueue. Panics like [`default_system`].
pub fn system_highpri_wq() -> &'static Workqueue<Std> {
    &default_system_or_panic().system_highpri_wq
}

/// The default workqueue for long-running items. Panics like [`default_system`].
pub fn system_long_wq() -> &'static Workqueue<Std> {
    &default_system_or_panic().system_long_wq
}

/// The default unbound workqueue. Panics like [`default_system`].
pub fn system_unbound_wq() -> &'static Workqueue<Std> {
    &default_system_or_panic().system_unbound_wq
}
