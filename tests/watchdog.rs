//! The stall watchdog (`Config::watchdog`, kernel `wq_watchdog`): a pool
//! whose waiting items see none begin for the threshold is reported with
//! its oldest waiting item and what each worker does; a pool that makes
//! progress, however slowly, is not. Every wait is bounded.

use cmwq::{Activity, Report, StallReport, System, Work, Workqueue};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);
const THRESHOLD: Duration = Duration::from_millis(100);

/// A one-CPU system whose watchdog reports into the returned list. Blocking
/// and hog detection are off: an unannotated wait then holds the pool, the
/// stall this test needs.
fn watched() -> (System, Workqueue, Arc<Mutex<Vec<StallReport>>>) {
    let stalls = Arc::new(Mutex::new(Vec::new()));
    let sink = stalls.clone();
    let system = System::builder()
        .cpus(1)
        .detect_blocking(None)
        .cpu_hog(None)
        .watchdog(Some(THRESHOLD))
        .on_report(move |report| {
            if let Report::Stall(stall) = report {
                sink.lock().unwrap().push(stall.clone());
            }
        })
        .build()
        .unwrap();
    let wq = Workqueue::builder("stall").build(&system).unwrap();
    (system, wq, stalls)
}

#[test]
fn a_stall_is_reported_with_its_oldest_item_and_its_workers() {
    let (system, wq, stalls) = watched();
    let (release, stuck_until) = mpsc::channel::<()>();
    let stuck_until = Mutex::new(stuck_until);
    let stuck = Work::named("tests::stuck", move || {
        // Unannotated and unseen: the pool counts this worker as running.
        let _ = stuck_until.lock().unwrap().recv_timeout(PATIENCE);
    });
    let waiting = Work::named("tests::waiting", || {});
    wq.queue(&stuck).unwrap();
    wq.queue(&waiting).unwrap();
    let start = Instant::now();
    while stalls.lock().unwrap().is_empty() && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stall = stalls.lock().unwrap().first().cloned().expect("the stall was never reported");
    release.send(()).unwrap();
    wq.flush().unwrap();
    assert_eq!((stall.cpu, stall.highpri, stall.pending), (Some(0), false, 1));
    assert!(stall.stalled_for >= THRESHOLD, "reported after {:?}", stall.stalled_for);
    assert_eq!(stall.oldest, Some(("stall".to_string(), "tests::waiting")));
    let running: Vec<_> = stall.workers.iter().filter(|w| w.activity == Activity::Running).collect();
    assert_eq!(running.len(), 1, "{stall:?}");
    assert_eq!(running[0].executing, Some(("stall".to_string(), "tests::stuck")));
    assert!(system.pool_stats()[0].stalls >= 1);
    assert!(Report::Stall(stall).to_string().contains("oldest tests::waiting"));
}

/// Items that begin one after another, each a little over the threshold
/// apart in total but never with none begun for a whole threshold, are
/// progress: no stall.
#[test]
fn a_slow_pool_that_makes_progress_is_not_stalled() {
    let (system, wq, stalls) = watched();
    let done = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..40)
        .map(|_| {
            let done = done.clone();
            // 10 ms each (unannotated, so one at a time): 400 ms in all.
            Work::new(move || {
                std::thread::sleep(Duration::from_millis(10));
                done.fetch_add(1, SeqCst);
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(done.load(SeqCst), 40);
    assert!(stalls.lock().unwrap().is_empty(), "progress taken for a stall: {:?}", stalls.lock().unwrap());
    assert_eq!(system.pool_stats()[0].stalls, 0);
}

/// `System::watchdog_check` runs the check on the caller's thread.
#[test]
fn an_explicit_check_finds_nothing_in_an_idle_system() {
    let (system, _wq, _) = watched();
    assert!(system.watchdog_check().is_empty());
}
