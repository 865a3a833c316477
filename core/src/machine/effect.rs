//! What a step asks its executor to do, as values (the quinn-proto and
//! raft-rs habit: the machine decides, the executor carries out).
//!
//! A step of [`super::section::PoolSection`] pushes its effects into an
//! [`Effects`] sink as it decides them. The threaded engine's sink carries
//! each out at once, still under the pool lock the step runs in (a wakeup
//! is a condition-variable notification; nothing in an effect re-enters
//! the machine); a test or the refinement's executor records them.

use super::pool::{WorkerId, WqId};

/// One thing a pool step asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Wake idle worker `id` of this pool (the machine marked it woken).
    Wake(WorkerId),
    /// Arm this pool's idle-cull timer, one idle timeout from now (the
    /// machine marked it armed).
    ArmIdleTimer,
    /// An instance of workqueue `wq` left this pool (finished, or
    /// cancelled): the workqueue's in-flight count goes down.
    InstanceLeft(WqId),
    /// `wq`'s pool-workqueue here has no instance left of the colour being
    /// flushed: its part of the flush is done.
    FlushColorDone(WqId),
    /// The pool changed in a way a trustee waits for (an item left, a
    /// worker went idle).
    PoolChanged,
    /// Arm this pool's create-retry timer, one cooldown from now (rule M11;
    /// the machine marked it armed).
    ArmCreateRetry,
    /// Arm this pool's mayday timer (rules M11 and M13; the machine marked it
    /// armed): `first` after a failed creation (the initial timeout),
    /// otherwise the interval while no worker idles.
    ArmMayday {
        /// The initial timeout, not the interval.
        first: bool,
    },
    /// Put workqueue `wq`'s pool-workqueue here on its rescuer's mayday
    /// list (rule M13; only workqueues with a rescuer are named).
    Mayday(WqId),
    /// Put workqueue `wq`'s pool-workqueue here back on its rescuer's
    /// mayday list: the rescuer used up its batch with items left (rule M17;
    /// not a mayday of the timer's, so not counted as one).
    MaydayAgain(WqId),
    /// Worker `id` was retired (rules M4 and M15): wake it so that it sees it
    /// must exit.
    Retire(WorkerId),
    /// Worker `worker` deferred item `item` to the worker already running
    /// it (non-reentrancy, rule M9); nothing to carry out but a record.
    Deferred {
        /// The worker that took the item off the worklist.
        worker: WorkerId,
        /// The item.
        item: usize,
    },
}

/// Where a step puts its effects.
pub trait Effects {
    /// Takes one effect (in the order the step decided them).
    fn push(&mut self, effect: Effect);
}

impl Effects for Vec<Effect> {
    fn push(&mut self, effect: Effect) {
        Vec::push(self, effect);
    }
}
