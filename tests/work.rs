//! Work item guarantees on real threads: exactly-once execution, pending
//! coalescing, requeue during execution, flush_work, cancel, delayed work.

use cmwq::{current_work, DelayedWork, Work};
use cmwq_tests::{system, system_holding, wait_until, wq, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn counting_work(counter: &Arc<AtomicUsize>) -> Work {
    let c = counter.clone();
    Work::new(move || {
        c.fetch_add(1, SeqCst);
    })
}

/// Guarantee: exactly one execution per successful queueing. Eight threads
/// race to queue 64 shared items 2,000 times each.
#[test]
fn exactly_once_per_successful_queueing() {
    let system = system(4);
    let wq = wq(&system, "exactly_once");
    let runs: Vec<Arc<AtomicUsize>> = (0..64).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let items: Vec<Work> = runs.iter().map(counting_work).collect();
    let successes: Vec<Arc<AtomicUsize>> = (0..64).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    thread::scope(|s| {
        for t in 0..8 {
            let (wq, items, successes) = (&wq, &items, &successes);
            s.spawn(move || {
                for i in 0..2000 {
                    let k = (i * 7 + t * 13) % items.len();
                    let cpu = (i + t) % 4;
                    if wq.queue_on(cpu, &items[k]).unwrap() {
                        successes[k].fetch_add(1, SeqCst);
                    }
                }
            });
        }
    });
    wq.flush().unwrap();
    let mut total = 0;
    for k in 0..items.len() {
        assert!(items[k].busy().is_idle());
        assert_eq!(runs[k].load(SeqCst), successes[k].load(SeqCst), "item {k}: executions != successful queueings");
        total += runs[k].load(SeqCst);
    }
    assert!(total > 0);
}

/// Guarantee: queueing an already-pending item returns false and adds
/// nothing.
#[test]
fn pending_item_coalesces() {
    let system = system_holding(1);
    let wq = wq(&system, "coalesce");
    // Hold the only CPU with an unannotated block so nothing else runs.
    let gate = Arc::new(Gate::new());
    let started = Arc::new(AtomicBool::new(false));
    let (g, st) = (gate.clone(), started.clone());
    let hog = Work::new(move || {
        st.store(true, SeqCst);
        g.wait_unannotated();
    });
    wq.queue(&hog).unwrap();
    wait_until("hog started", || started.load(SeqCst));
    let runs = Arc::new(AtomicUsize::new(0));
    let item = counting_work(&runs);
    assert!(wq.queue(&item).unwrap(), "first queueing succeeds");
    for _ in 0..10 {
        assert!(!wq.queue(&item).unwrap(), "queueing a pending item must return false");
        assert!(!wq.queue_on(0, &item).unwrap());
    }
    assert!(item.busy().pending);
    gate.open();
    item.flush().unwrap();
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 1, "coalesced queueings ran once");
}

/// Guarantee: queueing an item while it executes yields exactly one more
/// execution afterwards (PENDING is cleared before the function runs).
#[test]
fn queueing_during_execution_runs_once_more() {
    let system = system(2);
    let wq = wq(&system, "requeue");
    for _ in 0..200 {
        let gate = Arc::new(Gate::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (g, r) = (gate.clone(), runs.clone());
        let item = Work::new(move || {
            if r.fetch_add(1, SeqCst) == 0 {
                g.wait();
            }
        });
        wq.queue(&item).unwrap();
        wait_until("first run started", || runs.load(SeqCst) == 1);
        assert!(item.busy().running && !item.busy().pending);
        assert!(wq.queue(&item).unwrap(), "not pending while running: queueing succeeds");
        assert!(!wq.queue(&item).unwrap(), "now pending: coalesces");
        gate.open();
        item.flush().unwrap();
        assert_eq!(runs.load(SeqCst), 2);
        assert!(item.busy().is_idle());
    }
}

/// Guarantee: flush_work returns false for an idle item, and otherwise waits
/// for the last instance queued before it, including one queued while the
/// item ran.
#[test]
fn flush_work_waits_for_last_queued_instance() {
    let system = system(2);
    let wq = wq(&system, "flush_work");
    let runs = Arc::new(AtomicUsize::new(0));
    let item = counting_work(&runs);
    assert!(!item.flush().unwrap(), "idle: nothing to wait for");

    let gate = Arc::new(Gate::new());
    let (g, r) = (gate.clone(), runs.clone());
    let slow = Work::new(move || {
        r.fetch_add(1, SeqCst);
        g.wait();
    });
    wq.queue(&slow).unwrap();
    wait_until("slow running", || runs.load(SeqCst) == 1);
    wq.queue(&slow).unwrap(); // second instance, queued while the first runs
    let flushed = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (slow, flushed) = (slow.clone(), flushed.clone());
        thread::spawn(move || {
            let waited = slow.flush().unwrap();
            flushed.store(true, SeqCst);
            waited
        })
    };
    thread::sleep(Duration::from_millis(20));
    assert!(!flushed.load(SeqCst), "flush_work returned while the item was still blocked");
    gate.open();
    assert!(waiter.join().unwrap(), "flush_work reports that it waited");
    assert_eq!(runs.load(SeqCst), 2, "both instances ran before flush_work returned");
    assert!(slow.busy().is_idle());
}

/// Guarantee: cancel takes a pending item off its queue (returns true) and
/// it never runs; cancel of an idle item returns false.
#[test]
fn cancel_pending_item() {
    let system = system_holding(1);
    let wq = wq(&system, "cancel");
    let gate = Arc::new(Gate::new());
    let started = Arc::new(AtomicBool::new(false));
    let (g, st) = (gate.clone(), started.clone());
    let hog = Work::new(move || {
        st.store(true, SeqCst);
        g.wait_unannotated();
    });
    wq.queue(&hog).unwrap();
    wait_until("hog started", || started.load(SeqCst));
    let runs = Arc::new(AtomicUsize::new(0));
    let item = counting_work(&runs);
    wq.queue(&item).unwrap();
    assert!(item.cancel(), "pending: cancelled");
    assert!(!item.cancel(), "idle now");
    assert!(item.busy().is_idle());
    assert!(!item.flush().unwrap());
    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 0, "a cancelled item must not run");
    // It can be queued again afterwards.
    assert!(wq.queue(&item).unwrap());
    item.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 1);
}

/// Guarantee: cancel_sync leaves the item neither pending nor running, also
/// for an item that requeues itself on every run.
#[test]
fn cancel_sync_stops_self_requeueing_item() {
    let system = system(2);
    let wq = wq(&system, "cancel_sync");
    for round in 0..50 {
        let runs = Arc::new(AtomicUsize::new(0));
        let (r, q) = (runs.clone(), wq.clone());
        let item = Work::with_self(move |me| {
            r.fetch_add(1, SeqCst);
            let _ = q.queue(me);
        });
        wq.queue_on(round % 2, &item).unwrap();
        wait_until("item spinning", || runs.load(SeqCst) >= 3);
        item.cancel_sync().unwrap();
        assert!(item.busy().is_idle(), "round {round}: not idle after cancel_sync");
        let after = runs.load(SeqCst);
        wq.flush().unwrap();
        assert_eq!(runs.load(SeqCst), after, "round {round}: ran after cancel_sync returned");
    }
}

/// Guarantee: executions + cancelled pending instances == successful
/// queueings, while cancel_sync races queueing from other threads.
#[test]
fn cancel_sync_racing_queueing_keeps_exact_accounting() {
    let system = system(2);
    let wq = wq(&system, "cancel_race");
    let runs = Arc::new(AtomicUsize::new(0));
    let item = counting_work(&runs);
    let queued = AtomicUsize::new(0);
    let cancelled = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for t in 0..2 {
            let (wq, item, queued, stop) = (&wq, &item, &queued, &stop);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(SeqCst) {
                    if wq.queue_on((i + t) % 2, item).unwrap() {
                        queued.fetch_add(1, SeqCst);
                    }
                    i += 1;
                }
            });
        }
        for _ in 0..2000 {
            if item.cancel_sync().unwrap() {
                cancelled.fetch_add(1, SeqCst);
            }
            if item.cancel() {
                cancelled.fetch_add(1, SeqCst);
            }
        }
        stop.store(true, SeqCst);
    });
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst) + cancelled.load(SeqCst), queued.load(SeqCst));
}

/// `current_work()` and `busy()` as seen from inside and outside an item.
#[test]
fn current_work_and_busy() {
    let system = system(1);
    let wq = wq(&system, "current");
    let seen = Arc::new(AtomicBool::new(false));
    let s = seen.clone();
    let item = Work::with_self(move |me| {
        let current = current_work().expect("a worker knows its item");
        assert_eq!(&current, me);
        let busy = me.busy();
        assert!(busy.running && !busy.pending);
        s.store(true, SeqCst);
    });
    assert!(current_work().is_none());
    assert!(item.busy().is_idle());
    wq.queue(&item).unwrap();
    wq.flush().unwrap();
    assert!(seen.load(SeqCst));
    assert_eq!(wq.panic_count(), 0, "assertions inside the item held");
}

/// Delayed work: queue, coalesce, cancel, mod, flush.
#[test]
fn delayed_work_lifecycle() {
    let system = system(2);
    let wq = wq(&system, "delayed");
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let item = DelayedWork::new(move || {
        r.fetch_add(1, SeqCst);
    });
    let hour = Duration::from_secs(3600);
    // Far-future timer: pending, coalesces, cancellable.
    assert!(wq.queue_delayed(&item, hour).unwrap());
    assert!(item.busy().pending);
    assert!(!wq.queue_delayed(&item, hour).unwrap(), "pending on its timer: coalesces");
    assert!(!wq.queue(item.work()).unwrap(), "pending on its timer: plain queue coalesces too");
    assert!(item.cancel());
    assert!(item.busy().is_idle());
    // mod_delayed pulls a far-future timer in.
    assert!(wq.queue_delayed(&item, hour).unwrap());
    assert!(wq.mod_delayed(&item, Duration::ZERO).unwrap(), "was pending");
    wait_until("modded item ran", || runs.load(SeqCst) == 1);
    assert!(!wq.mod_delayed_on(1, &item, hour).unwrap(), "was idle");
    // flush fires the timer now and waits.
    let busy = item.busy();
    assert!(item.flush().unwrap(), "{busy:?}");
    assert_eq!(runs.load(SeqCst), 2);
    // A short real delay runs on its own.
    assert!(wq.queue_delayed_on(0, &item, Duration::from_millis(5)).unwrap());
    wait_until("delayed item ran", || runs.load(SeqCst) == 3);
    // cancel_sync of an armed timer.
    assert!(wq.queue_delayed(&item, hour).unwrap());
    assert!(item.cancel_sync().unwrap());
    assert!(!item.cancel_sync().unwrap());
    wq.drain().unwrap();
    assert_eq!(runs.load(SeqCst), 3);
}

/// Drain waits for armed delayed items as well (no work is lost at destroy).
#[test]
fn drain_waits_for_delayed_items() {
    let system = system(1);
    let wq = wq(&system, "drain_delayed");
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let item = DelayedWork::new(move || {
        r.fetch_add(1, SeqCst);
    });
    wq.queue_delayed(&item, Duration::from_millis(30)).unwrap();
    wq.drain().unwrap();
    assert_eq!(runs.load(SeqCst), 1);
}

/// Sets its flag when dropped: an item's captured state.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Once a flush of the workqueue has returned, the engine holds no
/// reference to a finished item: the user's handle is the last one, and
/// dropping it drops the captured state at once, on the user's thread.
#[test]
fn after_a_flush_the_users_handle_is_the_last_reference() {
    let system = system(1);
    let wq = wq(&system, "last-ref");
    for round in 0..200 {
        let dropped = Arc::new(AtomicBool::new(false));
        let state = DropFlag(dropped.clone());
        let work = Work::new(move || {
            let _ = &state;
        });
        wq.queue(&work).unwrap();
        wq.flush().unwrap();
        drop(work);
        assert!(dropped.load(SeqCst), "round {round}: the captured state outlived the last user handle");
    }
}
