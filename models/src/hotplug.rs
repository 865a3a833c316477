//! Models of CPU hotplug (issue 5): `cpu_down` / `cpu_up` racing queueing,
//! flushing, cancelling, a running item's requeue, an ordered workqueue and
//! the inactive list. Two CPUs, no high-priority pools, one worker per pool
//! unless a model needs a second, so that the pools' workers, the trustee
//! and at most one model thread fit loom's thread limit.

use crate::scenarios::{
    model_builder, overlap_checked, requeue_self, spawn, workqueue, wq_slot, Counter, Flag, Overlaps,
};
use crate::{FaultPlan, ModelPlatform};
use cmwq::{System, Work, WorkqueueBuilder};
use std::sync::Arc;

/// A two-CPU model system with `max_workers` per pool.
fn hotplug_system<P: ModelPlatform>(max_workers: usize, unbound: bool, bugs: u64) -> System<P> {
    model_builder(2, max_workers, bugs)
        .unbound_pools(unbound)
        .build_on(P::with_faults(FaultPlan::default()))
        .expect("model system builds")
}

/// H1 — `cpu_down` racing queueing and cancelling on the doomed CPU, and a
/// flush: every successful queueing runs exactly once or is cancelled.
pub fn cpu_down_racing_queue<P: ModelPlatform>(bugs: u64) {
    let system = hotplug_system::<P>(1, false, bugs);
    let wq = workqueue(&system, 0);
    let (runs, successes, cancelled) = (Counter::<P>::new(), Counter::<P>::new(), Counter::<P>::new());
    let item = {
        let runs = runs.clone();
        Work::<P>::new(move || {
            runs.inc();
        })
    };
    let other = {
        let (wq, item, successes, cancelled) = (wq.clone(), item.clone(), successes.clone(), cancelled.clone());
        spawn(&system, move || {
            if wq.queue_on(1, &item).unwrap() {
                successes.inc();
            }
            if item.cancel() {
                cancelled.inc();
            }
            if wq.queue_on(1, &item).unwrap() {
                successes.inc();
            }
        })
    };
    system.cpu_down(1).unwrap();
    item.flush().unwrap();
    P::join(other);
    wq.flush().unwrap();
    assert_eq!(runs.get() + cancelled.get(), successes.get(), "an instance was lost or doubled across cpu_down");
    system.cpu_up(1).unwrap();
}

/// H2, H1 — the offline pool is not concurrency managed, and `cpu_down`
/// does not wait: X, on CPU 1, waits without telling the pool until the
/// model releases it, which the model does only after `cpu_down` returned
/// and Y, queued behind X on CPU 1, has run. Under concurrency management
/// Y would wait for X; once the CPU is offline the trustee must get Y a
/// worker.
pub fn offline_pool_runs_waiting_items<P: ModelPlatform>(bugs: u64) {
    let system = hotplug_system::<P>(2, false, bugs);
    let wq = workqueue(&system, 0);
    let (x_started, release_x, y_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let x = {
        let (started, release) = (x_started.clone(), release_x.clone());
        Work::<P>::new(move || {
            started.set();
            release.wait(); // unannotated: X's worker keeps counting while bound
        })
    };
    let y = {
        let done = y_done.clone();
        Work::<P>::new(move || done.set())
    };
    wq.queue_on(1, &x).unwrap();
    x_started.wait();
    wq.queue_on(1, &y).unwrap();
    system.cpu_down(1).unwrap();
    y.flush().unwrap();
    assert!(y_done.is_set());
    release_x.set();
    wq.flush().unwrap();
    let pool = system.pool_stats().into_iter().find(|p| p.cpu == Some(1)).expect("pool of CPU 1");
    assert_eq!(pool.running, 0, "an offline pool counts a worker as running: {pool:?}");
    system.cpu_up(1).unwrap();
}

/// H2 — `cpu_up` racing the trustee's drain: an item blocked on the
/// offline CPU is released by another thread while the CPU comes back. It
/// runs exactly once, and the rebound pool counts nobody as running once
/// idle.
pub fn cpu_up_racing_drain<P: ModelPlatform>(bugs: u64) {
    let system = hotplug_system::<P>(1, false, bugs);
    let wq = workqueue(&system, 0);
    let (started, release, runs) = (Flag::<P>::new(), Flag::<P>::new(), Counter::<P>::new());
    let item = {
        let (started, release, runs) = (started.clone(), release.clone(), runs.clone());
        Work::<P>::new(move || {
            started.set();
            release.wait_blocking();
            runs.inc();
        })
    };
    wq.queue_on(1, &item).unwrap();
    started.wait();
    system.cpu_down(1).unwrap();
    let releaser = {
        let release = release.clone();
        spawn(&system, move || release.set())
    };
    system.cpu_up(1).unwrap();
    P::join(releaser);
    wq.flush().unwrap();
    assert_eq!(runs.get(), 1);
    let pool = system.pool_stats().into_iter().find(|p| p.cpu == Some(1)).expect("pool of CPU 1");
    assert!(!pool.disassociated);
    assert_eq!(pool.running, 0, "the rebound pool's accounting drifted: {pool:?}");
}

/// H3, W4 — a running item requeued during the handoff: while it runs on
/// CPU 1, it queues itself on CPU 0 and CPU 1 goes offline. Non-reentrancy
/// puts the new instance where the item runs; it runs once more, never
/// beside the first.
pub fn requeue_during_handoff<P: ModelPlatform>(bugs: u64) {
    let system = hotplug_system::<P>(1, false, bugs);
    let wq = workqueue(&system, 0);
    let (counters, started, errors) = (Overlaps::<P>::new(), Flag::<P>::new(), Counter::<P>::new());
    let slot = wq_slot(&wq);
    let item = {
        let (started, slot, errors) = (started.clone(), slot.clone(), errors.clone());
        overlap_checked(&counters, move || {
            started.set();
            if !requeue_self::<P>(&slot, Some(0)) {
                errors.inc();
            }
        })
    };
    wq.queue_on(1, &item).unwrap();
    started.wait();
    system.cpu_down(1).unwrap();
    wq.drain().unwrap();
    P::mutex_lock(&slot).take();
    assert_eq!(errors.get(), 0, "the running item could not requeue itself");
    assert_eq!(counters.overlaps.get(), 0, "the item ran twice at once across the handoff");
    assert_eq!(counters.runs.get(), 2);
    system.cpu_up(1).unwrap();
}

/// H4, Q4 — an ordered workqueue across the handoff: items queued before,
/// during and after a CPU's down/up run one at a time in queueing order.
pub fn ordered_across_handoff<P: ModelPlatform>(bugs: u64) {
    let system = hotplug_system::<P>(1, true, bugs);
    let wq = WorkqueueBuilder::new("ordered").ordered().build(&system).expect("ordered workqueue");
    let (in_flight, overlaps) = (Counter::<P>::new(), Counter::<P>::new());
    let ran = Arc::new(P::mutex_new(Vec::new()));
    let items: Vec<Work<P>> = (0..3)
        .map(|id| {
            let (f, o, r) = (in_flight.clone(), overlaps.clone(), ran.clone());
            Work::<P>::new(move || {
                if f.inc() != 0 {
                    o.inc();
                }
                P::mutex_lock(&r).push(id);
                f.dec();
            })
        })
        .collect();
    wq.queue(&items[0]).unwrap();
    system.cpu_down(1).unwrap();
    wq.queue(&items[1]).unwrap();
    system.cpu_up(1).unwrap();
    wq.queue(&items[2]).unwrap();
    wq.flush().unwrap();
    assert_eq!(overlaps.get(), 0);
    assert_eq!(*P::mutex_lock(&ran), vec![0, 1, 2]);
}

/// H2, Q3 — rebinding keeps the inactive list: with `max_active` 1, B waits
/// inactive behind A on CPU 1 while the CPU goes down and comes back; both
/// run, in order.
pub fn rebind_keeps_inactive<P: ModelPlatform>(bugs: u64) {
    let system = hotplug_system::<P>(1, false, bugs);
    let wq = workqueue(&system, 1);
    let (started, release) = (Flag::<P>::new(), Flag::<P>::new());
    let ran = Arc::new(P::mutex_new(Vec::new()));
    let a = {
        let (started, release, ran) = (started.clone(), release.clone(), ran.clone());
        Work::<P>::new(move || {
            started.set();
            release.wait_blocking();
            P::mutex_lock(&ran).push('A');
        })
    };
    let b = {
        let ran = ran.clone();
        Work::<P>::new(move || P::mutex_lock(&ran).push('B'))
    };
    wq.queue_on(1, &a).unwrap();
    wq.queue_on(1, &b).unwrap();
    started.wait();
    system.cpu_down(1).unwrap();
    system.cpu_up(1).unwrap();
    release.set();
    wq.flush().unwrap();
    assert_eq!(*P::mutex_lock(&ran), vec!['A', 'B']);
}
