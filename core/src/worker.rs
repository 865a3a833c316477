//! The worker loop (kernel `worker_thread`) and the execution of one item
//! (kernel `process_one_work`).
//!
//! A worker's pass is decided by the machine, step by step
//! (`machine/pass.rs`: woken, managed, finished; each ends in
//! [`Pass::Run`], [`Pass::Manage`], [`Pass::Idle`] or [`Pass::Exit`]).
//! This file executes it: it takes the pool lock, runs the step (which
//! carries out its effects: `pool_workqueue.rs`), and does what the step
//! ended in: execute the item's function outside the lock, create a
//! worker as manager (`manager.rs`), wait on the idle list (yielding a
//! bounded number of times before parking), or exit.

use crate::blocking::WorkerContext;
use crate::config::seeded;
use crate::machine::pass::Pass;
use crate::machine::trace::StepId;
use crate::manager;
use crate::platform::{contain, Arc, Platform};
use crate::pool::WorkerId;
use crate::seeded::SeededBug;
use crate::shared::{Entry, Location, Pool, PoolLocked, WqShared};
use crate::wakers::PendingWakes;
use core::sync::atomic::Ordering;

type Guard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;

/// Body of a worker thread.
pub(crate) fn worker_main<P: Platform>(pool: Arc<Pool<P>>, id: WorkerId) {
    let ctx = Arc::new(WorkerContext::new_watched(pool.clone(), id));
    P::set_thread_context(Some(ctx.clone()));
    let _registered = crate::blocking::register::<P>();
    let mut guard = pool.lock();
    // The manager registers us once the spawn succeeded.
    loop {
        match (guard.machine.pool().worker(id), guard.threads.get(&id)) {
            (Some(worker), _) if worker.registered() => break,
            (Some(_), Some(thread)) => {
                let wakeup = thread.wakeup.clone();
                guard = wakeup.wait(guard);
            }
            _ => {
                drop(guard);
                ctx.unwatch();
                P::set_thread_context(None);
                return;
            }
        }
    }
    let mut pinned_generation = 0;
    // The workqueue of the item this worker last ran (`execute`).
    let mut held = None;
    let now = || pool.shared.platform.now();
    'pass: loop {
        // Step 1 (the pass is written out in `machine/pass.rs`).
        if guard.machine.pool().worker(id).is_none_or(|w| w.die()) {
            break;
        }
        if pool.shared.config.pin_workers
            && pool.cpu.is_some()
            && guard.machine.pool().pin_generation() != pinned_generation
        {
            pinned_generation = guard.machine.pool().pin_generation();
            let target = pool.pin_target(guard.machine.pool().disassociated());
            drop(guard);
            pool.shared.platform.pin_current_thread(&target);
            guard = pool.lock();
            continue;
        }
        guard.begin(StepId::Woken);
        let mut stepped = guard.step(|m, fx| m.worker_woken(id, now, fx));
        loop {
            manager::after_step(&pool, &guard, core::mem::take(&mut stepped.later));
            stepped = match stepped.result {
                Pass::Run { entry, scheduled } => {
                    let (key, wq, color) = (entry.work.key(), entry.wq, entry.color);
                    guard = execute(&pool, &ctx, guard, entry, scheduled, StepId::Finished, &mut held);
                    guard.step_after(held.as_ref(), |m, fx| m.worker_finished(id, key, wq, color, now, fx))
                }
                Pass::Manage => {
                    let (g, created) = manager::manage(&pool, guard, id);
                    guard = g;
                    guard.step(|m, fx| m.worker_managed(id, created, now, fx))
                }
                // Under the lock held since the step: never the last handle.
                Pass::Idle => {
                    held = None;
                    break;
                }
                Pass::Exit => break 'pass,
            };
        }
        // Idle: yield a bounded number of times before parking, so that a
        // steady stream of items does not pay a park/unpark per item. The
        // worker is on the idle list throughout; only the wait differs.
        let mut spins = pool.shared.config.idle_spins;
        loop {
            let locked = &mut *guard;
            let Some(thread) = locked.threads.get_mut(&id) else {
                break;
            };
            if locked.machine.take_wakeup(id) {
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
                guard = pool.lock();
                continue;
            }
            thread.parked = true;
            let wakeup = thread.wakeup.clone();
            guard = wakeup.wait(guard);
            guard.splice();
            if let Some(thread) = guard.threads.get_mut(&id) {
                thread.parked = false;
            }
        }
    }
    // Retired: whoever set `die` already took us off the idle list and out
    // of `nr_workers`. Leave our handle to be joined.
    guard.machine.worker_exit(id);
    guard.publish_load();
    if let Some(handle) = guard.threads.remove(&id).and_then(|thread| thread.handle) {
        guard.zombies.push(handle);
    }
    pool.exited.notify_all();
    drop(guard);
    ctx.unwatch();
    P::set_thread_context(None);
}

/// Executes an instance the machine gave executor `ctx` (rule M9 recorded
/// it as executed there): the item's own section marks it started, the
/// function runs outside every lock, the item's section marks it finished.
/// Called and returns with the pool lock held; the caller then ends the
/// instance in the pool's section (`end`, or `worker_finished`) with
/// `held`, the item's workqueue, which this leaves there.
///
/// `held` is the executor's handle on the workqueue it last ran an item
/// of: reused when the next item is of the same workqueue (no reference
/// count touched on the hot path), replaced outside the pool lock when
/// not, so the old handle never drops under the lock as the last one. The
/// caller may drop it under the lock it has held since the step that ended
/// the instance: that workqueue's pool-workqueue, which only a step under
/// this lock removes, still holds it.
pub(crate) fn execute<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    ctx: &WorkerContext<P>,
    guard: Guard<'a, P>,
    entry: Entry<P>,
    scheduled: bool,
    then: StepId,
    held: &mut Option<Arc<WqShared<P>>>,
) -> Guard<'a, P> {
    let (key, worker) = (entry.work.key(), ctx.id);
    // Moved out and back in: no reference count touched when reused.
    let (wq, stale) = match held.take() {
        Some(wq) if wq.id == entry.wq => (wq, None),
        stale => match guard.wqs.get(&entry.wq) {
            Some(wq) => (wq.clone(), stale),
            None => {
                debug_assert!(false, "item queued on a pool-workqueue that does not exist");
                *held = stale;
                return guard;
            }
        },
    };
    guard.tracer.record(|pool| crate::trace::Event::Started { pool, worker, item: key, scheduled });
    let late_clear = seeded(&pool.shared.config, SeededBug::ClearPendingAfterRun);
    {
        // Clear PENDING before the function runs, so that queueing from now
        // on (also from the function itself) yields one more execution.
        let mut state = entry.work.inner.state.lock();
        debug_assert!(
            matches!(state.location(), Location::Queued { pool: p } if Arc::ptr_eq(p, pool)),
            "executing an item that is not queued on this pool"
        );
        state.start(late_clear);
        entry.work.inner.queued_hint.store(0, Ordering::Relaxed);
    }
    // The run the blocking monitor's observations will name (rule M32).
    let run = ctx.watch.as_ref().and_then(|_| guard.machine.pool().worker(worker)).map(|w| w.run());
    drop(guard);
    // The item's run begins for the monitor before any user code of it
    // (the replaced handle's `Drop` below included) can block.
    if let (Some(slot), Some(run)) = (&ctx.watch, run) {
        slot.begin(run, &pool.shared.monitor);
    }
    // Outside the lock: the replaced handle may be the last.
    drop(stale);
    // Read only by this thread (`current_work`, the chained-queueing and
    // self-wait checks): set outside the pool lock.
    *ctx.current.lock() = Some((entry.work.clone(), entry.wq));

    if let Some(message) = contain(|| entry.work.call()) {
        wq.record_panic(message);
    }

    *ctx.current.lock() = None;
    // Finish the instance on the item itself before re-taking the pool
    // lock, and drop our reference outside it (it may be the last one, and
    // a flush of the workqueue must return after its `Drop`). Until `busy`
    // is updated in the pool's section, a requeue still sees the item as
    // running here and queues it on this pool, and its active slot is
    // still taken: as the spec has it, the instance finishes (S3) in the
    // pool section. Only `Work::busy` may say idle a moment earlier.
    let wakes = {
        let mut state = entry.work.inner.state.lock();
        if state.finish(late_clear) {
            entry.work.notify_waiters()
        } else {
            PendingWakes::none()
        }
    };
    // Async waits on the item (`flush_async`, `cancel_sync_async`): their
    // wakers are the caller's code, woken here with no lock held.
    if !wakes.is_empty() {
        if let Some(message) = wakes.wake() {
            wq.record_panic(format!("in the waker of an async wait: {message}"));
        }
    }
    // A one-shot job publishes its outcome now, once a panic is counted and
    // the item no longer runs (its waker is the caller's code: contained).
    if entry.work.has_outcome() {
        if let Some(message) = contain(|| entry.work.finished()) {
            wq.record_panic(format!("in the waker of a job's handle: {message}"));
        }
    }
    let Entry { work, .. } = entry;
    // The last reference drops the item's captured state: user code, which
    // may panic; this worker must survive it.
    if let Some(message) = contain(move || drop(work)) {
        wq.record_panic(format!("in the Drop of a work item's captured state: {message}"));
    }
    // The item's run ends for the monitor after the last of its user code
    // (wakers, the captured state's `Drop`).
    if let Some(slot) = &ctx.watch {
        slot.end();
    }
    let mut guard = pool.locked.lock();
    guard.section_step.set(None);
    guard.splice_when_idle(wq.id);
    guard.begin(then);
    guard.tracer.record(|pool| crate::trace::Event::Finished { pool, worker, item: key });
    *held = Some(wq);
    guard
}
