//! A rescuer's turn on one pool, as steps of the pool's section (kernel
//! `rescuer_thread`'s loop body with `assign_rescuer_work`).
//!
//! # The turn
//! RT1. [`PoolSection::rescuer_attach`]: the rescuer joins the pool as an
//!     executor flagged `WORKER_RESCUER` (never idle, never counted in
//!     `nr_running` or `nr_workers`).
//! RT2. [`PoolSection::rescuer_next`]: items deferred to it first (rule M9);
//!     then, while its workqueue has active items here and the pool needs a
//!     worker it cannot have (rule M14), it takes the workqueue's first item
//!     off the worklist, one at a time, so that a regular worker that
//!     becomes free takes the rest. After `batch` items it stops, and puts
//!     the pool-workqueue back on its list if it still needs rescue
//!     ([`Effect::MaydayAgain`]). An item it may execute ends the step
//!     ([`Rescue::Run`]); the executor runs it as a worker would, ends it
//!     with [`PoolSection::end`] and takes RT2 again.
//! RT3. With nothing more to do it leaves: rule M14 kicks the pool (its
//!     completions may have activated items nobody was woken for), and its
//!     slot goes ([`Rescue::Detached`]).

use super::effect::{Effect, Effects};
use super::pool::{WorkerId, WorkerState, WqId, WORKER_PREP, WORKER_RESCUER};
use super::section::{Instance, PoolSection};
use core::time::Duration;

/// Where a rescuer's step leaves it.
#[derive(Debug, PartialEq, Eq)]
pub enum Rescue<E> {
    /// Execute this entry (as a worker does), then end it and take RT2.
    Run {
        /// The instance.
        entry: E,
        /// It was deferred to the rescuer (not taken off the worklist).
        scheduled: bool,
    },
    /// The turn is over: the rescuer left the pool.
    Detached,
}

impl<E: Instance> PoolSection<E> {
    /// RT1: a rescuer attaches. Its id on this pool.
    pub fn rescuer_attach(&mut self, now: Duration) -> WorkerId {
        let id = self.state.next_id();
        let flags = WORKER_PREP | WORKER_RESCUER;
        self.state.workers.insert(id, WorkerState::new(flags, now, true));
        id
    }

    /// RT2 (and RT3): rescuer `id`, rescuing `wq`, has taken `taken` items
    /// off the worklist this turn (counted here) and may take `batch`.
    pub fn rescuer_next(
        &mut self,
        id: WorkerId,
        wq: WqId,
        taken: &mut usize,
        batch: usize,
        fx: &mut impl Effects,
    ) -> Rescue<E> {
        loop {
            if let Some(entry) = self.state.next_scheduled(id) {
                match self.begin(id, entry, fx) {
                    Some(entry) => return Rescue::Run { entry, scheduled: true },
                    None => continue,
                }
            }
            let needed = self.state.needs_rescue(self.pwq(wq).map_or(0, |pwq| pwq.nr_active()));
            if *taken >= batch {
                if needed && self.state.worklist.iter().any(|e| e.wq() == wq) {
                    fx.push(Effect::MaydayAgain(wq));
                }
                break;
            }
            let Some(entry) = needed.then(|| self.state.take_for_rescue(wq)).flatten() else {
                break;
            };
            *taken += 1;
            if let Some(entry) = self.begin(id, entry, fx) {
                return Rescue::Run { entry, scheduled: false };
            }
        }
        if let Some(worker) = self.state.rescuer_leave() {
            fx.push(Effect::Wake(worker));
        }
        let slot = self.state.workers.remove(&id);
        debug_assert!(slot.is_some_and(|s| s.scheduled.is_empty()), "rescuer left a pool with deferred items");
        Rescue::Detached
    }
}

#[cfg(test)]
#[path = "rescue_tests.rs"]
mod tests;
