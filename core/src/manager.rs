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

use crate::platform::{spawn_engine_thread, Arc, Platform, SpawnError};
use crate::pool::{WorkerId, WorkerState, WORKER_PREP, WORKER_ROGUE};
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
/// manager role (machine rule 7) and this gives it back. Returns whether a
/// worker was created (the caller asks the machine again then).
pub(crate) fn manage<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    guard: Guard<'a, P>,
    manager: WorkerId,
) -> (Guard<'a, P>, bool) {
    if guard.machine.state.may_create(pool.shared.config.max_workers_per_pool) {
        guard.tracer.record(|pool| Event::Manage { pool, worker: manager });
    }
    let (mut guard, created) = create_worker(pool, guard);
    guard.machine.state.manager_leave();
    match created {
        Ok(worker) => {
            guard.tracer.record(|pool| Event::Created { pool, worker });
            (guard, true)
        }
        Err(err) => {
            let at_limit = matches!(err, CreateError::AtLimit);
            guard.tracer.record(|pool| Event::CreateFailed { pool, manager: true, at_limit });
            creation_failed(pool, &mut guard, !at_limit);
            (guard, false)
        }
    }
}

/// Carries out machine rule 11 after a failed creation: arms the timers it
/// asks for. `refused`: the platform refused the thread (not the limit).
fn creation_failed<P: Platform>(pool: &Arc<Pool<P>>, guard: &mut PoolLocked<P>, refused: bool) {
    let todo = guard.machine.state.worker_create_failed(refused);
    let shared = &pool.shared;
    let now = shared.platform.now();
    if todo.arm_retry {
        let deadline = deadline_after(now, shared.config.create_cooldown);
        let pool = pool.clone();
        shared.timers.arm_new(deadline, Box::new(move || create_retry(&pool)));
    }
    if todo.arm_mayday {
        let deadline = deadline_after(now, shared.config.mayday_initial_timeout);
        arm_mayday(pool, deadline);
    }
}

/// Creates one worker and puts it on the idle list. The caller holds the
/// manager role (or is building the system). The pool lock is dropped
/// around the spawn.
pub(crate) fn create_worker<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    mut guard: Guard<'a, P>,
) -> (Guard<'a, P>, Result<WorkerId, CreateError>) {
    if !guard.machine.state.may_create(pool.shared.config.max_workers_per_pool) {
        return (guard, Err(CreateError::AtLimit));
    }
    let id = guard.machine.state.next_id();
    let rogue = if guard.machine.state.disassociated { WORKER_ROGUE } else { 0 };
    let worker = WorkerState::new(WORKER_PREP | rogue | pool.permanent_flags(), pool.shared.platform.now(), false);
    guard.machine.state.workers.insert(id, worker);
    let thread = WorkerThread::new();
    let wakeup = thread.wakeup.clone();
    guard.threads.insert(id, thread);
    drop(guard);
    let body_pool = pool.clone();
    let body = pool.shared.worker_body;
    let spawned = spawn_engine_thread(&pool.shared.platform, pool.worker_name(id), move || body(body_pool, id));
    let mut guard = pool.locked.lock();
    match spawned {
        Ok(handle) => {
            guard.machine.state.worker_registered(id);
            if let Some(thread) = guard.threads.get_mut(&id) {
                thread.handle = Some(handle);
            }
            let now = pool.shared.platform.now();
            if guard.step(|m, fx| m.enter_idle(id, now, fx)).arm_idle {
                arm_idle_timer(pool);
            }
            wakeup.notify_one();
            (guard, Ok(id))
        }
        Err(err) => {
            guard.machine.state.worker_spawn_failed(id);
            guard.threads.remove(&id);
            (guard, Err(CreateError::Spawn(err)))
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

/// Timer: the pool had no spare worker and creation failed; try again.
pub(crate) fn create_retry<P: Platform>(pool: &Arc<Pool<P>>) {
    let mut guard = pool.locked.lock();
    if !guard.machine.state.create_retry_due() {
        return;
    }
    let (mut guard, created) = create_worker(pool, guard);
    guard.machine.state.manager_leave();
    match created {
        // The new idle worker takes pending work if nobody runs.
        Ok(_) => guard.kick(),
        Err(CreateError::AtLimit) => {}
        Err(CreateError::Spawn(_)) => {
            guard.tracer.record(|pool| Event::CreateFailed { pool, manager: false, at_limit: false });
            creation_failed(pool, &mut guard, true);
        }
    }
}

/// Timer: retire idle workers beyond the policy that have been idle for
/// the idle timeout, coldest first; re-arm for the next one (rule 12).
pub(crate) fn idle_cull<P: Platform>(pool: &Arc<Pool<P>>) {
    let shared = &pool.shared;
    let mut guard = pool.locked.lock();
    let cull = guard.machine.state.idle_cull(shared.platform.now(), shared.config.idle_timeout);
    for worker in cull.retired {
        guard.tracer.record(|pool| Event::Retired { pool, worker });
        guard.tell_exit(worker);
    }
    if let Some(deadline) = cull.rearm {
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

/// Arms the pool's mayday timer at `deadline` (machine rules 11 and 13
/// decided it must be armed).
fn arm_mayday<P: Platform>(pool: &Arc<Pool<P>>, deadline: core::time::Duration) {
    let at_fire = pool.clone();
    pool.shared.timers.arm_new(deadline, Box::new(move || mayday_timeout(&at_fire)));
}

/// Timer: if the pool needs a worker it cannot have, call the rescuers of
/// the workqueues with items waiting; repeat while no worker idles
/// (machine rule 13; kernel `pool_mayday_timeout`).
pub(crate) fn mayday_timeout<P: Platform>(pool: &Arc<Pool<P>>) {
    let mut guard = pool.locked.lock();
    let (called, rearm) = guard.machine.state.mayday_timeout();
    for wq in called {
        if let Some(wq) = guard.wqs.get(&wq) {
            if let Some(rescuer) = &wq.rescuer {
                rescuer.send(pool, wq, true);
            }
        }
    }
    if rearm {
        let shared = &pool.shared;
        arm_mayday(pool, deadline_after(shared.platform.now(), shared.config.mayday_interval));
    }
}
