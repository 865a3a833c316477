//! The witness: which spec actions a turn claims to be, read off the turn
//! and the trace events it recorded (the events the engine records, in
//! `cmwq::machine::trace`). Part of the abstraction, with `abstraction` in
//! `refine/mod.rs`: it maps machine transitions to spec transitions and
//! changes no state.

use super::machine::Step;
use crate::spec::{Action, RESCUER};
use cmwq::machine::pool::{WorkerId, WORKER_RESCUER};
use cmwq::machine::trace::Event;
use cmwq::plain::{PlainSystem, Waiter};
use std::collections::BTreeMap;

/// The workers of pool `p` the spec has: in creation order, those that
/// have not retired (a retired worker leaves the spec's list).
pub fn live(m: &PlainSystem, p: usize) -> Vec<WorkerId> {
    let pool = m.pools()[p].pool();
    m.order(p).iter().copied().filter(|&id| pool.worker(id).is_some_and(|w| !w.die())).collect()
}

/// The spec's number for worker `id` of pool `p`, among `live`.
fn number(m: &PlainSystem, p: usize, id: WorkerId, live: &[WorkerId]) -> u8 {
    if m.pools()[p].pool().worker(id).is_some_and(|w| w.flags() & WORKER_RESCUER != 0) {
        return RESCUER;
    }
    live.iter().position(|&x| x == id).map_or(RESCUER - 1, |n| n as u8)
}

/// The spec's number for worker `id` of pool `p`.
pub fn spec_worker(m: &PlainSystem, p: usize, id: WorkerId) -> u8 {
    number(m, p, id, &live(m, p))
}

/// What the witness needs from before the turn: the action the turn is by
/// itself (the caller's operation, or the item's program), the attached
/// rescuers, by (pool, id), with their workqueue, each pool's workers
/// as the spec numbers them (kept up to date event by event: a worker
/// retired or created in the turn renumbers the ones after it), and for
/// a waiter's turn, the waiter (a drain that flushes again replaces its
/// ticket: the spec's `FlushTicket`; no trace event records a flush).
pub struct Before {
    first: Option<Action>,
    rescuers: BTreeMap<(usize, WorkerId), u8>,
    live: Vec<Vec<WorkerId>>,
    waiter: Option<(usize, Waiter)>,
}

/// A plain `queue` that spread (QU3): the spec's `Queue` is free to name
/// any CPU, and names the one whose pool the machine chose (where the
/// instance went, unless it went to the pool where the item runs: then the
/// spec redirects it there from any CPU). Only a bound workqueue's pools
/// are CPUs'.
pub fn chosen_cpu(actions: &mut [Action], events: &[Event], cpus: usize) {
    let Some(Action::Queue { item, cpu }) = actions.first_mut() else { return };
    let queued_on = events.iter().find_map(|event| match *event {
        Event::Queued { item: queued, pool, .. } if queued == usize::from(*item) && pool < cpus => Some(pool),
        _ => None,
    });
    if let Some(pool) = queued_on {
        *cpu = pool as u8;
    }
}

impl Before {
    /// Reads `m` before `step`.
    pub fn of(m: &PlainSystem, step: Step) -> Self {
        let small = |v: usize| v as u8;
        let rescuers = m.rescuers().iter().enumerate();
        let rescuers = rescuers.filter_map(|(wq, r)| r.and_then(|r| Some(((r.pool, r.id?), small(wq))))).collect();
        let live = (0..m.pools().len()).map(|p| live(m, p)).collect();
        let waiter = match step {
            Step::Return { n } => m.waiters().get(n).map(|&w| (n, w)),
            _ => None,
        };
        let mut before = Before { first: None, rescuers, live, waiter };
        let by = |pool: usize, id: WorkerId, worker: fn(u8, u8) -> Action, rescuer: fn(u8) -> Action| match before
            .rescuers
            .get(&(pool, id))
        {
            Some(&wq) => rescuer(wq),
            None => worker(small(pool), spec_worker(m, pool, id)),
        };
        let first = match step {
            Step::Queue { item, cpu } => Action::Queue { item: small(item), cpu: small(cpu) },
            Step::Cancel { item } => Action::Cancel { item: small(item), sync: false },
            Step::CancelSync { item } => Action::Cancel { item: small(item), sync: true },
            Step::FlushWork { item } => Action::FlushWork { item: small(item) },
            Step::FlushWq { wq } => Action::FlushWq { wq: small(wq) },
            Step::Destroy { .. } => Action::Destroy,
            Step::Return { n } => Action::Return { waiter: small(n) },
            Step::Block { pool, id } => {
                by(pool, id, |pool, worker| Action::Block { pool, worker }, |wq| Action::RescueBlock { wq })
            }
            Step::Unblock { pool, id } if !before.rescuers.contains_key(&(pool, id)) => {
                Action::Unblock { pool: small(pool), worker: spec_worker(m, pool, id) }
            }
            // Never a rescuer's: `SleepsFor` and `SpinsFor` items have none
            // (`Config::validate`).
            Step::Sleep { pool, id } => Action::Sleep { pool: small(pool), worker: spec_worker(m, pool, id) },
            Step::Spin { pool, id } => Action::Spin { pool: small(pool), worker: spec_worker(m, pool, id) },
            Step::Finish { pool, id } => {
                by(pool, id, |pool, worker| Action::Finish { pool, worker }, |wq| Action::RescueDone { wq })
            }
            Step::MaydayTimer { pool } => Action::Mayday { pool: small(pool) },
            Step::RescuerPop { wq } => Action::RescuerAttach { wq: small(wq) },
            Step::CpuDown => Action::CpuDown,
            Step::CpuUp => Action::CpuUp,
            _ => return before,
        };
        before.first = Some(first);
        before
    }

    /// The actions: the turn's own (if it took effect), then what its
    /// events show the machine did. A failed creation's pass is part of
    /// the spec's `CreateFails`, so its first start or deferral is too.
    pub fn witness(mut self, m: &PlainSystem, returned: bool, events: &[Event]) -> Vec<Action> {
        let took_effect = match self.first {
            Some(Action::Return { .. }) => returned,
            Some(Action::Mayday { .. }) => events.iter().any(|e| matches!(e, Event::Maydays { .. })),
            Some(Action::RescuerAttach { .. }) => events.iter().any(|e| matches!(e, Event::RescuerPop { .. })),
            _ => true,
        };
        let mut actions: Vec<Action> = self.first.filter(|_| took_effect).into_iter().collect();
        // DR4 found the workqueue not empty and DR3 flushed again: the
        // drain's waiter took the next ticket (a new round).
        if let Some((n, before @ Waiter::Destroy { .. })) = self.waiter.filter(|_| !returned) {
            if m.waiters().get(n) != Some(&before) {
                actions.push(Action::FlushTicket { waiter: n as u8 });
            }
        }
        let mut absorb = false;
        for event in events {
            let (action, failed) = self.of_event(m, event);
            match action {
                Some(Action::Start { .. } | Action::Defer { .. }) if absorb => absorb = false,
                Some(action) => {
                    absorb = failed;
                    actions.push(action);
                }
                None => {}
            }
        }
        actions
    }

    /// The spec's number for worker `id` of pool `pool` now.
    fn number(&self, m: &PlainSystem, pool: usize, id: WorkerId) -> u8 {
        number(m, pool, id, &self.live[pool])
    }

    /// One event as a spec action; true with `CreateFails`.
    fn of_event(&mut self, m: &PlainSystem, event: &Event) -> (Option<Action>, bool) {
        let small = |v: usize| v as u8;
        let rescuer = |s: &Self, pool: usize, worker: WorkerId| s.rescuers.get(&(pool, worker)).copied();
        let action = match *event {
            Event::RescuerAttach { wq, pool, worker } => {
                self.rescuers.insert((pool, worker), small(wq));
                None
            }
            Event::Started { pool, worker, scheduled, .. } => Some(match (rescuer(self, pool, worker), scheduled) {
                (Some(wq), true) => Action::RescueScheduled { wq },
                (Some(wq), false) => Action::Rescue { wq },
                (None, true) => Action::StartScheduled { pool: small(pool), worker: self.number(m, pool, worker) },
                (None, false) => Action::Start { pool: small(pool), worker: self.number(m, pool, worker) },
            }),
            Event::Deferred { pool, worker, .. } => Some(match rescuer(self, pool, worker) {
                Some(wq) => Action::RescueDefer { wq },
                None => Action::Defer { pool: small(pool), worker: self.number(m, pool, worker) },
            }),
            Event::Manage { pool, worker } => {
                Some(Action::Manage { pool: small(pool), worker: self.number(m, pool, worker) })
            }
            Event::Created { pool, worker } => {
                self.live[pool].push(worker);
                Some(Action::Create { pool: small(pool) })
            }
            Event::CreateFailed { pool, at_limit: false, .. } => {
                return (Some(Action::CreateFails { pool: small(pool) }), true)
            }
            Event::Retired { pool, worker } => {
                let w = self.number(m, pool, worker);
                self.live[pool].retain(|&x| x != worker);
                Some(Action::Retire { pool: small(pool), worker: w })
            }
            Event::RescuerDetach { wq, .. } => Some(Action::RescuerDetach { wq: small(wq) }),
            Event::SeenAsleep { pool, worker } => {
                Some(Action::Detect { pool: small(pool), worker: self.number(m, pool, worker) })
            }
            Event::SeenRunning { pool, worker } => {
                Some(Action::Undetect { pool: small(pool), worker: self.number(m, pool, worker) })
            }
            Event::SeenHogging { pool, worker } => {
                Some(Action::Hog { pool: small(pool), worker: self.number(m, pool, worker) })
            }
            _ => None,
        };
        (action, false)
    }
}
