//! The trace log (feature `trace`): the engine's transitions as
//! [`Event`]s, recorded under the lock of the critical section that makes
//! them, for `cmwq-proofs` to replay against the specification. Without
//! the feature every call here compiles to nothing; with it, nothing is
//! recorded until `System::start_trace`, and a record costs one atomic
//! load until then.

pub use crate::machine::trace::Event;
#[cfg(feature = "trace")]
use crate::platform::unseen::{Arc, AtomicBool, Mutex, MutexGuard, Ordering, PoisonError};

/// The system's log, shared by its pools.
#[cfg(feature = "trace")]
#[derive(Default)]
struct Log {
    recording: AtomicBool,
    events: Mutex<Vec<Event>>,
}

#[cfg(feature = "trace")]
impl Log {
    /// The events; a panic while pushing cannot leave them torn.
    fn events(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where a pool records its events (the system's own handle only starts
/// and takes the log). Leaf lock, invisible to model checkers (see
/// `platform::unseen`).
#[derive(Clone)]
pub(crate) struct Tracer {
    #[cfg(feature = "trace")]
    log: Arc<Log>,
    /// I: the pool's index in events; `None`: not traced (a high-priority
    /// pool).
    #[cfg(feature = "trace")]
    pool: Option<usize>,
}

impl Tracer {
    /// The system's log, not yet recording.
    pub(crate) fn new() -> Self {
        Tracer {
            #[cfg(feature = "trace")]
            log: Arc::new(Log::default()),
            #[cfg(feature = "trace")]
            pool: None,
        }
    }

    /// A pool's view of the system's log (`None`: the pool is not traced).
    #[allow(unused_variables)]
    pub(crate) fn for_pool(&self, pool: Option<usize>) -> Self {
        Tracer {
            #[cfg(feature = "trace")]
            log: self.log.clone(),
            #[cfg(feature = "trace")]
            pool,
        }
    }

    /// Records the event `event` makes of this pool's index, if recording.
    #[inline(always)]
    #[allow(unused_variables)]
    pub(crate) fn record(&self, event: impl FnOnce(usize) -> Event) {
        #[cfg(feature = "trace")]
        if let Some(pool) = self.pool {
            if self.log.recording.load(Ordering::Acquire) {
                self.log.events().push(event(pool));
            }
        }
    }

    /// Starts recording (dropping anything recorded so far).
    #[cfg(feature = "trace")]
    pub(crate) fn start(&self) {
        self.log.events().clear();
        self.log.recording.store(true, Ordering::Release);
    }

    /// The events recorded so far; recording goes on.
    #[cfg(feature = "trace")]
    pub(crate) fn take(&self) -> Vec<Event> {
        core::mem::take(&mut *self.log.events())
    }
}
