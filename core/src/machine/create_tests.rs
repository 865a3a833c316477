//! Tests of creation and the starvation timers as steps (CR1-CR3, TM1-TM2).

use super::*;
use crate::machine::pwq::Pwq;
use crate::machine::section::PwqFlags;
use crate::machine::test_support::{pool_with_idle, Ent};

fn section(idle: usize) -> PoolSection<Ent> {
    let mut section = PoolSection::new(0, 1);
    section.state = pool_with_idle(idle, Duration::ZERO);
    section.add_pwq(0, Pwq::new(8, 0, 0), PwqFlags { cpu_intensive: false, rescuer: true });
    section.add_pwq(1, Pwq::new(8, 0, 0), PwqFlags::default());
    section
}

#[test]
fn a_created_worker_counts_and_goes_idle() {
    let mut s = section(1);
    let mut fx = Vec::new();
    let Creating::Spawn(id) = s.create_begin(4, Duration::ZERO) else { panic!("may create") };
    assert_eq!(s.state.nr_workers, 1, "not counted before its thread runs");
    assert!(s.create_end(id, true, Duration::ZERO, &mut fx));
    assert_eq!(s.state.nr_workers, 2);
    assert!(s.state.idle.contains(&id));
}

#[test]
fn a_refused_spawn_arms_both_timers_once() {
    let mut s = section(1);
    let mut fx = Vec::new();
    let Creating::Spawn(id) = s.create_begin(4, Duration::ZERO) else { panic!("may create") };
    assert!(!s.create_end(id, false, Duration::ZERO, &mut fx));
    assert_eq!(fx, vec![Effect::ArmCreateRetry, Effect::ArmMayday { first: true }]);
    assert!(!s.state.workers.contains_key(&id), "it never was");
    fx.clear();
    let Creating::Spawn(id) = s.create_begin(4, Duration::ZERO) else { panic!("may create") };
    assert!(!s.create_end(id, false, Duration::ZERO, &mut fx));
    assert!(fx.is_empty(), "armed already: {fx:?}");
}

#[test]
fn at_the_limit_only_the_mayday_timer_is_armed() {
    let mut s = section(1);
    let mut fx = Vec::new();
    assert_eq!(s.create_begin(1, Duration::ZERO), Creating::AtLimit);
    assert!(fx.is_empty(), "deciding is not failing");
    s.create_at_limit(&mut fx);
    assert_eq!(fx, vec![Effect::ArmMayday { first: true }], "no retry: the platform did not refuse");
}

#[test]
fn the_mayday_timer_calls_only_workqueues_with_a_rescuer() {
    let mut s = section(1);
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    let _ = s.insert(1, 8, &mut fx);
    // The only worker takes 7 and blocks: items wait, nobody runs or idles.
    s.state.worker_leave_idle(0);
    s.state.worker_start_working(0);
    s.state.update_worker(0, |w| w.sleeping = true);
    fx.clear();
    s.mayday_fired(&mut fx);
    assert_eq!(fx, vec![Effect::Mayday(0), Effect::ArmMayday { first: false }]);
}
