//! A workqueue's counters (kernel `wq_monitor.py`'s columns): its
//! pool-workqueues' (machine `stats.rs`, counted by the pool steps) summed
//! over its pools, and its rescuer's. Below the user-facing handles, so
//! that both a workqueue handle and the system can list them.

use crate::platform::Platform;
use crate::shared::WqShared;

/// `wq`'s counters: its pool-workqueues' (taking each pool's lock in turn)
/// and its rescuer's.
pub(crate) fn stats_of<P: Platform>(wq: &WqShared<P>) -> WorkqueueStats {
    let mut counters = crate::PwqStats::default();
    for pool in &wq.pools {
        let guard = pool.lock();
        let found = guard.machine.pwq_stats().find(|&(id, _)| id == wq.id);
        if let Some((_, stats)) = found {
            counters += stats;
        }
    }
    let (maydays, rescued, mayday_pending) =
        wq.rescuer.as_ref().map_or((0, 0, 0), |r| (r.maydays_sent(), r.rescued(), r.pending()));
    WorkqueueStats {
        started: counters.started,
        completed: counters.completed,
        cpu_time: counters.cpu_time,
        cpu_intensive: counters.cpu_intensive,
        cm_wakeups: counters.cm_wakeups,
        detected: counters.detected,
        maydays,
        rescued,
        mayday_pending,
    }
}

/// A workqueue's counters (see `Workqueue::stats`; kernel
/// `wq_monitor.py`'s columns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkqueueStats {
    /// Instances begun: completed, and running now (kernel `STARTED`).
    pub started: u64,
    /// Instances whose function returned, or panicked (kernel `COMPLETED`).
    pub completed: u64,
    /// CPU time its items used, as the monitor sampled it (kernel
    /// `CPU_TIME`, which the kernel also samples, at its tick): the time of
    /// items seen running across the monitor's passes; short items between
    /// two passes are not counted. Zero without CPU-time probes
    /// ([`crate::ThreadSample::cpu`]) or with `cpu_hog` and
    /// `detect_blocking` both off.
    pub cpu_time: core::time::Duration,
    /// Items seen hogging the CPU and counted out as CPU-intensive (kernel
    /// `CPU_INTENSIVE`; `SystemBuilder::cpu_hog`).
    pub cpu_intensive: u64,
    /// Idle workers woken because one of its items blocked, in a blocking
    /// section or seen asleep by the monitor (kernel `CM_WAKEUP`).
    pub cm_wakeups: u64,
    /// Its items' workers seen asleep outside a blocking section
    /// (`SystemBuilder::detect_blocking`).
    pub detected: u64,
    /// Times the mayday timer put one of this workqueue's pool-workqueues
    /// on its rescuer's list (kernel `MAYDAY`).
    pub maydays: usize,
    /// Items the rescuer took on (kernel `RESCUED`).
    pub rescued: usize,
    /// Pool-workqueues on the rescuer's mayday list now (each is there at
    /// most once, so never more than the pools the workqueue uses).
    pub mayday_pending: usize,
}
