//! The turns' own guarantees, where the engine has them too: a nested
//! blocking section counts once, hotplug refuses what the engine refuses,
//! a waiter does not return before it may, a retired worker's thread
//! leaves, the monitor's report counts a worker out and in once and an
//! out-of-date one changes nothing, a hog's report counts it out once and
//! lets the item behind it start. (A wakeup that came during a pass is
//! taken: the simulator's seed scenario stalls without it.)

use super::*;
use crate::machine::queue::Target;

const NOW: Duration = Duration::ZERO;

fn system(cpus: usize, max_active: usize) -> PlainSystem {
    let wq = WqShape { unbound: false, max_active, rescuer: false };
    let (items, max_workers) = (vec![0, 0], 4);
    let topo = Topology {
        cpus,
        unbound_concurrency: cpus,
        wqs: vec![wq],
        items,
        max_workers,
        rescuer_batch: 16,
        flush_colors: 16,
    };
    PlainSystem::new(topo, 0)
}

/// Carries out every notice (spawns succeed, functions do not return)
/// until none is left.
fn settle(sys: &mut PlainSystem) {
    for _ in 0..100 {
        let notices = sys.take_notices();
        if notices.is_empty() {
            return;
        }
        for notice in notices {
            match notice {
                Notice::Wake { pool, id } => sys.wake(pool, id, NOW),
                Notice::FirstPass { pool, id } => sys.first_pass(pool, id, NOW),
                Notice::Spawn { pool, new, manager } => sys.spawned(pool, new, manager, true, NOW),
                Notice::Exit { pool, id } => sys.exit(pool, id),
                _ => {}
            }
        }
    }
    panic!("notices never stopped");
}

fn running_on(sys: &PlainSystem, item: usize) -> (usize, WorkerId) {
    let found = sys.running().iter().find(|(_, entry)| entry.item == item);
    *found.expect("the item runs").0
}

#[test]
fn a_nested_blocking_section_counts_once() {
    let mut sys = system(1, 1);
    settle(&mut sys);
    assert_eq!(sys.queue(0, Target::On(0), false), Ok(true));
    settle(&mut sys);
    let (pool, id) = running_on(&sys, 0);
    assert!(sys.block(pool, id), "the outer section counts");
    assert!(!sys.block(pool, id), "the inner one does not");
    assert_eq!(sys.pools()[pool].pool().nr_running(), 0);
    sys.unblock(pool, id);
    assert_eq!(sys.pools()[pool].pool().nr_running(), 1, "the section that counted ended");
    sys.unblock(pool, id);
    assert_eq!(sys.pools()[pool].pool().nr_running(), 1, "a second unblock ends nothing");
    let unblocked = sys.take_events().iter().filter(|e| matches!(e, Event::Unblocked { .. })).count();
    assert_eq!(unblocked, 1);
}

#[test]
fn the_monitor_counts_a_worker_out_once_and_ignores_an_earlier_run() {
    let mut sys = system(1, 2);
    settle(&mut sys);
    assert_eq!(sys.queue(0, Target::On(0), false), Ok(true));
    settle(&mut sys);
    let (pool, id) = running_on(&sys, 0);
    let run = sys.pools()[pool].pool().worker(id).expect("a worker").run();
    assert!(!sys.seen(pool, id, run - 1, true), "a report of an earlier run changes nothing");
    assert!(sys.seen(pool, id, run, true), "seen asleep: counted out");
    assert!(!sys.seen(pool, id, run, true), "not twice");
    assert_eq!(sys.pools()[pool].pool().nr_running(), 0);
    assert!(sys.seen(pool, id, run, false), "seen running: counted in");
    assert_eq!(sys.pools()[pool].pool().nr_running(), 1);
    let events = sys.take_events();
    let seen = events.iter().filter(|e| matches!(e, Event::SeenAsleep { .. } | Event::SeenRunning { .. }));
    assert_eq!(seen.count(), 2, "only what took effect: {events:?}");
    assert!(sys.block(pool, id));
    assert!(!sys.seen(pool, id, run, true), "inside a blocking section it is counted out already");
}

#[test]
fn a_hog_is_counted_out_once_and_the_item_behind_it_starts() {
    let mut sys = system(1, 2);
    settle(&mut sys);
    assert_eq!(sys.queue(0, Target::On(0), false), Ok(true));
    settle(&mut sys);
    let (pool, id) = running_on(&sys, 0);
    assert_eq!(sys.queue(1, Target::On(0), false), Ok(true));
    settle(&mut sys);
    assert_eq!(sys.running().len(), 1, "item 1 waits behind the running worker");
    let run = sys.pools()[pool].pool().worker(id).expect("a worker").run();
    assert!(!sys.seen_hogging(pool, id, run - 1), "a report of an earlier run changes nothing");
    assert!(sys.seen_hogging(pool, id, run), "seen hogging: counted out");
    assert!(!sys.seen_hogging(pool, id, run), "not twice");
    assert_eq!(sys.pools()[pool].pool().nr_running(), 0);
    settle(&mut sys);
    running_on(&sys, 1);
    let events = sys.take_events();
    let seen = events.iter().filter(|e| matches!(e, Event::SeenHogging { .. }));
    assert_eq!(seen.count(), 1, "only what took effect: {events:?}");
}

#[test]
fn hotplug_refuses_what_the_engine_refuses() {
    let mut sys = system(2, 1);
    assert!(!sys.hotplug(2, true), "the unbound pool is no CPU");
    assert!(!sys.hotplug(0, false), "already online");
    assert!(sys.hotplug(0, true));
    assert!(!sys.hotplug(0, true), "already offline");
    assert!(!sys.hotplug(1, true), "the last online CPU");
    assert!(sys.hotplug(0, false));
}

#[test]
fn a_waiter_does_not_return_before_it_may() {
    let mut sys = system(1, 1);
    settle(&mut sys);
    assert_eq!(sys.queue(0, Target::On(0), false), Ok(true));
    settle(&mut sys);
    sys.flush_work(0);
    assert!(!sys.waiter_ready(0));
    assert!(!sys.waiter_wakes(0), "the instance still runs");
    assert_eq!(sys.waiters().len(), 1);
    let (pool, id) = running_on(&sys, 0);
    sys.finish(pool, id, NOW);
    assert!(sys.waiter_wakes(0));
    assert!(sys.waiters().is_empty());
}

#[test]
fn retired_workers_leave_the_pool() {
    let mut sys = system(2, 2);
    settle(&mut sys);
    // Two items running on CPU 0 leave a spare: three workers.
    assert_eq!(sys.queue(0, Target::On(0), false), Ok(true));
    settle(&mut sys);
    let (pool, first) = running_on(&sys, 0);
    assert!(sys.block(pool, first));
    assert_eq!(sys.queue(1, Target::On(0), false), Ok(true));
    settle(&mut sys);
    let (_, second) = running_on(&sys, 1);
    sys.unblock(pool, first);
    sys.finish(pool, first, NOW);
    sys.finish(pool, second, NOW);
    settle(&mut sys);
    assert!(sys.running().is_empty(), "both items ran");
    let before = sys.pools()[0].pool().workers().len();
    assert!(before >= 2, "a spare was created");
    assert!(sys.hotplug(0, true));
    sys.trustee_check(0);
    settle(&mut sys);
    assert!(!sys.trustee(0), "the trustee is done with an empty pool");
    assert_eq!(sys.pools()[0].pool().workers().len(), 1, "the retired workers' threads left");
    assert!(sys.pools()[0].pool().workers().values().all(|w| !w.die()));
}
