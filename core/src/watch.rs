//! The blocking monitor's view of one worker (`monitor.rs` runs the
//! passes): the run it executes, published by the worker, and what the
//! monitor's passes saw of it, with the decision to report it asleep or
//! running again (machine rules M32-M33). Below the engine's shared
//! objects, which hold a slot per observed worker.

use crate::machine::pool::WorkerId;
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform, ThreadProbe, ThreadSample};
use crate::report::{deliver, HogReport, Report, ReportFn};
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::BTreeSet;

/// One worker as the monitor sees it.
pub(crate) struct WatchSlot<P: Platform> {
    /// I: the worker.
    worker: WorkerId,
    /// I: how the platform observes its thread.
    probe: ThreadProbe,
    /// A: the run it executes or last executed, and whether it executes
    /// it now ([`EXECUTING`]). Written by the worker, read by a pass.
    run: AtomicUsize<P>,
    /// leaf: what the last passes saw (only a pass locks it).
    seen: Mutex<P, Seen>,
}

/// What the passes saw of one slot.
#[derive(Default)]
struct Seen {
    /// The run observed (0: none yet), and when it was first seen.
    run: usize,
    run_since: Duration,
    /// The probe's `ran` counter when it was first seen asleep without
    /// running since, and when (`since`).
    ran: Option<u64>,
    since: Duration,
    /// Reported asleep in `run` (and not reported running since), and when.
    detected: bool,
    detected_since: Duration,
    /// A paced pass probes the slot no earlier than this.
    next_probe: Duration,
    /// The thread's CPU time at the last probe in this run (CPU time used
    /// since is credited to the run's workqueue, rule M35).
    cpu_last: Option<Duration>,
    /// Its CPU time when this stretch of running began: the first probe
    /// in the run, or the first since it was seen asleep (rule M34).
    cpu_base: Option<Duration>,
    /// Reported hogging in this run (rule M34: once per run).
    hogged: bool,
    /// CPU time seen used in this run and not yet credited (rule M35: sent
    /// once it reaches [`CREDIT_MIN`], or with another report).
    credit: Duration,
    /// When the thread's CPU time was last read, and what it was (kept
    /// from run to run): a thread that used at least half the time since
    /// then ran, and needs no probe.
    thread: Option<(Duration, Duration)>,
    /// The last run the worker was seen to begin, executing or finished
    /// (kept from run to run): a new run more than one past it means the
    /// worker ran items between two passes, as in a flood, and is not
    /// hurried for.
    last_run: usize,
    /// `run` is the only run the worker began since the pass before it was
    /// first seen (not one of a flood of short items): with items waiting
    /// behind it, it is counted out the first time it is seen asleep.
    single: bool,
}

/// The low bit of a slot's published run: set while the worker executes
/// it. The rest is the run (machine `WorkerState::run`, truncated to a
/// word less a bit; runs start at 1), kept between items so that a pass
/// knows how many the worker began since the last one.
const EXECUTING: usize = 1;

/// A slot's published word while the worker executes run `run` (a run
/// that is cut to 0, past 2^31 runs on a 32-bit target, is published as 1:
/// 0 reads as no run; reports of it are then out of date).
fn published(run: u64) -> usize {
    ((run as usize) << 1).max(1 << 1) | EXECUTING
}

/// Run `run` as a slot holds it: cut to a word less a bit.
pub(crate) fn cut(run: u64) -> u64 {
    ((run as usize) << 1 >> 1) as u64
}

/// CPU time a pass lets accumulate for a run before it takes the pool lock
/// to credit it (rule M35): a flood of short items costs no credits.
const CREDIT_MIN: Duration = Duration::from_millis(1);

/// What a pass reports of one worker (PS9-PS12), for run `run`.
pub(crate) struct Observation {
    pub(crate) worker: WorkerId,
    pub(crate) run: u64,
    /// `Some(true)`: seen asleep past the threshold (PS9); `Some(false)`:
    /// seen running again after that (PS10).
    pub(crate) asleep: Option<bool>,
    /// Seen using more CPU than the hog threshold in one stretch (PS11).
    pub(crate) hog: bool,
    /// CPU time seen used since the last probe in this run (PS12).
    pub(crate) cpu: Duration,
    /// The worker began only this run since the pass before it was first
    /// seen (not a flood of short items).
    pub(crate) single: bool,
}

/// The thresholds a pass judges by (`Config::detect_blocking`,
/// `Config::cpu_hog`); `None`: that judgement is off.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    pub(crate) asleep: Option<Duration>,
    pub(crate) hog: Option<Duration>,
}

impl Thresholds {
    /// What the monitor judges by in `config`: nothing without concurrency
    /// management (a worker counted out changes nothing there).
    pub(crate) fn of(config: &crate::Config) -> Self {
        let managed = config.concurrency_management;
        Thresholds { asleep: config.detect_blocking.filter(|_| managed), hog: config.cpu_hog.filter(|_| managed) }
    }

    /// Whether it judges anything: workers then need watching.
    pub(crate) fn any(self) -> bool {
        self.asleep.is_some() || self.hog.is_some()
    }
}

impl<P: Platform> WatchSlot<P> {
    /// A slot for worker `worker`, observed through `probe`.
    pub(crate) fn new(worker: WorkerId, probe: ThreadProbe) -> Self {
        WatchSlot { worker, probe, run: AtomicUsize::new(0), seen: Mutex::new(Seen::default()) }
    }

    /// The worker begins run `run` (call before the item's function), and
    /// wakes the monitor if it parked with nothing to watch.
    #[inline]
    pub(crate) fn begin(&self, run: u64, monitor: &MonitorControl<P>) {
        // SeqCst, paired with the monitor's park: either it sees this run
        // on its last look, or this sees it parked.
        self.run.store(published(run), Ordering::SeqCst);
        monitor.nudge();
    }

    /// The machine rejected this slot's "asleep" report (the worker did not
    /// count as running: a blocking section, an offline CPU's pool, an out
    /// of date run): not detected, so it is reported again should it still
    /// sleep once it counts (after `cpu_up`, say).
    /// A rejected worker is probed again no sooner than
    /// [`PROBE_RUNNING_MAX`] after the report (a worker blocked on an
    /// offline CPU's pool is not reported on every pass).
    pub(crate) fn rejected(&self) {
        let mut seen = self.seen.lock();
        seen.detected = false;
        seen.ran = None;
        seen.next_probe = seen.detected_since.saturating_add(PROBE_RUNNING_MAX);
    }

    /// Whether the worker executes a run (an item's function).
    pub(crate) fn executing(&self) -> bool {
        self.run.load(Ordering::SeqCst) & EXECUTING != 0
    }

    /// The worker finished its item's function, or entered a blocking
    /// section (counted out already: nothing to watch). Only the worker writes
    /// its slot: a load and a store, no read-modify-write.
    #[inline]
    pub(crate) fn end(&self) {
        let run = self.run.load(Ordering::Relaxed);
        self.run.store(run & !EXECUTING, Ordering::Release);
    }

    /// Probes the worker if it stayed in one run since the last pass;
    /// returns the report to make, if any. Only a pass calls it (one at a
    /// time). A `paced` pass (the monitor thread's) probes a slot only when
    /// it is due: soon after its run began, then less often the longer it
    /// runs (a CPU-bound item, at most every [`PROBE_RUNNING_MAX`]) or
    /// sleeps once reported (at most every [`PROBE_DETECTED_MAX`]); an
    /// explicit pass probes every slot. A new run is probed at once in a
    /// `hot` pass (one right after a detection, when the woken worker's
    /// item may block in turn), or if it is the only run the worker began
    /// since the last pass and items are `waiting` (it may hold them up);
    /// else from the next pass on, so a flood of short items costs no
    /// probe.
    pub(crate) fn observe(
        &self,
        platform: &P,
        limits: Thresholds,
        paced: bool,
        hot: bool,
        waiting: bool,
        outcome: &mut MonitorPass,
    ) -> Option<Observation> {
        let published = self.run.load(Ordering::Acquire);
        // The run executed (0: between items), and the last one begun.
        let latest = published >> 1;
        let run = if published & EXECUTING != 0 { latest } else { 0 };
        let mut seen = self.seen.lock();
        let now = platform.now();
        outcome.executing += usize::from(run != 0);
        if run != seen.run {
            // Between items, or a new run since the last pass: noted (a
            // detection of the last run ended with the worker's own step).
            let (thread, last_run) = (seen.thread, latest);
            let next_after_last = latest == seen.last_run.wrapping_add(1) & (usize::MAX >> 1);
            *seen = Seen {
                run,
                run_since: now,
                next_probe: now,
                thread,
                last_run,
                single: next_after_last,
                ..Seen::default()
            };
            if run == 0 {
                return None;
            }
            outcome.flooding += usize::from(!next_after_last);
            // Probed at once if items wait behind it and it began only
            // this one since the last pass (it may hold them up already:
            // the pass that a begin nudges comes a wake-up later); not in a
            // flood of short items, which begins many between two passes.
            if !(hot || waiting && next_after_last) {
                return None;
            }
        } else if run == 0 {
            // Idle at both passes, perhaps with items run in between.
            seen.last_run = latest;
            return None;
        }
        outcome.asleep += usize::from(seen.detected);
        if paced && now < seen.next_probe {
            outcome.watched += usize::from(!seen.detected && seen.next_probe <= now.saturating_add(MONITOR_POLL_MIN));
            return None;
        }
        let sample = seen.sample(platform, self.probe, now)?;
        let mut seen_now = Observation {
            worker: self.worker,
            run: run as u64,
            asleep: None,
            hog: false,
            cpu: Duration::ZERO,
            single: seen.single,
        };
        if let Some(cpu) = sample.cpu {
            seen.cpu_hog(cpu, sample.asleep, limits.hog, &mut seen_now);
        }
        if let Some(threshold) = limits.asleep {
            // In a storm (a detection in the last passes) the next worker's
            // item likely blocks too, and a worker that holds up waiting
            // items costs them every moment: seen asleep once, it is
            // counted out (as the kernel counts out any sleep). Not so in
            // a flood of short items, whose workers wait a moment on
            // locks (the allocator's, say): there, the threshold.
            let threshold = if hot || (waiting && seen.single) { threshold.min(HOT_THRESHOLD) } else { threshold };
            seen_now.asleep = seen.asleep(now, sample, threshold, outcome);
        } else {
            seen.next_probe = now.saturating_add(pace(now.saturating_sub(seen.run_since)));
        }
        // CPU time is credited in batches, or with another report.
        seen.credit += seen_now.cpu;
        let report = seen_now.asleep.is_some() || seen_now.hog || seen.credit >= CREDIT_MIN;
        seen_now.cpu = if report { core::mem::take(&mut seen.credit) } else { Duration::ZERO };
        report.then_some(seen_now)
    }
}

/// The pause before the next probe of a worker that has run `running_for`
/// in one run: soon at first, then less often (a CPU-bound item).
fn pace(running_for: Duration) -> Duration {
    (running_for / 4).clamp(MONITOR_POLL_MIN, PROBE_RUNNING_MAX)
}

impl Seen {
    /// What the thread is doing: running, without a probe, if its CPU time
    /// grew by at least half the time since the last read (a worker that
    /// runs or waits for a CPU, as in a flood); else a probe. A detected
    /// worker is always probed (it counts again only if running now).
    fn sample<P: Platform>(&mut self, platform: &P, probe: ThreadProbe, now: Duration) -> Option<ThreadSample> {
        if let Some((at, before)) = self.thread.filter(|_| !self.detected) {
            if let Some(cpu) = platform.cpu_time(probe) {
                let used = cpu.saturating_sub(before);
                if !used.is_zero() && used >= now.saturating_sub(at) / 2 {
                    self.thread = Some((now, cpu));
                    return Some(ThreadSample { asleep: false, ran: 0, cpu: Some(cpu) });
                }
            }
        }
        let sample = platform.probe(probe)?;
        self.thread = sample.cpu.map(|cpu| (now, cpu));
        Some(sample)
    }

    /// Rules M34-M35 at a probe that read CPU time `cpu`: the time since
    /// the last probe is credited, and a stretch of running that used more
    /// than `hog` is reported once per run.
    fn cpu_hog(&mut self, cpu: Duration, asleep: bool, hog: Option<Duration>, seen_now: &mut Observation) {
        if let Some(last) = self.cpu_last {
            seen_now.cpu = cpu.saturating_sub(last);
        }
        self.cpu_last = Some(cpu);
        if asleep {
            // A stretch of CPU use ends when the thread sleeps (the kernel
            // restarts its count when a worker wakes).
            self.cpu_base = None;
            return;
        }
        let base = *self.cpu_base.get_or_insert(cpu);
        if hog.is_some_and(|limit| !self.hogged && cpu.saturating_sub(base) >= limit) {
            self.hogged = true;
            seen_now.hog = true;
        }
    }

    /// Rules M32-M33 at a probe: `Some(true)` to report the worker asleep
    /// past `threshold`, `Some(false)` to report it running again.
    fn asleep(
        &mut self,
        now: Duration,
        sample: ThreadSample,
        threshold: Duration,
        outcome: &mut MonitorPass,
    ) -> Option<bool> {
        if self.detected {
            let asleep_for = now.saturating_sub(self.detected_since);
            self.next_probe = now.saturating_add((asleep_for / 4).clamp(MONITOR_POLL_MAX, PROBE_DETECTED_MAX));
            if !sample.asleep {
                // Running at the probe: it counts again. A thread that woke
                // and slept again in between stays counted out: it is
                // mostly asleep (the kernel would have counted it in and
                // out again).
                self.detected = false;
                self.ran = None;
                self.next_probe = now;
                return Some(false);
            }
            return None;
        }
        outcome.watched += 1;
        self.next_probe = now.saturating_add(pace(now.saturating_sub(self.run_since)));
        if !sample.asleep {
            self.ran = None;
            return None;
        }
        match self.ran {
            Some(ran) if ran == sample.ran => {}
            _ => {
                self.ran = Some(sample.ran);
                self.since = now;
            }
        }
        // Asleep, not yet for the threshold: look again once it is due.
        self.next_probe = self.next_probe.min(self.since.saturating_add(threshold));
        if now.saturating_sub(self.since) >= threshold {
            self.detected = true;
            self.detected_since = now;
            self.next_probe = now.saturating_add(MONITOR_POLL_MAX);
            return Some(true);
        }
        None
    }
}

/// What one pass did, for the monitor thread's pacing and for models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorPass {
    /// Workers reported asleep (rule M32) and taken out of the count.
    pub detected: usize,
    /// Of those, workers that began only that item since the pass before
    /// (not a flood of short items): the items behind may block in turn
    /// (a storm), so the monitor thread passes fast for a moment.
    pub storm: usize,
    /// Workers reported running again (rule M33).
    pub resumed: usize,
    /// Workers seen hogging the CPU and counted out as CPU-intensive (rule
    /// M34).
    pub hogs: usize,
    /// Workers in the same run as at the last pass, due for a probe within
    /// [`MONITOR_POLL_MIN`] and not reported asleep: worth watching closely
    /// (the monitor thread polls fast while any is). A flood of short
    /// items has none: each pass finds new runs.
    pub watched: usize,
    /// Workers executing an item (the monitor thread parks when none is).
    pub executing: usize,
    /// Workers seen in a new run that began several items since the last
    /// pass (a flood of short items: the monitor thread pauses longer, up
    /// to [`FLOOD_POLL_MAX`], while nothing else needs watching).
    pub flooding: usize,
    /// Workers reported asleep and not seen running since (the monitor
    /// thread's long pauses may then be cut short by the next item to
    /// begin).
    pub asleep: usize,
}

/// The detection threshold in a hot pass (right after a detection).
pub const HOT_THRESHOLD: Duration = Duration::ZERO;

/// The pause between hot passes (in a storm of blocking items).
pub const HOT_PAUSE: Duration = Duration::from_micros(20);

/// [`MonitorControl`]'s `parked` while the thread pauses long and may be
/// nudged: workers are seen blocked, so the next item to begin (perhaps
/// behind one of them, perhaps about to block) is worth a look at once.
const NUDGEABLE: usize = 2;

/// The shortest pause between the monitor thread's passes, while some
/// worker is worth watching closely ([`MonitorPass::watched`]).
pub const MONITOR_POLL_MIN: Duration = Duration::from_micros(50);
/// The longest pause, reached by doubling while no worker is worth
/// watching closely: the idle cost is one pass per this interval.
pub const MONITOR_POLL_MAX: Duration = Duration::from_millis(2);
/// The longest pause while workers run floods of short items and no
/// worker needs watching ([`MonitorPass::flooding`]): each pass wakes the
/// monitor on a busy CPU, which costs tens of microseconds there.
pub const FLOOD_POLL_MAX: Duration = Duration::from_millis(5);
/// The longest interval between two probes of a worker that keeps running
/// one item (CPU-bound): it is seen within this once it blocks.
pub const PROBE_RUNNING_MAX: Duration = Duration::from_millis(2);
/// The longest interval between two probes of a worker reported asleep:
/// one that wakes and runs on counts again within this, or at its own next
/// step (whichever is first).
pub const PROBE_DETECTED_MAX: Duration = Duration::from_millis(50);

/// Stops the monitor thread (`SystemShared::monitor`).
pub(crate) struct MonitorControl<P: Platform> {
    /// Set at shutdown.
    stop: Mutex<P, bool>,
    /// Notified at shutdown and by a nudge; the thread waits on it.
    wake: Condvar<P>,
    /// A: 1 while the thread is parked with nothing to watch (no worker
    /// executing an item), [`NUDGEABLE`] while it pauses long with blocked
    /// workers about (either way the next item to begin wakes it), else 0.
    parked: AtomicUsize<P>,
    /// Held for a whole pass: one pass at a time (the thread's, or an
    /// explicit `System::monitor_pass`), so reports apply in the order
    /// they were made. Taken before the watch lists and pool locks.
    pub(crate) passing: Mutex<P, ()>,
    /// I: where reports go (`SystemBuilder::on_report`; `None`: standard
    /// error).
    pub(crate) reporter: Option<Arc<ReportFn>>,
    /// The functions reported hogging the CPU so far (each once). Leaf,
    /// taken with no pool lock held.
    pub(crate) hogs_reported: Mutex<P, BTreeSet<&'static str>>,
}

impl<P: Platform> MonitorControl<P> {
    pub(crate) fn new(reporter: Option<Arc<ReportFn>>) -> Self {
        MonitorControl {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            parked: AtomicUsize::new(0),
            passing: Mutex::new(()),
            reporter,
            hogs_reported: Mutex::new(BTreeSet::new()),
        }
    }

    /// Reports a hog of `report.func`, unless that function was reported
    /// before (kernel `wq_cpu_intensive_report` reports each function
    /// rarely; here once).
    pub(crate) fn report_hog(&self, report: HogReport) {
        if self.hogs_reported.lock().insert(report.func) {
            self.report(&Report::CpuHog(report));
        }
    }

    /// Hands `report` to the user's handler, or standard error.
    pub(crate) fn report(&self, report: &Report) {
        deliver(self.reporter.as_deref(), report);
    }

    /// Tells the monitor thread to exit (the caller joins it).
    pub(crate) fn stop(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
    }

    /// Wakes the monitor thread if it parked (a worker began an item).
    #[inline]
    pub(crate) fn nudge(&self) {
        if self.parked.load(Ordering::SeqCst) != 0 {
            let _stop = self.stop.lock();
            self.parked.store(0, Ordering::SeqCst);
            self.wake.notify_all();
        }
    }

    /// Parks the monitor thread until a worker begins an item or `until`
    /// (the watchdog's next check, if any) passes, unless `executing`
    /// (called after the park is announced) says one has; true if stopped.
    pub(crate) fn park(&self, platform: &P, executing: impl Fn() -> bool, until: Option<Duration>) -> bool {
        self.parked.store(1, Ordering::SeqCst);
        if executing() {
            self.parked.store(0, Ordering::SeqCst);
            return *self.stop.lock();
        }
        let mut stop = self.stop.lock();
        while !*stop && self.parked.load(Ordering::SeqCst) != 0 {
            match until {
                Some(deadline) if platform.now() >= deadline => break,
                Some(deadline) => stop = self.wake.wait_until(platform, stop, deadline),
                None => stop = self.wake.wait(stop),
            }
        }
        self.parked.store(0, Ordering::SeqCst);
        *stop
    }

    /// Waits until `deadline` on `platform`'s clock or a stop; if
    /// `nudgeable`, also until a worker begins an item (a nudge). Returns
    /// whether it was stopped, and whether a nudge ended the pause.
    pub(crate) fn pause(&self, platform: &P, deadline: Duration, nudgeable: bool) -> (bool, bool) {
        let mut stop = self.stop.lock();
        if nudgeable {
            self.parked.store(NUDGEABLE, Ordering::SeqCst);
        }
        let mut nudged = false;
        while !*stop && platform.now() < deadline {
            if nudgeable && self.parked.load(Ordering::SeqCst) == 0 {
                nudged = true;
                break;
            }
            stop = self.wake.wait_until(platform, stop, deadline);
        }
        self.parked.store(0, Ordering::SeqCst);
        (*stop, nudged)
    }
}

/// The stall watchdog's view of one pool (`watchdog.rs`): what its last
/// check saw. Leaf lock, taken under the pool lock.
#[derive(Debug, Default)]
pub(crate) struct StallWatch {
    /// Items begun in the pool so far, at the last check.
    pub(crate) begun: u64,
    /// Whether items were waiting at the last check.
    pub(crate) pending: bool,
    /// Since when the pool has had waiting items and begun none.
    pub(crate) since: Duration,
    /// When the current stall was last reported.
    pub(crate) reported_at: Option<Duration>,
    /// Stalls reported so far (`PoolStats::stalls`).
    pub(crate) stalls: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Std;

    #[test]
    fn a_cut_run_is_the_run_while_it_fits() {
        assert_eq!(cut(7), 7);
        let top = (usize::MAX >> 1) as u64;
        assert_eq!(cut(top), top);
        assert_eq!(cut(top + 2), 1, "wraps past the word less a bit");
        assert_eq!(published(top + 2) >> 1, 1);
        assert_eq!(published(top + 1) >> 1, 1, "a run cut to 0 still reads as a run");
    }

    /// A thread asleep on a condition variable until the value drops, and
    /// its probe (Linux: its state read from `/proc`).
    #[cfg(target_os = "linux")]
    struct Sleeper {
        probe: ThreadProbe,
        wake: Arc<(Mutex<Std, bool>, Condvar<Std>)>,
        handle: Option<<Std as Platform>::JoinHandle>,
    }

    #[cfg(target_os = "linux")]
    impl Sleeper {
        fn new(platform: &Std) -> Self {
            let wake = Arc::new((Mutex::<Std, bool>::new(false), Condvar::<Std>::new()));
            let probe = Arc::new(Mutex::<Std, Option<ThreadProbe>>::new(None));
            let (their_wake, their_probe, their_platform) = (wake.clone(), probe.clone(), *platform);
            let body = Box::new(move || {
                *their_probe.lock() = their_platform.thread_probe();
                let mut woken = their_wake.0.lock();
                while !*woken {
                    woken = their_wake.1.wait(woken);
                }
            });
            let handle = platform.spawn("sleeper".into(), body).expect("a thread");
            let probe = loop {
                if let Some(probe) = *probe.lock() {
                    break probe;
                }
                Std::yield_now();
            };
            // Asleep in its wait (a bounded look: the test fails otherwise).
            for _ in 0..100_000 {
                if platform.probe(probe).is_some_and(|sample| sample.asleep) {
                    break;
                }
                Std::yield_now();
            }
            Sleeper { probe, wake, handle: Some(handle) }
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for Sleeper {
        fn drop(&mut self) {
            *self.wake.0.lock() = true;
            self.wake.1.notify_all();
            if let Some(handle) = self.handle.take() {
                Std::join(handle);
            }
        }
    }

    #[cfg(target_os = "linux")]
    const LIMITS: Thresholds = Thresholds { asleep: Some(Duration::from_millis(100)), hog: None };

    /// A slot watching a thread that sleeps until the `Sleeper` drops, with
    /// its platform and monitor.
    #[cfg(target_os = "linux")]
    fn watching_a_sleeper() -> (Std, MonitorControl<Std>, Sleeper, WatchSlot<Std>) {
        let platform = Std::new();
        let sleeper = Sleeper::new(&platform);
        let slot = WatchSlot::<Std>::new(0, sleeper.probe);
        (platform, MonitorControl::new(None), sleeper, slot)
    }

    /// A paced pass with items `waiting`, as the monitor thread makes it.
    #[cfg(target_os = "linux")]
    fn paced(slot: &WatchSlot<Std>, platform: &Std, waiting: bool) -> (Option<Observation>, MonitorPass) {
        let mut outcome = MonitorPass::default();
        let seen = slot.observe(platform, LIMITS, true, false, waiting, &mut outcome);
        (seen, outcome)
    }

    /// A worker that began just one item since the last pass, with items
    /// waiting behind it, is probed on first sight and counted out the
    /// first time it is seen asleep (no threshold).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_single_item_with_items_waiting_is_counted_out_at_first_sight() {
        let (platform, monitor, _sleeper, slot) = watching_a_sleeper();
        slot.begin(1, &monitor);
        let (seen, outcome) = paced(&slot, &platform, true);
        assert_eq!(seen.and_then(|seen| seen.asleep), Some(true), "reported asleep at once: {outcome:?}");
        assert_eq!(outcome.flooding, 0);
    }

    /// Without items waiting, the same worker is only noted.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_single_item_with_nothing_waiting_is_only_noted() {
        let (platform, monitor, _sleeper, slot) = watching_a_sleeper();
        slot.begin(1, &monitor);
        let (seen, outcome) = paced(&slot, &platform, false);
        assert!(seen.is_none(), "probed at once");
        assert_eq!((outcome.executing, outcome.flooding, outcome.watched), (1, 0, 0));
    }

    /// A worker that began several items since the last pass (a flood) is
    /// not probed on first sight, and, found asleep at the next pass, waits
    /// the threshold: flood workers sleep briefly on locks.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_flood_worker_waits_the_threshold() {
        let (platform, monitor, _sleeper, slot) = watching_a_sleeper();
        slot.begin(5, &monitor);
        let (seen, outcome) = paced(&slot, &platform, true);
        assert!(seen.is_none(), "a flood's run probed at once");
        assert_eq!(outcome.flooding, 1);
        let (seen, outcome) = paced(&slot, &platform, true);
        assert!(seen.is_none(), "counted out before the threshold");
        assert_eq!(outcome.watched, 1, "asleep, watched until the threshold");
    }

    /// The last run is kept between items: a worker seen idle, that then
    /// ran one more item, is seen to have begun just that one.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_last_run_is_kept_between_items() {
        let (platform, monitor, _sleeper, slot) = watching_a_sleeper();
        for run in 1..=3 {
            slot.begin(run, &monitor);
            slot.end();
        }
        let (_, outcome) = paced(&slot, &platform, true);
        assert_eq!(outcome.executing, 0);
        slot.begin(4, &monitor);
        let (seen, outcome) = paced(&slot, &platform, true);
        assert_eq!(seen.and_then(|seen| seen.asleep), Some(true), "run 4 was taken for a flood: {outcome:?}");
    }

    /// A worker in a blocking section (its slot ended) is not watched.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_ended_slot_is_not_watched() {
        let (platform, monitor, _sleeper, slot) = watching_a_sleeper();
        slot.begin(1, &monitor);
        slot.end();
        assert!(!slot.executing());
        let (seen, outcome) = paced(&slot, &platform, true);
        assert!(seen.is_none());
        assert_eq!(outcome.executing, 0);
    }
}
