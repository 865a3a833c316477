//! Tests of the worker rules (M6-M10) on the pool machine.

use super::*;
use crate::machine::pool::{WorkerState, WORKER_PREP};
use crate::machine::test_support::{pool_with_idle, Item};
use core::time::Duration;

fn pool(idle: usize) -> PoolState<Item> {
    pool_with_idle(idle, Duration::ZERO)
}

#[test]
fn a_woken_worker_without_work_goes_back_to_idle() {
    let mut pool = pool(2);
    assert_eq!(pool.worker_decide(1), WorkerStep::Idle);
    assert!(!pool.idle.contains(&1), "it left the idle list; the driver puts it back");
}

#[test]
fn the_last_idle_worker_manages_before_working() {
    let mut pool = pool(1);
    pool.worklist.push_back(Item(1, 0));
    assert_eq!(pool.worker_decide(0), WorkerStep::Manage, "no spare would be left");
    assert!(pool.manager_active);
    let other = pool.next_id();
    pool.workers.insert(other, WorkerState::new(WORKER_PREP, Duration::ZERO, true));
    assert_eq!(pool.worker_decide(other), WorkerStep::Work, "the role is taken: work without a spare");
    pool.manager_leave();
}

#[test]
fn keep_working_lets_only_one_runner_take_more_items() {
    let mut pool = pool(3);
    pool.worklist.extend([Item(1, 0), Item(2, 0), Item(3, 0)]);
    assert_eq!(pool.worker_decide(2), WorkerStep::Work);
    pool.worker_start_working(2);
    assert_eq!(pool.worker_next_item(true), Some(Item(1, 0)));
    assert_eq!(pool.worker_next_item(false), Some(Item(2, 0)), "alone: keeps working");
    pool.worker_leave_idle(1);
    pool.worker_start_working(1);
    assert_eq!(pool.nr_running, 2);
    assert_eq!(pool.worker_next_item(false), None, "two run: the surplus stops");
}

#[test]
fn a_collision_is_deferred_to_the_worker_running_the_item() {
    let mut pool = pool(2);
    let (begin, entry) = pool.item_begin(0, Item(7, 0), false);
    assert_eq!((begin, entry), (Begin::Run, Some(Item(7, 0))));
    assert!(pool.is_running_for(7, 0));
    assert!(!pool.is_running_for(7, 1), "for another workqueue it is not");
    let (begin, entry) = pool.item_begin(1, Item(7, 0), false);
    assert_eq!((begin, entry), (Begin::Deferred, None));
    pool.item_end(0, 7);
    assert_eq!(pool.next_scheduled(0), Some(Item(7, 0)), "worker 0 runs it next");
    assert!(!pool.is_running_for(7, 0));
}

#[test]
fn a_cpu_intensive_item_leaves_the_running_count_while_it_runs() {
    let mut pool = pool(1);
    pool.worker_leave_idle(0);
    pool.worker_start_working(0);
    assert_eq!(pool.nr_running, 1);
    let _ = pool.item_begin(0, Item(1, 0), true);
    assert_eq!(pool.nr_running, 0);
    pool.item_end(0, 1);
    assert_eq!(pool.nr_running, 1);
}

#[test]
fn blocking_wakes_an_idle_worker_once_and_nests() {
    let mut pool = pool(2);
    pool.worker_leave_idle(1);
    pool.worker_start_working(1);
    pool.worklist.push_back(Item(1, 0));
    assert_eq!(pool.worker_sleeping(1), Sleep::Slept(Some(0)), "items wait and nobody runs");
    assert_eq!(pool.nr_running, 0);
    assert_eq!(pool.worker_sleeping(1), Sleep::Nested);
    pool.worker_running(1);
    assert_eq!(pool.nr_running, 1);
    assert_eq!(pool.worker_sleeping(1), Sleep::Slept(None), "worker 0 was woken already");
}
