//! What a pool-workqueue has done, counted by the steps that do it (kernel
//! `pwq->stats`, the counters `tools/workqueue/wq_monitor.py` prints; its
//! maydays and rescues are counted by the rescuer's driver).
//!
//! Counters are a record, never an input: no rule reads them. So two
//! states that differ only in their counters are the same state to a model
//! checker or a refinement (equality and hashing ignore them), and a count
//! that only grows cannot make an explored state space infinite.

use super::pool::{WorkerId, WqId};
use super::section::{Instance, PoolSection};
use core::hash::{Hash, Hasher};
use core::ops::AddAssign;
use core::time::Duration;

/// One pool-workqueue's counters (or, summed, a workqueue's).
#[derive(Clone, Copy, Debug, Default)]
pub struct PwqStats {
    /// Instances begun (rule M9): those completed and those running now.
    pub started: u64,
    /// Instances whose function returned (rule M9's end).
    pub completed: u64,
    /// CPU time its items used, as the blocking monitor sampled it (rule
    /// M35): the time of items it saw run across its passes.
    pub cpu_time: Duration,
    /// Items seen using the CPU past the hog threshold and so counted out
    /// as CPU-intensive (rule M34; a `cpu_intensive` workqueue's items are
    /// counted out from the start and not counted here).
    pub cpu_intensive: u64,
    /// Concurrency-management wakeups: an idle worker woken because one of
    /// its items blocked, in a blocking section (rule M10) or seen asleep
    /// by the monitor (rule M32).
    pub cm_wakeups: u64,
    /// Its items' workers seen asleep outside a blocking section (rule M32).
    pub detected: u64,
}

impl<E: Instance> PoolSection<E> {
    /// Each pool-workqueue's counters, with `started` filled in: those
    /// completed and those its workers execute now.
    pub fn pwq_stats(&self) -> impl Iterator<Item = (WqId, PwqStats)> + '_ {
        self.pwqs.iter().map(|(&wq, slot)| {
            let running = self.state.workers.values().filter(|w| w.current == Some(wq)).count();
            (wq, PwqStats { started: slot.stats.completed + running as u64, ..slot.stats })
        })
    }

    /// Counts a concurrency-management wakeup for worker `id`'s item.
    pub(super) fn count_cm_wakeup(&mut self, id: WorkerId) {
        let wq = self.state.workers.get(&id).and_then(|w| w.current);
        if let Some(slot) = wq.and_then(|wq| self.pwqs.get_mut(&wq)) {
            slot.stats.cm_wakeups += 1;
        }
    }
}

impl PartialEq for PwqStats {
    /// Always equal: counters are not state (see the module's docs).
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PwqStats {}

impl Hash for PwqStats {
    /// Hashes nothing: counters are not state (see the module's docs).
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl AddAssign for PwqStats {
    fn add_assign(&mut self, other: PwqStats) {
        self.started += other.started;
        self.completed += other.completed;
        self.cpu_time += other.cpu_time;
        self.cpu_intensive += other.cpu_intensive;
        self.cm_wakeups += other.cm_wakeups;
        self.detected += other.detected;
    }
}

#[cfg(test)]
mod tests {
    use super::PwqStats;
    use core::time::Duration;

    #[test]
    fn counters_are_not_state_and_add_up() {
        let mut a = PwqStats { completed: 3, cpu_time: Duration::from_millis(2), ..PwqStats::default() };
        let b = PwqStats { completed: 1, detected: 2, cm_wakeups: 4, ..PwqStats::default() };
        assert_eq!(a, b, "counters never make two states differ");
        a += b;
        assert_eq!((a.completed, a.detected, a.cm_wakeups, a.cpu_time), (4, 2, 4, Duration::from_millis(2)));
    }
}
