//! The blocking monitor: notices workers that block without a blocking
//! section (a `std` sleep, lock, channel or file read inside an item) and
//! takes them out of their pool's running count until they run again, so
//! that a waiting item gets a worker (machine rules M32-M33,
//! `machine/monitor.rs`). The kernel needs no monitor: its scheduler calls
//! the workqueue code when a worker sleeps and wakes.
//!
//! # How it sees
//! Each worker that can be observed ([`Platform::thread_probe`]) has a
//! [`WatchSlot`] on its pool's watch list, with the last run it began (the
//! machine's run number) and whether it executes it now, written by the
//! worker before and after each item and as it enters a blocking section
//! (counted out already: not watched) and leaves it. A pass reads every
//! slot without any pool lock:
//! - a slot in a new run is noted; it is probed at once only if it began
//!   just that run since the last pass and items wait behind it (it may be
//!   holding them up), or in a hot pass. A flood of short items begins
//!   many runs between two passes: it costs an atomic read per worker, no
//!   probe;
//! - a slot in the same run is probed ([`Platform::probe`]); seen asleep
//!   with the same `ran` counter for at least the threshold (no threshold
//!   in a hot pass, or for a worker that began just that run with items
//!   waiting behind it), the worker is reported asleep under its pool lock
//!   (PS9); seen running again after that, it is reported running (PS10).
//!
//! [`Pacer`] spaces the passes: hot (every [`HOT_PAUSE`], yielding between
//! them) for a moment after a detection in a storm of blocking items,
//! soon while a worker is worth watching, backing off otherwise (further
//! in a flood of short items, whose passes wake the monitor on a busy
//! CPU), and parked while no worker executes an item.
//!
//! The report names the run it was made in, so the machine ignores one that
//! arrives after the worker moved on (rule M32); the worker's own next step
//! ends a detection anyway (rule M33). Between a detected worker waking and
//! its next probe (2 ms after it was reported, then less often the longer
//! it sleeps, at most every [`crate::PROBE_DETECTED_MAX`]) or its own next
//! step, one more item than the target may run: the price of observing
//! from outside.
//!
//! # Lock order
//! A pass holds the monitor's `passing` lock throughout (one pass at a
//! time: the monitor thread's, or an explicit
//! [`crate::System::monitor_pass`]). Under it, a pool's watch list, and
//! under that a slot's `seen` (locked only by a pass), while the slots are
//! read and probed; the watch list is dropped before the pool lock is taken
//! for the reports. A worker takes the monitor's `stop` lock (to wake a
//! parked monitor) with no lock held, or under its pool lock as it leaves a
//! blocking section: pool lock → `stop`, never the other way.

use crate::platform::{Arc, Platform};
use crate::report::HogReport;
use crate::shared::Pool;
use crate::watch::{
    MonitorPass, Observation, Thresholds, WatchSlot, FLOOD_POLL_MAX, HOT_PAUSE, MONITOR_POLL_MAX, MONITOR_POLL_MIN,
};
use core::sync::atomic::Ordering;
use core::time::Duration;

/// One pass over `pools`: probes the workers that stayed in one run and
/// reports what changed (PS9-PS12). `limits`: how long a worker must be
/// seen asleep, without running in between, before it is reported, and
/// how much CPU time in one stretch makes it a hog; `paced`: probe only
/// the slots that are due (the monitor thread), or every slot (an explicit
/// `System::monitor_pass`, where time may stand still); `hot`: probe new
/// runs at once (right after a detection).
pub(crate) fn pass<P: Platform>(pools: &[Arc<Pool<P>>], limits: Thresholds, paced: bool, hot: bool) -> MonitorPass {
    let mut outcome = MonitorPass::default();
    let Some(shared) = pools.first().map(|pool| &pool.shared) else {
        return outcome;
    };
    let _one_pass = shared.monitor.passing.lock();
    for pool in pools {
        // Read under the leaf lock, report after it (the pool lock is not
        // taken under it).
        let mut reports: Vec<(Arc<WatchSlot<P>>, Observation)> = Vec::new();
        // Items wait behind the pool's running workers (a hint: its load,
        // waiting plus running, above its concurrency target). Only paced
        // passes ask: an explicit one probes new runs anyway (`hot`).
        let waiting = paced && !hot && pool.load.load(Ordering::Relaxed) > pool.concurrency;
        {
            let slots = pool.watch.lock();
            for slot in slots.iter() {
                if let Some(seen) = slot.observe(&pool.shared.platform, limits, paced, hot, waiting, &mut outcome) {
                    reports.push((slot.clone(), seen));
                }
            }
        }
        if !reports.is_empty() {
            report(pool, reports, limits, &mut outcome);
        }
    }
    outcome
}

/// Makes `pool`'s reports under its lock, then reports the hogs it marked.
fn report<P: Platform>(
    pool: &Pool<P>,
    reports: Vec<(Arc<WatchSlot<P>>, Observation)>,
    limits: Thresholds,
    outcome: &mut MonitorPass,
) {
    let mut hogs = Vec::new();
    let mut guard = pool.lock();
    guard.begin(crate::machine::trace::StepId::Monitor);
    for (slot, seen) in reports {
        let worker = seen.worker;
        // The slot holds the run cut to a word less a bit (on a 32-bit
        // target, runs past 2^31 lose bits): the machine's run it stands
        // for, if it is the current one; else it names an older run (the
        // cut value, which the machine ignores as out of date).
        let run = guard
            .machine
            .pool()
            .worker(worker)
            .map(|w| w.run())
            .filter(|&full| crate::watch::cut(full) == seen.run)
            .unwrap_or(seen.run);
        match seen.asleep {
            Some(true) if guard.step(|m, fx| m.worker_seen_asleep(worker, run, fx)).result => {
                guard.tracer.record(|pool| crate::trace::Event::SeenAsleep { pool, worker });
                outcome.detected += 1;
                outcome.storm += usize::from(seen.single);
            }
            Some(true) => slot.rejected(),
            Some(false) if guard.machine.worker_seen_running(worker, run) => {
                guard.tracer.record(|pool| crate::trace::Event::SeenRunning { pool, worker });
                outcome.resumed += 1;
            }
            _ => {}
        }
        if seen.hog {
            if let Some((wq, func)) = guard.step(|m, fx| m.worker_seen_hogging(worker, run, fx)).result {
                guard.tracer.record(|pool| crate::trace::Event::SeenHogging { pool, worker });
                outcome.hogs += 1;
                let workqueue = guard.wqs.get(&wq).map(|wq| wq.name.clone()).unwrap_or_default();
                hogs.push(HogReport { func, workqueue, cpu: pool.cpu, threshold: limits.hog.unwrap_or_default() });
            }
        }
        if !seen.cpu.is_zero() {
            guard.machine.worker_used_cpu(worker, run, seen.cpu);
        }
    }
    guard.publish_load();
    drop(guard);
    for hog in hogs {
        pool.shared.monitor.report_hog(hog);
    }
}

/// Whether `shared`'s system runs a monitor thread: it has a timer thread
/// (a system without one, a model or a simulator, calls
/// `System::monitor_pass` and `System::watchdog_check` itself), and
/// either runs the stall watchdog or judges what it can observe of its
/// workers (the platform can observe the calling thread: threads of one
/// platform are alike).
pub(crate) fn wanted<P: Platform>(shared: &crate::shared::SystemShared<P>) -> bool {
    let observes = Thresholds::of(&shared.config).any() && shared.platform.thread_probe().is_some();
    shared.config.timer_thread && (observes || shared.config.watchdog.is_some())
}

/// The shortest pause that a worker beginning an item may cut short, when
/// workers are seen blocked (shorter ones are not worth its nudge).
const NUDGEABLE_PAUSE: Duration = Duration::from_micros(200);

/// The most yields between two hot passes (a yield takes a microsecond or
/// more: the pause is over long before, on a clock that moves).
const HOT_YIELDS: u32 = 1_000;

/// How long hot passes go on after the last detection of a storm.
const HOT_SPAN: Duration = Duration::from_millis(1);

/// Passes in a row that find no worker executing an item before the
/// monitor thread parks (a few milliseconds of idleness at most: three
/// pauses, doubling), so that the first item of the next burst wakes it
/// at once; a flood of short items, whose workers are between items at
/// some passes, seldom finds three in a row.
const PARK_AFTER_IDLE_PASSES: u32 = 3;

/// What the monitor thread does after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Park until a worker begins an item (or the watchdog is due).
    Park,
    /// Pause this long; `nudgeable`: a worker beginning an item ends it.
    Pause { pause: Duration, nudgeable: bool },
}

/// How the monitor thread paces its passes, from what each found (pure:
/// the thread applies it, the tests below check it).
/// - A worker worth watching closely: the next pass soon
///   ([`MONITOR_POLL_MIN`]).
/// - A detection of a worker that began only that item (a storm: the
///   worker woken for the items behind may block in turn): hot passes
///   ([`HOT_PAUSE`], new runs probed at once) while they find workers to
///   watch, for [`HOT_SPAN`] after the last such detection.
/// - Nothing to watch: pauses double up to [`MONITOR_POLL_MAX`]; while
///   workers run floods of short items, they grow fourfold up to
///   [`FLOOD_POLL_MAX`] (each pass wakes the monitor on a busy CPU, and a
///   flood holds nobody up).
/// - Nobody executing an item for [`PARK_AFTER_IDLE_PASSES`] passes: park;
///   the pause starts over from the shortest, so that an item that begins
///   and blocks is seen soon, except after a flood (whose workers are
///   often idle: it parks and is woken often).
#[derive(Debug)]
struct Pacer {
    pause: Duration,
    idle_passes: u32,
    hot: bool,
    hot_until: Duration,
    /// The last pass that found an item running found a flood.
    flooding: bool,
}

impl Pacer {
    fn new() -> Self {
        Pacer { pause: MONITOR_POLL_MIN, idle_passes: 0, hot: false, hot_until: Duration::ZERO, flooding: false }
    }

    /// Whether the next pass is hot (probes new runs at once).
    fn hot(&self) -> bool {
        self.hot
    }

    /// What to do after a pass that found `outcome`, at `now`.
    fn after(&mut self, outcome: &MonitorPass, now: Duration) -> Next {
        if outcome.storm > 0 {
            self.hot_until = now.saturating_add(HOT_SPAN);
        }
        self.hot = outcome.storm > 0 || (self.hot && outcome.watched > 0 && now < self.hot_until);
        self.idle_passes = if outcome.executing == 0 { self.idle_passes + 1 } else { 0 };
        if outcome.executing > 0 {
            self.flooding = outcome.flooding > 0;
        }
        if self.idle_passes >= PARK_AFTER_IDLE_PASSES {
            (self.idle_passes, self.hot) = (0, false);
            // The item that wakes it may block: watch it closely, unless
            // the monitor parked in the gaps of a flood (which would wake
            // it into short pauses again and again).
            if !self.flooding {
                self.pause = MONITOR_POLL_MIN;
            }
            return Next::Park;
        }
        self.pause = if self.hot {
            HOT_PAUSE
        } else if outcome.watched > 0 || outcome.detected > 0 {
            MONITOR_POLL_MIN
        } else if outcome.flooding > 0 && outcome.asleep == 0 {
            // Fast: a flood holds nobody up, and its first passes (a burst
            // begins with the monitor parked) are the dearest; not at once,
            // as an item that blocks may begin meanwhile on another pool.
            (self.pause * 4).min(FLOOD_POLL_MAX)
        } else {
            (self.pause * 2).min(MONITOR_POLL_MAX)
        };
        // With workers seen blocked, an item that begins may be one that
        // blocks in turn, or one they held up: a long pause ends for it
        // (not in a flood, whose items begin all the time).
        let nudgeable = outcome.asleep > 0 && outcome.flooding == 0 && self.pause >= NUDGEABLE_PAUSE;
        Next::Pause { pause: self.pause, nudgeable }
    }

    /// A worker beginning an item ended the pause: watch closely again.
    fn nudged(&mut self) {
        self.pause = MONITOR_POLL_MIN;
    }
}

/// Body of the monitor thread: passes over `pools`, paced by [`Pacer`]
/// (backing off as Go's `sysmon` does, and parked while no worker executes
/// an item: the next one to begin wakes it), until stopped.
pub(crate) fn monitor_main<P: Platform>(pools: Vec<Arc<Pool<P>>>) {
    let Some(shared) = pools.first().map(|pool| pool.shared.clone()) else {
        return;
    };
    P::set_thread_context(Some(Arc::new(crate::blocking::EngineThread::of(&shared))));
    shared.platform.precise_timers();
    let limits = Thresholds::of(&shared.config);
    let mut watchdog = crate::watchdog::Schedule::new(&shared);
    let mut pacer = Pacer::new();
    loop {
        watchdog.check_if_due(&pools);
        let outcome = pass(&pools, limits, true, pacer.hot());
        match pacer.after(&outcome, shared.platform.now()) {
            Next::Park => {
                // Nothing can block unseen: park until a worker begins an
                // item (or the watchdog's next check).
                let executing = || pools.iter().any(|pool| pool.watch.lock().iter().any(|slot| slot.executing()));
                if shared.monitor.park(&shared.platform, executing, watchdog.next()) {
                    return;
                }
            }
            Next::Pause { pause, nudgeable } => {
                let deadline = shared.platform.now().saturating_add(pause);
                if pacer.hot() {
                    // A storm: the CPUs mostly wait on sleeping items, and a
                    // timed wake-up there takes longer than the pause:
                    // yield until the next pass instead (a bounded number
                    // of times: a platform's clock may stand still).
                    for _ in 0..HOT_YIELDS {
                        if shared.platform.now() >= deadline {
                            break;
                        }
                        P::yield_now();
                    }
                }
                let (stopped, nudged) = shared.monitor.pause(&shared.platform, deadline, nudgeable);
                if stopped {
                    return;
                }
                if nudged {
                    pacer.nudged();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1);

    fn pass(f: impl FnOnce(&mut MonitorPass)) -> MonitorPass {
        let mut outcome = MonitorPass { executing: 1, ..MonitorPass::default() };
        f(&mut outcome);
        outcome
    }

    fn pause_of(next: Next) -> Duration {
        match next {
            Next::Pause { pause, .. } => pause,
            Next::Park => panic!("parked"),
        }
    }

    #[test]
    fn a_flood_backs_off_further_than_other_busy_spells() {
        let (mut flood, mut busy) = (Pacer::new(), Pacer::new());
        let (mut flood_pause, mut busy_pause) = (Duration::ZERO, Duration::ZERO);
        for i in 0..20 {
            let now = T0 + Duration::from_millis(i);
            flood_pause = pause_of(flood.after(&pass(|o| o.flooding = 1), now));
            busy_pause = pause_of(busy.after(&pass(|_| {}), now));
        }
        assert_eq!(flood_pause, FLOOD_POLL_MAX);
        assert_eq!(busy_pause, MONITOR_POLL_MAX);
        // A flood backs off faster than a busy pool.
        let first_flood = pause_of(Pacer::new().after(&pass(|o| o.flooding = 1), T0));
        assert!(first_flood > pause_of(Pacer::new().after(&pass(|_| {}), T0)));
        // Blocked workers about: a flood is no reason to look less often,
        // but its items' starts are no reason to look sooner (they are
        // short: a nudge from each would wake the monitor all the time).
        let next = flood.after(&pass(|o| (o.flooding, o.asleep) = (1, 1)), T0);
        assert_eq!(next, Next::Pause { pause: MONITOR_POLL_MAX, nudgeable: false });
        let next = busy.after(&pass(|o| o.asleep = 1), T0);
        assert_eq!(next, Next::Pause { pause: MONITOR_POLL_MAX, nudgeable: true });
    }

    #[test]
    fn a_storm_detection_makes_passes_hot_for_a_span_only() {
        let mut pacer = Pacer::new();
        assert_eq!(
            pacer.after(&pass(|o| (o.detected, o.storm) = (1, 1)), T0),
            Next::Pause { pause: HOT_PAUSE, nudgeable: false }
        );
        assert!(pacer.hot());
        // Workers to watch keep it hot within the span...
        let watched = pass(|o| o.watched = 1);
        assert_eq!(pause_of(pacer.after(&watched, T0 + HOT_SPAN / 2)), HOT_PAUSE);
        // ...not after it, even with workers still to watch (a busy spell
        // whose every new run is probed would be hot for ever).
        assert_eq!(pause_of(pacer.after(&watched, T0 + HOT_SPAN)), MONITOR_POLL_MIN);
        assert!(!pacer.hot());
    }

    #[test]
    fn a_detection_in_a_flood_is_no_storm() {
        let mut pacer = Pacer::new();
        let next = pacer.after(&pass(|o| (o.detected, o.flooding) = (1, 1)), T0);
        assert!(!pacer.hot(), "a flood worker counted out: no hot passes");
        assert_eq!(pause_of(next), MONITOR_POLL_MIN);
    }

    #[test]
    fn idle_passes_park_and_a_nudge_shortens_the_pause() {
        let mut pacer = Pacer::new();
        let idle = MonitorPass::default();
        assert!(matches!(pacer.after(&idle, T0), Next::Pause { .. }));
        assert!(matches!(pacer.after(&idle, T0), Next::Pause { .. }));
        assert_eq!(pacer.after(&idle, T0), Next::Park);
        for _ in 0..10 {
            pacer.after(&pass(|o| o.asleep = 1), T0);
        }
        assert_eq!(pacer.after(&pass(|o| o.asleep = 1), T0), Next::Pause { pause: MONITOR_POLL_MAX, nudgeable: true });
        pacer.nudged();
        assert_eq!(pause_of(pacer.after(&pass(|_| {}), T0)), MONITOR_POLL_MIN * 2);
    }

    #[test]
    fn a_park_starts_the_pause_over() {
        let mut pacer = Pacer::new();
        for _ in 0..10 {
            pacer.after(&pass(|_| {}), T0);
        }
        let idle = MonitorPass::default();
        pacer.after(&idle, T0);
        pacer.after(&idle, T0);
        assert_eq!(pacer.after(&idle, T0), Next::Park);
        // The item whose start wakes it may block, with nothing behind it
        // yet: it is looked at again soon.
        assert_eq!(pause_of(pacer.after(&pass(|_| {}), T0)), MONITOR_POLL_MIN * 2);
    }

    #[test]
    fn a_park_in_a_flood_keeps_the_pause_it_had_backed_off_to() {
        let mut pacer = Pacer::new();
        for _ in 0..10 {
            pacer.after(&pass(|o| o.flooding = 1), T0);
        }
        let idle = MonitorPass::default();
        pacer.after(&idle, T0);
        pacer.after(&idle, T0);
        assert_eq!(pacer.after(&idle, T0), Next::Park);
        // A flood whose workers are idle at three passes in a row parks the
        // monitor, and its next item wakes it: it must not start over from
        // the shortest pause (the first pass probes what needs it at once).
        assert!(pause_of(pacer.after(&pass(|o| o.flooding = 1), T0)) > MONITOR_POLL_MAX);
        assert_eq!(pause_of(pacer.after(&pass(|o| o.watched = 1), T0)), MONITOR_POLL_MIN);
    }
}
