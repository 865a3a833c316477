//! Refinement: the pure machine of `cmwq` implements the spec.
//!
//! [`machine::Sys`] drives the machine one engine critical section at a
//! time, and each step names the spec actions it claims to be (its
//! witness). Exploring every reachable pair (machine state, spec state)
//! with stateright, every step is checked:
//!
//! 1. each witness action is enabled in the spec state, and is applied;
//! 2. the *abstraction* of the new machine state ([`abstraction`]: where
//!    each item is, who runs what, the workers, active counts, inactive
//!    lists, mayday lists, rescuers) equals the spec state's (a step with
//!    no witness must leave it unchanged: a stutter);
//! 3. where the machine can do nothing more, neither can the spec have
//!    work left: every queued item ran or was cancelled (so a machine that
//!    forgets to wake a worker fails too, not only one that does wrong).
//!
//! Seeded bugs in the machine (`SeededBits`) make the check fail:
//! `tests/refine.rs`.

pub mod machine;
pub mod witness;

use crate::spec::{Config, Pending, Rescuer, State, Worker};
use cmwq::machine::SeededBits;
use machine::{Step, Sys};
use stateright::{Checker, Model, Property};

/// A spec state's part that a machine state determines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub worklists: Vec<Vec<u8>>,
    pub workers: Vec<Vec<Worker>>,
    pub scheduled: Vec<Vec<Vec<u8>>>,
    pub offline: Vec<bool>,
    pub items: Vec<(Pending, Option<(u8, u8)>)>,
    pub active: Vec<Vec<u8>>,
    pub inactive: Vec<Vec<Vec<u8>>>,
    pub maydays: Vec<Vec<u8>>,
    pub rescuers: Vec<Option<Rescuer>>,
    /// Callers waiting, oldest first.
    pub waiters: Vec<Waits>,
    /// Workqueues being destroyed (the user's queueing refused).
    pub dying: Vec<bool>,
}

/// What a caller waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Waits {
    FlushWork(u8),
    CancelSync(u8),
    FlushWq(u8),
    Destroy(u8),
}

/// The spec state's shape.
pub fn shape(s: &State) -> Shape {
    Shape {
        worklists: s.pools.iter().map(|p| p.worklist.clone()).collect(),
        workers: s.pools.iter().map(|p| p.workers.clone()).collect(),
        scheduled: s.pools.iter().map(|p| p.scheduled.clone()).collect(),
        offline: s.pools.iter().map(|p| p.offline).collect(),
        items: s.items.iter().map(|it| (it.pending, it.running)).collect(),
        active: s.active.clone(),
        inactive: s.inactive.clone(),
        maydays: s.maydays.clone(),
        rescuers: s.rescuers.clone(),
        waiters: s
            .waiters
            .iter()
            .map(|w| match (w.cancel_sync, w.flush_wq, w.destroy) {
                (Some(item), _, _) => Waits::CancelSync(item),
                (_, Some(wq), _) => Waits::FlushWq(wq),
                (_, _, Some(wq)) => Waits::Destroy(wq),
                _ => Waits::FlushWork(w.targets.first().map_or(u8::MAX, |t| t.0)),
            })
            .collect(),
        dying: s.dying.clone(),
    }
}

/// The abstraction function: the machine state as a spec shape.
pub fn abstraction(c: &Config, m: &Sys) -> Shape {
    let pools = m.pools.len();
    let small = |v: usize| v as u8;
    let mut items: Vec<(Pending, Option<(u8, u8)>)> = vec![(Pending::No, None); c.items.len()];
    for (i, work) in m.items.iter().enumerate() {
        if let cmwq::machine::work::Location::Queued { pool } = *work.location() {
            let wq = c.items[i].0;
            let inactive = m.pwq(wq, pool).is_some_and(|pwq| pwq.inactive().any(|x| x.item == i));
            items[i].0 = if inactive { Pending::Inactive(small(pool)) } else { Pending::Active(small(pool)) };
        }
    }
    for (&(p, id), exec) in &m.exec {
        items[exec.ent.item].1 = Some((small(p), witness::spec_worker(m, p, id)));
    }
    let mut workers = Vec::new();
    let mut scheduled = Vec::new();
    for p in 0..pools {
        let mut ws = Vec::new();
        let mut ss = Vec::new();
        for &id in &m.order[p] {
            let state = m.pools[p].pool().worker(id);
            ws.push(match (state, m.exec.get(&(p, id))) {
                (None, _) => Worker::Gone,
                (Some(w), _) if w.die() => Worker::Gone,
                (_, Some(exec)) => {
                    Worker::Running { item: small(exec.ent.item), blocked: state.is_some_and(|w| w.sleeping()) }
                }
                _ if m.managing[p].is_some_and(|(mgr, _)| mgr == id) => Worker::Managing,
                _ => Worker::Idle,
            });
            ss.push(state.map_or(vec![], |w| w.scheduled().iter().map(|e| small(e.item)).collect()));
        }
        workers.push(ws);
        scheduled.push(ss);
    }
    let rescuers = m
        .rescuers
        .iter()
        .map(|r| {
            let r = r.as_ref()?;
            let running = r.id.and_then(|id| m.exec.get(&(r.pool, id))).map(|e| small(e.ent.item));
            let deferred = r.id.and_then(|id| m.pools[r.pool].pool().worker(id));
            let deferred = deferred.map_or(vec![], |w| w.scheduled().iter().map(|e| small(e.item)).collect());
            Some(Rescuer { pool: small(r.pool), item: running, scheduled: deferred })
        })
        .collect();
    Shape {
        worklists: m.pools.iter().map(|p| p.pool().worklist().iter().map(|e| small(e.item)).collect()).collect(),
        workers,
        scheduled,
        offline: m.pools.iter().map(|p| p.pool().disassociated()).collect(),
        items,
        active: (0..c.wqs.len())
            .map(|wq| (0..pools).map(|p| small(m.pwq(wq, p).map_or(0, |pwq| pwq.nr_active()))).collect())
            .collect(),
        inactive: (0..c.wqs.len())
            .map(|wq| {
                let list = |p| m.pwq(wq, p).map_or(vec![], |pwq| pwq.inactive().map(|x| small(x.item)).collect());
                (0..pools).map(list).collect()
            })
            .collect(),
        maydays: m.maydays.iter().map(|list| list.iter().map(|&p| small(p)).collect()).collect(),
        rescuers,
        waiters: m
            .waiters
            .iter()
            .map(|w| match *w {
                machine::Waiter::Flush { item, .. } => Waits::FlushWork(small(item)),
                machine::Waiter::CancelSync { item } => Waits::CancelSync(small(item)),
                machine::Waiter::FlushWq { wq, .. } => Waits::FlushWq(small(wq)),
                machine::Waiter::Destroy { wq, .. } => Waits::Destroy(small(wq)),
            })
            .collect(),
        dying: m.dying.clone(),
    }
}

/// A machine state and the spec state it is shown to implement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pair {
    pub machine: Sys,
    pub spec: State,
    /// The first broken check, in words.
    pub broken: Option<String>,
}

/// The refinement check of a configuration, with seeded bugs `bugs`.
pub struct Refinement {
    pub config: Config,
    pub bugs: SeededBits,
}

/// The property names.
pub const REFINES: &str = "every machine step is a spec step or a stutter";
pub const QUIESCENT: &str = "where the machine stops, every queued item ran";

impl Model for Refinement {
    type State = Pair;
    type Action = Step;

    fn init_states(&self) -> Vec<Pair> {
        let machine = Sys::new(&self.config, self.bugs);
        let spec = self.config.initial();
        let broken = check_shape(&self.config, &machine, &spec, "initial state");
        vec![Pair { machine, spec, broken }]
    }

    fn actions(&self, pair: &Pair, out: &mut Vec<Step>) {
        if pair.broken.is_none() {
            pair.machine.steps(&self.config, out);
        }
    }

    fn next_state(&self, last: &Pair, step: Step) -> Option<Pair> {
        let c = &self.config;
        let mut next = last.clone();
        let witness = next.machine.apply(c, step)?;
        let mut enabled = Vec::new();
        for action in &witness {
            enabled.clear();
            c.enabled(&next.spec, &mut enabled);
            if !enabled.contains(action) {
                next.broken = Some(format!("{step:?}: the spec does not allow {action:?} (witness {witness:?})"));
                return Some(next);
            }
            c.apply(&mut next.spec, *action);
        }
        next.broken = check_shape(c, &next.machine, &next.spec, &format!("{step:?} as {witness:?}"));
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(REFINES, |_, p: &Pair| p.broken.is_none()),
            Property::always(QUIESCENT, |m: &Refinement, p: &Pair| {
                let mut steps = Vec::new();
                p.machine.steps(&m.config, &mut steps);
                let stopped = steps.iter().all(|&step| !p.machine.productive(&m.config, step));
                !stopped || p.broken.is_some() || spec_done(&p.spec)
            }),
        ]
    }
}

fn check_shape(c: &Config, m: &Sys, s: &State, what: &str) -> Option<String> {
    let (machine, spec) = (abstraction(c, m), shape(s));
    (machine != spec).then(|| format!("after {what}: machine {machine:?} but spec {spec:?}"))
}

/// Every queued instance ran or was cancelled, and nothing runs.
fn spec_done(s: &State) -> bool {
    s.items.iter().all(|it| it.pending == Pending::No && it.running.is_none())
        && s.pools.iter().all(|p| p.workers.iter().all(|w| !matches!(w, Worker::Running { .. })))
        && s.rescuers.iter().flatten().all(|r| r.item.is_none())
        && s.waiters.is_empty()
}

/// The outcome of a refinement check.
#[derive(Debug)]
pub struct RefinementReport {
    pub states: usize,
    /// The first failure: property, the steps leading to it, and what broke.
    pub failure: Option<(&'static str, Vec<Step>, String)>,
}

impl Refinement {
    /// Explores every reachable pair breadth first.
    pub fn check(self) -> RefinementReport {
        let checker = self.checker().spawn_bfs().join();
        let states = checker.unique_state_count();
        for name in [REFINES, QUIESCENT] {
            if let Some(path) = checker.discovery(name) {
                let last = path.last_state().broken.clone().unwrap_or_else(|| "stopped with work left".into());
                return RefinementReport { states, failure: Some((name, path.into_actions(), last)) };
            }
        }
        RefinementReport { states, failure: None }
    }
}
