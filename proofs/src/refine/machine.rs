//! The refinement's executor: the machine's steps (`core/src/machine`)
//! over plain values, interleaved as the engine's threads can interleave
//! them. Each [`Step`] is what one engine thread does between two points
//! where another can run: one critical section, or the few sections of an
//! operation that no other thread can tell apart from one (named below).
//! It calls the steps the engine calls, in the engine's order, carries out
//! their effects as `pool_workqueue.rs` does, and decides nothing itself;
//! [`witness`](super::witness) names the spec actions each step claims to
//! be, and `refine/mod.rs` checks the claim.
//!
//! Merged sections: queueing's claim, choice and insert (Q2-Q5; the item
//! is PENDING-owned throughout, so no other thread can see between them);
//! an item's finish and its pool's end (W4: a `flush_work` may return
//! after both); a flush's F1-F3 and its F6 (flush mutex held); destroy's
//! drain check and X2 (nothing of the workqueue runs or can be queued by
//! then). Timers fire whenever armed (time is abstract: every idle worker
//! is cold). Not here: delayed work, the create-retry timer, the rescuer's
//! exit (the spec has none of them).

use super::witness::{self, spec_worker};
use crate::spec::{Action, Behaviour, Config, RESCUER};
use cmwq::machine::create::Creating;
use cmwq::machine::effect::Effect;
use cmwq::machine::flush::{flush_begin, flush_heads_done, FlushLocks, FlushSignal, FlushTickets, FlushWait};
use cmwq::machine::mayday::{MaydayList, RescuerStep};
use cmwq::machine::pass::Pass;
use cmwq::machine::pool::{WorkerId, WORKER_UNBOUND};
use cmwq::machine::pwq::Pwq;
use cmwq::machine::queue::{accepts, cancel_grab_queued, choose_pool, queue_insert, redirect, Target};
use cmwq::machine::rescue::Rescue;
use cmwq::machine::section::{PlainEntry, PoolSection, PwqFlags};
use cmwq::machine::work::{Grab, Location, WorkState};
use cmwq::machine::SeededBits;
use core::time::Duration;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A queued instance as the driver's entry: item, workqueue, colour.
pub type Ent = PlainEntry;
const NOW: Duration = Duration::ZERO;

/// What an executor (a worker or an attached rescuer) runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Exec {
    pub ent: Ent,
    pub blocked_once: bool,
    /// For a `WaitsFor(n)` item that blocked: the instance of `n` it waits for.
    pub waits_for: u64,
}

/// A caller waiting: `flush_work` for an instance, `cancel_sync`,
/// `flush_workqueue` or destroy's drain for a flush ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Waiter {
    Flush { item: usize, instance: u64 },
    CancelSync { item: usize },
    FlushWq { wq: usize, ticket: u64 },
    Destroy { wq: usize, ticket: u64 },
}

/// A rescuer that took a pool off its list; `id` once it attached there;
/// `taken`: items taken this turn (the batch count).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RescuerAt {
    pub pool: usize,
    pub id: Option<WorkerId>,
    pub taken: usize,
}

/// The exploration's budgets, as the spec's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    pub queues: u8,
    pub cancels: u8,
    pub flushes: u8,
    pub hotplug: u8,
    pub maydays: u8,
    pub failures: u8,
    pub retires: u8,
    pub destroy: bool,
}

/// The machine's state, as the engine's locks hold it, and its threads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sys {
    pub pools: Vec<PoolSection<Ent>>,
    pub items: Vec<WorkState<usize, usize>>,
    pub maydays: Vec<MaydayList<usize>>,
    pub rescuers: Vec<Option<RescuerAt>>,
    /// Each workqueue's flush mutex and signal lock.
    pub flush: Vec<(FlushTickets, FlushSignal)>,
    /// Each workqueue's control lock: being destroyed (Q1).
    pub dying: Vec<bool>,
    /// A trustee is installed on the pool (H1 to H3).
    pub trustee: Vec<bool>,
    /// What each executor runs, by (pool, worker id).
    pub exec: BTreeMap<(usize, WorkerId), Exec>,
    /// A manager between C1 and C2: (manager, the new worker's id).
    pub managing: Vec<Option<(WorkerId, WorkerId)>>,
    /// Worker ids in the order they were registered (the spec's numbers).
    pub order: Vec<Vec<WorkerId>>,
    /// Callers waiting, oldest first.
    pub waiters: Vec<Waiter>,
    pub left: Budget,
    /// Seeded bugs of the driver, passed to the machine's rules as flags:
    /// `ClearPendingAfterRun`, `FlushWorkIgnoresRunning`, `CancelSyncSkipsWait`.
    pub late_clear: bool,
    pub flush_ignores_running: bool,
    pub cancel_sync_skips_wait: bool,
}

/// One thread's turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Queue {
        item: usize,
        cpu: usize,
    },
    Cancel {
        item: usize,
    },
    CancelSync {
        item: usize,
    },
    FlushWork {
        item: usize,
    },
    FlushWq {
        wq: usize,
    },
    Destroy {
        wq: usize,
    },
    /// Waiter `n` (oldest first) wakes: returns, drives its flush or drains again.
    Return {
        n: usize,
    },
    /// A woken idle worker runs (W1).
    Wake {
        pool: usize,
        id: WorkerId,
    },
    /// The manager's spawn returned (C2, W2).
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
    IdleCull {
        pool: usize,
    },
    Trustee {
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

/// A flush's locks over plain state (the executor holds them all).
struct Locks<'a> {
    pools: RefCell<&'a mut Vec<PoolSection<Ent>>>,
    signal: RefCell<&'a mut FlushSignal>,
}

impl FlushLocks<Ent> for Locks<'_> {
    fn each_pool(&self, f: impl FnMut(&mut PoolSection<Ent>)) {
        self.pools.borrow_mut().iter_mut().for_each(f);
    }
    fn with_signal<R>(&self, f: impl FnOnce(&mut FlushSignal) -> R) -> R {
        f(&mut self.signal.borrow_mut())
    }
    fn notify(&self) {}
}

impl Sys {
    /// Every pool with one idle worker, as the engine builds a system.
    pub fn new(c: &Config, bugs: SeededBits) -> Self {
        let (pools, wqs) = (c.cpus + 1, c.wqs.len());
        let sections = (0..pools).map(|p| {
            let mut section = PoolSection::new(bugs);
            // The engine's build: C1-C2 by a manager that is not a worker.
            let flags = if p == c.cpus { WORKER_UNBOUND } else { 0 };
            let _ = section.manager_enter();
            if let Creating::Spawn(id) = section.create_begin(usize::from(c.max_workers), flags, NOW) {
                section.create_end(id, true, NOW, &mut Vec::new());
            }
            section.manager_leave();
            for (wq, spec) in c.wqs.iter().enumerate() {
                let flags = PwqFlags { cpu_intensive: false, rescuer: spec.mem_reclaim };
                section.add_pwq(wq, Pwq::new(usize::from(c.max_active(wq)), 0, bugs), flags);
            }
            section
        });
        let bug = |b: cmwq::SeededBug| bugs & b.bit() != 0;
        Sys {
            pools: sections.collect(),
            items: vec![WorkState::default(); c.items.len()],
            maydays: (0..wqs).map(|_| MaydayList::new(bugs)).collect(),
            rescuers: vec![None; wqs],
            flush: vec![Default::default(); wqs],
            dying: vec![false; wqs],
            trustee: vec![false; pools],
            exec: BTreeMap::new(),
            managing: vec![None; pools],
            order: vec![vec![0]; pools],
            waiters: Vec::new(),
            left: Budget {
                queues: c.queues,
                cancels: c.cancels,
                flushes: c.flushes,
                hotplug: if c.hotplug { 2 } else { 0 },
                maydays: c.maydays,
                failures: c.failures,
                retires: if c.retire { 2 } else { 0 },
                destroy: c.destroy,
            },
            late_clear: bug(cmwq::SeededBug::ClearPendingAfterRun),
            flush_ignores_running: bug(cmwq::SeededBug::FlushWorkIgnoresRunning),
            cancel_sync_skips_wait: bug(cmwq::SeededBug::CancelSyncSkipsWait),
        }
    }

    /// Workqueue `wq`'s pool-workqueue on pool `p` (gone once destroyed).
    pub fn pwq(&self, wq: usize, p: usize) -> Option<&Pwq<usize>> {
        self.pools[p].pwq(wq)
    }

    /// The steps that may happen now.
    pub fn steps(&self, c: &Config, out: &mut Vec<Step>) {
        let left = &self.left;
        for item in 0..c.items.len() {
            if left.queues > 0 {
                (0..c.cpus).for_each(|cpu| out.push(Step::Queue { item, cpu }));
            }
            if left.cancels > 0 {
                out.push(Step::Cancel { item });
                // A second `cancel_sync` would wait for the first one.
                if *self.items[item].location() != Location::Cancelling {
                    out.push(Step::CancelSync { item });
                }
            }
            if left.flushes > 0 {
                out.push(Step::FlushWork { item });
            }
        }
        for wq in 0..c.wqs.len() {
            if left.flushes > 0 {
                out.push(Step::FlushWq { wq });
            }
            match &self.rescuers[wq] {
                None if !self.maydays[wq].is_empty() => out.push(Step::RescuerPop { wq }),
                Some(RescuerAt { id: None, .. }) => out.push(Step::RescuerRun { wq }),
                _ => {}
            }
        }
        if left.destroy {
            out.push(Step::Destroy { wq: 0 });
        }
        for (n, waiter) in self.waiters.iter().enumerate() {
            let ready = match *waiter {
                Waiter::Flush { item, instance } => self.items[item].instance_done(instance),
                Waiter::CancelSync { item } => self.items[item].cancel_sync_may_return(self.cancel_sync_skips_wait),
                Waiter::FlushWq { wq, ticket } | Waiter::Destroy { wq, ticket } => {
                    self.flush[wq].1.poll(ticket) != FlushWait::Wait
                }
            };
            if ready {
                out.push(Step::Return { n });
            }
        }
        for (pool, section) in self.pools.iter().enumerate() {
            let state = section.pool();
            for (&id, w) in state.workers() {
                if w.woken() && state.idle().contains(&id) {
                    out.push(Step::Wake { pool, id });
                }
            }
            if self.managing[pool].is_some() {
                out.push(Step::ManageEnd { pool });
            }
            if state.mayday_timer_armed() && left.maydays > 0 {
                out.push(Step::MaydayTimer { pool });
            }
            if state.idle_timer_armed() {
                out.push(Step::IdleCull { pool });
            }
            if self.trustee[pool] {
                out.push(Step::Trustee { pool });
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
        if left.hotplug == 2 && c.cpus >= 2 {
            out.push(Step::CpuDown);
        }
        if left.hotplug == 1 {
            out.push(Step::CpuUp);
        }
    }

    /// Whether `step` can change anything: a timer or trustee that finds
    /// nothing to do only re-arms or looks.
    pub fn productive(&self, c: &Config, step: Step) -> bool {
        let (Step::MaydayTimer { .. } | Step::IdleCull { .. } | Step::Trustee { .. }) = step else { return true };
        let mut next = self.clone();
        next.apply(c, step).is_some_and(|w| !w.is_empty())
    }

    fn may_proceed(&self, behaviour: Behaviour, exec: &Exec) -> bool {
        let Behaviour::WaitsFor(n) = behaviour else { return true };
        let item = &self.items[n];
        item.instance_done(exec.waits_for) || item.running().is_some_and(|r| r >= exec.waits_for)
    }

    /// Carries out `step`; returns the spec actions it claims to be, or
    /// `None` if it would exceed an exploration bound.
    pub fn apply(&mut self, c: &Config, step: Step) -> Option<Vec<Action>> {
        let mut w = witness::of_step(self, step);
        match step {
            Step::Queue { item, cpu } => {
                self.left.queues = self.left.queues.checked_sub(1)?;
                self.queue(c, item, cpu, false);
            }
            Step::Cancel { item } => {
                self.left.cancels = self.left.cancels.checked_sub(1)?;
                if self.grab(item, false) {
                    let _ = self.items[item].release();
                }
            }
            Step::CancelSync { item } => {
                self.left.cancels = self.left.cancels.checked_sub(1)?;
                if !self.grab(item, true) {
                } else if self.items[item].cancel_sync_may_return(self.cancel_sync_skips_wait) {
                    let _ = self.items[item].release();
                } else {
                    self.waiters.push(Waiter::CancelSync { item });
                }
            }
            Step::FlushWork { item } => {
                self.left.flushes = self.left.flushes.checked_sub(1)?;
                if let Some(instance) = self.items[item].flush_target(self.flush_ignores_running) {
                    self.waiters.push(Waiter::Flush { item, instance });
                }
            }
            Step::FlushWq { wq } => {
                self.left.flushes = self.left.flushes.checked_sub(1)?;
                // The flusher's wait (F5) is a section of its own.
                let ticket = self.flush_begin(wq)?;
                self.waiters.push(Waiter::FlushWq { wq, ticket });
            }
            Step::Destroy { wq } => {
                self.left.destroy = false;
                self.dying[wq] = true; // X1, then the drain (D3)
                let ticket = self.flush_begin(wq)?;
                self.waiters.push(Waiter::Destroy { wq, ticket });
            }
            Step::Return { n } => self.waiter_wakes(n, &mut w)?,
            Step::Wake { pool, id } => {
                let _ = self.pools[pool].take_wakeup(id);
                let mut fx = Vec::new();
                let pass = self.pools[pool].worker_woken(id, || NOW, &mut fx);
                self.carry_out(c, pool, id, pass, fx, &mut w)?;
            }
            Step::ManageEnd { pool } => self.manage_end(c, pool, &mut w)?,
            Step::Block { pool, id } => self.block(c, pool, id),
            Step::Unblock { pool, id } => self.pools[pool].worker_unblocked(id),
            Step::Finish { pool, id } => self.finish(c, pool, id, &mut w)?,
            Step::MaydayTimer { pool } => {
                let sent: usize = self.maydays.iter().map(MaydayList::len).sum();
                let mut fx = Vec::new();
                self.pools[pool].mayday_fired(&mut fx);
                self.effects(pool, fx, &mut w)?;
                if self.maydays.iter().map(MaydayList::len).sum::<usize>() == sent {
                    w.clear(); // nothing sent: only re-armed
                } else {
                    self.left.maydays -= 1;
                }
            }
            Step::IdleCull { pool } => {
                let mut fx = Vec::new();
                let _ = self.pools[pool].idle_cull_fired(NOW, Duration::ZERO, &mut fx);
                self.effects(pool, fx, &mut w)?;
            }
            Step::Trustee { pool } => {
                let mut fx = Vec::new();
                self.trustee[pool] = !self.pools[pool].trustee_check(&mut fx);
                self.effects(pool, fx, &mut w)?;
            }
            Step::RescuerPop { wq } => {
                let RescuerStep::Rescue(pool) = self.maydays[wq].next_step() else { return Some(vec![]) };
                self.rescuers[wq] = Some(RescuerAt { pool, id: None, taken: 0 });
            }
            Step::RescuerRun { wq } => {
                let pool = self.rescuers[wq].as_ref()?.pool;
                let flags = if pool == c.cpus { WORKER_UNBOUND } else { 0 };
                let id = self.pools[pool].rescuer_attach(flags, NOW);
                self.rescuers[wq] = Some(RescuerAt { pool, id: Some(id), taken: 0 });
                self.rescue_loop(wq, &mut w)?;
            }
            Step::CpuDown | Step::CpuUp => {
                let down = step == Step::CpuDown;
                self.left.hotplug -= 1;
                self.trustee[0] = down;
                let mut fx = Vec::new();
                if down {
                    self.pools[0].cpu_down(&mut fx)
                } else {
                    self.pools[0].cpu_up(&mut fx)
                }
                self.effects(0, fx, &mut w)?;
            }
        }
        Some(w)
    }

    /// Queueing (Q1-Q5), by the user or (`chained`) by one of the
    /// workqueue's own items.
    fn queue(&mut self, c: &Config, item: usize, cpu: usize, chained: bool) {
        let wq = c.items[item].0;
        if accepts(self.dying[wq], false, || chained).is_err() {
            return;
        }
        let Some(last) = self.items[item].try_claim() else { return };
        // The workqueue's pools: one per CPU, or the unbound pool (`c.cpus`).
        let unbound = c.wqs[wq].unbound || c.wqs[wq].ordered;
        let pool_of = |index: usize| if unbound { c.cpus } else { index };
        let index_of = |p: usize| if unbound { (p == c.cpus).then_some(0) } else { (p < c.cpus).then_some(p) };
        let chosen = choose_pool(unbound, c.cpus, Target::On(cpu), |_| true);
        let index = redirect(chosen, last.and_then(index_of), |i| self.pools[pool_of(i)].runs_for(item, wq));
        let pool = pool_of(index);
        let mut fx = Vec::new();
        let _ = queue_insert(&mut self.pools[pool], &mut self.items[item], wq, item, pool, &mut fx);
        let _ = self.effects(pool, fx, &mut Vec::new());
    }

    /// Cancelling's grab: PENDING (for good if `cancelling`), taking a
    /// queued instance off its pool. False if someone else owns it.
    fn grab(&mut self, item: usize, cancelling: bool) -> bool {
        match self.items[item].grab(cancelling) {
            Grab::Owned { .. } => true,
            Grab::Queued(pool) => {
                let mut fx = Vec::new();
                let (section, state) = (&mut self.pools[pool], &mut self.items[item]);
                let grabbed = cancel_grab_queued(section, state, item, cancelling, |&p| p == pool, &mut fx);
                let _ = self.effects(pool, fx, &mut Vec::new());
                grabbed
            }
            Grab::Busy | Grab::Cancelling => false,
        }
    }

    /// F1-F3 for workqueue `wq`; `None` when every colour is taken (the
    /// budgets never take that many).
    fn flush_begin(&mut self, wq: usize) -> Option<u64> {
        let (tickets, signal) = &mut self.flush[wq];
        let locks = Locks { pools: RefCell::new(&mut self.pools), signal: RefCell::new(signal) };
        flush_begin(tickets, wq, &locks).ok()
    }

    /// Waiter `n` runs again: F6 if its flush is the complete head; the
    /// drain checks each pool (D4) and removes the pool-workqueues (X2),
    /// or flushes again.
    fn waiter_wakes(&mut self, n: usize, w: &mut Vec<Action>) -> Option<()> {
        match self.waiters[n] {
            Waiter::FlushWq { wq, ticket } | Waiter::Destroy { wq, ticket } => {
                if self.flush[wq].1.poll(ticket) == FlushWait::Drive {
                    let (tickets, signal) = &mut self.flush[wq];
                    let locks = Locks { pools: RefCell::new(&mut self.pools), signal: RefCell::new(signal) };
                    flush_heads_done(tickets, ticket, wq, &locks);
                }
                if matches!(self.waiters[n], Waiter::Destroy { .. }) {
                    if !self.pools.iter().all(|p| p.pwq_is_empty(wq)) {
                        w.clear();
                        self.waiters[n] = Waiter::Destroy { wq, ticket: self.flush_begin(wq)? };
                        return Some(());
                    }
                    self.pools.iter_mut().for_each(|p| drop(p.remove_pwq_if_empty(wq)));
                }
            }
            Waiter::CancelSync { item } => drop(self.items[item].release()),
            Waiter::Flush { .. } => {}
        }
        self.waiters.remove(n);
        Some(())
    }

    /// Carries out what a pool step asked for, as the engine does; the
    /// spec sees retirements.
    fn effects(&mut self, p: usize, fx: Vec<Effect>, w: &mut Vec<Action>) -> Option<()> {
        for effect in fx {
            match effect {
                Effect::FlushColorDone(wq) => drop(self.flush[wq].1.pwq_flushed()),
                Effect::Mayday(wq) | Effect::MaydayAgain(wq) => drop(self.maydays[wq].send(p, |&x| x == p)),
                Effect::Retire(id) => {
                    self.left.retires = self.left.retires.checked_sub(1)?;
                    w.push(Action::Retire { pool: p as u8, worker: spec_worker(self, p, id) });
                }
                _ => {}
            }
        }
        Some(())
    }

    /// What a worker's pass ended in, as `worker.rs` carries it out.
    fn carry_out(
        &mut self,
        c: &Config,
        p: usize,
        id: WorkerId,
        pass: Pass<Ent>,
        fx: Vec<Effect>,
        w: &mut Vec<Action>,
    ) -> Option<()> {
        let mut actions = witness::of_pass(self, p, id, &pass, &fx);
        self.effects(p, fx, &mut actions)?;
        match pass {
            Pass::Run { entry, .. } => self.run(p, id, entry),
            Pass::Manage => {
                let flags = if p == c.cpus { WORKER_UNBOUND } else { 0 };
                match self.pools[p].create_begin(usize::from(c.max_workers), flags, NOW) {
                    Creating::AtLimit => {
                        let mut fx = Vec::new();
                        self.pools[p].create_at_limit(&mut fx);
                        let pass = self.pools[p].worker_managed(id, false, || NOW, &mut fx);
                        self.carry_out(c, p, id, pass, fx, &mut actions)?;
                    }
                    Creating::Spawn(new) => {
                        actions.push(Action::Manage { pool: p as u8, worker: spec_worker(self, p, id) });
                        self.managing[p] = Some((id, new));
                    }
                }
            }
            Pass::Idle | Pass::Exit => {}
        }
        w.extend(actions);
        Some(())
    }

    /// C2 after the spawn returned (the first worker always exists; with
    /// `creation_fails` every later spawn fails), then W2.
    fn manage_end(&mut self, c: &Config, p: usize, w: &mut Vec<Action>) -> Option<()> {
        let (id, new) = self.managing[p].take()?;
        let mut fx = Vec::new();
        let created = self.pools[p].create_end(new, !c.creation_fails, NOW, &mut fx);
        if created {
            self.order[p].push(new);
        } else {
            self.left.failures = self.left.failures.checked_sub(1)?;
        }
        w.push(witness::created(p, created));
        let pass = self.pools[p].worker_managed(id, created, || NOW, &mut fx);
        let from = w.len();
        self.carry_out(c, p, id, pass, fx, w)?;
        // The spec's `CreateFails` takes the first item itself.
        if !created && w.len() > from {
            w.remove(from);
        }
        Some(())
    }

    /// The item's own section before its function runs.
    fn run(&mut self, p: usize, id: WorkerId, ent: Ent) {
        self.items[ent.item].start(p, self.late_clear);
        self.exec.insert((p, id), Exec { ent, blocked_once: false, waits_for: 0 });
    }

    /// The running item blocks (S7); a `WaitsFor(n)` item first queues `n`
    /// on its own pool's CPU (chained queueing).
    fn block(&mut self, c: &Config, p: usize, id: WorkerId) {
        let Some(exec) = self.exec.get(&(p, id)).cloned() else { return };
        let mut waits_for = 0;
        if let Behaviour::WaitsFor(n) = c.items[exec.ent.item].1 {
            self.queue(c, n, if p < c.cpus { p } else { 0 }, true);
            waits_for = self.items[n].queued();
        }
        self.exec.insert((p, id), Exec { blocked_once: true, waits_for, ..exec });
        let _ = self.pools[p].worker_blocked(id, &mut Vec::new());
    }

    /// The function returned: the item's section, then the executor's
    /// (W4, or the rescuer's S5 and R2).
    fn finish(&mut self, c: &Config, p: usize, id: WorkerId, w: &mut Vec<Action>) -> Option<()> {
        let Exec { ent: Ent { item, wq, color }, .. } = self.exec.remove(&(p, id))?;
        let _ = self.items[item].finish(self.late_clear);
        let mut fx = Vec::new();
        if spec_worker(self, p, id) == RESCUER {
            self.pools[p].end(id, item, wq, color, &mut fx);
            self.effects(p, fx, w)?;
            return self.rescue_loop(wq, w);
        }
        let pass = self.pools[p].worker_finished(id, item, wq, color, || NOW, &mut fx);
        self.carry_out(c, p, id, pass, fx, w)
    }

    /// R2 while the rescuer runs items here, then R3.
    fn rescue_loop(&mut self, wq: usize, w: &mut Vec<Action>) -> Option<()> {
        let Some(RescuerAt { pool: p, id: Some(id), mut taken }) = self.rescuers[wq].clone() else { return Some(()) };
        let mut fx = Vec::new();
        let next = self.pools[p].rescuer_next(id, wq, &mut taken, cmwq::RESCUER_BATCH, &mut fx);
        w.extend(witness::of_rescue(wq, &next, &fx));
        self.effects(p, fx, w)?;
        match next {
            Rescue::Run { entry, .. } => {
                self.rescuers[wq] = Some(RescuerAt { pool: p, id: Some(id), taken });
                self.run(p, id, entry);
            }
            Rescue::Detached => self.rescuers[wq] = None,
        }
        Some(())
    }
}
