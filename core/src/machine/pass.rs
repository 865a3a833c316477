//! A worker's pass through its pool as steps (kernel `worker_thread` with
//! `manage_workers` and `process_one_work`): each step runs under the pool
//! lock and ends where the worker must leave that lock (to wait, to
//! create a worker, to run an item's function) or exit.
//!
//! # The pass
//! - WP1. [`PoolSection::worker_woken`] (after the idle wait, and first thing
//!   after registration): exit if told to; otherwise rules M6-M7 decide:
//!   back to idle (a hint: work does not wait, or somebody runs),
//!   [`Pass::Manage`] (no spare: create one first), or work.
//! - WP2. [`PoolSection::worker_managed`] (the creation ended, `create.rs`
//!   CR2; the lock was dropped meanwhile): the manager role is given back;
//!   created, decide again; failed, work anyway if items wait and nobody
//!   runs (rule M7), else back to idle.
//! - WP3. Working (rule M8) clears `PREP` and takes items: the worker's
//!   scheduled list first, then the worklist while `keep_working`. An
//!   item another worker executes is deferred to it (rule M9) and the next
//!   one taken; one it may execute ends the step: [`Pass::Run`].
//! - WP4. [`PoolSection::worker_finished`] (the function returned and the item
//!   finished its instance in its own section): the instance leaves the
//!   pool (rules M9, M20, M21), then WP3 again without the first-item
//!   exception.
//! - WP5. With nothing to take, the worker stops working and goes idle (rule
//!   M3), unless it was told to exit: [`Pass::Idle`] or [`Pass::Exit`].
//!
//! Between passes an idle worker waits until [`PoolSection::take_wakeup`]
//! says it was woken; after [`Pass::Exit`] it leaves with
//! [`PoolSection::worker_exit`].

use super::effect::Effects;
use super::pool::{WorkerId, WqId};
use super::pwq::Color;
use super::section::{Instance, PoolSection};
use super::worker::WorkerStep;
use core::time::Duration;

/// Where a worker's step leaves it.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass<E> {
    /// Execute this entry's function outside the pool lock (the item's own
    /// section marks it started first), then take WP4.
    Run {
        /// The instance.
        entry: E,
        /// It came from the worker's scheduled list (rule M9).
        scheduled: bool,
    },
    /// It holds the manager role: create a worker, give the role back,
    /// then take WP2.
    Manage,
    /// It is on the idle list: wait for a wakeup, then take WP1.
    Idle,
    /// It was told to exit and is on no list: leave the pool.
    Exit,
}

impl<E: Instance> PoolSection<E> {
    /// WP1: worker `id` woke up (or starts, just registered).
    pub fn worker_woken(&mut self, id: WorkerId, now: impl FnOnce() -> Duration, fx: &mut impl Effects) -> Pass<E> {
        if self.is_told_to_exit(id) {
            return Pass::Exit;
        }
        self.decide(id, now, fx)
    }

    /// WP2: the spawn of the worker `id` tried to create as manager
    /// returned; `created` says whether a worker was added.
    pub fn worker_managed(
        &mut self,
        id: WorkerId,
        created: bool,
        now: impl FnOnce() -> Duration,
        fx: &mut impl Effects,
    ) -> Pass<E> {
        self.state.manager_leave();
        if created {
            return self.decide(id, now, fx);
        }
        if !self.state.worker_recheck() {
            return self.idle_or_exit(id, now, fx);
        }
        self.state.worker_start_working(id);
        self.take(id, true, now, fx)
    }

    /// WP4: worker `id` ran item `key`, queued on `wq` with `color`.
    #[inline]
    pub fn worker_finished(
        &mut self,
        id: WorkerId,
        key: usize,
        wq: WqId,
        color: Color,
        now: impl FnOnce() -> Duration,
        fx: &mut impl Effects,
    ) -> Pass<E> {
        self.end(id, key, wq, color, fx);
        self.take(id, false, now, fx)
    }

    /// The idle wait (pool lock): worker `id` looks for its wakeup; true,
    /// consuming it, if it was woken or told to exit (or is gone): then
    /// WP1.
    #[inline]
    pub fn take_wakeup(&mut self, id: WorkerId) -> bool {
        self.state.take_wakeup(id)
    }

    /// Worker `id`, told to exit ([`Pass::Exit`]), leaves the pool for
    /// good (pool lock; rule M4).
    pub fn worker_exit(&mut self, id: WorkerId) {
        self.state.worker_exit(id);
    }

    /// Rules M6-M7, then M8.
    fn decide(&mut self, id: WorkerId, now: impl FnOnce() -> Duration, fx: &mut impl Effects) -> Pass<E> {
        match self.state.worker_decide(id) {
            WorkerStep::Idle => self.idle_or_exit(id, now, fx),
            WorkerStep::Manage => Pass::Manage,
            WorkerStep::Work => {
                self.state.worker_start_working(id);
                self.take(id, true, now, fx)
            }
        }
    }

    /// WP3 (rules M8 and M9), ending in WP5 when nothing is left.
    #[inline(always)]
    fn take(
        &mut self,
        id: WorkerId,
        mut first: bool,
        now: impl FnOnce() -> Duration,
        fx: &mut impl Effects,
    ) -> Pass<E> {
        loop {
            let (entry, scheduled) = match self.state.next_scheduled(id) {
                Some(entry) => (entry, true),
                None => match self.state.worker_next_item(first) {
                    Some(entry) => (entry, false),
                    None => {
                        self.state.worker_stop_working(id);
                        return self.idle_or_exit(id, now, fx);
                    }
                },
            };
            first = false;
            if let Some(entry) = self.begin(id, entry, fx) {
                return Pass::Run { entry, scheduled };
            }
        }
    }

    /// WP5.
    #[inline]
    fn idle_or_exit(&mut self, id: WorkerId, now: impl FnOnce() -> Duration, fx: &mut impl Effects) -> Pass<E> {
        if self.is_told_to_exit(id) {
            return Pass::Exit;
        }
        self.enter_idle(id, now(), fx);
        Pass::Idle
    }

    /// Worker `id` was retired (or is gone).
    #[inline]
    fn is_told_to_exit(&self, id: WorkerId) -> bool {
        self.state.workers.get(&id).is_none_or(|w| w.die)
    }
}

#[cfg(test)]
#[path = "pass_tests.rs"]
mod tests;
