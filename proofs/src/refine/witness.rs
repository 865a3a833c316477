//! The witness: which spec actions a step of the executor claims to be,
//! read off the step, the machine's outcome and its effects. Part of the
//! abstraction (with `abstraction` in `refine/mod.rs`): it maps machine
//! transitions to spec transitions and changes no state.

use super::machine::{Step, Sys};
use crate::spec::{Action, RESCUER};
use cmwq::machine::effect::Effect;
use cmwq::machine::pass::Pass;
use cmwq::machine::pool::{WorkerId, WORKER_RESCUER};
use cmwq::machine::rescue::Rescue;

/// The spec's number for worker `id` of pool `p`.
pub fn spec_worker(m: &Sys, p: usize, id: WorkerId) -> u8 {
    if m.pools[p].pool().worker(id).is_some_and(|w| w.flags() & WORKER_RESCUER != 0) {
        return RESCUER;
    }
    m.order[p].iter().position(|&x| x == id).map_or(RESCUER - 1, |n| n as u8)
}

/// The actions a step is before any outcome: the caller's operation, or
/// what the executor does (block, unblock, finish) by the item's program.
pub fn of_step(m: &Sys, step: Step) -> Vec<Action> {
    let small = |v: usize| v as u8;
    let rescuer_wq = |p: usize, id: WorkerId| m.exec.get(&(p, id)).map_or(0, |e| small(e.ent.wq));
    let by_worker =
        |p: usize, id: WorkerId, of_worker: fn(u8, u8) -> Action, of_rescuer: fn(u8) -> Action| match spec_worker(
            m, p, id,
        ) {
            RESCUER => of_rescuer(rescuer_wq(p, id)),
            worker => of_worker(small(p), worker),
        };
    let action = match step {
        Step::Queue { item, cpu } => Action::Queue { item: small(item), cpu: small(cpu) },
        Step::Cancel { item } => Action::Cancel { item: small(item), sync: false },
        Step::CancelSync { item } => Action::Cancel { item: small(item), sync: true },
        Step::FlushWork { item } => Action::FlushWork { item: small(item) },
        Step::FlushWq { wq } => Action::FlushWq { wq: small(wq) },
        Step::Destroy { .. } => Action::Destroy,
        Step::Return { n } => Action::Return { waiter: small(n) },
        Step::Block { pool, id } => {
            by_worker(pool, id, |pool, worker| Action::Block { pool, worker }, |wq| Action::RescueBlock { wq })
        }
        Step::Unblock { pool, id } if spec_worker(m, pool, id) != RESCUER => {
            Action::Unblock { pool: small(pool), worker: spec_worker(m, pool, id) }
        }
        Step::Finish { pool, id } => {
            by_worker(pool, id, |pool, worker| Action::Finish { pool, worker }, |wq| Action::RescueDone { wq })
        }
        Step::MaydayTimer { pool } => Action::Mayday { pool: small(pool) },
        Step::RescuerPop { wq } => Action::RescuerAttach { wq: small(wq) },
        Step::CpuDown => Action::CpuDown,
        Step::CpuUp => Action::CpuUp,
        _ => return vec![],
    };
    vec![action]
}

/// A worker's pass: a deferral per [`Effect::Deferred`], then the item
/// it starts.
pub fn of_pass<E>(m: &Sys, p: usize, id: WorkerId, pass: &Pass<E>, fx: &[Effect]) -> Vec<Action> {
    let (pool, worker) = (p as u8, spec_worker(m, p, id));
    let mut actions: Vec<Action> =
        fx.iter().filter(|e| matches!(e, Effect::Deferred { .. })).map(|_| Action::Defer { pool, worker }).collect();
    if let Pass::Run { scheduled, .. } = *pass {
        actions.push(if scheduled { Action::StartScheduled { pool, worker } } else { Action::Start { pool, worker } });
    }
    actions
}

/// A manager's spawn returned.
pub fn created(p: usize, created: bool) -> Action {
    if created {
        Action::Create { pool: p as u8 }
    } else {
        Action::CreateFails { pool: p as u8 }
    }
}

/// A rescuer's R2: its deferrals, then the item it runs or its leaving.
pub fn of_rescue<E>(wq: usize, next: &Rescue<E>, fx: &[Effect]) -> Vec<Action> {
    let wq = wq as u8;
    let mut actions: Vec<Action> =
        fx.iter().filter(|e| matches!(e, Effect::Deferred { .. })).map(|_| Action::RescueDefer { wq }).collect();
    actions.push(match *next {
        Rescue::Run { scheduled: true, .. } => Action::RescueScheduled { wq },
        Rescue::Run { .. } => Action::Rescue { wq },
        Rescue::Detached => Action::RescuerDetach { wq },
    });
    actions
}
