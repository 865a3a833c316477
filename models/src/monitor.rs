//! The blocking monitor (`core/src/monitor.rs`, machine rules M32-M34):
//! workers that wait without telling the pool are seen asleep and taken
//! out of the running count until they run again, and workers that hog
//! the CPU are counted out as CPU-intensive until their item ends. Items
//! mark such waits with the model platform's `Sleepers` (what `/proc`
//! shows on Linux), and such hogs likewise (the CPU time a probe sees); a
//! model thread plays the monitor, making its passes
//! (`System::monitor_pass`) while the workers step, so the checkers
//! interleave every probe and report with the workers' own sections.

use crate::scenarios::{model_builder, spawn, workqueue, Counter, Flag};
use crate::{FaultPlan, ModelPlatform, SleepMarks};
use cmwq::{System, Work, Workqueue};
use core::time::Duration;
use std::sync::Arc;

/// One CPU, at most two workers, detection on with no threshold (a thread
/// seen asleep by a probe of the same run is reported at once).
fn monitored<P: ModelPlatform>(bugs: u64) -> System<P> {
    model_builder::<P>(1, 2, bugs)
        .detect_blocking(Some(Duration::ZERO))
        .build_on(P::with_faults(FaultPlan::default()))
        .expect("model system builds")
}

/// The monitor: once `start` is set (A is asleep, or began), `passes`
/// explicit passes (each probes every worker in a run; with no threshold
/// the first that finds A asleep reports it, and later ones race A's
/// release and finish).
fn monitor<P: ModelPlatform>(system: &System<P>, start: &Arc<Flag<P>>, passes: usize) -> P::JoinHandle {
    monitor_then(system, start, passes, None)
}

/// [`monitor`], setting `done` after its passes.
fn monitor_then<P: ModelPlatform>(
    system: &System<P>,
    start: &Arc<Flag<P>>,
    passes: usize,
    done: Option<Arc<Flag<P>>>,
) -> P::JoinHandle {
    let (system2, start) = (system.clone(), start.clone());
    spawn(system, move || {
        start.wait();
        for _ in 0..passes {
            system2.monitor_pass();
        }
        if let Some(done) = done {
            done.set();
        }
    })
}

/// Items that never wait, checking as they run that their worker counts
/// as running (the pool's count is at least 1: nothing else of this
/// one-CPU pool can have taken it) and that no other of them runs beside
/// it (concurrency management runs them one at a time). A panic inside an
/// item is contained by the engine, so violations are counted and the
/// model asserts on the count.
struct Exclusive<P: ModelPlatform> {
    inflight: Arc<Counter<P>>,
    overlaps: Arc<Counter<P>>,
    counted_out: Arc<Counter<P>>,
}

impl<P: ModelPlatform> Exclusive<P> {
    fn new() -> Self {
        Exclusive { inflight: Counter::new(), overlaps: Counter::new(), counted_out: Counter::new() }
    }

    /// One such item of `system`'s pool.
    fn item(&self, system: &System<P>) -> Work<P> {
        self.item_until(system, None)
    }

    /// One such item that, once started, stays (running, not asleep: the
    /// pool is not told) until `until` is set, and checks its count after
    /// that too: a report applied to its worker while it stays is seen.
    fn item_until(&self, system: &System<P>, until: Option<Arc<Flag<P>>>) -> Work<P> {
        let system = system.clone();
        let (inflight, overlaps, counted_out) =
            (self.inflight.clone(), self.overlaps.clone(), self.counted_out.clone());
        Work::<P>::new(move || {
            if inflight.inc() != 0 {
                overlaps.inc();
            }
            if system.pool_stats()[0].running == 0 {
                counted_out.inc();
            }
            if let Some(until) = &until {
                until.wait();
                if system.pool_stats()[0].running == 0 {
                    counted_out.inc();
                }
            }
            inflight.dec();
        })
    }

    /// Asserts that no violation was seen.
    fn check(&self) {
        assert_eq!(self.overlaps.get(), 0, "two CPU-bound items ran at once on one CPU");
        assert_eq!(self.counted_out.get(), 0, "a worker running an item that never waits was counted out");
    }
}

/// One CPU, at most two workers, hog detection on (past 1 ms: a thread
/// marked hogging passes it between any two probes), blocking detection
/// off.
fn hog_watched<P: ModelPlatform>(bugs: u64) -> System<P> {
    model_builder::<P>(1, 2, bugs)
        .cpu_hog(Some(Duration::from_millis(1)))
        .build_on(P::with_faults(FaultPlan::default()))
        .expect("model system builds")
}

/// An item that sets `hogging` and hogs the CPU until `until` (its wait
/// stands for a loop that polls `until`: the pool is not told, and the
/// monitor sees CPU time pass).
fn hogger<P: ModelPlatform>(system: &System<P>, hogging: &Arc<Flag<P>>, until: &Arc<Flag<P>>) -> Work<P> {
    let (sleepers, hogging, until) = (system.platform().sleepers(), hogging.clone(), until.clone());
    Work::<P>::new(move || {
        sleepers.hogging_while(|| {
            hogging.set();
            until.wait();
        })
    })
}

/// Item A of the models: sets `asleep` and waits for `until`, marked asleep
/// throughout, with no blocking section (the pool is not told).
fn sleeper<P: ModelPlatform>(system: &System<P>, asleep: &Arc<Flag<P>>, until: &Arc<Flag<P>>) -> Work<P> {
    let (sleepers, asleep, until) = (system.platform().sleepers(), asleep.clone(), until.clone());
    Work::<P>::new(move || {
        sleepers.asleep_while(|| {
            asleep.set();
            until.wait();
        })
    })
}

/// An item that sets `flag`.
fn setter<P: ModelPlatform>(flag: &Arc<Flag<P>>) -> Work<P> {
    let flag = flag.clone();
    Work::<P>::new(move || flag.set())
}

/// Queues `n` such items on the quiet pool and flushes: they must run one
/// at a time, each counted.
fn run_exclusive<P: ModelPlatform>(system: &System<P>, wq: &Workqueue<P>, n: usize) {
    let checks = Exclusive::new();
    let items: Vec<Work<P>> = (0..n).map(|_| checks.item(system)).collect();
    for item in &items {
        assert!(wq.queue_on(0, item).unwrap());
    }
    wq.flush().unwrap();
    checks.check();
}

/// C1 without annotation — the seed's scenario, the wait not annotated.
/// One CPU: A waits for B, queued after it, asleep but outside any
/// blocking section. Once the monitor has seen A asleep in its run, A no
/// longer counts as running and an idle worker is woken for B. Without
/// that wakeup (NoWakeOnDetect) nobody runs B: a deadlock.
pub fn unannotated_wait_detected<P: ModelPlatform>(bugs: u64) {
    let system = monitored::<P>(bugs);
    let wq = workqueue(&system, 0);
    let (asleep, b_ran) = (Flag::<P>::new(), Flag::<P>::new());
    let (a, b) = (sleeper(&system, &asleep, &b_ran), setter(&b_ran));
    assert!(wq.queue_on(0, &a).unwrap());
    assert!(wq.queue_on(0, &b).unwrap());
    let monitor = monitor(&system, &asleep, 2);
    wq.flush().unwrap();
    P::join(monitor);
    assert_eq!(system.pool_stats()[0].detected, 1, "B ran, so A was seen asleep, once");
}

/// C4 — the monitor's reports racing the worker it reports on. A waits
/// unannotated until the main thread releases it; C and D, queued while it
/// waits, must run one at a time: after the monitor saw A asleep (a worker
/// is woken for C), as A is released and finishes (its worker counts
/// again and goes idle, or takes C itself), and whether a report made of
/// A's run arrives before or after the worker moved on to C (out of date:
/// ignored, or C's worker would count out and D start beside it:
/// StaleDetection). Then E and F, queued on the quiet pool, must run one at
/// a time too (a worker still counted out after its item:
/// FinishKeepsDetection).
pub fn detection_races_finish<P: ModelPlatform>(bugs: u64) {
    let system = monitored::<P>(bugs);
    let wq = workqueue(&system, 0);
    let (asleep, release) = (Flag::<P>::new(), Flag::<P>::new());
    let a = sleeper(&system, &asleep, &release);
    race_the_end_of(&system, &wq, &a, &asleep, &release, 3);
}

/// The race of C4's models: queues `a` (which sets `seen` and waits for
/// `release`), starts the monitor's `passes`, queues C and D, which never
/// wait unannotated (C stays, running, until the passes are over), once
/// `a` runs, releases it, and checks that C and D, and then E and F on the
/// quiet pool, ran one at a time, each counted as running.
fn race_the_end_of<P: ModelPlatform>(
    system: &System<P>,
    wq: &Workqueue<P>,
    a: &Work<P>,
    seen: &Arc<Flag<P>>,
    release: &Arc<Flag<P>>,
    passes: usize,
) {
    assert!(wq.queue_on(0, a).unwrap());
    let passes_done = Flag::<P>::new();
    let monitor = monitor_then(system, seen, passes, Some(passes_done.clone()));
    seen.wait();
    let checks = Exclusive::new();
    // C stays until the passes are over: a report of A's run applied to
    // C's worker, whenever it lands, leaves C counted out while it runs.
    let (c, d) = (checks.item_until(system, Some(passes_done)), checks.item(system));
    assert!(wq.queue_on(0, &c).unwrap());
    assert!(wq.queue_on(0, &d).unwrap());
    release.set();
    wq.flush().unwrap();
    P::join(monitor);
    checks.check();
    run_exclusive(system, wq, 2);
}

/// C1, C4 — the monitor sees asleep a worker that waits inside a blocking
/// section (a real thread there is asleep too): the section took it out of
/// the running count already, so the report changes nothing. A worker in a
/// section is not watched, so the monitor's passes start as A begins and
/// race its entry: a pass that read A's run before the section probes it
/// asleep inside it. Counted out twice (DetectWhileBlocked), the pool's
/// count is left one low: the count underflows as workers stop, or two
/// items run at once afterwards.
pub fn detection_of_a_blocking_section<P: ModelPlatform>(bugs: u64) {
    let system = monitored::<P>(bugs);
    let wq = workqueue(&system, 0);
    let (began, release) = (Flag::<P>::new(), Flag::<P>::new());
    let a = {
        let (sleepers, began, release) = (system.platform().sleepers(), began.clone(), release.clone());
        Work::<P>::new(move || {
            began.set();
            cmwq::blocking_on::<P, _>(|| sleepers.asleep_while(|| release.wait()));
        })
    };
    let b = setter(&release);
    assert!(wq.queue_on(0, &a).unwrap());
    assert!(wq.queue_on(0, &b).unwrap());
    let monitor = monitor(&system, &began, 2);
    wq.flush().unwrap();
    P::join(monitor);
    assert_eq!(
        system.pool_stats()[0].detected,
        0,
        "the monitor counted out a worker in a blocking section, or one that had left it (a report out of date)"
    );
    run_exclusive(&system, &wq, 2);
}

/// C1 with a CPU hog (kernel 6.5's `wq_cpu_intensive_thresh_us`). One CPU:
/// A hogs the CPU until B, queued after it, runs. Once the monitor has seen
/// A use the CPU past the threshold (two probes), A is counted out as
/// CPU-intensive and an idle worker is woken for B. Without that wakeup
/// (NoWakeOnHog) nobody runs B: a deadlock.
pub fn hog_lets_the_item_behind_it_run<P: ModelPlatform>(bugs: u64) {
    let system = hog_watched::<P>(bugs);
    let wq = workqueue(&system, 0);
    let (hogging, b_ran) = (Flag::<P>::new(), Flag::<P>::new());
    let (a, b) = (hogger(&system, &hogging, &b_ran), setter(&b_ran));
    assert!(wq.queue_on(0, &a).unwrap());
    assert!(wq.queue_on(0, &b).unwrap());
    let monitor = monitor(&system, &hogging, 2);
    wq.flush().unwrap();
    P::join(monitor);
    assert_eq!(wq.stats().cpu_intensive, 1, "B ran, so A was counted out as a hog, once");
}

/// C4 with a CPU hog: the monitor's hog report racing the end of the item
/// it is about. A hogs until the main thread releases it; C and D, queued
/// while it hogs, must run one at a time, each with its worker counted as
/// running, however the report falls: before A ends (A counted out, a
/// worker woken for C), or after A's worker moved on to C (out of date:
/// ignored, or C's worker would be counted out and D start beside it:
/// StaleHog). Then E and F, on the quiet pool, run one at a time too.
pub fn hog_report_races_finish<P: ModelPlatform>(bugs: u64) {
    let system = hog_watched::<P>(bugs);
    let wq = workqueue(&system, 0);
    let (hogging, release) = (Flag::<P>::new(), Flag::<P>::new());
    let a = hogger(&system, &hogging, &release);
    race_the_end_of(&system, &wq, &a, &hogging, &release, 2);
}
