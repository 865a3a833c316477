//! Hostile input and lifecycle edges: one named regression test for each
//! case that used to panic, hang, leak or spin, and "panics everywhere".
//! Every test runs under a guard that turns a hang into a failure.

use cmwq::{BuildError, DelayedWork, System, Work, Workqueue};
use cmwq_tests::{threads_left_after_join, threads_named, wait_until, Gate};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Far beyond any normal run time of these tests (each takes well under a
/// second): only there to fail instead of hanging CI.
const GUARD: Duration = Duration::from_secs(60);

/// Runs `body` on its own thread and fails the test if it does not return
/// within [`GUARD`] (a hang), re-raising its panic otherwise.
fn guarded<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let value = body();
        let _ = tx.send(());
        value
    });
    match rx.recv_timeout(GUARD) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not return within {GUARD:?} (a hang)"),
    }
}

/// A value whose `Drop` panics: captured state of a hostile work item.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

fn small_system(prefix: &str) -> System {
    System::builder().cpus(1).thread_name_prefix(prefix).build().unwrap()
}

/// Was: `queue_delayed(&d, Duration::MAX)` panicked on the deadline
/// overflow after claiming the item, which then stayed PENDING for good.
#[test]
fn queue_delayed_with_duration_max_keeps_the_item_usable() {
    guarded("delayed MAX", || {
        let system = small_system("hdm");
        let wq = Workqueue::builder("far").build(&system).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let item = DelayedWork::new(move || {
            r.fetch_add(1, SeqCst);
        });
        assert!(wq.queue_delayed(&item, Duration::MAX).unwrap(), "accepted: it waits forever");
        assert!(item.busy().pending);
        assert!(item.cancel(), "cancel returns at once and finds it pending");
        assert!(item.busy().is_idle());
        // The same through the other entry points.
        assert!(wq.queue_delayed_on(0, &item, Duration::MAX).unwrap());
        assert!(wq.mod_delayed(&item, Duration::MAX).unwrap(), "it was pending");
        assert!(item.cancel_sync().unwrap());
        // A later queueing works and runs.
        assert!(wq.queue_delayed(&item, Duration::from_millis(1)).unwrap());
        wait_until("the delayed item ran", || runs.load(SeqCst) == 1);
        item.flush().unwrap();
        assert_eq!(runs.load(SeqCst), 1);
    });
}

/// Was: a NUL byte in the thread-name prefix made `build()` hang forever.
#[test]
fn nul_in_thread_name_prefix_is_refused() {
    let err = guarded("build with NUL prefix", || System::builder().thread_name_prefix("a\0b").build().unwrap_err());
    assert!(matches!(err, BuildError::InvalidName { field: "thread_name_prefix", .. }), "{err:?}");
    assert!(err.to_string().contains("NUL"), "{err}");
}

/// Was: a NUL byte in a `mem_reclaim` workqueue's name panicked (its
/// rescuer thread is named after it).
#[test]
fn nul_in_mem_reclaim_workqueue_name_is_refused() {
    guarded("mem_reclaim NUL name", || {
        let system = small_system("hnul");
        let err = Workqueue::builder("bad\0name").mem_reclaim().build(&system).unwrap_err();
        assert!(matches!(err, BuildError::InvalidName { field: "workqueue name", .. }), "{err:?}");
        assert_eq!(system.live_workqueues(), 0, "nothing was registered");
        let long = "w".repeat(cmwq::MAX_NAME_LEN + 1);
        assert!(matches!(Workqueue::builder(long).build(&system), Err(BuildError::InvalidName { .. })));
        // Non-ASCII names are fine.
        let wq = Workqueue::builder("récupération/名前").mem_reclaim().build(&system).unwrap();
        let work = Work::new(|| {});
        wq.queue(&work).unwrap();
        wq.flush().unwrap();
    });
}

/// Was: `cpus(usize::MAX)` panicked (capacity overflow); nothing bounded it.
#[test]
fn cpus_beyond_the_limit_are_refused() {
    for cpus in [usize::MAX, cmwq::MAX_CPUS + 1] {
        let err = guarded("huge cpus", move || System::builder().cpus(cpus).build().unwrap_err());
        match &err {
            BuildError::OutOfRange { field: "cpus", value, allowed } => {
                assert_eq!(value, &cpus.to_string());
                assert_eq!(allowed, "1..=8192");
            }
            other => panic!("expected OutOfRange for cpus, got {other:?}"),
        }
        assert!(err.to_string().contains("cpus"), "{err}");
    }
}

/// Was: `follow_cpu_set(true, Duration::MAX)` panicked inside `build()`.
#[test]
fn follow_cpu_set_with_duration_max_builds_and_works() {
    guarded("follow MAX", || {
        let system = System::builder().cpus(2).follow_cpu_set(true, Duration::MAX).build().unwrap();
        let wq = Workqueue::builder("q").build(&system).unwrap();
        let work = Work::new(|| {});
        wq.queue_on(1, &work).unwrap();
        wq.flush().unwrap();
    });
}

/// Was: `follow_cpu_set(true, Duration::ZERO)` made an idle system use a
/// whole CPU, and `idle_spins(u32::MAX)` made idle workers use every CPU.
/// Both are refused now, naming the limit. (The idle CPU use of every
/// configuration that builds is measured in `builder_props.rs`.)
#[test]
fn spinning_configurations_are_refused() {
    let err = System::builder().follow_cpu_set(true, Duration::ZERO).build().unwrap_err();
    assert!(matches!(err, BuildError::OutOfRange { field: "cpu_set_poll_interval", .. }), "{err:?}");
    assert!(err.to_string().contains("10ms"), "{err}");
    let err = System::builder().idle_spins(u32::MAX).build().unwrap_err();
    assert!(matches!(err, BuildError::OutOfRange { field: "idle_spins", .. }), "{err:?}");
    assert!(err.to_string().contains("0..=4096"), "{err}");
    for (field, builder) in [
        ("idle_timeout", System::builder().idle_timeout(Duration::ZERO).clone()),
        ("create_cooldown", System::builder().create_cooldown(Duration::ZERO).clone()),
        ("mayday_interval", System::builder().mayday_timeouts(Duration::from_millis(1), Duration::ZERO).clone()),
    ] {
        match builder.build() {
            Err(BuildError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected OutOfRange, got {other:?}"),
        }
    }
    // Without a timer thread the embedder delivers timers: zero is fine.
    let system = System::builder()
        .cpus(1)
        .timer_thread(false)
        .create_cooldown(Duration::ZERO)
        .mayday_timeouts(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(system.cpus(), 1);
}

/// Was: other sums with user intervals (idle timeout, create cooldown,
/// mayday timeouts) overflowed on engine threads while a pool lock was
/// held. With every interval at `Duration::MAX` and a one-worker limit
/// (so that creation fails and the mayday timer is armed), work still runs.
#[test]
fn interval_sums_saturate_on_engine_threads() {
    guarded("MAX intervals", || {
        let system = System::builder()
            .cpus(1)
            .max_workers_per_pool(1)
            .idle_timeout(Duration::MAX)
            .create_cooldown(Duration::MAX)
            .mayday_timeouts(Duration::MAX, Duration::MAX)
            .thread_name_prefix("hmax")
            .build()
            .unwrap();
        let wq = Workqueue::builder("q").mem_reclaim().build(&system).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let items: Vec<Work> = (0..20)
            .map(|_| {
                let r = runs.clone();
                Work::new(move || {
                    cmwq::sleep(Duration::from_micros(50));
                    r.fetch_add(1, SeqCst);
                })
            })
            .collect();
        for item in &items {
            wq.queue(item).unwrap();
        }
        wq.flush().unwrap();
        assert_eq!(runs.load(SeqCst), 20);
        // The limit refused a spare, so the mayday timer was armed at
        // now + MAX: saturated, never due.
        assert_eq!(system.pool_stats()[0].workers, 1);
        assert_eq!(system.next_timer_deadline(), Some(Duration::MAX), "armed, saturated");
    });
}

/// Was: a work item whose captured state panics in `Drop` killed its
/// worker (the engine dropped the last reference): the pool wedged, later
/// items on that CPU never ran, `flush` hung.
#[test]
fn panicking_drop_of_captured_state_is_contained() {
    guarded("panicking drop", || {
        let system = small_system("hpd");
        let wq = Workqueue::builder("drops").build(&system).unwrap();
        for round in 0..10 {
            let state = PanicsOnDrop("captured state dropped");
            let released = Arc::new(Gate::new());
            let item = {
                let released = released.clone();
                Work::new(move || {
                    let _ = &state;
                    released.wait(); // until the test thread dropped its handle
                })
            };
            wq.queue(&item).unwrap();
            drop(item); // the worker holds the last reference
            released.open();
            wq.flush().unwrap();
            assert_eq!(wq.panic_count(), round + 1, "each Drop panic is counted");
        }
        let reports = wq.take_panics();
        assert!(reports[0].message.contains("Drop") && reports[0].message.contains("captured state dropped"));
        // The pool still runs items, on the same single CPU.
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let after = Work::new(move || {
            r.fetch_add(1, SeqCst);
        });
        wq.queue(&after).unwrap();
        wq.flush().unwrap();
        assert_eq!(runs.load(SeqCst), 1);
        assert_eq!(system.pool_stats()[0].running, 0);
    });
}

/// Was: the last handle of a workqueue dropped inside one of its own items
/// left the workqueue alive (`live_workqueues` stayed up, its rescuer
/// thread lived on) until the whole system went. Now it is drained and
/// destroyed once that item returns, and its rescuer exits.
#[test]
fn workqueue_dropped_inside_its_own_item_is_destroyed() {
    guarded("drop inside own item", || {
        let system = small_system("hown");
        let wq = Workqueue::builder("selfdrop").mem_reclaim().build(&system).unwrap();
        // A new thread names itself once it runs.
        wait_until("the rescuer thread is named", || threads_named("hown/R-selfdrop") == 1);
        let slot = Arc::new(Mutex::new(Some(wq)));
        let chained_runs = Arc::new(AtomicUsize::new(0));
        let chained = {
            let c = chained_runs.clone();
            Work::new(move || {
                c.fetch_add(1, SeqCst);
            })
        };
        let gate = Arc::new(Gate::new());
        let released = Arc::new(Gate::new());
        let item = {
            let (slot, chained, gate, released) = (slot.clone(), chained.clone(), gate.clone(), released.clone());
            Work::new(move || {
                released.wait(); // the test thread has dropped its clone
                let wq = slot.lock().unwrap().take().expect("the handle is there once");
                // Chained queueing before the drop still runs.
                wq.queue(&chained).unwrap();
                drop(wq); // the last handle, on a worker, inside our own item
                gate.wait();
            })
        };
        let queued_on = slot.lock().unwrap().as_ref().unwrap().clone();
        queued_on.queue(&item).unwrap();
        drop(queued_on);
        released.open();
        wait_until("the item took the handle", || slot.lock().unwrap().is_none());
        assert_eq!(system.live_workqueues(), 1, "alive while its item runs");
        gate.open();
        wait_until("the orphaned workqueue was destroyed and freed", || system.live_workqueues() == 0);
        assert_eq!(chained_runs.load(SeqCst), 1, "the chained item ran before destruction");
        assert_eq!(threads_left_after_join("hown/R-selfdrop"), 0, "its rescuer exited");
        item.flush().unwrap();
    });
}

/// The engine dropping the last handle of a workqueue *and* of the system
/// (a work item's captured state, dropped by the worker after the run)
/// keeps working: the workqueue is finalized, the system shuts down on a
/// thread of its own, and every thread exits.
#[test]
fn engine_dropping_the_last_handles_keeps_working() {
    guarded("engine drops last handles", || {
        let system = System::builder().cpus(1).thread_name_prefix("hlast").build().unwrap();
        let wq = Workqueue::builder("held").mem_reclaim().build(&system).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(Gate::new());
        let item = {
            let (captured_wq, captured_system, r) = (wq.clone(), system.clone(), ran.clone());
            let released = released.clone();
            Work::new(move || {
                let _ = (&captured_wq, &captured_system);
                released.wait(); // until this thread dropped its handles
                r.fetch_add(1, SeqCst);
            })
        };
        wq.queue(&item).unwrap();
        drop((wq, system, item)); // the queued item now holds the last handles
        released.open();
        wait_until("the item ran", || ran.load(SeqCst) == 1);
        assert_eq!(threads_left_after_join("hlast"), 0, "every thread of the system exited");
    });
}

/// "Panics everywhere": functions that panic, captured state that panics in
/// `Drop`, panics while other threads cancel and flush the panicking items.
/// Afterwards every pool still runs new items, and flush, drain and destroy
/// return.
#[test]
fn panics_everywhere_leave_every_pool_working() {
    guarded("panics everywhere", || {
        let system = System::builder().cpus(2).thread_name_prefix("hpe").build().unwrap();
        let queues = [
            Workqueue::builder("bound").build(&system).unwrap(),
            Workqueue::builder("highpri").highpri().build(&system).unwrap(),
            Workqueue::builder("unbound").unbound().build(&system).unwrap(),
            Workqueue::builder("ordered").ordered().build(&system).unwrap(),
            Workqueue::builder("reclaim").mem_reclaim().build(&system).unwrap(),
        ];
        let mut items = Vec::new();
        for i in 0..40 {
            let state = PanicsOnDrop("drop panic");
            let work = Work::new(move || {
                let _ = &state;
                if i % 2 == 0 {
                    panic!("function panic {i}");
                }
            });
            items.push(work);
        }
        let canceller = {
            let items = items.clone();
            thread::spawn(move || {
                for (i, item) in items.iter().enumerate() {
                    if i % 3 == 0 {
                        let _ = item.cancel_sync();
                    } else {
                        let _ = item.flush();
                    }
                }
            })
        };
        for (i, item) in items.iter().enumerate() {
            let wq = &queues[i % queues.len()];
            if i % 4 == 0 {
                let _ = wq.queue_on(i % 2, item);
            } else {
                let _ = wq.queue(item);
            }
        }
        let delayed = DelayedWork::new(|| panic!("delayed panic"));
        queues[0].queue_delayed(&delayed, Duration::from_millis(1)).unwrap();
        canceller.join().unwrap();
        // Dropping the last reference here runs the panicking Drop on this
        // thread, as with any Rust value: caught here. Items still queued
        // are dropped by their worker, which contains it.
        for item in items {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(item)));
        }
        for wq in &queues {
            wq.flush().unwrap();
        }
        delayed.flush().unwrap();
        assert!(queues.iter().map(|q| q.panic_count()).sum::<usize>() > 0);
        // Every pool still runs new items.
        let runs = Arc::new(AtomicUsize::new(0));
        for wq in &queues {
            for cpu in 0..2 {
                let r = runs.clone();
                let work = Work::new(move || {
                    r.fetch_add(1, SeqCst);
                });
                wq.queue_on(cpu, &work).unwrap();
            }
        }
        for wq in &queues {
            wq.drain().unwrap();
        }
        assert_eq!(runs.load(SeqCst), 10);
        for wq in &queues {
            wq.destroy().unwrap();
        }
        for stats in system.pool_stats() {
            assert_eq!(stats.running, 0, "{stats:?}");
            assert_eq!(stats.pending, 0, "{stats:?}");
        }
    });
}
