//! Tests of the manager, rescuer and hotplug rules (M11-M15).

use super::*;
use crate::machine::pool::{WorkerState, WORKER_PREP};
use crate::machine::test_support::{pool_with_idle, Item};

fn pool(idle: usize, at: Duration) -> PoolState<Item> {
    pool_with_idle(idle, at)
}

#[test]
fn creation_respects_the_limit_and_failures_arm_timers_once() {
    let mut pool = pool(2, Duration::ZERO);
    assert!(pool.may_create(3));
    assert!(!pool.may_create(2));
    assert_eq!(pool.worker_create_failed(true), CreateFailed { arm_mayday: true, arm_retry: true });
    assert_eq!(pool.worker_create_failed(true), CreateFailed { arm_mayday: false, arm_retry: false });
    assert_eq!(pool.create_failures, 2);
    pool.stopping = true;
    assert!(!pool.may_create(10), "a stopping pool creates nobody");
}

#[test]
fn cull_retires_the_coldest_old_enough_and_rearms_for_the_next() {
    let mut pool = pool(3, Duration::from_secs(10));
    let young = pool.next_id();
    pool.workers.insert(young, WorkerState::new(WORKER_PREP, Duration::ZERO, true));
    pool.nr_workers += 1;
    let _ = pool.worker_enter_idle(young, Duration::from_secs(20));
    // Idle list, hot to cold: 3 (t=20), 2, 1, 0 (t=10). Four idle, none
    // busy: two beyond the two always kept.
    let cull = pool.idle_cull(Duration::from_secs(15), Duration::from_secs(5));
    assert_eq!(cull.retired, vec![0, 1], "coldest first, until only two idle are left");
    assert_eq!(cull.rearm, None);
    let mut young = self::pool(3, Duration::from_secs(10));
    let cull = young.idle_cull(Duration::from_secs(12), Duration::from_secs(5));
    assert!(cull.retired.is_empty());
    assert_eq!(cull.rearm, Some(Duration::from_secs(15)), "re-armed for when the coldest expires");
    assert!(young.idle_timer_armed);
    let never = young.idle_cull(Duration::from_secs(12), Duration::MAX);
    assert_eq!(never.rearm, Some(Duration::MAX), "saturates");
}

#[test]
fn mayday_calls_each_waiting_workqueue_once_and_only_when_starved() {
    let mut pool = pool(0, Duration::ZERO);
    pool.worklist.extend([Item(1, 5), Item(2, 3), Item(3, 5)]);
    let (called, rearm) = pool.mayday_timeout();
    assert_eq!(called, vec![3, 5]);
    assert!(rearm, "no worker idles");
    let mut fed = self::pool(1, Duration::ZERO);
    fed.worklist.push_back(Item(1, 5));
    assert_eq!(fed.mayday_timeout(), (vec![], false), "an idle worker can take it");
}

#[test]
fn rescue_takes_the_workqueues_first_item_while_starved() {
    let mut pool = pool(0, Duration::ZERO);
    pool.worklist.extend([Item(1, 5), Item(2, 3), Item(3, 3)]);
    assert!(pool.needs_rescue(2));
    assert!(!pool.needs_rescue(0));
    assert_eq!(pool.take_for_rescue(3), Some(Item(2, 3)));
    assert_eq!(pool.take_for_rescue(4), None);
}

#[test]
fn hotplug_suspends_and_restores_concurrency_management() {
    let mut pool = pool(2, Duration::ZERO);
    pool.worker_leave_idle(1);
    pool.worker_start_working(1);
    pool.worklist.push_back(Item(1, 0));
    assert_eq!(pool.kick(), None, "a worker runs: nobody is woken");
    assert_eq!(pool.disassociate(), Some(0), "rogue workers do not count: the waiting item gets one");
    assert_eq!(pool.nr_running, 0);
    assert!(!pool.trustee_may_retire(true), "an item waits");
    let _ = pool.worklist.pop_front();
    let _ = pool.worker_enter_idle(1, Duration::ZERO);
    assert!(pool.trustee_may_retire(true));
    assert_eq!(pool.trustee_retire(), vec![0], "down to one idle worker");
    let _ = pool.rebind();
    assert!(!pool.disassociated);
}
