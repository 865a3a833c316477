//! The wakers of the async waits (`Work::flush_async` and the like): the
//! tasks waiting on one condition, kept beside the condition variable that
//! blocked threads wait on, and the wakers taken from such a list to be
//! woken once the engine's locks are released.
//!
//! # No lost wakeup
//! A waiting future checks its condition and registers its waker under the
//! lock of that condition (the item's state, the flush signal, the delayed
//! set), taking the list's own leaf lock inside it. Whoever changes the
//! condition takes the list (under the condition's lock, or after it: never
//! before the change), then wakes what it took once it holds no engine
//! lock. A registration either came before the change, and is in the list
//! taken, or after it, and saw the changed condition.
//!
//! # Waking
//! A waker is the executor's code: it runs outside every engine lock (no
//! user code under an engine lock) and is contained, so that one panicking
//! waker neither unwinds into the engine nor keeps the others asleep.
//! [`PendingWakes`] wakes on drop as well, so that wakers handed to a timer
//! event that is dropped unfired (the service stopping) are not lost.

use crate::platform::contain;
use core::task::Waker;

/// The tasks waiting on one condition, each under the slot id it got when
/// it first registered. Kept under a leaf lock of its own, taken under the
/// lock of the condition (see the module doc).
#[derive(Default)]
pub(crate) struct WakerList {
    /// The next slot id.
    next: u64,
    /// The registered wakers, by slot id.
    entries: Vec<(u64, Waker)>,
}

impl WakerList {
    /// Registers `waker` for the task holding `slot` (a fresh slot if it
    /// has none, or its entry was taken by a notification), or refreshes
    /// the waker of its entry.
    pub(crate) fn register(&mut self, slot: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *slot {
            if let Some((_, registered)) = self.entries.iter_mut().find(|(entry, _)| *entry == id) {
                if !registered.will_wake(waker) {
                    registered.clone_from(waker);
                }
                return;
            }
        }
        let id = self.next;
        self.next += 1;
        self.entries.push((id, waker.clone()));
        *slot = Some(id);
    }

    /// Removes the entry of `slot`, if still there, and clears the slot.
    /// The waker comes back, to be dropped outside the caller's locks (it
    /// may hold the last reference to the executor's task).
    #[must_use]
    pub(crate) fn remove(&mut self, slot: &mut Option<u64>) -> Option<Waker> {
        let id = slot.take()?;
        let at = self.entries.iter().position(|(entry, _)| *entry == id)?;
        Some(self.entries.swap_remove(at).1)
    }

    /// Takes every registered waker, to be woken outside the engine's locks.
    pub(crate) fn take(&mut self) -> PendingWakes {
        PendingWakes(core::mem::take(&mut self.entries).into_iter().map(|(_, waker)| waker).collect())
    }
}

/// Wakers taken from a [`WakerList`]: woken by [`PendingWakes::wake`] or,
/// if dropped, by the drop. Either must happen outside every engine lock.
#[must_use = "pending wakes are woken when dropped: drop them outside the engine's locks"]
pub(crate) struct PendingWakes(Vec<Waker>);

impl PendingWakes {
    /// No waker.
    pub(crate) fn none() -> Self {
        PendingWakes(Vec::new())
    }

    /// Whether there is nothing to wake.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `other`'s wakers.
    pub(crate) fn append(&mut self, mut other: PendingWakes) {
        self.0.append(&mut other.0);
    }

    /// Wakes each waker, containing a panic; returns the first panic's
    /// message, if any.
    pub(crate) fn wake(mut self) -> Option<String> {
        let mut first = None;
        for waker in core::mem::take(&mut self.0) {
            if let Some(message) = contain(move || waker.wake()) {
                first.get_or_insert(message);
            }
        }
        first
    }
}

impl Drop for PendingWakes {
    fn drop(&mut self) {
        for waker in core::mem::take(&mut self.0) {
            let _ = contain(move || waker.wake());
        }
    }
}
