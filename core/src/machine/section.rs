//! Everything one pool lock protects, as pure state, and the steps that
//! run under that lock (kernel `worker_pool` with its `pool_workqueue`s).
//!
//! A step is one critical section of an engine: it takes the state, an
//! input and an [`Effects`] sink, changes the state by the numbered rules
//! of the other machine files, and says what happens next. The threaded
//! engine runs each step with the pool lock held; the refinement's
//! executor and the deterministic executor in the tests run the very same
//! steps over plain values.
//!
//! Steps here (the worker's pass is in `pass.rs`):
//! - [`PoolSection::insert`]: the pool half of queueing (rule M19, then
//!   rule M2 for an active instance);
//! - [`PoolSection::leave`]: an instance leaves (rules M20 and M21:
//!   activations wake nobody, the working worker reaches them by rule M8);
//! - [`PoolSection::cancel_queued`]: a cancel takes a queued instance off
//!   the worklist, a worker's scheduled list or an inactive list (rule M28,
//!   pool half), gives back what it held (rule M20) and kicks (rule M2);
//! - [`PoolSection::begin`] and [`PoolSection::end`]: an executor (a
//!   worker or an attached rescuer) starts and ends an instance (rule M9);
//! - [`PoolSection::worker_blocked`] and [`PoolSection::worker_unblocked`]:
//!   a worker's blocking section (rule M10);
//! - [`PoolSection::flip_color`] and [`PoolSection::start_flush`]: the
//!   pool's part of `flush_workqueue` (rule M22; the protocol is in
//!   `flush.rs`);
//! - [`PoolSection::begin_stop`] and [`PoolSection::retire_worker`]: the
//!   engine's shutdown (rules M11 and M4).
//!
//! The state is private to the machine: executors read the pool through
//! [`PoolSection::pool`] and change it only by steps.
//!
//! Creating workers and the starvation timers are in `create.rs`.

use super::effect::{Effect, Effects};
use super::pool::{PoolState, WorkerId, WqId};
use super::pwq::{Color, Colored, Inserted, Pwq};
use super::stats::PwqStats;
use super::worker::Sleep;
use super::{Queued, SeededBits};
use core::time::Duration;
use std::collections::BTreeMap;

/// A queued entry the machine takes apart and rebuilds: the handle a
/// pool-workqueue keeps while the instance waits inactive, and its colour.
pub trait Instance: Queued + Sized {
    /// The item handle (what an inactive list holds).
    type Item;
    /// The identity of `item` (the `key` of an entry made of it).
    fn item_key(item: &Self::Item) -> usize;
    /// The entry of `colored`, queued on `wq`.
    fn from_colored(wq: WqId, colored: Colored<Self::Item>) -> Self;
    /// Its flush colour.
    fn color(&self) -> Color;
}

/// A queued entry over plain values, for executors that keep items in a
/// table and name them by index (the refinement's harness, a simulator):
/// the item's index, its workqueue and its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlainEntry {
    /// The item (its index, which is its key).
    pub item: usize,
    /// The workqueue it was queued on.
    pub wq: WqId,
    /// Its flush colour.
    pub color: Color,
}

impl Queued for PlainEntry {
    fn key(&self) -> usize {
        self.item
    }
    fn wq(&self) -> WqId {
        self.wq
    }
}

impl Instance for PlainEntry {
    type Item = usize;
    fn item_key(item: &usize) -> usize {
        *item
    }
    fn from_colored(wq: WqId, colored: Colored<usize>) -> Self {
        PlainEntry { item: colored.item, wq, color: colored.color }
    }
    fn color(&self) -> Color {
        self.color
    }
}

/// The workqueue flags a pool's rules read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PwqFlags {
    /// Its items do not count as running while they run (rule M9).
    pub cpu_intensive: bool,
    /// It has a rescuer: the mayday timer calls it (rule M13).
    pub rescuer: bool,
}

/// A pool-workqueue as the section keeps it: the rules' state and the
/// workqueue's flags.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SectionPwq<I> {
    /// The rules' state (`pwq.rs`).
    pub(super) pwq: Pwq<I>,
    /// Its workqueue is `cpu_intensive` (rule M9).
    pub(super) cpu_intensive: bool,
    /// Its workqueue has a rescuer (rule M13).
    pub(super) rescuer: bool,
    /// What it did (`stats.rs`): a record, not state.
    pub(super) stats: PwqStats,
}

/// The state under one pool lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolSection<E: Instance> {
    /// The pool: worklist, workers, idle list, counters (`pool.rs`).
    pub(super) state: PoolState<E>,
    /// Each workqueue's pool-workqueue here.
    pub(super) pwqs: BTreeMap<WqId, SectionPwq<E::Item>>,
    /// How many of them are `cpu_intensive` (0 almost always: then rule M9
    /// needs no look-up of the entry's pool-workqueue).
    cpu_intensive_pwqs: usize,
}

impl<E: Instance> PoolSection<E> {
    /// An empty pool with seeded `bugs` switched on (0 in production) and
    /// `concurrency` as its concurrency target: 1 for a CPU's pool (the
    /// kernel's rule), the CPU count for the unbound pool (rule M2).
    pub fn new(bugs: SeededBits, concurrency: usize) -> Self {
        PoolSection { state: PoolState::new(bugs, concurrency), pwqs: BTreeMap::new(), cpu_intensive_pwqs: 0 }
    }

    /// Adds workqueue `wq`'s pool-workqueue.
    pub fn add_pwq(&mut self, wq: WqId, pwq: Pwq<E::Item>, flags: PwqFlags) {
        let PwqFlags { cpu_intensive, rescuer } = flags;
        let replaced = self.pwqs.insert(wq, SectionPwq { pwq, cpu_intensive, rescuer, stats: PwqStats::default() });
        debug_assert!(replaced.is_none(), "workqueue {wq} got a second pool-workqueue here");
        self.cpu_intensive_pwqs += usize::from(cpu_intensive);
    }

    /// Takes workqueue `wq`'s pool-workqueue off this pool.
    pub fn remove_pwq(&mut self, wq: WqId) -> Option<Pwq<E::Item>> {
        let slot = self.pwqs.remove(&wq)?;
        self.cpu_intensive_pwqs -= usize::from(slot.cpu_intensive);
        Some(slot.pwq)
    }

    /// Takes every pool-workqueue off this pool (shutdown).
    pub fn take_pwqs(&mut self) -> BTreeMap<WqId, SectionPwq<E::Item>> {
        self.cpu_intensive_pwqs = 0;
        core::mem::take(&mut self.pwqs)
    }

    /// The pool, read-only: its state changes only by this section's steps.
    #[inline]
    pub fn pool(&self) -> &PoolState<E> {
        &self.state
    }

    /// Workqueue `wq`'s pool-workqueue here.
    pub fn pwq(&self, wq: WqId) -> Option<&Pwq<E::Item>> {
        self.pwqs.get(&wq).map(|p| &p.pwq)
    }

    /// QU4's probe (`queue.rs`): whether item `key` runs on this pool for
    /// workqueue `wq` (rule M9).
    pub fn runs_for(&self, key: usize, wq: WqId) -> bool {
        self.state.is_running_for(key, wq)
    }

    /// Rule M2: wakes the first idle worker if items wait and fewer than the
    /// target run.
    #[inline]
    pub fn kick(&mut self, fx: &mut impl Effects) {
        if let Some(id) = self.state.kick() {
            fx.push(Effect::Wake(id));
        }
    }

    /// Step (pool lock, then the item's lock in the driver): the pool half
    /// of queueing `item` on `wq` (rule M19): active onto the worklist and
    /// kick (rule M2), or onto the inactive list. `Ok(active)`; the item back
    /// if `wq` has no pool-workqueue here (destroyed).
    #[inline]
    pub fn insert(&mut self, wq: WqId, item: E::Item, fx: &mut impl Effects) -> Result<bool, E::Item> {
        let Some(slot) = self.pwqs.get_mut(&wq) else {
            return Err(item);
        };
        match slot.pwq.insert(item) {
            Inserted::Active(colored) => {
                self.state.worklist.push_back(E::from_colored(wq, colored));
                self.kick(fx);
                Ok(true)
            }
            Inserted::Inactive => Ok(false),
        }
    }

    /// An instance of `wq` with `color` left this pool (finished, or
    /// cancelled); `active`: it held an active slot (rule M20). Activates
    /// what now fits (rule M21), waking nobody: a worker completing an item
    /// reaches them through rule M8; other callers kick.
    #[inline(always)]
    pub fn leave(&mut self, wq: WqId, color: Color, active: bool, fx: &mut impl Effects) {
        self.leave_counted(wq, color, active, false, fx);
    }

    /// [`PoolSection::leave`], counting a `completed` instance.
    #[inline(always)]
    fn leave_counted(&mut self, wq: WqId, color: Color, active: bool, completed: bool, fx: &mut impl Effects) {
        let Some(slot) = self.pwqs.get_mut(&wq) else {
            debug_assert!(false, "an item left a pool-workqueue that does not exist");
            return;
        };
        slot.stats.completed += u64::from(completed);
        let left = slot.pwq.leave(color, active);
        fx.push(Effect::InstanceLeft(wq));
        if left.flush_complete {
            fx.push(Effect::FlushColorDone(wq));
        }
        if self.state.disassociated {
            fx.push(Effect::PoolChanged);
        }
        // Rule M21 on the same pool-workqueue (one look-up: this is every
        // item's path).
        while let Some(colored) = slot.pwq.activate_next() {
            self.state.worklist.push_back(E::from_colored(wq, colored));
        }
    }

    /// Rule M21: moves `wq`'s inactive instances onto the worklist, oldest
    /// first, while under `max_active`. Wakes nobody; returns whether
    /// anything moved.
    #[inline]
    pub fn activate(&mut self, wq: WqId) -> bool {
        let Some(slot) = self.pwqs.get_mut(&wq) else { return false };
        let mut moved = false;
        while let Some(colored) = slot.pwq.activate_next() {
            self.state.worklist.push_back(E::from_colored(wq, colored));
            moved = true;
        }
        moved
    }

    /// Step (pool lock): `wq`'s `max_active` becomes `max_active`; what now
    /// fits is activated (rule M21) and the pool kicked for it (rule M2).
    pub fn set_max_active(&mut self, wq: WqId, max_active: usize, fx: &mut impl Effects) {
        if let Some(slot) = self.pwqs.get_mut(&wq) {
            slot.pwq.set_max_active(max_active);
        }
        if self.activate(wq) {
            self.kick(fx);
        }
    }

    /// Step (pool lock, then the item's lock in the driver): a cancel takes
    /// item `key`'s queued instance off this pool, gives back its colour and
    /// (if it held one) its active slot, and kicks for what that activated.
    /// Returns the entry, if the pool held it.
    pub fn cancel_queued(&mut self, key: usize, fx: &mut impl Effects) -> Option<E> {
        let (entry, active) = self.remove_queued(key)?;
        self.leave(entry.wq(), entry.color(), active, fx);
        self.kick(fx);
        Some(entry)
    }

    /// Takes item `key`'s entry off the worklist, a worker's scheduled list
    /// or an inactive list; says whether it was active.
    fn remove_queued(&mut self, key: usize) -> Option<(E, bool)> {
        let state = &mut self.state;
        if let Some(pos) = state.worklist.iter().position(|e| e.key() == key) {
            return state.worklist.remove(pos).map(|e| (e, true));
        }
        for worker in state.workers.values_mut() {
            if let Some(pos) = worker.scheduled.iter().position(|e| e.key() == key) {
                return worker.scheduled.remove(pos).map(|e| (e, true));
            }
        }
        self.pwqs.iter_mut().find_map(|(&wq, slot)| {
            let colored = slot.pwq.remove_inactive(|item| E::item_key(item) == key)?;
            Some((E::from_colored(wq, colored), false))
        })
    }

    /// Step part (pool lock): executor `id` is about to execute `entry`
    /// (rule M9). Deferred to the worker already executing the item, if
    /// another one is (an [`Effect::Deferred`]); else recorded as executed
    /// here, and the pool kicked: an executor that does not count as
    /// running (`cpu_intensive`, rescuer, rogue), or one of a pool whose
    /// target is more than one runner, must not hold up the items behind
    /// it. The entry to run, if any.
    #[inline(always)]
    pub fn begin(&mut self, id: WorkerId, entry: E, fx: &mut impl Effects) -> Option<E> {
        let key = entry.key();
        let cpu_intensive =
            self.cpu_intensive_pwqs > 0 && self.pwqs.get(&entry.wq()).is_some_and(|slot| slot.cpu_intensive);
        let (_, entry) = self.state.item_begin(id, entry, cpu_intensive);
        let Some(entry) = entry else {
            fx.push(Effect::Deferred { worker: id, item: key });
            return None;
        };
        self.kick(fx);
        Some(entry)
    }

    /// Step part (pool lock): executor `id` ended item `key`'s instance,
    /// queued on `wq` with `color` (rules M9, M20, M21).
    #[inline(always)]
    pub fn end(&mut self, id: WorkerId, key: usize, wq: WqId, color: Color, fx: &mut impl Effects) {
        self.state.item_end(id, key);
        self.leave_counted(wq, color, true, true, fx);
    }

    /// Rule M3: worker `id` goes idle at `now`, arming the cull timer if
    /// rule M3 asks for it; a trustee may be waiting for this.
    #[inline]
    pub fn enter_idle(&mut self, id: WorkerId, now: Duration, fx: &mut impl Effects) {
        if self.state.worker_enter_idle(id, now) {
            fx.push(Effect::ArmIdleTimer);
        }
        self.changed(fx);
    }

    /// PS7 (pool lock): worker `id` enters a blocking section (rule M10): it
    /// stops counting as running, and if `need_more_worker` then holds the
    /// first idle worker is woken. False for a nested section (the outer
    /// one accounts for it) and for a worker the pool does not know.
    pub fn worker_blocked(&mut self, id: WorkerId, fx: &mut impl Effects) -> bool {
        match self.state.worker_sleeping(id) {
            Sleep::Nested => false,
            Sleep::Slept(wake) => {
                if let Some(wake) = wake {
                    self.count_cm_wakeup(id);
                    fx.push(Effect::Wake(wake));
                }
                true
            }
        }
    }

    /// PS8 (pool lock): worker `id` leaves its blocking section (rule M10)
    /// and counts as running again. It wakes nobody: if more than one now
    /// runs, rule M8 sends the surplus idle after its item.
    pub fn worker_unblocked(&mut self, id: WorkerId) {
        self.state.worker_running(id);
    }

    /// FW2 (flush mutex, then this pool lock): `wq`'s instances queued from
    /// now on get `color` (rule M22, first half).
    pub fn flip_color(&mut self, wq: WqId, color: Color) {
        if let Some(slot) = self.pwqs.get_mut(&wq) {
            slot.pwq.flip_work_color(color);
        }
    }

    /// FW3, per pool (flush mutex, then this pool lock): starts flushing
    /// `wq`'s `color` here (rule M22, second half). True if instances of it
    /// are in flight: the flush must count this pool-workqueue and wait
    /// for its [`Effect::FlushColorDone`].
    pub fn start_flush(&mut self, wq: WqId, color: Color) -> bool {
        self.pwqs.get_mut(&wq).is_some_and(|slot| slot.pwq.start_flush(color))
    }

    /// Tells a trustee the pool changed. Only a disassociated pool has one
    /// (`cpu_down` installs it as it disassociates, `cpu_up` releases it as
    /// it rebinds), so a bound pool's hot path says nothing.
    #[inline]
    fn changed(&self, fx: &mut impl Effects) {
        if self.state.disassociated {
            fx.push(Effect::PoolChanged);
        }
    }

    /// Whether the pool holds no item: none waiting, inactive, deferred to
    /// a worker or running.
    pub fn holds_nothing(&self) -> bool {
        self.state.worklist.is_empty() && self.pwqs.values().all(|slot| slot.pwq.is_empty())
    }

    /// Shutdown, step 2 (pool lock): the pool creates no more workers (rule
    /// M11); the engine then waits for a manager in flight to leave.
    pub fn begin_stop(&mut self) {
        self.state.stopping = true;
    }

    /// Shutdown, step 3 (pool lock): retires worker `id` (rule M4). True if
    /// it was newly told to exit: the engine wakes it.
    pub fn retire_worker(&mut self, id: WorkerId) -> bool {
        self.state.retire_worker(id)
    }
}

#[cfg(test)]
#[path = "section_tests.rs"]
mod tests;
