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

use crate::machine::policy;
use crate::platform::{spawn_engine_thread, Arc, Platform, SpawnError};
use crate::pool::{Pool, PoolLocked, WorkerSlot, WORKER_PREP, WORKER_ROGUE};
use crate::rescuer::arm_mayday_timer;
use crate::timer::{deadline_after, TimerEvent};
use crate::worker::worker_main;

type Guard<'a, P> = <P as Platform>::Guard<'a, PoolLocked<P>>;

/// Why no worker was created.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// The pool has `max_workers_per_pool` workers already, or is stopping.
    AtLimit,
    /// The platform refused the thread.
    Spawn(SpawnError),
}

/// Becomes the manager if nobody is and creates a spare worker. Returns
/// whether a worker was created (the caller rechecks the pool then).
pub(crate) fn manage_workers<'a, P: Platform>(pool: &'a Arc<Pool<P>>, mut guard: Guard<'a, P>) -> (Guard<'a, P>, bool) {
    if guard.manager_active {
        return (guard, false);
    }
    guard.manager_active = true;
    guard.nr_managers += 1;
    assert!(guard.nr_managers == 1, "invariant broken: two managers in one pool");
    let (mut guard, created) = create_worker(pool, guard);
    guard.nr_managers -= 1;
    guard.manager_active = false;
    match created {
        Ok(()) => (guard, true),
        Err(CreateError::AtLimit) => {
            let initial = pool.shared.config.mayday_initial_timeout;
            arm_mayday_timer(pool, &mut guard, initial);
            (guard, false)
        }
        Err(CreateError::Spawn(_)) => {
            arm_create_retry(pool, &mut guard);
            let initial = pool.shared.config.mayday_initial_timeout;
            arm_mayday_timer(pool, &mut guard, initial);
            (guard, false)
        }
    }
}

/// Creates one worker and puts it on the idle list. The caller holds the
/// manager role (or is building the system). The pool lock is dropped
/// around the spawn.
pub(crate) fn create_worker<'a, P: Platform>(
    pool: &'a Arc<Pool<P>>,
    mut guard: Guard<'a, P>,
) -> (Guard<'a, P>, Result<(), CreateError>) {
    if guard.stopping || guard.nr_workers >= pool.shared.config.max_workers_per_pool {
        return (guard, Err(CreateError::AtLimit));
    }
    let id = guard.next_worker_id;
    guard.next_worker_id += 1;
    let rogue = if guard.disassociated { WORKER_ROGUE } else { 0 };
    let slot = WorkerSlot::new(WORKER_PREP | rogue | pool.permanent_flags(), pool.shared.platform.now(), false);
    let wakeup = slot.wakeup.clone();
    guard.workers.insert(id, slot);
    drop(guard);
    let body_pool = pool.clone();
    let spawned = spawn_engine_thread(&pool.shared.platform, pool.worker_name(id), move || worker_main(body_pool, id));
    let mut guard = pool.locked.lock();
    match spawned {
        Ok(handle) => {
            guard.nr_workers += 1;
            if let Some(slot) = guard.workers.get_mut(&id) {
                slot.handle = Some(handle);
                slot.registered = true;
            }
            if guard.worker_enter_idle(id, pool.shared.platform.now()) {
                arm_idle_timer(pool);
            }
            wakeup.notify_one();
            (guard, Ok(()))
        }
        Err(err) => {
            guard.workers.remove(&id);
            guard.create_failures += 1;
            (guard, Err(CreateError::Spawn(err)))
        }
    }
}

/// Arms the create-retry timer unless armed.
fn arm_create_retry<P: Platform>(pool: &Arc<Pool<P>>, guard: &mut PoolLocked<P>) {
    if guard.create_retry_armed || guard.stopping {
        return;
    }
    guard.create_retry_armed = true;
    let shared = &pool.shared;
    let deadline = deadline_after(shared.platform.now(), shared.config.create_cooldown);
    shared.timers.arm_new(deadline, TimerEvent::CreateRetry(pool.clone()));
}

/// Arms the idle-cull timer one idle timeout from now.
pub(crate) fn arm_idle_timer<P: Platform>(pool: &Arc<Pool<P>>) {
    let shared = &pool.shared;
    let deadline = deadline_after(shared.platform.now(), shared.config.idle_timeout);
    shared.timers.arm_new(deadline, TimerEvent::IdleCull(pool.clone()));
}

/// Timer: the pool had no spare worker and creation failed; try again.
pub(crate) fn create_retry<P: Platform>(pool: &Arc<Pool<P>>) {
    let mut guard = pool.locked.lock();
    guard.create_retry_armed = false;
    if guard.stopping || !guard.idle.is_empty() || guard.manager_active {
        return;
    }
    guard.manager_active = true;
    let (mut guard, created) = create_worker(pool, guard);
    guard.manager_active = false;
    match created {
        // The new idle worker takes pending work if nobody runs.
        Ok(()) => guard.kick(),
        Err(CreateError::AtLimit) => {}
        Err(CreateError::Spawn(_)) => {
            arm_create_retry(pool, &mut guard);
            let initial = pool.shared.config.mayday_initial_timeout;
            arm_mayday_timer(pool, &mut guard, initial);
        }
    }
}

/// Timer: retire idle workers beyond the policy that have been idle for
/// the idle timeout, coldest first; re-arm for the next one.
pub(crate) fn idle_cull<P: Platform>(pool: &Arc<Pool<P>>) {
    let shared = &pool.shared;
    let now = shared.platform.now();
    let mut guard = pool.locked.lock();
    guard.idle_timer_armed = false;
    while policy::too_many_workers(guard.counts()) {
        let Some(&coldest) = guard.idle.back() else {
            break;
        };
        let expires =
            guard.workers.get(&coldest).map_or(now, |w| deadline_after(w.last_active, shared.config.idle_timeout));
        if expires > now {
            guard.idle_timer_armed = true;
            shared.timers.arm_new(expires, TimerEvent::IdleCull(pool.clone()));
            break;
        }
        guard.retire_worker(coldest);
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
