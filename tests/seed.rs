//! The seed's scenario (Herrenschmidt 2008, LWN 2009): items that block
//! must not delay the items queued behind them. On a one-CPU system,
//! several items block until a short item queued after them has run.
//! With concurrency management this completes; with it switched off (a
//! fixed set of busy workers) the same scenario stalls.

use cmwq::{System, Work, Workqueue};
use cmwq_tests::{wait_until, Gate};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const BLOCKERS: usize = 4;

struct Scenario {
    wq: Workqueue,
    system: System,
    short_ran: Arc<Gate>,
    blockers_started: Arc<AtomicUsize>,
    blockers_done: Arc<AtomicUsize>,
    _items: Vec<Work>,
}

fn start(concurrency_management: bool) -> Scenario {
    let system = System::builder().cpus(1).concurrency_management(concurrency_management).build().unwrap();
    let wq = Workqueue::builder("seed").build(&system).unwrap();
    let short_ran = Arc::new(Gate::new());
    let blockers_started = Arc::new(AtomicUsize::new(0));
    let blockers_done = Arc::new(AtomicUsize::new(0));
    let mut items = Vec::new();
    for _ in 0..BLOCKERS {
        let (gate, started, done) = (short_ran.clone(), blockers_started.clone(), blockers_done.clone());
        let item = Work::new(move || {
            started.fetch_add(1, SeqCst);
            gate.wait(); // inside blocking(): the pool may run something else
            done.fetch_add(1, SeqCst);
        });
        wq.queue(&item).unwrap();
        items.push(item);
    }
    let gate = short_ran.clone();
    let short = Work::new(move || gate.open());
    wq.queue(&short).unwrap();
    items.push(short);
    Scenario { wq, system, short_ran, blockers_started, blockers_done, _items: items }
}

/// With concurrency management: completes, with no timing assumption.
#[test]
fn seed_scenario_completes_with_concurrency_management() {
    let s = start(true);
    s.wq.flush().unwrap();
    assert!(s.short_ran.is_open());
    assert_eq!(s.blockers_done.load(SeqCst), BLOCKERS);
    // A new worker was started for each blocked one (plus the spare).
    assert!(s.system.pool_stats()[0].workers > BLOCKERS);
}

/// Without concurrency management: the first blocker holds the only
/// running worker, nothing else is ever started, and the short item never
/// runs. The test shows the stall, then opens the gate itself so that
/// everything finishes.
#[test]
fn seed_scenario_stalls_without_concurrency_management() {
    let s = start(false);
    wait_until("first blocker running", || s.blockers_started.load(SeqCst) == 1);
    // Nothing will ever wake another worker; give it ample time anyway.
    thread::sleep(Duration::from_millis(300));
    assert!(!s.short_ran.is_open(), "the short item ran: no stall");
    assert_eq!(s.blockers_started.load(SeqCst), 1, "only the first blocker ever started");
    let pool = &s.system.pool_stats()[0];
    assert_eq!(pool.pending, BLOCKERS, "the other blockers and the short item wait");
    assert!(pool.idle >= 1, "an idle worker existed but was never woken");
    // Rescue: open the gate from outside; everything drains.
    s.short_ran.open();
    s.wq.flush().unwrap();
    assert_eq!(s.blockers_done.load(SeqCst), BLOCKERS);
}
