//! Tests of the pool-workqueue machine: one per rule, and random
//! transition sequences against a plain reference.

use super::*;
use proptest::prelude::*;
use std::collections::VecDeque;

#[test]
fn insert_is_active_until_max_active_then_fifo() {
    let mut pwq = Pwq::new(2, 0, 0);
    assert_eq!(pwq.insert('a'), Inserted::Active(Colored { item: 'a', color: 0 }));
    assert_eq!(pwq.insert('b'), Inserted::Active(Colored { item: 'b', color: 0 }));
    assert_eq!(pwq.insert('c'), Inserted::Inactive);
    assert_eq!(pwq.insert('d'), Inserted::Inactive);
    assert_eq!(pwq.activate_next(), None, "no slot free");
    assert_eq!(pwq.leave(0, true), Left { flush_complete: false, now_empty: false });
    assert_eq!(pwq.activate_next().map(|c| c.item), Some('c'), "oldest first");
    assert_eq!(pwq.activate_next(), None);
    assert_eq!(pwq.nr_active(), 2);
}

#[test]
fn cancelling_an_inactive_instance_frees_no_active_slot() {
    let mut pwq = Pwq::new(1, 0, 0);
    let _ = pwq.insert(1);
    let _ = pwq.insert(2);
    let removed = pwq.remove_inactive(|&x| x == 2).expect("inactive");
    pwq.leave(removed.color, false);
    assert_eq!(pwq.nr_active(), 1, "the running one still holds the only slot");
    assert_eq!(pwq.in_flight(0), 1);
}

#[test]
fn flush_waits_only_for_the_flushed_colour() {
    let mut pwq = Pwq::new(8, 0, 0);
    let _ = pwq.insert('a'); // colour 0
    pwq.flip_work_color(1);
    let _ = pwq.insert('b'); // colour 1: not waited for
    assert!(pwq.start_flush(0));
    assert_eq!(pwq.flush_color(), Some(0));
    assert_eq!(pwq.leave(1, true), Left { flush_complete: false, now_empty: false });
    assert_eq!(pwq.leave(0, true), Left { flush_complete: true, now_empty: true });
    assert_eq!(pwq.flush_color(), None);
    assert!(!pwq.start_flush(0), "nothing of colour 0 in flight any more");
}

#[test]
fn raising_max_active_activates_waiting_instances() {
    let mut pwq = Pwq::new(1, 0, 0);
    for i in 0..4 {
        let _ = pwq.insert(i);
    }
    pwq.set_max_active(3);
    let activated: Vec<_> = std::iter::from_fn(|| pwq.activate_next()).map(|c| c.item).collect();
    assert_eq!(activated, vec![1, 2]);
    assert_eq!(pwq.nr_inactive(), 1);
}

/// One step of a random sequence.
#[derive(Debug, Clone)]
enum Op {
    Insert,
    FinishActive(usize),
    CancelInactive(usize),
    SetMaxActive(usize),
    FlipColor,
    StartFlush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Insert),
        3 => any::<usize>().prop_map(Op::FinishActive),
        1 => any::<usize>().prop_map(Op::CancelInactive),
        1 => (1usize..5).prop_map(Op::SetMaxActive),
        1 => Just(Op::FlipColor),
        1 => Just(Op::StartFlush),
    ]
}

/// A plain reference for the pool-workqueue: which instances are active
/// and inactive, with their colours.
#[derive(Default)]
struct Reference {
    active: Vec<(u32, Color)>,
    inactive: VecDeque<(u32, Color)>,
    next: u32,
    max_active: usize,
    color: Color,
    flushing: Option<Color>,
}

impl Reference {
    fn carrying(&self, color: Color) -> usize {
        self.active.iter().chain(self.inactive.iter()).filter(|&&(_, c)| c == color).count()
    }

    fn left(&mut self, pwq: &mut Pwq<u32>, color: Color, active: bool) -> Result<(), TestCaseError> {
        let left = pwq.leave(color, active);
        prop_assert_eq!(left.flush_complete, self.flushing == Some(color) && self.carrying(color) == 0);
        if left.flush_complete {
            self.flushing = None;
        }
        while let Some(a) = pwq.activate_next() {
            let expected = self.inactive.pop_front().expect("the reference has one waiting");
            prop_assert_eq!((a.item, a.color), expected, "FIFO");
            self.active.push(expected);
        }
        Ok(())
    }

    fn apply(&mut self, pwq: &mut Pwq<u32>, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Insert => {
                let (id, color) = (self.next, self.color);
                self.next += 1;
                match pwq.insert(id) {
                    Inserted::Active(c) => {
                        prop_assert!(self.active.len() < self.max_active && c.color == color);
                        self.active.push((id, color));
                    }
                    Inserted::Inactive => self.inactive.push_back((id, color)),
                }
            }
            Op::FinishActive(i) if !self.active.is_empty() => {
                let (_, c) = self.active.remove(i % self.active.len());
                self.left(pwq, c, true)?;
            }
            Op::CancelInactive(i) if !self.inactive.is_empty() => {
                let (id, c) = self.inactive.remove(i % self.inactive.len()).expect("in range");
                prop_assert_eq!(pwq.remove_inactive(|&x| x == id).map(|r| r.color), Some(c));
                self.left(pwq, c, false)?;
            }
            Op::SetMaxActive(n) => {
                self.max_active = n;
                pwq.set_max_active(n);
                self.activate_all(pwq)?;
            }
            Op::FlipColor if self.flushing.is_none() => {
                self.color = (self.color + 1) % NR_COLORS as Color;
                pwq.flip_work_color(self.color);
            }
            Op::StartFlush if self.flushing.is_none() => {
                let old = (self.color + NR_COLORS as Color - 1) % NR_COLORS as Color;
                let waiting = pwq.start_flush(old);
                prop_assert_eq!(waiting, self.carrying(old) > 0);
                self.flushing = waiting.then_some(old);
            }
            _ => {}
        }
        Ok(())
    }

    /// Activation after a `max_active` change (nobody left).
    fn activate_all(&mut self, pwq: &mut Pwq<u32>) -> Result<(), TestCaseError> {
        while let Some(a) = pwq.activate_next() {
            let expected = self.inactive.pop_front().expect("the reference has one waiting");
            prop_assert_eq!((a.item, a.color), expected, "FIFO");
            self.active.push(expected);
        }
        Ok(())
    }

    fn check(&self, pwq: &Pwq<u32>) -> Result<(), TestCaseError> {
        prop_assert_eq!(pwq.nr_active(), self.active.len());
        prop_assert_eq!(pwq.nr_inactive(), self.inactive.len());
        prop_assert!(self.inactive.is_empty() || pwq.nr_active() >= pwq.max_active(), "waits while a slot is free");
        for c in 0..NR_COLORS as Color {
            prop_assert_eq!(pwq.in_flight(c), self.carrying(c), "colour {}", c);
        }
        prop_assert_eq!(pwq.is_empty(), self.active.is_empty() && self.inactive.is_empty());
        Ok(())
    }
}

proptest! {
    /// Random transition sequences keep the machine's own consistency
    /// against a plain reference: in-flight counts per colour equal the
    /// instances carrying that colour; activation never exceeds
    /// max_active and leaves no instance waiting while a slot is free;
    /// activation is FIFO; a flush completes exactly when the last
    /// instance of its colour leaves.
    #[test]
    fn random_sequences_keep_the_pool_workqueue_consistent(ops in proptest::collection::vec(op(), 1..200)) {
        let mut pwq = Pwq::new(2, 0, 0);
        let mut reference = Reference { max_active: 2, ..Reference::default() };
        for op in ops {
            reference.apply(&mut pwq, op)?;
            reference.check(&pwq)?;
        }
    }
}
