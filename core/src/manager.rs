//! The manager role: creating workers and retiring idle ones.
//!
//! At most one manager per pool (`manager_active`). A worker becomes the
//! manager when it is about to start working and no idle worker would be
//! left to replace it (`may_start_working` fails); it creates one spare.
//! Creation never happens on the queueing path.
//!
//! A failed spawn is never fatal and never drops work: the manager gives
//! up for now and works itself, and a create-retry timer tries again after
//! the cooldown for as long as the pool has no spare. (The kernel's manager
//! instead keeps retrying and does not work meanwhile; here the worker at
//! hand runs the items, which is never worse.) Any failed creation, also
//! one refused by `max_workers_per_pool`, arms the mayday timer, which
//! summons the rescuers of `mem_reclaim` workqueues if the pool stays
//! without a worker (`rescuer.rs`). Idle workers beyond
//! `too_many_workers` are retired by the idle-cull timer once they have
//! been idle for the idle timeout, coldest first.

use crate::machine::create::Creating;
use crate::machine::trace::StepId;
use crate::platform::{spawn_engine_thread, Arc, Platform, SpawnError};
use crate::pool::WorkerId;
use crate::pool_workqueue::Later;
use crate::shared::{Pool, PoolLocked, WorkerThread};
use crate::timer::deadline_after;
use crate::trace::Event;

type Guard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;

/// Why no worker was created.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// The pool has `max_workers_per_pool` workers already, or is stopping.
    AtLimit,
    /// The platform refused the thread.
    Spawn(SpawnError),
}

/// Creates a spare worker as the pool's manager: the caller took the
/// manager role (machine rule M7) and gives it back in its next step
/// (`worker_managed`). Returns whether a worker was created.
pub(crate) fn manage<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    guard: Guard<'a, P>,
    manager: WorkerId,
) -> (Guard<'a, P>, bool) {
    let (guard, created) = create_worker(pool, guard, Some(manager));
    (guard, created.is_ok())
}

/// Creates one worker and puts it on the idle list (machine `create.rs`,
/// CR1-CR3). The caller holds the manager role (`manager`, traced), takes a
/// create-retry (`None`) or builds the system. The pool lock is dropped
/// around the spawn.
pub(crate) fn create_worker<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    mut guard: Guard<'a, P>,
    manager: Option<WorkerId>,
) -> (Guard<'a, P>, Result<WorkerId, CreateError>) {
    let shared = &pool.shared;
    let max = shared.config.max_workers_per_pool;
    let Creating::Spawn(id) = guard.machine.create_begin(max, shared.platform.now()) else {
        if manager.is_some() {
            guard.tracer.record(|pool| Event::CreateFailed { pool, manager: true, at_limit: true });
            let later = guard.step(|m, fx| m.create_at_limit(fx)).later;
            after_step(pool, &guard, later);
        }
        return (guard, Err(CreateError::AtLimit));
    };
    if let Some(worker) = manager {
        guard.tracer.record(|pool| Event::Manage { pool, worker });
    }
    let thread = WorkerThread::new();
    let wakeup = thread.wakeup.clone();
    guard.threads.insert(id, thread);
    drop(guard);
    let body_pool = pool.clone();
    let body = shared.worker_body;
    let spawned = spawn_engine_thread(&shared.platform, pool.worker_name(id), move || body(body_pool, id));
    let mut guard = pool.lock();
    guard.begin(if manager.is_some() { StepId::Managed } else { StepId::RetryCreated });
    let now = shared.platform.now();
    let stepped = guard.step(|m, fx| m.create_end(id, spawned.is_ok(), now, fx));
    let outcome = match spawned {
        Ok(handle) => {
            if let Some(thread) = guard.threads.get_mut(&id) {
                thread.handle = Some(handle);
            }
            guard.tracer.record(|pool| Event::Created { pool, worker: id });
            wakeup.notify_one();
            Ok(id)
        }
        Err(err) => {
            guard.threads.remove(&id);
            let manager = manager.is_some();
            guard.tracer.record(|pool| Event::CreateFailed { pool, manager, at_limit: false });
            Err(CreateError::Spawn(err))
        }
    };
    after_step(pool, &guard, stepped.later);
    (guard, outcome)
}

/// Carries out what a pool step asked for that needs the pool's handle:
/// arms the timers (the machine marked them armed) and calls the rescuers
/// named. Under the pool lock (L → MD, L → T).
#[inline]
pub(crate) fn after_step<P: Platform>(pool: &Arc<Pool<P>>, guard: &PoolLocked<P>, later: Later) {
    // Almost every step asks for nothing: keep that path inline.
    if !later.is_empty() {
        after_step_slow(pool, guard, later);
    }
}

#[inline(never)]
fn after_step_slow<P: Platform>(pool: &Arc<Pool<P>>, guard: &PoolLocked<P>, later: Later) {
    let shared = &pool.shared;
    if later.idle_timer {
        arm_idle_timer(pool);
    }
    if later.create_retry {
        let deadline = deadline_after(shared.platform.now(), shared.config.create_cooldown);
        let pool = pool.clone();
        shared.timers.arm_new(deadline, Box::new(move || create_retry(&pool)));
    }
    if let Some(first) = later.mayday_timer {
        let delay = if first { shared.config.mayday_initial_timeout } else { shared.config.mayday_interval };
        arm_mayday(pool, deadline_after(shared.platform.now(), delay));
    }
    for (wq, counted) in later.maydays {
        if let Some(wq) = guard.wqs.get(&wq) {
            if let Some(rescuer) = &wq.rescuer {
                rescuer.send(pool, wq, counted);
            }
        }
    }
}

/// Arms the idle-cull timer one idle timeout from now.
pub(crate) fn arm_idle_timer<P: Platform>(pool: &Arc<Pool<P>>) {
    let shared = &pool.shared;
    let deadline = deadline_after(shared.platform.now(), shared.config.idle_timeout);
    let at_fire = pool.clone();
    shared.timers.arm_new(deadline, Box::new(move || idle_cull(&at_fire)));
}

/// Timer: the pool had no spare worker and creation failed; try again
/// (machine TM1, then CR1-CR3 holding the manager role).
pub(crate) fn create_retry<P: Platform>(pool: &Arc<Pool<P>>) {
    let mut guard = pool.lock();
    if !guard.machine.create_retry_fired() {
        return;
    }
    let (mut guard, created) = create_worker(pool, guard, None);
    let later = guard.step(|m, fx| m.create_retry_done(created.is_ok(), fx)).later;
    after_step(pool, &guard, later);
}

/// Timer: retire idle workers beyond the policy that have been idle for
/// the idle timeout, coldest first; re-arm for the next one (rule M12).
pub(crate) fn idle_cull<P: Platform>(pool: &Arc<Pool<P>>) {
    let shared = &pool.shared;
    let mut guard = pool.lock();
    let (now, timeout) = (shared.platform.now(), shared.config.idle_timeout);
    // Machine TM3: the retired are told to exit by the step's effects.
    guard.begin(StepId::IdleCull);
    if let Some(deadline) = guard.step(|m, fx| m.idle_cull_fired(now, timeout, fx)).result {
        let at_fire = pool.clone();
        shared.timers.arm_new(deadline, Box::new(move || idle_cull(&at_fire)));
    }
    join_zombies::<P>(guard);
}

/// Joins the workers that have exited, outside the pool lock.
pub(crate) fn join_zombies<P: Platform>(mut guard: Guard<'_, P>) {
    let zombies = core::mem::take(&mut guard.zombies);
    drop(guard);
    for handle in zombies {
        P::join(handle);
    }
}

/// Arms the pool's mayday timer at `deadline` (machine rules M11 and M13
/// decided it must be armed).
fn arm_mayday<P: Platform>(pool: &Arc<Pool<P>>, deadline: core::time::Duration) {
    let at_fire = pool.clone();
    pool.shared.timers.arm_new(deadline, Box::new(move || mayday_timeout(&at_fire)));
}

/// Timer: if the pool needs a worker it cannot have, call the rescuers of
/// the workqueues with items waiting; repeat while no worker idles
/// (machine TM2, rule M13; kernel `pool_mayday_timeout`).
pub(crate) fn mayday_timeout<P: Platform>(pool: &Arc<Pool<P>>) {
    let mut guard = pool.lock();
    guard.begin(StepId::MaydayTimer);
    let later = guard.step(|m, fx| m.mayday_fired(fx)).later;
    after_step(pool, &guard, later);
}
