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
use crate::machine::rescue::Rescue;
use crate::machine::trace::StepId;
use crate::platform::{Arc, AtomicUsize, Condvar, Mutex, Platform};
use crate::shared::{Mayday, Rescuer};
use crate::worker::execute;
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

/// One turn on one pool-workqueue (machine `rescue.rs`, RT1-RT3): attach,
/// run what the machine hands over (at most a batch taken off the
/// worklist; it re-queues the mayday if unfinished), wake a worker and
/// detach. A rescuer has no thread side on the pool: it is never idle, so
/// never woken by it.
fn rescue<P: Platform>(rescuer: &Rescuer<P>, mayday: &Mayday<P>) {
    let (pool, wq) = (&mayday.pool, &mayday.wq);
    let batch = pool.shared.config.rescuer_batch;
    let mut guard = pool.lock();
    let id = guard.machine.rescuer_attach(pool.shared.platform.now());
    let ctx = Arc::new(WorkerContext::new(pool.clone(), id));
    P::set_thread_context(Some(ctx.clone()));
    let _registered = crate::blocking::register::<P>();
    let wq_id = wq.id;
    guard.begin(StepId::RescuerAttach);
    guard.tracer.record(|pool| crate::trace::Event::RescuerAttach { wq: wq_id, pool, worker: id });
    let mut taken = 0;
    // The workqueue of the item last run (`execute`); dropped below under
    // the lock held since its instance ended: never the last handle.
    let mut held = None;
    loop {
        let before = taken;
        let stepped = guard.step(|m, fx| m.rescuer_next(id, wq_id, &mut taken, batch, fx));
        rescuer.rescued.fetch_add(taken - before, Ordering::Relaxed);
        crate::manager::after_step(pool, &guard, stepped.later);
        let Rescue::Run { entry, scheduled } = stepped.result else { break };
        let (key, entry_wq, color) = (entry.work.key(), entry.wq, entry.color);
        guard = execute(pool, &ctx, guard, entry, scheduled, StepId::RescuerFinished, &mut held);
        guard.step_after(held.as_ref(), |m, fx| m.end(id, key, entry_wq, color, fx));
    }
    guard.tracer.record(|pool| crate::trace::Event::RescuerDetach { wq: wq_id, pool });
    drop(guard);
    P::set_thread_context(None);
}
