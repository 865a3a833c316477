//! Tests of the monitor rules (M32-M35) on the pool machine.

use super::*;
use crate::machine::test_support::{pool_with_idle, Item};
use crate::machine::worker::{Begin, WorkerStep};
use core::time::Duration;

/// A pool with three idle workers where worker 2 runs item 1 and item 2
/// waits: the state in which the seed's short item waits behind a worker
/// that blocked without saying so. Returns the pool and worker 2's run.
fn one_running_one_waiting() -> (PoolState<Item>, u64) {
    let mut pool = pool_with_idle(3, Duration::ZERO);
    pool.worklist.extend([Item(1, 0), Item(2, 0)]);
    assert_eq!(pool.worker_decide(2), WorkerStep::Work);
    pool.worker_start_working(2);
    let first = pool.worker_next_item(true).expect("item 1 waits");
    assert_eq!(pool.item_begin(2, first, false).0, Begin::Run);
    let run = pool.workers[&2].run();
    (pool, run)
}

#[test]
fn seen_asleep_leaves_the_count_and_wakes_an_idle_worker() {
    let (mut pool, run) = one_running_one_waiting();
    assert_eq!(pool.nr_running, 1);
    let (detected, wake) = pool.worker_seen_asleep(2, run);
    assert!(detected);
    assert_eq!(pool.nr_running, 0, "a detected worker does not count as running");
    assert_eq!(wake, Some(1), "item 2 waits and nobody runs: the most recently idle worker is woken");
    assert!(pool.workers[&2].detected());
}

#[test]
fn an_observation_of_an_earlier_run_changes_nothing() {
    let (mut pool, run) = one_running_one_waiting();
    pool.item_end(2, 1);
    let next = pool.worker_next_item(true).expect("item 2 waits");
    assert_eq!(pool.item_begin(2, next, false).0, Begin::Run);
    assert_eq!(pool.worker_seen_asleep(2, run), (false, None), "stale: the worker runs item 2 now");
    assert_eq!(pool.nr_running, 1);
}

#[test]
fn seen_twice_counts_out_once() {
    let (mut pool, run) = one_running_one_waiting();
    assert!(pool.worker_seen_asleep(2, run).0);
    assert_eq!(pool.worker_seen_asleep(2, run), (false, None), "already detected");
    assert_eq!(pool.nr_running, 0);
    assert_eq!(pool.nr_running, pool.running_workers());
}

#[test]
fn a_worker_in_a_blocking_section_is_not_counted_out_again() {
    let (mut pool, run) = one_running_one_waiting();
    assert!(matches!(pool.worker_sleeping(2), crate::machine::worker::Sleep::Slept(_)));
    assert_eq!(pool.worker_seen_asleep(2, run), (false, None), "the section accounts for it");
    assert_eq!(pool.nr_running, 0);
    pool.worker_running(2);
    assert_eq!(pool.nr_running, 1, "leaving the section counts it once again");
    assert_eq!(pool.nr_running, pool.running_workers());
}

#[test]
fn an_observation_made_in_a_blocking_section_is_stale_after_it() {
    let (mut pool, run) = one_running_one_waiting();
    assert!(matches!(pool.worker_sleeping(2), crate::machine::worker::Sleep::Slept(_)));
    pool.worker_running(2);
    assert_eq!(pool.workers[&2].run(), run + 1, "leaving the section starts a new run");
    assert_eq!(pool.worker_seen_asleep(2, run), (false, None), "seen asleep in the section: out of date");
    assert_eq!(pool.nr_running, 1);
}

#[test]
fn seen_running_in_the_same_run_counts_again() {
    let (mut pool, run) = one_running_one_waiting();
    assert!(pool.worker_seen_asleep(2, run).0);
    assert!(!pool.worker_seen_running(2, run + 1), "another run's observation is stale");
    assert!(pool.worker_seen_running(2, run));
    assert_eq!(pool.nr_running, 1);
    assert!(!pool.worker_seen_running(2, run), "not detected any more: nothing to undo");
    assert_eq!(pool.nr_running, 1);
}

#[test]
fn the_workers_own_steps_end_a_detection() {
    // Finishing the item.
    let (mut pool, run) = one_running_one_waiting();
    assert!(pool.worker_seen_asleep(2, run).0);
    pool.item_end(2, 1);
    assert!(!pool.workers[&2].detected());
    assert_eq!(pool.nr_running, 1, "it runs to finish: counted again");
    // Entering and leaving a blocking section.
    let (mut pool, run) = one_running_one_waiting();
    assert!(pool.worker_seen_asleep(2, run).0);
    assert!(matches!(pool.worker_sleeping(2), crate::machine::worker::Sleep::Slept(_)));
    assert!(!pool.workers[&2].detected());
    assert_eq!(pool.nr_running, 0, "now out of the count for the section, once");
    pool.worker_running(2);
    assert_eq!(pool.nr_running, 1);
    assert_eq!(pool.nr_running, pool.running_workers());
}

#[test]
fn an_idle_or_unknown_worker_is_never_detected() {
    let mut pool = pool_with_idle::<Item>(2, Duration::ZERO);
    assert_eq!(pool.worker_seen_asleep(1, 0), (false, None), "idle: it runs no item");
    assert_eq!(pool.worker_seen_asleep(9, 0), (false, None), "not a worker of this pool");
    assert_eq!(pool.nr_running, 0);
}

#[test]
fn a_hog_leaves_the_count_until_its_item_ends_and_wakes_an_idle_worker() {
    let (mut pool, run) = one_running_one_waiting();
    let (wq, _, wake) = pool.worker_seen_hogging(2, run).expect("a running worker is marked");
    assert_eq!(wq, 0);
    assert_eq!(wake, Some(1), "item 2 waits behind the hog: an idle worker is woken");
    assert_eq!(pool.nr_running, 0);
    assert_eq!(pool.worker_seen_hogging(2, run), None, "marked once per run");
    pool.item_end(2, 1);
    assert_eq!(pool.workers[&2].flags() & crate::machine::pool::WORKER_CPU_INTENSIVE, 0, "cleared at the end");
    assert_eq!(pool.nr_running, pool.running_workers());
}

#[test]
fn a_hog_report_of_an_earlier_run_changes_nothing() {
    let (mut pool, run) = one_running_one_waiting();
    pool.item_end(2, 1);
    let next = pool.worker_next_item(true).expect("item 2 waits");
    assert_eq!(pool.item_begin(2, next, false).0, Begin::Run);
    assert_eq!(pool.worker_seen_hogging(2, run), None, "stale: the worker runs item 2 now");
    assert_eq!(pool.nr_running, 1);
}

#[test]
fn a_worker_out_of_the_count_is_not_marked_a_hog() {
    let (mut pool, run) = one_running_one_waiting();
    assert!(pool.worker_seen_asleep(2, run).0);
    assert_eq!(pool.worker_seen_hogging(2, run), None, "detected: out of the count already");
    assert!(matches!(pool.worker_sleeping(2), crate::machine::worker::Sleep::Slept(_)));
    assert_eq!(pool.worker_seen_hogging(2, run), None, "in a blocking section");
    assert_eq!(pool.nr_running, pool.running_workers());
}

#[test]
fn section_steps_count_hogs_detections_wakeups_and_cpu_time_per_workqueue() {
    use crate::machine::pwq::Pwq;
    use crate::machine::section::{PlainEntry, PoolSection, PwqFlags};
    let mut section: PoolSection<PlainEntry> = PoolSection::new(0, 1);
    section.state = crate::machine::test_support::pool_with_idle(3, Duration::ZERO);
    section.add_pwq(0, Pwq::new(8, 0, 0), PwqFlags::default());
    let mut fx = Vec::new();
    let (_, _) = (section.insert(0, 1, &mut fx), section.insert(0, 2, &mut fx));
    assert_eq!(section.state.worker_decide(2), WorkerStep::Work);
    section.state.worker_start_working(2);
    let first = section.state.worker_next_item(true).expect("item 1 waits");
    let colour = first.color;
    assert!(section.begin(2, first, &mut fx).is_some());
    let run = section.state.workers[&2].run();
    assert!(section.worker_seen_asleep(2, run, &mut fx), "item 2 waits: detected, with a wakeup");
    assert!(section.worker_seen_running(2, run));
    fx.clear();
    assert_eq!(section.worker_seen_hogging(2, run, &mut fx), Some((0, "")));
    assert!(section.worker_used_cpu(2, run, Duration::from_millis(3)));
    assert!(!section.worker_used_cpu(2, run + 1, Duration::from_millis(3)), "another run's time is not credited");
    let stats: Vec<_> = section.pwq_stats().collect();
    assert_eq!(stats.len(), 1);
    let (wq, counters) = stats[0];
    assert_eq!(wq, 0);
    assert_eq!((counters.started, counters.completed, counters.cpu_intensive), (1, 0, 1));
    assert_eq!((counters.detected, counters.cm_wakeups), (1, 1));
    assert_eq!(counters.cpu_time, Duration::from_millis(3));
    section.end(2, 1, 0, colour, &mut fx);
    let (_, counters) = section.pwq_stats().next().expect("one pool-workqueue");
    assert_eq!((counters.started, counters.completed), (1, 1), "ended: completed, and no longer running");
}
