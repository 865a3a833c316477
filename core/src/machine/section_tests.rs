//! Tests of the pool section's steps: queueing, leaving, cancelling.

use super::*;
use crate::machine::test_support::{pool_with_idle, Ent};

fn section(idle: usize, max_active: usize) -> PoolSection<Ent> {
    let mut section = PoolSection::new(0, 1);
    section.state = pool_with_idle(idle, Duration::ZERO);
    section.add_pwq(0, Pwq::new(max_active, 0, 0), PwqFlags::default());
    section
}

#[test]
fn an_active_insert_goes_on_the_worklist_and_wakes_the_first_idle_worker() {
    let mut s = section(2, 1);
    let mut fx = Vec::new();
    assert_eq!(s.insert(0, 7, &mut fx), Ok(true));
    assert_eq!(s.state.worklist.len(), 1);
    assert_eq!(fx, vec![Effect::Wake(1)], "the most recently idle worker");
    fx.clear();
    assert_eq!(s.insert(0, 8, &mut fx), Ok(false), "max_active 1: inactive");
    assert!(fx.is_empty(), "an inactive insert wakes nobody");
    assert_eq!(s.insert(1, 9, &mut fx), Err(9), "no pool-workqueue: the item comes back");
}

#[test]
fn leaving_activates_the_next_instance_without_waking_anyone() {
    let mut s = section(1, 1);
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    let _ = s.insert(0, 8, &mut fx);
    let first = s.state.worklist.pop_front().expect("active");
    fx.clear();
    s.leave(0, first.color, true, &mut fx);
    assert_eq!(fx, vec![Effect::InstanceLeft(0)], "no trustee on a bound pool: no PoolChanged");
    assert_eq!(s.state.worklist.front().map(|e| e.item), Some(8), "activated");
}

#[test]
fn cancelling_an_inactive_instance_frees_no_active_slot() {
    let mut s = section(1, 1);
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    let _ = s.insert(0, 8, &mut fx);
    let removed = s.cancel_queued(8, &mut fx).expect("held inactive");
    assert_eq!(removed.item, 8);
    assert_eq!(s.pwq(0).map(|p| p.nr_active()), Some(1), "7 keeps its slot");
    assert!(s.cancel_queued(8, &mut fx).is_none(), "gone");
    let _ = s.cancel_queued(7, &mut fx).expect("held active");
    assert!(s.holds_nothing());
}
