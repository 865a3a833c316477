//! CPU hotplug on real threads: `cpu_down` hands a CPU's pools to a
//! trustee without waiting, `cpu_up` rebinds them, and a storm of both
//! keeps exactly-once execution (H1-H5 in SPEC.md).

use cmwq::{HotplugError, System, Work, Workqueue};
use cmwq_tests::{threads_named, wait_until, Gate};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;

/// Blocking detection off: these tests hold CPUs with unannotated waits to
/// show where concurrency management is suspended (H2) and where it is back.
fn hotplug_system(cpus: usize, prefix: &str) -> System {
    System::builder().cpus(cpus).highpri_pools(false).thread_name_prefix(prefix).detect_blocking(None).build().unwrap()
}

/// Bad requests are errors that say what is wrong.
#[test]
fn hotplug_requests_are_checked() {
    let system = hotplug_system(2, "hpe");
    assert_eq!(system.cpu_down(2), Err(HotplugError::NoSuchCpu { cpu: 2, cpus: 2 }));
    assert_eq!(system.cpu_up(0), Err(HotplugError::AlreadyOnline { cpu: 0 }));
    system.cpu_down(1).unwrap();
    assert!(!system.is_cpu_online(1));
    assert_eq!(system.cpu_down(1), Err(HotplugError::AlreadyOffline { cpu: 1 }));
    let last = system.cpu_down(0).unwrap_err();
    assert_eq!(last, HotplugError::LastCpu { cpu: 0 });
    assert!(last.to_string().contains("last online CPU"), "{last}");
    system.cpu_up(1).unwrap();
    assert!(system.is_cpu_online(1));
}

/// `cpu_down` returns while an item on that CPU is still blocked, and the
/// items behind it run although it blocks without telling the pool:
/// concurrency management is suspended on the offline CPU.
#[test]
fn cpu_down_does_not_wait_and_suspends_concurrency_management() {
    let system = hotplug_system(2, "hpd");
    let wq = Workqueue::builder("hp").build(&system).unwrap();
    let (x_started, y_ran) = (Arc::new(AtomicBool::new(false)), Arc::new(Gate::new()));
    let x = {
        let (started, y_ran) = (x_started.clone(), y_ran.clone());
        // Waits for Y *unannotated*: under concurrency management Y, queued
        // behind it on the same CPU, would wait for X to finish.
        Work::new(move || {
            started.store(true, SeqCst);
            y_ran.wait_unannotated();
        })
    };
    let y = {
        let ran = y_ran.clone();
        Work::new(move || ran.open())
    };
    wq.queue_on(1, &x).unwrap();
    wait_until("X runs", || x_started.load(SeqCst));
    wq.queue_on(1, &y).unwrap();
    thread::sleep(std::time::Duration::from_millis(50));
    assert!(!y_ran.is_open(), "Y started beside X on a bound, concurrency-managed pool");
    system.cpu_down(1).unwrap();
    // cpu_down returned; X may still be blocked. Y must now run.
    x.flush().unwrap();
    assert!(y_ran.is_open());
    let pool = system.pool_stats().into_iter().find(|p| p.cpu == Some(1) && !p.highpri).unwrap();
    assert!(pool.disassociated);
    assert_eq!(pool.running, 0, "an offline pool counts nobody as running: {pool:?}");
    system.cpu_up(1).unwrap();
}

/// Where items go while a CPU is offline: `queue_on` it is accepted and
/// runs on its pool; plain `queue` from a worker of the offline pool picks
/// an online CPU.
#[test]
fn queueing_while_a_cpu_is_offline() {
    let system = hotplug_system(2, "hpq");
    let wq = Workqueue::builder("hp").build(&system).unwrap();
    system.cpu_down(1).unwrap();
    let names = Arc::new(Mutex::new(Vec::new()));
    let record = |names: &Arc<Mutex<Vec<String>>>| {
        let names = names.clone();
        move || names.lock().unwrap().push(thread::current().name().unwrap_or("").to_string())
    };
    let on_offline = Work::new(record(&names));
    assert!(wq.queue_on(1, &on_offline).unwrap());
    on_offline.flush().unwrap();
    let plain = Work::new(record(&names));
    let from_offline_worker = {
        let (wq, plain) = (wq.clone(), plain.clone());
        Work::new(move || {
            wq.queue(&plain).unwrap();
        })
    };
    wq.queue_on(1, &from_offline_worker).unwrap();
    from_offline_worker.flush().unwrap();
    plain.flush().unwrap();
    let names = names.lock().unwrap().clone();
    assert!(names[0].starts_with("hpq/1:"), "queue_on an offline CPU runs on its pool: {names:?}");
    assert!(names[1].starts_with("hpq/0:"), "plain queue picks an online CPU: {names:?}");
    drop(from_offline_worker);
    system.cpu_up(1).unwrap();
}

/// The trustee retires the offline pool's idle workers (down to one) once
/// it is empty, and exits; `cpu_up` rebinds: workers count as running again.
#[test]
fn trustee_retires_idle_workers_then_cpu_up_rebinds() {
    let system = hotplug_system(2, "hpt");
    let wq = Workqueue::builder("hp").build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let blockers: Vec<Work> = (0..4)
        .map(|_| {
            let gate = gate.clone();
            Work::new(move || gate.wait())
        })
        .collect();
    for item in &blockers {
        wq.queue_on(1, item).unwrap();
    }
    let pool1 = |s: &System| s.pool_stats().into_iter().find(|p| p.cpu == Some(1) && !p.highpri).unwrap();
    wait_until("four workers blocked on CPU 1", || pool1(&system).workers >= 5);
    system.cpu_down(1).unwrap();
    gate.open();
    wq.flush().unwrap();
    wait_until("the trustee retires idle workers", || pool1(&system).workers == 1);
    wait_until("the trustee exits", || threads_named("hpt/T-1") == 0);
    system.cpu_up(1).unwrap();
    let pool = pool1(&system);
    assert!(!pool.disassociated);
    // Concurrency management is back: an item that blocks unannotated holds
    // the CPU, so one queued behind it waits.
    let (held, release) = (Arc::new(AtomicBool::new(false)), Arc::new(Gate::new()));
    let holder = {
        let (held, release) = (held.clone(), release.clone());
        Work::new(move || {
            held.store(true, SeqCst);
            release.wait_unannotated();
        })
    };
    let behind_ran = Arc::new(AtomicBool::new(false));
    let behind = {
        let ran = behind_ran.clone();
        Work::new(move || ran.store(true, SeqCst))
    };
    wq.queue_on(1, &holder).unwrap();
    wait_until("holder runs", || held.load(SeqCst));
    wq.queue_on(1, &behind).unwrap();
    thread::sleep(std::time::Duration::from_millis(50));
    assert!(!behind_ran.load(SeqCst), "after cpu_up the pool must be concurrency managed again");
    assert_eq!(pool1(&system).running, 1);
    release.open();
    wq.flush().unwrap();
    assert!(behind_ran.load(SeqCst));
}

/// H1 — a hotplug storm: CPUs go down and up at random while several
/// threads queue, flush, cancel and cancel_sync on several workqueues. Every
/// successful queueing runs exactly once or is cancelled, no item runs
/// twice at once, and nothing is left behind.
#[test]
fn hotplug_storm_keeps_exactly_once() {
    const CPUS: usize = 4;
    const ITEMS: usize = 24;
    const ROUNDS: usize = 3_000;
    let system = hotplug_system(CPUS, "hps");
    let wqs: Vec<Workqueue> = (0..3)
        .map(|i| {
            let mut builder = Workqueue::builder(format!("storm{i}"));
            if i == 2 {
                builder.max_active(1);
            }
            builder.build(&system).unwrap()
        })
        .collect();
    struct Item {
        work: Work,
        runs: Arc<AtomicUsize>,
        overlaps: Arc<AtomicUsize>,
        queued: AtomicUsize,
        cancelled: AtomicUsize,
    }
    let items: Arc<Vec<Item>> = Arc::new(
        (0..ITEMS)
            .map(|_| {
                let (runs, overlaps, in_flight) =
                    (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
                let work = {
                    let (runs, overlaps) = (runs.clone(), overlaps.clone());
                    Work::new(move || {
                        if in_flight.fetch_add(1, SeqCst) != 0 {
                            overlaps.fetch_add(1, SeqCst);
                        }
                        runs.fetch_add(1, SeqCst);
                        thread::yield_now();
                        in_flight.fetch_sub(1, SeqCst);
                    })
                };
                Item { work, runs, overlaps, queued: AtomicUsize::new(0), cancelled: AtomicUsize::new(0) }
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let plugger = {
        let (system, stop) = (system.clone(), stop.clone());
        thread::spawn(move || {
            let mut seed = 0x2545_f491_u64;
            let mut flips = 0;
            while !stop.load(SeqCst) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let cpu = (seed % CPUS as u64) as usize;
                let result = if system.is_cpu_online(cpu) { system.cpu_down(cpu) } else { system.cpu_up(cpu) };
                if result.is_ok() {
                    flips += 1;
                }
                thread::yield_now();
            }
            flips
        })
    };
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let (items, wqs) = (items.clone(), wqs.clone());
            thread::spawn(move || {
                let mut seed = 0x9e37_79b9_u64 + t as u64;
                for _ in 0..ROUNDS {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let item = &items[(seed % ITEMS as u64) as usize];
                    // One item always goes to the same workqueue
                    // (non-reentrancy is per workqueue).
                    let wq = &wqs[(seed % ITEMS as u64) as usize % wqs.len()];
                    let cpu = ((seed >> 8) % CPUS as u64) as usize;
                    match (seed >> 16) % 7 {
                        0 | 1 => {
                            if wq.queue_on(cpu, &item.work).unwrap() {
                                item.queued.fetch_add(1, SeqCst);
                            }
                        }
                        2 => {
                            if wq.queue(&item.work).unwrap() {
                                item.queued.fetch_add(1, SeqCst);
                            }
                        }
                        3 => {
                            item.work.flush().unwrap();
                        }
                        4 => {
                            if item.work.cancel() {
                                item.cancelled.fetch_add(1, SeqCst);
                            }
                        }
                        5 => {
                            if item.work.cancel_sync().unwrap() {
                                item.cancelled.fetch_add(1, SeqCst);
                            }
                        }
                        _ => wq.flush().unwrap(),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, SeqCst);
    let flips = plugger.join().unwrap();
    for wq in &wqs {
        wq.flush().unwrap();
    }
    let (mut runs, mut queued, mut cancelled) = (0, 0, 0);
    for item in items.iter() {
        item.work.flush().unwrap();
        assert!(item.work.busy().is_idle(), "an item was left behind");
        assert_eq!(item.overlaps.load(SeqCst), 0, "an item ran twice at once");
        let (r, q, c) = (item.runs.load(SeqCst), item.queued.load(SeqCst), item.cancelled.load(SeqCst));
        assert_eq!(r + c, q, "executions + cancellations != successful queueings");
        runs += r;
        queued += q;
        cancelled += c;
    }
    println!("hotplug storm: {flips} CPU state changes, {queued} queueings, {runs} runs, {cancelled} cancelled");
    assert!(flips > 0);
    for cpu in 0..CPUS {
        if !system.is_cpu_online(cpu) {
            system.cpu_up(cpu).unwrap();
        }
    }
    for pool in system.pool_stats() {
        assert_eq!(pool.pending, 0, "items left on a pool: {pool:?}");
    }
}

/// The CPUs the calling thread may run on.
#[cfg(target_os = "linux")]
fn thread_cpus(tid: libc::pid_t) -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect()
    }
}

/// Restricts thread `tid` (0: the caller; the process id: the main thread)
/// to `cpus`.
#[cfg(target_os = "linux")]
fn set_thread_cpus(tid: libc::pid_t, cpus: &[usize]) {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        assert_eq!(libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set), 0);
    }
}

/// Following the process's CPU set (opt-in): when the process (its main
/// thread's mask, which cpusets and `taskset -p` change) loses a CPU, the
/// system takes that CPU down; when it gets it back, up. Pinned workers run
/// on their CPU while it is online and anywhere in the set while it is
/// offline.
#[cfg(target_os = "linux")]
#[test]
fn following_the_process_cpu_set() {
    // SAFETY: getpid has no preconditions.
    let main_thread = unsafe { libc::getpid() };
    let original = thread_cpus(main_thread);
    if original.len() < 2 {
        println!("skipped: this process may use only {original:?}; following the CPU set needs two CPUs");
        return;
    }
    let system = System::builder()
        .cpus(2)
        .highpri_pools(false)
        .thread_name_prefix("hpf")
        .follow_cpu_set(true, std::time::Duration::from_millis(10))
        .pin_workers(true)
        .build()
        .unwrap();
    let wq = Workqueue::builder("pinned").build(&system).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let probe = {
        let seen = seen.clone();
        Work::new(move || seen.lock().unwrap().push(thread_cpus(0)))
    };
    wq.queue_on(1, &probe).unwrap();
    probe.flush().unwrap();
    assert_eq!(seen.lock().unwrap()[0], vec![original[1]], "a worker of CPU 1 is pinned to it");

    set_thread_cpus(main_thread, &[original[0]]);
    wait_until("CPU 1 taken down", || !system.is_cpu_online(1));
    wq.queue_on(1, &probe).unwrap();
    probe.flush().unwrap();
    set_thread_cpus(main_thread, &original);
    wait_until("CPU 1 brought back", || system.is_cpu_online(1));
    wq.queue_on(1, &probe).unwrap();
    probe.flush().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[1], vec![original[0]], "while CPU 1 is offline its workers run anywhere in the set");
    assert_eq!(seen[2], vec![original[1]], "back online, they are pinned again");
}
