//! Trace validation on real threads: the engine records the transitions it
//! takes (feature `trace`), and `cmwq_proofs::replay` replays the log
//! against the specification, failing at the first event the spec does not
//! allow. Four runs: a hotplug storm (CPU 0 goes down and up while items of
//! bound, ordered and unbound workqueues queue, block and get cancelled),
//! the rescuer chain under real thread-creation failure (a child
//! process that cannot create threads any more), items that wait
//! without a blocking section, seen asleep by the blocking monitor, and
//! items that spin on the CPU, seen hogging it.
//!
//! `CMWQ_TRACE_ROUNDS` sets the storm's rounds (default 300).

use cmwq::{blocking, System, Work, Workqueue};
use cmwq_proofs::replay::Replay;
use cmwq_proofs::{Behaviour, Config, WqSpec};
use cmwq_tests::{run_test_in_child, Gate};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// The spec of a traced system: its CPUs, workqueues and items; workers
/// without limit (as far as the spec's counters go).
fn spec(cpus: usize, wqs: Vec<WqSpec>, items: Vec<(usize, Behaviour)>, creation_fails: bool) -> Config {
    Config::traced(cpus, usize::from(u8::MAX), wqs, items, creation_fails)
}

fn wq_spec(max_active: u8) -> WqSpec {
    WqSpec { unbound: false, ordered: false, mem_reclaim: false, max_active }
}

/// A tiny deterministic generator (the storm's choices).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// The trace, numbered, for a failure message (the first 200 events).
fn show(events: &[cmwq::machine::trace::Event]) -> String {
    let shown: Vec<String> = events.iter().take(200).enumerate().map(|(n, e)| format!("  #{n} {e:?}")).collect();
    format!("trace of {} events:\n{}", events.len(), shown.join("\n"))
}

/// How many events of each kind a trace has.
fn kinds(events: &[cmwq::machine::trace::Event]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in events {
        let name = format!("{e:?}");
        *counts.entry(name.split([' ', '{']).next().unwrap_or_default().to_string()).or_insert(0) += 1;
    }
    counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn rounds() -> usize {
    std::env::var("CMWQ_TRACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// An item that enters one blocking section per run (spec `Blocks`).
fn blocker(runs: &Arc<AtomicUsize>) -> Work {
    let runs = runs.clone();
    Work::new(move || {
        runs.fetch_add(1, SeqCst);
        blocking(|| std::thread::sleep(Duration::from_micros(200)));
    })
}

fn plain(runs: &Arc<AtomicUsize>) -> Work {
    let runs = runs.clone();
    Work::new(move || {
        runs.fetch_add(1, SeqCst);
    })
}

#[test]
fn a_hotplug_storm_follows_the_spec() {
    let system = System::builder().cpus(2).highpri_pools(false).thread_name_prefix("trs").build().unwrap();
    let bound = Workqueue::builder("bound").max_active(2).build(&system).unwrap();
    let ordered = Workqueue::builder("ordered").ordered().build(&system).unwrap();
    let unbound = Workqueue::builder("unbound").unbound().max_active(1).build(&system).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let items = [blocker(&runs), plain(&runs), plain(&runs), plain(&runs), blocker(&runs), plain(&runs)];
    let on = [&bound, &bound, &bound, &ordered, &ordered, &unbound];
    let config = spec(
        2,
        vec![wq_spec(2), WqSpec { ordered: true, ..wq_spec(1) }, WqSpec { unbound: true, ..wq_spec(1) }],
        vec![
            (0, Behaviour::Blocks),
            (0, Behaviour::Plain),
            (0, Behaviour::Plain),
            (1, Behaviour::Plain),
            (1, Behaviour::Blocks),
            (2, Behaviour::Plain),
        ],
        false,
    );
    system.start_trace();
    let mut rng = Lcg(12345);
    let mut down = false;
    for round in 0..rounds() {
        let i = rng.below(items.len());
        match rng.below(8) {
            0 => {
                let _ = items[i].cancel();
            }
            _ => {
                let _ = on[i].queue_on(rng.below(2), &items[i]).expect("the workqueue accepts");
            }
        }
        if round % 4 == 3 {
            // Let some of it run before queueing more.
            std::thread::sleep(Duration::from_micros(300));
        }
        if round % 17 == 16 {
            if down {
                system.cpu_up(0).expect("CPU 0 comes back");
            } else {
                system.cpu_down(0).expect("CPU 0 goes down");
            }
            down = !down;
        }
    }
    if down {
        system.cpu_up(0).expect("CPU 0 comes back");
    }
    for wq in [&bound, &ordered, &unbound] {
        wq.flush().expect("flushed");
    }
    let events = system.take_trace();
    let wqs: Vec<usize> = [&bound, &ordered, &unbound].iter().map(|wq| wq.trace_id()).collect();
    let keys: Vec<usize> = items.iter().map(Work::trace_id).collect();
    match Replay::check(config, &wqs, &keys, &events) {
        Ok(n) => {
            println!(
                "hotplug storm: {n} events replayed against the spec, {} runs; {}",
                runs.load(SeqCst),
                kinds(&events)
            );
            // Every run is at least a queueing, a start and a finish.
            assert!(n >= 3 * runs.load(SeqCst) && runs.load(SeqCst) > 0, "a trace of {n} events is too short");
        }
        Err(why) => panic!("the engine left the spec: {why}\n{}", show(&events)),
    }
}

/// Runs A then B, queued on CPU 0 of `system`'s one CPU, three times under
/// a trace (`before` runs before each round), and replays the log against
/// the spec, where both items are plain (A's unannotated wait or spin is
/// invisible to it); returns the events. `what` names the run.
#[cfg(target_os = "linux")]
fn trace_a_then_b(
    what: &str,
    system: &System,
    wq: &Workqueue,
    (a, b): (&Work, &Work),
    before: impl Fn(),
) -> Vec<cmwq::machine::trace::Event> {
    let config = spec(1, vec![wq_spec(2)], vec![(0, Behaviour::Plain), (0, Behaviour::Plain)], false);
    system.start_trace();
    for _ in 0..3 {
        before();
        wq.queue_on(0, a).unwrap();
        wq.queue_on(0, b).unwrap();
        wq.flush().unwrap();
    }
    let events = system.take_trace();
    match Replay::check(config, &[wq.trace_id()], &[a.trace_id(), b.trace_id()], &events) {
        Ok(n) => println!("{what}: {n} events replayed against the spec; {}", kinds(&events)),
        Err(why) => panic!("the engine left the spec: {why}\n{}", show(&events)),
    }
    events
}

/// C10 traced: A waits on a `std` channel (no blocking section) for B,
/// queued behind it on the one CPU; the blocking monitor sees A's worker
/// asleep and counts it out (PS9), another worker runs B, and the replay
/// checks each detection (and a seen-running report, if a pass makes one)
/// against the spec's `Detect` / `Undetect`. Linux only (the monitor reads
/// `/proc`).
#[cfg(target_os = "linux")]
#[test]
fn an_unannotated_wait_seen_by_the_monitor_follows_the_spec() {
    use cmwq::machine::trace::Event;
    let system = System::builder().cpus(1).highpri_pools(false).thread_name_prefix("trd").build().unwrap();
    let wq = Workqueue::builder("detect").max_active(2).build(&system).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    let a = Work::new(move || {
        let rx = rx.lock().unwrap();
        rx.recv_timeout(Duration::from_secs(20)).expect("B ran while A waited");
    });
    let tx = std::sync::Mutex::new(tx);
    let b = Work::new(move || {
        let _ = tx.lock().unwrap().send(());
    });
    let events = trace_a_then_b("unannotated waits", &system, &wq, (&a, &b), || {});
    let seen = events.iter().filter(|e| matches!(e, Event::SeenAsleep { .. })).count();
    assert!(seen >= 3, "every A must have been seen asleep: {}", show(&events));
}

/// C11 traced: A spins on the CPU (no sleep, no blocking section) until B,
/// queued behind it on the one CPU, has run; the monitor sees A's worker
/// hog the CPU and marks it CPU-intensive (PS11), another worker runs B,
/// and the replay checks each mark against the spec's `Hog`. Linux only
/// (the monitor reads each worker's CPU-time clock).
#[cfg(target_os = "linux")]
#[test]
fn a_cpu_hog_seen_by_the_monitor_follows_the_spec() {
    use cmwq::machine::trace::Event;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;
    let system = System::builder()
        .cpus(1)
        .highpri_pools(false)
        .cpu_hog(Some(Duration::from_millis(5)))
        .thread_name_prefix("trh")
        .build()
        .unwrap();
    let wq = Workqueue::builder("hog").max_active(2).build(&system).unwrap();
    let b_ran = Arc::new(AtomicBool::new(false));
    // How many of A's runs B overtook (A stops spinning when B has run, or
    // after a bound so that a failure ends the test instead of hanging it).
    let overtaken = Arc::new(AtomicUsize::new(0));
    let a = {
        let (b_ran, overtaken) = (b_ran.clone(), overtaken.clone());
        Work::new(move || {
            let start = Instant::now();
            while !b_ran.load(SeqCst) && start.elapsed() < Duration::from_secs(20) {
                std::hint::spin_loop();
            }
            if b_ran.load(SeqCst) {
                overtaken.fetch_add(1, SeqCst);
            }
        })
    };
    let b = {
        let b_ran = b_ran.clone();
        Work::new(move || b_ran.store(true, SeqCst))
    };
    let events = trace_a_then_b("CPU hogs", &system, &wq, (&a, &b), || b_ran.store(false, SeqCst));
    assert_eq!(overtaken.load(SeqCst), 3, "B waited for A's spin to end: A was not counted out");
    let seen = events.iter().filter(|e| matches!(e, Event::SeenHogging { .. })).count();
    assert!(seen >= 3, "every A must have been seen hogging: {}", show(&events));
}

const CHILD_VAR: &str = "CMWQ_TRACE_CHILD";

/// The rescuer chain under real thread-creation failure, traced: in a
/// child process (it gives up the right to create threads).
#[cfg(target_os = "linux")]
#[test]
fn the_rescuer_under_real_creation_failure_follows_the_spec() {
    let out = run_test_in_child("rescuer_child", CHILD_VAR, "1", Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("events replayed against the spec"), "the child did not replay:\n{stdout}");
    println!("{}", stdout.lines().find(|l| l.contains("replayed")).unwrap_or_default());
}

/// Child side of the rescuer run.
#[cfg(target_os = "linux")]
#[test]
fn rescuer_child() {
    if std::env::var(CHILD_VAR).is_err() {
        return;
    }
    let system = System::builder()
        .cpus(1)
        .highpri_pools(false)
        .thread_name_prefix("trr")
        .create_cooldown(Duration::from_millis(20))
        .build()
        .unwrap();
    let reclaim = Workqueue::builder("reclaim").mem_reclaim().max_active(2).build(&system).unwrap();
    cmwq_tests::limit_thread_creation();
    let b_ran = Arc::new(Gate::new());
    let b = {
        let ran = b_ran.clone();
        Work::new(move || ran.open())
    };
    let a = {
        let (wq, b, ran) = (reclaim.clone(), b.clone(), b_ran.clone());
        Work::new(move || {
            wq.queue(&b).expect("chained queueing is accepted");
            ran.wait(); // a blocking section until B has run
        })
    };
    let config = spec(
        1,
        vec![WqSpec { mem_reclaim: true, ..wq_spec(2) }],
        vec![(0, Behaviour::WaitsFor(1)), (0, Behaviour::Plain)],
        true,
    );
    system.start_trace();
    for _ in 0..5 {
        b_ran.close();
        reclaim.queue(&a).expect("queued");
        reclaim.flush().expect("flushed");
    }
    // The flush waits for A, which returns once B has *started* (B opens
    // the gate first thing): the last B may still be finishing. A drain
    // returns only after its pool section ended it (after `Finished`).
    reclaim.drain().expect("drained");
    let events = system.take_trace();
    let keys = [a.trace_id(), b.trace_id()];
    match Replay::check(config, &[reclaim.trace_id()], &keys, &events) {
        Ok(n) => {
            println!("rescuer chain: {n} events replayed against the spec ({:?})", reclaim.stats());
            assert_eq!(reclaim.stats().rescued, 5, "every B must have been rescued");
            // One attach may rescue several items: the rescuer may still be
            // attached when the next A queues its B, or when the next A is
            // queued (it then runs A, and B finds the pool's worker idle).
            // Either way each round's chain is broken by one rescue.
            use cmwq::machine::trace::Event;
            let rescuers: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::RescuerAttach { worker, .. } => Some(*worker),
                    _ => None,
                })
                .collect();
            let rescued: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Started { worker, item, .. } if rescuers.contains(worker) => Some(*item),
                    _ => None,
                })
                .collect();
            assert_eq!(rescued.len(), 5, "the trace must show every rescued item started by the rescuer");
            assert!(rescued.iter().all(|item| keys.contains(item)), "the rescuer ran only A and B: {rescued:?}");
        }
        Err(why) => panic!("the engine left the spec: {why}\n{}", show(&events)),
    }
}
