//! Layer 1, the pure machine: the state that concurrency management and
//! the workqueue semantics act on, and its transitions, with no platform,
//! no locks, no atomics, no clock, no threads and no `unsafe`.
//!
//! Each transition is a plain method: state and an input in, an outcome
//! out that says what the driver (the mechanism layer) must carry out.
//! The driver takes the lock that protects a piece of machine state, calls
//! one transition, drops the lock, and acts on the outcome with the
//! platform. Because nothing here touches the outside world, the same
//! transitions can be driven by a proptest, a model checker, a
//! specification's refinement check or a simulator with virtual time.
//!
//! Its parts:
//! - [`policy`]: the kernel's predicates over a pool's counters
//!   (`need_more_worker`, `keep_working`, ...);
//! - [`pool`]: a pool's workers, idle list, worklist and running count
//!   (read through the views in `view.rs`);
//! - [`worker`]: a worker's passage through its pool (wake, manage, work,
//!   non-reentrancy, blocking);
//! - [`manage`]: worker creation and culling, maydays, rescue, CPU hotplug;
//! - [`mayday`]: a rescuer's mayday list;
//! - [`monitor`]: the blocking monitor's observations (a worker seen
//!   asleep outside a blocking section, seen running again, seen hogging
//!   the CPU, and the CPU time it saw used);
//! - [`stats`]: what each pool-workqueue did, counted by the steps;
//! - [`pwq`]: a pool-workqueue: `max_active` with its FIFO inactive list,
//!   and the flush colours with their in-flight counts;
//! - [`flush`]: `flush_workqueue`'s tickets;
//! - [`trace`]: the events the engine can record of its transitions;
//! - the steps, the rules composed into one critical section each:
//!   [`section`] (the state under a pool lock and its steps), [`pass`] (a
//!   worker's pass), [`create`] (creation and the starvation timers),
//!   [`rescue`] (a rescuer's turn), [`hotplug`], [`queue`] (queueing's
//!   decisions), with their effects as values ([`effect`]).
//!
//! State fields are private to this module: only its transitions change
//! them, and executors read them through read-only views.
//!
//! The rules are numbered and written out, with the invariants each one
//! maintains, in this directory's `README.md`.

pub mod create;
pub mod effect;
pub mod flush;
pub mod hotplug;
pub mod lifecycle;
pub mod manage;
pub mod mayday;
pub mod monitor;
pub mod pass;
pub mod policy;
pub mod pool;
pub mod pwq;
pub mod queue;
pub mod rescue;
pub mod section;
pub mod stats;
pub mod trace;
mod view;
pub mod work;
pub mod worker;

/// What the machine needs to know of a queued entry (the driver's item
/// handle): which item it is and which workqueue it was queued on.
pub trait Queued {
    /// The item's identity (stable while it exists).
    fn key(&self) -> usize;
    /// The workqueue it was queued on.
    fn wq(&self) -> pool::WqId;
    /// The name of its function, for reports (a stall, a CPU hog); empty
    /// where the executor has none.
    fn func(&self) -> &'static str {
        ""
    }
}

/// Bits of [`crate::SeededBug::bit`] switched on for a piece of machine
/// state (always 0 without the `seeded-bugs` feature): deliberate mistakes
/// live in the transition whose logic they break.
pub type SeededBits = u64;

/// Whether `bug` is switched on in `bits`.
#[inline(always)]
pub(crate) fn seeded_in(bits: SeededBits, bug: crate::SeededBug) -> bool {
    cfg!(feature = "seeded-bugs") && bits & bug.bit() != 0
}

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod test_support;
