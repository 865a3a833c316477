//! The blocking monitor's observations as pure transitions: the user-space
//! stand-in for the scheduler's calls into the workqueue code when a worker
//! sleeps and wakes (kernel `wq_worker_sleeping` / `wq_worker_running`),
//! for workers that block without entering a blocking section.
//!
//! The kernel learns of every sleep from the scheduler, at once. Here a
//! monitor reads the worker threads' states from outside (`/proc` on
//! Linux, an explicit event under a model checker: `Platform::probe`) and
//! reports what it saw, under the pool lock, as these steps. What it saw
//! may be out of date by then; the rules say what it may still change.
//!
//! # Rules
//! - M32. **Seen asleep.** The monitor saw worker `id` asleep, past its
//!   threshold, during run `run` (a worker's run is a stretch of running
//!   it knows of: each instance it begins, rule M9, and each return from a
//!   blocking section, rule M10, starts the next one). If the worker is
//!   still in that run and
//!   counts as running (no `NOT_RUNNING` flag, not inside a blocking
//!   section, not detected already), it is marked *detected* and stops
//!   counting as running (rule M1); if `need_more_worker` then holds, the
//!   first idle worker is woken, as rule M10 does for a blocking section.
//!   An observation of an earlier run changes nothing: the worker may be
//!   running a CPU-bound item by now, or have left the blocking section
//!   it was seen asleep in. (C1)
//! - M33. **Seen running.** A detected worker counts as running again when
//!   the monitor sees its thread run in the same run, or as soon as the
//!   worker itself steps under its pool's lock: finishing its item (rule
//!   M9) or entering or leaving a blocking section (rule M10); it runs to
//!   do so. Wakes nobody: if more than the target now run, rule M8 sends
//!   the surplus idle after its item, as after a blocking section. (C1, C4)
//! - M34. **Seen hogging.** The monitor saw worker `id` use the CPU for
//!   longer than the hog threshold during run `run` (kernel 6.5
//!   `wq_cpu_intensive_thresh_us`). If the worker is still in that run and
//!   counts as running, it is marked `CPU_INTENSIVE` for the rest of its
//!   item (rule M9 clears the flag at the item's end), stops counting as
//!   running (rule M1), and if `need_more_worker` then holds the first idle
//!   worker is woken: the items behind a CPU-bound one are not held for
//!   its whole run. The item's pool-workqueue counts it; the driver
//!   reports the first hog of each function. An observation of an earlier
//!   run changes nothing. (C1, C10)
//! - M35. **CPU time seen.** The monitor saw worker `id` use `cpu` of CPU
//!   time during run `run`: credited to the pool-workqueue of its item if
//!   it is still in that run (a record only, `stats.rs`).
//!
//! Detection only moves a worker out of the running count and back, through
//! rule M1's recount, so no interleaving of the monitor's steps with the
//! worker's own can count it out twice or leave the count low once the
//! worker has stepped (the kernel's hooks keep the same balance with a
//! flag per worker).

use super::effect::{Effect, Effects};
use super::policy;
use super::pool::{PoolState, WorkerId, WqId, WORKER_CPU_INTENSIVE};
use super::section::{Instance, PoolSection};
use super::{seeded_in, Queued};
use crate::SeededBug;
use core::time::Duration;

impl<E: Instance> PoolSection<E> {
    /// PS9 (pool lock): rule M32, the monitor saw worker `id` asleep in run
    /// `run`; false if the report is out of date or changes nothing.
    pub fn worker_seen_asleep(&mut self, id: WorkerId, run: u64, fx: &mut impl Effects) -> bool {
        let wq = self.state.workers.get(&id).and_then(|w| w.current);
        let (detected, wake) = self.state.worker_seen_asleep(id, run);
        if let Some(slot) = wq.filter(|_| detected).and_then(|wq| self.pwqs.get_mut(&wq)) {
            slot.stats.detected += 1;
            slot.stats.cm_wakeups += u64::from(wake.is_some());
        }
        if let Some(wake) = wake {
            fx.push(Effect::Wake(wake));
        }
        detected
    }

    /// PS10 (pool lock): rule M33, the monitor saw worker `id` run in `run`.
    pub fn worker_seen_running(&mut self, id: WorkerId, run: u64) -> bool {
        self.state.worker_seen_running(id, run)
    }

    /// PS11 (pool lock): rule M34, the monitor saw worker `id` hog the CPU
    /// in run `run`. The workqueue and function of the item it marked
    /// CPU-intensive, if it marked one.
    pub fn worker_seen_hogging(
        &mut self,
        id: WorkerId,
        run: u64,
        fx: &mut impl Effects,
    ) -> Option<(WqId, &'static str)> {
        let (wq, func, wake) = self.state.worker_seen_hogging(id, run)?;
        if let Some(slot) = self.pwqs.get_mut(&wq) {
            slot.stats.cpu_intensive += 1;
        }
        if let Some(wake) = wake {
            fx.push(Effect::Wake(wake));
        }
        Some((wq, func))
    }

    /// PS12 (pool lock): rule M35, the monitor saw worker `id` use `cpu` in
    /// run `run`. Whether it was credited.
    pub fn worker_used_cpu(&mut self, id: WorkerId, run: u64, cpu: Duration) -> bool {
        let wq = self.state.workers.get(&id).filter(|w| w.run == run).and_then(|w| w.current);
        let Some(slot) = wq.and_then(|wq| self.pwqs.get_mut(&wq)) else { return false };
        slot.stats.cpu_time += cpu;
        true
    }
}

impl<E: Queued> PoolState<E> {
    /// Rule M32: the monitor saw worker `id` asleep during run `run`. Returns
    /// whether it marked the worker detected, and the idle worker to wake.
    pub fn worker_seen_asleep(&mut self, id: WorkerId, run: u64) -> (bool, Option<super::pool::WorkerId>) {
        let stale_ok = seeded_in(self.bugs, SeededBug::StaleDetection);
        let Some(worker) = self.workers.get(&id) else {
            return (false, None);
        };
        if (worker.run != run && !stale_ok) || worker.current.is_none() || worker.detected {
            return (false, None);
        }
        if seeded_in(self.bugs, SeededBug::DetectWhileBlocked) && worker.sleeping {
            // The bug: a count of its own, taken off whatever the flags say
            // (a worker in a blocking section is out of the count already).
            self.update_worker(id, |w| w.detected = true);
            self.nr_running = self.nr_running.saturating_sub(1);
            return (true, None);
        }
        if !worker.counts_as_running() {
            return (false, None);
        }
        self.update_worker(id, |w| w.detected = true);
        self.detections += 1;
        let no_wake = seeded_in(self.bugs, SeededBug::NoWakeOnDetect);
        let wake = if policy::need_more_worker(self.counts()) && !no_wake { self.wake_first_idle() } else { None };
        (true, wake)
    }

    /// Rule M33: the monitor saw worker `id` running during run `run`.
    /// Returns whether it counted the worker as running again.
    pub fn worker_seen_running(&mut self, id: WorkerId, run: u64) -> bool {
        match self.workers.get(&id) {
            Some(worker) if worker.detected && worker.run == run => {
                self.update_worker(id, |w| w.detected = false);
                true
            }
            _ => false,
        }
    }

    /// Rule M34: the monitor saw worker `id` hog the CPU during run `run`.
    /// If it marked the worker: its item's workqueue and function, and the
    /// idle worker to wake.
    pub fn worker_seen_hogging(&mut self, id: WorkerId, run: u64) -> Option<(WqId, &'static str, Option<WorkerId>)> {
        let stale_ok = seeded_in(self.bugs, SeededBug::StaleHog);
        let worker = self.workers.get(&id)?;
        if (worker.run != run && !stale_ok) || !worker.counts_as_running() {
            return None;
        }
        let (wq, func) = (worker.current?, worker.func);
        self.update_worker(id, |w| w.flags |= WORKER_CPU_INTENSIVE);
        let no_wake = seeded_in(self.bugs, SeededBug::NoWakeOnHog);
        let wake = if policy::need_more_worker(self.counts()) && !no_wake { self.wake_first_idle() } else { None };
        Some((wq, func, wake))
    }

    /// Rule M33 for the worker's own steps: it runs, so whatever the monitor
    /// saw of it is over.
    pub(super) fn worker_steps(&mut self, id: WorkerId) {
        if self.workers.get(&id).is_some_and(|w| w.detected) {
            self.update_worker(id, |w| w.detected = false);
        }
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
