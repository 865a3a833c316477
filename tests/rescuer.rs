//! mem_reclaim workqueues on real threads: the rescuer runs what no worker
//! can, when thread creation really fails (R1 in SPEC.md), and
//! the rescuer thread's lifecycle.

use cmwq::{BuildError, System, Work, Workqueue};
use cmwq_tests::{threads_left_after_join, threads_named, wait_until, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// A chain on `wq`: item A queues B on `wq` and waits (blocking) until B
/// has run. Returns both items; queue A to start.
fn chain(wq: &Workqueue) -> (Work, Work, Arc<AtomicUsize>) {
    let b_gate = Arc::new(Gate::new());
    let b_runs = Arc::new(AtomicUsize::new(0));
    let b = {
        let (gate, runs) = (b_gate.clone(), b_runs.clone());
        Work::new(move || {
            runs.fetch_add(1, SeqCst);
            gate.open();
        })
    };
    let a = {
        let (wq, b) = (wq.clone(), b.clone());
        Work::new(move || {
            wq.queue(&b).expect("chained queueing is accepted");
            b_gate.wait();
        })
    };
    (a, b, b_runs)
}

/// Runs one chain to completion: A, then B (which A waited for).
fn run_chain(wq: &Workqueue) -> usize {
    let (a, b, b_runs) = chain(wq);
    assert!(wq.queue(&a).unwrap());
    a.flush().unwrap();
    b.flush().unwrap();
    b_runs.load(SeqCst)
}

/// The pool's worker limit is the only obstacle here (no spawn fails): with
/// one worker allowed and that worker blocked in A, only the rescuer can
/// run B.
#[test]
fn rescuer_runs_the_chain_at_the_worker_limit() {
    let system = System::builder().cpus(1).max_workers_per_pool(1).build().unwrap();
    let wq = Workqueue::builder("reclaim").mem_reclaim().build(&system).unwrap();
    assert!(wq.is_mem_reclaim());
    for round in 1..=3 {
        assert_eq!(run_chain(&wq), 1);
        let stats = wq.stats();
        assert_eq!(stats.rescued, round, "B of every round is rescued: {stats:?}");
        assert!(stats.maydays >= round, "{stats:?}");
    }
    let pool = &system.pool_stats()[0];
    assert_eq!(pool.workers, 1, "the limit was exceeded: {pool:?}");
}

/// The rescuer is not a pool worker: it never counts as running, and while
/// the worker limit is reached the pool still reports one worker.
#[test]
fn a_workqueue_without_mem_reclaim_has_no_rescue_statistics() {
    let system = System::builder().cpus(1).build().unwrap();
    let wq = Workqueue::builder("plain").build(&system).unwrap();
    assert!(!wq.is_mem_reclaim());
    let work = Work::new(|| {});
    wq.queue(&work).unwrap();
    wq.flush().unwrap();
    let stats = wq.stats();
    assert_eq!((stats.maydays, stats.rescued, stats.mayday_pending), (0, 0, 0));
    assert_eq!((stats.started, stats.completed), (1, 1), "the other counters count");
}

/// The rescuer thread exists from build to destroy, and destroy joins it.
#[test]
fn destroy_joins_the_rescuer_thread() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let system = System::builder().cpus(1).thread_name_prefix("rz").build().unwrap();
    let wq = Workqueue::builder("q").mem_reclaim().build(&system).unwrap();
    // The thread names itself when it starts.
    wait_until("the rescuer thread runs", || threads_named("rz/R-q") == 1);
    assert_eq!(system.live_workqueues(), 1);
    wq.destroy().unwrap();
    assert_eq!(threads_left_after_join("rz/R-q"), 0, "destroy left the rescuer running");
    drop(wq);
    assert_eq!(system.live_workqueues(), 0, "the workqueue was not freed");
}

#[test]
fn rescuer_batch_zero_is_refused() {
    let err = System::builder().cpus(1).rescuer_batch(0).build().unwrap_err();
    assert!(matches!(err, BuildError::OutOfRange { field: "rescuer_batch", .. }), "{err:?}");
    assert!(err.to_string().contains("rescuer_batch"), "{err}");
}

// ---------------------------------------------------------------------------
// Real thread-creation failure, in a child process.

const CHILD_VAR: &str = "CMWQ_RLIMIT_CHILD";
const ROUNDS: usize = 5;
/// Hang guard for the child: far beyond its normal run time (well under a
/// second), only there so that a broken rescuer fails the test instead of
/// hanging CI.
const CHILD_GUARD: Duration = Duration::from_secs(120);

/// Child side: the chain under real thread-creation failure.
#[cfg(target_os = "linux")]
#[test]
fn rlimit_child() {
    if std::env::var(CHILD_VAR).is_err() {
        return;
    }
    let system =
        System::builder().cpus(1).thread_name_prefix("rl").create_cooldown(Duration::from_millis(50)).build().unwrap();
    let reclaim = Workqueue::builder("reclaim").mem_reclaim().build(&system).unwrap();
    let plain = Workqueue::builder("plain").build(&system).unwrap();

    let mechanism = cmwq_tests::limit_thread_creation();
    match std::thread::Builder::new().spawn(|| {}) {
        Ok(probe) => {
            let _ = probe.join();
            panic!("thread creation still works after {mechanism}");
        }
        Err(err) => println!("\nmechanism: {mechanism}; a probe spawn now fails with: {err}"),
    }

    // A mem_reclaim workqueue built now cannot get its rescuer: an error,
    // and nothing left behind.
    let (live, threads) = (system.live_workqueues(), threads_named("rl"));
    match Workqueue::builder("late").mem_reclaim().build(&system) {
        Err(err @ BuildError::RescuerSpawn { .. }) => println!("building another mem_reclaim workqueue: {err}"),
        other => panic!("expected a rescuer spawn error, got {other:?}"),
    }
    assert_eq!(system.live_workqueues(), live, "the failed workqueue was leaked");
    assert_eq!(threads_named("rl"), threads, "the failed build left a thread");

    // The chain, several times: the only worker runs A and blocks until B
    // has run; it cannot create a spare; the rescuer runs B.
    for _ in 0..ROUNDS {
        assert_eq!(run_chain(&reclaim), 1);
    }
    let stats = reclaim.stats();
    let pool = system.pool_stats()[0].clone();
    println!(
        "mem_reclaim workqueue: {ROUNDS} chains completed; maydays {}, rescued {}; \
         pool: {} worker(s), {} failed creations",
        stats.maydays, stats.rescued, pool.workers, pool.create_failures
    );
    assert_eq!(stats.rescued, ROUNDS, "every B must have been rescued");
    assert!(stats.maydays >= ROUNDS);
    assert!(pool.create_failures >= ROUNDS, "thread creation did not fail: {pool:?}");
    assert_eq!(pool.workers, 1);

    // The same chain on a workqueue without a rescuer is stuck: nothing can
    // run B while A waits for it. (Checked as "has not happened yet", then
    // A is released so that everything drains.)
    let (a_started, b_ran) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let go = Arc::new(Gate::new());
    let b = {
        let (ran, go) = (b_ran.clone(), go.clone());
        Work::new(move || {
            ran.store(true, SeqCst);
            go.open();
        })
    };
    let a = {
        let (wq, b, started, go) = (plain.clone(), b.clone(), a_started.clone(), go.clone());
        Work::new(move || {
            wq.queue(&b).expect("chained queueing is accepted");
            started.store(true, SeqCst);
            go.wait();
        })
    };
    plain.queue(&a).unwrap();
    wait_until("A started", || a_started.load(SeqCst));
    std::thread::sleep(Duration::from_millis(300));
    let stuck = system.pool_stats()[0].clone();
    println!(
        "plain workqueue: 300 ms later B has run: {}; pool: {} pending, {} running, {} idle, {} worker(s)",
        b_ran.load(SeqCst),
        stuck.pending,
        stuck.running,
        stuck.idle,
        stuck.workers
    );
    assert!(!b_ran.load(SeqCst), "B ran without a rescuer although no thread could be created");
    assert_eq!((stuck.pending, stuck.running, stuck.idle), (1, 0, 0));
    go.open();
    a.flush().unwrap();
    b.flush().unwrap();
    assert!(b_ran.load(SeqCst));
    drop((a, b));
    println!("RESULT ok");
}

/// Parent side: runs `rlimit_child` in a child process and checks it.
#[cfg(target_os = "linux")]
#[test]
fn rescuer_completes_the_chain_when_thread_creation_really_fails() {
    if std::env::var(CHILD_VAR).is_ok() {
        return;
    }
    // A child past the guard means a rescue never happened.
    let output = cmwq_tests::run_test_in_child("rlimit_child", CHILD_VAR, "1", CHILD_GUARD);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("running") && !l.starts_with("test ") && !l.is_empty()) {
        println!("child: {line}");
    }
    assert!(
        output.status.success() && stdout.contains("RESULT ok"),
        "the child failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
