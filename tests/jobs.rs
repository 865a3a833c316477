//! One-shot jobs (`Workqueue::spawn`, `JobHandle`): a value back from
//! `join`, a panic back as an error (counted first), cancel before start,
//! detach on drop, refusal handing the function back, the guarantees of
//! items (ordering, flush, drain, destroy), and the handle as a `Future`
//! under tokio's current-thread runtime.

use cmwq::{JobError, QueueError, WaitError, Workqueue};
use cmwq_tests::{system, system_holding, wait_until, wq, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

#[path = "ticker.rs"]
mod ticker;
use ticker::with_ticker;

/// Guarantee: `join` returns the job's value; many jobs each return their
/// own, exactly once.
#[test]
fn join_returns_each_jobs_value() {
    let system = system(2);
    let wq = wq(&system, "jobs");
    let runs = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..200u64)
        .map(|n| {
            let runs = runs.clone();
            wq.spawn_on(n as usize % 2, move || {
                runs.fetch_add(1, SeqCst);
                n * 3
            })
            .unwrap()
        })
        .collect();
    let values: Vec<u64> = jobs.into_iter().map(|job| job.join().unwrap()).collect();
    assert_eq!(values, (0..200u64).map(|n| n * 3).collect::<Vec<_>>());
    assert_eq!(runs.load(SeqCst), 200);
}

/// Guarantee: a panic in a job comes back from `join` as an error with its
/// message, and is counted on the workqueue by the time `join` returns.
#[test]
fn a_panicking_job_is_an_error_counted_before_join_returns() {
    let system = system(1);
    let wq = wq(&system, "panicky_jobs");
    for round in 1..=20 {
        let job = wq.spawn(move || -> u32 { panic!("job {round} failed") }).unwrap();
        match job.join() {
            Err(JobError::Panicked { message }) => assert_eq!(message, format!("job {round} failed")),
            other => panic!("expected a panic, got {other:?}"),
        }
        assert_eq!(wq.panic_count(), round, "counted before join returned");
    }
    assert_eq!(wq.spawn(|| 1).unwrap().join().unwrap(), 1, "the workqueue still works");
}

/// Guarantee: `cancel` takes a job that has not started off its queue: its
/// function never runs and `join` says cancelled; a running or finished
/// job is not cancelled.
#[test]
fn cancel_before_start_and_not_after() {
    let system = system(1);
    let wq = Workqueue::builder("ordered_jobs").ordered().build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let started = Arc::new(AtomicBool::new(false));
    let blocker = {
        let (gate, started) = (gate.clone(), started.clone());
        wq.spawn(move || {
            started.store(true, SeqCst);
            gate.wait();
            "blocker"
        })
        .unwrap()
    };
    let ran = Arc::new(AtomicBool::new(false));
    let waiting = {
        let ran = ran.clone();
        wq.spawn(move || ran.store(true, SeqCst)).unwrap()
    };
    wait_until("the blocker runs", || started.load(SeqCst));
    assert!(!blocker.cancel(), "a running job is not cancelled");
    assert!(waiting.cancel(), "a job waiting behind it is");
    assert!(!waiting.cancel(), "once");
    assert!(waiting.is_finished());
    assert_eq!(waiting.join(), Err(JobError::Cancelled));
    gate.open();
    assert_eq!(blocker.join(), Ok("blocker"));
    wq.flush().unwrap();
    assert!(!ran.load(SeqCst), "the cancelled job's function never ran");
}

/// Guarantee: dropping the handle detaches the job: it still runs, and a
/// flush of its workqueue waits for it.
#[test]
fn a_dropped_handle_detaches_and_flush_waits_for_the_job() {
    let system = system(2);
    let wq = wq(&system, "detached_jobs");
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let runs = runs.clone();
        drop(wq.spawn(move || {
            cmwq::sleep(Duration::from_micros(200));
            runs.fetch_add(1, SeqCst);
        }));
    }
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 50, "flush waited for every detached job");
}

/// Guarantee: jobs on an ordered workqueue run one at a time, in the order
/// they were spawned.
#[test]
fn ordered_jobs_run_one_at_a_time_in_order() {
    let system = system(2);
    let wq = Workqueue::builder("ordered").ordered().build(&system).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..30)
        .map(|n| {
            let (log, running) = (log.clone(), running.clone());
            wq.spawn(move || {
                assert_eq!(running.fetch_add(1, SeqCst), 0, "one at a time");
                cmwq::sleep(Duration::from_micros(100));
                log.lock().unwrap().push(n);
                running.fetch_sub(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    for job in jobs {
        job.join().unwrap();
    }
    assert_eq!(*log.lock().unwrap(), (0..30).collect::<Vec<_>>());
}

/// Guarantee: a destroyed workqueue refuses a job and hands the function
/// back; a CPU that does not exist is refused the same way; destroy waits
/// for the jobs queued before it.
#[test]
fn refused_jobs_hand_the_function_back() {
    let system = system(2);
    let wq = wq(&system, "refusing");
    let done = Arc::new(AtomicBool::new(false));
    let last = {
        let done = done.clone();
        wq.spawn(move || {
            cmwq::sleep(Duration::from_millis(5));
            done.store(true, SeqCst);
        })
        .unwrap()
    };
    drop(last);
    wq.destroy().unwrap();
    assert!(done.load(SeqCst), "destroy drained the job queued before it");
    match wq.spawn(|| 7) {
        Err(QueueError::Destroyed { work, workqueue }) => {
            assert_eq!(workqueue, "refusing");
            assert_eq!(work(), 7, "the function comes back, callable");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let live = cmwq_tests::wq(&system, "live");
    match live.spawn_on(5, || 8) {
        Err(QueueError::NoSuchCpu { work, cpu: 5, cpus: 2 }) => assert_eq!(work(), 8),
        other => panic!("expected NoSuchCpu, got {other:?}"),
    }
}

/// Guarantee: a job joining itself gets an error instead of waiting for
/// itself forever.
#[test]
fn a_job_joining_itself_is_an_error() {
    let system = system(1);
    let wq = wq(&system, "self_join");
    let (send, receive) = mpsc::channel::<cmwq::JobHandle<()>>();
    let (report, outcome) = mpsc::channel();
    let receive = Mutex::new(receive);
    let job = wq
        .spawn(move || {
            let me = receive.lock().unwrap().recv().unwrap();
            report.send(me.join()).unwrap();
        })
        .unwrap();
    send.send(job).unwrap();
    match outcome.recv().unwrap() {
        Err(JobError::Wait(WaitError::OwnWork { operation })) => assert_eq!(operation, "JobHandle::join"),
        other => panic!("expected an own-work error, got {other:?}"),
    }
}

/// Guarantee: a job that blocks in `join` on another job of its pool (as
/// a blocking section) does not hold back that job, even on one CPU.
#[test]
fn joining_from_a_job_lets_the_pool_run_the_other() {
    let system = system(1);
    let wq = wq(&system, "nested");
    let inner_wq = wq.clone();
    let outer = wq
        .spawn(move || {
            let inner = inner_wq.spawn(|| 5).unwrap();
            inner.join().unwrap() + 1
        })
        .unwrap();
    assert_eq!(outer.join().unwrap(), 6);
}

/// Guarantee: awaiting a handle does not block the executor thread: on
/// tokio's current-thread runtime, a ticking task keeps running while the
/// job (which sleeps 60 ms on a worker) is awaited, and the await returns
/// the job's value; a panicking job comes back as an error.
#[test]
fn an_awaited_job_leaves_the_executor_thread_free() {
    let system = system(1);
    let wq = wq(&system, "async_jobs");
    let gate = Arc::new(Gate::new());
    let job = {
        let gate = gate.clone();
        wq.spawn(move || {
            gate.wait();
            "done"
        })
        .unwrap()
    };
    // The job cannot finish until the ticker has ticked: only a free
    // executor thread gets it there.
    assert_eq!(with_ticker(&gate, job), Ok("done"));
    let failing = wq.spawn(|| -> u8 { panic!("async boom") }).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(failing), Err(JobError::Panicked { message: "async boom".to_string() }));
    assert_eq!(wq.panic_count(), 1);
}

/// Guarantee: `max_active` bounds jobs as it bounds items: on a workqueue
/// with `max_active` 1 (not ordered), never two jobs run at once, and all
/// of them run.
#[test]
fn max_active_bounds_jobs() {
    let system = system(2);
    let wq = Workqueue::builder("one_at_a_time").max_active(1).build(&system).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..40)
        .map(|_| {
            let (running, overlaps) = (running.clone(), overlaps.clone());
            // All on CPU 0: max_active is per pool.
            wq.spawn_on(0, move || {
                if running.fetch_add(1, SeqCst) > 0 {
                    overlaps.fetch_add(1, SeqCst);
                }
                cmwq::sleep(Duration::from_micros(100));
                running.fetch_sub(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    for job in jobs {
        job.join().unwrap();
    }
    assert_eq!(overlaps.load(SeqCst), 0, "two jobs ran at once under max_active 1");
}

/// Guarantee: `drain` waits for jobs, including jobs spawned by jobs of
/// the same workqueue (chained), and refuses jobs from outside meanwhile
/// handing the function back.
#[test]
fn drain_waits_for_chained_jobs() {
    let system = system(1);
    let wq = wq(&system, "draining_jobs");
    let done = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::new());
    let first = {
        let (wq, done, gate) = (wq.clone(), done.clone(), gate.clone());
        wq.clone()
            .spawn(move || {
                gate.wait();
                let done2 = done.clone();
                // Chained: accepted while the workqueue drains.
                drop(wq.spawn(move || {
                    done2.fetch_add(1, SeqCst);
                }));
                done.fetch_add(1, SeqCst);
            })
            .unwrap()
    };
    let drainer = {
        let wq = wq.clone();
        std::thread::spawn(move || wq.drain().unwrap())
    };
    wait_until("the drain begins", || wq.is_draining());
    match wq.spawn(|| 1) {
        Err(QueueError::Draining { work, .. }) => assert_eq!(work(), 1),
        other => panic!("expected a refusal while draining, got {other:?}"),
    }
    gate.open();
    drainer.join().unwrap();
    assert_eq!(done.load(SeqCst), 2, "the drain waited for the job and the job it spawned");
    first.join().unwrap();
}

/// Guarantee: a job's outcome is its own run's, exactly once: a job that
/// queues its own item again (reachable through `current_work`) still
/// returns its value, and cancelling that second instance reports that the
/// job ran (`false`), never overwriting the value with "cancelled".
#[test]
fn a_requeued_job_keeps_its_outcome() {
    let system = system_holding(1);
    let wq = wq(&system, "requeued_job");
    let gate = Arc::new(Gate::new());
    let job = {
        let (wq, gate) = (wq.clone(), gate.clone());
        wq.clone()
            .spawn(move || {
                let me = cmwq::current_work().expect("runs on a worker");
                // A blocker first, so the second instance stays queued.
                let blocker = {
                    let gate = gate.clone();
                    cmwq::Work::new(move || gate.wait_unannotated())
                };
                wq.queue_on(0, &blocker).unwrap();
                wq.queue_on(0, &me).unwrap();
                41 + 1
            })
            .unwrap()
    };
    wait_until("the job has run", || job.is_finished());
    assert!(!job.cancel(), "the job ran: cancelling its re-queued instance is not cancelling it");
    gate.open();
    assert_eq!(job.join(), Ok(42));
    wq.flush().unwrap();
}
