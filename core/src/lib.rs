//! # cmwq: Concurrency Managed Workqueues
//!
//! A reference implementation of the Linux kernel's Concurrency Managed
//! Workqueue (CMWQ, Tejun Heo, 2009-2010) in Rust, on real OS threads, with
//! the engine generic over a [`Platform`] so that model checkers can run
//! the same code.
//!
//! One pool of workers per CPU (and priority) is shared by every
//! workqueue. A pool runs about one work item per CPU at a time, and starts
//! another worker the moment the running one blocks (enters [`blocking`],
//! or any library wait). Work items are reusable and non-reentrant; flush
//! and cancel have the kernel's exact semantics.
//!
//! ```
//! use cmwq::{system_wq, Work};
//! use std::{sync::Arc, sync::atomic::{AtomicBool, Ordering}};
//!
//! let done = Arc::new(AtomicBool::new(false));
//! let d = done.clone();
//! let work = Work::new(move || d.store(true, Ordering::SeqCst));
//! assert!(system_wq().queue(&work).unwrap());
//! assert!(work.flush().unwrap() || done.load(Ordering::SeqCst));
//! assert!(done.load(Ordering::SeqCst));
//! ```
//!
//! One-shot jobs return a value: [`Workqueue::spawn`] hands back a
//! [`JobHandle`], which `join`s (blocking) or is awaited (a `Future`, std
//! `Waker` only: no runtime dependency).
//!
//! ## Writing a platform
//! The engine takes every thread, lock, atomic and clock reading from a
//! [`Platform`] ([`Std`] in production; loom and shuttle in `models/`; a
//! simulator or a virtual clock of your own). Build on yours with
//! `System::<P>::builder()...build_on(platform)` and
//! `Workqueue::<P>::builder(name)` (or `Workqueue::builder(name)`: the
//! platform is the system's). The trait's documentation says, item by item,
//! which thread calls it and what it must guarantee. The traps, and how the
//! seam avoids each:
//! - **Blocking on your platform's workers**: [`blocking`], [`sleep`] and
//!   [`current_work_on`] find the calling worker through
//!   [`Platform::thread_context`], which therefore must be a per-thread
//!   slot of *your* threads (thread-local storage). [`blocking`] works on
//!   every platform; [`current_work`] is typed for [`Std`] and panics on
//!   another platform's worker with the call to make instead,
//!   `current_work_on::<P>()`; [`sleep`] sleeps on the worker's platform
//!   ([`Platform::sleep`], your clock).
//! - **Your clock**: the engine reads time only through
//!   [`Platform::now`] of the instance you built with, and the timer thread
//!   waits with [`Platform::condvar_wait_until`], a deadline on that clock.
//!   A clock that jumps (advanced by hand) wakes nothing by itself: call
//!   [`System::wake_timer`] after each jump (or build without the timer
//!   thread and call [`System::run_due_timers`] yourself). Then delayed
//!   work fires and a workqueue dropped with an armed item returns.
//! - **Spawning**: [`Platform::spawn`] is called from the threads its
//!   documentation lists (the builder, a worker acting as manager, a timer
//!   event, `cpu_down`, the last handle's dropper); a refusal
//!   ([`SpawnError`]) is normal and loses no work.
//! - **CPUs**: with [`Platform::current_cpu`] `None`, every plain `queue`
//!   from a thread that is not a worker goes to CPU 0; use `queue_on` or
//!   say which CPU the caller runs on.
//! - **Model checkers**: their threads are coroutines on one OS thread, so
//!   every primitive, the thread context included, must be the checker's
//!   own (std atomics and thread-locals are invisible to it).
//!
//! `tests/own_platform.rs` is a complete example (real threads, a virtual
//! clock, a spawn budget that refuses), checked in CI.
//!
//! ## Layers
//! Lowest first. A module imports only from its own layer and those below,
//! and no two modules import each other in a cycle (`core/tests/layers.rs`
//! reads every `crate::` path and fails otherwise, and on anything impure
//! in the machine):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 platform | `platform` | [`Platform`]: the only place that names `std::sync`, `std::thread` or `std::time` |
//! | 1 machine | [`machine`], `seeded` | **the rules of CMWQ** as pure state and transitions, numbered in `core/src/machine/README.md`: the kernel's predicates ([`policy`]), a pool and its workers, creation, culling, mayday, rescue and hotplug decisions, mayday lists, pool-workqueues, flush tickets, a work item's state; and their composition as steps, one critical section each, with effects as values (a worker's pass, queueing, creation, the timers, a rescuer's turn, hotplug) |
//! | 2 base | `config`, `error`, `timer`, `trace`, `wakers`, [`plain`], `inbox`, `watch` | configuration and its validation, errors, the timer service (events are closures), the trace log (feature `trace`), the async waits' waker lists; the machine driven over plain values, turn by turn, for simulators and model checkers; a pool's inbox; the blocking monitor's view of a worker |
//! | 3 shared | `shared` | the engine's shared objects (system, pools, pool-workqueues, workqueues, rescuers, work items) with the lock of every field |
//! | 4 mechanism | `pool`, `blocking`, `flush`, `lifecycle`, `pool_workqueue`, `queue`, `cancel`, `manager`, `worker`, `rescuer`, `hotplug`, `monitor` | the driver: takes a lock, runs a machine step (or transition), drops the lock, carries out the effects and the outcome with the platform; no user code runs under an engine lock |
//! | 5 API | `work`, `delayed`, `job`, `workqueue`, `system`, `default`, `model_check` | the handles users hold |
//!
//! ## Lock legend
//! Every shared field's doc starts with the rule that protects it:
//!
//! | tag | rule |
//! |-----|------|
//! | `I:` | immutable after construction |
//! | `L:` | the pool lock: every field of `PoolLocked` (enforced by the type) |
//! | `S:` | written only by the worker thread itself |
//! | `A:` | atomic; its doc says what it pairs with |
//! | `WQ:` | the workqueue's control or flush mutex |
//! | `D:` | the workqueue's delayed-items mutex (destroy closes it while it takes the pool locks: D → L; a finalize timer event may be armed under it: D → T) |
//! | `R:` | the system's reap lock (stopped rescuer threads to join; a reap event may be armed under it: R → T) |
//! | `T:` | the timer lock |
//! | `HP:` | the hotplug lock (taken before pool locks) |
//! | `MD:` | a rescuer's mayday lock (taken under a pool lock, never the other way) |
//! | leaf | a work item's state lock, a job's outcome, a flush signal, a panic log: taken last, nothing is locked under them but a waker list |
//! | waker list | the async waits' wakers (`wakers.rs`): an item's (under its state lock), a flush signal's async side (under the signal lock), a workqueue's delayed-set wakers (under D); nothing under them. Wakers run outside every engine lock |
//!
//! Lock order: hotplug lock → workqueue flush/control mutex → delayed
//! mutex → pool lock (one at a time, except the non-reentrancy probe,
//! which drops the last pool's lock before taking the target's) → mayday
//! lock → reap lock → timer lock → leaf locks → waker lists.
//!
//! ## Glossary (kernel name → here)
//! | kernel | here |
//! |--------|------|
//! | `work_struct` | [`Work`] |
//! | `delayed_work` | [`DelayedWork`] |
//! | `workqueue_struct`, `alloc_workqueue` | [`Workqueue`], [`WorkqueueBuilder`] |
//! | `worker_pool` | pool (per CPU and priority, plus unbound) |
//! | `pool_workqueue` (pwq) | pool-workqueue: a workqueue's state on one pool |
//! | `nr_running` | workers counted as running |
//! | `WORK_STRUCT_PENDING` | PENDING: the item's location is not `Off` |
//! | `wq_worker_sleeping` / `wq_worker_running` | entering / leaving [`blocking`] |
//! | `queue_work(_on)` | [`Workqueue::queue`], [`Workqueue::queue_on`] |
//! | `flush_work` | [`Work::flush`] |
//! | `cancel_work(_sync)` | [`Work::cancel`], [`Work::cancel_sync`] |
//! | `flush_workqueue`, `drain_workqueue`, `destroy_workqueue` | [`Workqueue::flush`], [`Workqueue::drain`], [`Workqueue::destroy`] |
//! | (no kernel form) | async waits: [`Work::flush_async`], [`Work::cancel_sync_async`], [`Workqueue::flush_async`], [`Workqueue::drain_async`], [`DelayedWork::flush_async`], [`DelayedWork::cancel_sync_async`] |
//! | `work_busy` | [`Work::busy`] |
//! | `current_work` | [`current_work`] |
//! | `WQ_MEM_RECLAIM`, rescuer | [`WorkqueueBuilder::mem_reclaim`]; the rescuer thread `kworker/R-<name>` |
//! | `send_mayday`, `pool_mayday_timeout` | the mayday timer: a pool that cannot get a worker calls the rescuers |
//! | `PWQ_STAT_*` (`wq_monitor.py`: started, completed, CPU time, CPU-intensive, CM wakeups, mayday, rescued) | [`WorkqueueStats`], [`System::workqueue_stats`] |
//! | `wq_cpu_intensive_thresh_us`, `wq_cpu_intensive_report` | [`SystemBuilder::cpu_hog`], [`Report::CpuHog`] |
//! | `wq_watchdog` ("workqueue lockup") | [`SystemBuilder::watchdog`], [`Report::Stall`], [`System::watchdog_check`] |
//! | CPU hotplug, trustee, `WORKER_ROGUE`, `POOL_DISASSOCIATED` | [`System::cpu_down`], [`System::cpu_up`]; see the `hotplug` module |
//! | `system_wq` & co. | [`system_wq`], [`system_highpri_wq`], [`system_long_wq`], [`system_unbound_wq`] |
//!
//! ## Forward progress without new threads
//! A pool that needs a worker and cannot create one (the platform refuses
//! the thread, or `max_workers_per_pool` is reached) lets the worker at hand
//! carry on and retries creation on a timer; meanwhile its mayday timer
//! calls the rescuer of every `mem_reclaim` workqueue with items waiting
//! there. A rescuer runs one workqueue's items on any pool, one at a time,
//! never counting as a running worker. The protocol is written out in the
//! `rescuer` module.
//!
//! ## Non-reentrancy
//! As in the kernel, an item is never executed by two workers at once as
//! long as it is always queued on the same workqueue: requeued while
//! running, it is queued on the pool where it runs and executed after the
//! running instance. Queueing one item on two workqueues at once gives no
//! such guarantee (kernel documentation, "non-reentrance conditions").

#![warn(missing_docs)]
// `unsafe` is allowed only in the std platform's OS calls
// (`platform/std_platform.rs`: CPU id and affinity masks).
#![deny(unsafe_code)]

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod blocking;
mod cancel;
mod config;
mod default;
mod delayed;
mod error;
mod flush;
mod hotplug;
mod inbox;
mod job;
mod lifecycle;
pub mod machine;
mod manager;
mod monitor;
pub use watch::{
    MonitorPass, FLOOD_POLL_MAX, MONITOR_POLL_MAX, MONITOR_POLL_MIN, PROBE_DETECTED_MAX, PROBE_RUNNING_MAX,
};
#[cfg(any(feature = "loom", feature = "shuttle"))]
pub mod model_check;
pub mod plain;
mod platform;
mod pool;
mod pool_workqueue;
mod queue;
mod report;
mod rescuer;
mod seeded;
mod shared;
mod stats;
mod system;
mod timer;
mod trace;
mod wakers;
mod watch;
mod watchdog;
mod work;
mod worker;
mod workqueue;

pub use blocking::{blocking, blocking_on, current_work, current_work_on, sleep};
pub use cancel::CancelWorkSync;
pub use config::{
    Config, CREATE_COOLDOWN, DEFAULT_CPU_HOG_AFTER, DEFAULT_DETECT_BLOCKING_AFTER, DEFAULT_IDLE_SPINS,
    DEFAULT_MAX_ACTIVE, DEFAULT_MAX_WORKERS_PER_POOL, DEFAULT_WATCHDOG_THRESHOLD, IDLE_WORKER_TIMEOUT,
    MAX_ACTIVE_LIMIT, MAX_CPUS, MAX_DETECT_BLOCKING_AFTER, MAX_IDLE_SPINS, MAX_MONITOR_THRESHOLD, MAX_NAME_LEN,
    MAX_RESCUER_BATCH, MAX_WATCHDOG_THRESHOLD, MAX_WORKERS_PER_POOL, MAYDAY_INITIAL_TIMEOUT, MAYDAY_INTERVAL,
    MIN_CPU_SET_POLL_INTERVAL, MIN_TIMER_INTERVAL, RESCUER_BATCH, UNBOUND_UNMANAGED,
};
pub use default::{
    default_system, system_highpri_wq, system_long_wq, system_unbound_wq, system_wq, try_default_system, DefaultSystem,
};
pub use delayed::DelayedWork;
pub use error::{BuildError, QueueError, WaitError};
pub use flush::{FlushWork, FlushWorkqueue};
pub use hotplug::HotplugError;
pub use job::{JobError, JobHandle};
pub use lifecycle::DrainWorkqueue;
pub use machine::policy;
pub use machine::stats::PwqStats;
pub use platform::{Platform, SpawnError, Std, ThreadBody, ThreadContext, ThreadProbe, ThreadSample};
pub use report::{Activity, HogReport, Report, StallReport, WorkerReport};
pub use seeded::SeededBug;
pub use shared::{PanicReport, Work};
pub use stats::WorkqueueStats;
pub use system::{PoolStats, System, SystemBuilder};
pub use work::WorkBusy;
pub use workqueue::{Workqueue, WorkqueueBuilder};
