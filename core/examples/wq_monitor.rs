//! A live table of a running system's workqueues and pools, printed every
//! second while a demo workload runs (the kernel's
//! `tools/workqueue/wq_monitor.py`): short items, items that sleep without
//! a blocking annotation (the monitor sees them asleep), CPU hogs (counted
//! out as CPU-intensive), and a `mem_reclaim` workqueue.
//! `cargo run --release -p cmwq --example wq_monitor -- 10` runs it for 10
//! seconds (default 5); `cargo test` runs it for a moment (its test calls
//! `run`).

use cmwq::{System, Work, Workqueue, WorkqueueStats};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the workload for `duration`, printing the table to `print` every
/// `every`; returns the workqueues' counters once the workload is done.
fn run(
    duration: Duration,
    every: Duration,
    mut print: impl FnMut(&str),
) -> Result<Vec<(String, WorkqueueStats)>, Box<dyn std::error::Error>> {
    let system = System::builder().cpus(2).on_report(|report| eprintln!("{report}")).build()?;
    let events = Workqueue::builder("events").build(&system)?;
    let io = Workqueue::builder("io").build(&system)?;
    let crunch = Workqueue::builder("crunch").build(&system)?;
    let reclaim = Workqueue::builder("reclaim").mem_reclaim().build(&system)?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, events, io, crunch, reclaim) =
            (stop.clone(), events.clone(), io.clone(), crunch.clone(), reclaim.clone());
        std::thread::spawn(move || workload(&stop, &events, &io, &crunch, &reclaim))
    };
    let start = Instant::now();
    while start.elapsed() < duration {
        std::thread::sleep(every.min(duration.saturating_sub(start.elapsed())));
        print(&table(&system, &system.workqueue_stats(), start.elapsed()));
    }
    stop.store(true, Ordering::SeqCst);
    load.join().map_err(|_| "the workload thread panicked")??;
    // The workqueues are still alive here: their counters are listed.
    let stats = system.workqueue_stats();
    drop((events, io, crunch, reclaim));
    Ok(stats)
}

/// Queues the demo's items until `stop`, then waits for them.
fn workload(
    stop: &AtomicBool,
    events: &Workqueue,
    io: &Workqueue,
    crunch: &Workqueue,
    reclaim: &Workqueue,
) -> Result<(), String> {
    let short: Vec<Work> = (0..16).map(|_| Work::named("demo::short", || {})).collect();
    // A std sleep, not annotated: the monitor sees the worker asleep.
    let sleeper = Work::named("demo::read_disk", || std::thread::sleep(Duration::from_millis(3)));
    // 20 ms of CPU: past the 10 ms hog threshold.
    let hog = Work::named("demo::checksum", || spin(Duration::from_millis(20)));
    let flusher = Work::named("demo::writeback", || std::thread::sleep(Duration::from_millis(1)));
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let refused = |err: cmwq::QueueError<_>| err.to_string();
        for item in &short {
            events.queue(item).map_err(refused)?;
        }
        io.queue(&sleeper).map_err(refused)?;
        if round % 10 == 0 {
            crunch.queue(&hog).map_err(refused)?;
            reclaim.queue(&flusher).map_err(refused)?;
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    for wq in [events, io, crunch, reclaim] {
        if let Err(err) = wq.flush() {
            eprintln!("flush of {} failed: {err}", wq.name());
        }
    }
    Ok(())
}

/// Burns CPU for `time`.
fn spin(time: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < time {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
}

/// The table: one row per workqueue, then one per pool that has ever had
/// more than its first worker or has items waiting.
fn table(system: &System, wqs: &[(String, WorkqueueStats)], at: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{:.1} s", at.as_secs_f64());
    let _ = writeln!(
        out,
        "{:<10} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>6} {:>7}",
        "workqueue", "started", "done", "cpu ms", "cpu-int", "cm-wake", "detected", "mayday", "rescued"
    );
    for (name, s) in wqs {
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>6} {:>7}",
            name,
            s.started,
            s.completed,
            s.cpu_time.as_millis(),
            s.cpu_intensive,
            s.cm_wakeups,
            s.detected,
            s.maydays,
            s.rescued
        );
    }
    let _ = writeln!(
        out,
        "{:<10} {:>7} {:>5} {:>7} {:>7} {:>6}",
        "pool", "workers", "idle", "running", "pending", "stalls"
    );
    for pool in system.pool_stats() {
        let name = match (pool.cpu, pool.highpri) {
            (Some(cpu), false) => format!("cpu{cpu}"),
            (Some(cpu), true) => format!("cpu{cpu}H"),
            (None, false) => "unbound".to_string(),
            (None, true) => "unboundH".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>5} {:>7} {:>7} {:>6}",
            name, pool.workers, pool.idle, pool.running, pool.pending, pool.stalls
        );
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(5);
    run(Duration::from_secs(seconds), Duration::from_secs(1), |table| println!("{table}"))?;
    Ok(())
}

#[test]
fn the_table_shows_the_workload() {
    let mut tables = Vec::new();
    let last =
        run(Duration::from_millis(600), Duration::from_millis(200), |t| tables.push(t.to_string())).expect("runs");
    assert!(tables.len() >= 2, "a table per interval");
    assert!(tables[0].contains("workqueue") && tables[0].contains("cpu0"), "{}", tables[0]);
    let row = |name: &str| last.iter().find(|(n, _)| n == name).map(|(_, s)| *s).expect("listed");
    assert!(row("events").completed >= 16, "{:?}", row("events"));
    assert_eq!(row("events").started, row("events").completed, "flushed: nothing runs");
    if cfg!(target_os = "linux") {
        // The monitor sees the std sleeps and the 20 ms spins.
        assert!(row("io").detected >= 1, "{:?}", row("io"));
        assert!(row("crunch").cpu_intensive >= 1, "{:?}", row("crunch"));
        assert!(row("crunch").cpu_time >= Duration::from_millis(10), "{:?}", row("crunch"));
    }
}
