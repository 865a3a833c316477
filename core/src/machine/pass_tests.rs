//! Tests of a worker's pass (steps 1-5).

use super::*;
use crate::machine::effect::Effect;
use crate::machine::pool::{WorkerState, WORKER_PREP};
use crate::machine::pwq::Pwq;
use crate::machine::test_support::{pool_with_idle, Ent};

fn section(idle: usize) -> PoolSection<Ent> {
    let mut section = PoolSection::new(0, 1);
    section.state = pool_with_idle(idle, Duration::ZERO);
    section.add_pwq(0, Pwq::new(8, 0, 0), crate::machine::section::PwqFlags::default());
    section
}

fn now() -> Duration {
    Duration::ZERO
}

#[test]
fn a_woken_worker_runs_the_items_then_goes_idle() {
    let mut s = section(2);
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    let _ = s.insert(0, 8, &mut fx);
    let Pass::Run { entry, scheduled: false } = s.worker_woken(1, now, &mut fx) else { panic!("runs") };
    assert_eq!(entry.item, 7);
    assert_eq!(s.state.nr_running, 1, "working clears PREP");
    let Pass::Run { entry, .. } = s.worker_finished(1, 7, 0, entry.color, now, &mut fx) else {
        panic!("keeps working")
    };
    assert_eq!(entry.item, 8);
    assert_eq!(s.worker_finished(1, 8, 0, entry.color, now, &mut fx), Pass::Idle);
    assert_eq!(s.state.nr_running, 0);
    assert!(s.state.idle.contains(&1));
    assert!(s.holds_nothing());
}

#[test]
fn a_hint_without_work_sends_the_worker_back_to_idle() {
    let mut s = section(2);
    let mut fx = Vec::new();
    assert_eq!(s.worker_woken(1, now, &mut fx), Pass::Idle);
    assert!(s.state.idle.contains(&1));
}

#[test]
fn the_last_idle_worker_manages_then_works_even_if_creation_fails() {
    let mut s = section(1);
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    assert_eq!(s.worker_woken(0, now, &mut fx), Pass::Manage);
    let Pass::Run { entry, .. } = s.worker_managed(0, false, now, &mut fx) else { panic!("works anyway") };
    assert_eq!(entry.item, 7);
}

#[test]
fn an_item_running_on_another_worker_is_deferred_to_it() {
    let mut s = section(2);
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    let Pass::Run { entry: first, .. } = s.worker_woken(1, now, &mut fx) else { panic!("runs") };
    // Queued again while running (on the pool that runs it, rule M9), then
    // taken by the other worker, which defers it.
    let _ = s.insert(0, 7, &mut fx);
    s.state.update_worker(1, |w| w.sleeping = true);
    fx.clear();
    assert_eq!(s.worker_woken(0, now, &mut fx), Pass::Manage, "no spare left");
    let id = s.state.next_id();
    s.state.workers.insert(id, WorkerState::new(WORKER_PREP, Duration::ZERO, true));
    s.state.nr_workers += 1;
    s.enter_idle(id, Duration::ZERO, &mut fx);
    fx.clear();
    assert_eq!(s.worker_managed(0, true, now, &mut fx), Pass::Idle, "deferred, nothing else to take");
    assert!(fx.contains(&Effect::Deferred { worker: 0, item: 7 }));
    s.state.update_worker(1, |w| w.sleeping = false);
    let Pass::Run { entry, scheduled: true } = s.worker_finished(1, 7, 0, first.color, now, &mut fx) else {
        panic!("the running worker takes its scheduled instance")
    };
    assert_eq!(entry.item, 7);
}

#[test]
fn a_retired_worker_exits_instead_of_going_idle() {
    let mut s = section(2);
    let mut fx = Vec::new();
    assert!(s.state.retire_worker(0));
    assert_eq!(s.worker_woken(0, now, &mut fx), Pass::Exit);
}
