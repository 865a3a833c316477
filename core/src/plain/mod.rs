//! The machine driven over plain values: every lock's state in one value,
//! and the machine's steps composed into *turns*, each what one engine
//! thread does between two points where another thread can run, in the
//! order the threaded engine composes them (`queue.rs`, `cancel.rs`,
//! `flush.rs`, `lifecycle.rs`, `worker.rs`, `manager.rs`, `rescuer.rs`,
//! `hotplug.rs`). No threads, locks or clock: the caller chooses which
//! turn runs next and says when time has passed; what needs a runtime (a
//! worker to wake, a thread to start, a timer to arm, a function to run)
//! comes back as [`Notice`]s, and what happened as trace [`Event`]s.
//!
//! The refinement (`cmwq-proofs`) explores every order of these turns
//! against the specification; a simulator or an async executor can run
//! them in virtual time. Pools are numbered as in traces: CPU `c` is pool
//! `c`, the unbound pool is pool `cpus`.
//!
//! ```
//! use cmwq::machine::queue::Target;
//! use cmwq::plain::{Notice, PlainSystem, Topology, WqShape};
//! use std::time::Duration;
//!
//! // One CPU, one workqueue, one item.
//! let wq = WqShape { unbound: false, max_active: 1, rescuer: false };
//! let topo = Topology {
//!     cpus: 1,
//!     unbound_concurrency: 1,
//!     wqs: vec![wq],
//!     items: vec![0],
//!     max_workers: 4,
//!     rescuer_batch: 16,
//!     flush_colors: 16,
//! };
//! let mut sys = PlainSystem::new(topo, 0);
//! assert_eq!(sys.queue(0, Target::On(0), false), Ok(true));
//! assert_eq!(sys.queue(0, Target::On(0), false), Ok(false), "pending: coalesced");
//! // The runtime carries out what the turns ask for; here a function
//! // returns as soon as it runs, and every spawn succeeds.
//! let now = Duration::ZERO;
//! loop {
//!     let notices = sys.take_notices();
//!     if notices.is_empty() {
//!         break;
//!     }
//!     for notice in notices {
//!         match notice {
//!             Notice::Wake { pool, id } => sys.wake(pool, id, now),
//!             Notice::FirstPass { pool, id } => sys.first_pass(pool, id, now),
//!             Notice::Spawn { pool, new, manager } => sys.spawned(pool, new, manager, true, now),
//!             Notice::Runs { pool, id, .. } => sys.finish(pool, id, now),
//!             _ => {} // timers, rescuers, exits: none here
//!         }
//!     }
//! }
//! assert!(sys.items()[0].instance_done(1), "the instance ran");
//! assert!(sys.running().is_empty());
//! ```
//!
//! Turns take indices from the topology (items, workqueues, pools, worker
//! ids of a pool, waiter positions); an index out of range panics, as
//! slice indexing does. Turns on a pool, worker or waiter that cannot act
//! now (a worker that is not idle, an executor that runs nothing) do
//! nothing.
//!
//! Where a turn spans more than one engine section: a flush's FW1-FW3 and
//! FW6 (the flush mutex is held throughout, so no other flusher can tell),
//! destroy's last drain check with DS2 (nothing of the workqueue runs or
//! can be queued by then), a wakeup taken with its WP1 (one thread), and
//! two merges that leave orders out: queueing's QU1-QU5 (the engine reads
//! `dying` before it claims PENDING and probes the last pool in a section
//! of its own, so a destroy can come between; the loom model
//! `destroy_racing_queue` checks that race), and an item's finish with
//! its pool's end (in the engine a `flush_work` may return, and its caller
//! requeue, between the two).

use crate::machine::create::Creating;
use crate::machine::effect::Effect;
use crate::machine::flush::{flush_begin, flush_heads_done, FlushLocks, FlushSignal, FlushTickets, FlushWait};
use crate::machine::mayday::{MaydayList, RescuerStep};
use crate::machine::pass::Pass;
use crate::machine::pool::{WorkerId, WqId};
use crate::machine::pwq::Pwq;
use crate::machine::queue::{accepts, cancel_grab_queued, load, queue_insert, Placement, Refusal, Target};
use crate::machine::rescue::Rescue;
use crate::machine::section::{PlainEntry, PoolSection, PwqFlags};
use crate::machine::trace::{Event, StepId};
use crate::machine::work::{Grab, WorkState};
use crate::machine::{seeded_in, SeededBits};
use crate::SeededBug;
use core::cell::RefCell;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

/// A workqueue's shape: where its items go and what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WqShape {
    /// Its items go to the unbound pool (also an ordered workqueue).
    pub unbound: bool,
    /// `max_active` per pool.
    pub max_active: usize,
    /// It has a rescuer (`mem_reclaim`).
    pub rescuer: bool,
}

/// A system's shape: CPUs, workqueues, and each item's workqueue.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topology {
    /// CPUs, each with its pool.
    pub cpus: usize,
    /// The unbound pool's concurrency target: workers that may count as
    /// running there before a waiting item waits (an engine's: its CPU
    /// count; at least 1).
    pub unbound_concurrency: usize,
    /// The workqueues.
    pub wqs: Vec<WqShape>,
    /// Item `i` belongs to workqueue `items[i]`.
    pub items: Vec<WqId>,
    /// Workers per pool, rescuers not counted.
    pub max_workers: usize,
    /// Items a rescuer takes off a worklist per turn (`RESCUER_BATCH`).
    pub rescuer_batch: usize,
    /// Flush colours per workqueue: the kernel's `NR_COLORS` (16) as in
    /// an engine; fewer let a model checker reach the colours' wrap-around
    /// in a few flushes (kept within `2..=NR_COLORS`).
    pub flush_colors: usize,
}

/// What the caller's runtime must do after a turn (fields: pools, worker
/// ids and workqueues as numbered here).
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notice {
    /// Worker `id` of `pool` was woken: give it a turn ([`PlainSystem::wake`]).
    Wake {
        pool: usize,
        id: WorkerId,
    },
    /// Worker `id` of `pool` was created: its thread starts with a pass of
    /// its own ([`PlainSystem::first_pass`]).
    FirstPass {
        pool: usize,
        id: WorkerId,
    },
    /// Executor `id` of `pool` (a worker or attached rescuer) runs `entry`'s
    /// function now; [`PlainSystem::finish`] when it returns.
    Runs {
        pool: usize,
        id: WorkerId,
        entry: PlainEntry,
    },
    /// Start a thread for worker `new`, then [`PlainSystem::spawned`].
    Spawn {
        pool: usize,
        new: WorkerId,
        manager: Option<WorkerId>,
    },
    /// Worker `id` of `pool` was retired: its thread leaves
    /// ([`PlainSystem::exit`]).
    Exit {
        pool: usize,
        id: WorkerId,
    },
    /// Arm `pool`'s idle-cull, create-retry or (`first` or not) mayday timer.
    ArmIdle {
        pool: usize,
    },
    ArmRetry {
        pool: usize,
    },
    ArmMayday {
        pool: usize,
        first: bool,
    },
    /// `wq`'s rescuer has a pool on its list: give it [`PlainSystem::rescuer_pop`].
    Rescuer {
        wq: WqId,
    },
}

/// A caller waiting: `flush_work` for an instance, `cancel_sync`, or
/// `flush_workqueue` and destroy's drain for a flush ticket.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Waiter {
    Flush { item: usize, instance: u64 },
    CancelSync { item: usize },
    FlushWq { wq: WqId, ticket: u64 },
    Destroy { wq: WqId, ticket: u64 },
}

/// A rescuer that took `pool` off its list: attached as `id` once it ran
/// RT1, `taken` items this turn.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rescuing {
    pub pool: usize,
    pub id: Option<WorkerId>,
    pub taken: usize,
}

/// The whole system's machine state, and the threads' places in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlainSystem {
    topo: Topology,
    pools: Vec<PoolSection<PlainEntry>>,
    items: Vec<WorkState<usize, usize>>,
    maydays: Vec<MaydayList<usize>>,
    rescuers: Vec<Option<Rescuing>>,
    flush: Vec<(FlushTickets, FlushSignal)>,
    dying: Vec<bool>,
    trustee: Vec<bool>,
    running: BTreeMap<(usize, WorkerId), PlainEntry>,
    /// Workers created whose first pass is still to come.
    fresh: BTreeSet<(usize, WorkerId)>,
    managing: Vec<Option<(WorkerId, WorkerId)>>,
    order: Vec<Vec<WorkerId>>,
    waiters: Vec<Waiter>,
    bugs: SeededBits,
    /// What happened, oldest first; the caller takes it ([`PlainSystem::take_events`]).
    events: Vec<Event>,
    notices: Vec<Notice>,
}

/// A flush's locks over plain state.
struct Locks<'a> {
    pools: RefCell<&'a mut Vec<PoolSection<PlainEntry>>>,
    signal: RefCell<&'a mut FlushSignal>,
}

impl FlushLocks<PlainEntry> for Locks<'_> {
    fn each_pool(&self, f: impl FnMut(&mut PoolSection<PlainEntry>)) {
        self.pools.borrow_mut().iter_mut().for_each(f);
    }
    fn with_signal<R>(&self, f: impl FnOnce(&mut FlushSignal) -> R) -> R {
        f(&mut self.signal.borrow_mut())
    }
    fn notify(&self) {}
}

impl PlainSystem {
    /// Every pool with one idle worker and every workqueue's
    /// pool-workqueues, as the engine builds a system (CR1-CR2 by a manager
    /// that is not a worker).
    pub fn new(topo: Topology, bugs: SeededBits) -> Self {
        let pools = topo.cpus + 1;
        let sections = (0..pools).map(|p| {
            let concurrency = if p == topo.cpus { topo.unbound_concurrency } else { 1 };
            let mut section = PoolSection::new(bugs, concurrency);
            let _ = section.manager_enter();
            if let Creating::Spawn(id) = section.create_begin(topo.max_workers, Duration::ZERO) {
                section.create_end(id, true, Duration::ZERO, &mut Vec::new());
            }
            section.manager_leave();
            // Its thread's first pass is still to come ([`Notice::FirstPass`]).
            for (wq, shape) in topo.wqs.iter().enumerate() {
                let flags = PwqFlags { cpu_intensive: false, rescuer: shape.rescuer };
                section.add_pwq(wq, Pwq::new(shape.max_active, 0, bugs), flags);
            }
            section
        });
        let (wqs, items) = (topo.wqs.len(), topo.items.len());
        PlainSystem {
            pools: sections.collect(),
            items: vec![WorkState::default(); items],
            maydays: (0..wqs).map(|_| MaydayList::new(bugs)).collect(),
            rescuers: vec![None; wqs],
            flush: (0..wqs).map(|_| (FlushTickets::with_colors(topo.flush_colors), FlushSignal::default())).collect(),
            dying: vec![false; wqs],
            trustee: vec![false; pools],
            running: BTreeMap::new(),
            fresh: (0..pools).map(|p| (p, 0)).collect(),
            managing: vec![None; pools],
            order: vec![vec![0]; pools],
            waiters: Vec::new(),
            bugs,
            events: Vec::new(),
            notices: (0..pools).map(|pool| Notice::FirstPass { pool, id: 0 }).collect(),
            topo,
        }
    }

    // ---- read-only views --------------------------------------------------

    /// The shape it was built with.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }
    /// Each pool's section (CPU pools, then the unbound pool).
    pub fn pools(&self) -> &[PoolSection<PlainEntry>] {
        &self.pools
    }
    /// Each item's state.
    pub fn items(&self) -> &[WorkState<usize, usize>] {
        &self.items
    }
    /// Each workqueue's rescuer's mayday list.
    pub fn maydays(&self) -> &[MaydayList<usize>] {
        &self.maydays
    }
    /// Where each workqueue's rescuer is.
    pub fn rescuers(&self) -> &[Option<Rescuing>] {
        &self.rescuers
    }
    /// What each executor runs, by (pool, worker id).
    pub fn running(&self) -> &BTreeMap<(usize, WorkerId), PlainEntry> {
        &self.running
    }
    /// Workers created whose first pass is still to come, by (pool, id).
    pub fn fresh(&self) -> &BTreeSet<(usize, WorkerId)> {
        &self.fresh
    }
    /// A manager of `pool` between CR1 and CR2: (manager, the new worker).
    pub fn managing(&self, pool: usize) -> Option<(WorkerId, WorkerId)> {
        self.managing[pool]
    }
    /// `pool`'s workers in the order they were created.
    pub fn order(&self, pool: usize) -> &[WorkerId] {
        &self.order[pool]
    }
    /// Callers waiting, oldest first.
    pub fn waiters(&self) -> &[Waiter] {
        &self.waiters
    }
    /// A trustee is installed on `pool` (between `cpu_down` and `cpu_up`).
    pub fn trustee(&self, pool: usize) -> bool {
        self.trustee[pool]
    }
    /// Workqueue `wq`'s flush tickets and completion signal (FW1-FW6).
    pub fn flush_state(&self, wq: WqId) -> (&FlushTickets, &FlushSignal) {
        let (tickets, signal) = &self.flush[wq];
        (tickets, signal)
    }
    /// Workqueue `wq` is being destroyed.
    pub fn dying(&self, wq: WqId) -> bool {
        self.dying[wq]
    }
    /// Whether waiter `n` would get past its wait now.
    pub fn waiter_ready(&self, n: usize) -> bool {
        match self.waiters[n] {
            Waiter::Flush { item, instance } => self.items[item].instance_done(instance),
            Waiter::CancelSync { item } => {
                self.items[item].cancel_sync_may_return(self.bug(SeededBug::CancelSyncSkipsWait))
            }
            Waiter::FlushWq { wq, ticket } | Waiter::Destroy { wq, ticket } => {
                self.flush[wq].1.poll(ticket) != FlushWait::Wait
            }
        }
    }
    /// What happened since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }
    /// What the runtime must do since the last call, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        core::mem::take(&mut self.notices)
    }

    fn bug(&self, bug: SeededBug) -> bool {
        seeded_in(self.bugs, bug)
    }
}

mod turns;

#[cfg(test)]
mod tests;
