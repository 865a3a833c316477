//! Tests of the hotplug steps (HP1-HP3).

use super::*;
use crate::machine::pwq::Pwq;
use crate::machine::section::PwqFlags;
use crate::machine::test_support::{pool_with_idle, Ent};
use core::time::Duration;

#[test]
fn an_item_behind_a_running_worker_starts_once_the_cpu_goes_down() {
    let mut s: PoolSection<Ent> = PoolSection::new(0, 1);
    s.state = pool_with_idle(2, Duration::ZERO);
    s.add_pwq(0, Pwq::new(8, 0, 0), PwqFlags::default());
    let mut fx = Vec::new();
    let _ = s.insert(0, 7, &mut fx);
    s.state.worker_leave_idle(1);
    s.state.worker_start_working(1);
    let first = s.state.worker_next_item(true).expect("queued");
    let _ = s.begin(1, first, &mut fx);
    let _ = s.insert(0, 8, &mut fx);
    fx.clear();
    assert_eq!(s.state.kick(), None, "a worker runs: nobody is woken");
    s.cpu_down(&mut fx);
    assert_eq!(fx, vec![Effect::Wake(0)], "rogue now: the idle worker takes item 8");
    assert_eq!(s.state.nr_running, 0);
    fx.clear();
    s.cpu_up(&mut fx);
    assert_eq!(s.state.nr_running, 1, "the busy worker counts again");
}

#[test]
fn the_trustee_retires_idle_workers_down_to_one_once_the_pool_is_empty() {
    let mut s: PoolSection<Ent> = PoolSection::new(0, 1);
    s.state = pool_with_idle(3, Duration::ZERO);
    s.add_pwq(0, Pwq::new(8, 0, 0), PwqFlags::default());
    let mut fx = Vec::new();
    s.cpu_down(&mut fx);
    let _ = s.insert(0, 7, &mut fx);
    assert!(!s.trustee_check(&mut fx), "an item waits");
    let _ = s.cancel_queued(7, &mut fx);
    fx.clear();
    assert!(s.trustee_check(&mut fx));
    assert_eq!(fx, vec![Effect::Retire(0), Effect::Retire(1)], "coldest first, down to one");
}
