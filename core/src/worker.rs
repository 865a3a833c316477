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
//!    creation fails, work anyway and retry creation on a timer.
//! 4. Clear `PREP` (count as running) and process items while
//!    `keep_working`: work waits and at most this worker runs. Items that
//!    collided with a worker already running them were moved to that
//!    worker's scheduled list and are run by it after its current item.
//! 5. Enter idle (most recently idle first) and wait for a wakeup.

use crate::blocking::WorkerContext;
use crate::config::seeded;
use crate::machine::policy;
use crate::manager;
use crate::platform::{contain, Arc, Mutex, Platform};
use crate::pool::{Current, Pool, PoolLocked, WorkerId, WORKER_CPU_INTENSIVE, WORKER_PREP};
use crate::pool_workqueue::Entry;
use crate::seeded::SeededBug;
use crate::work::Location;
use core::sync::atomic::Ordering;

type Guard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;

/// Body of a worker thread.
pub(crate) fn worker_main<P: Platform>(pool: Arc<Pool<P>>, id: WorkerId) {
    let ctx = Arc::new(WorkerContext { pool: pool.clone(), id, current: Mutex::new(None) });
    P::set_thread_context(Some(ctx.clone()));
    let mut guard = pool.locked.lock();
    // The manager registers us once the spawn succeeded.
    loop {
        match guard.workers.get(&id) {
            None => return,
            Some(slot) if slot.registered => break,
            Some(slot) => {
                let wakeup = slot.wakeup.clone();
                guard = wakeup.wait(guard);
            }
        }
    }
    let mut pinned_generation = 0;
    loop {
        // Step 1.
        if guard.workers.get(&id).is_none_or(|w| w.die) {
            break;
        }
        if pool.shared.config.pin_workers && pool.cpu.is_some() && guard.pin_generation != pinned_generation {
            pinned_generation = guard.pin_generation;
            let target = crate::hotplug::pin_target(&pool, guard.disassociated);
            drop(guard);
            pool.shared.platform.pin_current_thread(&target);
            guard = pool.locked.lock();
            continue;
        }
        guard.worker_leave_idle(id);
        // Steps 2-4.
        loop {
            if !policy::need_more_worker(guard.counts()) {
                break;
            }
            let no_spare = seeded(&pool.shared.config, SeededBug::NoSpareWorker);
            if !policy::may_start_working(guard.counts()) && !no_spare {
                let (g, managed) = manager::manage_workers(&pool, guard);
                guard = g;
                if managed {
                    continue;
                }
            }
            guard.update_worker(id, |w| w.flags &= !WORKER_PREP);
            while let Some(entry) = guard.worklist.pop_front() {
                guard = process_one_work(&pool, &ctx, guard, entry);
                guard = process_scheduled(&pool, &ctx, guard);
                let ignore_runners = seeded(&pool.shared.config, SeededBug::KeepWorkingIgnoresRunners);
                let keep = policy::keep_working(guard.counts()) || (ignore_runners && !guard.worklist.is_empty());
                if !keep {
                    break;
                }
            }
            guard.update_worker(id, |w| w.flags |= WORKER_PREP);
            break;
        }
        // Step 5.
        if guard.workers.get(&id).is_none_or(|w| w.die) {
            break;
        }
        if guard.worker_enter_idle(id, pool.shared.platform.now()) {
            manager::arm_idle_timer(&pool);
        }
        // Idle: yield a bounded number of times before parking, so that a
        // steady stream of items does not pay a park/unpark per item. The
        // worker is on the idle list throughout; only the wait differs.
        let mut spins = pool.shared.config.idle_spins;
        while let Some(slot) = guard.workers.get_mut(&id) {
            if slot.woken || slot.die {
                slot.woken = false;
                slot.wake_hint.store(0, Ordering::Relaxed);
                break;
            }
            if spins > 0 {
                let hint = slot.wake_hint.clone();
                drop(guard);
                while spins > 0 && hint.load(Ordering::Acquire) == 0 {
                    spins -= 1;
                    P::yield_now();
                }
                guard = pool.locked.lock();
                continue;
            }
            slot.parked = true;
            let wakeup = slot.wakeup.clone();
            guard = wakeup.wait(guard);
            if let Some(slot) = guard.workers.get_mut(&id) {
                slot.parked = false;
            }
        }
    }
    // Retired: whoever set `die` already took us off the idle list and out
    // of `nr_workers`. Leave our handle to be joined.
    if let Some(slot) = guard.workers.remove(&id) {
        if let Some(handle) = slot.handle {
            guard.zombies.push(handle);
        }
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
    loop {
        let next = guard.workers.get_mut(&ctx.id).and_then(|w| w.scheduled.pop_front());
        let Some(entry) = next else { return guard };
        guard = process_one_work(pool, ctx, guard, entry);
    }
}

/// Executes one instance. Called and returns with the pool lock held; the
/// lock is dropped while the item's function runs.
pub(crate) fn process_one_work<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    ctx: &WorkerContext<P>,
    mut guard: Guard<'a, P>,
    entry: Entry<P>,
) -> Guard<'a, P> {
    let key = entry.work.key();
    // Non-reentrancy: another worker of this pool runs this item; it will
    // run this instance after the current one.
    let collision_check = !seeded(&pool.shared.config, SeededBug::SkipCollisionCheck);
    if let Some(&other) = guard.busy.get(&key).filter(|_| collision_check) {
        if other != ctx.id {
            if let Some(slot) = guard.workers.get_mut(&other) {
                slot.scheduled.push_back(entry);
                return guard;
            }
        }
    }
    let Some(wq) = guard.pwqs.get(&entry.wq).map(|pwq| pwq.wq.clone()) else {
        debug_assert!(false, "item queued on a pool-workqueue that does not exist");
        return guard;
    };
    if collision_check || guard.busy.get(&key).is_none() {
        guard.busy.insert(key, ctx.id);
    }
    let cpu_intensive = wq.flags.cpu_intensive;
    let late_clear = seeded(&pool.shared.config, SeededBug::ClearPendingAfterRun);
    guard.update_worker(ctx.id, |w| {
        w.current = Some(Current { wq: entry.wq });
        if cpu_intensive {
            w.flags |= WORKER_CPU_INTENSIVE;
        }
    });
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
        state.location = if late_clear { Location::Owned } else { Location::Off };
        state.last_pool = Some(pool.clone());
        state.running = Some(state.queued);
    }
    *ctx.current.lock() = Some((entry.work.clone(), entry.wq));
    drop(guard);

    if let Some(message) = contain(|| entry.work.call()) {
        wq.record_panic(message);
    }

    *ctx.current.lock() = None;
    // Finish the instance on the item itself before re-taking the pool
    // lock, and drop our reference outside it (it may be the last one).
    // Until `busy` is updated below, a requeue still sees the item as
    // running here and queues it on this pool: conservative, never
    // reentrant.
    {
        let mut state = entry.work.inner.state.lock();
        if let Some(instance) = state.running.take() {
            state.finished = state.finished.max(instance);
        }
        if late_clear {
            state.location = Location::Off;
        }
        if state.waiters > 0 {
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
    guard.update_worker(ctx.id, |w| {
        w.current = None;
        w.flags &= !WORKER_CPU_INTENSIVE;
    });
    guard.busy.remove(&key);
    guard.pwq_dec_nr_in_flight(wq_id, color, true);
    guard
}
