//! CPU hotplug: a CPU's pools handed to a trustee when it goes offline,
//! and rebound when it comes back (kernel `workqueue_offline_cpu` /
//! `workqueue_online_cpu`, and the 2010 design's trustee).
//!
//! # Protocol
//!
//! `cpu_down(cpu)`, serialised with every other hotplug operation by the
//! hotplug lock:
//! 1. The CPU is marked offline: plain `queue` no longer picks it.
//! 2. Each of its pools is **disassociated** under its pool lock: every
//!    worker, and every worker created from now on, carries `WORKER_ROGUE`,
//!    so none counts in `nr_running`. Concurrency management is suspended:
//!    each waiting item gets a worker (the manager creates spares as
//!    usual), so an item that blocks, with or without
//!    telling the pool, stalls nothing behind it. The pool is kicked, since
//!    items that waited behind a running worker may now start.
//! 3. A trustee thread (`<prefix>/T-<cpu>`) takes charge and `cpu_down`
//!    returns: it does not wait for a single item. The pool's (rogue)
//!    workers run everything pending; the trustee waits until the pools
//!    hold nothing (no item waiting, inactive, deferred or running) and
//!    every worker is idle, then retires their idle workers down to one and
//!    exits.
//!
//! Items are never moved between pools, so every guarantee that rests on
//! the pool (non-reentrancy, flush colours, `max_active` and the FIFO
//! inactive list, cancel) holds across the handoff unchanged. An item
//! queued on the offline CPU while it runs there is queued there
//! (non-reentrancy); `queue_on` an offline CPU is accepted and runs on the
//! disassociated pool, without CPU affinity (the kernel does the same).
//!
//! Optionally (`Config::follow_cpu_set`) a timer compares the process's
//! CPU set with the online CPUs and calls `cpu_down` / `cpu_up` itself;
//! with `Config::pin_workers` a pool's workers pin themselves to its CPU
//! (to the whole set while it is offline) when they next wake up.
//!
//! `cpu_up(cpu)`: the trustee is released (it exits at once, draining or
//! not), each pool's workers drop `WORKER_ROGUE` and count again, items
//! still waiting stay where they are, and the pool is kicked. Then the CPU
//! is marked online.

use crate::config::seeded;
use crate::machine::trace::StepId;
use crate::platform::{Arc, Condvar, Platform};
use crate::seeded::SeededBug;
use crate::shared::{Pool, SystemShared, TrusteeState};
use core::fmt;

/// A hotplug request that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotplugError {
    /// The CPU does not exist in this system.
    NoSuchCpu {
        /// The CPU asked for.
        cpu: usize,
        /// How many CPUs the system has.
        cpus: usize,
    },
    /// `cpu_down` of a CPU that is offline already.
    AlreadyOffline {
        /// The CPU.
        cpu: usize,
    },
    /// `cpu_up` of a CPU that is online already.
    AlreadyOnline {
        /// The CPU.
        cpu: usize,
    },
    /// The last online CPU cannot go offline.
    LastCpu {
        /// The CPU.
        cpu: usize,
    },
}

impl fmt::Display for HotplugError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HotplugError::NoSuchCpu { cpu, cpus } => {
                write!(f, "CPU {cpu} does not exist: this system has CPUs 0..{cpus}")
            }
            HotplugError::AlreadyOffline { cpu } => write!(f, "CPU {cpu} is offline already"),
            HotplugError::AlreadyOnline { cpu } => write!(f, "CPU {cpu} is online already"),
            HotplugError::LastCpu { cpu } => {
                write!(f, "CPU {cpu} is the last online CPU; bring another one up before taking it down")
            }
        }
    }
}

impl std::error::Error for HotplugError {}

fn check_cpu<P: Platform>(shared: &SystemShared<P>, cpu: usize) -> Result<(), HotplugError> {
    let cpus = shared.config.cpus;
    if cpu >= cpus {
        return Err(HotplugError::NoSuchCpu { cpu, cpus });
    }
    Ok(())
}

/// Takes `cpu` offline (see the module docs). Returns once its trustee is
/// in charge.
pub(crate) fn cpu_down<P: Platform>(
    shared: &Arc<SystemShared<P>>,
    pools: &[Arc<Pool<P>>],
    cpu: usize,
) -> Result<(), HotplugError> {
    let mut hotplug = shared.hotplug.lock();
    check_cpu(shared, cpu)?;
    if !shared.is_online(cpu) {
        return Err(HotplugError::AlreadyOffline { cpu });
    }
    if (0..shared.config.cpus).filter(|&c| shared.is_online(c)).count() == 1 {
        return Err(HotplugError::LastCpu { cpu });
    }
    shared.set_online(cpu, false);
    let doomed: Vec<Arc<Pool<P>>> = pools.iter().filter(|p| p.cpu == Some(cpu)).cloned().collect();
    let config = &shared.config;
    for pool in &doomed {
        let mut guard = pool.lock();
        guard.trustee = Some(TrusteeState { wake: Arc::new(Condvar::new()) });
        guard.begin(StepId::CpuDown);
        guard.tracer.record(|_| crate::trace::Event::CpuDown { cpu });
        guard.step(|m, fx| m.cpu_down(fx));
    }
    let body_pools = doomed.clone();
    let name = format!("{}/T-{cpu}", config.thread_name_prefix);
    match crate::platform::spawn_engine_thread(&shared.platform, name, move || trustee_main(body_pools)) {
        Ok(handle) => hotplug.trustees[cpu] = Some(handle),
        // No trustee thread: the rogue workers still drain the pools; only
        // the early retirement of their idle workers is lost (the idle
        // timer retires them later).
        Err(_) => {
            for pool in &doomed {
                pool.lock().trustee = None;
            }
        }
    }
    drop(hotplug);
    if seeded(config, SeededBug::CpuDownWaitsForDrain) {
        for pool in &doomed {
            let mut guard = pool.lock();
            while !guard.machine.holds_nothing() {
                let Some(wake) = guard.trustee.as_ref().map(|t| t.wake.clone()) else {
                    break;
                };
                guard = wake.wait(guard);
                guard.splice();
            }
        }
    }
    Ok(())
}

/// Brings `cpu` back online (see the module docs).
pub(crate) fn cpu_up<P: Platform>(
    shared: &Arc<SystemShared<P>>,
    pools: &[Arc<Pool<P>>],
    cpu: usize,
) -> Result<(), HotplugError> {
    let mut hotplug = shared.hotplug.lock();
    check_cpu(shared, cpu)?;
    if shared.is_online(cpu) {
        return Err(HotplugError::AlreadyOnline { cpu });
    }
    for pool in pools.iter().filter(|p| p.cpu == Some(cpu)) {
        let mut guard = pool.lock();
        if let Some(trustee) = guard.trustee.take() {
            trustee.wake.notify_all();
        }
        guard.begin(StepId::CpuUp);
        guard.tracer.record(|_| crate::trace::Event::CpuUp { cpu });
        guard.step(|m, fx| m.cpu_up(fx));
    }
    if let Some(trustee) = hotplug.trustees[cpu].take() {
        P::join(trustee);
    }
    shared.set_online(cpu, true);
    Ok(())
}

/// Body of a trustee: wait until each doomed pool holds nothing, retire its
/// idle workers down to one, and exit; exit at once when released by
/// `cpu_up`.
fn trustee_main<P: Platform>(pools: Vec<Arc<Pool<P>>>) {
    for pool in pools {
        let mut guard = pool.lock();
        loop {
            let Some(wake) = guard.trustee.as_ref().map(|t| t.wake.clone()) else {
                return;
            };
            // Machine step HP2: done once the pool is empty and idle.
            guard.begin(StepId::Trustee);
            if guard.step(|m, fx| m.trustee_check(fx)).result {
                break;
            }
            guard = wake.wait(guard);
        }
        // Done: the pool stays disassociated (rogue workers serve what is
        // still queued on it) until `cpu_up`.
        guard.trustee = None;
        crate::manager::join_zombies::<P>(guard);
    }
}

/// Arms the next CPU-set poll (`Config::follow_cpu_set`).
pub(crate) fn arm_cpu_set_poll<P: Platform>(shared: &Arc<SystemShared<P>>, pools: &[Arc<Pool<P>>]) {
    let deadline = crate::timer::deadline_after(shared.platform.now(), shared.config.cpu_set_poll_interval);
    let (shared_at_fire, pools) = (shared.clone(), pools.to_vec());
    shared.timers.arm_new(deadline, Box::new(move || cpu_set_poll(&shared_at_fire, &pools)));
}

/// Timer: takes down the CPUs that left the process's CPU set and brings
/// up those that came back, then re-arms.
pub(crate) fn cpu_set_poll<P: Platform>(shared: &Arc<SystemShared<P>>, pools: &[Arc<Pool<P>>]) {
    if let Some(allowed) = shared.platform.allowed_os_cpus() {
        for (cpu, os_cpu) in shared.os_cpus.iter().enumerate() {
            let wanted = allowed.binary_search(os_cpu).is_ok(); // ascending
                                                                // Errors are states not to act on: the CPU is already where it
                                                                // should be, or it is the last one online.
            if wanted && !shared.is_online(cpu) {
                let _ = cpu_up(shared, pools, cpu);
            } else if !wanted && shared.is_online(cpu) {
                let _ = cpu_down(shared, pools, cpu);
            }
        }
    }
    arm_cpu_set_poll(shared, pools);
}
