//! Concurrency management on real threads: about one running worker per
//! CPU, replacement when it blocks, keep_working, CPU-intensive items, the
//! unbound pool's target of one runner per CPU, idle-worker retirement,
//! and non-reentrancy across CPUs.

use cmwq::{System, Work, Workqueue};
use cmwq_tests::{system, system_holding, wait_until, wq, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

/// A CPU-bound item: spins (without telling the pool) until released.
fn spinner(started: &Arc<AtomicBool>, release: &Arc<AtomicBool>, tid: &Arc<Mutex<Option<ThreadId>>>) -> Work {
    let (s, r, t) = (started.clone(), release.clone(), tid.clone());
    Work::new(move || {
        *t.lock().unwrap() = Some(thread::current().id());
        s.store(true, SeqCst);
        // Bounded, so that a failed assertion before the release ends the
        // test instead of hanging its system's shutdown.
        let start = std::time::Instant::now();
        while !r.load(SeqCst) && start.elapsed() < Duration::from_secs(20) {
            std::hint::spin_loop();
            thread::yield_now();
        }
    })
}

fn recorder(ran: &Arc<AtomicBool>, tid: &Arc<Mutex<Option<ThreadId>>>) -> Work {
    let (r, t) = (ran.clone(), tid.clone());
    Work::new(move || {
        *t.lock().unwrap() = Some(thread::current().id());
        r.store(true, SeqCst);
    })
}

/// Guarantee: queueing onto a pool whose worker is running wakes nobody;
/// the running worker takes the new items itself when it is done.
#[test]
fn queueing_behind_a_running_worker_wakes_nobody() {
    // Hog detection off: the spinner runs past its 10 ms threshold.
    let system = system_holding(1);
    let wq = wq(&system, "no_wake");
    let (started, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let spin_tid = Arc::new(Mutex::new(None));
    let hog = spinner(&started, &release, &spin_tid);
    wq.queue(&hog).unwrap();
    wait_until("hog running", || started.load(SeqCst));
    // A spare idle worker exists, so waking one would be possible.
    wait_until("spare worker idle", || {
        let pool = &system.pool_stats()[0];
        pool.idle >= 1 && pool.running == 1
    });
    let ran: Vec<_> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let tids: Vec<_> = (0..3).map(|_| Arc::new(Mutex::new(None))).collect();
    let items: Vec<Work> = (0..3).map(|i| recorder(&ran[i], &tids[i])).collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    thread::sleep(Duration::from_millis(30));
    assert!(ran.iter().all(|r| !r.load(SeqCst)), "an item started while the running worker still ran");
    assert_eq!(system.pool_stats()[0].running, 1);
    release.store(true, SeqCst);
    wq.flush().unwrap();
    for tid in &tids {
        assert_eq!(*tid.lock().unwrap(), *spin_tid.lock().unwrap(), "the running worker continued with the queue");
    }
}

/// Guarantee (keep_working): a worker that finishes an item while another
/// worker runs does not start new items.
#[test]
fn keep_working_lets_only_one_runner_start_items() {
    // Hog detection off: the spinner b runs past its 10 ms threshold.
    let system = system_holding(1);
    let wq = wq(&system, "keep_working");
    let gate = Arc::new(Gate::new());
    let a_done = Arc::new(AtomicBool::new(false));
    let a_tid = Arc::new(Mutex::new(None));
    let a = {
        let (g, d, t) = (gate.clone(), a_done.clone(), a_tid.clone());
        Work::new(move || {
            *t.lock().unwrap() = Some(thread::current().id());
            g.wait(); // blocks: another worker takes over the CPU
            d.store(true, SeqCst);
        })
    };
    let (b_started, b_release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let b_tid = Arc::new(Mutex::new(None));
    let b = spinner(&b_started, &b_release, &b_tid);
    wq.queue(&a).unwrap();
    wq.queue(&b).unwrap();
    wait_until("b runs while a blocks", || b_started.load(SeqCst));
    let ran: Vec<_> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let tids: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(None))).collect();
    let items: Vec<Work> = (0..2).map(|i| recorder(&ran[i], &tids[i])).collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    gate.open(); // a's worker wakes: two runners now
    wait_until("a finished", || a_done.load(SeqCst));
    thread::sleep(Duration::from_millis(30));
    assert!(ran.iter().all(|r| !r.load(SeqCst)), "a's worker took a new item while b's worker ran");
    b_release.store(true, SeqCst);
    wq.flush().unwrap();
    for tid in &tids {
        assert_eq!(*tid.lock().unwrap(), *b_tid.lock().unwrap(), "the remaining runner took the queue");
    }
    assert_ne!(*a_tid.lock().unwrap(), *b_tid.lock().unwrap());
}

/// Guarantee: a CPU-intensive item leaves nr_running while it runs, so it
/// does not hold back the pool's other items.
#[test]
fn cpu_intensive_item_does_not_hold_back_others() {
    let system = system(1);
    let mut builder = Workqueue::builder("crunch");
    let intensive = builder.cpu_intensive().build(&system).unwrap();
    let normal = wq(&system, "normal");
    let (started, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let tid = Arc::new(Mutex::new(None));
    let hog = spinner(&started, &release, &tid);
    intensive.queue(&hog).unwrap();
    wait_until("hog running", || started.load(SeqCst));
    // The short item releases the hog: only completes if it runs meanwhile.
    let r = release.clone();
    let short = Work::new(move || r.store(true, SeqCst));
    normal.queue(&short).unwrap();
    intensive.flush().unwrap();
    normal.flush().unwrap();
    assert!(release.load(SeqCst));
}

/// CPUs of the systems the unbound tests build: the unbound pool's
/// concurrency target.
const UNBOUND_CPUS: usize = 2;

/// The unbound (normal priority) pool's snapshot.
fn unbound_pool(system: &System) -> cmwq::PoolStats {
    system.pool_stats().into_iter().find(|p| p.cpu.is_none() && !p.highpri).expect("an unbound pool")
}

/// Sets every flag when dropped.
struct ReleaseOnDrop(Vec<Arc<AtomicBool>>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(|r| r.store(true, SeqCst));
    }
}

/// Guarantee C6: the unbound pool is concurrency managed with a target of
/// one running worker per CPU. With that many CPU-bound items running (none
/// blocks), a further one waits until one of them ends, and no more than
/// the target ever run at once.
#[test]
fn unbound_items_run_up_to_one_per_cpu() {
    // Hog detection off: the spinners run past its 10 ms threshold.
    let system = system_holding(UNBOUND_CPUS);
    let wq = Workqueue::builder("unbound").unbound().build(&system).unwrap();
    let (in_flight, max_in_flight) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started: Vec<_> = (0..=UNBOUND_CPUS).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let release: Vec<_> = (0..=UNBOUND_CPUS).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let items: Vec<Work> = (0..=UNBOUND_CPUS)
        .map(|i| {
            let (f, m, s, r) = (in_flight.clone(), max_in_flight.clone(), started[i].clone(), release[i].clone());
            Work::new(move || {
                m.fetch_max(f.fetch_add(1, SeqCst) + 1, SeqCst);
                s.store(true, SeqCst);
                while !r.load(SeqCst) {
                    std::hint::spin_loop(); // unannotated: counts as running
                    thread::yield_now();
                }
                f.fetch_sub(1, SeqCst);
            })
        })
        .collect();
    // Releases every item even when an assertion fails, so that the
    // system's drop does not wait for spinners forever.
    let release_all = ReleaseOnDrop(release.clone());
    for item in &items {
        wq.queue(item).unwrap();
    }
    let running = || started.iter().filter(|s| s.load(SeqCst)).count();
    wait_until("the target's worth of items running", || running() >= UNBOUND_CPUS);
    thread::sleep(Duration::from_millis(30));
    assert_eq!(running(), UNBOUND_CPUS, "an item started beyond the target");
    assert_eq!(unbound_pool(&system).running, UNBOUND_CPUS);
    let first = started.iter().position(|s| s.load(SeqCst)).unwrap();
    release[first].store(true, SeqCst);
    wait_until("the waiting item started", || running() == UNBOUND_CPUS + 1);
    drop(release_all);
    wq.flush().unwrap();
    assert_eq!(max_in_flight.load(SeqCst), UNBOUND_CPUS, "more items ran at once than the target");
}

/// Guarantee C6 (and C1): an unbound item that blocks through
/// `cmwq::blocking` stops counting as running and is replaced, so items
/// that all block get a worker each, beyond the target: here the target
/// plus two, waiting on one barrier that opens only once all of them run.
#[test]
fn blocked_unbound_items_each_get_a_worker() {
    let system = system(UNBOUND_CPUS);
    let wq = Workqueue::builder("unbound_blocking").unbound().build(&system).unwrap();
    let barrier = Arc::new(Barrier::new(UNBOUND_CPUS + 2));
    let items: Vec<Work> = (0..UNBOUND_CPUS + 2)
        .map(|_| {
            let b = barrier.clone();
            Work::new(move || {
                cmwq::blocking(|| b.wait());
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
}

/// C6's opt-out: with `unbound_concurrency(UNBOUND_UNMANAGED)` the unbound
/// pool keeps the kernel's rule, so items that wait for each other
/// without telling the pool (here one CPU, four items on one barrier, no
/// `blocking()`) still each get a worker; with a target, it would be a
/// deadlock. A target of 0 is refused.
#[test]
fn an_unmanaged_unbound_pool_gives_every_waiting_item_a_worker() {
    let system = System::builder().cpus(1).unbound_concurrency(cmwq::UNBOUND_UNMANAGED).build().expect("system builds");
    let wq = Workqueue::builder("unbound_unmanaged").unbound().build(&system).unwrap();
    // A barrier with patience, so that a broken rule fails instead of hanging.
    let arrived = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let met = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..4)
        .map(|_| {
            let (arrived, met) = (arrived.clone(), met.clone());
            Work::new(move || {
                let (count, cv) = &*arrived;
                let mut count = count.lock().unwrap();
                *count += 1;
                cv.notify_all();
                let (_count, timeout) = cv.wait_timeout_while(count, Duration::from_secs(20), |c| *c < 4).unwrap();
                if !timeout.timed_out() {
                    met.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(met.load(SeqCst), 4, "an item waited for a worker behind the others");
    let refused = System::builder().unbound_concurrency(0).build();
    assert!(matches!(refused, Err(cmwq::BuildError::OutOfRange { field: "unbound_concurrency", .. })), "{refused:?}");
}

/// Guarantee C6, against the thread explosion of an unmanaged pool (a
/// worker per waiting item: 17 workers for this batch with the pool
/// unmanaged, 3 with its target): a batch of 200 CPU-bound unbound items
/// of 1 ms each is served by about one worker per CPU, plus the idle
/// spares concurrency management keeps.
#[test]
fn a_cpu_bound_unbound_batch_stays_near_the_cpu_count() {
    let system = system(UNBOUND_CPUS);
    let wq = Workqueue::builder("unbound_batch").unbound().build(&system).unwrap();
    let items: Vec<Work> = (0..200)
        .map(|_| {
            Work::new(|| {
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_millis(1) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wq.flush().unwrap();
    // Idle workers live for the idle timeout (300 s), so the count now is
    // every worker the batch made.
    let workers = unbound_pool(&system).workers;
    assert!(workers <= UNBOUND_CPUS + 3, "{workers} workers for a CPU-bound batch on {UNBOUND_CPUS} CPUs");
}

/// Guarantee: non-reentrancy across CPUs: an item requeued to another CPU
/// while it runs is never executed by two workers at once, and still runs
/// exactly once per successful queueing. The item requeues itself onto the
/// other CPU from inside (so the requeue always lands while it runs) and
/// then blocks, leaving the other CPU's pool free to run it if the
/// non-reentrancy lookup were missing; outside threads race in as well.
#[test]
fn non_reentrant_across_cpus() {
    let system = system(2);
    let wq = wq(&system, "reentrancy");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let queued = Arc::new(AtomicUsize::new(0));
    const SELF_REQUEUES: usize = 300;
    let item = {
        let (f, o, r, q, wq) = (in_flight.clone(), overlaps.clone(), runs.clone(), queued.clone(), wq.clone());
        Work::with_self(move |me| {
            if f.fetch_add(1, SeqCst) != 0 {
                o.fetch_add(1, SeqCst);
            }
            let n = r.fetch_add(1, SeqCst);
            if n < SELF_REQUEUES && wq.queue_on((n + 1) % 2, me).unwrap() {
                q.fetch_add(1, SeqCst);
            }
            cmwq::sleep(Duration::from_micros(100));
            f.fetch_sub(1, SeqCst);
        })
    };
    assert!(wq.queue_on(0, &item).unwrap());
    queued.fetch_add(1, SeqCst);
    thread::scope(|s| {
        for t in 0..2 {
            let (wq, item, queued, runs) = (&wq, &item, &queued, &runs);
            s.spawn(move || {
                let mut i = t;
                while runs.load(SeqCst) < SELF_REQUEUES {
                    if wq.queue_on(i % 2, item).unwrap() {
                        queued.fetch_add(1, SeqCst);
                    }
                    i += 1;
                    thread::yield_now();
                }
            });
        }
    });
    wq.flush().unwrap();
    item.flush().unwrap();
    assert_eq!(overlaps.load(SeqCst), 0, "the item ran on two workers at once");
    assert_eq!(runs.load(SeqCst), queued.load(SeqCst));
    assert!(runs.load(SeqCst) >= SELF_REQUEUES);
}

/// Idle workers beyond the policy are retired after the idle timeout.
#[test]
fn idle_workers_are_retired() {
    let system = System::builder().cpus(1).idle_timeout(Duration::from_millis(30)).build().unwrap();
    let wq = wq(&system, "cull");
    let gate = Arc::new(Gate::new());
    let items: Vec<Work> = (0..12)
        .map(|_| {
            let g = gate.clone();
            Work::new(move || g.wait())
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    wait_until("a worker per blocked item", || system.pool_stats()[0].workers >= 13);
    gate.open();
    wq.flush().unwrap();
    // With nothing busy, the policy keeps two idle workers.
    wait_until("surplus retired", || system.pool_stats()[0].workers == 2);
    assert_eq!(system.pool_stats()[0].idle, 2);
}

/// `blocking` outside a worker just runs the closure.
#[test]
fn blocking_outside_a_worker_runs_the_closure() {
    assert_eq!(cmwq::blocking(|| 7), 7);
}
