//! Flushing: `flush_workqueue` with flush colours, and `flush_work`.
//!
//! # Flush colours (`flush_workqueue`)
//!
//! Every queued instance carries the colour its pool-workqueue had when it
//! was queued, and each pool-workqueue counts in-flight instances per
//! colour. A flush must wait for exactly the instances queued before it:
//!
//! 1. The flusher takes a ticket `t` (FIFO among flushers) under the flush
//!    mutex. Ticket `t` owns colour `t % NR_COLORS`.
//! 2. It flips every pool-workqueue's `work_color` to the next colour, each
//!    under that pool's lock. Instances queued after the flip get the new
//!    colour, so they are never waited for: later queueing cannot livelock
//!    the flush.
//! 3. Flushes complete in ticket order. The oldest ticket (the *head*) is
//!    *started*: every pool-workqueue that still has instances of its colour
//!    is marked (`flush_color`) and counted in `to_flush`, with a bias of
//!    one held while marking so that workers cannot complete it early.
//! 4. Workers decrement a colour's count when an instance finishes or is
//!    cancelled; the one that empties a marked pool-workqueue decrements
//!    `to_flush`; the one that reaches zero signals the head's flusher.
//! 5. That flusher marks its ticket done (waking everyone whose ticket is
//!    not newer) and starts the next ticket, cascading while tickets
//!    complete at once.
//!
//! Colours are reused only after their ticket is done: at most
//! `NR_COLORS - 1` tickets are outstanding, and a flusher that would need a
//! 16th waits for the head to finish (the kernel's overflow queue).
//!
//! These are the machine's steps FW1-FW6 (`machine/flush.rs`), which also
//! name the lock each one holds. Lock order: flush mutex → pool lock →
//! signal (leaf).

use crate::blocking::{blocking_on, current_work_on};
use crate::config::seeded;
use crate::error::WaitError;
use crate::machine::flush::{flush_begin, flush_heads_done, FlushLocks, FlushSignal, FlushWait};
use crate::machine::section::PoolSection;
use crate::platform::Platform;
use crate::seeded::SeededBug;
use crate::shared::{Entry, FlushState, Work, WqShared};

/// The flush's locks as the engine keeps them, for the machine's steps.
struct EngineFlush<'a, P: Platform> {
    state: &'a FlushState<P>,
    wq: &'a WqShared<P>,
}

impl<P: Platform> FlushLocks<Entry<P>> for EngineFlush<'_, P> {
    fn each_pool(&self, mut f: impl FnMut(&mut PoolSection<Entry<P>>)) {
        for pool in &self.wq.pools {
            f(&mut pool.locked.lock().machine);
        }
    }

    fn with_signal<R>(&self, f: impl FnOnce(&mut FlushSignal) -> R) -> R {
        f(&mut self.state.signal.lock())
    }

    fn notify(&self) {
        self.state.signal_cv.notify_all();
    }
}

impl<P: Platform> FlushState<P> {
    /// `flush_workqueue`: machine steps FW1-FW3 (`flush_begin`), the wait
    /// (FW5) and, when this flusher's ticket is the complete head, FW6.
    pub(crate) fn flush(&self, wq: &WqShared<P>) {
        let locks = EngineFlush { state: self, wq };
        let ticket = loop {
            let begun = flush_begin(&mut self.tickets.lock(), wq.id, &locks);
            match begun {
                Ok(ticket) => break ticket,
                // Keep one colour free for new work.
                Err(head) => blocking_on::<P, _>(|| self.wait_done(head)),
            }
        };
        blocking_on::<P, _>(|| {
            let mut signal = self.signal.lock();
            loop {
                match signal.poll(ticket) {
                    FlushWait::Done => return,
                    FlushWait::Drive => break,
                    FlushWait::Wait => signal = self.signal_cv.wait(signal),
                }
            }
            drop(signal);
            flush_heads_done(&mut self.tickets.lock(), ticket, wq.id, &locks);
        });
    }

    /// Flushes that have taken a ticket and not finished.
    pub(crate) fn in_progress(&self) -> usize {
        self.tickets.lock().in_progress() as usize
    }

    /// Waits until `ticket` is done.
    fn wait_done(&self, ticket: u64) {
        let mut signal = self.signal.lock();
        while !signal.is_done(ticket) {
            signal = self.signal_cv.wait(signal);
        }
    }
}

/// `flush_work`: waits for the last instance of `work` queued before the
/// call (or the running one) to finish. Returns whether it waited.
pub(crate) fn flush_work<P: Platform>(work: &Work<P>) -> Result<bool, WaitError> {
    if current_work_on::<P>().is_some_and(|current| current == *work) {
        return Err(WaitError::OwnWork { operation: "flush_work" });
    }
    let target = {
        let state = work.inner.state.lock();
        let ignore_running =
            state.last_pool().is_some_and(|pool| seeded(&pool.shared.config, SeededBug::FlushWorkIgnoresRunning));
        match state.flush_target(ignore_running) {
            Some(target) => target,
            None => return Ok(false),
        }
    };
    wait_instance(work, target);
    Ok(true)
}

/// Waits (as a blocking section) until instance `target` of `work` is done.
pub(crate) fn wait_instance<P: Platform>(work: &Work<P>, target: u64) {
    blocking_on::<P, _>(|| {
        let mut state = work.inner.state.lock();
        state.add_waiter();
        while !state.instance_done(target) {
            state = work.inner.changed.wait(state);
        }
        state.remove_waiter();
    });
}
