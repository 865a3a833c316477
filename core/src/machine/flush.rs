//! `flush_workqueue`'s tickets as pure state (kernel `wq->work_color`,
//! `flush_color` and the flusher queues).
//!
//! # Rules
//! - M24. **Ticket.** A flusher takes the next ticket `t`, which owns colour
//!   `t % colors` (an engine: `NR_COLORS`, the kernel's 16); new
//!   instances get the next colour from then on (rule M22). At most
//!   `colors - 1` tickets are outstanding, so the
//!   colour new instances get is never one still being flushed; a flusher
//!   that would need another waits for the head ticket. (Q1, Q2)
//! - M25. **Head.** Tickets complete in order. The oldest outstanding ticket
//!   (the head) is the one being flushed: its colour is started on every
//!   pool-workqueue (rule M22), and when every marked pool-workqueue has
//!   emptied it (rule M20) the head is done and the next ticket becomes
//!   the head. A head whose colour is in flight nowhere is done at once,
//!   so completion cascades. (Q1)
//!
//! # Steps (`flush_workqueue`, one flusher; locks in order)
//! FW1. Flush mutex: [`FlushTickets::take`]. `Full`: wait (signal lock,
//!     [`FlushSignal::is_done`]) for the head, then FW1 again.
//! FW2. Still under the flush mutex, each pool lock in turn:
//!     `PoolSection::flip_color` to the new colour.
//! FW3. If the ticket is the head, start it: signal lock
//!     [`FlushSignal::start`] (a bias of one), then each pool lock:
//!     `PoolSection::start_flush`, and for each marked pool-workqueue the
//!     signal lock: [`FlushSignal::marked`]; finally the signal lock:
//!     [`FlushSignal::unbias`]. True: complete at once, FW6.
//! FW4. Workers (pool lock, then the signal lock): a marked
//!     pool-workqueue emptied its colour (`Effect::FlushColorDone`):
//!     [`FlushSignal::pwq_flushed`]; true: notify the flushers.
//! FW5. The flusher waits (signal lock): [`FlushSignal::poll`]: `Done`
//!     returns, `Drive` (its head is complete) goes to FW6, `Wait` sleeps.
//! FW6. Flush mutex: [`FlushTickets::head_done`], then the signal lock:
//!     [`FlushSignal::done`] (notify); a next head is started as in FW3
//!     and, if complete at once, done as well (the cascade).

use super::pool::WqId;
use super::pwq::{Color, NR_COLORS};
use super::section::{Instance, PoolSection};

/// What [`FlushTickets::take`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Ticket `ticket`: flip every pool-workqueue to `new_color`; if
    /// `is_head`, start flushing its colour now (rule M25).
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlushTickets {
    /// The next ticket to hand out.
    next: u64,
    /// The oldest ticket not yet done (the head); `head == next` when no
    /// flush is in progress.
    head: u64,
    /// Colours in use (`NR_COLORS` in an engine; fewer lets a model
    /// checker reach the wrap-around in a few flushes).
    colors: u64,
}

impl Default for FlushTickets {
    /// The kernel's `NR_COLORS` colours.
    fn default() -> Self {
        FlushTickets::with_colors(NR_COLORS)
    }
}

impl FlushTickets {
    /// Tickets over `colors` colours, kept within `2..=NR_COLORS` (one
    /// colour for new instances, at least one to flush).
    pub fn with_colors(colors: usize) -> Self {
        FlushTickets { next: 0, head: 0, colors: colors.clamp(2, NR_COLORS) as u64 }
    }

    /// The colour ticket `ticket` flushes.
    pub fn color_of(&self, ticket: u64) -> Color {
        (ticket % self.colors) as Color
    }

    /// Colours in use.
    pub fn colors(&self) -> usize {
        self.colors as usize
    }

    /// The next ticket to hand out (tickets below it were handed out).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Rule M24: a flusher asks for a ticket.
    pub fn take(&mut self) -> Take {
        if self.next + 1 - self.head > self.colors - 1 {
            return Take::Full { head: self.head };
        }
        let ticket = self.next;
        self.next += 1;
        Take::Ticket { ticket, new_color: self.color_of(ticket + 1), is_head: ticket == self.head }
    }

    /// Rule M25: the head ticket is done. Returns the next head to start, if
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

/// The completion side of the flush (kernel `nr_pwqs_to_flush` and the
/// first flusher's completion), under the signal lock: a leaf lock, taken
/// by workers under a pool lock and by flushers under the flush mutex.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub struct FlushSignal {
    /// The ticket most recently started.
    head: u64,
    /// Marked pool-workqueues still holding the head's colour, plus one
    /// (the bias) while the head is being started, so that workers cannot
    /// complete it before every pool-workqueue was marked.
    to_flush: usize,
    /// Workers emptied every marked pool-workqueue of the head's colour.
    head_complete: bool,
    /// Every ticket below this is done.
    done_through: u64,
}

/// What a waiting flusher does next ([`FlushSignal::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushWait {
    /// Its ticket is done: return.
    Done,
    /// Its ticket is the head and complete: finish it (FW6).
    Drive,
    /// Sleep until the signal changes.
    Wait,
}

impl FlushSignal {
    /// FW3: `ticket` becomes the head being started, holding the bias.
    pub fn start(&mut self, ticket: u64) {
        self.head = ticket;
        self.head_complete = false;
        self.to_flush = 1;
    }

    /// FW3: one more pool-workqueue holds the head's colour.
    pub fn marked(&mut self) {
        self.to_flush += 1;
    }

    /// FW3, end: the starter drops the bias. True if nothing is left: the
    /// head is complete and the starter finishes it itself (FW6); no
    /// waiter is told, so exactly one flusher drives each head.
    pub fn unbias(&mut self) -> bool {
        self.leave()
    }

    /// FW4: a marked pool-workqueue emptied the head's colour. True if it
    /// was the last: the head is complete and its flusher must be woken.
    pub fn pwq_flushed(&mut self) -> bool {
        let complete = self.leave();
        self.head_complete |= complete;
        complete
    }

    fn leave(&mut self) -> bool {
        debug_assert!(self.to_flush > 0, "a flush colour emptied with nothing marked");
        self.to_flush = self.to_flush.saturating_sub(1);
        self.to_flush == 0
    }

    /// FW6: `ticket` is done; every flusher waiting for it is told.
    pub fn done(&mut self, ticket: u64) {
        self.done_through = ticket + 1;
    }

    /// Whether `ticket` is done.
    pub fn is_done(&self, ticket: u64) -> bool {
        self.done_through > ticket
    }

    /// FW5: what the flusher holding `ticket` does next.
    pub fn poll(&self, ticket: u64) -> FlushWait {
        if self.is_done(ticket) {
            FlushWait::Done
        } else if self.head == ticket && self.head_complete {
            FlushWait::Drive
        } else {
            FlushWait::Wait
        }
    }
}

/// The locks one flush takes, as its executor keeps them: each of the
/// workqueue's pools under its own lock, one at a time, and the signal
/// lock (taken under a pool lock where FW3 marks a pool-workqueue). The
/// caller holds the flush mutex and passes the tickets it protects.
pub trait FlushLocks<E: Instance> {
    /// Runs `f` on each of the workqueue's pools in turn, under its lock.
    fn each_pool(&self, f: impl FnMut(&mut PoolSection<E>));
    /// Runs `f` under the signal lock.
    fn with_signal<R>(&self, f: impl FnOnce(&mut FlushSignal) -> R) -> R;
    /// Wakes every flusher waiting on the signal.
    fn notify(&self);
}

/// FW1-FW3, and FW6 where the head completes at once (flush mutex held:
/// `tickets`). `Ok(ticket)`: wait for it (FW5). `Err(head)`: every colour
/// is taken; wait until `head` is done, then call again.
pub fn flush_begin<E: Instance>(tickets: &mut FlushTickets, wq: WqId, locks: &impl FlushLocks<E>) -> Result<u64, u64> {
    let (ticket, new_color, is_head) = match tickets.take() {
        Take::Ticket { ticket, new_color, is_head } => (ticket, new_color, is_head),
        Take::Full { head } => return Err(head),
    };
    locks.each_pool(|pool| pool.flip_color(wq, new_color));
    if is_head && flush_start(tickets.color_of(ticket), ticket, wq, locks) {
        flush_heads_done(tickets, ticket, wq, locks);
    }
    Ok(ticket)
}

/// FW6 (flush mutex held): the complete head `ticket` is done; the next
/// head is started (FW3) and, while one completes at once, done as well.
pub fn flush_heads_done<E: Instance>(tickets: &mut FlushTickets, ticket: u64, wq: WqId, locks: &impl FlushLocks<E>) {
    let mut done = ticket;
    loop {
        let next = tickets.head_done(done);
        locks.with_signal(|signal| signal.done(done));
        locks.notify();
        match next {
            Some(head) if flush_start(tickets.color_of(head), head, wq, locks) => done = head,
            _ => return,
        }
    }
}

/// FW3: starts flushing `ticket`'s colour `color`; true if nothing holds it.
fn flush_start<E: Instance>(color: Color, ticket: u64, wq: WqId, locks: &impl FlushLocks<E>) -> bool {
    locks.with_signal(|signal| signal.start(ticket));
    locks.each_pool(|pool| {
        if pool.start_flush(wq, color) {
            // Under the pool lock: a worker cannot report this colour
            // empty before it is counted.
            locks.with_signal(FlushSignal::marked);
        }
    });
    locks.with_signal(FlushSignal::unbias)
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
    fn the_last_worker_wakes_the_flusher_and_only_the_starter_drives_an_instant_completion() {
        let mut signal = FlushSignal::default();
        signal.start(0);
        signal.marked();
        signal.marked();
        assert!(!signal.unbias(), "two pool-workqueues still hold the colour");
        assert!(!signal.pwq_flushed());
        assert_eq!(signal.poll(0), FlushWait::Wait);
        assert!(signal.pwq_flushed(), "the last one completes the head");
        assert_eq!(signal.poll(0), FlushWait::Drive);
        signal.done(0);
        assert_eq!(signal.poll(0), FlushWait::Done);
        signal.start(1);
        assert!(signal.unbias(), "nothing marked: complete at once");
        assert_eq!(signal.poll(1), FlushWait::Wait, "the starter drives it; its own flusher must not as well");
        signal.done(1);
        assert!(signal.is_done(1) && !signal.is_done(2));
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

    #[test]
    fn fewer_colours_wrap_around_sooner() {
        let mut tickets = FlushTickets::with_colors(3);
        assert_eq!(tickets.take(), Take::Ticket { ticket: 0, new_color: 1, is_head: true });
        assert_eq!(tickets.take(), Take::Ticket { ticket: 1, new_color: 2, is_head: false });
        assert_eq!(tickets.take(), Take::Full { head: 0 }, "a third would give new instances colour 0, being flushed");
        assert_eq!(tickets.head_done(0), Some(1));
        assert_eq!(tickets.take(), Take::Ticket { ticket: 2, new_color: 0, is_head: false });
        assert_eq!(tickets.color_of(3), 0);
        assert_eq!(FlushTickets::with_colors(1).colors(), 2, "clamped: one colour could never flush");
        assert_eq!(FlushTickets::with_colors(99).colors(), NR_COLORS);
    }
}
