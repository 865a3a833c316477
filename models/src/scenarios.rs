//! The models: small scenarios on the real cmwq engine, generic over the
//! platform, so that loom explores them exhaustively (within its bounds)
//! and shuttle at scale. Each names the invariant it checks and the
//! interleaving it targets. Lost work shows up as a deadlock (which both
//! checkers report), never as a hang; broken guarantees as failed
//! assertions.
//!
//! Sizes are tiny: one or two CPUs, no high-priority or unbound pools
//! unless needed, no timer thread, idle workers park at once, and at most
//! three workers per pool, so every model fits loom's five threads.

pub use crate::hotplug::{
    cpu_down_racing_queue, cpu_up_racing_drain, offline_pool_runs_waiting_items, ordered_across_handoff,
    rebind_keeps_inactive, requeue_during_handoff,
};
pub use crate::inbox::{
    cancel_racing_inbox_requeue, destroy_racing_inbox_leave, inbox_items_cancelled_and_flushed,
    inbox_left_as_the_worker_goes_idle,
};
pub use crate::jobs::{job_cancel_racing_start, job_panic_counted_before_join};
pub use crate::lifecycle::{
    delayed_rearmed_during_its_firing, destroy_racing_mod_delayed, destroy_racing_queue_delayed,
};
pub use crate::monitor::{
    detection_of_a_blocking_section, detection_races_finish, hog_lets_the_item_behind_it_run, hog_report_races_finish,
    unannotated_wait_detected,
};
pub use crate::placement::{queue_racing_finish_across_pools, queue_spreads_past_busy_cpu};
pub use crate::rescue::{
    chain_stalls_without_rescuer, destroy_racing_mayday, mayday_no_duplicate, rescuer_chain, rescuer_races_worker,
    rescuer_wakes_worker,
};
pub use crate::traced::{traced_activation, traced_hotplug, traced_keep_working, traced_pool, traced_rescue};
use crate::{FaultPlan, ModelPlatform};
use cmwq::{blocking_on, Platform, System, SystemBuilder, Work, Workqueue};
use core::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

/// A one-way flag model threads wait on.
pub struct Flag<P: Platform> {
    set: P::Mutex<bool>,
    cv: P::Condvar,
}

impl<P: Platform> Flag<P> {
    /// A cleared flag.
    pub fn new() -> Arc<Self> {
        Arc::new(Flag { set: P::mutex_new(false), cv: P::condvar_new() })
    }

    /// Sets the flag and wakes waiters.
    pub fn set(&self) {
        *P::mutex_lock(&self.set) = true;
        P::condvar_notify_all(&self.cv);
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        *P::mutex_lock(&self.set)
    }

    /// Waits for the flag without telling the pool.
    pub fn wait(&self) {
        let mut set = P::mutex_lock(&self.set);
        while !*set {
            set = P::condvar_wait(&self.cv, set);
        }
    }

    /// Waits for the flag inside a blocking section (the pool may run
    /// another worker meanwhile).
    pub fn wait_blocking(&self) {
        blocking_on::<P, _>(|| self.wait())
    }
}

/// A counter model threads share.
pub struct Counter<P: Platform>(P::AtomicUsize);

impl<P: Platform> Counter<P> {
    /// Zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Counter(P::atomic_new(0)))
    }
    /// Adds one, returning the previous value.
    pub fn inc(&self) -> usize {
        P::atomic_fetch_add(&self.0, 1, SeqCst)
    }
    /// Subtracts one, returning the previous value.
    pub fn dec(&self) -> usize {
        P::atomic_fetch_sub(&self.0, 1, SeqCst)
    }
    /// The value.
    pub fn get(&self) -> usize {
        P::atomic_load(&self.0, SeqCst)
    }
}

/// The settings every model system shares: `cpus` CPUs, no high-priority or
/// unbound pools, no timer thread, idle workers park at once, at most
/// `max_workers` per pool, no blocking detection (the monitor's models
/// switch it on). Time is frozen in models: a zero cooldown and
/// zero mayday timeouts let a timer be due as soon as it is armed.
pub fn model_builder<P: Platform>(cpus: usize, max_workers: usize, bugs: u64) -> SystemBuilder<P> {
    let mut builder = System::builder();
    builder
        .cpus(cpus)
        .timer_thread(false)
        .idle_spins(0)
        .highpri_pools(false)
        .unbound_pools(false)
        .max_workers_per_pool(max_workers)
        .detect_blocking(None)
        .cpu_hog(None)
        .create_cooldown(core::time::Duration::ZERO)
        .mayday_timeouts(core::time::Duration::ZERO, core::time::Duration::ZERO)
        .seeded_bugs(bugs);
    builder
}

/// A model-sized system (see [`model_builder`]).
pub fn system<P: Platform>(platform: P, cpus: usize, max_workers: usize, bugs: u64) -> System<P> {
    model_builder(cpus, max_workers, bugs).build_on(platform).expect("model system builds")
}

pub(crate) fn workqueue<P: Platform>(system: &System<P>, max_active: usize) -> Workqueue<P> {
    cmwq::WorkqueueBuilder::new("model").max_active(max_active).build(system).expect("model workqueue builds")
}

pub(crate) fn spawn<P: Platform>(system: &System<P>, body: impl FnOnce() + Send + 'static) -> P::JoinHandle {
    system.platform().spawn("model".to_string(), Box::new(body)).expect("model thread")
}

/// W1, W2 — exactly once, pending coalescing. Two threads queue one item
/// twice each, racing each other and its execution; every successful
/// queueing is one execution, and the others coalesced.
pub fn exactly_once<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let successes = Counter::<P>::new();
    let r = runs.clone();
    let item = Work::<P>::new(move || {
        r.inc();
    });
    let other = {
        let (wq, item, successes) = (wq.clone(), item.clone(), successes.clone());
        spawn(&system, move || {
            for _ in 0..2 {
                if wq.queue(&item).unwrap() {
                    successes.inc();
                }
            }
        })
    };
    for _ in 0..2 {
        if wq.queue(&item).unwrap() {
            successes.inc();
        }
    }
    P::join(other);
    wq.flush().unwrap();
    assert!(successes.get() >= 1);
    assert_eq!(runs.get(), successes.get(), "executions != successful queueings");
}

/// W3 — queueing during execution. The item is queued again while it runs
/// (after PENDING must have been cleared): the queueing succeeds and the
/// item runs exactly once more.
pub fn requeue_during_execution<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let (started, requeued) = (Flag::<P>::new(), Flag::<P>::new());
    let item = {
        let (r, s, q) = (runs.clone(), started.clone(), requeued.clone());
        Work::<P>::new(move || {
            if r.inc() == 0 {
                s.set();
                q.wait();
            }
        })
    };
    assert!(wq.queue(&item).unwrap());
    started.wait();
    assert!(wq.queue(&item).unwrap(), "an item that is running and not pending must queue again");
    requeued.set();
    wq.flush().unwrap();
    assert_eq!(runs.get(), 2);
}

/// Counters of an [`overlap_checked`] item.
pub struct Overlaps<P: Platform> {
    /// Executions in progress.
    in_flight: Arc<Counter<P>>,
    /// Executions that started while another was in progress.
    pub overlaps: Arc<Counter<P>>,
    /// Executions started, of every item sharing these counters.
    pub runs: Arc<Counter<P>>,
}

impl<P: Platform> Default for Overlaps<P> {
    fn default() -> Self {
        Overlaps { in_flight: Counter::new(), overlaps: Counter::new(), runs: Counter::new() }
    }
}

impl<P: Platform> Overlaps<P> {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }
}

/// An item that counts its executions and those overlapping an execution
/// of any item sharing `counters`, and calls `first_run` during its own
/// first execution.
pub fn overlap_checked<P: Platform>(counters: &Overlaps<P>, first_run: impl Fn() + Send + Sync + 'static) -> Work<P> {
    let (f, o, runs) = (counters.in_flight.clone(), counters.overlaps.clone(), counters.runs.clone());
    let own_runs = Counter::<P>::new();
    Work::<P>::new(move || {
        if f.inc() != 0 {
            o.inc();
        }
        runs.inc();
        if own_runs.inc() == 0 {
            first_run();
        }
        f.dec();
    })
}

/// Where an item that requeues itself finds its workqueue; emptied by the
/// model before it ends, so that the item does not keep the workqueue alive.
pub type WqSlot<P> = Arc<<P as Platform>::Mutex<Option<Workqueue<P>>>>;

/// A slot holding `wq`.
pub fn wq_slot<P: Platform>(wq: &Workqueue<P>) -> WqSlot<P> {
    Arc::new(P::mutex_new(Some(wq.clone())))
}

/// From inside a work item: queues the running item again on the slot's
/// workqueue (on `cpu` if given). Returns whether it was queued (failures
/// are counted by the caller: an assertion inside an item would only be
/// caught as a panic).
pub fn requeue_self<P: Platform>(slot: &WqSlot<P>, cpu: Option<usize>) -> bool {
    let me = cmwq::current_work_on::<P>();
    let wq = P::mutex_lock(slot).clone();
    match (me, wq, cpu) {
        (Some(me), Some(wq), Some(cpu)) => wq.queue_on(cpu, &me).is_ok_and(|queued| queued),
        (Some(me), Some(wq), None) => wq.queue(&me).is_ok_and(|queued| queued),
        _ => false,
    }
}

/// W4 — non-reentrancy across CPUs. The item runs on CPU 0 and is queued
/// on CPU 1 while it runs; the lookup must send it to CPU 0's pool so that
/// CPU 1's idle worker cannot run it concurrently.
pub fn non_reentrant_cross_cpu<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 2, 1, bugs);
    let wq = workqueue(&system, 0);
    let counters = Overlaps::<P>::new();
    let (started, requeued) = (Flag::<P>::new(), Flag::<P>::new());
    let (s, q) = (started.clone(), requeued.clone());
    let item = overlap_checked(&counters, move || {
        s.set();
        q.wait();
    });
    wq.queue_on(0, &item).unwrap();
    started.wait();
    assert!(wq.queue_on(1, &item).unwrap());
    requeued.set();
    item.flush().unwrap();
    wq.flush().unwrap();
    assert_eq!(counters.overlaps.get(), 0, "the item ran on two workers at once");
}

/// W4 — non-reentrancy within a pool. The item blocks while running, is
/// queued again on the same pool, and the woken spare worker picks it: it
/// must defer it to the worker already running it.
pub fn non_reentrant_same_pool<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let counters = Overlaps::<P>::new();
    let (started, requeued) = (Flag::<P>::new(), Flag::<P>::new());
    let (s, q) = (started.clone(), requeued.clone());
    let item = overlap_checked(&counters, move || {
        s.set();
        q.wait_blocking();
    });
    wq.queue(&item).unwrap();
    started.wait();
    assert!(wq.queue(&item).unwrap());
    requeued.set();
    wq.flush().unwrap();
    assert_eq!(counters.overlaps.get(), 0, "the item ran on two workers at once");
}

/// C1 — work-conserving wakeup (the seed scenario). On one CPU, item A
/// blocks until item B, queued after it, has run; the pool must wake a
/// spare when A blocks. A third item queued afterwards must still run
/// (nr_running must come back to zero).
pub fn work_conserving<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 3, bugs);
    let wq = workqueue(&system, 0);
    let b_ran = Flag::<P>::new();
    let a = {
        let b = b_ran.clone();
        Work::<P>::new(move || b.wait_blocking())
    };
    let b = {
        let b = b_ran.clone();
        Work::<P>::new(move || b.set())
    };
    wq.queue(&a).unwrap();
    wq.queue(&b).unwrap();
    wq.flush().unwrap();
    let c_ran = Flag::<P>::new();
    let c = {
        let c = c_ran.clone();
        Work::<P>::new(move || c.set())
    };
    wq.queue(&c).unwrap();
    wq.flush().unwrap();
    assert!(c_ran.is_set());
}

/// W5 — flush_work on a running item waits for it, racing the thread that
/// releases it: whatever it reports, the instance running when it was
/// called has finished when it returns.
pub fn flush_work_running<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let (item, release, done) = queue_running(&wq);
    let releaser = {
        let r = release.clone();
        spawn(&system, move || r.set())
    };
    let waited = item.flush().unwrap();
    assert!(done.is_set(), "flush_work returned (waited: {waited}) before the running instance finished");
    P::join(releaser);
}

/// A waker that sets a flag (the model's condition variable) when woken.
struct FlagWaker<P: Platform>(Arc<Flag<P>>);

impl<P: Platform> std::task::Wake for FlagWaker<P> {
    fn wake(self: Arc<Self>) {
        self.0.set();
    }
}

/// Queues an item on `wq` and returns once it runs: it then waits for
/// `release` and sets `done` on its way out. (Item, release, done.)
fn queue_running<P: Platform>(wq: &Workqueue<P>) -> (Work<P>, Arc<Flag<P>>, Arc<Flag<P>>) {
    let (started, release, done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let item = {
        let (s, r, d) = (started.clone(), release.clone(), done.clone());
        Work::<P>::new(move || {
            s.set();
            r.wait();
            d.set();
        })
    };
    wq.queue(&item).unwrap();
    started.wait();
    (item, release, done)
}

/// Q1, async — `Workqueue::flush_async` racing the worker that finishes
/// the instance its ticket waits for: the future takes its ticket at the
/// call, registers its waker on the first poll while another thread
/// releases the item. The colour completes under the pool lock, so the
/// wakers go through a timer event due at once (no timer thread here: the
/// waiting thread delivers due events while it waits). No lost wakeup: a
/// pending poll is followed by a wake and a ready poll; a ready flush
/// never precedes the instance's end.
pub fn async_flush_workqueue_racing_finish<P: ModelPlatform>(bugs: u64) {
    use core::future::Future;
    use std::task::{Context, Waker};
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let (_item, release, done) = queue_running(&wq);
    let woken = Flag::<P>::new();
    let mut flushed = wq.flush_async().unwrap();
    let releaser = {
        let r = release.clone();
        spawn(&system, move || r.set())
    };
    let waker = Waker::from(Arc::new(FlagWaker(woken.clone())));
    let mut cx = Context::from_waker(&waker);
    if core::pin::Pin::new(&mut flushed).poll(&mut cx).is_pending() {
        // Deliver the due wake event until the waker fires.
        while !woken.is_set() {
            system.run_due_timers();
            P::yield_now();
        }
        let ready = core::pin::Pin::new(&mut flushed).poll(&mut cx);
        assert!(ready.is_ready(), "woken after the flush completed, yet still pending");
    }
    assert!(done.is_set(), "flush_workqueue_async was ready before the running instance finished");
    P::join(releaser);
}

/// W5, async — `Work::flush_async` racing the worker that finishes the
/// instance it waits for: the future registers its waker (first poll)
/// while another thread releases the item. No lost wakeup: if the poll was
/// pending, the waker is woken (else the model deadlocks waiting for it)
/// and the next poll is ready; whenever it is ready, the instance running
/// at the call has finished.
pub fn async_flush_work_racing_finish<P: ModelPlatform>(bugs: u64) {
    use core::future::Future;
    use std::task::{Context, Poll, Waker};
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let (item, release, done) = queue_running(&wq);
    let woken = Flag::<P>::new();
    let releaser = {
        let r = release.clone();
        spawn(&system, move || r.set())
    };
    let mut flushed = item.flush_async().unwrap();
    let waker = Waker::from(Arc::new(FlagWaker(woken.clone())));
    let mut cx = Context::from_waker(&waker);
    let waited = match core::pin::Pin::new(&mut flushed).poll(&mut cx) {
        Poll::Ready(waited) => waited,
        Poll::Pending => {
            woken.wait();
            match core::pin::Pin::new(&mut flushed).poll(&mut cx) {
                Poll::Ready(waited) => waited,
                Poll::Pending => panic!("woken after the instance finished, yet still pending"),
            }
        }
    };
    assert!(done.is_set(), "flush_async was ready (waited: {waited}) before the running instance finished");
    drop(flushed);
    P::join(releaser);
    wq.flush().unwrap();
}

/// W6 — cancel_sync racing a self-requeueing item: on return the item is
/// neither pending nor running, and never runs again.
pub fn cancel_sync_self_requeue<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let started = Flag::<P>::new();
    let item = {
        let (r, s, q) = (runs.clone(), started.clone(), wq.clone());
        Work::<P>::with_self(move |me| {
            s.set();
            if r.inc() < 3 {
                let _ = q.queue(me);
            }
        })
    };
    wq.queue(&item).unwrap();
    started.wait();
    item.cancel_sync().unwrap();
    let busy = item.busy();
    assert!(busy.is_idle(), "not idle after cancel_sync: {busy:?}");
    let after = runs.get();
    wq.flush().unwrap();
    assert_eq!(runs.get(), after, "ran after cancel_sync returned");
}

/// Q1, Q2 — flush_workqueue colours: a flush waits for the item queued
/// before it and not for one queued after it started (which blocks until
/// the flush returned: waiting for it would deadlock).
pub fn flush_colours<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 3, bugs);
    let wq = workqueue(&system, 0);
    let (release_a, a_done, flushed) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let a = {
        let (r, d) = (release_a.clone(), a_done.clone());
        Work::<P>::new(move || {
            r.wait_blocking();
            d.set();
        })
    };
    let b = {
        let f = flushed.clone();
        Work::<P>::new(move || f.wait_blocking())
    };
    wq.queue(&a).unwrap();
    let flusher = {
        let (wq, a_done, flushed) = (wq.clone(), a_done.clone(), flushed.clone());
        spawn(&system, move || {
            wq.flush().unwrap();
            assert!(a_done.is_set(), "flush returned before an earlier item finished");
            flushed.set();
        })
    };
    while wq.flushes_in_progress() == 0 && !flushed.is_set() {
        P::yield_now();
    }
    wq.queue(&b).unwrap();
    release_a.set();
    P::join(flusher);
    wq.flush().unwrap();
}

/// Q3 — max_active with the inactive list: with one active slot, waiting
/// items are activated oldest first and one at a time. Item 1 blocks
/// briefly, so that an item activated too early would run beside it.
pub fn max_active_fifo<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 3, bugs);
    let wq = workqueue(&system, 1);
    let order = Arc::new(P::mutex_new(Vec::new()));
    let (in_flight, overlaps) = (Counter::<P>::new(), Counter::<P>::new());
    let release = Flag::<P>::new();
    let items: Vec<Work<P>> = (0..3)
        .map(|id| {
            let (o, r, f, x) = (order.clone(), release.clone(), in_flight.clone(), overlaps.clone());
            Work::<P>::new(move || {
                if f.inc() != 0 {
                    x.inc();
                }
                P::mutex_lock(&o).push(id);
                match id {
                    0 => r.wait(),
                    1 => blocking_on::<P, _>(P::yield_now),
                    _ => {}
                }
                f.dec();
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    release.set();
    wq.flush().unwrap();
    assert_eq!(*P::mutex_lock(&order), vec![0, 1, 2], "inactive items activated out of order");
    assert_eq!(overlaps.get(), 0, "max_active 1 exceeded");
}

/// Q3 — cancelling an inactive item must not free an active slot: with
/// max_active 1 and the active item blocked, nothing else may start.
pub fn cancel_inactive<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 3, bugs);
    let wq = workqueue(&system, 1);
    let counters = Overlaps::<P>::new();
    let (started, release) = (Flag::<P>::new(), Flag::<P>::new());
    let (s, r) = (started.clone(), release.clone());
    let a = overlap_checked(&counters, move || {
        s.set();
        r.wait_blocking();
    });
    let b = overlap_checked(&counters, || {});
    let c = overlap_checked(&counters, || {});
    for item in [&a, &b, &c] {
        wq.queue(item).unwrap();
    }
    started.wait();
    assert!(b.cancel(), "b was inactive, hence pending");
    release.set();
    wq.flush().unwrap();
    assert_eq!(counters.overlaps.get(), 0, "max_active 1 exceeded after cancelling an inactive item");
}

/// F1 — a panicking item racing a flush: the flush returns, the panic is
/// counted, the pool keeps working.
pub fn panic_racing_flush<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let item = Work::<P>::new(|| panic!("model: deliberate panic"));
    wq.queue(&item).unwrap();
    let flusher = {
        let item = item.clone();
        spawn(&system, move || {
            item.flush().unwrap();
        })
    };
    wq.flush().unwrap();
    P::join(flusher);
    assert_eq!(wq.panic_count(), 1);
    let ran = Flag::<P>::new();
    let next = {
        let r = ran.clone();
        Work::<P>::new(move || r.set())
    };
    wq.queue(&next).unwrap();
    wq.flush().unwrap();
    assert!(ran.is_set());
}

/// Q6 — destroy racing queueing: every queueing either succeeds and runs
/// before destroy returns, or is refused and leaves the item idle.
pub fn destroy_racing_queue<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let item = {
        let r = runs.clone();
        Work::<P>::new(move || {
            r.inc();
        })
    };
    let queuer = {
        let (wq, item) = (wq.clone(), item.clone());
        spawn(&system, move || {
            let accepted = wq.queue(&item).is_ok_and(|queued| queued);
            assert!(accepted || item.busy().is_idle(), "a refused item was left pending");
        })
    };
    wq.destroy().unwrap();
    let after_destroy = runs.get();
    P::join(queuer);
    assert!(item.busy().is_idle());
    assert_eq!(runs.get(), after_destroy, "an item ran after destroy returned");
}

/// W5 — flush_work racing a requeue: another thread queues the running
/// item again while flush_work starts; flush_work must not return before
/// the instance running at its call has finished, nor hang.
pub fn flush_work_racing_requeue<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let (started, finished) = (Counter::<P>::new(), Counter::<P>::new());
    let release = Flag::<P>::new();
    let item = {
        let (s, f, r) = (started.clone(), finished.clone(), release.clone());
        Work::<P>::new(move || {
            s.inc();
            r.wait();
            f.inc();
        })
    };
    wq.queue(&item).unwrap();
    while started.get() == 0 {
        P::yield_now();
    }
    let requeuer = {
        let (wq, item, release) = (wq.clone(), item.clone(), release.clone());
        spawn(&system, move || {
            let _ = wq.queue(&item);
            release.set();
        })
    };
    item.flush().unwrap();
    assert!(finished.get() >= 1, "flush_work returned before the running instance finished");
    P::join(requeuer);
    wq.flush().unwrap();
    assert_eq!(started.get(), finished.get());
}

/// W6 — cancel_sync racing queueing from another thread: every successful
/// queueing is either executed or reported cancelled, exactly once.
pub fn cancel_sync_racing_queue<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let (runs, successes) = (Counter::<P>::new(), Counter::<P>::new());
    let item = {
        let r = runs.clone();
        Work::<P>::new(move || {
            r.inc();
        })
    };
    let queuer = {
        let (wq, item, successes) = (wq.clone(), item.clone(), successes.clone());
        spawn(&system, move || {
            for _ in 0..2 {
                if wq.queue(&item).unwrap() {
                    successes.inc();
                }
            }
        })
    };
    let cancelled = usize::from(item.cancel_sync().unwrap());
    P::join(queuer);
    wq.flush().unwrap();
    assert_eq!(runs.get() + cancelled, successes.get(), "an instance was lost or doubled");
}

/// Q4 — ordered workqueue under concurrent queueing: one item at a time,
/// in the order the queueings took effect.
pub fn ordered_concurrent<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = model_builder(1, 1, bugs).unbound_pools(true).build_on(platform).expect("model system builds");
    let wq = cmwq::WorkqueueBuilder::new("ordered").ordered().build(&system).expect("ordered workqueue");
    let (in_flight, overlaps) = (Counter::<P>::new(), Counter::<P>::new());
    let queued = Arc::new(P::mutex_new(Vec::new()));
    let ran = Arc::new(P::mutex_new(Vec::new()));
    let make = |id: usize| {
        let (f, o, r) = (in_flight.clone(), overlaps.clone(), ran.clone());
        Work::<P>::new(move || {
            if f.inc() != 0 {
                o.inc();
            }
            P::mutex_lock(&r).push(id);
            f.dec();
        })
    };
    let items: Vec<Work<P>> = (0..4).map(make).collect();
    let queue = |wq: &Workqueue<P>, queued: &P::Mutex<Vec<usize>>, id: usize, item: &Work<P>| {
        let mut order = P::mutex_lock(queued);
        wq.queue(item).unwrap();
        order.push(id);
    };
    let other = {
        let (wq, queued, a, b) = (wq.clone(), queued.clone(), items[2].clone(), items[3].clone());
        spawn(&system, move || {
            queue(&wq, &queued, 2, &a);
            queue(&wq, &queued, 3, &b);
        })
    };
    queue(&wq, &queued, 0, &items[0]);
    queue(&wq, &queued, 1, &items[1]);
    P::join(other);
    wq.flush().unwrap();
    assert_eq!(overlaps.get(), 0, "ordered workqueue ran two items at once");
    assert_eq!(*P::mutex_lock(&ran), *P::mutex_lock(&queued), "ordered workqueue broke queueing order");
}

/// C7 — idle-worker retirement racing newly queued work: after a burst
/// created spare workers, the idle-cull timer fires while a new item is
/// queued; the item still runs and the pool keeps a worker for it.
pub fn idle_cull_racing_queue<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let mut builder = model_builder(1, 4, bugs);
    let system = builder.idle_timeout(core::time::Duration::ZERO).build_on(platform).expect("model system builds");
    let wq = workqueue(&system, 0);
    let release = Flag::<P>::new();
    let blockers: Vec<Work<P>> = (0..2)
        .map(|_| {
            let r = release.clone();
            Work::<P>::new(move || r.wait_blocking())
        })
        .collect();
    for item in &blockers {
        wq.queue(item).unwrap();
    }
    release.set();
    wq.flush().unwrap();
    let ran = Flag::<P>::new();
    let late = {
        let r = ran.clone();
        Work::<P>::new(move || r.set())
    };
    wq.queue(&late).unwrap();
    system.run_due_timers();
    wq.flush().unwrap();
    assert!(ran.is_set());
    let stats = &system.pool_stats()[0];
    assert!(stats.workers >= 1, "culling left the pool without workers");
}

/// C1, F4 — a failed spawn loses no work, and at most one manager runs:
/// the spare's creation fails (the worker works anyway and a retry timer is
/// armed), its item blocks until a second item runs, and the retry fired
/// by the model creates the worker that runs it. The engine asserts a
/// single manager on every management.
pub fn failed_spawn_retry<P: ModelPlatform>(bugs: u64) {
    // Spawn 1 is the pool's first worker; spawn 2, its spare, fails.
    let platform = P::with_faults(FaultPlan::fail_attempts(&[2]));
    let system = system(platform, 1, 3, bugs);
    let wq = workqueue(&system, 0);
    let b_ran = Flag::<P>::new();
    let a = {
        let b = b_ran.clone();
        Work::<P>::new(move || b.wait_blocking())
    };
    let b = {
        let b = b_ran.clone();
        Work::<P>::new(move || b.set())
    };
    wq.queue(&a).unwrap();
    wq.queue(&b).unwrap();
    // Deliver the create-retry timer until B has run (each delivery is a
    // point where the checker may interleave the workers).
    while !b_ran.is_set() {
        system.run_due_timers();
        P::yield_now();
    }
    wq.flush().unwrap();
    assert!(system.pool_stats()[0].create_failures >= 1, "the fault plan was not exercised");
}

/// Q6 — system shutdown racing a flush: the last workqueue handle (and
/// with it the system) is dropped by a thread that was flushing while the
/// main thread destroys the workqueue; everything queued runs once and
/// every worker is joined.
pub fn shutdown_racing_flush<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let item = {
        let r = runs.clone();
        Work::<P>::new(move || {
            r.inc();
        })
    };
    wq.queue(&item).unwrap();
    let flusher = {
        let wq = wq.clone();
        spawn(&system, move || {
            wq.flush().unwrap();
            drop(wq);
        })
    };
    wq.destroy().unwrap();
    assert_eq!(runs.get(), 1);
    drop(wq);
    drop(system);
    P::join(flusher);
    assert!(item.busy().is_idle());
}

/// C6 — the unbound pool's concurrency target. One CPU, the unbound pool's
/// target set to 2: items A and B each wait, without telling the pool, for
/// the other to start. Both must run at once, each on its own worker (the
/// second worker works without a spare: the pool is full). With the target
/// taken as 1 (the CPU pools' rule) B waits behind A: a deadlock.
pub fn unbound_target_runs_two_at_once<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = model_builder(1, 2, bugs)
        .unbound_pools(true)
        .unbound_concurrency(2)
        .build_on(platform)
        .expect("model system builds");
    let wq = cmwq::WorkqueueBuilder::new("unbound").unbound().build(&system).expect("unbound workqueue");
    let (a_started, b_started) = (Flag::<P>::new(), Flag::<P>::new());
    let runs = Counter::<P>::new();
    let item = |mine: &Arc<Flag<P>>, theirs: &Arc<Flag<P>>| {
        let (mine, theirs, runs) = (mine.clone(), theirs.clone(), runs.clone());
        Work::<P>::new(move || {
            mine.set();
            theirs.wait();
            runs.inc();
        })
    };
    let (a, b) = (item(&a_started, &b_started), item(&b_started, &a_started));
    assert!(wq.queue(&a).unwrap());
    assert!(wq.queue(&b).unwrap());
    wq.flush().unwrap();
    assert_eq!(runs.get(), 2);
}

/// C4 — keep_working: a worker whose item comes back from blocking while
/// another worker runs must not take the next item. A blocks; the spare
/// runs B, which waits without telling the pool (so it counts as
/// running); C is queued behind it; A is released and finishes. C must
/// run after B, on B's worker, never on A's worker while B still runs.
pub fn keep_working_single_runner<P: ModelPlatform>(bugs: u64) {
    let platform = P::with_faults(FaultPlan::default());
    let system = system(platform, 1, 3, bugs);
    let wq = workqueue(&system, 0);
    let (a_started, release_a, a_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let (b_started, release_b, b_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let c_early = Counter::<P>::new();
    let a = {
        let (s, r, d) = (a_started.clone(), release_a.clone(), a_done.clone());
        Work::<P>::new(move || {
            s.set();
            r.wait_blocking();
            d.set();
        })
    };
    let b = {
        let (s, r, d) = (b_started.clone(), release_b.clone(), b_done.clone());
        Work::<P>::new(move || {
            s.set();
            r.wait(); // unannotated: B's worker keeps counting as running
            d.set();
        })
    };
    let c = {
        let (d, e) = (b_done.clone(), c_early.clone());
        Work::<P>::new(move || {
            if !d.is_set() {
                e.inc();
            }
        })
    };
    wq.queue(&a).unwrap();
    a_started.wait();
    wq.queue(&b).unwrap();
    b_started.wait();
    wq.queue(&c).unwrap();
    release_a.set();
    a_done.wait();
    release_b.set();
    wq.flush().unwrap();
    assert_eq!(c_early.get(), 0, "a second running worker started a new item");
}

/// A model: its name, the invariant it checks, and its body.
pub struct Model {
    /// Name (as in the README matrix).
    pub name: &'static str,
    /// Invariant ids from the top-level README.
    pub invariant: &'static str,
    /// The body on shuttle (argument: seeded-bug bits).
    pub shuttle: fn(u64),
    /// The body on loom (argument: seeded-bug bits).
    pub loom: fn(u64),
}

/// Defines `MODELS` and the `model_tests!` macro from one list, so that a
/// model cannot be registered without a loom and a shuttle test. (`$d` is
/// a literal `$` for the inner macro's own metavariable.)
macro_rules! models {
    ($d:tt $($name:ident: $inv:expr),* $(,)?) => {
        /// Every model.
        pub const MODELS: &[Model] = &[$(Model {
            name: stringify!($name),
            invariant: $inv,
            shuttle: $name::<crate::shuttle_platform::Shuttle>,
            loom: $name::<crate::loom_platform::Loom>,
        }),*];

        /// Expands to one `#[test]` per model, named after it, whose body
        /// calls `$run(name)`. Used by `tests/loom_models.rs` and
        /// `tests/shuttle_models.rs`.
        #[macro_export]
        macro_rules! model_tests {
            ($d run:path) => {
                $(#[test] fn $name() { $d run(stringify!($name)); })*
            };
        }
    };
}

models! {
    $
    exactly_once: "W1 W2",
    requeue_during_execution: "W3",
    non_reentrant_cross_cpu: "W4",
    non_reentrant_same_pool: "W4",
    queue_spreads_past_busy_cpu: "C9 W4",
    queue_racing_finish_across_pools: "W1 W4",
    inbox_left_as_the_worker_goes_idle: "C1 W1",
    inbox_items_cancelled_and_flushed: "W6 Q1",
    destroy_racing_inbox_leave: "Q6",
    cancel_racing_inbox_requeue: "W6",
    unbound_target_runs_two_at_once: "C6",
    work_conserving: "C1",
    unannotated_wait_detected: "C1 (M32)",
    detection_races_finish: "C4 (M32 M33)",
    detection_of_a_blocking_section: "C1 C4 (M32)",
    hog_lets_the_item_behind_it_run: "C1 (M34)",
    hog_report_races_finish: "C4 (M34)",
    flush_work_running: "W5",
    flush_work_racing_requeue: "W5",
    async_flush_work_racing_finish: "W5",
    async_flush_workqueue_racing_finish: "Q1",
    cancel_sync_self_requeue: "W6",
    cancel_sync_racing_queue: "W1 W6",
    flush_colours: "Q1 Q2",
    max_active_fifo: "Q3",
    cancel_inactive: "Q3",
    ordered_concurrent: "Q4",
    idle_cull_racing_queue: "C7",
    panic_racing_flush: "F1",
    destroy_racing_queue: "Q6",
    destroy_racing_queue_delayed: "Q6",
    destroy_racing_mod_delayed: "Q6",
    delayed_rearmed_during_its_firing: "Q6 (M30)",
    failed_spawn_retry: "C1 F4",
    shutdown_racing_flush: "Q6",
    keep_working_single_runner: "C4",
    rescuer_chain: "R1",
    chain_stalls_without_rescuer: "R2",
    rescuer_races_worker: "R3 W1 W4",
    rescuer_wakes_worker: "R4",
    destroy_racing_mayday: "R5",
    mayday_no_duplicate: "R6",
    cpu_down_racing_queue: "H1 W1 W6",
    offline_pool_runs_waiting_items: "H1 H2",
    cpu_up_racing_drain: "H2",
    requeue_during_handoff: "H3 W4",
    ordered_across_handoff: "H4 Q4",
    rebind_keeps_inactive: "H2 Q3",
    traced_pool: "W4 Q3 C1 (trace)",
    traced_hotplug: "H1 H2 (trace)",
    traced_rescue: "R1 R6 (trace)",
    traced_activation: "Q3 Q4 (trace)",
    traced_keep_working: "C1 C4 (trace)",
    job_cancel_racing_start: "W1 W6 (jobs)",
    job_panic_counted_before_join: "F1 (jobs)",
}
