//! # cmwq-proofs: the specification of Concurrency Managed Workqueues
//!
//! An abstract, executable specification of Linux's CMWQ (the semantics
//! `cmwq` implements), checked exhaustively with [stateright] on small
//! configurations for the invariants numbered in `SPEC.md`.
//!
//! - [`spec`]: configurations, states and actions;
//! - `model.rs`: when each action is enabled and what it does;
//! - [`properties`]: the invariants as properties, the stateright model,
//!   and the liveness obligation with its fairness classes;
//! - [`fair`]: the exploration (shortest counterexamples) and the
//!   fair-cycle search that checks liveness on the cyclic state graph.
//!
//! Each [`Mistake`] is a deliberate error in the spec; `tests/spec.rs`
//! shows every property failing on at least one of them.
//!
//! [stateright]: https://docs.rs/stateright

mod colors;
pub mod fair;
mod model;
pub mod properties;
pub mod refine;
pub mod replay;
pub mod spec;

pub use properties::PROPERTIES;
pub use spec::{Action, Behaviour, Config, State, WqSpec};

use fair::{Lasso, Options, StateLimitExceeded};
use std::collections::BTreeMap;

/// Deliberate mistakes in the spec, each caught by a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mistake {
    /// Queueing a pending item adds another entry (W2).
    QueuePendingAdds,
    /// `cancel` of a running, not pending item counts a cancelled instance (W1).
    CancelCountsRunning,
    /// Queueing ignores where the item runs, and a worker may start an item
    /// another worker runs (W4).
    SkipNonReentrancy,
    /// A waiter may return before its targets are done (W5, Q1).
    EarlyReturn,
    /// `cancel_sync` does not wait for the running instance (W6).
    CancelSyncNoWait,
    /// Cancelling an inactive item frees an active slot (Q3; the kernel's
    /// bug until 2010).
    CancelInactiveFreesSlot,
    /// The inactive list is activated newest first (Q4).
    LifoActivation,
    /// A worker starts items although another one runs (C4).
    IgnoreConcurrency,
    /// A worker that blocks keeps counting as running: nobody replaces it
    /// (C1, LIVE).
    BlockedCountsAsRunning,
    /// A mayday puts a pool on a list it is on already (once more) (R6).
    DuplicateMayday,
    /// The mayday timer skips pool 0: its pool-workqueues are never rescued (LIVE).
    RescuerSkipsPool,
    /// PENDING is cleared only when the function returns: a queueing during
    /// execution is refused (W3; the engine's seeded `ClearPendingAfterRun`).
    LatePendingClear,
    /// `destroy_workqueue` returns without draining (Q5, Q6).
    DestroyNoDrain,
    /// A `flush_workqueue` may hold the last colour too: new instances then
    /// get the colour the head flushes (Q2).
    FlushColorWraps,
    /// A finished instance's colour is not counted out: its flush never
    /// completes (LIVE; the engine's seeded `SkipFlushColorDecrement`).
    FlushSkipsDecrement,
    /// Taking a ticket does not move new instances to the next colour (Q2,
    /// and a later flusher returns before what it is owed: Q1).
    FlushNoFlip,
    /// A flusher returns once its own colour is empty, not in ticket order
    /// (Q1: it is owed the earlier colours too).
    FlushOwnColorOnly,
    /// A destroyed workqueue still accepts the user's queueing (Q6).
    AcceptAfterDestroy,
    /// A running instance no longer counts in its flush colour:
    /// `flush_workqueue` waits only for pending instances (Q1).
    FlushWqSkipsRunning,
    /// The rescuer leaves a pool at once, without taking an item: the
    /// pool's mayday re-arms and the rescuer comes back, forever, and the
    /// item is never rescued (R4 sees it leave its items stranded; LIVE
    /// sees the fair cycle).
    RescuerLeavesAtOnce,
    /// A pool whose CPU went down stays concurrency managed: an item waits
    /// behind its running worker (H2; the engine's seeded
    /// `OfflinePoolCountsRunning` and `TrusteeSkipsItem`).
    OfflineStaysManaged,
    /// Defer (S5) takes the item off the worklist but puts it on no
    /// worker's scheduled list: it is lost (W2: a pending item on no list).
    DeferDrops,
    /// StartScheduled runs the deferred item without recording the worker
    /// as its runner (the kernel's busy hash): a queueing of it meanwhile
    /// is taken by another worker, which runs it beside the first (W4).
    StartScheduledUnclaimed,
    /// Unblock does not count the worker running again: an item that
    /// blocked once no longer holds back the pool, and another worker
    /// starts beside it (C4).
    UnblockNotCounted,
    /// Manage skips the pool's manager arbitration and the need check: any
    /// idle worker may become the manager while items wait, also while
    /// another one manages (S6 one manager per pool).
    TwoManagers,
    /// Create ends the manager's role but adds no worker: the pool waits
    /// for a spare forever, managing and creating in a cycle (LIVE, a fair
    /// cycle).
    CreateLosesWorker,
    /// CreateFails does not mark the pool starving: its worker never works
    /// without a spare, no mayday is sent, and it manages and fails
    /// forever (LIVE, a fair cycle).
    CreateFailsNotStarving,
    /// Retire lets the last idle worker retire, although the pool then
    /// has none to take an item or to create one (S0: a deadlock).
    RetireLastIdle,
    /// RescuerAttach takes the pool off its mayday list but attaches to
    /// the unbound pool: the rescuer finds nothing there and leaves, the
    /// mayday re-arms, forever. No state is stuck (someone can always act)
    /// and no step breaks a safety property: only a fair cycle shows it
    /// (LIVE).
    RescuerAttachWrongPool,
    /// Rescue runs the item but leaves it on the pool's worklist (W2).
    RescueLeavesOnWorklist,
    /// RescueDefer hands the item to the rescuer's own scheduled list, not
    /// to the worker running it: the rescuer then runs it beside that
    /// worker (W4).
    RescueDeferToSelf,
    /// RescueScheduled runs the deferred item without recording the
    /// rescuer as its runner: a queueing of it meanwhile is taken by a
    /// worker, which runs it beside the rescuer (W4).
    RescueScheduledUnclaimed,
    /// RescueBlock: when the rescued item blocks, the rescuer leaves the
    /// pool as if it were done with it: the item never finishes (LIVE, S0).
    RescueBlockAbandons,
    /// RescueDone does not release the pool-workqueue's active slot: a
    /// later instance waits inactive with a slot free (Q3).
    RescueDoneKeepsSlot,
    /// CpuUp does not clear the pool's offline mark: the pool stays
    /// unmanaged, and a worker starts an item beside a running one (C4,
    /// judged by the CPU's real state).
    CpuUpLeavesUnmanaged,
    /// FlushWork of an item pending while it runs waits for the running
    /// instance, not the last one queued (W5, checked against the record
    /// taken at the call).
    FlushWorkWaitsForRunning,
    /// FlushTicket: a flusher that found every colour taken joins the last
    /// flush handed out instead of taking a ticket of its own, and returns
    /// before instances queued after that flush began (Q1).
    FlushTicketJoinsLast,
    /// Destroy does not mark the workqueue dying: the user's queueing is
    /// still accepted (Q6, judged by the destroy having been called).
    DestroyForgetsDying,
    /// The unbound pool is managed with target 1, as a CPU's pool: an
    /// item waits behind one running worker there although the target is
    /// more (C6, and C1).
    UnboundTargetOne,
    /// The unbound pool is not concurrency managed (the kernel's rule): a
    /// worker starts an item beside the target's worth of running ones, a
    /// worker per waiting item (C6).
    UnboundUnmanaged,
    /// Queueing ignores a `cancel_sync` in progress: the item is queued
    /// again while `cancel_sync` waits for it (W6, a state property).
    CancelSyncLetsQueue,
    /// Queueing wakes an idle worker and hands it the pool's first item at
    /// once, although another worker of the managed pool counts as running
    /// (C3; C4 sees the second runner start too).
    QueueWakesIdle,
    /// A worker the monitor saw asleep keeps counting as running: nobody
    /// replaces a worker asleep in an unannotated wait (S0 on `detect`; the
    /// engine's seeded `NoWakeOnDetect` leaves the waiting item the same
    /// way).
    DetectedCountsAsRunning,
    /// The monitor may detect a worker inside a blocking section: counted
    /// out for both at once (C10 counted out once; the engine's seeded
    /// `DetectWhileBlocked`, whose count goes low).
    DetectWhileBlocked,
    /// The monitor may see a worker run while it still sleeps in its
    /// unannotated wait: counted out and in again forever, and the item it
    /// waits for never gets a worker (LIVE on `detect`: a fair cycle
    /// `Detect`, `Undetect`; no state is stuck).
    UndetectWhileAsleep,
    /// A worker the monitor saw hogging the CPU is marked CPU-intensive but
    /// keeps counting as running: nobody replaces it, and an item that
    /// spins waiting for the item queued behind it waits forever (S0 on
    /// `hog`; the engine's seeded `NoWakeOnHog` leaves the item behind it
    /// the same way).
    HogCountsAsRunning,
}

impl Mistake {
    /// Every mistake.
    pub const ALL: [Mistake; 46] = [
        Mistake::QueuePendingAdds,
        Mistake::CancelCountsRunning,
        Mistake::SkipNonReentrancy,
        Mistake::EarlyReturn,
        Mistake::CancelSyncNoWait,
        Mistake::CancelInactiveFreesSlot,
        Mistake::LifoActivation,
        Mistake::IgnoreConcurrency,
        Mistake::BlockedCountsAsRunning,
        Mistake::DuplicateMayday,
        Mistake::RescuerSkipsPool,
        Mistake::LatePendingClear,
        Mistake::DestroyNoDrain,
        Mistake::AcceptAfterDestroy,
        Mistake::FlushWqSkipsRunning,
        Mistake::FlushColorWraps,
        Mistake::FlushSkipsDecrement,
        Mistake::FlushNoFlip,
        Mistake::FlushOwnColorOnly,
        Mistake::RescuerLeavesAtOnce,
        Mistake::OfflineStaysManaged,
        Mistake::DeferDrops,
        Mistake::StartScheduledUnclaimed,
        Mistake::UnblockNotCounted,
        Mistake::TwoManagers,
        Mistake::CreateLosesWorker,
        Mistake::CreateFailsNotStarving,
        Mistake::RetireLastIdle,
        Mistake::RescuerAttachWrongPool,
        Mistake::RescueLeavesOnWorklist,
        Mistake::RescueDeferToSelf,
        Mistake::RescueScheduledUnclaimed,
        Mistake::RescueBlockAbandons,
        Mistake::RescueDoneKeepsSlot,
        Mistake::CpuUpLeavesUnmanaged,
        Mistake::FlushWorkWaitsForRunning,
        Mistake::FlushTicketJoinsLast,
        Mistake::DestroyForgetsDying,
        Mistake::UnboundTargetOne,
        Mistake::UnboundUnmanaged,
        Mistake::CancelSyncLetsQueue,
        Mistake::QueueWakesIdle,
        Mistake::DetectedCountsAsRunning,
        Mistake::DetectWhileBlocked,
        Mistake::UndetectWhileAsleep,
        Mistake::HogCountsAsRunning,
    ];
}

/// The outcome of checking a configuration exhaustively.
#[derive(Debug)]
pub struct Report {
    /// Distinct states visited.
    pub states: usize,
    /// Transitions between them.
    pub transitions: usize,
    /// The greatest distance from the initial state.
    pub depth: usize,
    /// Failed properties, each with a counterexample: for a safety
    /// property a shortest path to a state that breaks it; for LIVE the
    /// lasso's prefix followed by one turn of its cycle.
    pub failures: BTreeMap<&'static str, Vec<Action>>,
    /// LIVE's counterexample: the shortest prefix to a fair cycle (or to a
    /// state where the spec may stop) on which work stays pending.
    pub lasso: Option<Lasso<Action>>,
    /// Components of the state graph that hold a cycle; of those with
    /// work pending, how many, and how many weak fairness rules out
    /// (`fair::Liveness`).
    pub cycles: usize,
    pub pending_cycles: (usize, usize),
}

/// The name of the liveness property in [`PROPERTIES`].
pub const LIVE: &str = PROPERTIES[9];

impl Config {
    /// Explores every reachable state (breadth first) and reports the
    /// properties that fail, with a shortest counterexample each, and LIVE
    /// checked by the fair-cycle search. States are deduplicated by their
    /// 64-bit hash (as stateright does); at most `CMWQ_PROOFS_MAX_STATES`
    /// (default 20,000,000) of them.
    pub fn check(self) -> Result<Report, StateLimitExceeded> {
        self.validate();
        let max_states = std::env::var("CMWQ_PROOFS_MAX_STATES").ok().and_then(|v| v.parse().ok());
        let options = Options { max_states: max_states.unwrap_or(Options::default().max_states), ..Options::default() };
        let graph = fair::explore(&self, options)?;
        let mut failures = BTreeMap::new();
        for (name, _, path) in graph.violations() {
            failures.insert(name, path);
        }
        let fair::Liveness { lasso, cyclic, unfair, cycles } = graph.liveness();
        if let Some(lasso) = &lasso {
            failures.insert(LIVE, lasso.prefix.iter().chain(&lasso.cycle).copied().collect());
        }
        Ok(Report {
            states: graph.states(),
            transitions: graph.transitions(),
            depth: graph.max_depth(),
            failures,
            lasso,
            cycles,
            pending_cycles: (cyclic, unfair),
        })
    }
}

impl Config {
    /// Refuses configurations outside what the spec handles: instance
    /// numbers fit its bit sets, `max_active` is literal (no "0 means the
    /// default"), and waits do not chain (a `WaitsFor` or `SleepsFor` item
    /// waits for a plain or blocking item, not itself): each waiting item's
    /// run queues one more instance, and the bit sets are sized for that.
    /// A `SleepsFor` or `SpinsFor` item's workqueue has no rescuer (the
    /// rescuer never counts as running: its wait is a `RescueBlock`, and
    /// the refinement does not run it so).
    fn validate(&self) {
        assert!(usize::from(self.queues) + self.items.len() * 4 <= 30, "too many instances for the spec's bit sets");
        assert!(self.items.len() <= spec::MAX_ITEMS, "at most {} items", spec::MAX_ITEMS);
        assert!(self.cpus < 8, "at most 7 CPUs: `State::overlap_start` has a bit per pool, the unbound one included");
        assert!(self.wqs.iter().all(|wq| wq.ordered || wq.max_active >= 1), "max_active must be at least 1");
        for (i, &(_, behaviour)) in self.items.iter().enumerate() {
            if let Some(n) = behaviour.awaited() {
                assert!(n != i && n < self.items.len(), "item {i} waits for itself or for nothing");
                assert!(self.items[n].1.awaited().is_none(), "item {i} waits for a waiting item");
            }
            if let Behaviour::SleepsFor(_) | Behaviour::SpinsFor(_) = behaviour {
                assert!(!self.wqs[self.items[i].0].mem_reclaim, "item {i} waits on a workqueue with a rescuer");
            }
        }
    }
}

/// Small configurations checked in the default test run.
pub mod configs {
    use super::*;

    fn wq(max_active: u8) -> WqSpec {
        WqSpec { unbound: false, ordered: false, mem_reclaim: false, max_active }
    }

    /// Two CPUs; a bound workqueue (`max_active` 1) with an item that
    /// blocks and a plain one; an ordered workqueue with two plain items;
    /// two workers per pool; two queueings, a cancel, a flush and CPU 0 going down
    /// and up.
    pub fn mixed() -> Config {
        Config {
            cpus: 2,
            unbound_target: None,
            wqs: vec![wq(1), WqSpec { ordered: true, ..wq(1) }],
            items: vec![(0, Behaviour::Blocks), (0, Behaviour::Plain), (1, Behaviour::Plain), (1, Behaviour::Plain)],
            max_workers: 2,
            creation_fails: false,
            mayday_at_creation_start: false,
            creation_may_hang: false,
            retire: false,
            queues: 2,
            cancels: 1,
            flushes: 1,
            hotplug: true,
            colors: 16,
            destroy: false,
            detect: false,
            hog: false,
            mistake: None,
        }
    }

    /// The rescuer chain: one CPU, item 0 blocks until item 1 (queued
    /// behind it on the same workqueue) has run, and no worker beyond the
    /// first can ever be created. With `mem_reclaim` the rescuer runs item
    /// 1; without it the chain is stuck. The workqueue may be destroyed.
    pub fn chain(mem_reclaim: bool) -> Config {
        Config {
            cpus: 1,
            unbound_target: None,
            wqs: vec![WqSpec { mem_reclaim, ..wq(2) }],
            items: vec![(0, Behaviour::WaitsFor(1)), (0, Behaviour::Plain)],
            max_workers: 2,
            creation_fails: true,
            mayday_at_creation_start: false,
            creation_may_hang: false,
            retire: false,
            queues: 1,
            cancels: 0,
            flushes: 1,
            hotplug: false,
            colors: 16,
            destroy: true,
            detect: false,
            hog: false,
            mistake: None,
        }
    }

    /// A creation that blocks (issue 23 item 5): one CPU, two `mem_reclaim`
    /// workqueues, item 0 (workqueue 0) waits for item 1 (workqueue 1),
    /// which it queues; creation would succeed but may never return (it
    /// blocks in reclaim, say, waiting for these very items), so only a
    /// rescuer can run them. With `mayday_at_creation_start` (the kernel's
    /// rule) the mayday timer runs while the manager creates, each
    /// workqueue's rescuer runs its item, and LIVE holds; with the engine's
    /// rule (armed only after a failure) the items wait forever. The
    /// dependency crosses workqueues, as the kernel's documentation asks:
    /// on one workqueue (`chain(true)` with creation hanging) its rescuer
    /// would run item 0 and nobody item 1, under either rule.
    pub fn blocked_creation(mayday_at_creation_start: bool) -> Config {
        Config {
            wqs: vec![WqSpec { mem_reclaim: true, ..wq(1) }; 2],
            items: vec![(0, Behaviour::WaitsFor(1)), (1, Behaviour::Plain)],
            creation_fails: false,
            mayday_at_creation_start,
            creation_may_hang: true,
            ..chain(true)
        }
    }

    /// Concurrency management at work: one CPU, item 0 blocks until item 1
    /// (queued behind it) has run; workers can be created, so the blocked
    /// worker is replaced and item 1 runs (C1, LIVE) without a rescuer.
    pub fn waits() -> Config {
        Config { creation_fails: false, ..chain(false) }
    }

    /// Requeueing and waiting: one CPU, one workqueue (`max_active` 2),
    /// three workers, two items queued up to four times, a blocking item, a cancel and a
    /// flush.
    pub fn requeue() -> Config {
        Config {
            cpus: 1,
            unbound_target: None,
            wqs: vec![wq(2)],
            items: vec![(0, Behaviour::Blocks), (0, Behaviour::Plain)],
            max_workers: 3,
            creation_fails: false,
            mayday_at_creation_start: false,
            creation_may_hang: false,
            retire: false,
            queues: 4,
            cancels: 1,
            flushes: 1,
            hotplug: false,
            colors: 16,
            destroy: false,
            detect: false,
            hog: false,
            mistake: None,
        }
    }

    /// An ordered workqueue: one CPU, three plain items queued once each,
    /// one of them may be cancelled (the inactive list, FIFO activation).
    pub fn ordered() -> Config {
        Config {
            cpus: 1,
            unbound_target: None,
            wqs: vec![WqSpec { ordered: true, ..wq(1) }],
            items: vec![(0, Behaviour::Plain), (0, Behaviour::Plain), (0, Behaviour::Blocks)],
            max_workers: 2,
            creation_fails: false,
            mayday_at_creation_start: false,
            creation_may_hang: false,
            retire: false,
            queues: 3,
            cancels: 1,
            flushes: 0,
            hotplug: false,
            colors: 16,
            destroy: false,
            detect: false,
            hog: false,
            mistake: None,
        }
    }

    /// `flush_workqueue`'s colours: one CPU, one workqueue (`max_active`
    /// 2), a blocking and a plain item queued up to three times, three
    /// flushes over three colours: at most two flushes hold a ticket, so
    /// the third waits for a colour and the colours wrap around.
    pub fn colors() -> Config {
        Config { queues: 3, cancels: 0, flushes: 3, colors: 3, max_workers: 2, ..requeue() }
    }

    /// Two `mem_reclaim` workqueues that wait on each other, a rescuer
    /// each: one CPU, no worker beyond the first can be created; item 0
    /// of workqueue 0 waits for item 1 of workqueue 1, and item 2 of
    /// workqueue 1 for item 3 of workqueue 0, each queued, chained, when
    /// its waiter blocks; the user queues twice. When the worker is stuck in item 0
    /// and workqueue 1's rescuer in item 2, only workqueue 0's rescuer can
    /// run item 3: with `both` false workqueue 0 has none and that run is
    /// stuck.
    pub fn rescue_chain(both: bool) -> Config {
        Config {
            wqs: vec![WqSpec { mem_reclaim: both, ..wq(2) }, WqSpec { mem_reclaim: true, ..wq(2) }],
            items: vec![
                (0, Behaviour::WaitsFor(1)),
                (1, Behaviour::Plain),
                (1, Behaviour::WaitsFor(3)),
                (0, Behaviour::Plain),
            ],
            queues: 2,
            flushes: 0,
            destroy: false,
            ..chain(true)
        }
    }

    /// Rescue while a CPU goes down: the rescuer chain on two CPUs, CPU 0
    /// going down (and up) at any point, before, during or after the
    /// rescue; the workqueue is flushed, not destroyed.
    pub fn rescue_hotplug() -> Config {
        Config { cpus: 2, hotplug: true, destroy: false, ..chain(true) }
    }

    /// An ordered `mem_reclaim` workqueue: item 0, on a plain unbound
    /// workqueue sharing the unbound pool, waits for item 1 of the ordered
    /// workqueue; no worker can be created, so the ordered workqueue's
    /// rescuer runs item 1, and item 2 (queued by the user on the ordered
    /// workqueue) still runs after it, one at a time (Q4).
    pub fn ordered_rescue() -> Config {
        Config {
            wqs: vec![WqSpec { unbound: true, ..wq(2) }, WqSpec { ordered: true, mem_reclaim: true, ..wq(1) }],
            items: vec![(0, Behaviour::WaitsFor(1)), (1, Behaviour::Plain), (1, Behaviour::Plain)],
            queues: 2,
            flushes: 0,
            destroy: false,
            ..chain(true)
        }
    }

    /// Hotplug where it can fail: two CPUs, a bound workqueue
    /// (`max_active` 2) with a blocking and a plain item, so the plain one
    /// can wait behind a running worker on CPU 0 when it goes down (the
    /// offline pool is not concurrency managed: it must then start); idle
    /// workers retire (the trustee), also while CPU 0 comes back up; the
    /// user may queue during the handoff, and flush.
    pub fn hotplug() -> Config {
        Config {
            cpus: 2,
            wqs: vec![wq(2)],
            items: vec![(0, Behaviour::Blocks), (0, Behaviour::Plain)],
            max_workers: 3,
            retire: true,
            queues: 3,
            cancels: 0,
            flushes: 1,
            hotplug: true,
            ..requeue()
        }
    }

    /// The rescuer at work on every step: the chain (creation always fails)
    /// where item 1 blocks too, so the rescuer's item blocks (RescueBlock),
    /// and the user may queue twice more: item 0 again while it runs (the
    /// rescuer defers it to its worker: RescueDefer), or item 1 while the
    /// rescuer runs it (a worker defers it to the rescuer:
    /// RescueScheduled). `max_active` 3, so a requeued item 0 leaves item
    /// 1 a slot (with 2 the chain is stuck on `max_active`, outside R1).
    pub fn rescue() -> Config {
        Config {
            wqs: vec![WqSpec { mem_reclaim: true, ..wq(3) }],
            items: vec![(0, Behaviour::WaitsFor(1)), (0, Behaviour::Blocks)],
            queues: 3,
            destroy: false,
            ..chain(true)
        }
    }

    /// C6: one CPU, the unbound pool's target 2 (more than its CPU, so
    /// that a target shows apart from "one runner" and from none at all),
    /// an unbound workqueue (`max_active` 3) with three plain items queued
    /// once each, three workers: two items run at once, the third waits
    /// for one of them (with target 1 only one runs; unmanaged, all
    /// three).
    pub fn unbound() -> Config {
        Config {
            cpus: 1,
            unbound_target: Some(2),
            wqs: vec![WqSpec { unbound: true, ..wq(3) }],
            items: vec![(0, Behaviour::Plain), (0, Behaviour::Plain), (0, Behaviour::Plain)],
            max_workers: 3,
            creation_fails: false,
            retire: false,
            queues: 3,
            cancels: 0,
            flushes: 0,
            hotplug: false,
            colors: 16,
            destroy: false,
            mayday_at_creation_start: false,
            creation_may_hang: false,
            detect: false,
            hog: false,
            mistake: None,
        }
    }

    /// Blocking seen without annotation (C10): one CPU, item 0 sleeps until
    /// item 1 (queued behind it) has started, outside any blocking section,
    /// so its worker keeps counting as running; item 1 blocks in a section
    /// once. Only the monitor's `Detect` lets a worker take item 1 (without
    /// it, `detect: false`, the pool is stuck: S0); the monitor may also see
    /// any other running worker asleep, and see it run again. The user
    /// queues twice: item 0, and item 0 or 1 again, so a worker runs
    /// another item after a detection. `max_active` 3, so a requeued item 0
    /// leaves item 1 a slot (with 2 the wait is stuck on `max_active`).
    pub fn detect() -> Config {
        Config {
            wqs: vec![wq(3)],
            items: vec![(0, Behaviour::SleepsFor(1)), (0, Behaviour::Blocks)],
            detect: true,
            queues: 2,
            flushes: 0,
            destroy: false,
            ..waits()
        }
    }

    /// `detect` on the unbound pool with a target of 2: item 1 runs beside
    /// the sleeper without a detection, so the sleeper can finish and run
    /// another item while a report of its sleep is still on its way (the
    /// refinement's monitor reports what it saw after the fact).
    pub fn detect_unbound() -> Config {
        Config { unbound_target: Some(2), wqs: vec![WqSpec { unbound: true, ..wq(3) }], max_workers: 3, ..detect() }
    }

    /// `detect` on 2 CPUs with CPU 0 going down and up at any point: a
    /// worker of the offline pool counts for nobody, so the monitor counts
    /// none of them out, and one detected before keeps its detection across
    /// the handoff.
    pub fn detect_hotplug() -> Config {
        Config { cpus: 2, hotplug: true, ..detect() }
    }

    /// CPU hogs (C11): `detect` with item 0 spinning on the CPU, not
    /// sleeping, until item 1 (queued behind it) has started. Its worker
    /// keeps counting as running and never sleeps, so only the monitor's
    /// `Hog` lets a worker take item 1 (without it, `hog: false`, the pool
    /// is stuck: S0); the monitor may also see any other running worker
    /// hog. The user queues twice, as in `detect`.
    pub fn hog() -> Config {
        Config {
            items: vec![(0, Behaviour::SpinsFor(1)), (0, Behaviour::Blocks)],
            detect: false,
            hog: true,
            ..detect()
        }
    }

    /// `hog` on the unbound pool with a target of 2: item 1 runs beside the
    /// spinner without a hog mark, so the spinner can finish and run
    /// another item while a report of its hog is still on its way.
    pub fn hog_unbound() -> Config {
        Config { unbound_target: Some(2), wqs: vec![WqSpec { unbound: true, ..wq(3) }], max_workers: 3, ..hog() }
    }

    /// Larger configurations for `CMWQ_PROOFS_DEEP=1`.
    pub fn deep() -> Vec<(&'static str, Config)> {
        vec![
            ("mixed, 3 queueings", Config { queues: 3, ..mixed() }),
            ("chain with rescuer on 2 CPUs", Config { cpus: 2, ..chain(true) }),
            ("requeue, 2 cancels, 2 flushes", Config { cancels: 2, flushes: 2, ..requeue() }),
            ("requeue with retiring workers", Config { retire: true, ..requeue() }),
            ("blocked creation on 2 CPUs, the kernel's mayday rule", Config { cpus: 2, ..blocked_creation(true) }),
            ("requeue with the monitor", Config { detect: true, ..requeue() }),
            ("detect on 2 CPUs", Config { cpus: 2, ..detect() }),
            ("hog on 2 CPUs", Config { cpus: 2, ..hog() }),
        ]
    }
}
