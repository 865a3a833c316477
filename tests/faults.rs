//! Faults and bad input: panicking items are contained; self-deadlocking
//! waits and bad arguments return errors with useful messages.

use cmwq::{BuildError, DelayedWork, QueueError, System, WaitError, Work, Workqueue};
use cmwq_tests::{system, wait_until, wq, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Guarantee: a panicking item is caught and counted (and reported per
/// workqueue); its worker survives; other items are unaffected; a flush
/// waiting for it is released.
#[test]
fn panicking_item_is_contained() {
    let system = system(1);
    let wq = wq(&system, "panicky");
    let other_wq = wq_named(&system, "bystander");
    let gate = Arc::new(Gate::new());
    let boom = {
        let g = gate.clone();
        Work::new(move || {
            g.wait();
            panic!("boom: item failed");
        })
    };
    wq.queue(&boom).unwrap();
    let flushed = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (b, f) = (boom.clone(), flushed.clone());
        thread::spawn(move || {
            assert!(b.flush().unwrap());
            f.store(true, SeqCst);
        })
    };
    let tid = Arc::new(Mutex::new(None));
    let runs = Arc::new(AtomicUsize::new(0));
    gate.open();
    flusher.join().expect("the flush waiter was released");
    assert!(flushed.load(SeqCst));
    assert_eq!(wq.panic_count(), 1);
    let reports = wq.take_panics();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].workqueue, "panicky");
    assert!(reports[0].message.contains("boom: item failed"), "{:?}", reports[0]);
    assert!(wq.take_panics().is_empty(), "reports are taken once");
    assert_eq!(other_wq.panic_count(), 0, "counted on the item's own workqueue only");
    // The pool still works, and the item itself can be queued again.
    for _ in 0..100 {
        let (t, r) = (tid.clone(), runs.clone());
        let item = Work::new(move || {
            *t.lock().unwrap() = Some(thread::current().id());
            r.fetch_add(1, SeqCst);
        });
        other_wq.queue(&item).unwrap();
    }
    other_wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 100);
    assert!(boom.busy().is_idle());
    wq.queue(&boom).unwrap();
    wq.flush().unwrap();
    assert_eq!(wq.panic_count(), 2);
    assert_eq!(system.pool_stats()[0].running, 0, "no worker left counted as running");
}

fn wq_named(system: &System, name: &str) -> Workqueue {
    Workqueue::builder(name).build(system).unwrap()
}

/// Many panics in a row on one CPU: the worker keeps serving.
#[test]
fn repeated_panics_do_not_exhaust_workers() {
    // Without blocking detection: the panic hook reads debug info and writes
    // stderr for each backtrace, a blocking the monitor would see, starting
    // workers (idle afterwards, not leaked) that would blur the count.
    let system = System::builder().cpus(1).detect_blocking(None).build().unwrap();
    let wq = wq(&system, "panics");
    let items: Vec<Work> = (0..200).map(|i| Work::new(move || panic!("panic {i}"))).collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(wq.panic_count(), 200);
    assert_eq!(wq.take_panics().len(), 64, "the most recent 64 reports are kept");
    assert!(system.pool_stats()[0].workers <= 3, "panics did not leak workers");
}

/// Guarantee: flush_work / cancel_sync of the running item from inside
/// itself return an error instead of hanging.
#[test]
fn self_wait_on_own_item_is_an_error() {
    let system = system(1);
    let wq = wq(&system, "self_wait");
    let results = Arc::new(Mutex::new(Vec::new()));
    let item = {
        let r = results.clone();
        Work::with_self(move |me| {
            r.lock().unwrap().push(me.flush().map(|_| ()));
            r.lock().unwrap().push(me.cancel_sync().map(|_| ()));
        })
    };
    wq.queue(&item).unwrap();
    wq.flush().unwrap();
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], Err(WaitError::OwnWork { operation: "flush_work" }));
    assert_eq!(results[1], Err(WaitError::OwnWork { operation: "cancel_sync" }));
    let message = results[0].clone().unwrap_err().to_string();
    assert!(message.contains("wait for itself"), "{message}");

    // The same for a delayed item flushing itself.
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let dwork = Arc::new(Mutex::new(None::<DelayedWork>));
    let d = dwork.clone();
    let delayed = DelayedWork::new(move || {
        let me = d.lock().unwrap().clone().unwrap();
        *s.lock().unwrap() = Some(me.flush().is_err());
    });
    *dwork.lock().unwrap() = Some(delayed.clone());
    wq.queue_delayed(&delayed, Duration::from_millis(1)).unwrap();
    wait_until("delayed item ran", || seen.lock().unwrap().is_some());
    assert_eq!(*seen.lock().unwrap(), Some(true));
    *dwork.lock().unwrap() = None; // break the cycle
}

/// Guarantee: flush_workqueue / drain / destroy from an item of the same
/// workqueue return an error; waiting on another workqueue is fine.
#[test]
fn waiting_on_own_workqueue_is_an_error() {
    let system = system(1);
    let wq = wq(&system, "own");
    let other = wq_named(&system, "other");
    let results = Arc::new(Mutex::new(Vec::new()));
    let item = {
        let (r, q, o) = (results.clone(), wq.clone(), other.clone());
        Work::new(move || {
            let mut r = r.lock().unwrap();
            r.push(q.flush());
            r.push(q.drain());
            r.push(q.destroy());
            r.push(o.flush()); // a different workqueue: allowed
        })
    };
    wq.queue(&item).unwrap();
    wq.flush().unwrap();
    let results = results.lock().unwrap();
    for (i, op) in ["flush_workqueue", "drain_workqueue", "destroy_workqueue"].iter().enumerate() {
        assert_eq!(results[i], Err(WaitError::OwnWorkqueue { operation: op, workqueue: "own".into() }));
    }
    assert_eq!(results[3], Ok(()));
    assert!(results[0].clone().unwrap_err().to_string().contains("`own`"));
    drop(results);
    // The refused destroy did not destroy anything.
    assert!(wq.queue(&item).unwrap());
    wq.flush().unwrap();
}

/// Guarantee: queue_on a CPU that does not exist is an error naming the
/// valid range, and hands the item back without leaving it pending.
#[test]
fn queue_on_missing_cpu_is_an_error() {
    let system = system(2);
    let wq = wq(&system, "cpus");
    let item = Work::new(|| {});
    match wq.queue_on(2, &item) {
        Err(err @ QueueError::NoSuchCpu { cpu: 2, cpus: 2, .. }) => {
            assert!(err.to_string().contains("CPUs 0..2"), "{err}");
            assert_eq!(err.into_work(), item);
        }
        other => panic!("expected NoSuchCpu, got {other:?}"),
    }
    assert!(item.busy().is_idle());
    let delayed = DelayedWork::new(|| {});
    assert!(matches!(
        wq.queue_delayed_on(9, &delayed, Duration::from_secs(1)),
        Err(QueueError::NoSuchCpu { cpu: 9, .. })
    ));
    assert!(matches!(wq.mod_delayed_on(9, &delayed, Duration::ZERO), Err(QueueError::NoSuchCpu { .. })));
    assert!(delayed.busy().is_idle());
}

/// Bad configuration is refused with messages that name the limit.
#[test]
fn bad_configuration_is_refused() {
    let system = system(1);
    let err = Workqueue::builder("big").max_active(513).build(&system).unwrap_err();
    assert_eq!(err, BuildError::MaxActiveTooLarge { requested: 513, limit: 512 });
    assert!(err.to_string().contains("limit of 512"), "{err}");
    assert!(Workqueue::builder("max").max_active(512).build(&system).is_ok());
    let default = Workqueue::builder("default").max_active(0).build(&system).unwrap();
    assert_eq!(default.max_active(), 256);
    let err = Workqueue::builder("ordered").ordered().max_active(2).build(&system).unwrap_err();
    assert_eq!(err, BuildError::OrderedMaxActive { requested: 2 });
    let ordered = Workqueue::builder("ordered").ordered().build(&system).unwrap();
    assert!(ordered.set_max_active(4).is_err());
    let err = System::builder().cpus(0).build().unwrap_err();
    assert_eq!(err, BuildError::OutOfRange { field: "cpus", value: "0".into(), allowed: "1..=8192".into() });
    assert_eq!(err.to_string(), "cpus = 0 is out of range; allowed: 1..=8192");
    let err = System::builder().max_workers_per_pool(0).build().unwrap_err();
    assert!(matches!(err, BuildError::OutOfRange { field: "max_workers_per_pool", .. }), "{err:?}");
}

/// A system whose pools may hold one worker each still runs everything
/// (no spare can be created; the lone worker works without one).
#[test]
fn worker_limit_does_not_lose_work() {
    let system = System::builder().cpus(1).max_workers_per_pool(1).build().unwrap();
    let wq = wq(&system, "limited");
    let runs = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..100)
        .map(|_| {
            let r = runs.clone();
            Work::new(move || {
                cmwq::sleep(Duration::from_micros(10));
                r.fetch_add(1, SeqCst);
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 100);
    assert_eq!(system.pool_stats()[0].workers, 1);
}
