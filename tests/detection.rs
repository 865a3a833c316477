//! Blocking detected without annotation (`core/src/monitor.rs`, machine
//! rules M32-M33): items that block in ordinary `std` calls — a sleep, a
//! channel, a `Mutex`, a socket read — never enter `cmwq::blocking`, yet
//! the items queued behind them run, as the kernel's scheduler hook makes
//! them run. Linux only (the monitor reads `/proc`). Every wait here is
//! bounded: a scenario that stalls fails its test instead of hanging it.

#![cfg(target_os = "linux")]

use cmwq::{System, Work, Workqueue};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Long enough for any detection on a loaded machine, short enough to
/// fail a stalled scenario quickly.
const PATIENCE: Duration = Duration::from_secs(20);

/// A one-CPU system with blocking detection at its default.
fn one_cpu() -> (System, Workqueue) {
    let system = System::builder().cpus(1).build().expect("system builds");
    let wq = Workqueue::builder("detect").build(&system).expect("workqueue builds");
    (system, wq)
}

/// Waits up to `PATIENCE` for `cond`.
fn within_patience(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// The seed's scenario with `blockers` items that each block, unannotated,
/// through `block` until `release` is called; a short item queued after
/// them must run while they block, and its run releases them.
fn seed_scenario(
    blockers: usize,
    block: impl Fn(usize) + Send + Sync + 'static,
    release: impl FnOnce() + Send + 'static,
) {
    let (system, wq) = one_cpu();
    let block = Arc::new(block);
    let started = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..blockers)
        .map(|i| {
            let (block, started) = (block.clone(), started.clone());
            Work::new(move || {
                started.fetch_add(1, SeqCst);
                block(i);
            })
        })
        .collect();
    for item in &items {
        wq.queue(item).unwrap();
    }
    let short_ran = Arc::new(AtomicBool::new(false));
    let release = Mutex::new(Some(release));
    let short = {
        let short_ran = short_ran.clone();
        Work::new(move || {
            short_ran.store(true, SeqCst);
            if let Some(release) = release.lock().unwrap().take() {
                release();
            }
        })
    };
    wq.queue(&short).unwrap();
    let ran = within_patience(|| short_ran.load(SeqCst));
    assert!(ran, "the short item did not run while {} blocker(s) blocked unannotated", started.load(SeqCst));
    wq.flush().unwrap();
    assert_eq!(started.load(SeqCst), blockers);
    assert!(system.pool_stats()[0].detected >= 1, "no worker was seen blocked");
}

#[test]
fn seed_scenario_with_std_sleep() {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    seed_scenario(
        3,
        move |_| {
            // Bounded, like every wait here: a failed test must not hang
            // in the drain of its workqueue.
            let start = Instant::now();
            while !d.load(SeqCst) && start.elapsed() < PATIENCE {
                std::thread::sleep(Duration::from_millis(1));
            }
        },
        move || done.store(true, SeqCst),
    );
}

#[test]
fn seed_scenario_with_std_channel() {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let blockers = 3;
    seed_scenario(
        blockers,
        // The first blocker waits in `recv` holding the receiver's lock;
        // the others wait for that lock: both are sleeps the monitor sees.
        move |_| {
            let _ = rx.lock().unwrap().recv_timeout(PATIENCE);
        },
        move || {
            for _ in 0..blockers {
                let _ = tx.send(());
            }
        },
    );
}

#[test]
fn seed_scenario_with_std_mutex() {
    // A helper thread holds the lock until the short item tells it to let go.
    let lock = Arc::new(Mutex::new(()));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let holder = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            let _held = lock.lock().unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(PATIENCE);
        })
    };
    held_rx.recv().unwrap();
    let release_tx = Mutex::new(release_tx);
    seed_scenario(
        2,
        move |_| drop(lock.lock().unwrap()),
        move || {
            let _ = release_tx.lock().unwrap().send(());
        },
    );
    holder.join().unwrap();
}

#[test]
fn seed_scenario_with_socket_read() {
    let (mut writer, reader) = UnixStream::pair().unwrap();
    reader.set_read_timeout(Some(PATIENCE)).unwrap();
    let reader = Mutex::new(reader);
    seed_scenario(
        1,
        move |_| {
            let mut byte = [0u8; 1];
            let _ = reader.lock().unwrap().read(&mut byte);
        },
        move || {
            let _ = writer.write_all(&[1]);
        },
    );
}

/// A file read that blocks: a named pipe (FIFO) opened and read through
/// `std::fs`, both of which wait for the other end. A helper thread writes
/// the byte when the short item asks (or after `PATIENCE`, so a failure
/// cannot leave the blocker waiting for good).
#[test]
#[allow(unsafe_code)]
fn seed_scenario_with_file_read() {
    use std::os::unix::ffi::OsStrExt;
    let path = std::env::temp_dir().join(format!("cmwq-detect-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `name` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo failed");
    let (go, wait) = mpsc::channel::<()>();
    let writer_path = path.clone();
    std::thread::spawn(move || {
        let _ = wait.recv_timeout(PATIENCE);
        if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&writer_path) {
            let _ = fifo.write_all(&[1]);
        }
    });
    let reader_path = path.clone();
    seed_scenario(
        1,
        move |_| {
            let mut fifo = std::fs::File::open(&reader_path).expect("the FIFO opens");
            let mut byte = [0u8; 1];
            let _ = fifo.read(&mut byte);
        },
        move || {
            let _ = go.send(());
        },
    );
    let _ = std::fs::remove_file(&path);
}

/// A chain of items, each waiting unannotated on a channel for the next
/// one, which it queues itself: a fixed pool with fewer threads than the
/// chain deadlocks; here each blocked link is seen and the next one runs.
#[test]
fn nested_waits_complete_without_annotation() {
    const DEPTH: usize = 6;
    let (system, wq) = one_cpu();
    let done = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    fn link(
        wq: Workqueue,
        depth: usize,
        done: Arc<AtomicUsize>,
        timeouts: Arc<AtomicUsize>,
        tell: Option<mpsc::Sender<()>>,
    ) -> Work {
        Work::new(move || {
            if depth > 1 {
                let (tx, rx) = mpsc::channel::<()>();
                let next = link(wq.clone(), depth - 1, done.clone(), timeouts.clone(), Some(tx));
                wq.queue(&next).unwrap();
                if rx.recv_timeout(PATIENCE).is_err() {
                    timeouts.fetch_add(1, SeqCst);
                }
            }
            done.fetch_add(1, SeqCst);
            if let Some(tell) = &tell {
                let _ = tell.send(());
            }
        })
    }
    let first = link(wq.clone(), DEPTH, done.clone(), timeouts.clone(), None);
    wq.queue(&first).unwrap();
    assert!(within_patience(|| done.load(SeqCst) == DEPTH), "the chain stalled at {} of {DEPTH}", done.load(SeqCst));
    wq.flush().unwrap();
    assert_eq!(timeouts.load(SeqCst), 0, "a link waited out its patience: its successor did not run");
    assert!(system.pool_stats()[0].detected >= DEPTH - 1, "each waiting link was seen blocked");
}

/// CPU-bound items are never taken for blocked: a runnable thread waiting
/// for a CPU is not asleep, and a running one accumulates CPU time. Two
/// spinning items on one CPU run one after the other, as without detection
/// (with CPU-hog detection off: a 150 ms spin is a hog, and a hog lets the
/// item behind it start, as `tests/hogs.rs` checks).
#[test]
fn a_cpu_bound_item_is_never_seen_blocked() {
    let system = System::builder().cpus(1).cpu_hog(None).build().expect("system builds");
    let wq = Workqueue::builder("detect").build(&system).expect("workqueue builds");
    let first_done = Arc::new(AtomicBool::new(false));
    let overlapped = Arc::new(AtomicBool::new(false));
    let spin = |for_: Duration| {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < for_ {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    };
    let a = {
        let first_done = first_done.clone();
        Work::new(move || {
            spin(Duration::from_millis(150));
            first_done.store(true, SeqCst);
        })
    };
    let b = {
        let (first_done, overlapped) = (first_done.clone(), overlapped.clone());
        Work::new(move || {
            if !first_done.load(SeqCst) {
                overlapped.store(true, SeqCst);
            }
            spin(Duration::from_millis(50));
        })
    };
    wq.queue(&a).unwrap();
    wq.queue(&b).unwrap();
    wq.flush().unwrap();
    assert_eq!(system.pool_stats()[0].detected, 0, "a spinning worker was taken for blocked");
    assert!(!overlapped.load(SeqCst), "the second CPU-bound item started beside the first");
}

/// `detect_blocking(None)` switches detection off: an item that sleeps
/// unannotated holds its CPU's pool again, and the short item behind it
/// waits (the test then releases the sleeper itself).
#[test]
fn detection_can_be_switched_off() {
    let system = System::builder().cpus(1).detect_blocking(None).build().unwrap();
    let wq = Workqueue::builder("undetected").build(&system).unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let short_ran = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let release = release.clone();
        Work::new(move || {
            let start = Instant::now();
            while !release.load(SeqCst) && start.elapsed() < PATIENCE {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let short = {
        let short_ran = short_ran.clone();
        Work::new(move || short_ran.store(true, SeqCst))
    };
    wq.queue(&sleeper).unwrap();
    wq.queue(&short).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!short_ran.load(SeqCst), "the short item ran: something released the sleeper's CPU");
    release.store(true, SeqCst);
    wq.flush().unwrap();
    assert!(short_ran.load(SeqCst));
    assert_eq!(system.pool_stats()[0].detected, 0);
}

/// A worker blocked unannotated on an offline CPU's pool is not counted
/// (H2), so the monitor's report of it is rejected; once the CPU is back
/// and the worker counts again, it must be reported again: the item queued
/// behind it on that CPU runs.
#[test]
fn a_worker_blocked_across_cpu_up_is_seen_again() {
    let system = System::builder().cpus(2).highpri_pools(false).build().unwrap();
    let wq = Workqueue::builder("detect_hotplug").build(&system).unwrap();
    system.cpu_down(1).unwrap();
    let started = Arc::new(AtomicBool::new(false));
    // Asleep all along (one wait, no wake-ups a probe could catch running).
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let blocker = {
        let started = started.clone();
        Work::new(move || {
            started.store(true, SeqCst);
            let _ = released.lock().unwrap().recv_timeout(2 * PATIENCE);
        })
    };
    wq.queue_on(1, &blocker).unwrap();
    assert!(within_patience(|| started.load(SeqCst)));
    // Long enough for the monitor to see it asleep and be refused.
    std::thread::sleep(Duration::from_millis(20));
    system.cpu_up(1).unwrap();
    let behind_ran = Arc::new(AtomicBool::new(false));
    let behind = {
        let ran = behind_ran.clone();
        Work::new(move || ran.store(true, SeqCst))
    };
    wq.queue_on(1, &behind).unwrap();
    let ran = within_patience(|| behind_ran.load(SeqCst));
    let _ = release.send(());
    wq.flush().unwrap();
    assert!(ran, "the item behind a worker blocked across cpu_up never ran");
}

/// The monitor parks once no worker has run an item for a while (about
/// 8 ms); the first item to begin after that must wake it, or a wait in
/// that item is never seen. A quiet system, then the seed's scenario.
#[test]
fn a_parked_monitor_wakes_for_the_next_item() {
    let (system, wq) = one_cpu();
    std::thread::sleep(Duration::from_millis(100));
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let blocker = Work::new(move || {
        let _ = released.lock().unwrap().recv_timeout(2 * PATIENCE);
    });
    let short_ran = Arc::new(AtomicBool::new(false));
    let short = {
        let short_ran = short_ran.clone();
        Work::new(move || short_ran.store(true, SeqCst))
    };
    wq.queue(&blocker).unwrap();
    wq.queue(&short).unwrap();
    let ran = within_patience(|| short_ran.load(SeqCst));
    let _ = release.send(());
    wq.flush().unwrap();
    assert!(ran, "the item behind a blocked one never ran: the parked monitor was not woken");
    assert!(system.pool_stats()[0].detected >= 1);
}

/// A worker inside a `blocking()` section is counted out already: the
/// monitor does not watch it (no probe, no report for the machine to turn
/// down), and watches it again once it leaves and waits unannotated.
#[test]
fn a_worker_in_a_blocking_section_is_not_watched() {
    let (system, wq) = one_cpu();
    let (in_section, leave_section) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (unannotated, finish) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let item = {
        let (in_section, leave_section) = (in_section.clone(), leave_section.clone());
        let (unannotated, finish) = (unannotated.clone(), finish.clone());
        Work::new(move || {
            cmwq::blocking(|| {
                in_section.store(true, SeqCst);
                let start = Instant::now();
                while !leave_section.load(SeqCst) && start.elapsed() < PATIENCE {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            unannotated.store(true, SeqCst);
            let start = Instant::now();
            while !finish.load(SeqCst) && start.elapsed() < PATIENCE {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    wq.queue(&item).unwrap();
    assert!(within_patience(|| in_section.load(SeqCst)));
    let inside = system.monitor_pass();
    leave_section.store(true, SeqCst);
    assert!(within_patience(|| unannotated.load(SeqCst)));
    let after = system.monitor_pass();
    finish.store(true, SeqCst);
    wq.flush().unwrap();
    assert_eq!((inside.executing, inside.detected), (0, 0), "a worker in a section was watched: {inside:?}");
    assert_eq!(after.executing, 1, "the worker was not watched again after its section: {after:?}");
}
