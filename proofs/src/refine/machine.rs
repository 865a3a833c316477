//! The pure machine of `cmwq` (`core/src/machine`) driven as the engine
//! drives it: each [`Step`] is one critical section of the engine (a pool
//! lock held, or a rescuer's list lock). Where the machine has the
//! composition as a step of its own (`machine/section.rs`, `machine/pass.rs`:
//! a worker's pass, the pool halves of queueing and cancelling, an
//! instance's begin and end) this executor calls that very step, as the
//! engine's `core/src/worker.rs`, `queue.rs` and `cancel.rs` do, and maps
//! what it returns (its `Pass` and its effects) to the spec actions it
//! claims to be (its *witness*); `refine/mod.rs` checks the claim. The
//! rest (choosing the pool, creation as manager, the mayday timer, the
//! rescuer's loop, hotplug) is still composed here from the machine's
//! rules, mirroring the driver, until those become steps too.
//!
//! One merge: the engine finishes an instance in two sections, the item's
//! own (its instance is done; a `flush_work` may return) and then the
//! pool's (the item leaves the busy map and its active slot, S3); `Finish`
//! here is both at once, so a waiter returns after it.
//!
//! The waits `flush_work` and `cancel_sync` are in (a waiter returns in a
//! step of its own, when the machine says it may); `flush_workqueue` and
//! `destroy` are left out. Timers fire when armed (time is abstract).

use crate::spec::{Action, Behaviour, Config, RESCUER};
use cmwq::machine::create::Creating;
use cmwq::machine::effect::Effect;
use cmwq::machine::mayday::{MaydayList, RescuerStep};
use cmwq::machine::pass::Pass;
use cmwq::machine::pool::{WorkerId, WORKER_RESCUER, WORKER_UNBOUND};
use cmwq::machine::pwq::Pwq;
use cmwq::machine::queue::{cancel_grab_queued, choose_pool, queue_insert, redirect, Target};
use cmwq::machine::rescue::Rescue;
use cmwq::machine::section::{PlainEntry, PoolSection, PwqFlags};
use cmwq::machine::work::{Grab, WorkState};
use cmwq::machine::SeededBits;
use core::time::Duration;
use std::collections::BTreeMap;

/// A queued instance as the driver's entry: item, workqueue, colour.
pub type Ent = PlainEntry;

/// What an executor (a worker or an attached rescuer) runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Exec {
    pub ent: Ent,
    pub blocked_once: bool,
    /// For a `WaitsFor(n)` item that blocked: the instance of `n` it waits for.
    pub waits_for: u64,
}

/// A caller waiting in `flush_work` (for an instance) or `cancel_sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Waiter {
    Flush { item: usize, instance: u64 },
    CancelSync { item: usize },
}

/// A rescuer that took a pool off its list; `id` once it attached there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RescuerAt {
    pub pool: usize,
    pub id: Option<WorkerId>,
    /// Items taken off the worklist this turn (the batch count).
    pub taken: usize,
}

/// The machine's state plus the driver's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sys {
    /// Each pool's section: the pool and its pool-workqueues.
    pub pools: Vec<PoolSection<Ent>>,
    pub items: Vec<WorkState<usize, usize>>,
    pub maydays: Vec<MaydayList<usize>>,
    pub rescuers: Vec<Option<RescuerAt>>,
    /// What each executor runs, by (pool, worker id).
    pub exec: BTreeMap<(usize, WorkerId), Exec>,
    /// A manager creating a worker: (manager, the new worker's id).
    pub managing: Vec<Option<(WorkerId, WorkerId)>>,
    /// Worker ids in the order they were registered (the spec's numbers).
    pub order: Vec<Vec<WorkerId>>,
    pub queues: u8,
    pub cancels: u8,
    pub hotplug_left: u8,
    pub maydays_left: u8,
    pub failures_left: u8,
    /// The seeded bug `ClearPendingAfterRun` is on: the driver clears
    /// PENDING after the function, not before.
    pub late_clear: bool,
    /// The seeded bugs `FlushWorkIgnoresRunning` and `CancelSyncSkipsWait`
    /// (flags the driver passes to the machine's wait rules).
    pub flush_ignores_running: bool,
    pub cancel_sync_skips_wait: bool,
    /// Callers waiting, oldest first.
    pub waiters: Vec<Waiter>,
    pub flushes: u8,
}

/// One critical section of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Queue {
        item: usize,
        cpu: usize,
    },
    Cancel {
        item: usize,
    },
    /// `flush_work` / `cancel_sync` called (`work.rs`, `cancel.rs`).
    FlushWork {
        item: usize,
    },
    CancelSync {
        item: usize,
    },
    /// Waiter `n` (oldest first) returns.
    Return {
        n: usize,
    },
    /// A woken idle worker runs (rules 6-9).
    Wake {
        pool: usize,
        id: WorkerId,
    },
    /// The manager's spawn returned (rule 11).
    ManageEnd {
        pool: usize,
    },
    Block {
        pool: usize,
        id: WorkerId,
    },
    Unblock {
        pool: usize,
        id: WorkerId,
    },
    Finish {
        pool: usize,
        id: WorkerId,
    },
    MaydayTimer {
        pool: usize,
    },
    RescuerPop {
        wq: usize,
    },
    RescuerRun {
        wq: usize,
    },
    CpuDown,
    CpuUp,
}

impl Sys {
    /// Every pool with one idle worker, as the engine builds a system.
    pub fn new(c: &Config, bugs: SeededBits) -> Self {
        let pools = c.cpus + 1;
        let mut sections = Vec::new();
        for p in 0..pools {
            let mut section = PoolSection::new(bugs);
            // The engine's build: C1-C2 as a manager that is not a worker.
            let flags = if p == c.cpus { WORKER_UNBOUND } else { 0 };
            let _ = section.manager_enter();
            let Creating::Spawn(id) = section.create_begin(usize::from(c.max_workers), flags, Duration::ZERO) else {
                unreachable!("an empty pool may create a worker")
            };
            section.create_end(id, true, Duration::ZERO, &mut Vec::new());
            section.manager_leave();
            for wq in 0..c.wqs.len() {
                let flags = PwqFlags { cpu_intensive: false, rescuer: c.wqs[wq].mem_reclaim };
                section.add_pwq(wq, Pwq::new(usize::from(c.max_active(wq)), 0, bugs), flags);
            }
            sections.push(section);
        }
        Sys {
            pools: sections,
            items: (0..c.items.len()).map(|_| WorkState::default()).collect(),
            maydays: (0..c.wqs.len()).map(|_| MaydayList::new(bugs)).collect(),
            rescuers: vec![None; c.wqs.len()],
            exec: BTreeMap::new(),
            managing: vec![None; pools],
            order: vec![vec![0]; pools],
            queues: c.queues,
            cancels: c.cancels,
            hotplug_left: if c.hotplug { 2 } else { 0 },
            maydays_left: c.maydays,
            failures_left: c.failures,
            late_clear: bugs & cmwq::SeededBug::ClearPendingAfterRun.bit() != 0,
            flush_ignores_running: bugs & cmwq::SeededBug::FlushWorkIgnoresRunning.bit() != 0,
            cancel_sync_skips_wait: bugs & cmwq::SeededBug::CancelSyncSkipsWait.bit() != 0,
            waiters: Vec::new(),
            flushes: c.flushes,
        }
    }

    /// Workqueue `wq`'s pool-workqueue on pool `p` (every pool has one).
    pub fn pwq(&self, wq: usize, p: usize) -> &Pwq<usize> {
        self.pools[p].pwq(wq).expect("every workqueue has a pool-workqueue on every pool")
    }

    /// The spec's number for worker `id` of pool `p`.
    pub fn spec_worker(&self, p: usize, id: WorkerId) -> u8 {
        if self.pools[p].pool().worker(id).is_some_and(|w| w.flags() & WORKER_RESCUER != 0) {
            return RESCUER;
        }
        self.order[p].iter().position(|&x| x == id).map_or(RESCUER - 1, |n| n as u8)
    }

    /// The steps that may happen now.
    pub fn steps(&self, c: &Config, out: &mut Vec<Step>) {
        for item in 0..c.items.len() {
            if self.queues > 0 {
                (0..c.cpus).for_each(|cpu| out.push(Step::Queue { item, cpu }));
            }
            if self.cancels > 0 {
                out.push(Step::Cancel { item });
                // A second `cancel_sync` would wait for the first one.
                if !matches!(self.items[item].location(), cmwq::machine::work::Location::Cancelling) {
                    out.push(Step::CancelSync { item });
                }
            }
            if self.flushes > 0 {
                out.push(Step::FlushWork { item });
            }
        }
        for (n, waiter) in self.waiters.iter().enumerate() {
            let ready = match *waiter {
                Waiter::Flush { item, instance } => self.items[item].instance_done(instance),
                Waiter::CancelSync { item } => self.items[item].cancel_sync_may_return(self.cancel_sync_skips_wait),
            };
            if ready {
                out.push(Step::Return { n });
            }
        }
        for (p, pool) in self.pools.iter().enumerate() {
            for (&id, w) in pool.pool().workers() {
                if w.woken() && pool.pool().idle().contains(&id) {
                    out.push(Step::Wake { pool: p, id });
                }
            }
            if self.managing[p].is_some() {
                out.push(Step::ManageEnd { pool: p });
            }
            if pool.pool().mayday_timer_armed() && self.maydays_left > 0 {
                out.push(Step::MaydayTimer { pool: p });
            }
        }
        for (&(pool, id), exec) in &self.exec {
            let sleeping = self.pools[pool].pool().worker(id).is_some_and(|w| w.sleeping());
            let behaviour = c.items[exec.ent.item].1;
            if sleeping {
                if self.may_proceed(behaviour, exec) {
                    out.push(Step::Unblock { pool, id });
                }
            } else if behaviour != Behaviour::Plain && !exec.blocked_once {
                out.push(Step::Block { pool, id });
            } else {
                out.push(Step::Finish { pool, id });
            }
        }
        for (wq, rescuer) in self.rescuers.iter().enumerate() {
            match rescuer {
                None if !self.maydays[wq].is_empty() => out.push(Step::RescuerPop { wq }),
                Some(RescuerAt { id: None, .. }) => out.push(Step::RescuerRun { wq }),
                _ => {}
            }
        }
        if self.hotplug_left == 2 && c.cpus >= 2 {
            out.push(Step::CpuDown);
        }
        if self.hotplug_left == 1 {
            out.push(Step::CpuUp);
        }
    }

    /// Whether `step` can change anything but a timer's own flag: a mayday
    /// timer that fires with nothing to send only re-arms.
    pub fn productive(&self, c: &Config, step: Step) -> bool {
        let Step::MaydayTimer { .. } = step else { return true };
        let mut next = self.clone();
        let _ = next.apply(c, step);
        next.maydays.iter().zip(&self.maydays).any(|(a, b)| a.len() != b.len())
    }

    fn may_proceed(&self, behaviour: Behaviour, exec: &Exec) -> bool {
        match behaviour {
            Behaviour::WaitsFor(n) => {
                let item = &self.items[n];
                item.instance_done(exec.waits_for) || item.running().is_some_and(|r| r >= exec.waits_for)
            }
            _ => true,
        }
    }

    /// Carries out `step`; returns the spec actions it claims to be, or
    /// `None` if it would exceed an exploration bound.
    pub fn apply(&mut self, c: &Config, step: Step) -> Option<Vec<Action>> {
        let mut w = Vec::new();
        match step {
            Step::Queue { item, cpu } => {
                self.queues -= 1;
                w.push(Action::Queue { item: item as u8, cpu: cpu as u8 });
                self.queue(c, item, cpu);
            }
            Step::Cancel { item } => {
                self.cancels -= 1;
                w.push(Action::Cancel { item: item as u8, sync: false });
                self.cancel(item);
            }
            Step::FlushWork { item } => {
                self.flushes -= 1;
                w.push(Action::FlushWork { item: item as u8 });
                // `Work::flush`: a target to wait for, or return at once.
                if let Some(instance) = self.items[item].flush_target(self.flush_ignores_running) {
                    self.waiters.push(Waiter::Flush { item, instance });
                }
            }
            Step::CancelSync { item } => {
                self.cancels -= 1;
                w.push(Action::Cancel { item: item as u8, sync: true });
                self.cancel_sync(item);
            }
            Step::Return { n } => {
                if let Waiter::CancelSync { item } = self.waiters.remove(n) {
                    let _ = self.items[item].release();
                }
                w.push(Action::Return { waiter: n as u8 });
            }
            Step::Wake { pool, id } => {
                let _ = self.pools[pool].take_wakeup(id);
                self.decide(c, pool, id, &mut w)?;
            }
            Step::ManageEnd { pool } => self.manage_end(c, pool, &mut w)?,
            Step::Block { pool, id } => self.block(c, pool, id, &mut w),
            Step::Unblock { pool, id } => {
                self.pools[pool].worker_unblocked(id);
                if self.spec_worker(pool, id) != RESCUER {
                    w.push(Action::Unblock { pool: pool as u8, worker: self.spec_worker(pool, id) });
                }
            }
            Step::Finish { pool, id } => self.finish(c, pool, id, &mut w)?,
            Step::MaydayTimer { pool } => {
                let mut fx = Vec::new();
                self.pools[pool].mayday_fired(&mut fx);
                let mut sent = false;
                for effect in fx {
                    if let Effect::Mayday(wq) = effect {
                        sent |= self.maydays[wq].send(pool, |&x| x == pool);
                    }
                }
                if sent {
                    // The exploration bound counts maydays sent, like the spec's.
                    self.maydays_left -= 1;
                    w.push(Action::Mayday { pool: pool as u8 });
                }
            }
            Step::RescuerPop { wq } => {
                if let RescuerStep::Rescue(pool) = self.maydays[wq].next_step() {
                    self.rescuers[wq] = Some(RescuerAt { pool, id: None, taken: 0 });
                    w.push(Action::RescuerAttach { wq: wq as u8 });
                }
            }
            Step::RescuerRun { wq } => {
                let pool = self.rescuers[wq].as_ref()?.pool;
                let flags = if pool == c.cpus { WORKER_UNBOUND } else { 0 };
                let id = self.pools[pool].rescuer_attach(flags, Duration::ZERO);
                self.rescuers[wq] = Some(RescuerAt { pool, id: Some(id), taken: 0 });
                self.rescue_loop(c, wq, &mut w);
            }
            Step::CpuDown => {
                self.hotplug_left = 1;
                w.push(Action::CpuDown);
                self.pools[0].cpu_down(&mut Vec::new());
            }
            Step::CpuUp => {
                self.hotplug_left = 0;
                w.push(Action::CpuUp);
                self.pools[0].cpu_up(&mut Vec::new());
            }
        }
        Some(w)
    }

    /// `queue.rs` `queue_work` with `insert_claimed`, as one section.
    fn queue(&mut self, c: &Config, item: usize, cpu: usize) {
        let Some(last) = self.items[item].try_claim() else { return };
        self.insert(c, item, cpu, last);
    }

    fn insert(&mut self, c: &Config, item: usize, cpu: usize, last: Option<usize>) {
        // The machine's Q3 and Q4 over the workqueue's pools (one per CPU,
        // or the unbound pool, numbered `c.cpus` here).
        let wq = c.items[item].0;
        let unbound = c.wqs[wq].unbound || c.wqs[wq].ordered;
        let pool_of = |index: usize| if unbound { c.cpus } else { index };
        let index_of = |p: usize| if unbound { (p == c.cpus).then_some(0) } else { (p < c.cpus).then_some(p) };
        let chosen = choose_pool(unbound, c.cpus, Target::On(cpu), |_| true);
        let index = redirect(chosen, last.and_then(index_of), |i| self.pools[pool_of(i)].runs_for(item, wq));
        let pool = pool_of(index);
        let _ = queue_insert(&mut self.pools[pool], &mut self.items[item], wq, item, pool, &mut Vec::new());
    }

    /// `cancel.rs` `try_grab`: takes PENDING (for good if `cancelling`),
    /// taking a queued instance off its pool. False if someone else owns it.
    fn grab(&mut self, item: usize, cancelling: bool) -> bool {
        match self.items[item].grab(cancelling) {
            Grab::Owned { .. } => true,
            Grab::Queued(pool) => {
                let (section, state) = (&mut self.pools[pool], &mut self.items[item]);
                cancel_grab_queued(section, state, item, cancelling, |&p| p == pool, &mut Vec::new())
            }
            Grab::Busy | Grab::Cancelling => false,
        }
    }

    /// `cancel.rs` `cancel`: grab, then give PENDING back.
    fn cancel(&mut self, item: usize) {
        if self.grab(item, false) {
            let _ = self.items[item].release();
        }
    }

    /// `cancel.rs` `cancel_sync`: grab PENDING for good, then wait for a
    /// running instance (or return at once).
    fn cancel_sync(&mut self, item: usize) {
        if !self.grab(item, true) {
            return;
        }
        if self.items[item].cancel_sync_may_return(self.cancel_sync_skips_wait) {
            let _ = self.items[item].release();
        } else {
            self.waiters.push(Waiter::CancelSync { item });
        }
    }

    /// `worker.rs`: a woken worker's step (machine `worker_woken`).
    fn decide(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) -> Option<()> {
        let mut fx = Vec::new();
        let pass = self.pools[p].worker_woken(id, || Duration::ZERO, &mut fx);
        self.carry_out(c, p, id, pass, &fx, false, w)
    }

    /// What a worker's step ended in, as the engine's `worker.rs` carries
    /// it out, with its witness: a deferral per [`Effect::Deferred`], then
    /// the item it starts. `quiet`: the first of these is part of the
    /// previous witness.
    #[allow(clippy::too_many_arguments)]
    fn carry_out(
        &mut self,
        c: &Config,
        p: usize,
        id: WorkerId,
        pass: Pass<Ent>,
        fx: &[Effect],
        quiet: bool,
        w: &mut Vec<Action>,
    ) -> Option<()> {
        let (pool, worker) = (p as u8, self.spec_worker(p, id));
        let mut actions: Vec<Action> = fx
            .iter()
            .filter(|e| matches!(e, Effect::Deferred { .. }))
            .map(|_| Action::Defer { pool, worker })
            .collect();
        match pass {
            Pass::Run { entry, scheduled } => {
                actions.push(if scheduled {
                    Action::StartScheduled { pool, worker }
                } else {
                    Action::Start { pool, worker }
                });
                self.run(p, id, entry);
            }
            Pass::Manage => self.manage(c, p, id, &mut actions)?,
            Pass::Idle | Pass::Exit => {}
        }
        w.extend(actions.into_iter().skip(usize::from(quiet)));
        Some(())
    }

    /// `manager.rs` `manage` up to the spawn: at the limit creation fails
    /// at once (the spec's worker needs no spare then, S2); otherwise the
    /// new worker waits for its spawn to return (`ManageEnd`).
    fn manage(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) -> Option<()> {
        let flags = if p == c.cpus { WORKER_UNBOUND } else { 0 };
        match self.pools[p].create_begin(usize::from(c.max_workers), flags, Duration::ZERO) {
            Creating::AtLimit => {
                let mut fx = Vec::new();
                self.pools[p].create_at_limit(&mut fx);
                let pass = self.pools[p].worker_managed(id, false, || Duration::ZERO, &mut fx);
                self.carry_out(c, p, id, pass, &fx, false, w)
            }
            Creating::Spawn(new) => {
                w.push(Action::Manage { pool: p as u8, worker: self.spec_worker(p, id) });
                self.managing[p] = Some((id, new));
                Some(())
            }
        }
    }

    /// `manager.rs` after the spawn: register the worker or give up, then
    /// the manager's step (machine `worker_managed`).
    fn manage_end(&mut self, c: &Config, p: usize, w: &mut Vec<Action>) -> Option<()> {
        let (id, new) = self.managing[p].take()?;
        let mut fx = Vec::new();
        // The first worker always exists; with `creation_fails` every later
        // spawn fails.
        let created = self.pools[p].create_end(new, !c.creation_fails, Duration::ZERO, &mut fx);
        if created {
            self.order[p].push(new);
            w.push(Action::Create { pool: p as u8 });
            let pass = self.pools[p].worker_managed(id, true, || Duration::ZERO, &mut fx);
            return self.carry_out(c, p, id, pass, &fx, false, w);
        }
        self.failures_left = self.failures_left.checked_sub(1)?;
        w.push(Action::CreateFails { pool: p as u8 });
        // The spec's CreateFails takes the first item itself.
        let pass = self.pools[p].worker_managed(id, false, || Duration::ZERO, &mut fx);
        self.carry_out(c, p, id, pass, &fx, true, w)
    }

    /// The item's own section before its function runs (`worker.rs`
    /// `execute`): it starts, and executor `id` of pool `p` runs it.
    fn run(&mut self, p: usize, id: WorkerId, ent: Ent) {
        self.items[ent.item].start(p, self.late_clear);
        self.exec.insert((p, id), Exec { ent, blocked_once: false, waits_for: 0 });
    }

    /// The running item enters its blocking section; a `WaitsFor(n)` item
    /// first queues `n` on its own pool's CPU (chained queueing).
    fn block(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) {
        let Some(exec) = self.exec.get(&(p, id)).cloned() else { return };
        let worker = self.spec_worker(p, id);
        w.push(if worker == RESCUER {
            Action::RescueBlock { wq: exec.ent.wq as u8 }
        } else {
            Action::Block { pool: p as u8, worker }
        });
        let mut waits_for = 0;
        if let Behaviour::WaitsFor(n) = c.items[exec.ent.item].1 {
            let cpu = if p < c.cpus { p } else { 0 };
            self.queue(c, n, cpu);
            waits_for = self.items[n].queued();
        }
        self.exec.insert((p, id), Exec { blocked_once: true, waits_for, ..exec });
        // S7; its wakeup is the woken worker's own step (`Wake`).
        let _ = self.pools[p].worker_blocked(id, &mut Vec::new());
    }

    /// The function returned: the item finishes in its own section, then
    /// the executor's step (machine `worker_finished`, or the rescuer's
    /// `end` and its loop).
    fn finish(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) -> Option<()> {
        let exec = self.exec.remove(&(p, id))?;
        let worker = self.spec_worker(p, id);
        let Ent { item, wq, color } = exec.ent;
        let _ = self.items[item].finish(self.late_clear);
        let mut fx = Vec::new();
        if worker == RESCUER {
            w.push(Action::RescueDone { wq: wq as u8 });
            self.pools[p].end(id, item, wq, color, &mut fx);
            self.rescue_loop(c, wq, w);
            return Some(());
        }
        w.push(Action::Finish { pool: p as u8, worker });
        let pass = self.pools[p].worker_finished(id, item, wq, color, || Duration::ZERO, &mut fx);
        self.carry_out(c, p, id, pass, &fx, false, w)
    }

    /// `rescuer.rs` `rescue`: scheduled items first, then while the pool
    /// needs it, its workqueue's items; then wake a worker and detach.
    fn rescue_loop(&mut self, _c: &Config, wq: usize, w: &mut Vec<Action>) {
        let Some(RescuerAt { pool: p, id: Some(id), mut taken }) = self.rescuers[wq].clone() else { return };
        let wq_n = wq as u8;
        let mut fx = Vec::new();
        let next = self.pools[p].rescuer_next(id, wq, &mut taken, cmwq::RESCUER_BATCH, &mut fx);
        for effect in &fx {
            match *effect {
                Effect::Deferred { .. } => w.push(Action::RescueDefer { wq: wq_n }),
                Effect::MaydayAgain(again) => {
                    let _ = self.maydays[again].send(p, |&x| x == p);
                }
                _ => {}
            }
        }
        match next {
            Rescue::Run { entry, scheduled } => {
                w.push(if scheduled { Action::RescueScheduled { wq: wq_n } } else { Action::Rescue { wq: wq_n } });
                self.rescuers[wq] = Some(RescuerAt { pool: p, id: Some(id), taken });
                self.run(p, id, entry);
            }
            Rescue::Detached => {
                self.rescuers[wq] = None;
                w.push(Action::RescuerDetach { wq: wq_n });
            }
        }
    }
}
