//! Where a plain `queue` from outside the system's workers goes (machine
//! QU3: it spreads to a less loaded CPU's pool, reading the pools' loads
//! without their locks).

use crate::scenarios::{overlap_checked, system, workqueue, Counter, Flag, Overlaps};
use crate::{FaultPlan, ModelPlatform};
use cmwq::Work;

/// C9, W4 — spreading, against the pools' own steps. On 2 CPUs (the
/// model's threads all run on CPU 0), item A runs on CPU 0's pool and
/// waits without telling the pool, so that pool counts it running. Queued
/// again meanwhile, A must go back to the pool where it runs (QU4), though
/// CPU 1's pool is the less loaded one. Item B, queued next, must go to
/// CPU 1's pool and run there while A still holds CPU 0's: the model waits
/// for B before it releases A, so B queued behind A is a deadlock. The
/// loads are hints read while the workers of both pools step (A starting,
/// the first worker of each pool waking), in every order.
pub fn queue_spreads_past_busy_cpu<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 2, 1, bugs);
    let wq = workqueue(&system, 0);
    let counters = Overlaps::<P>::new();
    let (started, release, b_ran) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let a = {
        let (started, release) = (started.clone(), release.clone());
        overlap_checked(&counters, move || {
            started.set();
            release.wait();
        })
    };
    let b_runs = Counter::<P>::new();
    let b = {
        let (b_runs, b_ran) = (b_runs.clone(), b_ran.clone());
        Work::<P>::new(move || {
            b_runs.inc();
            b_ran.set();
        })
    };
    assert!(wq.queue(&a).unwrap());
    started.wait();
    assert!(wq.queue(&a).unwrap(), "A runs and is not pending: queued again");
    assert!(wq.queue(&b).unwrap());
    b_ran.wait();
    release.set();
    wq.flush().unwrap();
    assert_eq!(counters.runs.get(), 2, "A ran other than twice");
    assert_eq!(counters.overlaps.get(), 0, "A ran on two workers at once");
    assert_eq!(b_runs.get(), 1);
}

/// W1 W4 — queueing's one-section fast path (claim and insert under the
/// chosen pool's lock, when the item last ran nowhere or there) and its
/// slow path (the item last ran on another pool: a probe under that
/// pool's lock), racing the item's finish. On 2 CPUs the item runs on CPU
/// 0's pool while two threads queue it plainly, so each queueing may find
/// it running on CPU 0 (redirected there), finished (CPU 1's pool if that
/// looks less loaded), or pending (coalesced). Every successful queueing
/// runs once and no two runs overlap.
pub fn queue_racing_finish_across_pools<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 2, 1, bugs);
    let wq = workqueue(&system, 0);
    let counters = Overlaps::<P>::new();
    let item = overlap_checked(&counters, || {});
    let successes = Counter::<P>::new();
    assert!(wq.queue_on(0, &item).unwrap());
    let other = {
        let (wq, item, successes) = (wq.clone(), item.clone(), successes.clone());
        crate::scenarios::spawn(&system, move || {
            if wq.queue(&item).unwrap() {
                successes.inc();
            }
        })
    };
    if wq.queue(&item).unwrap() {
        successes.inc();
    }
    P::join(other);
    item.flush().unwrap();
    wq.flush().unwrap();
    assert_eq!(counters.runs.get(), successes.get() + 1, "executions != successful queueings");
    assert_eq!(counters.overlaps.get(), 0, "the item ran on two workers at once");
}
