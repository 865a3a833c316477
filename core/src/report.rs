//! What the engine tells its user about trouble it sees: a work function
//! that hogs the CPU (machine rule M34) and a pool that makes no progress
//! (the stall watchdog, `watchdog.rs`), as values handed to the handler
//! set with `SystemBuilder::on_report` (by default, one line on standard
//! error, as the kernel writes to its log).

use core::fmt;
use core::time::Duration;

/// Something the engine saw go wrong; see [`crate::SystemBuilder::on_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Report {
    /// An item used the CPU past the hog threshold and was counted out as
    /// CPU-intensive (reported once per function).
    CpuHog(HogReport),
    /// A pool's waiting items made no progress for the watchdog threshold.
    Stall(StallReport),
}

/// A work function seen hogging the CPU (kernel `wq_cpu_intensive_report`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HogReport {
    /// The function ([`crate::Work::name`]).
    pub func: &'static str,
    /// The workqueue it was queued on.
    pub workqueue: String,
    /// The CPU of its pool (`None`: an unbound pool).
    pub cpu: Option<usize>,
    /// The threshold it used more CPU time than, in one stretch.
    pub threshold: Duration,
}

/// A pool that has not begun an item for `stalled_for` while items wait
/// (kernel `wq_watchdog`'s "BUG: workqueue lockup").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StallReport {
    /// The pool's CPU (`None`: an unbound pool).
    pub cpu: Option<usize>,
    /// A high-priority pool.
    pub highpri: bool,
    /// How long no item of the pool has begun while items waited.
    pub stalled_for: Duration,
    /// Items waiting on its worklist.
    pub pending: usize,
    /// The oldest of them: its workqueue and function.
    pub oldest: Option<(String, &'static str)>,
    /// What each of its workers does, read from the pool's state under its
    /// lock.
    pub workers: Vec<WorkerReport>,
}

/// One worker of a stalled pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// Its id in the pool.
    pub id: usize,
    /// What it is doing.
    pub activity: Activity,
    /// The item it executes, if any: its workqueue and function.
    pub executing: Option<(String, &'static str)>,
}

/// What a worker is doing, as its pool's state says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activity {
    /// Waiting for work.
    Idle,
    /// Between idle and an item (managing, looking for work).
    Preparing,
    /// Running an item, counted as running.
    Running,
    /// Inside a blocking section (`cmwq::blocking`).
    Blocking,
    /// Seen asleep by the blocking monitor outside a blocking section.
    SeenAsleep,
    /// Running an item counted out as CPU-intensive (its workqueue's flag,
    /// or a hog the monitor saw).
    CpuIntensive,
    /// A rescuer attached to the pool.
    Rescuer,
    /// A worker of an offline CPU's pool, no longer bound to it.
    Rogue,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::CpuHog(hog) => write!(
                f,
                "cmwq: {} (workqueue {}, {}) hogged the CPU for more than {:?}; counted out as CPU-intensive \
                 (reported once per function)",
                hog.func,
                hog.workqueue,
                PoolName(hog.cpu, false),
                hog.threshold
            ),
            Report::Stall(stall) => {
                write!(
                    f,
                    "cmwq: pool {} stalled for {:?}: {} item(s) waiting",
                    PoolName(stall.cpu, stall.highpri),
                    stall.stalled_for,
                    stall.pending
                )?;
                if let Some((wq, func)) = &stall.oldest {
                    write!(f, ", oldest {func} (workqueue {wq})")?;
                }
                for worker in &stall.workers {
                    write!(f, "; worker {} {:?}", worker.id, worker.activity)?;
                    if let Some((wq, func)) = &worker.executing {
                        write!(f, " in {func} (workqueue {wq})")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A pool as the kernel names its workers' pools: `cpu0`, `cpu0H`, `unbound`.
struct PoolName(Option<usize>, bool);

impl fmt::Display for PoolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(cpu) => write!(f, "cpu{cpu}{}", if self.1 { "H" } else { "" }),
            None => write!(f, "unbound{}", if self.1 { "H" } else { "" }),
        }
    }
}

/// Where reports go: the user's handler, or standard error.
pub(crate) type ReportFn = dyn Fn(&Report) + Send + Sync;

/// Hands `report` to `handler`, or writes it to standard error.
pub(crate) fn deliver(handler: Option<&ReportFn>, report: &Report) {
    match handler {
        Some(handler) => handler(report),
        None => eprintln!("{report}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_names_the_pool_the_oldest_item_and_each_worker() {
        let stall = Report::Stall(StallReport {
            cpu: Some(1),
            highpri: true,
            stalled_for: Duration::from_secs(30),
            pending: 2,
            oldest: Some(("events".into(), "app::flush_disk")),
            workers: vec![WorkerReport {
                id: 3,
                activity: Activity::Running,
                executing: Some(("events".into(), "app::spin")),
            }],
        });
        let line = stall.to_string();
        for part in ["pool cpu1H", "30s", "2 item(s)", "oldest app::flush_disk", "worker 3 Running in app::spin"] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
    }
}
