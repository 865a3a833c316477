//! Lifecycle edges found in review: the last system handle dropped on an
//! engine thread while no shutdown thread can be created; a workqueue
//! destroyed and then dropped on an engine thread; an orphaned workqueue
//! with a far-off delayed item at system shutdown. Each used to crash,
//! leak or hang.

use cmwq::{Platform, SpawnError, Std, System, ThreadBody, ThreadContext, Work, Workqueue, WorkqueueBuilder};
use cmwq_tests::wait_until;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static FAIL_SPAWN: AtomicBool = AtomicBool::new(false);
static SPAWN_CALLS: AtomicUsize = AtomicUsize::new(0);
static BREAK_TIMER: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy)]
/// Std, except that spawning the shutdown thread fails once `FAIL_SPAWN` is set.
struct Flaky(Std);

impl Platform for Flaky {
    type Mutex<T: Send> = <Std as Platform>::Mutex<T>;
    type Guard<'a, T: Send + 'a> = <Std as Platform>::Guard<'a, T>;
    type Condvar = <Std as Platform>::Condvar;
    type AtomicUsize = <Std as Platform>::AtomicUsize;
    type JoinHandle = <Std as Platform>::JoinHandle;
    fn mutex_new<T: Send>(v: T) -> Self::Mutex<T> {
        Std::mutex_new(v)
    }
    fn mutex_lock<T: Send>(m: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        Std::mutex_lock(m)
    }
    fn condvar_new() -> Self::Condvar {
        Std::condvar_new()
    }
    fn condvar_wait<'a, T: Send>(cv: &Self::Condvar, g: Self::Guard<'a, T>) -> Self::Guard<'a, T> {
        Std::condvar_wait(cv, g)
    }
    fn condvar_wait_timeout<'a, T: Send>(cv: &Self::Condvar, g: Self::Guard<'a, T>, t: Duration) -> Self::Guard<'a, T> {
        Std::condvar_wait_timeout(cv, g, t)
    }
    fn condvar_notify_one(cv: &Self::Condvar) {
        Std::condvar_notify_one(cv)
    }
    fn condvar_notify_all(cv: &Self::Condvar) {
        Std::condvar_notify_all(cv)
    }
    fn atomic_new(v: usize) -> Self::AtomicUsize {
        Std::atomic_new(v)
    }
    fn atomic_load(a: &Self::AtomicUsize, o: std::sync::atomic::Ordering) -> usize {
        Std::atomic_load(a, o)
    }
    fn atomic_store(a: &Self::AtomicUsize, v: usize, o: std::sync::atomic::Ordering) {
        Std::atomic_store(a, v, o)
    }
    fn atomic_fetch_add(a: &Self::AtomicUsize, v: usize, o: std::sync::atomic::Ordering) -> usize {
        Std::atomic_fetch_add(a, v, o)
    }
    fn atomic_fetch_sub(a: &Self::AtomicUsize, v: usize, o: std::sync::atomic::Ordering) -> usize {
        Std::atomic_fetch_sub(a, v, o)
    }
    fn spawn(&self, name: String, body: ThreadBody) -> Result<Self::JoinHandle, SpawnError> {
        if name.ends_with("/shutdown") && FAIL_SPAWN.load(SeqCst) {
            let n = SPAWN_CALLS.fetch_add(1, SeqCst);
            if n > 50 {
                eprintln!("recursing: {n} shutdown spawn attempts");
                std::process::exit(99);
            }
            return Err(SpawnError::new("injected"));
        }
        self.0.spawn(name, body)
    }
    fn join(h: Self::JoinHandle) {
        Std::join(h)
    }
    fn now(&self) -> Duration {
        // An engine bug stand-in: the clock panics on the timer thread.
        if BREAK_TIMER.load(SeqCst) && std::thread::current().name().is_some_and(|n| n.ends_with("/timer")) {
            panic!("injected engine bug on the timer thread");
        }
        self.0.now()
    }
    fn current_cpu(&self) -> Option<usize> {
        self.0.current_cpu()
    }
    fn yield_now() {
        Std::yield_now()
    }
    fn sleep(d: Duration) {
        Std::sleep(d)
    }
    fn thread_context() -> Option<ThreadContext> {
        Std::thread_context()
    }
    fn set_thread_context(c: Option<ThreadContext>) -> Option<ThreadContext> {
        Std::set_thread_context(c)
    }
}

/// Was: the last `System` handle dropped on a worker while the shutdown
/// thread cannot be created recursed until the stack overflowed. Now the
/// system is left parked, with a message, and the worker carries on.
#[test]
fn last_system_handle_on_engine_thread_without_a_shutdown_thread_does_not_recurse() {
    let system = System::builder().cpus(1).thread_name_prefix("rvsd").build_on(Flaky(Std::new())).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let wq = WorkqueueBuilder::new("w").build(&system).unwrap();
    let slot = Arc::new(Mutex::new(Some((system.clone(), wq.clone()))));
    let item = {
        let (slot, done, go) = (slot.clone(), done.clone(), go.clone());
        Work::<Flaky>::new(move || {
            while !go.load(SeqCst) {
                std::thread::yield_now();
            }
            FAIL_SPAWN.store(true, SeqCst);
            drop(slot.lock().unwrap().take());
            done.store(true, SeqCst);
        })
    };
    wq.queue(&item).unwrap();
    drop(wq);
    drop(system);
    go.store(true, SeqCst);
    wait_until("item done", || done.load(SeqCst));
    assert!(SPAWN_CALLS.load(SeqCst) <= 1, "recursed: {} spawn attempts", SPAWN_CALLS.load(SeqCst));
}

/// Was: `destroy()` and then the last handle dropped on an engine thread
/// put the workqueue on the orphan list for good (`live_workqueues` never
/// went down). Now it is freed.
#[test]
fn destroyed_then_dropped_on_engine_thread_is_freed() {
    let system = System::builder().cpus(1).thread_name_prefix("rvdd").build().unwrap();
    let other = Workqueue::builder("other").build(&system).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let sys2 = system.clone();
    let item = {
        let done = done.clone();
        Work::new(move || {
            let wq = Workqueue::builder("inner").build(&sys2).unwrap();
            wq.destroy().unwrap();
            drop(wq);
            done.store(true, SeqCst);
        })
    };
    other.queue(&item).unwrap();
    wait_until("item done", || done.load(SeqCst));
    drop(item);
    other.flush().unwrap();
    wait_until("only `other` is live", || system.live_workqueues() == 1);
}

/// Was: an orphaned workqueue with a delayed item an hour away made
/// dropping the system wait an hour. Now shutdown fires the orphan's armed
/// items at once (nobody can cancel or flush them any more): they run, and
/// the drop returns.
#[test]
fn orphan_with_far_delayed_item_does_not_hold_up_shutdown() {
    use cmwq::DelayedWork;
    let system = System::builder().cpus(1).thread_name_prefix("rvod").build().unwrap();
    let wq = Workqueue::builder("orph").build(&system).unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let d = {
        let fired = fired.clone();
        DelayedWork::new(move || fired.store(true, SeqCst))
    };
    let slot = Arc::new(Mutex::new(Some(wq.clone())));
    let done = Arc::new(AtomicBool::new(false));
    let item = {
        let (slot, d, done) = (slot.clone(), d.clone(), done.clone());
        Work::new(move || {
            let wq = slot.lock().unwrap().take().unwrap();
            wq.queue_delayed(&d, Duration::from_secs(3600)).unwrap();
            drop(wq);
            done.store(true, SeqCst);
        })
    };
    wq.queue(&item).unwrap();
    drop(wq);
    wait_until("item done", || done.load(SeqCst));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(system);
        let _ = tx.send(());
    });
    assert!(rx.recv_timeout(Duration::from_secs(60)).is_ok(), "System drop hung behind an orphan's delayed item");
    assert!(fired.load(SeqCst), "the armed item ran at shutdown");
}

const CHILD_VAR: &str = "CMWQ_LIFECYCLE_CHILD";

/// Child side of `an_engine_thread_that_dies_aborts_loudly`.
#[test]
fn engine_bug_child() {
    if std::env::var(CHILD_VAR).is_err() {
        return;
    }
    let system = System::builder().cpus(1).thread_name_prefix("ebug").build_on(Flaky(Std::new())).unwrap();
    let wq = WorkqueueBuilder::new("w").build(&system).unwrap();
    BREAK_TIMER.store(true, SeqCst);
    let delayed = cmwq::DelayedWork::<Flaky>::new(|| {});
    wq.queue_delayed(&delayed, Duration::from_millis(1)).unwrap(); // wakes the timer thread
    std::thread::sleep(Duration::from_secs(30));
    println!("still alive: the timer thread died silently");
}

/// Guarantee: an engine thread that dies from an engine bug (here the
/// platform's clock panicking on the timer thread) does not fail silently
/// (which would stop every delayed item of the system): the process aborts
/// with a message naming the thread. Checked in a child process.
#[cfg(target_os = "linux")]
#[test]
fn an_engine_thread_that_dies_aborts_loudly() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var(CHILD_VAR).is_ok() {
        return;
    }
    // The child sleeps 30 s if the thread dies silently; far within this.
    let output = cmwq_tests::run_test_in_child("engine_bug_child", CHILD_VAR, "1", Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "expected an abort: {:?}\n{stderr}", output.status);
    assert!(
        stderr.contains("cmwq: engine thread `ebug/timer` panicked") && stderr.contains("injected engine bug"),
        "{stderr}"
    );
}
