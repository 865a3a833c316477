//! The invariants of `SPEC.md` as properties of the spec's states, and the
//! stateright model that checks them.
//!
//! Safety properties hold in every reachable state (stateright's `always`,
//! evaluated by `fair::explore` on each state as it is discovered). LIVE is
//! not a state property: it is the fair-cycle check of `fair.rs` over the
//! whole (cyclic) state graph, with the obligation [`Fair::pending`] and
//! the fairness classes [`Class`] below. S0 is its part that one state
//! shows: where work is pending, some fair actor can act.

use crate::fair::Fair;
use crate::spec::{Action, Config, Pending, State, Worker};
use stateright::{Model, Property};

/// The property names: the safety properties of [`Config::properties`],
/// and LIVE (index 9), the fair-cycle check `Config::check` runs.
pub const PROPERTIES: [&str; 19] = [
    "S0 no deadlock: where work is pending, a worker, the manager, a timer, the rescuer or a waiter can act",
    "W1 exactly once: no instance runs twice",
    "W2 a pending item is queued once",
    "W4 non-reentrant: one worker per item",
    "W5 W6 Q1 Q5 waits return only when done",
    "Q3 max_active bounds active items, none waits for a free slot",
    "Q4 ordered: one at a time, in queueing order",
    "C1 C4 H2 work-conserving, one runner starts items",
    "R6 a pool is on a mayday list once",
    "LIVE under weak fairness every queued item runs, every wait returns",
    "W3 queueing during execution is accepted",
    "Q6 a destroyed workqueue refuses the user's queueing",
    "Q2 new instances never get a colour being flushed",
    "C6 the unbound pool is managed to its target: a waiting item gets a worker below it, none starts at it",
    "S6 at most one manager per pool",
    "W6 while cancel_sync waits, its item is not queued again nor started anew",
    "C3 queueing behind the target's running workers wakes nobody",
    "R4 a rescuer leaves a pool only where a worker can take its waiting items",
    "C10 a worker is counted out once: the monitor detects none inside a blocking section nor a CPU hog",
];

impl Model for Config {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.initial()]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.enabled(state, actions);
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut next = last.clone();
        self.apply(&mut next, action);
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(PROPERTIES[0], s0_no_deadlock),
            Property::always(PROPERTIES[1], |_, s| w1_none_doubled(s)),
            Property::always(PROPERTIES[2], |_, s| w2_queued_once(s)),
            Property::always(PROPERTIES[3], |_, s| w4_one_worker_per_item(s)),
            Property::always(PROPERTIES[4], |_, s: &State| s.early_returns == 0),
            Property::always(PROPERTIES[5], q3_max_active),
            Property::always(PROPERTIES[6], q4_ordered),
            Property::always(PROPERTIES[7], c1_c4_work_conserving),
            Property::always(PROPERTIES[8], |_, s| r6_listed_once(s)),
            Property::always(PROPERTIES[10], |_, s: &State| s.refused_while_running == 0),
            Property::always(PROPERTIES[11], |_, s: &State| s.accepted_after_destroy == 0),
            Property::always(PROPERTIES[12], |c: &Config, s| c.q2_new_color_not_flushed(s)),
            Property::always(PROPERTIES[13], c6_unbound_managed_to_target),
            Property::always(PROPERTIES[14], |_, s| s6_one_manager(s)),
            Property::always(PROPERTIES[15], |_, s| w6_cancel_sync_holds(s)),
            Property::always(PROPERTIES[16], |_, s: &State| !s.woke_behind_runner),
            Property::always(PROPERTIES[17], |_, s: &State| !s.rescuer_stranded),
            Property::always(PROPERTIES[18], |_, s| c10_counted_out_once(s)),
        ]
    }
}

/// W1: every start consumes a distinct queued instance.
fn w1_none_doubled(s: &State) -> bool {
    s.items.iter().all(|it| it.started + it.cancelled <= it.queued)
}

/// W2: a pending item is on exactly one list; one not pending on none.
fn w2_queued_once(s: &State) -> bool {
    s.items.iter().enumerate().all(|(i, it)| {
        let is = |x: &&u8| usize::from(**x) == i;
        let on_worklists = s.pools.iter().flat_map(|p| &p.worklist).filter(is).count();
        let deferred = s.pools.iter().flat_map(|p| p.scheduled.iter().flatten()).filter(is).count();
        let to_rescuers = s.rescuers.iter().flatten().flat_map(|r| &r.scheduled).filter(is).count();
        let inactive = s.inactive.iter().flatten().flatten().filter(is).count();
        let listed = on_worklists + deferred + to_rescuers + inactive;
        if it.pending == Pending::No {
            listed == 0
        } else {
            listed == 1
        }
    })
}

/// W4 (and R3, H3): no two executors (workers or rescuers) run one item.
fn w4_one_worker_per_item(s: &State) -> bool {
    (0..s.items.len()).all(|i| {
        let workers = s
            .pools
            .iter()
            .flat_map(|p| &p.workers)
            .filter(|w| matches!(w, Worker::Running { item, .. } if usize::from(*item) == i))
            .count();
        let rescuers = s.rescuers.iter().flatten().filter(|r| r.item.is_some_and(|x| usize::from(x) == i)).count();
        workers + rescuers <= 1
    })
}

/// Q3: active instances (waiting on the worklist or running) of a
/// workqueue on a pool never exceed `max_active`, and an instance waits on
/// the inactive list only while the slots are full.
fn q3_max_active(c: &Config, s: &State) -> bool {
    (0..c.wqs.len()).all(|wq| {
        (0..s.pools.len()).all(|p| {
            let of_wq = |i: &u8| c.items[usize::from(*i)].0 == wq;
            let waiting = s.pools[p].worklist.iter().filter(|i| of_wq(i)).count();
            let deferred = s.pools[p].scheduled.iter().flatten().filter(|i| of_wq(i)).count();
            let rescuer = s.rescuers.iter().flatten().filter(|r| usize::from(r.pool) == p);
            let deferred = deferred + rescuer.flat_map(|r| &r.scheduled).filter(|i| of_wq(i)).count();
            let running = s
                .items
                .iter()
                .enumerate()
                .filter(|(i, it)| c.items[*i].0 == wq && it.running.is_some_and(|(q, _)| usize::from(q) == p))
                .count();
            let active = waiting + deferred + running;
            let max = usize::from(c.max_active(wq));
            active <= max && (s.inactive[wq][p].is_empty() || active >= max)
        })
    })
}

/// Q4 (and H4): an ordered workqueue runs one item at a time, and starts
/// them in the order they were queued.
fn q4_ordered(c: &Config, s: &State) -> bool {
    (0..c.wqs.len()).filter(|&wq| c.wqs[wq].ordered).all(|wq| {
        let running = s.items.iter().enumerate().filter(|(i, it)| c.items[*i].0 == wq && it.running.is_some()).count();
        let started = &s.started_order[wq];
        running <= 1 && started.len() <= s.queued_order[wq].len() && s.queued_order[wq][..started.len()] == started[..]
    })
}

/// C1: a pool with items waiting and fewer workers running than its
/// target (on a CPU's pool: none) is never forgotten: a worker can take
/// an item, a worker can be created, or none can (creation failed or the
/// pool is full: then the rescuers are called, R1, and LIVE checks the
/// outcome). C4: no worker of a CPU's managed pool took an item off the
/// worklist while another one ran (the unbound pool's target is C6's).
/// H2: a pool whose CPU went down is no longer concurrency managed, so a
/// waiting item is owed a way forward even while another worker of that
/// pool runs.
fn c1_c4_work_conserving(c: &Config, s: &State) -> bool {
    s.overlap_start & !(1 << c.cpus) == 0 && c.way_forward_where_owed(s, 0..s.pools.len())
}

/// C6: the unbound pool (ordered and unbound workqueues) is concurrency
/// managed with its own target ([`Config::target`]), both ways: an item
/// waiting there is owed a way forward while fewer workers than the
/// target count as running (C1's premise on the unbound pool; fails if
/// the rules use target 1), and no worker there starts an item while the
/// target's worth of others run (C4 on the unbound pool; fails if the
/// rules do not manage it). Configuration `unbound` tells them apart:
/// target 2, three items that can be active at once.
fn c6_unbound_managed_to_target(c: &Config, s: &State) -> bool {
    s.overlap_start & (1 << c.cpus) == 0 && c.way_forward_where_owed(s, [c.cpus])
}

/// C10 (and C1's count): the spec's running count is a recount of the
/// workers' flags (`State::running`, as the machine's rule M1), so it
/// always equals the workers that count as running; what can go wrong is
/// the flags. A worker is counted out for one reason at a time: a blocking
/// section, or the monitor having seen it asleep outside one (the machine
/// would count it out twice, and in again once, leaving the count low); a
/// detection lasts only while its worker runs its item (an idle worker
/// carries none). Nor is a CPU-intensive worker (C11) detected, or a
/// detected one marked CPU-intensive (a CPU-intensive worker may enter a
/// blocking section: the mark is a flag, as the kernel's, not a count).
fn c10_counted_out_once(s: &State) -> bool {
    let twice = |w: &&Worker| {
        matches!(
            w,
            Worker::Running { blocked: true, detected: true, .. } | Worker::Running { detected: true, hog: true, .. }
        )
    };
    !s.pools.iter().flat_map(|p| &p.workers).any(|w| twice(&w))
}

/// S6 (C1's manager): at most one worker of a pool is its manager.
fn s6_one_manager(s: &State) -> bool {
    s.pools.iter().all(|p| p.workers.iter().filter(|w| **w == Worker::Managing).count() <= 1)
}

/// W6, in every state (not only when the caller returns): while a
/// `cancel_sync` waits for item `i`'s running instance, `i` holds PENDING
/// for it: `i` is not pending (no queueing is accepted, chained or not),
/// and no instance after the one it waits for has started.
fn w6_cancel_sync_holds(s: &State) -> bool {
    s.waiters.iter().all(|w| {
        let Some(i) = w.cancel_sync else { return true };
        let it = &s.items[usize::from(i)];
        let waited = w.targets.iter().map(|&(_, k)| k).max().unwrap_or(0);
        it.pending == Pending::No && (it.running.is_none() || it.run_instance <= waited)
    })
}

impl Config {
    /// C1's premise: pool `p` has an item waiting that no worker runs,
    /// and nothing excuses the wait: it is not a pool that ought to be
    /// managed (the unbound pool, C6; bound and online, H2) with its
    /// target's worth of workers running, creation has not failed (the
    /// rescuers are called: R1, and LIVE checks the outcome), the pool is
    /// not full and no worker is being created. Then something must be
    /// able to take the item or create a worker for it.
    pub fn owes_way_forward(&self, s: &State, p: usize) -> bool {
        let pool = &s.pools[p];
        let waiting = pool.worklist.iter().any(|&i| s.items[usize::from(i)].running.is_none());
        waiting
            && !self.at_target(s, p, s.running(p))
            && !pool.starving
            && pool.workers.len() < usize::from(self.max_workers)
            && !pool.workers.contains(&Worker::Managing)
    }

    /// Every pool of `pools` that is owed a way forward has an enabled
    /// action that takes one of its items or creates a worker for it (the
    /// enabled actions are listed only where some pool is owed one).
    fn way_forward_where_owed(&self, s: &State, pools: impl IntoIterator<Item = usize>) -> bool {
        let owed: Vec<usize> = pools.into_iter().filter(|&p| self.owes_way_forward(s, p)).collect();
        if owed.is_empty() {
            return true;
        }
        let mut enabled = Vec::new();
        self.enabled(s, &mut enabled);
        owed.into_iter().all(|p| {
            enabled.iter().any(|a| match *a {
                Action::Start { pool, .. }
                | Action::Defer { pool, .. }
                | Action::StartScheduled { pool, .. }
                | Action::Manage { pool, .. }
                | Action::Create { pool }
                | Action::CreateFails { pool } => usize::from(pool) == p,
                _ => false,
            })
        })
    }
}

/// R6: a pool is on each rescuer's mayday list at most once.
fn r6_listed_once(s: &State) -> bool {
    s.maydays.iter().all(|list| list.iter().enumerate().all(|(n, p)| !list[n + 1..].contains(p)))
}

/// A fairness class: one actor whose steps weak fairness is assumed for
/// (if it can act in every state from some point on, it acts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A worker of a pool (numbered as in `Pool::workers`): it takes,
    /// defers, starts, blocks, unblocks and finishes items, and becomes the
    /// manager.
    Worker { pool: u8, worker: u8 },
    /// A pool's manager's creation in progress ends (a worker, or a failure).
    Create { pool: u8 },
    /// A pool's mayday timer.
    Mayday { pool: u8 },
    /// A workqueue's rescuer: it attaches, takes, runs and leaves.
    Rescuer { wq: u8 },
    /// A waiter (numbered as in `State::waiters`): returns once its wait is
    /// over; a flusher takes a colour once one is free.
    Waiter { waiter: u8 },
    /// The blocking monitor, for one worker (C10): it looks at every
    /// worker again and again, so a worker asleep is seen, and one that
    /// runs is seen running.
    Monitor { pool: u8, worker: u8 },
    /// The monitor's hog observation, for one worker (C11): a worker that
    /// goes on using the CPU is seen hogging.
    Hog { pool: u8, worker: u8 },
}

impl Fair for Config {
    type Class = Class;

    /// The user's operations and a worker's retiring (the idle cull, the
    /// trustee) have no class: the user may stop at any time, and progress
    /// may not depend on a worker retiring. Where creation may hang
    /// (`Config::creation_may_hang`) its end has none either.
    fn class(&self, _: &State, action: &Action) -> Option<Class> {
        Some(match *action {
            Action::Queue { .. }
            | Action::Cancel { .. }
            | Action::Destroy
            | Action::FlushWork { .. }
            | Action::FlushWq { .. }
            | Action::CpuDown
            | Action::CpuUp
            | Action::Retire { .. } => return None,
            Action::Start { pool, worker }
            | Action::Defer { pool, worker }
            | Action::StartScheduled { pool, worker }
            | Action::Block { pool, worker }
            | Action::Unblock { pool, worker }
            | Action::Sleep { pool, worker }
            | Action::Spin { pool, worker }
            | Action::Finish { pool, worker }
            | Action::Manage { pool, worker } => Class::Worker { pool, worker },
            Action::Detect { pool, worker } | Action::Undetect { pool, worker } => Class::Monitor { pool, worker },
            Action::Hog { pool, worker } => Class::Hog { pool, worker },
            Action::Create { .. } | Action::CreateFails { .. } if self.creation_may_hang => return None,
            Action::Create { pool } | Action::CreateFails { pool } => Class::Create { pool },
            Action::Mayday { pool } => Class::Mayday { pool },
            Action::RescuerAttach { wq }
            | Action::Rescue { wq }
            | Action::RescueDefer { wq }
            | Action::RescueScheduled { wq }
            | Action::RescueBlock { wq }
            | Action::RescueDone { wq }
            | Action::RescuerDetach { wq } => Class::Rescuer { wq },
            Action::Return { waiter } | Action::FlushTicket { waiter } => Class::Waiter { waiter },
        })
    }

    /// LIVE's obligation: some queued instance has not run (nor been
    /// cancelled), something runs, or a waiter has not returned.
    fn pending(&self, s: &State) -> bool {
        !all_done(s)
    }
}

/// Every successful queueing ran or was cancelled, nothing runs or waits
/// to run, and every waiter returned.
fn all_done(s: &State) -> bool {
    let all_ran = s.items.iter().all(|it| it.started + it.cancelled == it.queued && it.running.is_none());
    all_ran
        && s.waiters.is_empty()
        && s.rescuers.iter().flatten().all(|r| r.item.is_none() && r.scheduled.is_empty())
        && s.pools.iter().all(|p| p.scheduled.iter().all(Vec::is_empty))
        && s.pools.iter().all(|p| p.workers.iter().all(|w| !matches!(w, Worker::Running { .. })))
}

/// S0: where work is pending, an actor with a fairness class can act (the
/// user need not: it may stop). A state that breaks it is a deadlock, and
/// LIVE's shortest counterexample is then the path to it with an empty
/// cycle; S0 finds it as a safety property, breadth first.
fn s0_no_deadlock(c: &Config, s: &State) -> bool {
    if all_done(s) {
        return true;
    }
    let mut enabled = Vec::new();
    c.enabled(s, &mut enabled);
    enabled.iter().any(|a| c.class(s, a).is_some())
}
