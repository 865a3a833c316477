//! A work item's state as pure data (kernel `work_struct->data`: the
//! PENDING bit, where the item is, and the instance bookkeeping that
//! `flush_work` and `cancel_work_sync` wait on).
//!
//! | `location`   | pending | meaning                                          |
//! |--------------|---------|--------------------------------------------------|
//! | `Off`        | no      | not queued (may be running: see `running`)       |
//! | `Owned`      | yes     | PENDING owned by a queuer or canceller in flight |
//! | `Queued`     | yes     | on a pool (worklist, a worker's scheduled list, or an inactive list) |
//! | `Delayed`    | yes     | waiting for its timer                            |
//! | `Cancelling` | yes     | owned by `cancel_sync`, which waits for the running instance |
//!
//! # Rules
//! - M26. **PENDING is a token.** Whoever turns `Off` into `Owned` must queue
//!   the item or give PENDING back; queueing a pending item adds nothing.
//!   (W1, W2)
//! - M27. **Instances.** Every insertion onto a pool is a new instance,
//!   numbered by `queued`. Execution clears PENDING *before* the function
//!   runs (so a queueing from then on, also from the function itself,
//!   yields one more execution) and records the instance as `running`;
//!   finishing records it as `finished`. (W1, W3)
//! - M28. **Grab.** A canceller takes PENDING from wherever the item is: at
//!   once from `Off` or a timer (`Delayed`); from a pool only under that
//!   pool's lock and only if it is still queued there (then the instance
//!   counts as finished); from a transient owner never: it retries, or
//!   waits for a `cancel_sync` in progress. (W6)
//! - M29. **Flush target.** `flush_work` waits for the last instance queued
//!   before it, or the running one; an idle item needs no wait. An
//!   instance is done once finished and not running. (W5)
//!
//! `Pool` and `Wq` are the driver's references to a pool and a workqueue;
//! the machine only stores and returns them.

use core::time::Duration;

/// Where a work item is (see the module table).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location<Pool, Wq> {
    /// Not queued.
    Off,
    /// PENDING held by someone in the middle of queueing or grabbing it.
    Owned,
    /// On `pool`.
    Queued {
        /// The pool whose lock protects the entry.
        pool: Pool,
    },
    /// Waiting for timer `timer` (due at `deadline`) to queue it on `wq`.
    Delayed {
        /// Timer id; a stale timer event carries another id.
        timer: u64,
        /// When the timer is due.
        deadline: Duration,
        /// Where the timer will queue it.
        wq: Wq,
        /// The CPU asked for (`None`: the timer's local choice).
        cpu: Option<usize>,
    },
    /// Owned by `cancel_sync`, which is waiting for the running instance.
    Cancelling,
}

/// The first step of a grab (rule M28).
#[derive(Debug, PartialEq, Eq)]
pub enum Grab<Pool, Wq> {
    /// PENDING is the caller's now; `was_pending` says whether it took it
    /// from a timer (the driver then drops the timer event).
    Owned {
        /// It was pending (on a timer).
        was_pending: bool,
        /// The timer to drop: (id, deadline, workqueue), if it was delayed.
        timer: Option<(u64, Duration, Wq)>,
    },
    /// Queued on this pool: lock it and call [`WorkState::grab_queued`].
    Queued(Pool),
    /// A transient owner holds PENDING: retry.
    Busy,
    /// A `cancel_sync` holds it: wait for it (or give up).
    Cancelling,
}

/// An item's state. The driver keeps it under the item's own (leaf) lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkState<Pool, Wq> {
    /// Where the item is.
    location: Location<Pool, Wq>,
    /// The pool it last ran on or was queued on (kernel: the pool id in
    /// `data`), consulted for non-reentrancy.
    last_pool: Option<Pool>,
    /// Instances inserted so far.
    queued: u64,
    /// Highest instance finished or cancelled.
    finished: u64,
    /// The instance executing now.
    running: Option<u64>,
    /// Threads waiting for a change (flushers, cancellers).
    waiters: usize,
}

impl<Pool: Clone, Wq: Clone> Default for WorkState<Pool, Wq> {
    fn default() -> Self {
        WorkState { location: Location::Off, last_pool: None, queued: 0, finished: 0, running: None, waiters: 0 }
    }
}

impl<Pool, Wq> WorkState<Pool, Wq> {
    /// Where the item is.
    #[inline]
    pub fn location(&self) -> &Location<Pool, Wq> {
        &self.location
    }

    /// The pool it last ran on or was queued on (non-reentrancy).
    #[inline]
    pub fn last_pool(&self) -> Option<&Pool> {
        self.last_pool.as_ref()
    }

    /// Instances inserted so far (rule M27).
    #[inline]
    pub fn queued(&self) -> u64 {
        self.queued
    }

    /// Highest instance finished or cancelled (rule M27).
    #[inline]
    pub fn finished(&self) -> u64 {
        self.finished
    }

    /// The instance executing now (rule M27).
    #[inline]
    pub fn running(&self) -> Option<u64> {
        self.running
    }

    /// Threads waiting for a change of the item.
    #[inline]
    pub fn waiters(&self) -> usize {
        self.waiters
    }

    /// A flusher or canceller starts waiting for a change (item lock): the
    /// transitions that change the item say from now on that it must be
    /// notified.
    pub fn add_waiter(&mut self) {
        self.waiters += 1;
    }

    /// That waiter stops waiting (item lock).
    pub fn remove_waiter(&mut self) {
        debug_assert!(self.waiters > 0, "a waiter left that never came");
        self.waiters -= 1;
    }
}

/// What [`WorkState::try_claim_for`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<Pool> {
    /// The item was pending already: left as it is.
    Pending,
    /// The caller owns PENDING now; the item last ran on `Pool`, another
    /// pool than the one asked about, where it may still run (QU4 probes).
    Elsewhere(Pool),
    /// The caller owns PENDING now and may insert the item where it asked.
    Here,
}

impl<Pool: Clone, Wq: Clone> WorkState<Pool, Wq> {
    /// Whether PENDING is set.
    pub fn is_pending(&self) -> bool {
        !matches!(self.location, Location::Off)
    }

    /// Rule M29: whether instance `target` is neither queued nor running.
    pub fn instance_done(&self, target: u64) -> bool {
        self.finished >= target && self.running.is_none_or(|r| r > target)
    }

    /// Rule M26: takes PENDING if free: `Some(last_pool)` if the caller owns
    /// the item now, `None` if it was pending.
    pub fn try_claim(&mut self) -> Option<Option<Pool>> {
        if self.is_pending() {
            return None;
        }
        self.location = Location::Owned;
        Some(self.last_pool.clone())
    }

    /// Rule M26 for a caller that holds the lock of the pool it would queue
    /// on (`here` tests a pool for being that one): takes PENDING if free
    /// and says whether the item may be inserted here at once (it last ran
    /// nowhere or here: QU4 has nothing to redirect), without cloning the
    /// last pool in that common case.
    pub fn try_claim_for(&mut self, here: impl Fn(&Pool) -> bool) -> Claim<Pool> {
        if self.is_pending() {
            return Claim::Pending;
        }
        self.location = Location::Owned;
        match &self.last_pool {
            Some(last) if !here(last) => Claim::Elsewhere(last.clone()),
            _ => Claim::Here,
        }
    }

    /// Rule M26: gives PENDING back without queueing. Returns whether
    /// waiters must be notified.
    pub fn release(&mut self) -> bool {
        debug_assert!(
            matches!(self.location, Location::Owned | Location::Cancelling),
            "releasing PENDING that this caller does not own"
        );
        self.location = Location::Off;
        self.waiters > 0
    }

    /// Rules M26-M27: the owner inserts the item on `pool`; returns the new
    /// instance's number.
    pub fn insert(&mut self, pool: Pool) -> u64 {
        debug_assert!(matches!(self.location, Location::Owned), "inserting an item whose PENDING is not owned");
        self.queued += 1;
        self.last_pool = Some(pool.clone());
        self.location = Location::Queued { pool };
        self.queued
    }

    /// Rule M27: a worker of the pool the instance is queued on starts
    /// executing it; that pool stays the last one (`insert` recorded it).
    /// `late_clear` is the seeded bug `ClearPendingAfterRun`.
    pub fn start(&mut self, late_clear: bool) {
        debug_assert!(matches!(self.location, Location::Queued { .. }), "starting an item that is not queued");
        self.location = if late_clear { Location::Owned } else { Location::Off };
        self.running = Some(self.queued);
    }

    /// Rule M27: the running instance finished. Returns whether waiters
    /// must be notified.
    pub fn finish(&mut self, late_clear: bool) -> bool {
        if let Some(instance) = self.running.take() {
            self.finished = self.finished.max(instance);
        }
        if late_clear {
            self.location = Location::Off;
        }
        self.waiters > 0
    }

    /// The owner arms timer `timer` to queue the item on `wq` at
    /// `deadline`.
    pub fn arm(&mut self, timer: u64, deadline: Duration, wq: Wq, cpu: Option<usize>) {
        debug_assert!(matches!(self.location, Location::Owned), "arming an item whose PENDING is not owned");
        self.location = Location::Delayed { timer, deadline, wq, cpu };
    }

    /// A timer fired: if the item waits for timer `timer` (any timer when
    /// `None`: `flush_delayed` firing it early), the caller owns PENDING
    /// now and gets the timer's deadline, workqueue, CPU and the last pool.
    #[allow(clippy::type_complexity)]
    pub fn fire(&mut self, timer: Option<u64>) -> Option<(u64, Duration, Wq, Option<usize>, Option<Pool>)> {
        let Location::Delayed { timer: armed, deadline, wq, cpu } = &self.location else { return None };
        if timer.is_some_and(|t| t != *armed) {
            return None; // stale
        }
        let fired = (*armed, *deadline, wq.clone(), *cpu, self.last_pool.clone());
        self.location = Location::Owned;
        Some(fired)
    }

    /// Rule M28, first step; on success the item's location becomes `Owned`
    /// or, for `cancelling`, `Cancelling`.
    pub fn grab(&mut self, cancelling: bool) -> Grab<Pool, Wq> {
        let claimed = if cancelling { Location::Cancelling } else { Location::Owned };
        match &self.location {
            Location::Off => {
                self.location = claimed;
                Grab::Owned { was_pending: false, timer: None }
            }
            Location::Owned => Grab::Busy,
            Location::Cancelling => Grab::Cancelling,
            Location::Delayed { timer, deadline, wq, .. } => {
                let timer = Some((*timer, *deadline, wq.clone()));
                self.location = claimed;
                Grab::Owned { was_pending: true, timer }
            }
            Location::Queued { pool } => Grab::Queued(pool.clone()),
        }
    }

    /// Rule M28, second step, under the lock of the pool from
    /// [`Grab::Queued`]: whether the item is still queued on a pool for
    /// which `same` holds. If so the caller owns PENDING now (it must take
    /// the entry off that pool) and the instance counts as finished.
    pub fn grab_queued(&mut self, cancelling: bool, same: impl Fn(&Pool) -> bool) -> bool {
        if !matches!(&self.location, Location::Queued { pool } if same(pool)) {
            return false;
        }
        self.location = if cancelling { Location::Cancelling } else { Location::Owned };
        self.finished = self.finished.max(self.queued);
        true
    }

    /// Rule M28: whether `cancel_sync`, holding PENDING, may return: no
    /// instance is running any more. `skip_wait` is the seeded bug
    /// `CancelSyncSkipsWait`.
    pub fn cancel_sync_may_return(&self, skip_wait: bool) -> bool {
        self.running.is_none() || skip_wait
    }

    /// Rule M29: the instance `flush_work` waits for, if any.
    /// `ignore_running` is the seeded bug `FlushWorkIgnoresRunning`.
    pub fn flush_target(&self, ignore_running: bool) -> Option<u64> {
        match (&self.location, self.running) {
            (Location::Queued { .. }, _) => Some(self.queued),
            (_, Some(running)) if !ignore_running => Some(running),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "work_tests.rs"]
mod tests;
