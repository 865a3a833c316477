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

use super::pool::{WorkerId, WqId};

/// One traced transition (fields: the identities above).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// An instance was inserted (rule 19): active (on the worklist) or not.
    Queued {
        item: usize,
        wq: WqId,
        pool: usize,
        active: bool,
    },
    /// A queued instance was taken off its pool by a cancel (rule 28).
    Cancelled {
        item: usize,
        pool: usize,
    },
    /// A worker (or an attached rescuer) started an item it took off the
    /// worklist, or (`scheduled`) off its own scheduled list (rules 8, 9).
    Started {
        pool: usize,
        worker: WorkerId,
        item: usize,
        scheduled: bool,
    },
    /// A worker took an item another executor runs: deferred to it (rule 9).
    Deferred {
        pool: usize,
        worker: WorkerId,
        item: usize,
    },
    /// An executor entered / left a blocking section (rule 10).
    Blocked {
        pool: usize,
        worker: WorkerId,
    },
    Unblocked {
        pool: usize,
        worker: WorkerId,
    },
    /// The running instance finished (rules 20, 27).
    Finished {
        pool: usize,
        worker: WorkerId,
        item: usize,
    },
    /// A worker became the manager and is creating a worker (rule 7).
    Manage {
        pool: usize,
        worker: WorkerId,
    },
    /// The manager's creation succeeded: the new worker idles (rule 11).
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
    /// The pool went on these workqueues' rescuer lists (rule 13); recorded
    /// per list, under that list's lock.
    Maydays {
        pool: usize,
        sent: Vec<WqId>,
    },
    /// A rescuer took a pool off its list (rule 17), attached to it and
    /// (as worker `worker`), and detached (rule 14).
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
    /// The CPU's pool was disassociated / rebound (rule 15).
    CpuDown {
        cpu: usize,
    },
    CpuUp {
        cpu: usize,
    },
    /// An idle worker was retired (rules 4, 12, 15).
    Retired {
        pool: usize,
        worker: WorkerId,
    },
}
