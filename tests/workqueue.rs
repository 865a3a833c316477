//! Workqueue guarantees on real threads: flush colours, max_active and the
//! inactive list, ordered workqueues, drain, destroy, the system workqueues.

use cmwq::{QueueError, System, Work, Workqueue};
use cmwq_tests::{system, threads_left_after_join, threads_named, wait_until, wq, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Tracks how many items run at once and the order they started in.
#[derive(Default)]
struct Tracker {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    order: Mutex<Vec<usize>>,
}

impl Tracker {
    fn enter(&self, id: usize) {
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        self.order.lock().unwrap().push(id);
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, SeqCst);
    }
}

/// Guarantee: flush_workqueue waits for what was queued before it and not
/// for what was queued after it started.
#[test]
fn flush_waits_for_earlier_items_only() {
    let system = system(2);
    let mut builder = Workqueue::builder("flush_colours");
    let wq = builder.unbound().build(&system).unwrap();
    let (gate_a, gate_b) = (Arc::new(Gate::new()), Arc::new(Gate::new()));
    let (a_done, b_done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let a = {
        let (g, d) = (gate_a.clone(), a_done.clone());
        Work::new(move || {
            g.wait();
            d.store(true, SeqCst);
        })
    };
    let b = {
        let (g, d) = (gate_b.clone(), b_done.clone());
        Work::new(move || {
            g.wait();
            d.store(true, SeqCst);
        })
    };
    wq.queue(&a).unwrap();
    let flushed = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (wq, flushed) = (wq.clone(), flushed.clone());
        thread::spawn(move || {
            wq.flush().unwrap();
            flushed.store(true, SeqCst);
        })
    };
    wait_until("flush started", || wq.flushes_in_progress() == 1);
    wq.queue(&b).unwrap(); // queued after the flush started
    thread::sleep(Duration::from_millis(20));
    assert!(!flushed.load(SeqCst), "flush returned before an earlier item finished");
    gate_a.open();
    wait_until("flush returned", || flushed.load(SeqCst));
    assert!(a_done.load(SeqCst), "earlier item finished before flush returned");
    assert!(!b_done.load(SeqCst), "the later item is still blocked: flush did not wait for it");
    flusher.join().unwrap();
    gate_b.open();
    wq.flush().unwrap();
    assert!(b_done.load(SeqCst));
}

/// Guarantee: queueing after a flush started cannot livelock it, even an
/// item that requeues itself forever.
#[test]
fn flush_is_not_livelocked_by_requeueing() {
    let system = system(2);
    let wq = wq(&system, "livelock");
    let stop = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicUsize::new(0));
    let item = {
        let (q, stop, runs) = (wq.clone(), stop.clone(), runs.clone());
        Work::with_self(move |me| {
            runs.fetch_add(1, SeqCst);
            if !stop.load(SeqCst) {
                let _ = q.queue(me);
            }
        })
    };
    wq.queue(&item).unwrap();
    for _ in 0..100 {
        wq.flush().unwrap();
    }
    stop.store(true, SeqCst);
    item.cancel_sync().unwrap();
    assert!(runs.load(SeqCst) > 0);
}

/// Many flushers at once (more than the 15 colours in flight) and concurrent
/// queueing: every flush returns, and each sees its earlier items done.
#[test]
fn many_concurrent_flushers() {
    let system = system(2);
    let wq = wq(&system, "flushers");
    thread::scope(|s| {
        for t in 0..24 {
            let wq = &wq;
            s.spawn(move || {
                for i in 0..50 {
                    let done = Arc::new(AtomicBool::new(false));
                    let d = done.clone();
                    let item = Work::new(move || {
                        if i % 3 == 0 {
                            cmwq::sleep(Duration::from_micros(200));
                        }
                        d.store(true, SeqCst);
                    });
                    wq.queue_on((t + i) % 2, &item).unwrap();
                    wq.flush().unwrap();
                    assert!(done.load(SeqCst), "flush returned before an item queued earlier finished");
                }
            });
        }
    });
}

/// Guarantee: max_active bounds the items in flight per pool; the rest wait
/// on the inactive list and start in FIFO order.
#[test]
fn max_active_bounds_and_activates_fifo() {
    let system = system(1);
    let mut builder = Workqueue::builder("max_active");
    let wq = builder.max_active(2).build(&system).unwrap();
    let tracker = Arc::new(Tracker::default());
    let items: Vec<Work> = (0..20)
        .map(|id| {
            let t = tracker.clone();
            Work::new(move || {
                t.enter(id);
                cmwq::sleep(Duration::from_millis(2)); // blocks: lets another worker start
                t.leave();
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(tracker.max_in_flight.load(SeqCst), 2, "two in flight at most, and blocking lets the second start");
    assert_eq!(*tracker.order.lock().unwrap(), (0..20).collect::<Vec<_>>(), "FIFO activation");
}

/// Cancelling an inactive item frees no active slot (the 2010 kernel bug):
/// max_active still holds afterwards.
#[test]
fn cancelling_inactive_item_keeps_max_active() {
    let system = system(1);
    let mut builder = Workqueue::builder("inactive_cancel");
    let wq = builder.max_active(1).build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let tracker = Arc::new(Tracker::default());
    let items: Vec<Work> = (0..4)
        .map(|id| {
            let (g, t) = (gate.clone(), tracker.clone());
            Work::new(move || {
                t.enter(id);
                g.wait();
                t.leave();
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wait_until("first active", || tracker.in_flight.load(SeqCst) == 1);
    assert!(items[1].cancel(), "inactive item cancelled");
    thread::sleep(Duration::from_millis(20));
    assert_eq!(tracker.in_flight.load(SeqCst), 1, "cancelling an inactive item must not let another start");
    gate.open();
    wq.flush().unwrap();
    assert_eq!(tracker.max_in_flight.load(SeqCst), 1);
    assert_eq!(*tracker.order.lock().unwrap(), vec![0, 2, 3]);
}

/// set_max_active at run time activates waiting items at once.
#[test]
fn set_max_active_at_run_time() {
    let system = system(1);
    let mut builder = Workqueue::builder("set_max_active");
    let wq = builder.max_active(1).build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let tracker = Arc::new(Tracker::default());
    let items: Vec<Work> = (0..4)
        .map(|id| {
            let (g, t) = (gate.clone(), tracker.clone());
            Work::new(move || {
                t.enter(id);
                g.wait();
                t.leave();
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wait_until("one active", || tracker.in_flight.load(SeqCst) == 1);
    wq.set_max_active(3).unwrap();
    assert_eq!(wq.max_active(), 3);
    wait_until("three active", || tracker.in_flight.load(SeqCst) == 3);
    gate.open();
    wq.flush().unwrap();
    assert_eq!(tracker.max_in_flight.load(SeqCst), 3);
    assert!(wq.set_max_active(513).is_err());
}

/// Guarantee: an ordered workqueue runs one item at a time, in queueing
/// order, under concurrent queueing from several threads.
#[test]
fn ordered_runs_one_at_a_time_in_queueing_order() {
    let system = system(2);
    let mut builder = Workqueue::builder("ordered");
    let wq = builder.ordered().build(&system).unwrap();
    assert!(wq.is_ordered() && wq.is_unbound());
    let tracker = Arc::new(Tracker::default());
    let queue_lock = Mutex::new(0usize);
    let expected = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..4 {
            let (wq, tracker, queue_lock, expected) = (&wq, &tracker, &queue_lock, &expected);
            s.spawn(move || {
                for i in 0..150 {
                    let mut next = queue_lock.lock().unwrap();
                    let id = *next;
                    *next += 1;
                    let t = tracker.clone();
                    let item = Work::new(move || {
                        t.enter(id);
                        if i % 10 == 0 {
                            cmwq::sleep(Duration::from_micros(100));
                        }
                        t.leave();
                    });
                    wq.queue(&item).unwrap();
                    expected.lock().unwrap().push(id);
                    drop(next);
                }
            });
        }
    });
    wq.flush().unwrap();
    assert_eq!(tracker.max_in_flight.load(SeqCst), 1, "ordered: one at a time");
    assert_eq!(*tracker.order.lock().unwrap(), *expected.lock().unwrap(), "ordered: queueing order");
}

/// Guarantee: drain_workqueue accepts only chained queueing and returns when
/// the workqueue is empty; outside queueing gets the item back.
#[test]
fn drain_accepts_only_chained_queueing() {
    let system = system(2);
    let wq = wq(&system, "drain");
    let gate = Arc::new(Gate::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let chain = {
        let (q, g, r) = (wq.clone(), gate.clone(), runs.clone());
        Work::with_self(move |me| {
            if r.fetch_add(1, SeqCst) == 0 {
                g.wait();
            }
            if r.load(SeqCst) < 100 {
                q.queue(me).expect("chained queueing is accepted while draining");
            }
        })
    };
    wq.queue(&chain).unwrap();
    let drained = Arc::new(AtomicBool::new(false));
    let drainer = {
        let (wq, drained) = (wq.clone(), drained.clone());
        thread::spawn(move || {
            wq.drain().unwrap();
            drained.store(true, SeqCst);
        })
    };
    wait_until("drain started", || wq.is_draining());
    let outsider = Work::new(|| {});
    match wq.queue(&outsider) {
        Err(err @ QueueError::Draining { .. }) => {
            assert!(err.to_string().contains("draining"), "{err}");
            assert_eq!(err.into_work(), outsider, "the item is handed back");
        }
        other => panic!("outside queueing during drain must fail, got {other:?}"),
    }
    assert!(outsider.busy().is_idle(), "the refused item is not left pending");
    gate.open();
    drainer.join().unwrap();
    assert!(drained.load(SeqCst));
    assert_eq!(runs.load(SeqCst), 100, "the whole chain ran before drain returned");
    assert!(!wq.is_draining());
    assert!(wq.queue(&outsider).unwrap(), "queueing works again after the drain");
    wq.flush().unwrap();
}

/// Destroy drains first; later queueing through any clone is refused; the
/// last handle going destroys as well.
#[test]
fn destroy_drains_then_refuses() {
    let system = system(2);
    let wq = wq(&system, "destroy");
    let runs = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..50)
        .map(|i| {
            let r = runs.clone();
            Work::new(move || {
                if i % 5 == 0 {
                    cmwq::sleep(Duration::from_millis(1));
                }
                r.fetch_add(1, SeqCst);
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    let clone = wq.clone();
    wq.destroy().unwrap();
    assert_eq!(runs.load(SeqCst), 50, "destroy ran everything queued first");
    match clone.queue(&items[0]) {
        Err(QueueError::Destroyed { work, .. }) => assert_eq!(work, items[0]),
        other => panic!("queueing after destroy must fail, got {other:?}"),
    }
    wq.destroy().unwrap(); // idempotent

    let wq2 = cmwq_tests::wq(&system, "dropped");
    for item in &items {
        wq2.queue(item).unwrap();
    }
    drop(wq2);
    assert_eq!(runs.load(SeqCst), 100, "dropping the last handle drained the workqueue");
}

/// Shutting a system down joins every thread it started, including workers
/// created under load.
#[test]
fn system_shutdown_leaks_no_thread() {
    let system = System::builder().cpus(2).thread_name_prefix("leakchk").build().unwrap();
    if cfg!(target_os = "linux") {
        // One worker per pool (4 bound, 2 unbound) and the timer; threads
        // name themselves as they start.
        wait_until("threads started", || threads_named("leakchk") >= 7);
    }
    let wq = Workqueue::builder("load").build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let items: Vec<Work> = (0..8)
        .map(|_| {
            let g = gate.clone();
            Work::new(move || g.wait())
        })
        .collect();
    for item in &items {
        wq.queue_on(0, item).unwrap();
    }
    wait_until("workers created for blocked items", || system.pool_stats()[0].workers >= 9);
    gate.open();
    drop(wq);
    drop(system);
    if cfg!(target_os = "linux") {
        assert_eq!(threads_left_after_join("leakchk"), 0, "threads left after shutdown");
    }
}

/// The default system's workqueues run items on the expected pools.
#[test]
fn system_workqueues_run_items() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let queues = [cmwq::system_wq(), cmwq::system_highpri_wq(), cmwq::system_long_wq(), cmwq::system_unbound_wq()];
    for wq in queues {
        let n = names.clone();
        let item = Work::new(move || {
            n.lock().unwrap().push(thread::current().name().unwrap_or("").to_string());
        });
        wq.queue(&item).unwrap();
        wq.flush().unwrap();
    }
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 4);
    assert!(names[1].ends_with('H'), "highpri worker name: {}", names[1]);
    assert!(names[3].contains("/u:"), "unbound worker name: {}", names[3]);
    assert!(cmwq::default_system().cpus() >= 1);
}
