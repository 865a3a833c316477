//! `flush_workqueue` with its colours (S10, Q1, Q2), written from the
//! kernel's account of `flush_workqueue`, not from the machine.
//!
//! Every instance carries the colour its workqueue gave it when it was
//! queued, counted in flight per (workqueue, pool, colour) until it
//! finishes or is cancelled. A flusher takes the next *ticket* `t`, which
//! owns colour `t % colors`; from then on new instances get the colour of
//! ticket `t + 1`. At most `colors - 1` tickets are outstanding, so the
//! colour new instances get is never one being flushed (Q2: later queueing
//! cannot keep a flush waiting); a flusher that would need another waits
//! until a colour is free ([`Action::FlushTicket`]). Tickets complete in
//! order: the oldest (the *head*) marks every pool where its colour is in
//! flight, and is done when the last of them empties it; the next ticket
//! then becomes the head, and one whose colour is in flight nowhere is done
//! at once (the cascade). A `flush_workqueue` returns once its ticket is
//! done. A destroy drains the same way (`model.rs` `destroy`, the kernel's
//! `drain_workqueue`): it takes a ticket, and once that is done takes
//! another while anything of the workqueue is pending or running, so its
//! tickets and colours are those of the flushes it makes.
//!
//! [`Action::FlushTicket`]: crate::spec::Action::FlushTicket

use crate::spec::{Config, State, WqFlush};
use crate::Mistake;

impl Config {
    /// A workqueue's flush state at the start: no ticket, colour 0.
    pub(crate) fn initial_flush(&self) -> WqFlush {
        let pools = self.cpus + 1;
        WqFlush {
            next: 0,
            head: 0,
            work_color: 0,
            in_flight: vec![vec![0; usize::from(self.colors)]; pools],
            marked: vec![false; pools],
        }
    }

    /// The colour ticket `ticket` owns.
    pub(crate) fn color_of(&self, ticket: u8) -> u8 {
        ticket % self.colors
    }

    /// Whether `wq` has a colour free for one more ticket.
    pub(crate) fn ticket_free(&self, s: &State, wq: usize) -> bool {
        let f = &s.flush[wq];
        let room = if self.has(Mistake::FlushColorWraps) { self.colors } else { self.colors - 1 };
        f.next - f.head < room
    }

    /// An instance of item `i` of `wq` is queued on pool `p`: it takes the
    /// workqueue's colour.
    pub(crate) fn color_insert(&self, s: &mut State, i: usize, wq: usize, p: usize) {
        let color = s.flush[wq].work_color;
        s.items[i].color = color;
        s.flush[wq].in_flight[p][usize::from(color)] += 1;
    }

    /// An instance of colour `color` of `wq` left pool `p` (finished or
    /// cancelled); the head is done if that emptied its last marked pool.
    pub(crate) fn color_leave(&self, s: &mut State, wq: usize, p: usize, color: u8) {
        let f = &mut s.flush[wq];
        let slot = &mut f.in_flight[p][usize::from(color)];
        *slot = slot.saturating_sub(if self.has(Mistake::FlushSkipsDecrement) { 0 } else { 1 });
        let emptied = *slot == 0;
        let head_color = self.color_of(f.head);
        if f.head != f.next && f.marked[p] && color == head_color && emptied {
            f.marked[p] = false;
            if !f.marked.iter().any(|&m| m) {
                self.head_done(s, wq);
            }
        }
    }

    /// A flusher of `wq` takes the next ticket: new instances get the next
    /// colour; the first outstanding ticket starts at once. Its number.
    pub(crate) fn take_ticket(&self, s: &mut State, wq: usize) -> u8 {
        let f = &mut s.flush[wq];
        let ticket = f.next;
        f.next += 1;
        if !self.has(Mistake::FlushNoFlip) {
            f.work_color = self.color_of(f.next);
        }
        if ticket == f.head {
            self.start_head(s, wq);
        }
        ticket
    }

    /// The head ticket marks the pools where its colour is in flight; with
    /// none, it is done at once.
    fn start_head(&self, s: &mut State, wq: usize) {
        let f = &mut s.flush[wq];
        let color = usize::from(self.color_of(f.head));
        for (marked, counts) in f.marked.iter_mut().zip(&f.in_flight) {
            *marked = counts[color] > 0;
        }
        if !f.marked.iter().any(|&m| m) {
            self.head_done(s, wq);
        }
    }

    /// The head is done; the next ticket, if any, becomes the head (and
    /// cascades if its colour is in flight nowhere).
    fn head_done(&self, s: &mut State, wq: usize) {
        let f = &mut s.flush[wq];
        f.head += 1;
        if f.head != f.next {
            self.start_head(s, wq);
        }
    }

    /// Whether ticket `ticket` of `wq` is done.
    pub(crate) fn ticket_done(&self, s: &State, wq: usize, ticket: u8) -> bool {
        ticket < s.flush[wq].head
            || self.has(Mistake::FlushOwnColorOnly) && {
                // The mistake: a flusher returns once its own colour is empty,
                // not in ticket order.
                let color = usize::from(self.color_of(ticket));
                s.flush[wq].in_flight.iter().all(|counts| counts[color] == 0)
            }
    }

    /// Tickets in a canonical form: a waiter's done ticket (it has not
    /// returned yet) as the one just before the head (only its being done
    /// matters), and every ticket of `wq` counted from a multiple of
    /// `colors` (only their order and colours matter). Otherwise a drain
    /// that flushes round after round (a workqueue that never empties,
    /// under a mistake) would make new states of every round.
    pub(crate) fn canonical_tickets(&self, s: &mut State, wq: usize) {
        let head = s.flush[wq].head;
        let mut low = head;
        for w in s.waiters.iter_mut().filter(|w| w.flush_wq.or(w.destroy) == Some(wq as u8)) {
            if let Some(t) = w.ticket.as_mut().filter(|t| **t < head) {
                *t = head - 1;
                low = head - 1;
            }
        }
        let base = low / self.colors * self.colors;
        if base == 0 {
            return;
        }
        s.flush[wq].next -= base;
        s.flush[wq].head -= base;
        for w in s.waiters.iter_mut().filter(|w| w.flush_wq.or(w.destroy) == Some(wq as u8)) {
            w.ticket = w.ticket.map(|t| t - base);
        }
    }

    /// Q2: no instance is given a colour an outstanding ticket flushes.
    pub(crate) fn q2_new_color_not_flushed(&self, s: &State) -> bool {
        s.flush.iter().all(|f| (f.head..f.next).all(|t| self.color_of(t) != f.work_color))
    }
}
