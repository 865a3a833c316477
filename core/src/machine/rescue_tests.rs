//! Tests of a rescuer's turn (RT1-RT3).

use super::*;
use crate::machine::pwq::Pwq;
use crate::machine::section::PwqFlags;
use crate::machine::test_support::{pool_with_idle, Ent};

/// One worker, blocked in an item of workqueue 1; items of workqueue 0
/// (with a rescuer) wait: the pool needs a worker it cannot have.
fn starving(items: usize) -> PoolSection<Ent> {
    let mut s = PoolSection::new(0, 1);
    s.state = pool_with_idle(1, Duration::ZERO);
    s.add_pwq(0, Pwq::new(8, 0, 0), PwqFlags { cpu_intensive: false, rescuer: true });
    s.add_pwq(1, Pwq::new(8, 0, 0), PwqFlags::default());
    let mut fx = Vec::new();
    let _ = s.insert(1, 100, &mut fx);
    s.state.worker_leave_idle(0);
    s.state.worker_start_working(0);
    let blocker = s.state.worker_next_item(true).expect("queued");
    let _ = s.begin(0, blocker, &mut fx);
    s.state.update_worker(0, |w| w.sleeping = true);
    for item in 0..items {
        let _ = s.insert(0, item, &mut fx);
    }
    s
}

#[test]
fn a_rescuer_runs_one_item_at_a_time_then_leaves() {
    let mut s = starving(2);
    let mut fx = Vec::new();
    let id = s.rescuer_attach(Duration::ZERO);
    assert_eq!(s.state.nr_running, 0, "a rescuer never counts as running");
    let mut taken = 0;
    let Rescue::Run { entry, scheduled: false } = s.rescuer_next(id, 0, &mut taken, 16, &mut fx) else {
        panic!("rescues")
    };
    assert_eq!((entry.item, taken, s.state.worklist.len()), (0, 1, 1), "one at a time");
    s.end(id, entry.item, 0, entry.color, &mut fx);
    let Rescue::Run { entry, .. } = s.rescuer_next(id, 0, &mut taken, 16, &mut fx) else { panic!("next") };
    s.end(id, entry.item, 0, entry.color, &mut fx);
    assert_eq!(s.rescuer_next(id, 0, &mut taken, 16, &mut fx), Rescue::Detached);
    assert!(!s.state.workers.contains_key(&id), "its slot went");
}

#[test]
fn a_used_up_batch_puts_the_pool_workqueue_back_on_the_list() {
    let mut s = starving(2);
    let mut fx = Vec::new();
    let id = s.rescuer_attach(Duration::ZERO);
    let mut taken = 0;
    let Rescue::Run { entry, .. } = s.rescuer_next(id, 0, &mut taken, 1, &mut fx) else { panic!("rescues") };
    s.end(id, entry.item, 0, entry.color, &mut fx);
    fx.clear();
    assert_eq!(s.rescuer_next(id, 0, &mut taken, 1, &mut fx), Rescue::Detached);
    assert_eq!(fx, vec![Effect::MaydayAgain(0)], "item 1 still waits");
}
