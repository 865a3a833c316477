//! Models of a workqueue's life racing delayed queueing (core
//! `lifecycle.rs`, `delayed.rs`): `destroy` on one thread while another
//! calls `queue_delayed` or `mod_delayed`. Every accepted delayed item must
//! run (the model fires its timer with `flush`, since time is frozen);
//! every refused call must leave the item as it was.
//!
//! The interleaving that lost work before the acceptance gate: the caller
//! passes the acceptance check, `destroy` sets `dying`, drains (seeing no
//! armed item) and takes the pool-workqueues away, and only then is the
//! item armed; firing it finds no pool-workqueue. Loom finds it with one
//! preemption (the caller's, right after its check), so `destroy` runs on
//! the spawned thread and the queueing on the model's own.

use crate::scenarios::{spawn, system, workqueue, Counter};
use crate::{FaultPlan, ModelPlatform};
use cmwq::{DelayedWork, QueueError};
use core::time::Duration;

/// Far enough that the frozen model clock never reaches it.
const DELAY: Duration = Duration::from_secs(1);

/// Q6 with delayed items — `queue_delayed` racing `destroy`: `Ok(true)`
/// means the item is armed where `destroy` waits for it (firing it now
/// runs it exactly once); a refusal leaves it idle.
pub fn destroy_racing_queue_delayed<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let item = {
        let r = runs.clone();
        DelayedWork::<P>::new(move || {
            r.inc();
        })
    };
    let destroyer = {
        let wq = wq.clone();
        spawn(&system, move || wq.destroy().expect("destroy from outside the workqueue"))
    };
    match wq.queue_delayed(&item, DELAY) {
        Ok(accepted) => {
            assert!(accepted, "the item was idle, so an accepted call queues it");
            assert!(item.flush().expect("flush from outside"), "an accepted delayed item was not pending");
            assert_eq!(runs.get(), 1, "an accepted delayed item did not run");
        }
        Err(QueueError::Destroyed { .. } | QueueError::Draining { .. }) => {
            assert!(item.busy().is_idle(), "a refused item was left pending")
        }
        Err(err) => panic!("unexpected refusal: {err}"),
    }
    P::join(destroyer);
    assert!(item.busy().is_idle(), "the item outlived destroy pending");
}

/// Q6 with delayed items — `mod_delayed` racing `destroy` while the item
/// is queued: an accepted call replaces (or follows) the queued instance
/// and the re-armed item runs once fired; a refused call must not have
/// taken the queued instance away first, so `destroy` drains it.
pub fn destroy_racing_mod_delayed<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let item = {
        let r = runs.clone();
        DelayedWork::<P>::new(move || {
            r.inc();
        })
    };
    assert!(wq.queue_delayed(&item, Duration::ZERO).expect("queued before destroy"));
    let destroyer = {
        let wq = wq.clone();
        spawn(&system, move || wq.destroy().expect("destroy from outside the workqueue"))
    };
    match wq.mod_delayed(&item, DELAY) {
        Ok(was_pending) => {
            // The queued instance was taken over (it did not run) or had
            // already started (it ran, or runs, once on its own).
            assert!(item.flush().expect("flush from outside"), "an accepted delayed item was not pending");
            P::join(destroyer);
            let expected = if was_pending { 1 } else { 2 };
            assert_eq!(runs.get(), expected, "accepted: the re-armed item must run once more");
        }
        Err(QueueError::Destroyed { .. } | QueueError::Draining { .. }) => {
            P::join(destroyer);
            assert_eq!(runs.get(), 1, "refused: the queued instance must still have run (drained)");
        }
        Err(err) => panic!("unexpected refusal: {err}"),
    }
    assert!(item.busy().is_idle(), "the item outlived destroy pending");
}

/// Q6, rule M30 — a delayed item armed again during its own firing. The
/// firing (here `flush`, firing the timer early) inserts the item, then
/// takes it off the delayed set; between the two, the item runs on a
/// worker and arms itself again. The set must count both armings, so that
/// the new timer stays where destroy waits for it: a destroy racing the
/// second firing (`flush` again: time is frozen) returns only after the
/// item ran a second time. Before the fix, the firing's removal took the
/// new arming too (or the re-arming tripped an assertion, a panic the
/// workqueue counts): destroy could take the pool-workqueues away with the
/// timer still armed, and its firing found nowhere to queue the item.
pub fn delayed_rearmed_during_its_firing<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let slot: crate::scenarios::WqSlot<P> = crate::scenarios::wq_slot(&wq);
    let me: std::sync::Arc<P::Mutex<Option<DelayedWork<P>>>> = std::sync::Arc::new(P::mutex_new(None));
    let item = {
        let (runs, slot, me) = (runs.clone(), slot.clone(), me.clone());
        DelayedWork::<P>::new(move || {
            if runs.inc() == 0 {
                let wq = P::mutex_lock(&slot).clone();
                let item = P::mutex_lock(&me).clone();
                if let (Some(wq), Some(item)) = (wq, item) {
                    assert_eq!(wq.queue_delayed(&item, DELAY).ok(), Some(true), "re-armed");
                }
            }
        })
    };
    *P::mutex_lock(&me) = Some(item.clone());
    assert_eq!(wq.queue_delayed(&item, DELAY).ok(), Some(true));
    item.flush().expect("fired and waited for");
    // The first run (and its re-arming) is over; break the item's cycle.
    *P::mutex_lock(&slot) = None;
    *P::mutex_lock(&me) = None;
    assert_eq!(wq.panic_count(), 0, "the re-arming panicked");
    let destroyer = {
        let wq = wq.clone();
        spawn(&system, move || wq.destroy().expect("destroyed"))
    };
    item.flush().expect("the re-armed timer fired and waited for");
    P::join(destroyer);
    assert_eq!(runs.get(), 2, "the re-armed item did not run before destroy returned");
}
