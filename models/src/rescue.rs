//! Models of forward progress without new threads (issue 4): the mayday
//! timer, the rescuer, and their races. Every model here runs on one CPU
//! under a fault plan that lets the pool's first worker and (where there
//! is one) the rescuer start, and refuses every later thread.
//!
//! The checker's deadlock report is the liveness oracle: if the rescuer
//! fails to run an item that everything waits for, every thread ends up
//! blocked and loom or shuttle report a deadlock.

use crate::scenarios::{model_builder, overlap_checked, requeue_self, system, wq_slot, Counter, Flag, Overlaps};
use crate::{FaultPlan, ModelPlatform};
use cmwq::{blocking_on, Platform, System, Work, Workqueue, WorkqueueBuilder};
use std::sync::Arc;

/// Spawns that succeed: the pool's only worker, then the rescuer if any.
fn faults(rescuer: bool) -> FaultPlan {
    FaultPlan::allow(if rescuer { 2 } else { 1 })
}

/// A one-CPU model system under `faults(rescuer)`.
fn rescue_system<P: ModelPlatform>(rescuer: bool, bugs: u64) -> System<P> {
    system(P::with_faults(faults(rescuer)), 1, 4, bugs)
}

/// A workqueue on `system`, `mem_reclaim` if asked.
pub(crate) fn rescue_wq<P: Platform>(
    system: &System<P>,
    name: &str,
    mem_reclaim: bool,
    max_active: usize,
) -> Workqueue<P> {
    let mut builder = WorkqueueBuilder::new(name);
    builder.max_active(max_active);
    if mem_reclaim {
        builder.mem_reclaim();
    }
    builder.build(system).expect("model workqueue builds")
}

/// An item that signals `waiting` from inside a blocking section and then
/// waits there for `go`: its worker stops counting as running.
fn blocker<P: Platform>(waiting: &Arc<Flag<P>>, go: &Arc<Flag<P>>) -> Work<P> {
    let (waiting, go) = (waiting.clone(), go.clone());
    Work::new(move || {
        blocking_on::<P, _>(|| {
            waiting.set();
            go.wait();
        })
    })
}

/// Queues `a` (a [`blocker`] signalling `waiting`), waits until its worker
/// is blocked in it, then queues `behind`: the pool's only worker is
/// blocked, items wait, and no worker can be created.
fn stuck_behind<P: Platform>(wq: &Workqueue<P>, a: &Work<P>, waiting: &Flag<P>, behind: &[&Work<P>]) {
    wq.queue(a).unwrap();
    waiting.wait();
    for item in behind {
        wq.queue(item).unwrap();
    }
}

/// An item that counts its runs and sets `done`.
fn counted<P: Platform>(runs: &Arc<Counter<P>>, done: &Arc<Flag<P>>) -> Work<P> {
    let (runs, done) = (runs.clone(), done.clone());
    Work::new(move || {
        runs.inc();
        done.set();
    })
}

/// The chain, with or without a rescuer: A blocks until B has run, B is
/// queued on the same workqueue behind it, and no worker can be created
/// beyond the first. With `mem_reclaim` the rescuer runs B; without, every
/// thread ends blocked (the checker reports a deadlock, see
/// `tests/deadlock.rs`).
pub fn chain<P: ModelPlatform>(bugs: u64, mem_reclaim: bool) {
    let system = rescue_system::<P>(mem_reclaim, bugs);
    let wq = rescue_wq(&system, "chain", mem_reclaim, 0);
    let (waiting, b_done) = (Flag::<P>::new(), Flag::<P>::new());
    let b_runs = Counter::<P>::new();
    let a = blocker(&waiting, &b_done);
    let b = counted(&b_runs, &b_done);
    stuck_behind(&wq, &a, &waiting, &[&b]);
    // The worker failed to create a spare before it started A, which armed
    // the mayday timer; deliver it now that the pool is stuck.
    system.run_due_timers();
    wq.flush().unwrap();
    assert_eq!(b_runs.get(), 1);
    let stats = wq.stats();
    assert!(stats.maydays >= 1, "no mayday was sent: {stats:?}");
    assert_eq!(stats.rescued, 1, "B must have been rescued: its worker was blocked until B ran");
    assert!(system.pool_stats()[0].create_failures >= 1, "the fault plan was not exercised");
}

/// R1 — the chain completes on a `mem_reclaim` workqueue: the rescuer runs
/// the item that the only worker waits for.
pub fn rescuer_chain<P: ModelPlatform>(bugs: u64) {
    chain::<P>(bugs, true);
}

/// R2 — without `mem_reclaim` the chain is stuck: after the timers had
/// their turn (the create retry fails, the mayday finds no rescuer), B is
/// still pending, nobody runs, nobody idles, no worker can be created, and
/// the only worker waits for B. Nothing in the system can change that; the
/// model then unblocks A itself so that it can end.
pub fn chain_stalls_without_rescuer<P: ModelPlatform>(bugs: u64) {
    let system = rescue_system::<P>(false, bugs);
    let wq = rescue_wq(&system, "chain", false, 0);
    let (waiting, go) = (Flag::<P>::new(), Flag::<P>::new());
    let (b_runs, b_done) = (Counter::<P>::new(), Flag::<P>::new());
    let a = blocker(&waiting, &go);
    let b = counted(&b_runs, &b_done);
    stuck_behind(&wq, &a, &waiting, &[&b]);
    system.run_due_timers();
    let pool = system.pool_stats()[0].clone();
    assert_eq!(b_runs.get(), 0, "B ran although no thread could run it");
    assert_eq!((pool.pending, pool.running, pool.idle, pool.workers), (1, 0, 0, 1), "pool not stuck: {pool:?}");
    assert!(pool.create_failures >= 2, "creation was not retried: {pool:?}");
    assert_eq!(wq.stats().maydays, 0);
    go.set();
    wq.flush().unwrap();
    assert_eq!(b_runs.get(), 1);
}

/// R3 — a regular worker and the rescuer on one pool-workqueue: B, rescued
/// while the only worker is blocked in A, requeues itself and releases A;
/// the worker, free again, races the rescuer for B's second instance and
/// C. Nothing runs twice, nothing runs concurrently with itself.
pub fn rescuer_races_worker<P: ModelPlatform>(bugs: u64) {
    let system = rescue_system::<P>(true, bugs);
    let wq = rescue_wq(&system, "race", true, 0);
    let (waiting, release_a) = (Flag::<P>::new(), Flag::<P>::new());
    let b_counters = Overlaps::<P>::new();
    // Failures inside an item would be caught as panics; count them instead.
    let b_errors = Counter::<P>::new();
    let (c_runs, c_done) = (Counter::<P>::new(), Flag::<P>::new());
    let slot = wq_slot(&wq);
    let a = blocker(&waiting, &release_a);
    let b = {
        let (release, slot, errors) = (release_a.clone(), slot.clone(), b_errors.clone());
        overlap_checked(&b_counters, move || {
            if !requeue_self::<P>(&slot, None) {
                errors.inc();
            }
            release.set();
        })
    };
    let c = counted(&c_runs, &c_done);
    stuck_behind(&wq, &a, &waiting, &[&b, &c]);
    system.run_due_timers();
    // B's second instance may be queued after a flush began; a drain waits
    // for chained items too.
    wq.drain().unwrap();
    P::mutex_lock(&slot).take();
    assert_eq!(b_errors.get(), 0, "B could not requeue itself while running");
    assert_eq!(b_counters.overlaps.get(), 0, "B ran on two threads at once");
    assert_eq!(b_counters.runs.get(), 2, "B must run once per successful queueing");
    assert_eq!(c_runs.get(), 1);
    assert!(wq.stats().rescued >= 1, "nothing was rescued");
}

/// R4 — the rescuer wakes a worker when it leaves. A (another workqueue)
/// blocks the only worker until B runs; B and C are on a `mem_reclaim`
/// workqueue with `max_active` 1, so C is inactive. The rescuer runs B; the
/// worker finishes A and, finding nothing, goes idle; B's completion
/// activates C, which wakes nobody; the pool no longer needs rescue (a
/// worker idles), so the rescuer leaves, and must wake that worker for C.
pub fn rescuer_wakes_worker<P: ModelPlatform>(bugs: u64) {
    let system = rescue_system::<P>(true, bugs);
    let reclaim = rescue_wq(&system, "reclaim", true, 1);
    let plain = rescue_wq(&system, "plain", false, 0);
    let (waiting, release_a) = (Flag::<P>::new(), Flag::<P>::new());
    let (b_runs, c_runs, c_done) = (Counter::<P>::new(), Counter::<P>::new(), Flag::<P>::new());
    let a = blocker(&waiting, &release_a);
    let b = counted(&b_runs, &release_a);
    let c = counted(&c_runs, &c_done);
    plain.queue(&a).unwrap();
    waiting.wait();
    reclaim.queue(&b).unwrap();
    reclaim.queue(&c).unwrap();
    system.run_due_timers();
    reclaim.flush().unwrap();
    plain.flush().unwrap();
    assert_eq!((b_runs.get(), c_runs.get()), (1, 1));
    assert!(reclaim.stats().rescued >= 1, "nothing was rescued");
}

/// R5 — destroy racing a pending mayday: a mayday is sent, then the
/// blocked item is released and the workqueue destroyed while the rescuer
/// may not have looked at its list yet. Destroy returns (no false "busy"),
/// every item ran once, the rescuer emptied its list before exiting, and
/// once the last handle is gone the workqueue is freed (nothing leaked).
pub fn destroy_racing_mayday<P: ModelPlatform>(bugs: u64) {
    let system = rescue_system::<P>(true, bugs);
    let wq = rescue_wq(&system, "doomed", true, 0);
    let (waiting, go) = (Flag::<P>::new(), Flag::<P>::new());
    let (b_runs, b_done) = (Counter::<P>::new(), Flag::<P>::new());
    let a = blocker(&waiting, &go);
    let b = counted(&b_runs, &b_done);
    stuck_behind(&wq, &a, &waiting, &[&b]);
    system.run_due_timers();
    assert_eq!(wq.stats().maydays, 1, "the mayday was not sent");
    go.set();
    wq.destroy().unwrap();
    assert_eq!(b_runs.get(), 1);
    assert_eq!(wq.stats().mayday_pending, 0, "maydays left after destroy");
    drop(wq);
    assert_eq!(system.live_workqueues(), 0, "the destroyed workqueue was leaked");
}

/// R6 — a pool-workqueue is on the mayday list at most once: the mayday
/// timer fires twice while B and C wait, and the rescuer (batch of one)
/// re-queues its mayday after each item; at no point does the list hold
/// the one pool-workqueue twice.
pub fn mayday_no_duplicate<P: ModelPlatform>(bugs: u64) {
    let system =
        model_builder(1, 4, bugs).rescuer_batch(1).build_on(P::with_faults(faults(true))).expect("model system builds");
    let wq = rescue_wq(&system, "dup", true, 0);
    let (waiting, go) = (Flag::<P>::new(), Flag::<P>::new());
    let (runs, done) = (Counter::<P>::new(), Flag::<P>::new());
    let a = blocker(&waiting, &go);
    let (b, c) = (counted(&runs, &done), counted(&runs, &done));
    stuck_behind(&wq, &a, &waiting, &[&b, &c]);
    for _ in 0..2 {
        system.run_due_timers();
        let pending = wq.stats().mayday_pending;
        assert!(pending <= 1, "one pool-workqueue is on the mayday list {pending} times");
    }
    go.set();
    wq.flush().unwrap();
    assert_eq!(runs.get(), 2);
    assert!(wq.stats().maydays >= 1);
}
