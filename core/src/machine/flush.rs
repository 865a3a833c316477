//! `flush_workqueue`'s tickets as pure state (kernel `wq->work_color`,
//! `flush_color` and the flusher queues).
//!
//! # Rules
//! 24. **Ticket.** A flusher takes the next ticket `t`, which owns colour
//!     `t % NR_COLORS`; new instances get the next colour from then on
//!     (rule 22). At most `NR_COLORS - 1` tickets are outstanding, so the
//!     colour new instances get is never one still being flushed; a flusher
//!     that would need another waits for the head ticket. [Q1, Q2]
//! 25. **Head.** Tickets complete in order. The oldest outstanding ticket
//!     (the head) is the one being flushed: its colour is started on every
//!     pool-workqueue (rule 22), and when every marked pool-workqueue has
//!     emptied it (rule 20) the head is done and the next ticket becomes
//!     the head. A head whose colour is in flight nowhere is done at once,
//!     so completion cascades. [Q1]

use super::pwq::{Color, NR_COLORS};

/// The colour ticket `ticket` flushes.
pub fn color_of(ticket: u64) -> Color {
    (ticket % NR_COLORS as u64) as Color
}

/// What [`FlushTickets::take`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Ticket `ticket`: flip every pool-workqueue to `new_color`; if
    /// `is_head`, start flushing its colour now (rule 25).
    Ticket {
        /// The flusher's ticket.
        ticket: u64,
        /// The colour new instances get from now on.
        new_color: Color,
        /// The ticket is the head: start it.
        is_head: bool,
    },
    /// Every colour is taken: wait until ticket `head` is done, then retry.
    Full {
        /// The head ticket to wait for.
        head: u64,
    },
}

/// A workqueue's flush tickets. The driver keeps them under the flush mutex.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushTickets {
    /// The next ticket to hand out.
    next: u64,
    /// The oldest ticket not yet done (the head); `head == next` when no
    /// flush is in progress.
    head: u64,
}

impl FlushTickets {
    /// Rule 24: a flusher asks for a ticket.
    pub fn take(&mut self) -> Take {
        if self.next + 1 - self.head > (NR_COLORS - 1) as u64 {
            return Take::Full { head: self.head };
        }
        let ticket = self.next;
        self.next += 1;
        Take::Ticket { ticket, new_color: color_of(ticket + 1), is_head: ticket == self.head }
    }

    /// Rule 25: the head ticket is done. Returns the next head to start, if
    /// a flusher holds one.
    pub fn head_done(&mut self, ticket: u64) -> Option<u64> {
        debug_assert_eq!(self.head, ticket, "only the head's flusher may finish it");
        self.head = ticket + 1;
        (self.head != self.next).then_some(self.head)
    }

    /// The head ticket.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Flushes that hold a ticket and are not done.
    pub fn in_progress(&self) -> u64 {
        self.next - self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_flip_to_the_next_colour_and_the_first_is_the_head() {
        let mut tickets = FlushTickets::default();
        assert_eq!(tickets.take(), Take::Ticket { ticket: 0, new_color: 1, is_head: true });
        assert_eq!(tickets.take(), Take::Ticket { ticket: 1, new_color: 2, is_head: false });
        assert_eq!(tickets.in_progress(), 2);
        assert_eq!(tickets.head_done(0), Some(1), "ticket 1 is the head now: start it");
        assert_eq!(tickets.head_done(1), None);
        assert_eq!(tickets.in_progress(), 0);
    }

    #[test]
    fn at_most_fifteen_tickets_are_outstanding() {
        let mut tickets = FlushTickets::default();
        for ticket in 0..(NR_COLORS as u64 - 1) {
            assert!(matches!(tickets.take(), Take::Ticket { ticket: t, .. } if t == ticket));
        }
        assert_eq!(tickets.take(), Take::Full { head: 0 }, "a 16th would reuse a colour being flushed");
        assert_eq!(tickets.head_done(0), Some(1));
        assert!(matches!(tickets.take(), Take::Ticket { ticket: 15, new_color: 0, is_head: false }));
    }
}
