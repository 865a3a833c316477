//! A pool's inbox: where a queueing leaves an item for a pool whose
//! running workers will come back to the pool lock anyway, instead of
//! taking the pool lock itself.
//!
//! The inbox is *open* exactly while the pool has its concurrency target
//! of workers counted as running (`nr_running >= target`, machine
//! `PoolCounts`): then inserting an item wakes nobody (rule M2), and each
//! running worker takes the pool lock again when its item finishes or
//! blocks. Every section of the pool begins by moving what the inbox holds
//! onto the pool (the *splice*: the pool half of queueing, PS1, for each
//! item, in the order they came), so no section ever sees the pool without
//! an item that a queueing already left for it. A section that leaves the
//! pool below its target closes the inbox and splices it in the same
//! inbox critical section: after that, queueings take the pool lock and
//! kick as before. Open and closed, and what waits, live under the inbox's
//! own lock, so that "left in an open inbox" and "closed by a worker that
//! splices" cannot both miss each other.
//!
//! A queueing's item half (PENDING, the instance's number, the pool it is
//! queued on: rule M27's insert) is done under the item's lock before the
//! item enters the inbox, so the item is queued in every sense but the
//! pool's: its worklist, its pool-workqueue's counts and colours, and the
//! workqueue's `inflight`, all of which the splice does. Whatever reads
//! those (flush, cancel, destroy) does so in a section of the pool, which
//! splices first; a section that then takes an item's lock to look for it
//! on the pool (cancel) splices again under that lock, since a queueing
//! needs only the item's lock to leave it; destroy takes the inbox lock whatever the hint says,
//! after setting `dying`, which a queueing reads under the inbox lock
//! before it leaves anything.
//!
//! Lock order: pool → inbox (a splice), item → inbox (a queueing).
//! Nothing takes a pool or an item lock under the inbox lock.

use crate::platform::{AtomicUsize, Mutex, Platform};
use core::sync::atomic::Ordering;

/// What the inbox lock protects.
pub(crate) struct InboxLocked<T> {
    /// Queueings may leave items here (the pool is at its target).
    open: bool,
    /// Items left (`T`: the item and its workqueue), in queueing order.
    left: Vec<T>,
}

/// A pool's inbox (see the module documentation).
pub(crate) struct Inbox<P: Platform, T: Send> {
    locked: Mutex<P, InboxLocked<T>>,
    /// A: a hint, written under the inbox lock: bit 0 open, the rest the
    /// number of items left. Read without it by a queueing deciding whether
    /// to try the inbox, and by a section deciding whether to splice.
    hint: AtomicUsize<P>,
}

impl<P: Platform, T: Send> Inbox<P, T> {
    pub(crate) fn new() -> Self {
        Inbox { locked: Mutex::new(InboxLocked { open: false, left: Vec::new() }), hint: AtomicUsize::new(0) }
    }

    /// Whether the hint says open (a queueing then tries the inbox).
    #[inline]
    pub(crate) fn looks_open(&self) -> bool {
        self.hint.load(Ordering::Relaxed) & 1 != 0
    }

    /// How many items the hint says are left.
    #[inline]
    pub(crate) fn left_hint(&self) -> usize {
        self.hint.load(Ordering::Relaxed) >> 1
    }

    /// Whether the hint says items are left (a section then splices).
    #[inline]
    pub(crate) fn looks_nonempty(&self) -> bool {
        self.hint.load(Ordering::Acquire) > 1
    }

    /// Leaves an item if the inbox is open: `fill` runs under the inbox
    /// lock (the caller's item half of queueing) and returns the item to
    /// leave, or `None` to leave nothing (the workqueue is dying). True
    /// only if an item was left; false if closed (`fill` did not run) or
    /// if `fill` left nothing (the caller then queues by the locked path,
    /// which reports the dying workqueue).
    #[inline]
    pub(crate) fn leave(&self, fill: impl FnOnce() -> Option<T>) -> bool {
        let mut locked = self.locked.lock();
        if !locked.open {
            return false;
        }
        let Some(left) = fill() else { return false };
        locked.left.push(left);
        self.hint.store((locked.left.len() << 1) | 1, Ordering::Release);
        true
    }

    /// Closes the inbox and leaves what it holds in it (the seeded bug
    /// `InboxCloseSkipsSplice` only).
    pub(crate) fn close_keeping(&self) {
        let mut locked = self.locked.lock();
        locked.open = false;
        self.hint.store(locked.left.len() << 1, Ordering::Release);
    }

    /// Takes what was left into `into` (empty, its capacity reused), and
    /// sets the inbox open or closed (`open`; `None`: as it was).
    #[inline]
    pub(crate) fn take(&self, into: &mut Vec<T>, open: Option<bool>) {
        let mut locked = self.locked.lock();
        debug_assert!(into.is_empty(), "splicing into a list that is not empty");
        core::mem::swap(&mut locked.left, into);
        if let Some(open) = open {
            locked.open = open;
        }
        self.hint.store(usize::from(locked.open), Ordering::Release);
    }
}
