//! Queueing's decisions before the pool's step (kernel `__queue_work`):
//! whether a workqueue accepts the item, which of its pools takes it, and
//! the non-reentrancy redirect. The pool half is step PS1
//! (`section.rs`); the item half is rules M26-M27 (`work.rs`).
//!
//! # Queueing, top to bottom
//! QU1. [`accepts`]: a dying or draining workqueue refuses, except queueing
//!     from one of its own items (chained work), which drain must let
//!     finish.
//! QU2. Claim PENDING (item lock, rule M26); an item pending already is
//!     left as it is (`Ok(false)`).
//! QU3. [`choose_pool`] ([`Placement::choose`]): an unbound workqueue's
//!     only pool; `queue_on(cpu)` that CPU's pool even while the CPU is
//!     offline (its pool runs the item unbound); a plain `queue` from one
//!     of the system's workers of a CPU's pool that CPU's pool, or the next
//!     online CPU's; a plain `queue` from any other thread (an unbound
//!     pool's worker included) the less loaded of its CPU's pool and one
//!     other online CPU's ([`spread`]: a departure from the kernel, which
//!     stays local). Loads are hints ([`load`]) each pool publishes under
//!     its own lock and the caller reads without it: a stale one misplaces
//!     an item, never loses or doubles it, since the spec lets a queueing
//!     name any CPU.
//! QU4. [`redirect`]: if the item is still running for this workqueue on
//!     the pool it last ran on (probed under that pool's lock:
//!     [`super::section::PoolSection::runs_for`]), it goes there instead,
//!     so that it never runs twice at once (rule M9, W4).
//! QU5. [`queue_insert`]: the pool's lock, then the item's: PS1 and rule
//!     M27 (the instance is numbered); refused if the workqueue's
//!     pool-workqueue is gone.
//!
//! The engine runs QU3 first, then QU2 and QU5 in one section of the
//! chosen pool when the item last ran nowhere or there
//! ([`super::work::WorkState::try_claim_for`]: QU4 has nothing to
//! redirect); otherwise QU4 and QU5 follow with PENDING owned.
//!
//! # Cancelling a queued instance
//! [`cancel_grab_queued`]: the pool's lock, then the item's: if the item
//! is still queued on this pool, rule M28 takes PENDING and PS3 takes the
//! instance off the pool.

use super::effect::Effects;
use super::policy::PoolCounts;
use super::pool::WqId;
use super::section::{Instance, PoolSection};
use super::work::WorkState;
use super::SeededBits;

/// Why a workqueue refuses queueing (QU1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It is being destroyed, or was.
    Destroyed,
    /// It is draining.
    Draining,
}

/// QU1: whether a workqueue that is `dying` and/or `draining` accepts a
/// queueing; `chained` (asked only then) says the caller is one of its own
/// items.
#[inline]
pub fn accepts(dying: bool, draining: bool, chained: impl FnOnce() -> bool) -> Result<(), Refusal> {
    if !(dying || draining) || chained() {
        return Ok(());
    }
    Err(if dying { Refusal::Destroyed } else { Refusal::Draining })
}

/// Where a queueing asks to go (QU3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `queue_on(cpu)`.
    On(usize),
    /// A plain `queue` from one of the system's workers, whose pool serves
    /// `cpu`: it stays there, as the kernel's `queue_work` does.
    Local(usize),
    /// A plain `queue` from any other thread.
    Spread {
        /// The CPU the caller runs on.
        cpu: usize,
        /// Picks the other CPU [`spread`] compares it with: any number (the
        /// engine derives it from the item, so that one submitter's items
        /// probe different CPUs).
        probe: usize,
    },
}

/// The load a pool publishes for [`spread`]: items waiting on its worklist
/// plus workers counted as running.
#[inline]
pub fn load(counts: PoolCounts) -> usize {
    counts.pending + counts.running
}

/// QU3: the index, among a workqueue's pools (one per CPU, or the one
/// unbound pool), of the pool a queueing goes to. `cpus` is the number of
/// CPUs; `online` says whether a CPU is online; `load` reads a CPU's pool's
/// published [`load`] (asked only for [`Target::Spread`]).
#[inline]
pub fn choose_pool(
    unbound: bool,
    cpus: usize,
    target: Target,
    online: impl Fn(usize) -> bool,
    load: impl Fn(usize) -> usize,
) -> usize {
    if unbound || cpus == 0 {
        return 0;
    }
    let first_online = |cpu: usize| {
        let cpu = cpu % cpus;
        (0..cpus).map(|step| (cpu + step) % cpus).find(|&c| online(c)).unwrap_or(cpu)
    };
    match target {
        Target::On(cpu) => cpu % cpus,
        Target::Local(cpu) => first_online(cpu),
        Target::Spread { cpu, probe } => {
            let local = first_online(cpu);
            // The other CPU: `probe` steps past the local one, then on to
            // the next online CPU (so a CPU after an offline one is probed
            // more often; with every other CPU offline, this is the local
            // one again: no spreading).
            let other = first_online(local + 1 + probe % cpus.saturating_sub(1).max(1));
            spread(local, other, load)
        }
    }
}

/// QU3 for a plain `queue` from outside the system's workers (power of two
/// choices): the `local` CPU's pool while it is idle, else the `other`
/// one's if it is strictly less loaded. A single submitter so keeps every
/// CPU busy, and each item still goes to one pool, under that pool's lock.
#[inline]
pub fn spread(local: usize, other: usize, load: impl Fn(usize) -> usize) -> usize {
    if other == local {
        return local;
    }
    let here = load(local);
    if here > 0 && load(other) < here {
        other
    } else {
        local
    }
}

/// QU3 then QU4 for one workqueue: which of its pools a queueing goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The workqueue is unbound: one pool.
    pub unbound: bool,
    /// The number of CPUs (of pools, if bound).
    pub cpus: usize,
    /// Seeded bugs switched on (0 in production).
    pub bugs: SeededBits,
}

impl Placement {
    /// QU3 alone: [`choose_pool`] for this workqueue.
    #[inline]
    pub fn choose(self, target: Target, online: impl Fn(usize) -> bool, load: impl Fn(usize) -> usize) -> usize {
        choose_pool(self.unbound, self.cpus, target, online, load)
    }

    /// The index of the pool a queueing for `target` goes to: QU3's choice
    /// ([`choose_pool`], reading `online` and `load`), then QU4's redirect
    /// to `last`, the pool the item last ran on, if `runs_there` says it
    /// still runs there for this workqueue.
    #[inline]
    pub fn place(
        self,
        target: Target,
        online: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> usize,
        last: Option<usize>,
        runs_there: impl FnOnce(usize) -> bool,
    ) -> usize {
        let chosen = self.choose(target, online, load);
        if matches!(target, Target::Spread { .. }) && super::seeded_in(self.bugs, crate::SeededBug::SpreadSkipsRedirect)
        {
            return chosen;
        }
        redirect(chosen, last, runs_there)
    }
}

/// QU4: the pool a queueing goes to, given the `chosen` one and the pool
/// the item last ran on (`last`, if the workqueue uses it);
/// `runs_there` probes that pool (under its lock).
#[inline]
pub fn redirect(chosen: usize, last: Option<usize>, runs_there: impl FnOnce(usize) -> bool) -> usize {
    match last {
        Some(last) if last != chosen && runs_there(last) => last,
        _ => chosen,
    }
}

/// QU5 (pool lock, then the item's lock): queues the item whose PENDING the
/// caller owns on `wq`'s pool-workqueue in `section` (PS1) and numbers the
/// instance (rule M27), recording `pool` as where it is. `Ok((instance,
/// active))`; the item back if `wq` has no pool-workqueue here (it was
/// destroyed): the caller still owns PENDING.
#[inline]
pub fn queue_insert<E: Instance, Pool: Clone, Wq: Clone>(
    section: &mut PoolSection<E>,
    state: &mut WorkState<Pool, Wq>,
    wq: WqId,
    item: E::Item,
    pool: Pool,
    fx: &mut impl Effects,
) -> Result<(u64, bool), E::Item> {
    let active = section.insert(wq, item, fx)?;
    Ok((state.insert(pool), active))
}

/// Cancelling's pool step (pool lock, then the item's lock): if the item
/// (`key`) is still queued on this pool (`here`), takes PENDING (rule M28;
/// for good if `cancelling`) and its instance off the pool (PS3). False if
/// it started running or moved meanwhile: the caller grabs again.
pub fn cancel_grab_queued<E: Instance, Pool: Clone, Wq: Clone>(
    section: &mut PoolSection<E>,
    state: &mut WorkState<Pool, Wq>,
    key: usize,
    cancelling: bool,
    here: impl Fn(&Pool) -> bool,
    fx: &mut impl Effects,
) -> bool {
    if !state.grab_queued(cancelling, here) {
        return false;
    }
    let removed = section.cancel_queued(key, fx);
    debug_assert!(removed.is_some(), "item marked queued on a pool that does not hold it");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_refuses_all_but_chained_queueing() {
        assert_eq!(accepts(false, false, || unreachable!("not asked")), Ok(()));
        assert_eq!(accepts(false, true, || false), Err(Refusal::Draining));
        assert_eq!(accepts(true, true, || false), Err(Refusal::Destroyed));
        assert_eq!(accepts(true, true, || true), Ok(()), "chained work may finish");
    }

    fn no_load(_: usize) -> usize {
        unreachable!("only spreading reads loads")
    }

    #[test]
    fn plain_queueing_avoids_offline_cpus_and_queue_on_does_not() {
        let online = |c: usize| c != 1;
        assert_eq!(choose_pool(false, 3, Target::Local(1), online, no_load), 2);
        assert_eq!(
            choose_pool(false, 3, Target::Local(4), online, no_load),
            2,
            "modulo the CPUs, then the next online"
        );
        assert_eq!(choose_pool(false, 3, Target::On(1), online, no_load), 1);
        assert_eq!(choose_pool(true, 3, Target::Local(1), online, no_load), 0, "unbound: its only pool");
        let spread = Target::Spread { cpu: 1, probe: 0 };
        assert_eq!(choose_pool(true, 3, spread, online, no_load), 0, "unbound: its only pool");
    }

    #[test]
    fn spreading_leaves_an_idle_local_pool_alone() {
        let all = |_: usize| true;
        let loads = [0, 5];
        assert_eq!(choose_pool(false, 2, Target::Spread { cpu: 0, probe: 0 }, all, |c| loads[c]), 0);
    }

    #[test]
    fn spreading_takes_the_other_pool_only_when_it_is_less_loaded() {
        let all = |_: usize| true;
        let spread = |loads: [usize; 2]| choose_pool(false, 2, Target::Spread { cpu: 0, probe: 7 }, all, |c| loads[c]);
        assert_eq!(spread([1, 0]), 1);
        assert_eq!(spread([3, 2]), 1);
        assert_eq!(spread([2, 2]), 0, "a tie stays local");
        assert_eq!(spread([2, 3]), 0);
    }

    #[test]
    fn spreading_never_probes_an_offline_cpu_and_probes_all_others() {
        let online = |c: usize| c != 2;
        let loads = [9, 9, 0, 4];
        let probed: Vec<usize> =
            (0..6).map(|probe| choose_pool(false, 4, Target::Spread { cpu: 0, probe }, online, |c| loads[c])).collect();
        assert!(!probed.contains(&2), "offline CPU 2 chosen: {probed:?}");
        assert!(probed.contains(&1) || probed.contains(&3), "never spread: {probed:?}");
        assert!(probed.contains(&3), "CPU 3 never probed: {probed:?}");
        assert_eq!(choose_pool(false, 1, Target::Spread { cpu: 0, probe: 3 }, online, |_| 9), 0, "one CPU");
        let only_local_online = |c: usize| c == 0;
        assert_eq!(choose_pool(false, 4, Target::Spread { cpu: 0, probe: 1 }, only_local_online, |c| loads[c]), 0);
    }

    #[test]
    fn a_running_item_is_queued_where_it_runs() {
        assert_eq!(redirect(0, Some(1), |p| p == 1), 1);
        assert_eq!(redirect(0, Some(1), |_| false), 0);
        assert_eq!(redirect(0, None, |_| unreachable!("no probe")), 0);
        assert_eq!(redirect(1, Some(1), |_| unreachable!("no probe of the chosen pool")), 1);
    }
}
