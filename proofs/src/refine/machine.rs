//! The pure machine of `cmwq` (`core/src/machine`) driven as the engine
//! drives it: each [`Step`] is one critical section of the engine's driver
//! (a pool lock held, or a rescuer's list lock), made of the same machine
//! transitions in the same order as `core/src/{queue,cancel,worker,manager,
//! rescuer,hotplug}.rs`. Each step also names the spec actions it claims to
//! be (its *witness*); `refine/mod.rs` checks the claim.
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
use cmwq::machine::mayday::{MaydayList, RescuerStep};
use cmwq::machine::pool::{PoolState, WorkerId, WorkerState, WORKER_PREP, WORKER_RESCUER, WORKER_UNBOUND};
use cmwq::machine::pwq::{Inserted, Pwq};
use cmwq::machine::work::{Grab, WorkState};
use cmwq::machine::worker::{Begin, WorkerStep};
use cmwq::machine::{Queued, SeededBits};
use core::time::Duration;
use std::collections::BTreeMap;

/// A queued instance as the driver's entry: item, workqueue, colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ent {
    pub item: usize,
    pub wq: usize,
    pub color: u8,
}

impl Queued for Ent {
    fn key(&self) -> usize {
        self.item
    }
    fn wq(&self) -> usize {
        self.wq
    }
}

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
}

/// The machine's state plus the driver's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sys {
    pub pools: Vec<PoolState<Ent>>,
    /// Pool-workqueues, `[wq][pool]`.
    pub pwqs: Vec<Vec<Pwq<usize>>>,
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
        let mut pool_states = Vec::new();
        for p in 0..pools {
            let mut pool = PoolState::new(bugs);
            let id = pool.next_id();
            let flags = WORKER_PREP | if p == c.cpus { WORKER_UNBOUND } else { 0 };
            pool.workers.insert(id, WorkerState::new(flags, Duration::ZERO, true));
            pool.nr_workers = 1;
            let _ = pool.worker_enter_idle(id, Duration::ZERO);
            pool_states.push(pool);
        }
        let pwqs = (0..c.wqs.len())
            .map(|wq| (0..pools).map(|_| Pwq::new(usize::from(c.max_active(wq)), 0, bugs)).collect())
            .collect();
        Sys {
            pools: pool_states,
            pwqs,
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

    /// The spec's number for worker `id` of pool `p`.
    pub fn spec_worker(&self, p: usize, id: WorkerId) -> u8 {
        if self.pools[p].workers.get(&id).is_some_and(|w| w.flags & WORKER_RESCUER != 0) {
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
                if !matches!(self.items[item].location, cmwq::machine::work::Location::Cancelling) {
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
            for (&id, w) in &pool.workers {
                if w.woken && pool.idle.contains(&id) {
                    out.push(Step::Wake { pool: p, id });
                }
            }
            if self.managing[p].is_some() {
                out.push(Step::ManageEnd { pool: p });
            }
            if pool.mayday_timer_armed && self.maydays_left > 0 {
                out.push(Step::MaydayTimer { pool: p });
            }
        }
        for (&(pool, id), exec) in &self.exec {
            let sleeping = self.pools[pool].workers.get(&id).is_some_and(|w| w.sleeping);
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
                item.instance_done(exec.waits_for) || item.running.is_some_and(|r| r >= exec.waits_for)
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
                if let Some(worker) = self.pools[pool].workers.get_mut(&id) {
                    worker.woken = false;
                }
                self.decide(c, pool, id, &mut w)?;
            }
            Step::ManageEnd { pool } => self.manage_end(c, pool, &mut w)?,
            Step::Block { pool, id } => self.block(c, pool, id, &mut w),
            Step::Unblock { pool, id } => {
                self.pools[pool].worker_running(id);
                if self.spec_worker(pool, id) != RESCUER {
                    w.push(Action::Unblock { pool: pool as u8, worker: self.spec_worker(pool, id) });
                }
            }
            Step::Finish { pool, id } => self.finish(c, pool, id, &mut w),
            Step::MaydayTimer { pool } => {
                let (called, _) = self.pools[pool].mayday_timeout();
                let mut sent = false;
                for wq in called.into_iter().filter(|&wq| c.wqs[wq].mem_reclaim) {
                    sent |= self.maydays[wq].send(pool, |&x| x == pool);
                }
                if sent {
                    // The exploration bound counts maydays sent, like the spec's.
                    self.maydays_left -= 1;
                    w.push(Action::Mayday { pool: pool as u8 });
                }
            }
            Step::RescuerPop { wq } => {
                if let RescuerStep::Rescue(pool) = self.maydays[wq].next_step() {
                    self.rescuers[wq] = Some(RescuerAt { pool, id: None });
                    w.push(Action::RescuerAttach { wq: wq as u8 });
                }
            }
            Step::RescuerRun { wq } => {
                let pool = self.rescuers[wq].as_ref()?.pool;
                let id = self.pools[pool].next_id();
                let flags = WORKER_PREP | WORKER_RESCUER | if pool == c.cpus { WORKER_UNBOUND } else { 0 };
                self.pools[pool].workers.insert(id, WorkerState::new(flags, Duration::ZERO, true));
                self.rescuers[wq] = Some(RescuerAt { pool, id: Some(id) });
                self.rescue_loop(c, wq, &mut w);
            }
            Step::CpuDown => {
                self.hotplug_left = 1;
                w.push(Action::CpuDown);
                let _ = self.pools[0].disassociate();
            }
            Step::CpuUp => {
                self.hotplug_left = 0;
                w.push(Action::CpuUp);
                let _ = self.pools[0].rebind();
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
        let wq = c.items[item].0;
        let mut pool = c.pool_for(wq, cpu);
        // Non-reentrancy: the pool the item last ran on, if the workqueue
        // uses it and the item runs there for it.
        let unbound = c.wqs[wq].unbound || c.wqs[wq].ordered;
        let uses = |p: usize| if unbound { p == c.cpus } else { p < c.cpus };
        if let Some(last) = last.filter(|&l| l != pool && uses(l)) {
            if self.pools[last].is_running_for(item, wq) {
                pool = last;
            }
        }
        let _ = self.items[item].insert(pool);
        if let Inserted::Active(colored) = self.pwqs[wq][pool].insert(item) {
            self.pools[pool].worklist.push_back(Ent { item, wq, color: colored.color });
            let _ = self.pools[pool].kick();
        }
    }

    /// `cancel.rs` `try_grab`: takes PENDING (for good if `cancelling`),
    /// taking a queued instance off its pool. False if someone else owns it.
    fn grab(&mut self, item: usize, cancelling: bool) -> bool {
        match self.items[item].grab(cancelling) {
            Grab::Owned { .. } => true,
            Grab::Queued(pool) => {
                let _ = self.items[item].grab_queued(cancelling, |&p| p == pool);
                if let Some((ent, active)) = self.remove_entry(pool, item) {
                    self.pwq_dec(pool, ent, active);
                    let _ = self.pools[pool].kick();
                }
                true
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

    fn remove_entry(&mut self, pool: usize, item: usize) -> Option<(Ent, bool)> {
        let state = &mut self.pools[pool];
        if let Some(pos) = state.worklist.iter().position(|e| e.item == item) {
            return state.worklist.remove(pos).map(|e| (e, true));
        }
        for worker in state.workers.values_mut() {
            if let Some(pos) = worker.scheduled.iter().position(|e| e.item == item) {
                return worker.scheduled.remove(pos).map(|e| (e, true));
            }
        }
        self.pwqs.iter_mut().enumerate().find_map(|(wq, pwqs)| {
            let colored = pwqs[pool].remove_inactive(|&i| i == item)?;
            Some((Ent { item, wq, color: colored.color }, false))
        })
    }

    /// `pool_workqueue.rs` `pwq_dec_nr_in_flight`: leave, then activate.
    fn pwq_dec(&mut self, pool: usize, ent: Ent, active: bool) {
        let _ = self.pwqs[ent.wq][pool].leave(ent.color, active);
        while let Some(colored) = self.pwqs[ent.wq][pool].activate_next() {
            self.pools[pool].worklist.push_back(Ent { item: colored.item, wq: ent.wq, color: colored.color });
        }
    }

    /// `worker.rs`: a worker past its idle wait (rules 6, 7).
    fn decide(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) -> Option<()> {
        match self.pools[p].worker_decide(id) {
            WorkerStep::Idle => {
                let _ = self.pools[p].worker_enter_idle(id, Duration::ZERO);
            }
            WorkerStep::Work => {
                self.pools[p].worker_start_working(id);
                self.work(p, id, true, false, w);
            }
            WorkerStep::Manage => {
                let max = usize::from(c.max_workers);
                if !self.pools[p].may_create(max) {
                    // `manager.rs` `create_worker`: at the limit it fails at
                    // once; the spec's worker needs no spare then (S2).
                    self.pools[p].manager_leave();
                    let _ = self.pools[p].worker_create_failed(false);
                    if self.pools[p].worker_recheck() {
                        self.pools[p].worker_start_working(id);
                        self.work(p, id, true, false, w);
                    } else {
                        let _ = self.pools[p].worker_enter_idle(id, Duration::ZERO);
                    }
                    return Some(());
                }
                w.push(Action::Manage { pool: p as u8, worker: self.spec_worker(p, id) });
                let new = self.pools[p].next_id();
                let flags = WORKER_PREP | if p == c.cpus { WORKER_UNBOUND } else { 0 };
                self.pools[p].workers.insert(new, WorkerState::new(flags, Duration::ZERO, false));
                self.managing[p] = Some((id, new));
            }
        }
        Some(())
    }

    /// `manager.rs` after the spawn: register the worker or give up.
    fn manage_end(&mut self, c: &Config, p: usize, w: &mut Vec<Action>) -> Option<()> {
        let (id, new) = self.managing[p].take()?;
        // The first worker always exists; with `creation_fails` every later
        // spawn fails.
        if !c.creation_fails {
            self.pools[p].nr_workers += 1;
            if let Some(worker) = self.pools[p].workers.get_mut(&new) {
                worker.registered = true;
            }
            let _ = self.pools[p].worker_enter_idle(new, Duration::ZERO);
            self.order[p].push(new);
            self.pools[p].manager_leave();
            w.push(Action::Create { pool: p as u8 });
            return self.decide(c, p, id, w);
        }
        self.pools[p].workers.remove(&new);
        self.pools[p].manager_leave();
        let _ = self.pools[p].worker_create_failed(true);
        self.failed(p, id, w)
    }

    /// After a failed creation: the manager works if work waits with
    /// nobody running, else goes back to idle.
    fn failed(&mut self, p: usize, id: WorkerId, w: &mut Vec<Action>) -> Option<()> {
        self.failures_left = self.failures_left.checked_sub(1)?;
        w.push(Action::CreateFails { pool: p as u8 });
        if self.pools[p].worker_recheck() {
            self.pools[p].worker_start_working(id);
            // The spec's CreateFails takes the first item itself.
            self.work(p, id, true, true, w);
        } else {
            let _ = self.pools[p].worker_enter_idle(id, Duration::ZERO);
        }
        Some(())
    }

    /// `worker.rs` steps 4-5: take items (scheduled first) until one runs,
    /// or stop and idle. `quiet_first`: the first take is part of the
    /// previous witness.
    fn work(&mut self, p: usize, id: WorkerId, mut first: bool, mut quiet: bool, w: &mut Vec<Action>) {
        let worker = self.spec_worker(p, id);
        loop {
            let (ent, scheduled) = match self.pools[p].next_scheduled(id) {
                Some(ent) => (ent, true),
                None => match self.pools[p].worker_next_item(first) {
                    Some(ent) => (ent, false),
                    None => {
                        self.pools[p].worker_stop_working(id);
                        let _ = self.pools[p].worker_enter_idle(id, Duration::ZERO);
                        return;
                    }
                },
            };
            first = false;
            let (pool, ran) = (p as u8, self.begin(p, id, ent));
            let action = match (scheduled, ran) {
                (true, _) => Action::StartScheduled { pool, worker },
                (false, true) => Action::Start { pool, worker },
                (false, false) => Action::Defer { pool, worker },
            };
            if !quiet {
                w.push(action);
            }
            quiet = false;
            if ran {
                return;
            }
        }
    }

    /// `process_one_work` up to the function: returns whether it runs here
    /// (else it was deferred to the worker running it).
    fn begin(&mut self, p: usize, id: WorkerId, ent: Ent) -> bool {
        let (begin, ent) = self.pools[p].item_begin(id, ent, false);
        let Some(ent) = ent.filter(|_| begin == Begin::Run) else { return false };
        let _ = self.pools[p].kick();
        self.items[ent.item].start(p, self.late_clear);
        self.exec.insert((p, id), Exec { ent, blocked_once: false, waits_for: 0 });
        true
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
            waits_for = self.items[n].queued;
        }
        self.exec.insert((p, id), Exec { blocked_once: true, waits_for, ..exec });
        let _ = self.pools[p].worker_sleeping(id);
    }

    /// The function returned: finish under the pool lock, then go on.
    fn finish(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) {
        let Some(exec) = self.exec.remove(&(p, id)) else { return };
        let worker = self.spec_worker(p, id);
        w.push(if worker == RESCUER {
            Action::RescueDone { wq: exec.ent.wq as u8 }
        } else {
            Action::Finish { pool: p as u8, worker }
        });
        let _ = self.items[exec.ent.item].finish(self.late_clear);
        self.pools[p].item_end(id, exec.ent.item);
        self.pwq_dec(p, exec.ent, true);
        if worker == RESCUER {
            self.rescue_loop(c, exec.ent.wq, w);
        } else {
            self.work(p, id, false, false, w);
        }
    }

    /// `rescuer.rs` `rescue`: scheduled items first, then while the pool
    /// needs it, its workqueue's items; then wake a worker and detach.
    fn rescue_loop(&mut self, _c: &Config, wq: usize, w: &mut Vec<Action>) {
        let Some(RescuerAt { pool: p, id: Some(id) }) = self.rescuers[wq].clone() else { return };
        let wq_n = wq as u8;
        loop {
            if let Some(ent) = self.pools[p].next_scheduled(id) {
                w.push(Action::RescueScheduled { wq: wq_n });
                if self.begin(p, id, ent) {
                    return;
                }
                continue;
            }
            if !self.pools[p].needs_rescue(self.pwqs[wq][p].nr_active()) {
                break;
            }
            let Some(ent) = self.pools[p].take_for_rescue(wq) else { break };
            let ran = self.begin(p, id, ent);
            w.push(if ran { Action::Rescue { wq: wq_n } } else { Action::RescueDefer { wq: wq_n } });
            if ran {
                return;
            }
        }
        let _ = self.pools[p].rescuer_leave();
        self.pools[p].workers.remove(&id);
        self.rescuers[wq] = None;
        w.push(Action::RescuerDetach { wq: wq_n });
    }
}
