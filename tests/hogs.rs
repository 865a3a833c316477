//! CPU hogs (machine rule M34, `Config::cpu_hog`): an item that keeps its
//! worker on the CPU past the threshold is counted out as CPU-intensive,
//! so the item queued behind it on the same CPU starts while it still
//! runs; it is counted per workqueue and reported once per function.
//! Linux only (the monitor reads each worker's CPU-time clock). Every wait
//! is bounded.

#![cfg(target_os = "linux")]

use cmwq::{Report, System, Work, Workqueue};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Long enough for any detection on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// Burns CPU until `until` holds (true) or `limit` passes (false).
fn spin(limit: Duration, until: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < limit {
        if until() {
            return true;
        }
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }
    false
}

/// A spinning item and the short item behind it; returns whether the short
/// one ran while the spinner still spun (it spins until then, at most
/// `PATIENCE`).
fn hog_and_follower(wq: &Workqueue, hog_name: &'static str) -> bool {
    let follower_ran = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let overtaken = Arc::new(AtomicBool::new(false));
    let hog = {
        let (follower_ran, started, overtaken) = (follower_ran.clone(), started.clone(), overtaken.clone());
        Work::named(hog_name, move || {
            started.store(true, SeqCst);
            overtaken.store(spin(PATIENCE, || follower_ran.load(SeqCst)), SeqCst);
        })
    };
    let follower = {
        let follower_ran = follower_ran.clone();
        Work::new(move || follower_ran.store(true, SeqCst))
    };
    wq.queue(&hog).unwrap();
    while !started.load(SeqCst) {
        std::thread::yield_now();
    }
    wq.queue(&follower).unwrap();
    wq.flush().unwrap();
    overtaken.load(SeqCst)
}

#[test]
fn a_hog_is_counted_out_and_reported_once_per_function() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let system = System::builder()
        .cpus(1)
        .cpu_hog(Some(Duration::from_millis(5)))
        .on_report(move |report| sink.lock().unwrap().push(report.clone()))
        .build()
        .unwrap();
    let wq = Workqueue::builder("hogs").build(&system).unwrap();
    for round in 1..=2 {
        assert!(hog_and_follower(&wq, "tests::hog"), "round {round}: the follower waited for the hog's end");
        let stats = wq.stats();
        assert_eq!(stats.cpu_intensive, round, "each hog is counted");
        assert_eq!(stats.detected, 0, "a spinning worker was taken for blocked");
        assert!(stats.cpu_time >= Duration::from_millis(5), "the hog's CPU time was not sampled: {stats:?}");
    }
    let reports = reports.lock().unwrap();
    let hogs: Vec<_> = reports.iter().filter_map(|r| if let Report::CpuHog(h) = r { Some(h) } else { None }).collect();
    assert_eq!(hogs.len(), 1, "one report per function: {reports:?}");
    assert_eq!((hogs[0].func, hogs[0].workqueue.as_str(), hogs[0].cpu), ("tests::hog", "hogs", Some(0)));
    assert!(reports[0].to_string().contains("tests::hog"));
}

/// With hog detection off, a CPU-bound item holds its CPU's pool to its
/// end, as in kernels before 6.5 (the hog spins 300 ms, then the follower
/// runs after it).
#[test]
fn hog_detection_can_be_switched_off() {
    let system = System::builder().cpus(1).cpu_hog(None).build().unwrap();
    let wq = Workqueue::builder("unwatched").build(&system).unwrap();
    let hog_done = Arc::new(AtomicBool::new(false));
    let overlapped = Arc::new(AtomicBool::new(false));
    let hog = {
        let hog_done = hog_done.clone();
        Work::new(move || {
            let _ = spin(Duration::from_millis(300), || false);
            hog_done.store(true, SeqCst);
        })
    };
    let follower = {
        let (hog_done, overlapped) = (hog_done.clone(), overlapped.clone());
        Work::new(move || overlapped.store(!hog_done.load(SeqCst), SeqCst))
    };
    wq.queue(&hog).unwrap();
    wq.queue(&follower).unwrap();
    wq.flush().unwrap();
    assert!(!overlapped.load(SeqCst), "the follower started beside a hog with hog detection off");
    assert_eq!(wq.stats().cpu_intensive, 0);
}
