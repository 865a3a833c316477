//! What a pool-workqueue has done, counted by the steps that do it (kernel
//! `pwq->stats`, the counters `tools/workqueue/wq_monitor.py` prints).
//!
//! Counters are a record, never an input: no rule reads them. So two
//! states that differ only in their counters are the same state to a model
//! checker or a refinement (equality and hashing ignore them), and a count
//! that only grows cannot make an explored state space infinite.

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
    /// Maydays sent to its rescuer (rule M13, TM2).
    pub mayday: u64,
    /// Instances its rescuer began (RT2).
    pub rescued: u64,
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
        self.mayday += other.mayday;
        self.rescued += other.rescued;
    }
}

#[cfg(test)]
mod tests {
    use super::PwqStats;
    use core::time::Duration;

    #[test]
    fn counters_are_not_state_and_add_up() {
        let mut a = PwqStats { completed: 3, cpu_time: Duration::from_millis(2), ..PwqStats::default() };
        let b = PwqStats { completed: 1, mayday: 2, rescued: 4, ..PwqStats::default() };
        assert_eq!(a, b, "counters never make two states differ");
        a += b;
        assert_eq!((a.completed, a.mayday, a.rescued, a.cpu_time), (4, 2, 4, Duration::from_millis(2)));
    }
}
