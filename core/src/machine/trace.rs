//! What the engine records of its critical sections when asked to (feature
//! `trace`, `System::start_trace`): one [`Event`] per machine transition
//! that changes where items are or what workers do, appended while the
//! section's lock is held, so the log's order is the order the sections
//! took effect in. `cmwq-proofs` replays a log against the specification
//! (trace validation).
//!
//! Identities are the engine's: an item's key (`Work::trace_id`), a
//! workqueue's id (`Workqueue::trace_id`), a pool's index (CPU `c` is pool
//! `c`; the unbound pool comes after the CPUs; high-priority pools are not
//! traced), a worker's id within its pool.
//!
//! Every pool section that records an event first records which step it
//! is ([`Event::Step`], a [`StepId`]); each event is recorded in the
//! section of a step that makes it ([`StepId::records`]), which trace
//! validation checks.

use super::pool::{WorkerId, WqId};

/// One traced transition (fields: the identities above).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A section of pool `pool` running step `step` begins (under its lock).
    Step {
        pool: usize,
        step: StepId,
    },
    /// An instance was inserted (rule M19): active (on the worklist) or not.
    Queued {
        item: usize,
        wq: WqId,
        pool: usize,
        active: bool,
    },
    /// A queued instance was taken off its pool by a cancel (rule M28).
    Cancelled {
        item: usize,
        pool: usize,
    },
    /// A worker (or an attached rescuer) started an item it took off the
    /// worklist, or (`scheduled`) off its own scheduled list (rules M8, M9).
    Started {
        pool: usize,
        worker: WorkerId,
        item: usize,
        scheduled: bool,
    },
    /// A worker took an item another executor runs: deferred to it (rule M9).
    Deferred {
        pool: usize,
        worker: WorkerId,
        item: usize,
    },
    /// An executor entered / left a blocking section (rule M10).
    Blocked {
        pool: usize,
        worker: WorkerId,
    },
    Unblocked {
        pool: usize,
        worker: WorkerId,
    },
    /// The blocking monitor's report took effect: the worker, seen asleep
    /// outside a blocking section, is counted out (rule M32), or, seen
    /// running, counts again (rule M33). A report the machine rejected (out
    /// of date, or of a worker that does not count) records nothing.
    SeenAsleep {
        pool: usize,
        worker: WorkerId,
    },
    SeenRunning {
        pool: usize,
        worker: WorkerId,
    },
    /// The monitor's report of a CPU hog took effect: the worker, seen
    /// using the CPU past the hog threshold, is marked CPU-intensive and
    /// counted out until its item ends (rule M34). A rejected report (out
    /// of date, or of a worker that does not count) records nothing.
    SeenHogging {
        pool: usize,
        worker: WorkerId,
    },
    /// The running instance finished (rules M20, M27).
    Finished {
        pool: usize,
        worker: WorkerId,
        item: usize,
    },
    /// A worker became the manager and is creating a worker (rule M7).
    Manage {
        pool: usize,
        worker: WorkerId,
    },
    /// The manager's creation succeeded: the new worker idles (rule M11).
    Created {
        pool: usize,
        worker: WorkerId,
    },
    /// A creation failed: the manager's (`manager`), or a retry timer's;
    /// `at_limit`: refused by the pool's limit, without trying.
    CreateFailed {
        pool: usize,
        manager: bool,
        at_limit: bool,
    },
    /// The pool went on these workqueues' rescuer lists (rule M13); recorded
    /// per list, under that list's lock.
    Maydays {
        pool: usize,
        sent: Vec<WqId>,
    },
    /// A rescuer took a pool off its list (rule M17), attached to it and
    /// (as worker `worker`), and detached (rule M14).
    RescuerPop {
        wq: WqId,
        pool: usize,
    },
    RescuerAttach {
        wq: WqId,
        pool: usize,
        worker: WorkerId,
    },
    RescuerDetach {
        wq: WqId,
        pool: usize,
    },
    /// The CPU's pool was disassociated / rebound (rule M15).
    CpuDown {
        cpu: usize,
    },
    CpuUp {
        cpu: usize,
    },
    /// An idle worker was retired (rules M4, M12, M15).
    Retired {
        pool: usize,
        worker: WorkerId,
    },
}

/// The engine's pool sections that record events, by the steps they run
/// (numbered in `machine/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepId {
    /// QU5: queueing's insert.
    Queue,
    /// Cancelling's pool step (PS3).
    Cancel,
    /// WP1: a worker woke, or its thread started.
    Woken,
    /// CR2 then WP2: the manager's spawn returned.
    Managed,
    /// WP4: the item a worker ran returned.
    Finished,
    /// PS7: a blocking section begins.
    Block,
    /// PS8: it ends.
    Unblock,
    /// PS9 / PS10 / PS11: the blocking monitor reports what it saw.
    Monitor,
    /// RT1 then RT2: a rescuer attaches to a pool.
    RescuerAttach,
    /// PS5 then RT2: the item a rescuer ran returned.
    RescuerFinished,
    /// CR2 of a create-retry (TM1).
    RetryCreated,
    /// TM2: the mayday timer.
    MaydayTimer,
    /// TM3: the idle cull.
    IdleCull,
    /// HP1: the CPU goes down.
    CpuDown,
    /// HP2: the trustee looks.
    Trustee,
    /// HP3: the CPU comes back.
    CpuUp,
}

impl StepId {
    /// Whether a section of this step may record `event`: what its rules
    /// can do (a worker's pass: defer, start, manage, fail at the limit).
    pub fn records(self, event: &Event) -> bool {
        use Event as E;
        let pass = matches!(
            event,
            E::Deferred { .. }
                | E::Started { .. }
                | E::Manage { .. }
                | E::CreateFailed { manager: true, at_limit: true, .. }
        );
        let rescue =
            matches!(event, E::Deferred { .. } | E::Started { .. } | E::RescuerDetach { .. } | E::Maydays { .. });
        match self {
            StepId::Queue => matches!(event, E::Queued { .. }),
            StepId::Cancel => matches!(event, E::Cancelled { .. }),
            StepId::Woken => pass,
            StepId::Managed => pass || matches!(event, E::Created { .. } | E::CreateFailed { manager: true, .. }),
            StepId::Finished => pass || matches!(event, E::Finished { .. }),
            StepId::Block => matches!(event, E::Blocked { .. }),
            StepId::Unblock => matches!(event, E::Unblocked { .. }),
            StepId::Monitor => {
                matches!(event, E::SeenAsleep { .. } | E::SeenRunning { .. } | E::SeenHogging { .. })
            }
            StepId::RescuerAttach => rescue || matches!(event, E::RescuerAttach { .. }),
            StepId::RescuerFinished => rescue || matches!(event, E::Finished { .. }),
            StepId::RetryCreated => matches!(event, E::Created { .. } | E::CreateFailed { manager: false, .. }),
            StepId::MaydayTimer => matches!(event, E::Maydays { .. }),
            StepId::IdleCull | StepId::Trustee => matches!(event, E::Retired { .. }),
            StepId::CpuDown => matches!(event, E::CpuDown { .. }),
            StepId::CpuUp => matches!(event, E::CpuUp { .. }),
        }
    }
}

impl Event {
    /// The pool whose section recorded the event; `None` for a rescuer
    /// taking a pool off its list (under the list's lock, not a pool's).
    pub fn pool(&self) -> Option<usize> {
        match *self {
            Event::RescuerPop { .. } => None,
            Event::CpuDown { cpu } | Event::CpuUp { cpu } => Some(cpu),
            Event::Step { pool, .. }
            | Event::Queued { pool, .. }
            | Event::Cancelled { pool, .. }
            | Event::Started { pool, .. }
            | Event::Deferred { pool, .. }
            | Event::Blocked { pool, .. }
            | Event::Unblocked { pool, .. }
            | Event::SeenAsleep { pool, .. }
            | Event::SeenRunning { pool, .. }
            | Event::SeenHogging { pool, .. }
            | Event::Finished { pool, .. }
            | Event::Manage { pool, .. }
            | Event::Created { pool, .. }
            | Event::CreateFailed { pool, .. }
            | Event::Maydays { pool, .. }
            | Event::RescuerAttach { pool, .. }
            | Event::RescuerDetach { pool, .. }
            | Event::Retired { pool, .. } => Some(pool),
        }
    }
}
