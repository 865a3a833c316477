//! A rescuer's mayday list as pure state (kernel `wq->maydays`).
//!
//! # Rules
//! - M16. **Send.** A pool-workqueue asking for rescue is appended unless it
//!   is listed already (at most once, R6) or the rescuer is stopping.
//! - M17. **Take.** The rescuer takes the oldest entry.
//! - M18. **Stop.** A stopped rescuer exits only once its list is empty: each
//!   entry holds a reference to the workqueue (the kernel's `get_pwq`),
//!   and destruction answers every mayday before it completes (R5).

use super::{seeded_in, SeededBits};
use crate::SeededBug;
use std::collections::VecDeque;

/// A rescuer's list of pool-workqueues to rescue, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaydayList<T> {
    /// The entries.
    list: VecDeque<T>,
    /// The rescuer must exit once the list is empty.
    stop: bool,
    /// Seeded bugs (0 in production).
    bugs: SeededBits,
}

/// What the rescuer does next (rules M17 and M18).
#[derive(Debug, PartialEq, Eq)]
pub enum RescuerStep<T> {
    /// Rescue this entry.
    Rescue(T),
    /// Wait for a mayday.
    Wait,
    /// Exit the thread.
    Exit,
}

impl<T> MaydayList<T> {
    /// An empty list.
    pub fn new(bugs: SeededBits) -> Self {
        MaydayList { list: VecDeque::new(), stop: false, bugs }
    }

    /// Rule M16: appends `entry` unless an entry for which `same` holds is
    /// listed already or the rescuer is stopping. Returns whether it was
    /// appended (the driver then wakes the rescuer).
    pub fn send(&mut self, entry: T, same: impl Fn(&T) -> bool) -> bool {
        if self.stop {
            return false;
        }
        let duplicates_allowed = seeded_in(self.bugs, SeededBug::DuplicateMayday);
        if self.list.iter().any(same) && !duplicates_allowed {
            return false;
        }
        self.list.push_back(entry);
        true
    }

    /// Rules M17 and M18: the rescuer's next step.
    pub fn next_step(&mut self) -> RescuerStep<T> {
        if self.stop && seeded_in(self.bugs, SeededBug::RescuerExitsBeforeDraining) {
            return RescuerStep::Exit;
        }
        match self.list.pop_front() {
            Some(entry) => RescuerStep::Rescue(entry),
            None if self.stop => RescuerStep::Exit,
            None => RescuerStep::Wait,
        }
    }

    /// Rule M18: the rescuer must stop once the list is empty.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Entries on the list.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_listed_at_most_once_and_not_after_stop() {
        let mut list = MaydayList::new(0);
        assert!(list.send(1, |&x| x == 1));
        assert!(!list.send(1, |&x| x == 1), "listed already");
        assert!(list.send(2, |&x| x == 2));
        assert_eq!(list.len(), 2);
        list.stop();
        assert!(!list.send(3, |&x| x == 3), "stopping");
    }

    #[test]
    fn a_stopped_rescuer_answers_every_mayday_before_it_exits() {
        let mut list = MaydayList::new(0);
        assert_eq!(list.next_step(), RescuerStep::Wait);
        let _ = list.send(1, |&x| x == 1);
        let _ = list.send(2, |&x| x == 2);
        list.stop();
        assert_eq!(list.next_step(), RescuerStep::Rescue(1), "oldest first");
        assert_eq!(list.next_step(), RescuerStep::Rescue(2));
        assert_eq!(list.next_step(), RescuerStep::Exit);
    }
}
