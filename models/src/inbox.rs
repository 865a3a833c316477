//! A pool's inbox (`core/src/inbox.rs`): while the pool has its target of
//! workers counted as running, a queueing leaves the item there under the
//! item's and the inbox's locks, and the pool's next section splices it
//! onto the pool. Each model holds CPU 0's pool at its target with item A,
//! which waits without telling the pool, so that queueings onto that pool
//! go through the inbox, and races them against what must see them.

use crate::scenarios::{spawn, system, workqueue, Counter, Flag};
use crate::{FaultPlan, ModelPlatform};
use cmwq::{QueueError, System, Work, Workqueue};
use std::sync::Arc;

/// Item A: sets `started`, then waits for `release` without telling the
/// pool, so its worker keeps counting as running.
fn holder<P: ModelPlatform>() -> (Work<P>, Arc<Flag<P>>, Arc<Flag<P>>) {
    let (started, release) = (Flag::<P>::new(), Flag::<P>::new());
    let a = {
        let (started, release) = (started.clone(), release.clone());
        Work::<P>::new(move || {
            started.set();
            release.wait();
        })
    };
    (a, started, release)
}

/// An item that counts its runs.
fn counted<P: ModelPlatform>() -> (Work<P>, Arc<Counter<P>>) {
    let runs = Counter::<P>::new();
    let r = runs.clone();
    (
        Work::<P>::new(move || {
            r.inc();
        }),
        runs,
    )
}

/// Queues A on CPU 0 and waits until it runs: the pool is at its target,
/// its inbox open.
fn hold_cpu0<P: ModelPlatform>(wq: &Workqueue<P>) -> Arc<Flag<P>> {
    let (a, started, release) = holder::<P>();
    assert!(wq.queue_on(0, &a).unwrap());
    started.wait();
    release
}

/// Releases A from another thread.
fn release_later<P: ModelPlatform>(system: &System<P>, release: Arc<Flag<P>>) -> P::JoinHandle {
    spawn(system, move || release.set())
}

/// C1 W1 — an item left in the inbox as the worker that held the pool
/// finishes and goes idle. Whichever comes first, the item runs: left
/// before the worker's last section splices it, left during that section
/// is spliced by the close that ends it (the pool falls below its target),
/// and after the close the queueing takes the pool lock and wakes a
/// worker. Left behind, the flush of B waits for good (a deadlock).
pub fn inbox_left_as_the_worker_goes_idle<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let release = hold_cpu0(&wq);
    let releaser = release_later(&system, release);
    let (b, b_runs) = counted::<P>();
    assert!(wq.queue_on(0, &b).unwrap());
    b.flush().unwrap();
    assert_eq!(b_runs.get(), 1, "B did not run once");
    P::join(releaser);
    wq.flush().unwrap();
}

/// W6 Q1 — cancel and `flush_workqueue` of items left in the inbox. B and
/// C are left there while A holds the pool, and B is cancelled: the
/// cancel's pool section must find B on the pool (it splices first), take
/// it off and say it was pending; B never runs. Then A is released and D
/// queued, racing the worker's finish (its splice, and the close of the
/// inbox as the pool falls below its target), and `flush_workqueue` too:
/// its colour flip splices first, so C and D, left before it, are
/// instances it waits for, and have run when it returns.
pub fn inbox_items_cancelled_and_flushed<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let release = hold_cpu0(&wq);
    let (b, b_runs) = counted::<P>();
    let (c, c_runs) = counted::<P>();
    let (d, d_runs) = counted::<P>();
    assert!(wq.queue_on(0, &b).unwrap());
    assert!(wq.queue_on(0, &c).unwrap());
    assert!(b.cancel(), "B was pending (A still holds the pool), so cancel takes it");
    let releaser = release_later(&system, release);
    assert!(wq.queue_on(0, &d).unwrap());
    wq.flush().unwrap();
    assert_eq!(c_runs.get(), 1, "flush_workqueue returned before C, queued before it, ran");
    assert_eq!(d_runs.get(), 1, "flush_workqueue returned before D, queued before it, ran");
    assert_eq!(b_runs.get(), 0, "a cancelled item ran");
    P::join(releaser);
}

/// Q6 — `destroy` racing a queueing that leaves its item in the inbox (the
/// pool is held by another workqueue's item). `Ok(true)` means the item
/// runs before `destroy` returns; a refusal leaves it idle. Destroy takes
/// every inbox's lock before it judges a pool-workqueue empty, so an item
/// left by a queueing that did not see `dying` is on the pool by then;
/// judged empty on the inbox's hint alone, the pool-workqueue goes and the
/// item is left for nothing.
pub fn destroy_racing_inbox_leave<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let holder_wq = workqueue(&system, 0);
    let victim = workqueue(&system, 0);
    let release = hold_cpu0(&holder_wq);
    let destroyer = {
        let victim = victim.clone();
        spawn(&system, move || victim.destroy().expect("destroy from outside the workqueue"))
    };
    let (b, b_runs) = counted::<P>();
    let queued = victim.queue_on(0, &b);
    release.set();
    P::join(destroyer);
    match queued {
        Ok(accepted) => {
            assert!(accepted, "B was idle, so an accepted queueing queues it");
            assert_eq!(b_runs.get(), 1, "destroy returned before an accepted item ran");
        }
        Err(QueueError::Destroyed { .. } | QueueError::Draining { .. }) => {
            assert!(b.busy().is_idle(), "a refused item was left pending");
            assert_eq!(b_runs.get(), 0, "a refused item ran");
        }
        Err(err) => panic!("unexpected refusal: {err}"),
    }
    holder_wq.flush().unwrap();
}

/// W6 — a cancel racing an item that requeues itself through the inbox.
/// The item runs once and queues itself again from its own run: its worker
/// counts as running, so the pool is at its target and the requeue leaves
/// the item in the inbox, under the item's lock alone. A cancel that read
/// the item as queued (the first instance, before it started), then took
/// the pool lock (splicing the inbox) and then the item's lock, can find
/// the item queued again by a requeue left after that splice: it must
/// splice again under the item's lock before it looks on the pool, or it
/// takes PENDING off an item the pool does not hold (the machine's check
/// fails) and the instance runs although the cancel said it took it.
pub fn cancel_racing_inbox_requeue<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let (runs, requeued) = (Counter::<P>::new(), Counter::<P>::new());
    let item = {
        let (r, rq, q) = (runs.clone(), requeued.clone(), wq.clone());
        Work::<P>::with_self(move |me| {
            // A requeue racing the cancel's hold of PENDING is refused
            // (`Ok(false)`), as in the kernel: counted only if accepted.
            if r.inc() == 0 && matches!(q.queue_on(0, me), Ok(true)) {
                rq.inc();
            }
        })
    };
    assert!(wq.queue_on(0, &item).unwrap());
    let took = item.cancel();
    // Twice: a requeue made while the first flush waits gets the next
    // colour, which only the second waits for.
    wq.flush().unwrap();
    wq.flush().unwrap();
    let ran = runs.get();
    assert!(item.busy().is_idle(), "the item is left pending after the flush");
    // Every accepted queueing ran or was taken by the cancel, not both.
    assert_eq!(ran + usize::from(took), 1 + requeued.get(), "runs + cancelled != queueings");
}
