//! A platform of one's own, written from the documented items only (the
//! `Platform` trait and its guide in the crate docs, `System::builder`,
//! `build_on`, `wake_timer`): real threads, a virtual clock advanced by
//! hand, and a spawn budget that can refuse. It checks what the guide
//! promises: delayed work fires once the clock is advanced (with the timer
//! thread on); an item blocking through `cmwq::blocking` on this platform
//! lets the next item on its CPU run; dropping a workqueue with an armed
//! delayed item returns once the clock passes it; refused thread creation
//! loses no work.

use cmwq::{DelayedWork, Platform, SpawnError, Std, System, ThreadBody, ThreadContext, Work, Workqueue};
use cmwq_tests::{wait_until, Gate};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

std::thread_local! {
    /// The engine's per-thread context: must be thread-local (the guide).
    static CONTEXT: RefCell<Option<ThreadContext>> = const { RefCell::new(None) };
}

/// Real threads and locks (std's), a virtual clock, a spawn budget.
#[derive(Clone)]
struct Virtual {
    /// Nanoseconds since the start, moved only by `advance`.
    nanos: Arc<AtomicU64>,
    /// Threads that may still be created (`usize::MAX`: no limit).
    spawns_left: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl Virtual {
    fn new() -> Self {
        Virtual {
            nanos: Arc::new(AtomicU64::new(0)),
            spawns_left: Arc::new(AtomicUsize::new(usize::MAX)),
            refused: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Moves the clock forward; the caller then tells the system
    /// (`System::wake_timer`), as the guide says.
    fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Platform for Virtual {
    type Mutex<T: Send> = <Std as Platform>::Mutex<T>;
    type Guard<'a, T: Send + 'a> = <Std as Platform>::Guard<'a, T>;
    type Condvar = <Std as Platform>::Condvar;
    type AtomicUsize = <Std as Platform>::AtomicUsize;
    type JoinHandle = <Std as Platform>::JoinHandle;

    fn mutex_new<T: Send>(value: T) -> Self::Mutex<T> {
        Std::mutex_new(value)
    }
    fn mutex_lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        Std::mutex_lock(mutex)
    }
    fn condvar_new() -> Self::Condvar {
        Std::condvar_new()
    }
    fn condvar_wait<'a, T: Send>(cv: &Self::Condvar, guard: Self::Guard<'a, T>) -> Self::Guard<'a, T> {
        Std::condvar_wait(cv, guard)
    }
    /// The clock jumps: wait untimed; `wake_timer` notifies this condvar
    /// after each jump.
    fn condvar_wait_until<'a, T: Send>(
        &self,
        cv: &Self::Condvar,
        guard: Self::Guard<'a, T>,
        _deadline: Duration,
    ) -> Self::Guard<'a, T> {
        Std::condvar_wait(cv, guard)
    }
    fn condvar_notify_one(cv: &Self::Condvar) {
        Std::condvar_notify_one(cv)
    }
    fn condvar_notify_all(cv: &Self::Condvar) {
        Std::condvar_notify_all(cv)
    }
    fn atomic_new(value: usize) -> Self::AtomicUsize {
        Std::atomic_new(value)
    }
    fn atomic_load(atomic: &Self::AtomicUsize, order: Ordering) -> usize {
        Std::atomic_load(atomic, order)
    }
    fn atomic_store(atomic: &Self::AtomicUsize, value: usize, order: Ordering) {
        Std::atomic_store(atomic, value, order)
    }
    fn atomic_fetch_add(atomic: &Self::AtomicUsize, value: usize, order: Ordering) -> usize {
        Std::atomic_fetch_add(atomic, value, order)
    }
    fn atomic_fetch_sub(atomic: &Self::AtomicUsize, value: usize, order: Ordering) -> usize {
        Std::atomic_fetch_sub(atomic, value, order)
    }
    fn spawn(&self, name: String, body: ThreadBody) -> Result<Self::JoinHandle, SpawnError> {
        let took = self.spawns_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if took.is_err() {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(SpawnError::new("spawn budget spent"));
        }
        std::thread::Builder::new().name(name).spawn(body).map_err(|e| SpawnError::new(e.to_string()))
    }
    fn join(handle: Self::JoinHandle) {
        Std::join(handle)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn current_cpu(&self) -> Option<usize> {
        None
    }
    fn yield_now() {
        std::thread::yield_now()
    }
    /// Virtual time: wait (really) until the clock has moved past the end.
    fn sleep(&self, duration: Duration) {
        let end = self.now() + duration;
        while self.now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn thread_context() -> Option<ThreadContext> {
        CONTEXT.with(|slot| slot.borrow().clone())
    }
    fn set_thread_context(context: Option<ThreadContext>) -> Option<ThreadContext> {
        CONTEXT.with(|slot| slot.replace(context))
    }
}

fn system(platform: &Virtual, cpus: usize) -> System<Virtual> {
    System::<Virtual>::builder().cpus(cpus).timer_thread(true).build_on(platform.clone()).expect("builds")
}

/// Guarantee: with the timer thread on, a delayed item fires once the
/// virtual clock is advanced past its deadline (and `wake_timer` called),
/// not before.
#[test]
fn delayed_work_fires_after_the_clock_is_advanced() {
    let platform = Virtual::new();
    let system = system(&platform, 1);
    let wq = Workqueue::<Virtual>::builder("virtual").build(&system).unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let delayed = {
        let fired = fired.clone();
        DelayedWork::new(move || fired.store(true, Ordering::SeqCst))
    };
    assert!(wq.queue_delayed(&delayed, Duration::from_secs(10)).unwrap());
    platform.advance(Duration::from_secs(9));
    system.wake_timer();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!fired.load(Ordering::SeqCst), "9 virtual seconds are not 10");
    platform.advance(Duration::from_secs(1));
    system.wake_timer();
    wait_until("the delayed item fires", || fired.load(Ordering::SeqCst));
}

/// Guarantee: an item blocking through `cmwq::blocking` on this platform's
/// worker lets the next item queued behind it on the same CPU run.
#[test]
fn blocking_on_this_platform_lets_the_next_item_run() {
    let platform = Virtual::new();
    let system = system(&platform, 1);
    let wq = Workqueue::builder("blocking").build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let first = {
        let gate = gate.clone();
        Work::new(move || gate.wait()) // cmwq::blocking inside
    };
    let second_ran = Arc::new(AtomicBool::new(false));
    let second = {
        let ran = second_ran.clone();
        Work::new(move || ran.store(true, Ordering::SeqCst))
    };
    wq.queue_on(0, &first).unwrap();
    wq.queue_on(0, &second).unwrap();
    wait_until("the second item runs while the first blocks", || second_ran.load(Ordering::SeqCst));
    assert!(first.busy().running, "the first item is still blocked");
    gate.open();
    wq.flush().unwrap();
}

/// Guarantee: `cmwq::sleep` on this platform's worker sleeps on its
/// virtual clock, as a blocking section, and `current_work` names the
/// call to make instead of returning a silent `None`.
#[test]
fn sleep_uses_the_platforms_clock_and_current_work_says_what_to_call() {
    let platform = Virtual::new();
    let system = system(&platform, 1);
    let wq = Workqueue::builder("sleepy").build(&system).unwrap();
    let woke = Arc::new(AtomicBool::new(false));
    let message = Arc::new(std::sync::Mutex::new(String::new()));
    let sleeper = {
        let (woke, message) = (woke.clone(), message.clone());
        Work::new(move || {
            let refused = std::panic::catch_unwind(cmwq::current_work).expect_err("current_work must refuse");
            let text = refused.downcast_ref::<String>().cloned().unwrap_or_default();
            *message.lock().unwrap() = text;
            assert!(cmwq::current_work_on::<Virtual>().is_some());
            cmwq::sleep(Duration::from_secs(3600));
            woke.store(true, Ordering::SeqCst);
        })
    };
    let other_ran = Arc::new(AtomicBool::new(false));
    let other = {
        let ran = other_ran.clone();
        Work::new(move || ran.store(true, Ordering::SeqCst))
    };
    wq.queue_on(0, &sleeper).unwrap();
    wq.queue_on(0, &other).unwrap();
    wait_until("the item behind the sleeper runs", || other_ran.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_millis(10));
    assert!(!woke.load(Ordering::SeqCst), "an hour of virtual time has not passed");
    platform.advance(Duration::from_secs(3600));
    wait_until("the sleeper wakes", || woke.load(Ordering::SeqCst));
    let message = message.lock().unwrap().clone();
    assert!(message.contains("current_work_on::<") && message.contains("Virtual"), "{message}");
    wq.flush().unwrap();
}

/// Guarantee: dropping a workqueue whose delayed item is armed returns once
/// the clock is advanced past the item's deadline, and the item has run.
#[test]
fn dropping_a_workqueue_with_an_armed_item_returns_after_the_clock_passes_it() {
    let platform = Virtual::new();
    let system = system(&platform, 1);
    let wq = Workqueue::builder("armed").build(&system).unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let delayed = {
        let fired = fired.clone();
        DelayedWork::new(move || fired.store(true, Ordering::SeqCst))
    };
    wq.queue_delayed(&delayed, Duration::from_secs(5)).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let dropper = {
        let dropped = dropped.clone();
        std::thread::spawn(move || {
            drop(wq);
            dropped.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    assert!(!dropped.load(Ordering::SeqCst), "the drop waits for the armed item");
    platform.advance(Duration::from_secs(5));
    system.wake_timer();
    dropper.join().unwrap();
    assert!(fired.load(Ordering::SeqCst), "the item ran before the drop returned");
}

/// Guarantee: a platform that refuses to create threads loses no work: the
/// items queued behind a blocked one still run (on the worker at hand
/// once the blocker returns).
#[test]
fn a_refused_spawn_loses_no_work() {
    let platform = Virtual::new();
    let system = system(&platform, 1);
    platform.spawns_left.store(0, Ordering::SeqCst);
    let wq = Workqueue::builder("refused").build(&system).unwrap();
    let gate = Arc::new(Gate::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let blocker = {
        let (gate, runs) = (gate.clone(), runs.clone());
        Work::new(move || {
            gate.wait();
            runs.fetch_add(1, Ordering::SeqCst);
        })
    };
    wq.queue_on(0, &blocker).unwrap();
    let items: Vec<_> = (0..5)
        .map(|_| {
            let runs = runs.clone();
            let item = Work::new(move || {
                runs.fetch_add(1, Ordering::SeqCst);
            });
            wq.queue_on(0, &item).unwrap();
            item
        })
        .collect();
    wait_until("a creation is refused", || platform.refused.load(Ordering::SeqCst) > 0);
    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 6);
    drop(items);
}
