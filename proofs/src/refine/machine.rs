//! The refinement's executor: which turns of [`PlainSystem`] (the
//! machine's steps composed as the engine's threads run them, in
//! `cmwq::plain`) may happen next, under the spec's budgets and the items'
//! programs, and the spec actions each one claims to be (its witness, read
//! off the turn's trace events by [`witness`](super::witness)). It decides
//! nothing of CMWQ: every rule and every composition of rules is the
//! core's. Timers fire whenever armed (time is abstract: every idle
//! worker is cold). Where the configuration detects blocking, the
//! blocking monitor reads a worker's run and whether its thread sleeps
//! (`Probe`, without any lock), and reports it later under the pool lock
//! (`Report`: PS9, PS10), so that a report may be out of date; where it
//! sees CPU hogs, it reads the run of a worker whose item spins
//! (`ProbeHog`) and reports the hog later (`ReportHog`: PS11). Not here,
//! as not in the spec: delayed work, the create-retry timer, a retired
//! worker's and the rescuer's exit.

use super::witness;
use crate::spec::{Action, Behaviour, Config};
use cmwq::machine::pool::{WorkerId, WORKER_NOT_RUNNING, WORKER_RESCUER};
use cmwq::machine::queue::Target;
use cmwq::machine::work::Location;
use cmwq::machine::SeededBits;
use cmwq::plain::{PlainSystem, Rescuing, Topology, WqShape};
use cmwq::RESCUER_BATCH;
use core::time::Duration;
use std::collections::BTreeMap;

const NOW: Duration = Duration::ZERO;

/// The machine's bounds (see [`Budget`]): mayday firings that call a
/// rescuer, failed creations, retirements.
pub const MAYDAYS: u8 = 3;
pub const FAILURES: u8 = 2;
pub const RETIRES: u8 = 2;

/// An executor's place in its item's program: it blocked (or, a
/// `SleepsFor` item, went to sleep) already; the instance a `WaitsFor(n)`
/// or `SleepsFor(n)` item waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prog {
    pub blocked_once: bool,
    pub waits_for: u64,
}

/// The exploration's budgets: the user's, as the spec's, and bounds on
/// the machine's own steps that take a fresh worker number (the machine
/// numbers workers with a counter that never goes back: a creation, failed
/// or not, and a rescuer's attach each take one), so that its state graph
/// is finite where the spec's has a cycle (a creation failing and tried
/// again, a mayday re-armed, workers retiring and created again). A state
/// where a bound refuses a step is not judged for liveness
/// ([`Sys::cut`]).
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

/// The system and the programs of the items it runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sys {
    pub plain: PlainSystem,
    pub progs: BTreeMap<(usize, WorkerId), Prog>,
    pub left: Budget,
    /// New workers run a first pass of their own (see `Refinement`).
    pub first_passes: bool,
    /// `Step::Queue` is a plain `queue` from a thread outside the workers
    /// on that CPU (see `Refinement`).
    pub spread: bool,
    /// The blocking monitor's reports not yet made, per worker (pool, id):
    /// the run it read and whether the thread slept (`Step::Probe`).
    pub watch: BTreeMap<(usize, WorkerId), (u64, bool)>,
    /// The monitor's hog reports not yet made, per worker (pool, id): the
    /// run it read (`Step::ProbeHog`).
    pub hogs: BTreeMap<(usize, WorkerId), u64>,
}

/// One thread's turn: the user's calls; `Return`, waiter `n` (oldest
/// first) wakes and returns, drives its flush or drains again;
/// `FirstPass`, a new worker's first pass (WP1 as its thread starts);
/// `Wake`, a woken idle worker's pass (WP1); `ManageEnd`, the manager's
/// spawn returns (CR2, WP2); an item's blocking, unblocking and finish,
/// and `Sleep`, a `SleepsFor` item going to sleep outside any blocking
/// section, and `Spin`, a `SpinsFor` item beginning its busy wait; the
/// blocking monitor's `Probe`, which reads a worker's run and whether its
/// thread sleeps (no lock), and `Report`, which reports it (PS9 / PS10),
/// and `ProbeHog` / `ReportHog`, the same for a thread seen using the CPU
/// past the hog threshold (PS11); the timers, the trustee, a rescuer's
/// turns and hotplug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Queue { item: usize, cpu: usize },
    Cancel { item: usize },
    CancelSync { item: usize },
    FlushWork { item: usize },
    FlushWq { wq: usize },
    Destroy { wq: usize },
    Return { n: usize },
    FirstPass { pool: usize, id: WorkerId },
    Wake { pool: usize, id: WorkerId },
    ManageEnd { pool: usize },
    Block { pool: usize, id: WorkerId },
    Unblock { pool: usize, id: WorkerId },
    Sleep { pool: usize, id: WorkerId },
    Spin { pool: usize, id: WorkerId },
    Probe { pool: usize, id: WorkerId },
    Report { pool: usize, id: WorkerId },
    ProbeHog { pool: usize, id: WorkerId },
    ReportHog { pool: usize, id: WorkerId },
    Finish { pool: usize, id: WorkerId },
    MaydayTimer { pool: usize },
    IdleCull { pool: usize },
    Trustee { pool: usize },
    RescuerPop { wq: usize },
    RescuerRun { wq: usize },
    CpuDown,
    CpuUp,
}

impl Sys {
    /// The configuration's system, as the engine builds it.
    pub fn new(c: &Config, bugs: SeededBits) -> Self {
        let wqs = (0..c.wqs.len()).map(|wq| WqShape {
            unbound: c.wqs[wq].unbound || c.wqs[wq].ordered,
            max_active: usize::from(c.max_active(wq)),
            rescuer: c.wqs[wq].mem_reclaim,
        });
        let (items, rescuer_batch) = (c.items.iter().map(|&(wq, _)| wq).collect(), RESCUER_BATCH);
        let (max_workers, flush_colors) = (usize::from(c.max_workers), usize::from(c.colors));
        let (cpus, unbound_concurrency) = (c.cpus, c.target(c.cpus));
        let topo =
            Topology { cpus, unbound_concurrency, wqs: wqs.collect(), items, max_workers, rescuer_batch, flush_colors };
        let (hotplug, retires) = (if c.hotplug { 2 } else { 0 }, if c.retire { RETIRES } else { 0 });
        // Without a rescuer a mayday calls nobody: the timer stays quiet.
        let maydays = if c.wqs.iter().any(|wq| wq.mem_reclaim) { MAYDAYS } else { 0 };
        let (queues, cancels, flushes, failures) = (c.queues, c.cancels, c.flushes, FAILURES);
        let left = Budget { queues, cancels, flushes, hotplug, maydays, failures, retires, destroy: c.destroy };
        let plain = PlainSystem::new(topo, bugs);
        let (progs, watch, hogs) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        Sys { plain, progs, left, first_passes: true, spread: false, watch, hogs }
    }

    /// The turns that may happen now.
    pub fn steps(&self, c: &Config, out: &mut Vec<Step>) {
        let (m, left) = (&self.plain, &self.left);
        for item in 0..c.items.len() {
            if left.queues > 0 {
                (0..c.cpus).for_each(|cpu| out.push(Step::Queue { item, cpu }));
            }
            if left.cancels > 0 {
                out.push(Step::Cancel { item });
                // A second `cancel_sync` would wait for the first one.
                if *m.items()[item].location() != Location::Cancelling {
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
            match m.rescuers()[wq] {
                None if !m.maydays()[wq].is_empty() => out.push(Step::RescuerPop { wq }),
                Some(Rescuing { id: None, .. }) => out.push(Step::RescuerRun { wq }),
                _ => {}
            }
        }
        if left.destroy {
            out.push(Step::Destroy { wq: 0 });
        }
        out.extend((0..m.waiters().len()).filter(|&n| m.waiter_ready(n)).map(|n| Step::Return { n }));
        if self.first_passes {
            out.extend(m.fresh().iter().map(|&(pool, id)| Step::FirstPass { pool, id }));
        }
        for (pool, section) in m.pools().iter().enumerate() {
            let state = section.pool();
            for (&id, w) in state.workers() {
                if w.woken() && state.idle().contains(&id) {
                    out.push(Step::Wake { pool, id });
                }
            }
            let others = [
                (m.managing(pool).is_some(), Step::ManageEnd { pool }),
                (state.mayday_timer_armed() && left.maydays > 0, Step::MaydayTimer { pool }),
                (state.idle_timer_armed(), Step::IdleCull { pool }),
                (m.trustee(pool), Step::Trustee { pool }),
            ];
            out.extend(others.into_iter().filter(|&(enabled, _)| enabled).map(|(_, step)| step));
        }
        for (&(pool, id), entry) in m.running() {
            let prog = self.progs.get(&(pool, id)).copied().unwrap_or_default();
            let behaviour = c.items[entry.item].1;
            if m.pools()[pool].pool().worker(id).is_some_and(|w| w.sleeping()) {
                if self.may_proceed(behaviour, prog) {
                    out.push(Step::Unblock { pool, id });
                }
            } else if !prog.blocked_once && matches!(behaviour, Behaviour::SleepsFor(_)) {
                out.push(Step::Sleep { pool, id });
            } else if !prog.blocked_once && matches!(behaviour, Behaviour::SpinsFor(_)) {
                out.push(Step::Spin { pool, id });
            } else if !prog.blocked_once && behaviour != Behaviour::Plain {
                out.push(Step::Block { pool, id });
            } else if self.may_proceed(behaviour, prog) {
                out.push(Step::Finish { pool, id });
            }
        }
        if c.detect {
            self.monitor_steps(c, out);
        }
        if c.hog {
            self.hog_steps(c, out);
        }
        if left.hotplug == 2 && c.cpus >= 2 {
            out.push(Step::CpuDown);
        }
        if left.hotplug == 1 {
            out.push(Step::CpuUp);
        }
    }

    /// Whether a bound of [`Budget`] refuses a step here (the machine would
    /// go on without it): an armed mayday timer with no firing left, or a
    /// creation, cull or trustee turn that would spend a bound used up.
    pub fn cut(&self, c: &Config) -> bool {
        let (m, left) = (&self.plain, &self.left);
        let pools = 0..m.pools().len();
        let rescuers = c.wqs.iter().any(|wq| wq.mem_reclaim);
        if rescuers && left.maydays == 0 && pools.clone().any(|p| m.pools()[p].pool().mayday_timer_armed()) {
            return true;
        }
        let mut steps = Vec::new();
        self.steps(c, &mut steps);
        steps.into_iter().any(|step| {
            let bounded = match step {
                // Without `creation_fails` or `retire` the configuration,
                // not a bound, rules failures or retirements out.
                Step::ManageEnd { .. } => c.creation_fails && left.failures == 0,
                Step::IdleCull { .. } | Step::Trustee { .. } => c.retire && left.retires == 0,
                _ => false,
            };
            bounded && self.clone().apply(c, step).is_none()
        })
    }

    /// Whether `step` can change anything: a timer or trustee that finds
    /// nothing to do only re-arms or looks.
    pub fn productive(&self, c: &Config, step: Step) -> bool {
        let (Step::MaydayTimer { .. } | Step::IdleCull { .. } | Step::Trustee { .. }) = step else { return true };
        self.clone().apply(c, step).is_some_and(|w| !w.is_empty())
    }

    fn may_proceed(&self, behaviour: Behaviour, prog: Prog) -> bool {
        let Some(n) = behaviour.awaited() else { return true };
        let item = &self.plain.items()[n];
        !prog.blocked_once || item.instance_done(prog.waits_for) || item.running().is_some_and(|r| r >= prog.waits_for)
    }

    /// The monitor's turns: a report made of any worker it read, and a
    /// read of a worker executing an item (not a rescuer: it never counts
    /// as running) whose report would change something: asleep and not
    /// detected, or running and detected. A thread sleeps inside a
    /// blocking section, and in a `SleepsFor` item's wait until what it
    /// waits for started; a plain item never sleeps.
    fn monitor_steps(&self, c: &Config, out: &mut Vec<Step>) {
        let m = &self.plain;
        out.extend(self.watch.keys().map(|&(pool, id)| Step::Report { pool, id }));
        for (&(pool, id), entry) in m.running() {
            let Some(worker) = m.pools()[pool].pool().worker(id) else { continue };
            if worker.flags() & WORKER_RESCUER != 0 || self.watch.contains_key(&(pool, id)) {
                continue;
            }
            if self.asleep(c, pool, id, entry.item) != worker.detected() {
                out.push(Step::Probe { pool, id });
            }
        }
    }

    /// The monitor's hog turns: a report made of any worker it read, and a
    /// read of a worker whose item spins (a `SpinsFor` item that began its
    /// busy wait, until it returns: the CPU time it used stays used) and
    /// that counts as running (else the report would change nothing).
    fn hog_steps(&self, c: &Config, out: &mut Vec<Step>) {
        let m = &self.plain;
        out.extend(self.hogs.keys().map(|&(pool, id)| Step::ReportHog { pool, id }));
        for (&(pool, id), entry) in m.running() {
            let Some(worker) = m.pools()[pool].pool().worker(id) else { continue };
            let spins = matches!(c.items[entry.item].1, Behaviour::SpinsFor(_))
                && self.progs.get(&(pool, id)).is_some_and(|prog| prog.blocked_once);
            let counts = worker.flags() & WORKER_NOT_RUNNING == 0 && !worker.sleeping() && !worker.detected();
            if spins && counts && !self.hogs.contains_key(&(pool, id)) {
                out.push(Step::ProbeHog { pool, id });
            }
        }
    }

    /// Whether the thread of executor `id`, running `item`, sleeps.
    fn asleep(&self, c: &Config, pool: usize, id: WorkerId, item: usize) -> bool {
        let prog = self.progs.get(&(pool, id)).copied().unwrap_or_default();
        let in_section = self.plain.pools()[pool].pool().worker(id).is_some_and(|w| w.sleeping());
        let behaviour = c.items[item].1;
        in_section || matches!(behaviour, Behaviour::SleepsFor(_)) && !self.may_proceed(behaviour, prog)
    }

    /// Takes `step`; returns the spec actions it claims to be, or `None` if
    /// it would exceed an exploration bound.
    pub fn apply(&mut self, c: &Config, step: Step) -> Option<Vec<Action>> {
        let before = witness::Before::of(&self.plain, step);
        // C10, C11: a report made of an earlier run of its worker is no spec
        // step (the machine must ignore it: rules M32, M34).
        let now = |pool: usize, id: WorkerId| self.plain.pools()[pool].pool().worker(id).map(|w| w.run());
        let stale = match step {
            Step::Report { pool, id } => {
                self.watch.get(&(pool, id)).is_some_and(|&(run, _)| now(pool, id) != Some(run))
            }
            Step::ReportHog { pool, id } => self.hogs.get(&(pool, id)).is_some_and(|&run| now(pool, id) != Some(run)),
            _ => false,
        };
        let spread = self.spread;
        let m = &mut self.plain;
        let mut returned = false;
        match step {
            Step::Queue { item, cpu } => {
                let target = if spread { Target::Spread { cpu, probe: 0 } } else { Target::On(cpu) };
                let _ = m.queue(item, target, false);
            }
            Step::Cancel { item } => drop(m.cancel(item)),
            Step::CancelSync { item } => drop(m.cancel_sync(item)?),
            Step::FlushWork { item } => m.flush_work(item),
            Step::FlushWq { wq } => m.flush_wq(wq)?,
            Step::Destroy { wq } => m.destroy(wq)?,
            Step::Return { n } => returned = m.waiter_wakes(n),
            Step::Wake { pool, id } => m.wake(pool, id, NOW),
            Step::FirstPass { pool, id } => m.first_pass(pool, id, NOW),
            Step::ManageEnd { pool } => {
                let (manager, new) = m.managing(pool)?;
                m.spawned(pool, new, Some(manager), !c.creation_fails, NOW);
            }
            Step::Block { pool, id } | Step::Sleep { pool, id } | Step::Spin { pool, id } => {
                // A `WaitsFor(n)` (`SleepsFor(n)`, `SpinsFor(n)`) item first
                // queues `n` on its own CPU (chained); only a blocking
                // section tells the machine.
                let entry = m.running().get(&(pool, id)).copied()?;
                let mut prog = Prog { blocked_once: true, waits_for: 0 };
                if let Some(n) = c.items[entry.item].1.awaited() {
                    let _ = m.queue(n, Target::On(if pool < c.cpus { pool } else { 0 }), true);
                    prog.waits_for = m.items()[n].queued();
                }
                self.progs.insert((pool, id), prog);
                if let Step::Block { .. } = step {
                    let _ = m.block(pool, id);
                }
            }
            Step::Probe { pool, id } => {
                let entry = m.running().get(&(pool, id)).copied()?;
                let run = m.pools()[pool].pool().worker(id)?.run();
                let asleep = self.asleep(c, pool, id, entry.item);
                self.watch.insert((pool, id), (run, asleep));
            }
            Step::Report { pool, id } => {
                let (run, asleep) = self.watch.remove(&(pool, id))?;
                self.plain.seen(pool, id, run, asleep);
            }
            Step::ProbeHog { pool, id } => {
                let run = m.pools()[pool].pool().worker(id)?.run();
                self.hogs.insert((pool, id), run);
            }
            Step::ReportHog { pool, id } => {
                let run = self.hogs.remove(&(pool, id))?;
                self.plain.seen_hogging(pool, id, run);
            }
            Step::Unblock { pool, id } => m.unblock(pool, id),
            Step::Finish { pool, id } => {
                self.progs.remove(&(pool, id));
                m.finish(pool, id, NOW);
            }
            Step::MaydayTimer { pool } => m.mayday_timer(pool),
            Step::IdleCull { pool } => drop(m.idle_cull(pool, NOW, Duration::ZERO)),
            Step::Trustee { pool } => m.trustee_check(pool),
            Step::RescuerPop { wq } => m.rescuer_pop(wq),
            Step::RescuerRun { wq } => m.rescuer_attach(wq, NOW),
            Step::CpuDown | Step::CpuUp => drop(m.hotplug(0, step == Step::CpuDown)),
        }
        let m = &mut self.plain;
        let _ = m.take_notices(); // the state says what may run next
        let events = m.take_events();
        let mut actions = before.witness(&self.plain, returned, &events);
        if stale {
            actions.retain(|action| {
                !matches!(action, Action::Detect { .. } | Action::Undetect { .. } | Action::Hog { .. })
            });
        }
        if spread {
            witness::chosen_cpu(&mut actions, &events, c.cpus);
        }
        self.spend(&actions)?;
        Some(actions)
    }

    /// The budgets the spec's actions spend (as the spec spends them).
    fn spend(&mut self, actions: &[Action]) -> Option<()> {
        let left = &mut self.left;
        for action in actions {
            let budget = match action {
                Action::Queue { .. } => &mut left.queues,
                Action::Cancel { .. } => &mut left.cancels,
                Action::FlushWork { .. } | Action::FlushWq { .. } => &mut left.flushes,
                Action::CpuDown | Action::CpuUp => &mut left.hotplug,
                Action::CreateFails { .. } => &mut left.failures,
                Action::Retire { .. } => &mut left.retires,
                Action::Mayday { .. } => &mut left.maydays,
                Action::Destroy => {
                    left.destroy = false;
                    continue;
                }
                _ => continue,
            };
            *budget = budget.checked_sub(1)?;
        }
        Some(())
    }
}
