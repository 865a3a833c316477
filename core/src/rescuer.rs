//! Forward progress without new threads: maydays and rescuers (kernel
//! `WQ_MEM_RECLAIM`, `send_mayday`, `pool_mayday_timeout`,
//! `rescuer_thread`).
//!
//! A `mem_reclaim` workqueue owns one rescuer thread, created with the
//! workqueue, so that its items can run even when no worker can be created.
//!
//! # Protocol
//!
//! 1. **Starvation.** A worker that starts working without an idle spare
//!    tries to create one; if that fails (the platform refuses the thread,
//!    or the pool is at `max_workers_per_pool`) it works anyway and arms the
//!    pool's mayday timer (first after `mayday_initial_timeout`).
//! 2. **Mayday.** When the timer fires and the pool needs a worker it
//!    cannot have (work waits, nobody runs, nobody idles:
//!    `need_to_create_worker`), every pool-workqueue with an item on the
//!    worklist whose workqueue has a rescuer is put on that rescuer's
//!    mayday list, at most once, and the rescuer is woken. The timer
//!    re-arms every `mayday_interval` while the pool has no idle worker.
//! 3. **Rescue.** The rescuer pops a pool-workqueue, attaches to its pool
//!    (a worker slot flagged `WORKER_RESCUER`: never counted in
//!    `nr_running` or `nr_workers`, never idle) and, while the pool still
//!    needs a worker, takes that pool-workqueue's first item off the
//!    worklist and runs it (one by one, so that a regular worker that
//!    becomes free takes the rest). After `rescuer_batch` items it puts the
//!    pool-workqueue back at the tail of its list if it still needs rescue,
//!    and turns to the next one.
//! 4. **Leaving.** Completions of rescued items may activate inactive
//!    items without waking anyone (a regular worker that completes an item
//!    reaches them through `keep_working`; the rescuer does not). So the
//!    rescuer wakes an idle worker if work waits and nobody runs, then
//!    detaches.
//! 5. **Stop.** `destroy` drains the workqueue, takes its pool-workqueues
//!    off the pools, then stops the rescuer, which first empties its mayday
//!    list (each entry holds a reference to the workqueue, like the
//!    kernel's `get_pwq`) and then exits; `destroy` joins it.
//!
//! Lock order: pool lock → mayday lock (maydays are sent under the pool
//! lock); the rescuer never holds the mayday lock while it takes a pool
//! lock.

use crate::blocking::WorkerContext;
use crate::config::Config;
use crate::machine::mayday::{MaydayList, RescuerStep};
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform};
use crate::pool::{WorkerState, WORKER_PREP, WORKER_RESCUER};
use crate::shared::{Mayday, Pool, PoolLocked, Rescuer, WqShared};
use crate::worker::{process_one_work, process_scheduled};
use core::sync::atomic::Ordering;

impl<P: Platform> Rescuer<P> {
    /// Creates the rescuer of workqueue `name` and starts its thread.
    pub(crate) fn start(platform: &P, config: &Config, name: &str) -> Result<Arc<Self>, crate::SpawnError> {
        let rescuer: Arc<Self> = Arc::new(Rescuer {
            maydays: Mutex::new(MaydayList::new(config.seeded_bits())),
            wake: Condvar::new(),
            thread: Mutex::new(None),
            maydays_sent: AtomicUsize::new(0),
            rescued: AtomicUsize::new(0),
            exited: AtomicUsize::new(0),
        });
        let body = rescuer.clone();
        let thread = format!("{}/R-{name}", config.thread_name_prefix);
        let handle = crate::platform::spawn_engine_thread(platform, thread, move || rescuer_main(body))?;
        let mut thread = rescuer.thread.lock();
        *thread = Some(handle);
        drop(thread);
        Ok(rescuer)
    }
}

/// Body of the rescuer thread: rescue what the list asks for; exit on stop
/// once the list is empty.
fn rescuer_main<P: Platform>(rescuer: Arc<Rescuer<P>>) {
    let mut maydays = rescuer.maydays.lock();
    loop {
        match maydays.next_step() {
            RescuerStep::Rescue(mayday) => {
                let wq = mayday.wq.id;
                mayday.pool.tracer.record(|pool| crate::trace::Event::RescuerPop { wq, pool });
                drop(maydays);
                rescue(&rescuer, &mayday);
                // Dropped outside every lock: it may be the last reference
                // to the workqueue.
                drop(mayday);
                maydays = rescuer.maydays.lock();
            }
            RescuerStep::Wait => maydays = rescuer.wake.wait(maydays),
            RescuerStep::Exit => {
                // Nothing of the engine's runs on this thread after this
                // (see `SystemShared::hand_over`).
                rescuer.exited.store(1, Ordering::Release);
                return;
            }
        }
    }
}

type Guard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;

/// Whether the rescuer should take another item of `wq` on this pool: the
/// pool-workqueue still exists and has active items, and the pool needs a
/// worker it does not have (kernel `assign_rescuer_work`'s test).
fn needs_rescue<P: Platform>(guard: &PoolLocked<P>, wq: &WqShared<P>) -> bool {
    guard.machine.state.needs_rescue(guard.machine.pwq(wq.id).map_or(0, |pwq| pwq.nr_active()))
}

/// One turn on one pool-workqueue: attach, run items while needed (at most
/// a batch), re-queue the mayday if unfinished, wake a worker, detach.
fn rescue<P: Platform>(rescuer: &Rescuer<P>, mayday: &Mayday<P>) {
    let (pool, wq) = (&mayday.pool, &mayday.wq);
    let config = &pool.shared.config;
    let mut guard = pool.locked.lock();
    let ctx = attach(pool, &mut guard);
    let (wq_id, worker) = (wq.id, ctx.id);
    guard.tracer.record(|pool| crate::trace::Event::RescuerAttach { wq: wq_id, pool, worker });
    let mut count = 0;
    while needs_rescue(&guard, wq) {
        let Some(entry) = guard.machine.state.take_for_rescue(wq.id) else {
            break;
        };
        rescuer.rescued.fetch_add(1, Ordering::Relaxed);
        guard = process_one_work(pool, &ctx, guard, entry, false);
        guard = process_scheduled(pool, &ctx, guard);
        count += 1;
        if count >= config.rescuer_batch {
            if needs_rescue(&guard, wq) && guard.machine.state.worklist.iter().any(|e| e.wq == wq.id) {
                rescuer.send(pool, wq, false);
            }
            break;
        }
    }
    if let Some(worker) = guard.machine.state.rescuer_leave() {
        guard.wake(worker);
    }
    detach(&mut guard, &ctx);
    guard.tracer.record(|pool| crate::trace::Event::RescuerDetach { wq: wq_id, pool });
    drop(guard);
    P::set_thread_context(None);
}

/// Joins the rescuer to `pool` as a worker that never counts as running.
fn attach<P: Platform>(pool: &Arc<Pool<P>>, guard: &mut Guard<'_, P>) -> Arc<WorkerContext<P>> {
    // No thread side: a rescuer is never idle, so never woken by the pool.
    let id = guard.machine.state.next_id();
    let flags = WORKER_PREP | WORKER_RESCUER | pool.permanent_flags();
    guard.machine.state.workers.insert(id, WorkerState::new(flags, pool.shared.platform.now(), true));
    let ctx = Arc::new(WorkerContext::new(pool.clone(), id));
    P::set_thread_context(Some(ctx.clone()));
    ctx
}

/// Takes the rescuer's slot off the pool. Nothing can be deferred to it any
/// more: its last item's `busy` entry went with that item's completion.
fn detach<P: Platform>(guard: &mut PoolLocked<P>, ctx: &WorkerContext<P>) {
    let slot = guard.machine.state.workers.remove(&ctx.id);
    debug_assert!(slot.is_some_and(|s| s.scheduled.is_empty()), "rescuer left a pool with deferred items");
}
