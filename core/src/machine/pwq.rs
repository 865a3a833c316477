//! A pool-workqueue as pure state (kernel `pool_workqueue`): one
//! workqueue's share of one pool.
//!
//! # Rules
//! - M19. **Insert.** A queued instance takes the current `work_color` and
//!   counts in flight for that colour. It is *active* (goes to the pool's
//!   worklist) while fewer than `max_active` instances are active, else it
//!   waits at the tail of the inactive list. (Q3)
//! - M20. **Leave.** An instance leaves when it finishes or is cancelled. It
//!   gives back its colour's in-flight count and, only if it was active,
//!   its active slot: an inactive instance never held one (the kernel's
//!   2010 bug). If its colour is the one being flushed and the count
//!   reaches zero, the flush of this pool-workqueue is complete. (Q1, Q3)
//! - M21. **Activate.** While under `max_active`, the oldest inactive instance
//!   becomes active (FIFO). Leaving and raising `max_active` activate; the
//!   driver decides whom to wake. (Q3, Q4)
//! - M22. **Flush colours.** A flush flips `work_color` to the next colour, so
//!   later instances are never waited for (Q2), then marks the colour it
//!   waits for as `flush_color` if instances of it are in flight here.
//! - M23. **Empty** means nothing in flight; the active and inactive counts
//!   must then be zero as well.
//!
//! `E` is whatever the driver queues (an item handle); the machine only
//! moves it.

use super::{seeded_in, SeededBits};
use crate::SeededBug;
use std::collections::VecDeque;

/// Number of flush colours (kernel `WORK_NR_COLORS`). At most
/// `NR_COLORS - 1` flushes can be in progress at once, so that the colour
/// new items get is never one still being flushed.
pub const NR_COLORS: usize = 16;

/// A flush colour, `0..NR_COLORS`.
pub type Color = u8;

/// A queued instance with the colour it was queued with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Colored<E> {
    /// What the driver queued.
    pub item: E,
    /// Its flush colour.
    pub color: Color,
}

/// Where [`Pwq::insert`] put an instance.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted<E> {
    /// Active: the driver appends it to the pool's worklist.
    Active(Colored<E>),
    /// Waiting on the inactive list (`max_active` reached).
    Inactive,
}

/// What [`Pwq::leave`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Left {
    /// The colour being flushed has no instance left here: the driver
    /// reports this pool-workqueue flushed.
    pub flush_complete: bool,
    /// Nothing of this workqueue is in flight here any more.
    pub now_empty: bool,
}

/// One workqueue's state on one pool. The driver keeps it under the pool
/// lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pwq<E> {
    /// How many instances may be active at once.
    max_active: usize,
    /// Active instances: on the worklist, a worker's scheduled list, or
    /// running.
    nr_active: usize,
    /// Instances waiting for `nr_active < max_active`, FIFO.
    inactive: VecDeque<Colored<E>>,
    /// Colour given to newly queued instances.
    work_color: Color,
    /// Colour being flushed here, while instances of it are in flight.
    flush_color: Option<Color>,
    /// In-flight instances (active and inactive) per colour.
    nr_in_flight: [usize; NR_COLORS],
    /// Seeded bugs for this state (0 in production).
    bugs: SeededBits,
}

impl<E> Pwq<E> {
    /// An empty pool-workqueue.
    pub fn new(max_active: usize, work_color: Color, bugs: SeededBits) -> Self {
        Pwq {
            max_active,
            nr_active: 0,
            inactive: VecDeque::new(),
            work_color,
            flush_color: None,
            nr_in_flight: [0; NR_COLORS],
            bugs,
        }
    }

    /// Rule M19: queues `item`.
    pub fn insert(&mut self, item: E) -> Inserted<E> {
        let color = self.work_color;
        self.nr_in_flight[usize::from(color)] += 1;
        let colored = Colored { item, color };
        if self.nr_active < self.max_active {
            self.nr_active += 1;
            Inserted::Active(colored)
        } else {
            self.inactive.push_back(colored);
            Inserted::Inactive
        }
    }

    /// Rule M20: an instance of `color` left; `active` says whether it held
    /// an active slot.
    pub fn leave(&mut self, color: Color, active: bool) -> Left {
        let active = active || seeded_in(self.bugs, SeededBug::CancelInactiveDecrementsActive);
        if active {
            debug_assert!(self.nr_active > 0, "nr_active underflow");
            self.nr_active = self.nr_active.saturating_sub(1);
        }
        let slot = &mut self.nr_in_flight[usize::from(color)];
        debug_assert!(*slot > 0, "nr_in_flight underflow for colour {color}");
        *slot = slot.saturating_sub(1);
        let emptied = *slot == 0;
        let skip = seeded_in(self.bugs, SeededBug::SkipFlushColorDecrement);
        let flush_complete = self.flush_color == Some(color) && emptied && !skip;
        if flush_complete {
            self.flush_color = None;
        }
        Left { flush_complete, now_empty: self.is_empty() }
    }

    /// Rule M21: the next instance to activate, if under `max_active`.
    pub fn activate_next(&mut self) -> Option<Colored<E>> {
        if self.nr_active >= self.max_active {
            return None;
        }
        let lifo = seeded_in(self.bugs, SeededBug::LifoActivation);
        let next = if lifo { self.inactive.pop_back() } else { self.inactive.pop_front() }?;
        self.nr_active += 1;
        Some(next)
    }

    /// Takes the inactive instance that `matches` off the inactive list
    /// (a cancel); the caller then reports it with [`Pwq::leave`] as not
    /// active.
    pub fn remove_inactive(&mut self, matches: impl Fn(&E) -> bool) -> Option<Colored<E>> {
        let pos = self.inactive.iter().position(|c| matches(&c.item))?;
        self.inactive.remove(pos)
    }

    /// Takes every inactive instance (seeded bug `RebindLosesInactive`
    /// only: the driver forgets them).
    pub fn take_inactive(&mut self) -> VecDeque<Colored<E>> {
        core::mem::take(&mut self.inactive)
    }

    /// Changes `max_active`; call [`Pwq::activate_next`] afterwards.
    pub fn set_max_active(&mut self, max_active: usize) {
        self.max_active = max_active;
    }

    /// Rule M22, first half: new instances get `color` from now on.
    pub fn flip_work_color(&mut self, color: Color) {
        self.work_color = color;
    }

    /// Rule M22, second half: starts flushing `color` here. Returns whether
    /// instances of it are in flight (then the flush must wait for this
    /// pool-workqueue's [`Left::flush_complete`]).
    pub fn start_flush(&mut self, color: Color) -> bool {
        debug_assert!(self.flush_color.is_none(), "two colours flushed at once on one pool");
        let waiting = self.nr_in_flight[usize::from(color)] > 0;
        if waiting {
            self.flush_color = Some(color);
        }
        waiting
    }

    /// Rule M23: nothing in flight.
    pub fn is_empty(&self) -> bool {
        let empty = self.nr_in_flight.iter().all(|&n| n == 0);
        debug_assert!(
            !empty || (self.nr_active == 0 && self.inactive.is_empty()),
            "pool-workqueue has active or inactive items but none in flight"
        );
        empty
    }

    /// Active instances.
    pub fn nr_active(&self) -> usize {
        self.nr_active
    }

    /// The current `max_active`.
    pub fn max_active(&self) -> usize {
        self.max_active
    }

    /// Instances on the inactive list.
    pub fn nr_inactive(&self) -> usize {
        self.inactive.len()
    }

    /// In-flight instances of `color`.
    pub fn in_flight(&self, color: Color) -> usize {
        self.nr_in_flight[usize::from(color)]
    }

    /// The colour new instances get.
    pub fn work_color(&self) -> Color {
        self.work_color
    }

    /// The colour being flushed here, if any.
    pub fn flush_color(&self) -> Option<Color> {
        self.flush_color
    }

    /// The inactive instances, oldest first.
    pub fn inactive(&self) -> impl Iterator<Item = &Colored<E>> {
        self.inactive.iter()
    }
}

#[cfg(test)]
#[path = "pwq_tests.rs"]
mod tests;
