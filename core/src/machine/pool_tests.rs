//! Tests of the pool machine: one per rule, and random transition
//! sequences that must keep its own consistency.

use super::*;
use crate::machine::test_support::pool_with_idle as idle_pool;
use proptest::prelude::*;

fn pool_with_idle(workers: usize) -> PoolState<u32> {
    idle_pool(workers, Duration::ZERO)
}

#[test]
fn running_count_follows_flags_and_sleeping() {
    let mut pool = pool_with_idle(2);
    pool.worker_leave_idle(1);
    pool.update_worker(1, |w| w.flags &= !WORKER_PREP);
    assert_eq!(pool.nr_running, 1);
    pool.update_worker(1, |w| w.sleeping = true);
    assert_eq!(pool.nr_running, 0, "a blocked worker does not count");
    pool.update_worker(1, |w| w.sleeping = false);
    pool.update_worker(1, |w| w.flags |= WORKER_ROGUE);
    assert_eq!(pool.nr_running, 0, "a rogue worker does not count");
}

#[test]
fn kick_wakes_the_most_recent_idle_worker_once_and_only_if_nobody_runs() {
    let mut pool = pool_with_idle(2);
    assert_eq!(pool.kick(), None, "nothing pending");
    pool.worklist.push_back(7);
    assert_eq!(pool.kick(), Some(1), "most recently idle first");
    assert_eq!(pool.kick(), None, "its wakeup is still pending");
    pool.worker_leave_idle(1);
    pool.update_worker(1, |w| {
        w.woken = false;
        w.flags &= !WORKER_PREP;
    });
    assert_eq!(pool.kick(), None, "somebody runs: queueing behind it wakes nobody");
}

#[test]
fn too_many_idle_workers_arm_the_cull_timer_once_and_retire_once() {
    let mut pool = pool_with_idle(3);
    assert!(pool.idle_timer_armed, "three idle, none busy: more than the two kept");
    let id = pool.next_id();
    pool.workers.insert(id, WorkerState::new(WORKER_PREP, Duration::ZERO, true));
    pool.nr_workers += 1;
    assert!(!pool.worker_enter_idle(id, Duration::from_secs(1)), "armed already");
    let coldest = *pool.idle.back().unwrap();
    assert_eq!(coldest, 0);
    assert!(pool.retire_worker(coldest));
    assert!(!pool.retire_worker(coldest), "told once");
    assert_eq!((pool.nr_workers, pool.idle.len()), (3, 3));
}

#[test]
fn one_manager_at_a_time() {
    let mut pool: PoolState<u32> = PoolState::default();
    assert!(pool.manager_enter());
    assert!(!pool.manager_enter());
    pool.manager_leave();
    assert!(pool.manager_enter());
}

/// One step of a random sequence.
#[derive(Debug, Clone)]
enum Op {
    Create,
    Queue,
    Kick,
    /// A woken (or any idle) worker starts: leave idle, clear PREP, take an
    /// item if any.
    Start(usize),
    Block(usize),
    Unblock(usize),
    /// A working worker finishes and goes idle.
    Idle(usize),
    Retire(usize),
    Manage,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Create),
        Just(Op::Queue),
        Just(Op::Kick),
        any::<usize>().prop_map(Op::Start),
        any::<usize>().prop_map(Op::Block),
        any::<usize>().prop_map(Op::Unblock),
        any::<usize>().prop_map(Op::Idle),
        any::<usize>().prop_map(Op::Retire),
        Just(Op::Manage),
    ]
}

/// The `n`-th worker (cyclically) satisfying `pick`.
fn nth(pool: &PoolState<u32>, n: usize, pick: impl Fn(&WorkerState<u32>) -> bool) -> Option<WorkerId> {
    let ids: Vec<_> = pool.workers.iter().filter(|(_, w)| !w.die && pick(w)).map(|(&id, _)| id).collect();
    (!ids.is_empty()).then(|| ids[n % ids.len()])
}

fn apply(pool: &mut PoolState<u32>, op: Op, next_item: &mut u32) {
    match op {
        Op::Create => {
            let id = pool.next_id();
            pool.workers.insert(id, WorkerState::new(WORKER_PREP, Duration::ZERO, true));
            pool.nr_workers += 1;
            let _ = pool.worker_enter_idle(id, Duration::ZERO);
        }
        Op::Queue => {
            pool.worklist.push_back(*next_item);
            *next_item += 1;
        }
        Op::Kick => {
            let _ = pool.kick();
        }
        Op::Start(n) => {
            if let Some(id) = nth(pool, n, |w| w.flags & WORKER_PREP != 0) {
                pool.worker_leave_idle(id);
                pool.update_worker(id, |w| {
                    w.woken = false;
                    w.flags &= !WORKER_PREP;
                });
                let _ = pool.worklist.pop_front();
            }
        }
        Op::Block(n) => {
            if let Some(id) = nth(pool, n, |w| w.flags & WORKER_PREP == 0 && !w.sleeping) {
                pool.update_worker(id, |w| w.sleeping = true);
                let _ = pool.wake_first_idle();
            }
        }
        Op::Unblock(n) => {
            if let Some(id) = nth(pool, n, |w| w.sleeping) {
                pool.update_worker(id, |w| w.sleeping = false);
            }
        }
        Op::Idle(n) => {
            if let Some(id) = nth(pool, n, |w| w.flags & WORKER_PREP == 0 && !w.sleeping) {
                let _ = pool.worker_enter_idle(id, Duration::from_secs(1));
            }
        }
        Op::Retire(n) => {
            if let Some(&id) = pool.idle.get(n % pool.idle.len().max(1)) {
                pool.retire_worker(id);
                pool.workers.remove(&id);
            }
        }
        Op::Manage => {
            if pool.manager_enter() {
                pool.manager_leave();
            }
        }
    }
}

proptest! {
    /// Random sequences keep the pool's own consistency: the running count
    /// equals the workers counted as running; the idle list holds distinct,
    /// live, PREP workers and never more than there are workers; at most
    /// one manager; `nr_workers` equals the live workers.
    #[test]
    fn random_sequences_keep_the_pool_consistent(ops in proptest::collection::vec(op(), 1..300)) {
        let mut pool: PoolState<u32> = PoolState::default();
        let mut next_item = 0;
        for op in ops {
            apply(&mut pool, op, &mut next_item);
            prop_assert_eq!(pool.nr_running, pool.running_workers());
            prop_assert!(pool.idle.len() <= pool.nr_workers);
            for (i, id) in pool.idle.iter().enumerate() {
                prop_assert!(!pool.idle.iter().skip(i + 1).any(|other| other == id), "idle twice");
                let worker = pool.workers.get(id);
                prop_assert!(worker.is_some_and(|w| !w.die && w.flags & WORKER_PREP != 0));
            }
            prop_assert!(pool.nr_managers <= 1);
            prop_assert_eq!(pool.nr_workers, pool.workers.values().filter(|w| !w.die).count());
        }
    }
}
