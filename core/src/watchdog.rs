//! The stall watchdog (kernel `wq_watchdog`): a pool whose waiting items
//! see no item begin for the threshold (`Config::watchdog`, 30 s by
//! default) is reported stalled, with its oldest waiting item and what each
//! of its workers does, as the pool's state under its lock says (not as
//! another thread's locals say). Such a pool is stuck: every worker is
//! busy with an item that neither finishes nor blocks visibly (a wait no
//! blocking section or monitor sees), and no worker can be created.
//!
//! The check runs every quarter threshold on the monitor thread, or when
//! `System::watchdog_check` is called. It compares each pool's count of
//! items begun with the last check's, so the engine's hot path pays
//! nothing for it. A stall is reported at most once per threshold while it
//! lasts.

use crate::machine::pool::{WORKER_CPU_INTENSIVE, WORKER_RESCUER, WORKER_ROGUE};
use crate::machine::Queued;
use crate::platform::{Arc, Platform};
use crate::report::{Activity, Report, StallReport, WorkerReport};
use crate::shared::{Pool, PoolLocked, SystemShared};
use core::time::Duration;

/// When the monitor thread checks next.
pub(crate) struct Schedule {
    threshold: Option<Duration>,
    next: Duration,
}

impl Schedule {
    /// The monitor thread's schedule for `shared`'s watchdog (none if off).
    pub(crate) fn new<P: Platform>(shared: &SystemShared<P>) -> Self {
        let threshold = shared.config.watchdog;
        Schedule { threshold, next: shared.platform.now().saturating_add(interval(threshold)) }
    }

    /// The time of the next check, if the watchdog is on.
    pub(crate) fn next(&self) -> Option<Duration> {
        self.threshold.map(|_| self.next)
    }

    /// Checks `pools` if a check is due.
    pub(crate) fn check_if_due<P: Platform>(&mut self, pools: &[Arc<Pool<P>>]) {
        let (Some(threshold), Some(shared)) = (self.threshold, pools.first().map(|pool| &pool.shared)) else {
            return;
        };
        let now = shared.platform.now();
        if now >= self.next {
            check(pools, threshold, now);
            self.next = now.saturating_add(interval(Some(threshold)));
        }
    }
}

/// A quarter of the threshold (the kernel's timer checks as often).
fn interval(threshold: Option<Duration>) -> Duration {
    threshold.map_or(Duration::MAX, |threshold| threshold / 4)
}

/// Checks every pool at `now`; reports each stalled one (to the user's
/// handler, after its pool lock is dropped) and returns the reports.
pub(crate) fn check<P: Platform>(pools: &[Arc<Pool<P>>], threshold: Duration, now: Duration) -> Vec<StallReport> {
    let mut stalls = Vec::new();
    for pool in pools {
        if let Some(stall) = check_pool(pool, threshold, now) {
            pool.shared.monitor.report(&Report::Stall(stall.clone()));
            stalls.push(stall);
        }
    }
    stalls
}

/// `pool`'s stall, if it has had items waiting and begun none for
/// `threshold` (and was not reported within `threshold`).
fn check_pool<P: Platform>(pool: &Pool<P>, threshold: Duration, now: Duration) -> Option<StallReport> {
    let guard = pool.lock();
    let pending = guard.machine.pool().worklist().len();
    let begun: u64 = guard.machine.pwq_stats().map(|(_, stats)| stats.started).sum();
    let mut watch = pool.stall.lock();
    if pending == 0 || begun != watch.begun || !watch.pending {
        // Progress, or items waiting since this check.
        watch.begun = begun;
        watch.pending = pending > 0;
        watch.since = now;
        watch.reported_at = None;
        return None;
    }
    let stalled_for = now.saturating_sub(watch.since);
    let reported_lately = watch.reported_at.is_some_and(|at| now.saturating_sub(at) < threshold);
    if stalled_for < threshold || reported_lately {
        return None;
    }
    watch.reported_at = Some(now);
    watch.stalls += 1;
    drop(watch);
    Some(describe(pool, &guard, stalled_for, pending))
}

/// The report of `pool`'s stall, from its state (pool lock held).
fn describe<P: Platform>(pool: &Pool<P>, guard: &PoolLocked<P>, stalled_for: Duration, pending: usize) -> StallReport {
    let state = guard.machine.pool();
    let name = |wq| guard.wqs.get(&wq).map(|wq| wq.name.clone()).unwrap_or_default();
    let oldest = state.worklist().front().map(|entry| (name(entry.wq()), entry.func()));
    let workers = state
        .workers()
        .iter()
        .map(|(&id, worker)| {
            let flags = worker.flags();
            let activity = if state.idle().contains(&id) {
                Activity::Idle
            } else if flags & WORKER_RESCUER != 0 {
                Activity::Rescuer
            } else if flags & WORKER_ROGUE != 0 {
                Activity::Rogue
            } else if worker.sleeping() {
                Activity::Blocking
            } else if worker.detected() {
                Activity::SeenAsleep
            } else if flags & WORKER_CPU_INTENSIVE != 0 {
                Activity::CpuIntensive
            } else if worker.current().is_some() {
                Activity::Running
            } else {
                Activity::Preparing
            };
            WorkerReport { id, activity, executing: worker.current().map(|wq| (name(wq), worker.func())) }
        })
        .collect();
    StallReport { cpu: pool.cpu, highpri: pool.highpri, stalled_for, pending, oldest, workers }
}
