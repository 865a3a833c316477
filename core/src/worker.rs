//! The worker loop (kernel `worker_thread`) and the execution of one item
//! (kernel `process_one_work`).
//!
//! # One pass of a worker
//!
//! 1. Wake up and leave the idle list (still `PREP`: not counted running).
//! 2. If no work waits, or somebody already runs, go back to idle
//!    (`need_more_worker`). This is what keeps about one worker running per
//!    CPU: a woken worker that finds a runner does nothing.
//! 3. If no idle worker would be left to replace this one when it blocks
//!    (`may_start_working`), become the manager and create one first. If
//!    creation fails, retry it on a timer, and work anyway if work still
//!    waits with nobody running (the lock was dropped meanwhile).
//! 4. Clear `PREP` (count as running) and process items while
//!    `keep_working`: work waits and at most this worker runs. Items that
//!    collided with a worker already running them were moved to that
//!    worker's scheduled list and are run by it after its current item.
//! 5. Enter idle (most recently idle first) and wait for a wakeup.

use crate::blocking::WorkerContext;
use crate::config::seeded;
use crate::machine::worker::WorkerStep;
use crate::manager;
use crate::platform::{contain, Arc, Platform};
use crate::pool::WorkerId;
use crate::seeded::SeededBug;
use crate::shared::{Entry, Location, Pool, PoolLocked};
use core::sync::atomic::Ordering;

type Guard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;

/// Body of a worker thread.
pub(crate) fn worker_main<P: Platform>(pool: Arc<Pool<P>>, id: WorkerId) {
    let ctx = Arc::new(WorkerContext::new(pool.clone(), id));
    P::set_thread_context(Some(ctx.clone()));
    let mut guard = pool.locked.lock();
    // The manager registers us once the spawn succeeded.
    loop {
        match (guard.state.workers.get(&id), guard.threads.get(&id)) {
            (Some(worker), _) if worker.registered => break,
            (Some(_), Some(thread)) => {
                let wakeup = thread.wakeup.clone();
                guard = wakeup.wait(guard);
            }
            _ => return,
        }
    }
    let mut pinned_generation = 0;
    loop {
        // Step 1.
        if guard.state.workers.get(&id).is_none_or(|w| w.die) {
            break;
        }
        if pool.shared.config.pin_workers && pool.cpu.is_some() && guard.state.pin_generation != pinned_generation {
            pinned_generation = guard.state.pin_generation;
            let target = pool.pin_target(guard.state.disassociated);
            drop(guard);
            pool.shared.platform.pin_current_thread(&target);
            guard = pool.locked.lock();
            continue;
        }
        // Steps 2-4 (machine rules 6-8).
        loop {
            match guard.state.worker_decide(id) {
                WorkerStep::Idle => break,
                WorkerStep::Manage => {
                    let (g, created) = manager::manage(&pool, guard, id);
                    guard = g;
                    // The pool lock was dropped while creating: ask again
                    // whether work waits with nobody running (rule 7).
                    if created {
                        continue;
                    }
                    if !guard.state.worker_recheck() {
                        break;
                    }
                }
                WorkerStep::Work => {}
            }
            guard.state.worker_start_working(id);
            let mut first = true;
            while let Some(entry) = guard.state.worker_next_item(first) {
                first = false;
                guard = process_one_work(&pool, &ctx, guard, entry, false);
                guard = process_scheduled(&pool, &ctx, guard);
            }
            guard.state.worker_stop_working(id);
            break;
        }
        // Step 5.
        if guard.state.workers.get(&id).is_none_or(|w| w.die) {
            break;
        }
        if guard.worker_enter_idle(id, pool.shared.platform.now()) {
            manager::arm_idle_timer(&pool);
        }
        // Idle: yield a bounded number of times before parking, so that a
        // steady stream of items does not pay a park/unpark per item. The
        // worker is on the idle list throughout; only the wait differs.
        let mut spins = pool.shared.config.idle_spins;
        loop {
            let locked = &mut *guard;
            let (Some(worker), Some(thread)) = (locked.state.workers.get_mut(&id), locked.threads.get_mut(&id)) else {
                break;
            };
            if worker.woken || worker.die {
                worker.woken = false;
                thread.wake_hint.store(0, Ordering::Relaxed);
                break;
            }
            if spins > 0 {
                let hint = thread.wake_hint.clone();
                drop(guard);
                while spins > 0 && hint.load(Ordering::Acquire) == 0 {
                    spins -= 1;
                    P::yield_now();
                }
                guard = pool.locked.lock();
                continue;
            }
            thread.parked = true;
            let wakeup = thread.wakeup.clone();
            guard = wakeup.wait(guard);
            if let Some(thread) = guard.threads.get_mut(&id) {
                thread.parked = false;
            }
        }
    }
    // Retired: whoever set `die` already took us off the idle list and out
    // of `nr_workers`. Leave our handle to be joined.
    guard.state.workers.remove(&id);
    if let Some(handle) = guard.threads.remove(&id).and_then(|thread| thread.handle) {
        guard.zombies.push(handle);
    }
    pool.exited.notify_all();
    drop(guard);
    P::set_thread_context(None);
}

/// Runs the items deferred to this worker (non-reentrancy collisions).
pub(crate) fn process_scheduled<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    ctx: &WorkerContext<P>,
    mut guard: Guard<'a, P>,
) -> Guard<'a, P> {
    while let Some(entry) = guard.state.next_scheduled(ctx.id) {
        guard = process_one_work(pool, ctx, guard, entry, true);
    }
    guard
}

/// Executes one instance. Called and returns with the pool lock held; the
/// lock is dropped while the item's function runs.
pub(crate) fn process_one_work<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    ctx: &WorkerContext<P>,
    mut guard: Guard<'a, P>,
    entry: Entry<P>,
    scheduled: bool,
) -> Guard<'a, P> {
    let key = entry.work.key();
    let Some(wq) = guard.pwqs.get(&entry.wq).map(|pwq| pwq.wq.clone()) else {
        debug_assert!(false, "item queued on a pool-workqueue that does not exist");
        return guard;
    };
    // Non-reentrancy (machine rule 9): another worker of this pool runs
    // this item; it will run this instance after the current one.
    let (_, entry) = guard.state.item_begin(ctx.id, entry, wq.flags.cpu_intensive);
    let worker = ctx.id;
    let Some(entry) = entry else {
        guard.tracer.record(|pool| crate::trace::Event::Deferred { pool, worker, item: key });
        return guard;
    };
    guard.tracer.record(|pool| crate::trace::Event::Started { pool, worker, item: key, scheduled });
    let late_clear = seeded(&pool.shared.config, SeededBug::ClearPendingAfterRun);
    // An unbound or CPU-intensive worker does not count as running: if more
    // items wait, another worker must take them.
    guard.kick();
    {
        // Clear PENDING before the function runs, so that queueing from now
        // on (also from the function itself) yields one more execution.
        let mut state = entry.work.inner.state.lock();
        debug_assert!(
            matches!(&state.location, Location::Queued { pool: p } if Arc::ptr_eq(p, pool)),
            "executing an item that is not queued on this pool"
        );
        state.start(pool.clone(), late_clear);
    }
    *ctx.current.lock() = Some((entry.work.clone(), entry.wq));
    drop(guard);

    if let Some(message) = contain(|| entry.work.call()) {
        wq.record_panic(message);
    }

    *ctx.current.lock() = None;
    // Finish the instance on the item itself before re-taking the pool
    // lock, and drop our reference outside it (it may be the last one, and
    // a flush of the workqueue must return after its `Drop`). Until `busy`
    // is updated below, a requeue still sees the item as running here and
    // queues it on this pool, and its active slot is still taken: as the
    // spec has it, the instance finishes (S3) in the pool section below.
    // Only `Work::busy` may say idle a moment earlier.
    {
        let mut state = entry.work.inner.state.lock();
        if state.finish(late_clear) {
            entry.work.inner.changed.notify_all();
        }
    }
    let Entry { work, wq: wq_id, color } = entry;
    // The last reference drops the item's captured state: user code, which
    // may panic; this worker must survive it.
    if let Some(message) = contain(move || drop(work)) {
        wq.record_panic(format!("in the Drop of a work item's captured state: {message}"));
    }
    drop(wq);
    let mut guard = pool.locked.lock();
    guard.tracer.record(|pool| crate::trace::Event::Finished { pool, worker, item: key });
    guard.state.item_end(ctx.id, key);
    guard.pwq_dec_nr_in_flight(wq_id, color, true);
    guard
}
