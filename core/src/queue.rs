//! Queueing (kernel `__queue_work`): which pool an item goes to, the
//! non-reentrancy lookup, and inserting an item whose PENDING the caller
//! owns; plus the checks that refuse queueing onto a draining or dying
//! workqueue, and waits from a workqueue's own items.

use crate::blocking::current_worker;
use crate::config::seeded;
use crate::error::{QueueError, WaitError};
use crate::machine::queue::{accepts, Placement, Refusal, Target};
use crate::machine::trace::StepId;
use crate::machine::work::Claim;
use crate::platform::{Arc, Platform};
use crate::seeded::SeededBug;
use crate::shared::{Pool, PoolLocked, Work, WorkState, WqShared};
use core::sync::atomic::Ordering;

type PoolGuard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;
type ItemGuard<'a, P> = <P as Platform>::Guard<'a, WorkState<P>>;

impl<P: Platform> WqShared<P> {
    /// Refuses queueing onto a dying workqueue, or onto a draining one from
    /// anywhere but its own items (only chained queueing is allowed).
    pub(crate) fn check_accepting<W: Clone>(&self, work: &W) -> Result<(), QueueError<W>> {
        self.check_accepting_with(work, || self.is_chained())
    }

    /// [`WqShared::check_accepting`] with the chained test given (machine
    /// QU1): asked only if the workqueue is draining or dying, and the flags
    /// are read once, so the answer fits the flags it was asked for.
    pub(crate) fn check_accepting_with<W: Clone>(
        &self,
        work: &W,
        chained: impl FnOnce() -> bool,
    ) -> Result<(), QueueError<W>> {
        let dying = self.dying.load(Ordering::Acquire) != 0;
        let draining = self.draining.load(Ordering::Acquire) != 0;
        accepts(dying, draining, chained).map_err(|refusal| {
            let (work, workqueue) = (work.clone(), self.name.clone());
            match refusal {
                Refusal::Destroyed => QueueError::Destroyed { work, workqueue },
                Refusal::Draining => QueueError::Draining { work, workqueue },
            }
        })
    }

    /// Whether the caller is a work item of this workqueue (kernel
    /// `is_chained_work`).
    pub(crate) fn is_chained(&self) -> bool {
        current_worker::<P>()
            .is_some_and(|ctx| Arc::ptr_eq(&ctx.pool.shared, &self.system) && ctx.current_wq() == Some(self.id))
    }

    /// The target of a queueing for `cpu` (`queue_on`) or the caller's CPU
    /// (plain `queue`), for item `key`.
    fn target(&self, cpu: Option<usize>, key: usize) -> Target {
        match cpu {
            Some(cpu) => Target::On(cpu),
            None if self.flags.unbound => Target::Local(0),
            None => self.local_target(key),
        }
    }

    /// Where a plain `queue` of item `key` starts: a worker of this system
    /// stays on its own pool's CPU; any other thread spreads from the CPU
    /// it runs on, probing another CPU chosen by the item's address (so one
    /// submitter's items probe different CPUs).
    fn local_target(&self, key: usize) -> Target {
        if let Some(ctx) = current_worker::<P>() {
            if Arc::ptr_eq(&ctx.pool.shared, &self.system) {
                if let Some(cpu) = ctx.pool.cpu {
                    return Target::Local(cpu);
                }
            }
        }
        let cpu = self.system.platform.current_cpu().map_or(0, |os_cpu| self.system.virtual_cpu_of(os_cpu));
        // Allocation addresses share their low bits: drop them, and mix
        // the rest by a multiplication (one item always probes the same
        // other CPU; different items, different ones).
        let probe = (key >> 4).wrapping_mul(0x9E37_79B9) >> 16;
        Target::Spread { cpu, probe }
    }

    /// `queue` / `queue_on`.
    ///
    /// The common case is one section: the chosen pool's lock, then the
    /// item's, claiming PENDING (QU2) and inserting (QU5) together, where
    /// the item last ran nowhere or on that pool (QU4 then redirects
    /// nowhere). Otherwise the claim stands and [`WqShared::insert_claimed`]
    /// probes the last pool under its own lock.
    pub(crate) fn queue_work(&self, cpu: Option<usize>, work: &Work<P>) -> Result<bool, QueueError<Work<P>>> {
        self.check_accepting(work)?;
        // Coalescing (QU2 finds it pending) takes no pool lock where the
        // hint says queued: an item queued again and again while it waits
        // must not contend with the pool's workers.
        if work.inner.queued_hint.load(Ordering::Relaxed) != 0 && work.inner.state.lock().is_pending() {
            return Ok(false);
        }
        let chosen = self.placement().choose(
            self.target(cpu, work.key()),
            |c| self.system.is_online(c),
            |c| self.pools[c].load(),
        );
        let pool = &self.pools[chosen];
        let blind = seeded(&self.system.config, SeededBug::FastPathIgnoresLastPool);
        if pool.inbox.looks_open() {
            return self.queue_via_inbox(work, pool, blind, cpu);
        }
        let guard = pool.lock();
        let mut state = work.inner.state.lock();
        let inserted = match state.try_claim_for(|last| blind || Arc::ptr_eq(last, pool)) {
            Claim::Pending => return Ok(false),
            Claim::Here => {
                guard.begin(StepId::Queue);
                self.insert_locked(guard, state, pool, work)
            }
            Claim::Elsewhere(last) => {
                drop(state);
                drop(guard);
                self.insert_claimed(cpu, work, Some(last))
            }
        };
        self.claimed_outcome(work, inserted)
    }

    /// What a queueing that claimed PENDING returns: queued, or refused
    /// because the workqueue was destroyed meanwhile (PENDING, still ours,
    /// given back).
    fn claimed_outcome(&self, work: &Work<P>, inserted: Result<u64, ()>) -> Result<bool, QueueError<Work<P>>> {
        match inserted {
            Ok(_) => Ok(true),
            Err(()) => {
                work.release();
                Err(QueueError::Destroyed { work: work.clone(), workqueue: self.name.clone() })
            }
        }
    }

    /// [`WqShared::queue_work`] where `pool`'s inbox looked open: the
    /// item's lock alone claims PENDING (QU2) and, where the item last ran
    /// nowhere or on `pool`, does the item half of the insert (QU5) and
    /// leaves the item in the inbox for the pool's next section to splice
    /// (`inbox.rs`). If the inbox closed meanwhile, or the workqueue is
    /// dying, the claim stands and the pool lock inserts, as before.
    fn queue_via_inbox(
        &self,
        work: &Work<P>,
        pool: &Arc<Pool<P>>,
        blind: bool,
        cpu: Option<usize>,
    ) -> Result<bool, QueueError<Work<P>>> {
        let mut state = work.inner.state.lock();
        let inserted = match state.try_claim_for(|last| blind || Arc::ptr_eq(last, pool)) {
            Claim::Pending => return Ok(false),
            Claim::Here => {
                let left = pool.inbox.leave(|| {
                    // Read under the inbox lock: a destroy sets `dying`
                    // before its last splice of this inbox.
                    if self.dying.load(Ordering::Acquire) != 0 {
                        return None;
                    }
                    state.insert(pool.clone());
                    work.inner.queued_hint.store(1, Ordering::Relaxed);
                    Some((work.clone(), self.id))
                });
                if left {
                    return Ok(true);
                }
                drop(state);
                let guard = pool.lock();
                guard.begin(StepId::Queue);
                let state = work.inner.state.lock();
                self.insert_locked(guard, state, pool, work)
            }
            Claim::Elsewhere(last) => {
                drop(state);
                self.insert_claimed(cpu, work, Some(last))
            }
        };
        self.claimed_outcome(work, inserted)
    }

    /// QU3-QU4's shape for this workqueue.
    fn placement(&self) -> Placement {
        Placement { unbound: self.flags.unbound, cpus: self.pools.len(), bugs: self.system.config.seeded_bits() }
    }

    /// Inserts an item whose PENDING the caller owns (kernel
    /// `__queue_work`) and returns the new instance's number. Fails only if
    /// the workqueue was destroyed meanwhile; the caller then still owns
    /// PENDING.
    ///
    /// Non-reentrancy: if the item may still be running on the pool it last
    /// used, for this workqueue, it is queued there instead of on the pool
    /// asked for; that pool's workers never run one item twice at once
    /// (a collision is deferred to the running worker, see `worker.rs`).
    pub(crate) fn insert_claimed(
        &self,
        cpu: Option<usize>,
        work: &Work<P>,
        last_pool: Option<Arc<Pool<P>>>,
    ) -> Result<u64, ()> {
        let last = last_pool.as_ref().and_then(|last| self.pools.iter().position(|p| Arc::ptr_eq(p, last)));
        let index = self.placement().place(
            self.target(cpu, work.key()),
            |c| self.system.is_online(c),
            // QU3 reads the loads without the pools' locks: hints.
            |c| self.pools[c].load(),
            last,
            // QU4's probe is a critical section of the last pool's own.
            |last| self.pools[last].lock().machine.runs_for(work.key(), self.id),
        );
        let pool = &self.pools[index];
        let guard = pool.lock();
        guard.begin(StepId::Queue);
        let state = work.inner.state.lock();
        self.insert_locked(guard, state, pool, work)
    }

    /// Machine QU5 under `pool`'s lock (`guard`) and the item's (`state`,
    /// which the caller owns PENDING in): one section; refused if the
    /// workqueue has no pool-workqueue here any more. Unlocks the item,
    /// then the pool, last, after the wakeup.
    fn insert_locked(
        &self,
        mut guard: PoolGuard<'_, P>,
        mut state: ItemGuard<'_, P>,
        pool: &Arc<Pool<P>>,
        work: &Work<P>,
    ) -> Result<u64, ()> {
        let inserted = guard.queue_insert(self.id, work.clone(), &mut state, pool.clone());
        if inserted.is_ok() {
            work.inner.queued_hint.store(1, Ordering::Relaxed);
        }
        drop(state);
        let (instance, woken) = inserted.map_err(drop)?;
        self.inflight.fetch_add(1, Ordering::AcqRel);
        let parked = guard.wake_unlocked(woken);
        drop(guard);
        if let Some(wakeup) = parked {
            wakeup.notify_one();
        }
        Ok(instance)
    }

    /// Refuses waits from this workqueue's own items.
    pub(crate) fn check_not_own(&self, operation: &'static str) -> Result<(), WaitError> {
        if self.is_chained() {
            return Err(WaitError::OwnWorkqueue { operation, workqueue: self.name.clone() });
        }
        Ok(())
    }
}
