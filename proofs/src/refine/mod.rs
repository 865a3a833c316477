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
//!    lists, mayday lists, rescuers, who waits, and `flush_workqueue`'s
//!    colours: [`Colors`]) equals the spec state's (a step with no
//!    witness must leave it unchanged: a stutter);
//! 3. PROGRESS: where the spec state owes a pool a way forward (C1's
//!    premise: an item waits, the pool is unmanaged or fewer than its
//!    concurrency target run in it),
//!    the machine has a step that can take it (a woken worker, a new
//!    worker's first pass, the manager, a rescuer): simulation alone
//!    accepts a machine that does less than the spec allows;
//! 4. liveness under weak fairness (`fair.rs`, over the graph of pairs):
//!    no fair cycle of pairs (nor a pair where no fair step is enabled)
//!    keeps a queued item from running or a waiter from returning; so a
//!    machine that forgets to wake a worker fails too, not only one that
//!    does wrong. The fairness classes are the machine's threads
//!    ([`Class`]).
//!
//! Seeded bugs in the machine (`SeededBits`) make the check fail:
//! `tests/refine.rs`.

pub mod machine;
pub mod witness;

use crate::fair::{self, Fair, Lasso, Options};
use crate::spec::{Config, Pending, Rescuer, State, Worker};
use cmwq::machine::flush::FlushWait;
use cmwq::machine::pool::WORKER_CPU_INTENSIVE;
use cmwq::machine::pwq::{Pwq, NR_COLORS};
use cmwq::machine::section::PlainEntry;
use cmwq::machine::work::Location;
use cmwq::machine::SeededBits;
use cmwq::plain::{PlainSystem, Rescuing, Waiter};
use machine::{Step, Sys};
use stateright::{Model, Property};
use std::collections::VecDeque;

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
    /// Per workqueue, its flush colours (see [`Colors`]).
    pub colors: Vec<Colors>,
    /// Per item, its instances' colours.
    pub item_colors: Vec<ItemColors>,
}

/// An item's colour of its pending instance and of its running one
/// (`None`: no such instance).
pub type ItemColors = (Option<u8>, Option<u8>);

/// What a caller waits in; a `flush_workqueue` and a destroy's drain
/// with their tickets (the drain's current round; `None` while every
/// colour is taken, which the machine's executor never shows: there the
/// call is not yet made).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Waits {
    FlushWork(u8),
    CancelSync(u8),
    FlushWq(u8, Option<u8>),
    Destroy(u8, Option<u8>),
}

/// One workqueue's `flush_workqueue` colours in a canonical form: the
/// spec's `WqFlush` (`colors.rs`) and the machine's `FlushTickets`,
/// `FlushSignal` and pool-workqueue counts (`machine/flush.rs`,
/// `machine/pwq.rs`) both map to it.
///
/// - The spec keeps one colour for new instances per workqueue, the
///   machine one per pool-workqueue (FW2 flips each in turn): per pool,
///   the spec's repeated.
/// - In-flight counts as (colour, count) for each colour with instances:
///   the spec counts `colors` colours, the machine `NR_COLORS` (only the
///   first `colors` ever used).
/// - The head's marks: the spec's `marked[p]` as the head's colour, the
///   machine's `flush_color` of pool-workqueue `p` (which it sets only
///   where that colour is in flight, and clears when it empties, as the
///   spec).
/// - The head: the spec completes a head within the step that empties
///   its last marked pool (`color_leave`: `head_done`, the next head
///   started and, while its colour is in flight nowhere, done too: the
///   cascade). The machine records only that the head is complete
///   (`FlushSignal`: `FlushWait::Drive`), and its flusher does the rest
///   (FW6) when it wakes (`Step::Return`). So where the machine's head is
///   complete, nothing marked and not yet driven, the abstraction runs
///   the machine's FW6 (`PlainSystem::drive_flush`) on a copy first.
///
/// - Tickets in the spec's canonical form (`Config::canonical_tickets`):
///   a waiter's done ticket as the one before the head, and every ticket
///   counted from a multiple of the colours (the machine's are absolute).
/// - A destroyed workqueue (its drain returned): the machine has taken
///   its pool-workqueues away (DS2), so it has no colour per pool any
///   more; the spec keeps its counts (all empty). Both map to no pools,
///   with the tickets still compared (a later `flush_workqueue` of it
///   takes one and is done at once in both).
///
/// A dying workqueue's colours are compared like any other's: the spec's
/// destroy drains as the machine's (and the kernel's `drain_workqueue`)
/// does, a flush ticket per round (`model.rs` `destroy`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Colors {
    /// The next ticket to hand out; the head (the oldest not done).
    pub next: u8,
    pub head: u8,
    /// Per pool: the colour new instances get.
    pub work_color: Vec<u8>,
    /// Per pool: (colour, instances in flight) for each colour with some.
    pub in_flight: Vec<Vec<(u8, u8)>>,
    /// Per pool: the colour the head still waits for there.
    pub marked: Vec<Option<u8>>,
}

/// The spec's colours of `wq`, and of each item's instances.
fn spec_colors(c: &Config, s: &State) -> (Vec<Colors>, Vec<ItemColors>) {
    let colors = s.flush.iter().enumerate().map(|(wq, f)| {
        // Destroyed: dying, and its drain returned (see [`Colors`]).
        let destroyed = s.dying[wq] && !s.waiters.iter().any(|w| w.destroy == Some(wq as u8));
        let pools = if destroyed { 0 } else { f.in_flight.len() };
        let in_flight = f.in_flight.iter().map(|counts| nonzero(counts.iter().map(|&n| usize::from(n))));
        let marked = f.marked.iter().map(|&m| m.then(|| c.color_of(f.head)));
        let work_color = vec![f.work_color; pools];
        let (in_flight, marked) = (in_flight.take(pools).collect(), marked.take(pools).collect());
        Colors { next: f.next, head: f.head, work_color, in_flight, marked }
    });
    let items = s.items.iter().map(|it| {
        let pending = (it.pending != Pending::No).then_some(it.color);
        (pending, it.running.is_some().then_some(it.run_color))
    });
    (colors.collect(), items.collect())
}

/// (colour, count) for each colour with a count.
fn nonzero(counts: impl Iterator<Item = usize>) -> Vec<(u8, u8)> {
    counts.enumerate().filter(|&(_, n)| n > 0).map(|(color, n)| (color as u8, n as u8)).collect()
}

/// The machine's colours of `wq` (see [`Colors`]), and the tickets of
/// its waiters on `wq`, by waiter, both in the spec's canonical form.
fn machine_colors(c: &Config, m: &PlainSystem, wq: usize) -> (Colors, Vec<(usize, u8)>) {
    let (tickets, signal) = m.flush_state(wq);
    let head = tickets.head();
    let nothing_marked = m.pools().iter().filter_map(|p| p.pwq(wq)).all(|q| q.flush_color().is_none());
    if head != tickets.next() && signal.poll(head) == FlushWait::Drive && nothing_marked {
        // FW6 still to come (the spec did it in the step that completed
        // the head): the machine's own FW6, on a copy.
        let mut driven = m.clone();
        driven.drive_flush(wq, head);
        return read_colors(c, &driven, wq);
    }
    read_colors(c, m, wq)
}

/// As the spec's `Config::canonical_tickets`: a waiter's done ticket as
/// the one before the head, every ticket counted from a multiple of the
/// colours.
fn read_colors(c: &Config, m: &PlainSystem, wq: usize) -> (Colors, Vec<(usize, u8)>) {
    let tickets = m.flush_state(wq).0;
    let (next, head) = (tickets.next(), tickets.head());
    let held: Vec<(usize, u64)> = m
        .waiters()
        .iter()
        .enumerate()
        .filter_map(|(n, w)| match *w {
            Waiter::FlushWq { wq: x, ticket } | Waiter::Destroy { wq: x, ticket } if x == wq => {
                Some((n, if ticket < head { head - 1 } else { ticket }))
            }
            _ => None,
        })
        .collect();
    let colors = u64::from(c.colors);
    let base = held.iter().map(|&(_, t)| t).fold(head, u64::min) / colors * colors;
    let pwqs: Vec<&Pwq<usize>> = m.pools().iter().filter_map(|p| p.pwq(wq)).collect();
    let in_flight = pwqs.iter().map(|q| nonzero((0..NR_COLORS as u8).map(|color| q.in_flight(color)))).collect();
    let marked = pwqs.iter().map(|q| q.flush_color()).collect();
    let work_color = pwqs.iter().map(|q| q.work_color()).collect();
    let (next, head) = ((next - base) as u8, (head - base) as u8);
    let held = held.into_iter().map(|(n, t)| (n, (t - base) as u8)).collect();
    (Colors { next, head, work_color, in_flight, marked }, held)
}

/// The machine's colour of each item's pending and running instance.
fn machine_item_colors(c: &Config, m: &PlainSystem) -> Vec<ItemColors> {
    let mut colors: Vec<ItemColors> = vec![(None, None); c.items.len()];
    for (i, work) in m.items().iter().enumerate() {
        let Location::Queued { pool } = *work.location() else { continue };
        let section = &m.pools()[pool];
        let inactive = section.pwq(c.items[i].0).and_then(|q| q.inactive().find(|x| x.item == i).map(|x| x.color));
        let lists =
            std::iter::once(section.pool().worklist()).chain(section.pool().workers().values().map(|w| w.scheduled()));
        let active = lists.flat_map(|list| list.iter()).find(|e| e.item == i).map(|e| e.color);
        colors[i].0 = inactive.or(active);
    }
    for entry in m.running().values() {
        colors[entry.item].1 = Some(entry.color);
    }
    colors
}

/// The spec state's shape.
pub fn shape(c: &Config, s: &State) -> Shape {
    let (colors, item_colors) = spec_colors(c, s);
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
                (_, Some(wq), _) => Waits::FlushWq(wq, w.ticket),
                (_, _, Some(wq)) => Waits::Destroy(wq, w.ticket),
                _ => Waits::FlushWork(w.targets.first().map_or(u8::MAX, |t| t.0)),
            })
            .collect(),
        dying: s.dying.clone(),
        colors,
        item_colors,
    }
}

/// The abstraction function: the machine state as a spec shape.
pub fn abstraction(c: &Config, sys: &Sys) -> Shape {
    let m = &sys.plain;
    let (colors, held): (Vec<Colors>, Vec<Vec<(usize, u8)>>) =
        (0..c.wqs.len()).map(|wq| machine_colors(c, m, wq)).unzip();
    let ticket = |wq: usize, n: usize| held[wq].iter().find(|&&(x, _)| x == n).map(|&(_, t)| t);
    let (sections, pools) = (m.pools(), m.pools().len());
    let small = |v: usize| v as u8;
    let pwq = |wq: usize, p: usize| sections[p].pwq(wq);
    let mut items: Vec<(Pending, Option<(u8, u8)>)> = vec![(Pending::No, None); c.items.len()];
    for (i, work) in m.items().iter().enumerate() {
        if let Location::Queued { pool } = *work.location() {
            let inactive = pwq(c.items[i].0, pool).is_some_and(|pwq| pwq.inactive().any(|x| x.item == i));
            items[i].0 = if inactive { Pending::Inactive(small(pool)) } else { Pending::Active(small(pool)) };
        }
    }
    for (&(p, id), entry) in m.running() {
        items[entry.item].1 = Some((small(p), witness::spec_worker(m, p, id)));
    }
    let list = |queue: &VecDeque<PlainEntry>| queue.iter().map(|e| small(e.item)).collect::<Vec<u8>>();
    let (mut workers, mut scheduled) = (Vec::new(), Vec::new());
    for (p, section) in sections.iter().enumerate() {
        let (mut ws, mut ss) = (Vec::new(), Vec::new());
        // Retired workers have left the spec's list.
        for id in witness::live(m, p) {
            let state = section.pool().worker(id);
            ws.push(match (state, m.running().get(&(p, id))) {
                (Some(w), Some(entry)) => Worker::Running {
                    item: small(entry.item),
                    blocked: w.sleeping(),
                    detected: w.detected(),
                    hog: w.flags() & WORKER_CPU_INTENSIVE != 0,
                },
                _ if m.managing(p).is_some_and(|(manager, _)| manager == id) => Worker::Managing,
                _ => Worker::Idle,
            });
            ss.push(state.map_or(vec![], |w| list(w.scheduled())));
        }
        workers.push(ws);
        scheduled.push(ss);
    }
    let rescuer = |r: &Option<Rescuing>| {
        let r = r.as_ref()?;
        let running = r.id.and_then(|id| m.running().get(&(r.pool, id))).map(|e| small(e.item));
        let deferred = r.id.and_then(|id| sections[r.pool].pool().worker(id)).map_or(vec![], |w| list(w.scheduled()));
        Some(Rescuer { pool: small(r.pool), item: running, scheduled: deferred })
    };
    let per_pwq = |f: &dyn Fn(&Pwq<usize>) -> u8| -> Vec<Vec<u8>> {
        (0..c.wqs.len()).map(|wq| (0..pools).map(|p| pwq(wq, p).map_or(0, f)).collect()).collect()
    };
    Shape {
        worklists: sections.iter().map(|p| list(p.pool().worklist())).collect(),
        workers,
        scheduled,
        offline: sections.iter().map(|p| p.pool().disassociated()).collect(),
        items,
        active: per_pwq(&|pwq| small(pwq.nr_active())),
        inactive: (0..c.wqs.len())
            .map(|wq| {
                (0..pools)
                    .map(|p| pwq(wq, p).map_or(vec![], |q| q.inactive().map(|x| small(x.item)).collect()))
                    .collect()
            })
            .collect(),
        maydays: m.maydays().iter().map(|list| list.iter().map(|&p| small(p)).collect()).collect(),
        rescuers: m.rescuers().iter().map(rescuer).collect(),
        waiters: m
            .waiters()
            .iter()
            .enumerate()
            .map(|(n, w)| match *w {
                Waiter::Flush { item, .. } => Waits::FlushWork(small(item)),
                Waiter::CancelSync { item } => Waits::CancelSync(small(item)),
                Waiter::FlushWq { wq, .. } => Waits::FlushWq(small(wq), ticket(wq, n)),
                Waiter::Destroy { wq, .. } => Waits::Destroy(small(wq), ticket(wq, n)),
            })
            .collect(),
        dying: (0..c.wqs.len()).map(|wq| m.dying(wq)).collect(),
        colors,
        item_colors: machine_item_colors(c, m),
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
    /// New workers' first passes interleave with everything else, as in
    /// the engine (off: a new worker runs only once woken, a subset of
    /// the engine's orders that keeps large configurations quick).
    pub first_passes: bool,
    /// Each `Queue` is a plain `queue` from a thread outside the system's
    /// workers, running on the CPU the step names: the machine chooses the
    /// pool (QU3 spreads it to a less loaded CPU), and the spec's `Queue`
    /// names the CPU it chose. Off: each names its CPU (`queue_on`).
    pub spread: bool,
}

/// The property names.
pub const REFINES: &str = "every machine step is a spec step or a stutter";
pub const PROGRESS: &str = "where the spec owes a pool a way forward (C1 C4 H2), the machine has one";
pub const LIVE: &str = "under weak fairness of the machine's threads every queued item runs, every wait returns";

impl Model for Refinement {
    type State = Pair;
    type Action = Step;

    fn init_states(&self) -> Vec<Pair> {
        let mut machine = Sys::new(&self.config, self.bugs);
        machine.first_passes = self.first_passes;
        machine.spread = self.spread;
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
            Property::always(PROGRESS, |r: &Refinement, p: &Pair| r.way_forward(p)),
        ]
    }
}

impl Refinement {
    /// PROGRESS: in every pool where the spec state owes a way forward
    /// (C1's premise), one of the machine's threads of that pool can take
    /// the waiting item or create a worker: a woken worker's pass, a new
    /// worker's first pass, the manager's spawn returning, or a rescuer.
    /// Simulation alone (REFINES) cannot see a machine that does less than
    /// the spec allows; LIVE sees it only if the item never runs, and after
    /// `cpu_down` the item waits only until the blocker finishes.
    fn way_forward(&self, pair: &Pair) -> bool {
        pair.broken.is_some() || self.pool_without_way_forward(pair).is_none()
    }

    /// The first pool the spec owes a way forward that the machine has no
    /// step for.
    fn pool_without_way_forward(&self, pair: &Pair) -> Option<usize> {
        let m = &pair.machine.plain;
        let mut steps = Vec::new();
        pair.machine.steps(&self.config, &mut steps);
        (0..pair.spec.pools.len()).find(|&p| {
            self.config.owes_way_forward(&pair.spec, p)
                && !steps.iter().any(|step| match *step {
                    Step::Wake { pool, .. } | Step::FirstPass { pool, .. } | Step::ManageEnd { pool } => pool == p,
                    // A rescuer serves the pool first on its list, or the
                    // one it is attached to.
                    Step::RescuerPop { wq } => m.maydays()[wq].iter().next() == Some(&p),
                    Step::RescuerRun { wq } => m.rescuers()[wq].as_ref().is_some_and(|r| r.pool == p),
                    _ => false,
                })
        })
    }
}

/// A fairness class of the refinement: one of the machine's threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A worker (a rescuer attached to a pool too): its first pass, its
    /// passes when woken, its item's blocking, unblocking and finish.
    Worker { pool: usize, id: cmwq::machine::pool::WorkerId },
    /// A pool's manager's spawn returning.
    Manager { pool: usize },
    /// A pool's mayday timer.
    Mayday { pool: usize },
    /// A pool's trustee (its CPU offline).
    Trustee { pool: usize },
    /// A workqueue's rescuer thread: taking a pool off its list, attaching.
    Rescuer { wq: usize },
    /// A waiter waking (oldest first, as `Step::Return`).
    Waiter { n: usize },
    /// The blocking monitor's reads and reports of one worker (sleeps and
    /// hogs).
    Monitor { pool: usize, id: cmwq::machine::pool::WorkerId },
}

impl Fair for Refinement {
    type Class = Class;

    /// The user's turns and the idle cull have no class (the user may
    /// stop; progress may not depend on a worker retiring).
    fn class(&self, _: &Pair, step: &Step) -> Option<Class> {
        Some(match *step {
            Step::Queue { .. }
            | Step::Cancel { .. }
            | Step::CancelSync { .. }
            | Step::FlushWork { .. }
            | Step::FlushWq { .. }
            | Step::Destroy { .. }
            | Step::CpuDown
            | Step::CpuUp
            | Step::IdleCull { .. } => return None,
            Step::Return { n } => Class::Waiter { n },
            Step::FirstPass { pool, id }
            | Step::Wake { pool, id }
            | Step::Block { pool, id }
            | Step::Unblock { pool, id }
            | Step::Sleep { pool, id }
            | Step::Spin { pool, id }
            | Step::Finish { pool, id } => Class::Worker { pool, id },
            Step::Probe { pool, id }
            | Step::Report { pool, id }
            | Step::ProbeHog { pool, id }
            | Step::ReportHog { pool, id } => Class::Monitor { pool, id },
            Step::ManageEnd { pool } => Class::Manager { pool },
            Step::MaydayTimer { pool } => Class::Mayday { pool },
            Step::Trustee { pool } => Class::Trustee { pool },
            Step::RescuerPop { wq } | Step::RescuerRun { wq } => Class::Rescuer { wq },
        })
    }

    /// The spec has work left, in a pair that refines so far and that no
    /// bound of the machine's exploration cuts.
    fn pending(&self, p: &Pair) -> bool {
        p.broken.is_none() && !spec_done(&p.spec) && !p.machine.cut(&self.config)
    }
}

fn check_shape(c: &Config, m: &Sys, s: &State, what: &str) -> Option<String> {
    let (machine, spec) = (abstraction(c, m), shape(c, s));
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
    /// The first failure: property, the steps leading to it (a shortest
    /// path for REFINES; the lasso's prefix and one turn of its cycle for
    /// LIVE), and what broke.
    pub failure: Option<(&'static str, Vec<Step>, String)>,
    /// LIVE's counterexample, when it fails.
    pub lasso: Option<Lasso<Step>>,
}

impl Refinement {
    /// Explores every reachable pair breadth first (deduplicated by 64-bit
    /// hashes, as stateright does), then searches for fair cycles.
    pub fn check(self) -> RefinementReport {
        // A step that does not refine ends the check (LIVE is judged only
        // on a graph that refines throughout).
        let options = Options { stop_at_violation: true, ..Options::default() };
        let graph = match fair::explore(&self, options) {
            Ok(graph) => graph,
            Err(e) => {
                return RefinementReport { states: e.limit, failure: Some((LIVE, vec![], e.to_string())), lasso: None }
            }
        };
        let states = graph.states();
        if let Some((name, init, path)) = graph.violations().into_iter().next() {
            let last = fair::replay(&self, init, &path);
            let what = match (name, last) {
                (REFINES, Some(Pair { broken: Some(broken), .. })) => broken,
                (PROGRESS, Some(pair)) => match self.pool_without_way_forward(&pair) {
                    Some(p) => format!(
                        "after {} steps the spec owes pool {p} a way forward and the machine has none",
                        path.len()
                    ),
                    None => "the replay of the path diverged".into(),
                },
                _ => "the replay of the path diverged".into(),
            };
            return RefinementReport { states, failure: Some((name, path, what)), lasso: None };
        }
        let Some(lasso) = graph.fair_lasso() else { return RefinementReport { states, failure: None, lasso: None } };
        let what = if lasso.cycle.is_empty() {
            format!("stopped with work left after {} steps", lasso.prefix.len())
        } else {
            format!("a fair cycle of {} steps, after {}, with work left", lasso.cycle.len(), lasso.prefix.len())
        };
        let path = lasso.prefix.iter().chain(&lasso.cycle).copied().collect();
        RefinementReport { states, failure: Some((LIVE, path, what)), lasso: Some(lasso) }
    }
}
