//! The specification: CMWQ as a nondeterministic state machine, written
//! from the semantics (the kernel's documentation and the seed texts), not
//! by calling the core.
//!
//! A *configuration* ([`Config`]) fixes the CPUs, the workqueues and their
//! flags, the work items and what each does when it runs, and budgets for
//! the user's operations. A *state* ([`State`]) holds the pools, their
//! workers, the pool-workqueues, the items, the rescuers and the waiters.
//! Every [`Action`] is one atomic step of some actor: the user (queue,
//! cancel, flush, hotplug), a worker (start, block, unblock, finish), the
//! manager (create a worker, or fail to), the mayday timer, a rescuer.
//!
//! The state graph has cycles (a mayday re-armed, a creation failing and
//! tried again, workers retiring and created again); only the user's
//! operations are budgeted. Liveness is checked under weak fairness on
//! that graph (`fair.rs`, `properties.rs`).

use crate::Mistake;

/// Most items a configuration may have.
pub const MAX_ITEMS: usize = 4;

/// What an item does when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Runs and returns.
    Plain,
    /// Enters a blocking section once per run, then returns.
    Blocks,
    /// Blocks until item `n`'s instance has started (or is gone: finished
    /// or cancelled): the rescuer chain, `n` queued behind it on the same
    /// workqueue. (A real item sees `n` run, not `n`'s bookkeeping end.)
    WaitsFor(usize),
    /// Waits for item `n` as `WaitsFor` does, but without a blocking
    /// section (a `std` lock or channel): it goes to sleep (`Sleep`) still
    /// counting as running, and only the monitor's `Detect` counts it out
    /// (C10). Never on a workqueue with a rescuer.
    SleepsFor(usize),
    /// Waits for item `n` as `WaitsFor` does, but spinning on the CPU (a
    /// busy wait: it goes on running, `Spin`), still counting as running:
    /// only the monitor's `Hog` (the CPU hog rule, C11) counts it out.
    /// Never on a workqueue with a rescuer.
    SpinsFor(usize),
}

impl Behaviour {
    /// The item it waits for, with a blocking section or without.
    pub fn awaited(self) -> Option<usize> {
        match self {
            Behaviour::WaitsFor(n) | Behaviour::SleepsFor(n) | Behaviour::SpinsFor(n) => Some(n),
            _ => None,
        }
    }
}

/// A workqueue's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WqSpec {
    /// Served by the unbound pool (concurrency managed with a target of
    /// its own: [`Config::unbound_target`]).
    pub unbound: bool,
    /// One item at a time, in queueing order (unbound, `max_active` 1).
    pub ordered: bool,
    /// Has a rescuer.
    pub mem_reclaim: bool,
    /// Active items per pool.
    pub max_active: u8,
}

/// A configuration to check.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bound CPUs (each with one pool); one unbound pool besides.
    pub cpus: usize,
    /// The unbound pool's concurrency target: workers that may count as
    /// running there before a waiting item waits for one (C6). `None`:
    /// `cpus`, the engine's rule; a small configuration may ask for more
    /// than its CPUs to tell a target from none at all.
    pub unbound_target: Option<u8>,
    /// The workqueues.
    pub wqs: Vec<WqSpec>,
    /// Each item's workqueue and behaviour.
    pub items: Vec<(usize, Behaviour)>,
    /// Workers a pool may have alive (the first one always exists).
    pub max_workers: u8,
    /// Every worker creation after the first fails (memory pressure), as
    /// often as it is tried; the mayday timer fires as often as it is armed.
    pub creation_fails: bool,
    /// When the mayday timer is armed. `false`, the engine's rule: only
    /// once a creation has failed (the pool is `starving`) or the pool is
    /// full. `true`, the kernel's (`maybe_create_worker` arms the timer
    /// before it calls `create_worker`, and deletes it when creation
    /// ends): also while a creation is in progress (a worker is
    /// `Managing`), so a creation that blocks still calls the rescuers.
    pub mayday_at_creation_start: bool,
    /// A creation in progress may never return (it blocks, e.g. in memory
    /// reclaim that waits for the very items queued): `Create` and
    /// `CreateFails` get no fairness class, so a fair run may leave the
    /// manager creating forever.
    pub creation_may_hang: bool,
    /// Idle workers may retire (idle cull, the trustee after `cpu_down`),
    /// as often as spares idle.
    pub retire: bool,
    /// Queue operations the user performs (each on any item and CPU).
    pub queues: u8,
    /// `cancel` / `cancel_sync` operations.
    pub cancels: u8,
    /// `flush_work` / `flush_workqueue` operations.
    pub flushes: u8,
    /// `destroy_workqueue` of workqueue 0 (at most once).
    pub destroy: bool,
    /// CPU 0 may go down once and come back once.
    pub hotplug: bool,
    /// Flush colours per workqueue (`colors.rs`): the kernel's 16, or as
    /// few as 2 so that a few flushes reach the wrap-around.
    pub colors: u8,
    /// The blocking monitor watches the workers (C10): `Detect` and
    /// `Undetect` are enabled. Off, as in the configurations that predate
    /// it, their states stay as they were.
    pub detect: bool,
    /// The monitor sees CPU hogs (C11): `Hog` is enabled. Off, as in the
    /// configurations that predate it, their states stay as they were.
    pub hog: bool,
    /// A deliberate mistake in the spec (to show that a property can fail).
    pub mistake: Option<Mistake>,
}

/// Where an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pending {
    /// Not pending.
    No,
    /// On pool `p`'s worklist (active).
    Active(u8),
    /// On its pool-workqueue's inactive list on pool `p`.
    Inactive(u8),
}

/// An item's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    pub pending: Pending,
    /// The worker executing it: (pool, worker), or the rescuer (worker 255).
    pub running: Option<(u8, u8)>,
    /// Successful queueings.
    pub queued: u8,
    /// Instances finished or cancelled, as a bit set (bit `k`: instance
    /// `k`, numbered from 1 by `queued`; at most 31 instances, checked by
    /// `Config::check`).
    pub done: u32,
    /// Instances whose function ran (started).
    pub started: u8,
    /// The instance running now (the one queued last when it started).
    pub run_instance: u8,
    /// Instances cancelled.
    pub cancelled: u8,
    /// It blocked already in this run.
    pub blocked_once: bool,
    /// For a `WaitsFor` item blocked now: the instance it waits for.
    pub waits_for: u8,
    /// `cancel_sync` calls holding it (queueing it is a no-op meanwhile, W6).
    pub cancelling: u8,
    /// Mistake `LatePendingClear`: PENDING kept while it runs.
    pub late_pending: bool,
    /// The flush colour of the pending instance (`colors.rs`).
    pub color: u8,
    /// The flush colour of the running instance.
    pub run_color: u8,
}

/// A worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Worker {
    Idle,
    /// Running item `i`; `blocked`: inside a blocking section; `detected`:
    /// seen asleep by the monitor outside one (C10); `hog`: seen hogging
    /// the CPU, CPU-intensive until its item ends (C11). Each counts it out.
    Running {
        item: u8,
        blocked: bool,
        detected: bool,
        hog: bool,
    },
    /// The pool's manager, creating a worker (S6); at most one per pool.
    Managing,
}

/// A pool: one per CPU, then the unbound pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pool {
    pub worklist: Vec<u8>,
    /// In creation order; a retired worker leaves, and the later ones move
    /// up (so retiring and creating again can cycle).
    pub workers: Vec<Worker>,
    /// Per worker: items deferred to it because it runs them (S5; kernel
    /// `scheduled` list), run by it next.
    pub scheduled: Vec<Vec<u8>>,
    /// Its CPU is offline: workers are rogue (not concurrency managed, H2).
    pub offline: bool,
    /// A creation failed, and none succeeded since (S6, S7).
    pub starving: bool,
}

/// A workqueue's rescuer while attached to a pool (S8).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rescuer {
    pub pool: u8,
    /// The item it runs.
    pub item: Option<u8>,
    /// Items deferred to it because it runs them.
    pub scheduled: Vec<u8>,
}

/// A waiter: a `flush_work`, `flush_workqueue` or `cancel_sync` in
/// progress, with the instances it waits for: (item, instance number).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Waiter {
    pub targets: Vec<(u8, u8)>,
    /// What the caller is owed, recorded when it was called and checked on
    /// return independently of `targets`: (item, first, last), every
    /// instance in that range must be done. `flush_work` is owed the last
    /// instance queued (or the running one); `flush_workqueue` every
    /// instance queued before it (W5, Q1).
    pub owed: Vec<(u8, u8, u8)>,
    /// A `cancel_sync` of this item: on return it must be neither pending
    /// nor running (W6).
    pub cancel_sync: Option<u8>,
    /// A `destroy_workqueue` of this workqueue: it drains by flushing
    /// (a ticket, as `flush_workqueue`), again while something of it is
    /// pending or running when its ticket is done; on return nothing of it
    /// is pending or running (Q5, Q6).
    pub destroy: Option<u8>,
    /// A `flush_workqueue` of this workqueue: it returns once its ticket
    /// is done (`colors.rs`); its `owed` says what it is owed.
    pub flush_wq: Option<u8>,
    /// That flusher's ticket (a destroy's: its drain's current round);
    /// `None` while every colour is taken.
    pub ticket: Option<u8>,
}

/// A workqueue's `flush_workqueue` state (`colors.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WqFlush {
    /// The next ticket to hand out.
    pub next: u8,
    /// The oldest ticket not done (the head); `head == next`: none.
    pub head: u8,
    /// The colour new instances get.
    pub work_color: u8,
    /// Instances in flight per pool and colour.
    pub in_flight: Vec<Vec<u8>>,
    /// Per pool: the head's colour is still in flight there.
    pub marked: Vec<bool>,
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub pools: Vec<Pool>,
    pub items: Vec<Item>,
    /// Active items per (workqueue, pool).
    pub active: Vec<Vec<u8>>,
    /// Inactive items per (workqueue, pool), FIFO.
    pub inactive: Vec<Vec<Vec<u8>>>,
    /// Each workqueue's rescuer: its mayday list (pools), and where it is
    /// attached.
    pub maydays: Vec<Vec<u8>>,
    pub rescuers: Vec<Option<Rescuer>>,
    /// Items started on each ordered workqueue, in order (for Q4).
    pub started_order: Vec<Vec<u8>>,
    /// Items queued on each ordered workqueue, in order (for Q4).
    pub queued_order: Vec<Vec<u8>>,
    pub waiters: Vec<Waiter>,
    /// Each workqueue's flush tickets and colours.
    pub flush: Vec<WqFlush>,
    /// Waiters that returned before their targets were done, or a
    /// `cancel_sync` that returned with its item pending or running (W5,
    /// W6, Q1).
    pub early_returns: u8,
    /// Pools (bit `p`: pool `p`) where a worker started an item while as
    /// many other workers as the pool's concurrency target counted as
    /// running, in a pool that ought to be managed (C4; C6 on the
    /// unbound pool).
    pub overlap_start: u8,
    /// A queueing changed a worker of a managed pool where as many workers
    /// as its target counted as running (C3: it wakes nobody).
    pub woke_behind_runner: bool,
    /// A rescuer left a pool where items of its workqueue waited, nobody
    /// counted as running and no worker idled to take them (R4).
    pub rescuer_stranded: bool,
    /// Queueings refused although the item was running and not pending (W3).
    pub refused_while_running: u8,
    /// Workqueues being destroyed or destroyed: the user's queueing is
    /// refused (Q6).
    pub dying: Vec<bool>,
    /// User queueings accepted by a destroyed workqueue (Q6).
    pub accepted_after_destroy: u8,
    /// Whether the destroy operation is still to come.
    pub destroy_left: bool,
    /// Budgets left.
    pub queues: u8,
    pub cancels: u8,
    pub flushes: u8,
    pub hotplug_left: u8,
}

/// One step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Queue {
        item: u8,
        cpu: u8,
    },
    Cancel {
        item: u8,
        sync: bool,
    },
    Destroy,
    FlushWork {
        item: u8,
    },
    FlushWq {
        wq: u8,
    },
    /// A `flush_workqueue` (or a destroy's drain) that found every colour
    /// taken gets its ticket; a drain whose ticket is done with its
    /// workqueue not drained takes the next one (a new round).
    FlushTicket {
        waiter: u8,
    },
    Return {
        waiter: u8,
    },
    Start {
        pool: u8,
        worker: u8,
    },
    Defer {
        pool: u8,
        worker: u8,
    },
    StartScheduled {
        pool: u8,
        worker: u8,
    },
    Block {
        pool: u8,
        worker: u8,
    },
    Unblock {
        pool: u8,
        worker: u8,
    },
    /// A `SleepsFor` item goes to sleep without a blocking section (it
    /// queues the item it waits for, as `Block` does); its worker still
    /// counts as running.
    Sleep {
        pool: u8,
        worker: u8,
    },
    /// The monitor saw the worker asleep outside a blocking section and
    /// counts it out (C10, machine PS9); the pool's idle workers may then
    /// start.
    Detect {
        pool: u8,
        worker: u8,
    },
    /// The monitor saw a detected worker run: it counts again (PS10).
    Undetect {
        pool: u8,
        worker: u8,
    },
    /// A `SpinsFor` item begins its busy wait (it queues the item it waits
    /// for, as `Block` does); its worker still counts as running.
    Spin {
        pool: u8,
        worker: u8,
    },
    /// The monitor saw the worker use the CPU past the hog threshold: it is
    /// CPU-intensive until its item ends, out of the running count (C11,
    /// machine PS11); the pool's idle workers may then start.
    Hog {
        pool: u8,
        worker: u8,
    },
    Finish {
        pool: u8,
        worker: u8,
    },
    Manage {
        pool: u8,
        worker: u8,
    },
    Create {
        pool: u8,
    },
    CreateFails {
        pool: u8,
    },
    Retire {
        pool: u8,
        worker: u8,
    },
    Mayday {
        pool: u8,
    },
    RescuerAttach {
        wq: u8,
    },
    Rescue {
        wq: u8,
    },
    RescueDefer {
        wq: u8,
    },
    RescueScheduled {
        wq: u8,
    },
    RescueBlock {
        wq: u8,
    },
    RescueDone {
        wq: u8,
    },
    RescuerDetach {
        wq: u8,
    },
    CpuDown,
    CpuUp,
}

/// The rescuer's worker number in `Item::running`.
pub const RESCUER: u8 = 255;

impl Config {
    /// The pool item `i` of workqueue `wq` goes to when queued on `cpu`.
    pub fn pool_for(&self, wq: usize, cpu: usize) -> usize {
        if self.wqs[wq].unbound || self.wqs[wq].ordered {
            self.cpus
        } else {
            cpu
        }
    }

    /// Pool `p`'s concurrency target: one running worker on a CPU's pool
    /// (the kernel's rule), [`Config::unbound_target`] on the unbound pool
    /// (C6; the kernel does not manage it).
    pub fn target(&self, p: usize) -> usize {
        if p == self.cpus {
            self.unbound_target.map_or(self.cpus, usize::from)
        } else {
            1
        }
    }

    /// The concurrency target the model's rules apply to pool `p` now;
    /// `None` where they do not manage it (its CPU marked offline). Seeded
    /// mistakes may keep an offline pool managed, leave the unbound pool
    /// unmanaged (the kernel's rule), or manage it with target 1.
    pub fn managed_target(&self, state: &State, p: usize) -> Option<usize> {
        use crate::Mistake::{OfflineStaysManaged, UnboundTargetOne, UnboundUnmanaged};
        if p == self.cpus {
            let target = if self.has(UnboundTargetOne) { 1 } else { self.target(p) };
            return (!self.has(UnboundUnmanaged)).then_some(target);
        }
        (!state.pools[p].offline || self.has(OfflineStaysManaged)).then_some(1)
    }

    /// Whether pool `p` ought to be concurrency managed (with
    /// [`Config::target`]): it is the unbound pool (C6), or bound with its
    /// CPU online (H2), judged by the user's hotplug operations (CPU 0 is
    /// offline between `CpuDown` and `CpuUp`), not by the pool's mark.
    /// Properties judge by this, not by `managed_target`.
    pub fn should_be_managed(&self, state: &State, p: usize) -> bool {
        p == self.cpus || (p < self.cpus && !(p == 0 && state.hotplug_left == 1))
    }

    /// Whether pool `p` ought to be managed and its target's worth of
    /// workers count as running (`running` of them): then a waiting item
    /// waits (C1, C4, C6).
    pub fn at_target(&self, state: &State, p: usize, running: usize) -> bool {
        self.should_be_managed(state, p) && running >= self.target(p)
    }

    pub fn max_active(&self, wq: usize) -> u8 {
        if self.wqs[wq].ordered {
            1
        } else {
            self.wqs[wq].max_active
        }
    }

    pub fn has(&self, mistake: Mistake) -> bool {
        self.mistake == Some(mistake)
    }

    /// The initial state: every pool has one idle worker.
    pub fn initial(&self) -> State {
        let pools = self.cpus + 1;
        let pool = Pool {
            worklist: vec![],
            workers: vec![Worker::Idle],
            scheduled: vec![vec![]],
            offline: false,
            starving: false,
        };
        let item = Item {
            pending: Pending::No,
            running: None,
            queued: 0,
            done: 0,
            started: 0,
            run_instance: 0,
            cancelled: 0,
            blocked_once: false,
            waits_for: 0,
            cancelling: 0,
            late_pending: false,
            color: 0,
            run_color: 0,
        };
        State {
            pools: vec![pool; pools],
            items: vec![item; self.items.len()],
            active: vec![vec![0; pools]; self.wqs.len()],
            inactive: vec![vec![vec![]; pools]; self.wqs.len()],
            maydays: vec![vec![]; self.wqs.len()],
            rescuers: vec![None; self.wqs.len()],
            started_order: vec![vec![]; self.wqs.len()],
            queued_order: vec![vec![]; self.wqs.len()],
            waiters: vec![],
            flush: (0..self.wqs.len()).map(|_| self.initial_flush()).collect(),
            early_returns: 0,
            overlap_start: 0,
            woke_behind_runner: false,
            rescuer_stranded: false,
            refused_while_running: 0,
            dying: vec![false; self.wqs.len()],
            accepted_after_destroy: 0,
            destroy_left: self.destroy,
            queues: self.queues,
            cancels: self.cancels,
            flushes: self.flushes,
            hotplug_left: if self.hotplug { 2 } else { 0 },
        }
    }
}

impl State {
    /// Workers of pool `p` that count as running: running, not blocked, not
    /// detected and not CPU-intensive. The spec's running count is this
    /// recount (as the machine's rule M1), never a counter of its own.
    pub fn running(&self, p: usize) -> usize {
        let counts = |w: &&Worker| matches!(w, Worker::Running { blocked: false, detected: false, hog: false, .. });
        self.pools[p].workers.iter().filter(counts).count()
    }

    /// Whether instance `k` of item `i` has started (or is done).
    pub fn instance_started(&self, i: usize, k: u8) -> bool {
        let it = &self.items[i];
        self.instance_done(i, k) || (it.running.is_some() && it.run_instance >= k)
    }

    /// Whether instance `k` of item `i` is done.
    pub fn instance_done(&self, i: usize, k: u8) -> bool {
        k == 0 || self.items[i].done & (1 << k) != 0
    }

    pub fn idle(&self, p: usize) -> usize {
        self.pools[p].workers.iter().filter(|w| **w == Worker::Idle).count()
    }
}
