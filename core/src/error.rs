//! Error types. Each says what went wrong and what to do instead; errors
//! from queueing hand the work item back.

use crate::platform::SpawnError;
use core::fmt;

/// Queueing was refused; the item was not queued and is handed back.
pub enum QueueError<W> {
    /// The workqueue is draining (or being destroyed) and the caller is not
    /// one of its own work items; only chained queueing is accepted.
    Draining {
        /// The item that was not queued.
        work: W,
        /// The workqueue's name.
        workqueue: String,
    },
    /// The workqueue has been destroyed.
    Destroyed {
        /// The item that was not queued.
        work: W,
        /// The workqueue's name.
        workqueue: String,
    },
    /// `queue_on` named a CPU the system does not have.
    NoSuchCpu {
        /// The item that was not queued.
        work: W,
        /// The CPU asked for.
        cpu: usize,
        /// How many CPUs the system has.
        cpus: usize,
    },
}

impl<W> QueueError<W> {
    /// The item that was not queued.
    pub fn into_work(self) -> W {
        match self {
            QueueError::Draining { work, .. }
            | QueueError::Destroyed { work, .. }
            | QueueError::NoSuchCpu { work, .. } => work,
        }
    }
}

impl<W> QueueError<W> {
    /// The same refusal, handing back `f` of the item.
    pub(crate) fn map<V>(self, f: impl FnOnce(W) -> V) -> QueueError<V> {
        match self {
            QueueError::Draining { work, workqueue } => QueueError::Draining { work: f(work), workqueue },
            QueueError::Destroyed { work, workqueue } => QueueError::Destroyed { work: f(work), workqueue },
            QueueError::NoSuchCpu { work, cpu, cpus } => QueueError::NoSuchCpu { work: f(work), cpu, cpus },
        }
    }
}

impl<W> fmt::Debug for QueueError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<W> fmt::Display for QueueError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Draining { workqueue, .. } => write!(
                f,
                "workqueue `{workqueue}` is draining: only its own work items may queue onto it; \
                 queue after drain_workqueue returns, or from a work item of `{workqueue}`"
            ),
            QueueError::Destroyed { workqueue, .. } => {
                write!(f, "workqueue `{workqueue}` has been destroyed; queue onto a live workqueue")
            }
            QueueError::NoSuchCpu { cpu, cpus, .. } => {
                write!(f, "CPU {cpu} does not exist: this system has CPUs 0..{cpus}; pick one of those or use `queue`")
            }
        }
    }
}

impl<W> std::error::Error for QueueError<W> {}

/// A wait (flush, cancel, drain, destroy) was refused because it would wait
/// for itself forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// Called from inside the very work item it would wait for.
    OwnWork {
        /// The operation refused (`flush_work`, `cancel_sync`, ...).
        operation: &'static str,
    },
    /// Called from a work item of the workqueue it would wait for: the
    /// caller is itself one of the items being waited for.
    OwnWorkqueue {
        /// The operation refused (`flush_workqueue`, `drain_workqueue`, ...).
        operation: &'static str,
        /// The workqueue's name.
        workqueue: String,
    },
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::OwnWork { operation } => write!(
                f,
                "{operation} was called from inside the work item it waits for and would wait for \
                 itself forever; return from the item instead (a requeued item runs again afterwards)"
            ),
            WaitError::OwnWorkqueue { operation, workqueue } => write!(
                f,
                "{operation} was called from a work item of workqueue `{workqueue}` and would wait for \
                 that item itself; call it from outside `{workqueue}`, or queue the dependent work on \
                 another workqueue"
            ),
        }
    }
}

impl std::error::Error for WaitError {}

/// Building a system or workqueue, or changing its settings, failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// `max_active` above the kernel's limit.
    MaxActiveTooLarge {
        /// The value asked for.
        requested: usize,
        /// The largest accepted value.
        limit: usize,
    },
    /// An ordered workqueue runs one item at a time; `max_active` other
    /// than 1 contradicts that.
    OrderedMaxActive {
        /// The value asked for.
        requested: usize,
    },
    /// A configuration value outside its documented range.
    OutOfRange {
        /// The builder method / [`crate::Config`] field.
        field: &'static str,
        /// The value given, as text.
        value: String,
        /// What is accepted, as text.
        allowed: String,
    },
    /// A name that cannot become (part of) a thread name.
    InvalidName {
        /// The builder method / [`crate::Config`] field.
        field: &'static str,
        /// The name given (its first 40 characters).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A thread the system needs at start could not be created.
    Spawn(SpawnError),
    /// A `mem_reclaim` workqueue's rescuer thread could not be created; the
    /// workqueue was not built.
    RescuerSpawn {
        /// The workqueue's name.
        workqueue: String,
        /// Why the thread could not be created.
        source: SpawnError,
    },
    /// The workqueue needs a pool this system was built without.
    PoolDisabled {
        /// Which pools (`highpri`, `unbound`).
        pools: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MaxActiveTooLarge { requested, limit } => write!(
                f,
                "max_active {requested} is above the limit of {limit}; use a value in 1..={limit} \
                 (or 0 for the default)"
            ),
            BuildError::OrderedMaxActive { requested } => write!(
                f,
                "an ordered workqueue runs one item at a time, so max_active must be 1 (or 0), not {requested}"
            ),
            BuildError::OutOfRange { field, value, allowed } => {
                write!(f, "{field} = {value} is out of range; allowed: {allowed}")
            }
            BuildError::InvalidName { field, name, reason } => {
                write!(f, "{field} {name:?} {reason}; choose a shorter name without NUL bytes")
            }
            BuildError::Spawn(err) => write!(f, "{err}; the system was not created and nothing was leaked"),
            BuildError::RescuerSpawn { workqueue, source } => write!(
                f,
                "the rescuer of mem_reclaim workqueue {workqueue:?} could not start ({source}); \
                 the workqueue was not created and nothing was leaked"
            ),
            BuildError::PoolDisabled { pools } => write!(
                f,
                "this system was built without {pools} pools; enable them in the SystemBuilder or drop the flag"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(err) | BuildError::RescuerSpawn { source: err, .. } => Some(err),
            _ => None,
        }
    }
}
