//! The machine as a whole: one pool, two pool-workqueues and a few items,
//! driven through random sequences of the transitions the driver uses
//! (queue, wake, work, finish, block, cancel, `max_active`, flush colours),
//! with no threads. After every step the machine's own consistency must
//! hold: the running count equals the workers counted as running; every
//! pending item is in exactly one list; active and in-flight counts per
//! colour match the items that carry them; `max_active` bounds activation;
//! at most one manager.

use super::pool::{PoolState, WorkerId, WorkerState, WqId, WORKER_PREP};
use super::pwq::{Colored, Inserted, Pwq, NR_COLORS};
use super::work::{Grab, Location, WorkState};
use super::worker::{Begin, WorkerStep};
use super::Queued;
use core::time::Duration;
use proptest::prelude::*;

const ITEMS: usize = 4;
const WORKERS: usize = 3;

/// A queued instance: item, workqueue, colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ent(usize, WqId, u8);

impl Queued for Ent {
    fn key(&self) -> usize {
        self.0
    }
    fn wq(&self) -> WqId {
        self.1
    }
}

struct Sim {
    pool: PoolState<Ent>,
    pwqs: [Pwq<usize>; 2],
    items: Vec<WorkState<u8, u8>>,
    /// The instance each worker executes.
    running: [Option<Ent>; WORKERS],
}

#[derive(Debug, Clone)]
enum Op {
    Queue(usize, WqId),
    Wake(WorkerId),
    Take(WorkerId),
    Finish(WorkerId),
    Block(WorkerId),
    Unblock(WorkerId),
    GoIdle(WorkerId),
    Cancel(usize),
    SetMaxActive(WqId, usize),
    FlipColor(WqId),
}

fn op() -> impl Strategy<Value = Op> {
    let item = 0..ITEMS;
    let wq = 0..2usize;
    let worker = 0..WORKERS;
    prop_oneof![
        3 => (item.clone(), wq.clone()).prop_map(|(i, w)| Op::Queue(i, w)),
        2 => worker.clone().prop_map(Op::Wake),
        3 => worker.clone().prop_map(Op::Take),
        3 => worker.clone().prop_map(Op::Finish),
        1 => worker.clone().prop_map(Op::Block),
        1 => worker.clone().prop_map(Op::Unblock),
        2 => worker.prop_map(Op::GoIdle),
        1 => item.prop_map(Op::Cancel),
        1 => (wq.clone(), 1..3usize).prop_map(|(w, n)| Op::SetMaxActive(w, n)),
        1 => wq.prop_map(Op::FlipColor),
    ]
}

impl Sim {
    fn new(bugs: super::SeededBits) -> Self {
        let mut pool = PoolState::new(bugs, 1);
        for _ in 0..WORKERS {
            let id = pool.next_id();
            pool.workers.insert(id, WorkerState::new(WORKER_PREP, Duration::ZERO, true));
            pool.nr_workers += 1;
            let _ = pool.worker_enter_idle(id, Duration::ZERO);
        }
        let items = (0..ITEMS).map(|_| WorkState::default()).collect();
        Sim { pool, pwqs: [Pwq::new(1, 0, bugs), Pwq::new(2, 0, bugs)], items, running: [None; WORKERS] }
    }

    fn working(&self, w: WorkerId) -> bool {
        self.pool.workers.get(&w).is_some_and(|s| s.flags & WORKER_PREP == 0 && !s.sleeping)
    }

    fn activate(&mut self, wq: WqId) {
        while let Some(Colored { item, color }) = self.pwqs[wq].activate_next() {
            self.pool.worklist.push_back(Ent(item, wq, color));
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Queue(item, wq) => self.queue(item, wq),
            Op::Wake(w) if self.pool.idle.contains(&w) => match self.pool.worker_decide(w) {
                WorkerStep::Idle => {
                    let _ = self.pool.worker_enter_idle(w, Duration::ZERO);
                }
                WorkerStep::Manage => {
                    self.pool.manager_leave(); // creation failed: work anyway
                    self.pool.worker_start_working(w);
                }
                WorkerStep::Work => self.pool.worker_start_working(w),
            },
            Op::Take(w) if self.working(w) && self.running[w].is_none() => {
                let next = self.pool.next_scheduled(w).or_else(|| self.pool.worker_next_item(true));
                if let Some(ent) = next {
                    if let (Begin::Run, Some(ent)) = self.pool.item_begin(w, ent, false) {
                        self.items[ent.0].start(false);
                        self.running[w] = Some(ent);
                    }
                }
            }
            Op::Finish(w) => {
                if let Some(Ent(item, wq, color)) = self.running[w].take() {
                    let _ = self.items[item].finish(false);
                    self.pool.item_end(w, item);
                    let _ = self.pwqs[wq].leave(color, true);
                    self.activate(wq);
                }
            }
            Op::Block(w) if self.working(w) => {
                let _ = self.pool.worker_sleeping(w);
            }
            Op::Unblock(w) if self.pool.workers.get(&w).is_some_and(|s| s.sleeping) => self.pool.worker_running(w),
            Op::GoIdle(w)
                if self.working(w)
                    && self.running[w].is_none()
                    && self.pool.workers.get(&w).is_some_and(|s| s.scheduled.is_empty()) =>
            {
                self.pool.worker_stop_working(w);
                let _ = self.pool.worker_enter_idle(w, Duration::ZERO);
            }
            Op::Cancel(item) => self.cancel(item),
            Op::SetMaxActive(wq, n) => {
                self.pwqs[wq].set_max_active(n);
                self.activate(wq);
                let _ = self.pool.kick();
            }
            Op::FlipColor(wq) => {
                let next = (self.pwqs[wq].work_color() + 1) % NR_COLORS as u8;
                self.pwqs[wq].flip_work_color(next);
            }
            _ => {}
        }
    }

    fn queue(&mut self, item: usize, wq: WqId) {
        if self.items[item].try_claim().is_some() {
            let _ = self.items[item].insert(0);
            if let Inserted::Active(c) = self.pwqs[wq].insert(item) {
                self.pool.worklist.push_back(Ent(item, wq, c.color));
                let _ = self.pool.kick();
            }
        }
    }

    fn cancel(&mut self, item: usize) {
        match self.items[item].grab(false) {
            Grab::Owned { .. } => {}
            Grab::Queued(pool) => {
                assert!(self.items[item].grab_queued(false, |p| *p == pool));
                let (ent, active) = self.take_entry(item).expect("a queued item is on a list");
                let _ = self.pwqs[ent.1].leave(ent.2, active);
                self.activate(ent.1);
            }
            Grab::Busy | Grab::Cancelling => return,
        }
        let _ = self.items[item].release();
    }

    fn take_entry(&mut self, item: usize) -> Option<(Ent, bool)> {
        if let Some(pos) = self.pool.worklist.iter().position(|e| e.0 == item) {
            return self.pool.worklist.remove(pos).map(|e| (e, true));
        }
        for worker in self.pool.workers.values_mut() {
            if let Some(pos) = worker.scheduled.iter().position(|e| e.0 == item) {
                return worker.scheduled.remove(pos).map(|e| (e, true));
            }
        }
        (0..2).find_map(|wq| {
            let c = self.pwqs[wq].remove_inactive(|&i| i == item)?;
            Some((Ent(c.item, wq, c.color), false))
        })
    }

    /// Every entry on a list, with whether it is active.
    fn listed(&self) -> Vec<(Ent, bool)> {
        let mut all: Vec<(Ent, bool)> = self.pool.worklist.iter().map(|&e| (e, true)).collect();
        for worker in self.pool.workers.values() {
            all.extend(worker.scheduled.iter().map(|&e| (e, true)));
        }
        for wq in 0..2 {
            all.extend(self.pwqs[wq].inactive().map(|c| (Ent(c.item, wq, c.color), false)));
        }
        all
    }

    fn check(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.pool.nr_running, self.pool.running_workers());
        prop_assert!(self.pool.nr_managers <= 1);
        let listed = self.listed();
        for item in 0..ITEMS {
            let on_lists = listed.iter().filter(|(e, _)| e.0 == item).count();
            let queued = matches!(self.items[item].location(), Location::Queued { .. });
            prop_assert_eq!(on_lists, usize::from(queued), "item {} on {} lists", item, on_lists);
        }
        let in_flight: Vec<Ent> =
            listed.iter().map(|&(e, _)| e).chain(self.running.iter().flatten().copied()).collect();
        for wq in 0..2 {
            let active = listed.iter().filter(|(e, a)| *a && e.1 == wq).count()
                + self.running.iter().flatten().filter(|e| e.1 == wq).count();
            prop_assert_eq!(self.pwqs[wq].nr_active(), active, "wq {}", wq);
            for color in 0..NR_COLORS as u8 {
                let carrying = in_flight.iter().filter(|e| e.1 == wq && e.2 == color).count();
                prop_assert_eq!(self.pwqs[wq].in_flight(color), carrying, "wq {} colour {}", wq, color);
            }
            let waiting = self.pwqs[wq].nr_inactive() > 0;
            prop_assert!(!waiting || self.pwqs[wq].nr_active() >= self.pwqs[wq].max_active());
        }
        Ok(())
    }
}

fn run(bugs: super::SeededBits, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(bugs);
    for op in ops {
        sim.apply(op);
        sim.check()?;
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_driver_sequences_keep_the_whole_machine_consistent(ops in proptest::collection::vec(op(), 1..300)) {
        run(0, ops)?;
    }
}

/// The property can fail: with a seeded bug in a rule, random sequences
/// find a broken state (only with the `seeded-bugs` feature, which the
/// workspace's test run enables through `models/`).
#[cfg(feature = "seeded-bugs")]
#[test]
fn the_whole_machine_property_catches_seeded_bugs() {
    use crate::SeededBug;
    use proptest::test_runner::{Config, TestRunner};
    for bug in [SeededBug::CancelInactiveDecrementsActive, SeededBug::DoubleCountRunning] {
        let mut runner = TestRunner::new(Config { cases: 512, failure_persistence: None, ..Config::default() });
        let outcome = runner.run(&proptest::collection::vec(op(), 1..300), |ops| run(bug.bit(), ops));
        assert!(outcome.is_err(), "{bug:?} was not caught");
    }
}
