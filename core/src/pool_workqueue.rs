//! The driver's side of a pool's steps: running a step of
//! `machine::section` under the pool lock and carrying out its effects
//! (waking a worker, counting an instance out of its workqueue, reporting a
//! flushed colour, poking the trustee), and keeping each pool-workqueue's
//! workqueue handle beside its machine state.
//!
//! The rules and their composition live in the machine
//! (`machine/section.rs`, `machine/pass.rs`); nothing here decides.

use crate::machine::effect::{Effect, Effects};
use crate::machine::pool::{WorkerId, WqId};
use crate::machine::pwq::{Color, Pwq};
use crate::machine::queue;
use crate::machine::section::{PoolSection, PwqFlags};
use crate::platform::{Arc, Condvar, Platform};
use crate::shared::{Entry, Pool, PoolLocked, TrusteeState, Work, WorkState, WorkerThread, WqShared};
use core::sync::atomic::Ordering;
use std::collections::BTreeMap;

/// The engine's effect sink for a step under the pool lock: it carries
/// out each effect at once (none re-enters the machine, and each is
/// allowed under the pool lock: a condition-variable notification, an
/// atomic, the timer lock), except arming the idle-cull timer, which needs
/// the pool's handle and is left to the caller.
pub(crate) struct PoolEffects<'a, P: Platform> {
    threads: &'a BTreeMap<WorkerId, WorkerThread<P>>,
    wqs: &'a BTreeMap<WqId, Arc<WqShared<P>>>,
    trustee: &'a Option<TrusteeState<P>>,
    tracer: &'a crate::trace::Tracer,
    /// The workqueue the executor just ran an item of, if any: its
    /// `InstanceLeft` needs no look-up (the hot path of a worker).
    ran: Option<&'a Arc<WqShared<P>>>,
    /// What the step asked for that needs the pool's handle.
    later: Later,
    /// `Some`: hold the step's wakeup back for the caller to carry out
    /// (`queue_insert`, then `PoolLocked::wake_unlocked`: a parked
    /// worker is notified once the pool is unlocked, so that it does not
    /// find the lock still held); the slot keeps one.
    held_wake: Option<Option<WorkerId>>,
}

/// What a step asked for that needs the pool's handle (timers are armed
/// with it; a rescuer takes the pool on its mayday list): carried out by
/// `manager::after_step`, still under the pool lock.
#[derive(Debug, Default)]
pub(crate) struct Later {
    /// Arm the idle-cull timer.
    pub(crate) idle_timer: bool,
    /// Arm the create-retry timer.
    pub(crate) create_retry: bool,
    /// Arm the mayday timer: `Some(true)` with the initial timeout,
    /// `Some(false)` with the interval.
    pub(crate) mayday_timer: Option<bool>,
    /// Call these workqueues' rescuers for this pool; `true`: a mayday of
    /// the timer's (counted in the statistics).
    pub(crate) maydays: Vec<(WqId, bool)>,
}

impl Later {
    /// Nothing to carry out.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.idle_timer && !self.create_retry && self.mayday_timer.is_none() && self.maydays.is_empty()
    }
}

impl<P: Platform> PoolEffects<'_, P> {
    /// Workqueue `wq`'s handle.
    fn wq(&self, wq: WqId) -> Option<&Arc<WqShared<P>>> {
        match self.ran {
            Some(ran) if ran.id == wq => Some(ran),
            _ => self.wqs.get(&wq),
        }
    }
}

impl<P: Platform> Effects for PoolEffects<'_, P> {
    #[inline(always)]
    fn push(&mut self, effect: Effect) {
        match effect {
            Effect::Wake(id) => match &mut self.held_wake {
                Some(slot @ None) => *slot = Some(id),
                _ => wake_thread(self.threads, id),
            },
            Effect::ArmIdleTimer => self.later.idle_timer = true,
            Effect::ArmCreateRetry => self.later.create_retry = true,
            Effect::ArmMayday { first } => self.later.mayday_timer = Some(first),
            Effect::Mayday(wq) => self.later.maydays.push((wq, true)),
            Effect::MaydayAgain(wq) => self.later.maydays.push((wq, false)),
            Effect::InstanceLeft(wq) => {
                if let Some(wq) = self.wq(wq) {
                    wq.instance_left();
                }
            }
            Effect::FlushColorDone(wq) => {
                if let Some(wq) = self.wq(wq) {
                    // Under the pool lock: async flushers are woken later.
                    wq.wake_later(wq.flush.pwq_flushed());
                }
            }
            Effect::PoolChanged => {
                if let Some(trustee) = self.trustee {
                    trustee.wake.notify_all();
                }
            }
            Effect::Retire(worker) => {
                self.tracer.record(|pool| crate::trace::Event::Retired { pool, worker });
                if let Some(thread) = self.threads.get(&worker) {
                    thread.wake_hint.store(1, Ordering::Release);
                    thread.wakeup.notify_one();
                }
            }
            Effect::Deferred { worker, item } => {
                self.tracer.record(|pool| crate::trace::Event::Deferred { pool, worker, item });
            }
        }
    }
}

/// Carries out a wakeup the machine decided on: the hint for a spinning
/// worker, a notification for a parked one.
fn wake_thread<P: Platform>(threads: &BTreeMap<WorkerId, WorkerThread<P>>, id: WorkerId) {
    if let Some(thread) = threads.get(&id) {
        thread.wake_hint.store(1, Ordering::Release);
        if thread.parked {
            thread.wakeup.notify_one();
        }
    }
}

/// A pool-workqueue taken off its pool, with its workqueue's handle.
pub(crate) type RemovedPwq<P> = (Pwq<Work<P>>, Arc<WqShared<P>>);

/// A step's result, and what it asked for that the caller carries out
/// with the pool's handle (`manager::after_step`).
pub(crate) struct Stepped<R> {
    pub(crate) result: R,
    pub(crate) later: Later,
}

impl<P: Platform> PoolLocked<P> {
    /// Runs `step` on the pool's machine under this (held) pool lock and
    /// carries out its effects.
    #[inline]
    pub(crate) fn step<R>(
        &mut self,
        step: impl FnOnce(&mut PoolSection<Entry<P>>, &mut PoolEffects<'_, P>) -> R,
    ) -> Stepped<R> {
        self.step_after(None, step)
    }

    /// [`PoolLocked::step`] for an executor that just ran an item of `ran`.
    #[inline]
    pub(crate) fn step_after<R>(
        &mut self,
        ran: Option<&Arc<WqShared<P>>>,
        step: impl FnOnce(&mut PoolSection<Entry<P>>, &mut PoolEffects<'_, P>) -> R,
    ) -> Stepped<R> {
        let PoolLocked { machine, threads, wqs, trustee, tracer, .. } = self;
        let mut fx = PoolEffects { threads, wqs, trustee, tracer, ran, later: Later::default(), held_wake: None };
        let result = step(machine, &mut fx);
        let later = fx.later;
        self.publish_load();
        Stepped { result, later }
    }

    /// Ends a section: opens or closes the inbox as the pool is at its
    /// concurrency target or not (closing splices what was left, in the
    /// same inbox section), then publishes the pool's load for plain
    /// `queue`s choosing a pool (machine QU3). The load is written only
    /// when it changed, so that submitters reading it do not lose the
    /// cache line to every step.
    #[inline]
    pub(crate) fn publish_load(&mut self) {
        let counts = self.machine.pool().counts();
        let open = counts.running >= counts.concurrency;
        if open != self.inbox_open {
            self.inbox_open = open;
            if !open && crate::machine::seeded_in(self.bugs, crate::SeededBug::InboxCloseSkipsSplice) {
                self.inbox.close_keeping();
            } else {
                self.splice_taking(Some(open));
            }
        }
        let load = queue::load(self.machine.pool().counts());
        if self.load.load(Ordering::Relaxed) != load {
            self.load.store(load, Ordering::Relaxed);
        }
    }

    /// Begins a section: moves what queueings left in the inbox onto the
    /// pool (`inbox.rs`), if the inbox's hint says anything was left.
    #[inline]
    pub(crate) fn splice(&mut self) {
        if self.inbox.looks_nonempty() {
            self.splice_taking(None);
        }
    }

    /// Begins a worker's section after it ran an item of workqueue `ran`:
    /// splices only once the worklist is empty, or when the step will
    /// activate one of `ran`'s inactive items (which must come after what
    /// the inbox holds, as it would had every queueing inserted at once).
    /// While the worklist is not empty, the worker takes its head next,
    /// which everything left in the inbox comes after, and the pool is at
    /// its target (the inbox is open only then), so no decision of the
    /// step reads how much waits; leaving the inbox be lets it fill, and
    /// the worker takes a batch at a time.
    #[inline]
    pub(crate) fn splice_when_idle(&mut self, ran: WqId) {
        let section = &self.machine;
        if section.pool().worklist().is_empty() || section.pwq(ran).is_some_and(|pwq| pwq.nr_inactive() > 0) {
            self.splice();
        }
    }

    /// Takes the inbox's items (setting it `open` or closed, or leaving it
    /// as it is) and inserts each on the pool (the pool half of queueing,
    /// PS1), in the order they were left.
    fn splice_taking(&mut self, open: Option<bool>) {
        let mut left = core::mem::take(&mut self.spliced);
        self.inbox.take(&mut left, open);
        if left.is_empty() {
            self.spliced = left;
            return;
        }
        // The splice is a section of queueing's own within this one: the
        // trace says so, then goes back to the step this section runs.
        let resumed = self.section_step.get();
        self.begin(crate::machine::trace::StepId::Queue);
        for (work, wq) in left.drain(..) {
            let item = work.key();
            let PoolLocked { machine, threads, wqs, trustee, tracer, .. } = self;
            let mut fx =
                PoolEffects { threads, wqs, trustee, tracer, ran: None, later: Later::default(), held_wake: None };
            match machine.insert(wq, work, &mut fx) {
                Ok(active) => {
                    if let Some(wq) = self.wqs.get(&wq) {
                        wq.inflight.fetch_add(1, Ordering::AcqRel);
                    }
                    self.tracer.record(|pool| crate::trace::Event::Queued { item, wq, pool, active });
                }
                Err(work) => {
                    // A queueing leaves nothing once the workqueue is dying,
                    // and a pool-workqueue goes only once empty, spliced.
                    debug_assert!(false, "an item left for a pool-workqueue that is gone");
                    work.release();
                }
            }
        }
        self.spliced = left;
        if let Some(step) = resumed {
            self.begin(step);
        }
    }

    /// Splices whatever the inbox holds, taking the inbox lock whatever
    /// its hint says: before a workqueue's pool-workqueue is judged empty
    /// and removed, so that an item left by a queueing that did not see
    /// `dying` is on the pool by then (`inbox.rs`).
    pub(crate) fn splice_all(&mut self) {
        if crate::machine::seeded_in(self.bugs, crate::SeededBug::DestroySkipsInboxSplice) {
            self.splice();
        } else {
            self.splice_taking(None);
        }
    }

    /// Carries out a wakeup a step held back (`queue_insert`), under the
    /// pool lock, except the notification of a parked worker: that is
    /// returned, for the caller to send once it has unlocked, so that the
    /// woken thread does not find the lock still held and sleep again. The
    /// machine's `woken` and the hint are set here, so a worker that checks
    /// them before it parks cannot miss the wakeup; a late notification is
    /// at worst spurious.
    #[inline]
    #[must_use = "notify the returned condition variable after unlocking"]
    pub(crate) fn wake_unlocked(&self, worker: Option<WorkerId>) -> Option<Arc<Condvar<P>>> {
        let thread = self.threads.get(&worker?)?;
        thread.wake_hint.store(1, Ordering::Release);
        thread.parked.then(|| thread.wakeup.clone())
    }

    /// Marks in the trace that a section running `step` begins here.
    #[inline(always)]
    pub(crate) fn begin(&self, step: crate::machine::trace::StepId) {
        self.section_step.set(Some(step));
        self.tracer.record(|pool| crate::trace::Event::Step { pool, step });
    }

    /// Adds `wq`'s pool-workqueue here.
    pub(crate) fn add_pwq(&mut self, wq: &Arc<WqShared<P>>, max_active: usize, work_color: Color) {
        let pwq = Pwq::new(max_active, work_color, wq.system.config.seeded_bits());
        let flags = PwqFlags { cpu_intensive: wq.flags.cpu_intensive, rescuer: wq.rescuer.is_some() };
        self.machine.add_pwq(wq.id, pwq, flags);
        self.wqs.insert(wq.id, wq.clone());
    }

    /// Takes `wq`'s pool-workqueue off this pool, with its workqueue handle.
    pub(crate) fn remove_pwq(&mut self, wq: WqId) -> Option<RemovedPwq<P>> {
        self.splice_all();
        let pwq = self.machine.remove_pwq(wq)?;
        let handle = self.wqs.remove(&wq);
        debug_assert!(handle.is_some(), "a pool-workqueue without its workqueue");
        handle.map(|handle| (pwq, handle))
    }

    /// Machine QU5, under this pool lock and the item's (held) lock
    /// `state`: queues `work` on `wq`'s pool-workqueue and numbers the
    /// instance, recorded as on `pool`. The instance's number and the
    /// worker the step woke, whose wakeup the caller carries out
    /// ([`PoolLocked::wake_unlocked`]); or the work
    /// back if `wq` has no pool-workqueue here any more (destroyed).
    pub(crate) fn queue_insert(
        &mut self,
        wq: WqId,
        work: Work<P>,
        state: &mut WorkState<P>,
        pool: Arc<Pool<P>>,
    ) -> Result<(u64, Option<WorkerId>), Work<P>> {
        let item = work.key();
        let PoolLocked { machine, threads, wqs, trustee, tracer, .. } = self;
        let mut fx =
            PoolEffects { threads, wqs, trustee, tracer, ran: None, later: Later::default(), held_wake: Some(None) };
        let inserted = queue::queue_insert(machine, state, wq, work, pool, &mut fx);
        debug_assert!(fx.later.is_empty(), "queueing asks for nothing but a wakeup");
        let woken = fx.held_wake.flatten();
        self.publish_load();
        inserted.map(|(instance, active)| {
            self.tracer.record(|pool| crate::trace::Event::Queued { item, wq, pool, active });
            (instance, woken)
        })
    }
}
