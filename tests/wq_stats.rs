//! Per-workqueue counters (`Workqueue::stats`, `System::workqueue_stats`;
//! the kernel's `wq_monitor.py` columns): started, completed, and the
//! concurrency-management wakeups of items that block.

use cmwq::{blocking, System, Work, Workqueue};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn started_and_completed_count_every_instance() {
    let system = System::builder().cpus(2).build().unwrap();
    let wq = Workqueue::builder("counted").build(&system).unwrap();
    let other = Workqueue::builder("other").build(&system).unwrap();
    let items: Vec<Work> = (0..10).map(|_| Work::new(|| {})).collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    let stats = wq.stats();
    assert_eq!((stats.started, stats.completed), (10, 10));
    assert_eq!(other.stats().started, 0, "counted on the wrong workqueue");
    let all = system.workqueue_stats();
    let named: Vec<_> = all.iter().map(|(name, stats)| (name.as_str(), stats.completed)).collect();
    assert!(named.contains(&("counted", 10)), "{named:?}");
}

#[test]
fn a_running_instance_is_started_not_completed() {
    let system = System::builder().cpus(1).build().unwrap();
    let wq = Workqueue::builder("running").build(&system).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let item = Work::new(move || {
        started_tx.send(()).unwrap();
        let _ = blocking(|| wait.lock().unwrap().recv_timeout(Duration::from_secs(20)));
    });
    wq.queue(&item).unwrap();
    started.recv_timeout(Duration::from_secs(20)).unwrap();
    let stats = wq.stats();
    release.send(()).unwrap();
    wq.flush().unwrap();
    assert_eq!((stats.started, stats.completed), (1, 0));
    assert_eq!((wq.stats().started, wq.stats().completed), (1, 1));
}

/// An item that blocks in a blocking section while another waits wakes a
/// worker for it: a concurrency-management wakeup of its workqueue. (The
/// blocker queues the other item itself, so it is waiting when the
/// blocker blocks.)
#[test]
fn a_blocking_item_with_work_behind_it_counts_a_wakeup() {
    let system = System::builder().cpus(1).build().unwrap();
    let wq = Workqueue::builder("wakeups").build(&system).unwrap();
    let (ran_tx, ran) = mpsc::channel::<()>();
    let behind = Arc::new(Work::new(move || ran_tx.send(()).unwrap()));
    let blocker = {
        let (wq, behind, ran) = (wq.clone(), behind.clone(), Mutex::new(ran));
        Work::new(move || {
            wq.queue(&behind).unwrap();
            let _ = blocking(|| ran.lock().unwrap().recv_timeout(Duration::from_secs(20)));
        })
    };
    assert_eq!(wq.stats().cm_wakeups, 0);
    wq.queue(&blocker).unwrap();
    wq.flush().unwrap();
    assert_eq!(wq.stats().cm_wakeups, 1, "{:?}", wq.stats());
}
