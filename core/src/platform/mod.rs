//! The Platform seam: every primitive the engine takes from the outside world.
//!
//! The engine never names `std::sync`, `std::thread` or `std::time` outside
//! this module. A [`Platform`] supplies mutexes, condition variables, atomics,
//! thread spawning (which may fail), a monotonic clock, the current CPU,
//! yielding and a per-thread context slot. [`Std`] is the production
//! platform; the loom and shuttle platforms in `models/` are others.
//!
//! The traits are deliberately shaped like the lowest common denominator of
//! std, loom and shuttle: no poisoning (adapters strip it), `spawn` returns a
//! `Result`, and `wait_timeout` is allowed never to time out (model
//! checkers have no time). Everything that must happen "after a while" in
//! the engine is therefore a timer *event* (see `timer.rs`), which a model
//! can fire at any point.

#[cfg(any(feature = "loom", feature = "shuttle"))]
pub(crate) mod checkers;
mod std_platform;

use core::any::Any;
use core::fmt;
use core::ops::DerefMut;
use core::sync::atomic::Ordering;
use core::time::Duration;

pub(crate) use std_platform::allowed_cpus;
pub use std_platform::Std;

// `Arc` is not swapped: loom's and shuttle's `Arc` only add leak checking,
// and the engine needs unsized coercion (`Arc<dyn Fn>`), which only the
// standard `Arc` offers on stable Rust.
pub(crate) use std::sync::Arc;

/// Synchronisation that model checkers must not see: the trace log
/// (feature `trace`). Recording must not add scheduling points, or tracing
/// would change the schedules loom and shuttle explore; it is only ever
/// held for a push, under a lock the platform does see.
#[cfg(feature = "trace")]
pub(crate) mod unseen {
    pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
}

/// The per-thread value the engine keeps for its own threads (a worker's
/// identity), stored by the platform in thread-local storage.
pub type ThreadContext = Arc<dyn Any + Send + Sync>;

/// A thread body handed to [`Platform::spawn`].
pub type ThreadBody = Box<dyn FnOnce() + Send + 'static>;

/// The platform could not start a thread (the kernel's failed
/// `kthread_create`). The engine retries later; it never loses work for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError {
    message: String,
}

impl SpawnError {
    /// A spawn failure with a human-readable reason.
    pub fn new(message: impl Into<String>) -> Self {
        SpawnError { message: message.into() }
    }

    /// Why the thread could not be created.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not create a thread: {}", self.message)
    }
}

impl std::error::Error for SpawnError {}

/// Everything the engine needs from the outside world.
///
/// Associated functions without `self` are the primitives that std, loom and
/// shuttle all provide as free-standing types (locks, condvars, atomics,
/// thread-local context); methods taking `&self` see the platform instance
/// the system was built with (`SystemBuilder::build_on`): its clock, its
/// thread creation, its CPUs. The engine reads time only through
/// [`Platform::now`] of that instance, so a virtual clock is the whole
/// clock.
///
/// # Contract, item by item: who calls it, and what it must do
///
/// | item | called by (thread) | the platform must |
/// |---|---|---|
/// | `mutex_*`, `condvar_*`, `atomic_*` | every engine thread, and user threads inside the API (queueing, flush, cancel) | behave as std's do; `mutex_lock` never reports poisoning (the engine never panics holding a lock; user code never runs under one); `condvar_wait` may wake spuriously (the engine re-checks) |
/// | [`condvar_wait_until`](Platform::condvar_wait_until) | the timer thread only | return by the deadline on *this platform's clock*, or on a notification; a model may wait untimed; whoever moves a clock that jumps calls [`System::wake_timer`](crate::System::wake_timer) on each system after each jump |
/// | [`spawn`](Platform::spawn) | the thread building a system (first workers, timer thread) or a `mem_reclaim` workqueue (its rescuer); a worker acting as manager (a spare); a timer event (a creation retry); the thread calling `cpu_down` (the trustee); an engine thread dropping the last system handle (the shutdown thread) | run `body` on a new thread, or return [`SpawnError`] (normal: the engine retries later and loses no work); never run `body` on the calling thread |
/// | [`join`](Platform::join) | shutdown, `destroy` (the rescuer), `cpu_up` (the trustee) | return once the thread's body returned |
/// | [`now`](Platform::now) | any engine thread, under engine locks | be monotonic and cheap; never block or call into cmwq |
/// | [`current_cpu`](Platform::current_cpu) | the thread calling a plain `queue` | say which OS CPU the caller runs on, or `None`: then every plain `queue` from a thread that is not a worker goes to CPU 0 |
/// | [`allowed_os_cpus`](Platform::allowed_os_cpus), [`pin_current_thread`](Platform::pin_current_thread) | system build and the CPU-set poll (a timer event); each worker as it starts (`pin_workers`) | best effort; the defaults do nothing |
/// | [`yield_now`](Platform::yield_now) | engine retry loops | let other threads run |
/// | [`sleep`](Platform::sleep) | [`crate::sleep`] on a worker of this platform, inside a blocking section | sleep `duration` of *this platform's* time |
/// | [`thread_context`](Platform::thread_context), [`set_thread_context`](Platform::set_thread_context) | every engine thread sets its own (a worker's identity); any thread reads | keep one slot **per thread of this platform** (thread-local storage; a model checker's own thread-locals), never shared between threads; each thread of the platform stays on one OS thread (M:N green threads that migrate are not supported: `blocking` could not find their worker) |
/// | [`engine_thread_panicked`](Platform::engine_thread_panicked) | an engine thread whose own code panicked | not return (the default aborts with a message) |
///
/// [`blocking`](super::blocking()), [`sleep`](crate::sleep) and
/// [`current_work_on`](crate::current_work_on) find the calling worker
/// through `thread_context`, on every platform; see "Writing a platform"
/// in the crate documentation for the whole checklist.
///
/// # Contract, in short
/// * `mutex_lock` never reports poisoning: a platform whose mutex poisons
///   must hand out the guard anyway (the engine never panics while holding
///   one of its locks; user code never runs under them).
/// * `condvar_wait*` may wake spuriously; the engine always re-checks.
/// * `spawn` may fail; the engine treats failure as "retry later".
pub trait Platform: Send + Sync + Sized + 'static {
    /// A mutual-exclusion lock holding a `T`.
    type Mutex<T: Send>: Send + Sync;
    /// The guard returned by [`Platform::mutex_lock`].
    type Guard<'a, T: Send + 'a>: DerefMut<Target = T>;
    /// A condition variable used with [`Platform::Mutex`].
    type Condvar: Send + Sync;
    /// An atomic `usize`.
    type AtomicUsize: Send + Sync;
    /// The handle of a spawned thread.
    type JoinHandle: Send;

    /// Creates a mutex.
    fn mutex_new<T: Send>(value: T) -> Self::Mutex<T>;
    /// Locks a mutex (never reports poisoning).
    fn mutex_lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T>;
    /// Creates a condition variable.
    fn condvar_new() -> Self::Condvar;
    /// Atomically releases the guard's mutex and waits for a notification.
    fn condvar_wait<'a, T: Send>(cv: &Self::Condvar, guard: Self::Guard<'a, T>) -> Self::Guard<'a, T>;
    /// Like [`Platform::condvar_wait`], waking once this platform's clock
    /// ([`Platform::now`]) reads `deadline` at the latest. Called only by
    /// the timer thread (waiting for the earliest armed timer), which
    /// re-reads the clock after every wakeup. A platform without time (a
    /// model checker) may wait untimed; a platform whose clock jumps (a
    /// virtual clock advanced by hand) may wait untimed too, or with a
    /// short real timeout: whoever moves the clock then calls
    /// [`System::wake_timer`] on every system built on it after each jump
    /// (a platform instance has no handle to its systems; `wake_timer`
    /// notifies this very condvar).
    ///
    /// [`System::wake_timer`]: crate::System::wake_timer
    fn condvar_wait_until<'a, T: Send>(
        &self,
        cv: &Self::Condvar,
        guard: Self::Guard<'a, T>,
        deadline: Duration,
    ) -> Self::Guard<'a, T>;
    /// Wakes one waiter.
    fn condvar_notify_one(cv: &Self::Condvar);
    /// Wakes every waiter.
    fn condvar_notify_all(cv: &Self::Condvar);

    /// Creates an atomic.
    fn atomic_new(value: usize) -> Self::AtomicUsize;
    /// Atomic load.
    fn atomic_load(atomic: &Self::AtomicUsize, order: Ordering) -> usize;
    /// Atomic store.
    fn atomic_store(atomic: &Self::AtomicUsize, value: usize, order: Ordering);
    /// Atomic add, returning the previous value.
    fn atomic_fetch_add(atomic: &Self::AtomicUsize, value: usize, order: Ordering) -> usize;
    /// Atomic subtract, returning the previous value.
    fn atomic_fetch_sub(atomic: &Self::AtomicUsize, value: usize, order: Ordering) -> usize;

    /// Starts a thread named `name` running `body`. Failure is a normal
    /// outcome (resource exhaustion, an injected fault).
    fn spawn(&self, name: String, body: ThreadBody) -> Result<Self::JoinHandle, SpawnError>;
    /// Waits for a spawned thread to end.
    fn join(handle: Self::JoinHandle);

    /// Monotonic time since an arbitrary origin.
    fn now(&self) -> Duration;
    /// The CPU the calling thread runs on, if the platform knows it.
    fn current_cpu(&self) -> Option<usize>;
    /// The OS CPUs the process may run on now (its main thread's affinity
    /// mask, which cpusets and `taskset -p` change), ascending; `None` if
    /// the platform cannot tell (the default).
    fn allowed_os_cpus(&self) -> Option<Vec<usize>> {
        None
    }
    /// Restricts the calling thread to `os_cpus` (best effort; the default
    /// does nothing).
    fn pin_current_thread(&self, os_cpus: &[usize]) {
        let _ = os_cpus;
    }
    /// A handle on the calling thread for [`Platform::probe`], if this
    /// platform can observe its threads' scheduling state from another
    /// thread (std on Linux: the thread's id, read through `/proc`). With
    /// `None` (the default) the blocking monitor sees nothing and only
    /// blocking sections (`cmwq::blocking`) release a worker's CPU.
    fn thread_probe(&self) -> Option<ThreadProbe> {
        None
    }
    /// What the thread behind `probe` is doing now: asleep or not, and a
    /// counter that changes whenever it has run. `None` if unknown (the
    /// thread exited, the platform cannot tell). Called by the blocking
    /// monitor under its own leaf locks (a pool's watch list, the slot),
    /// never under a pool lock: it must not call into the system.
    fn probe(&self, probe: ThreadProbe) -> Option<ThreadSample> {
        let _ = probe;
        None
    }
    /// The CPU time the thread behind `probe` has used so far, if the
    /// platform can tell more cheaply than a whole [`Platform::probe`] (std
    /// on Linux: one clock read, where a probe also reads `/proc`). The
    /// monitor takes a thread whose CPU time grew by at least half the
    /// time since its last look for running, without a probe. `None` (the
    /// default): always probe.
    fn cpu_time(&self, probe: ThreadProbe) -> Option<Duration> {
        let _ = probe;
        None
    }
    /// Asks that the calling thread's short timed waits end on time (the
    /// blocking monitor's thread, whose pauses are tens of microseconds).
    /// Std on Linux sets the thread's timer slack to 1 ns: the default, 50
    /// µs, is longer than the monitor's shortest pauses. The default does
    /// nothing.
    fn precise_timers(&self) {}
    /// Lets other threads run (used in retry loops).
    fn yield_now();
    /// Puts the calling thread to sleep for `duration` of this platform's
    /// time (the body of [`crate::sleep`] on a worker of this platform,
    /// inside a blocking section); a model platform may just yield.
    fn sleep(&self, duration: Duration);

    /// The calling thread's engine context, if any.
    fn thread_context() -> Option<ThreadContext>;
    /// Replaces the calling thread's engine context, returning the old one.
    fn set_thread_context(context: Option<ThreadContext>) -> Option<ThreadContext>;

    /// Whether dropping the last handle of a system or workqueue may wait
    /// (drain, destroy, shut down, join threads) on a thread that is
    /// unwinding a panic. `true` (the default): it waits, so nothing leaks.
    /// A model checker's platform returns `false`: its primitives must not
    /// run during a panic's unwinding (shuttle aborts the whole test binary:
    /// "panic in a destructor during cleanup"), so the system and its
    /// threads are left to the checker, which discards the failed
    /// execution and reports the panic.
    fn may_wait_while_unwinding() -> bool {
        true
    }

    /// An engine thread (worker, rescuer, timer, trustee, shutdown; or a
    /// caller of `System::run_due_timers` delivering timer events) panicked outside
    /// user code: an engine bug, since every panic from user code is caught
    /// where it happens. The default prints the thread's name and the
    /// message and aborts the process, so that the failure is loud instead
    /// of a silent hang of everything that thread served. A model platform
    /// re-raises the panic so that its checker reports it.
    fn engine_thread_panicked(thread: &str, payload: Box<dyn Any + Send>) -> ! {
        let message = panic_message(payload.as_ref());
        std::eprintln!("cmwq: engine thread `{thread}` panicked (an engine bug): {message}; aborting");
        std::process::abort()
    }
}

/// What the engine needs of the OS thread itself, beside any platform:
/// whether it unwinds a panic, a real sleep, and a per-OS-thread registry
/// that the untyped `blocking`, `sleep` and `current_work` use to find the
/// calling thread's worker on a platform other than [`Std`] (each entry:
/// a platform's type, an opaque lookup, how many of its workers run on
/// this OS thread now).
pub(crate) mod os_thread {
    use core::any::{Any, TypeId};
    use core::cell::RefCell;
    use std::rc::Rc;

    /// A registered platform: its type, its lookup, its users here.
    type Entry = (TypeId, Rc<dyn Any>, usize);

    std::thread_local! {
        static REGISTRY: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    }

    /// Whether the calling thread unwinds a panic.
    pub(crate) fn panicking() -> bool {
        std::thread::panicking()
    }

    /// Sleeps the OS thread.
    pub(crate) fn sleep(duration: core::time::Duration) {
        std::thread::sleep(duration)
    }

    /// Counts one more user of `platform` on this OS thread (`lookup` is
    /// kept from the first).
    pub(crate) fn register(platform: TypeId, lookup: impl FnOnce() -> Rc<dyn Any>) {
        REGISTRY.with(|registry| {
            let mut registry = registry.borrow_mut();
            match registry.iter_mut().find(|(p, _, _)| *p == platform) {
                Some((_, _, count)) => *count += 1,
                None => registry.push((platform, lookup(), 1)),
            }
        });
    }

    /// Counts one user of `platform` less (a thread-local being destroyed
    /// has nothing to forget).
    pub(crate) fn unregister(platform: TypeId) {
        let _ = REGISTRY.try_with(|registry| {
            let mut registry = registry.borrow_mut();
            if let Some(n) = registry.iter().position(|(p, _, _)| *p == platform) {
                registry[n].2 -= 1;
                if registry[n].2 == 0 {
                    registry.remove(n);
                }
            }
        });
    }

    /// The registered lookups (a copy: a lookup may register in turn).
    pub(crate) fn lookups() -> Vec<Rc<dyn Any>> {
        REGISTRY.with(|registry| registry.borrow().iter().map(|(_, lookup, _)| lookup.clone()).collect())
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f`, which runs or drops user code on an engine thread, catching a
/// panic from it. Returns the panic's message, if it panicked; the payload
/// is dropped here too, and a payload whose own `Drop` panics is leaked
/// rather than allowed to unwind.
pub(crate) fn contain(f: impl FnOnce()) -> Option<String> {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    let message = panic_message(payload.as_ref());
    if let Err(second) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))) {
        core::mem::forget(second);
    }
    Some(message)
}

/// Starts engine thread `name` running `body` on `platform`. A panic that
/// escapes `body` is an engine bug and goes to
/// [`Platform::engine_thread_panicked`].
pub(crate) fn spawn_engine_thread<P: Platform>(
    platform: &P,
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<P::JoinHandle, SpawnError> {
    let thread = name.clone();
    platform.spawn(
        name,
        Box::new(move || {
            if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
                P::engine_thread_panicked(&thread, payload)
            }
        }),
    )
}

/// A mutex from platform `P` (thin wrapper so call sites read naturally).
pub(crate) struct Mutex<P: Platform, T: Send>(P::Mutex<T>);

impl<P: Platform, T: Send> Mutex<P, T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(P::mutex_new(value))
    }

    pub(crate) fn lock(&self) -> P::Guard<'_, T> {
        P::mutex_lock(&self.0)
    }
}

/// A condition variable from platform `P`.
pub(crate) struct Condvar<P: Platform>(P::Condvar);

impl<P: Platform> Condvar<P> {
    pub(crate) fn new() -> Self {
        Condvar(P::condvar_new())
    }

    pub(crate) fn wait<'a, T: Send>(&self, guard: P::Guard<'a, T>) -> P::Guard<'a, T> {
        P::condvar_wait(&self.0, guard)
    }

    pub(crate) fn wait_until<'a, T: Send>(
        &self,
        platform: &P,
        guard: P::Guard<'a, T>,
        deadline: Duration,
    ) -> P::Guard<'a, T> {
        platform.condvar_wait_until(&self.0, guard, deadline)
    }

    pub(crate) fn notify_one(&self) {
        P::condvar_notify_one(&self.0)
    }

    pub(crate) fn notify_all(&self) {
        P::condvar_notify_all(&self.0)
    }
}

/// An atomic `usize` from platform `P`.
pub(crate) struct AtomicUsize<P: Platform>(P::AtomicUsize);

impl<P: Platform> AtomicUsize<P> {
    pub(crate) fn new(value: usize) -> Self {
        AtomicUsize(P::atomic_new(value))
    }

    pub(crate) fn load(&self, order: Ordering) -> usize {
        P::atomic_load(&self.0, order)
    }

    pub(crate) fn store(&self, value: usize, order: Ordering) {
        P::atomic_store(&self.0, value, order)
    }

    pub(crate) fn fetch_add(&self, value: usize, order: Ordering) -> usize {
        P::atomic_fetch_add(&self.0, value, order)
    }

    pub(crate) fn fetch_sub(&self, value: usize, order: Ordering) -> usize {
        P::atomic_fetch_sub(&self.0, value, order)
    }
}

/// A lazily created process-wide value whose creation may fail: a failure
/// is not cached, so the next call tries again (a transient failure, such
/// as a thread limit, does not poison the process). Kept here because it
/// needs std's `OnceLock` and `Mutex`. The engine never reaches for it;
/// only the convenience functions in `system.rs` (the default system) do.
pub(crate) struct RetryOnce<T> {
    value: std::sync::OnceLock<T>,
    /// Serialises creation attempts.
    creating: std::sync::Mutex<()>,
}

impl<T> RetryOnce<T> {
    pub(crate) const fn new() -> Self {
        RetryOnce { value: std::sync::OnceLock::new(), creating: std::sync::Mutex::new(()) }
    }

    /// The value, created by `create` if no earlier call succeeded.
    pub(crate) fn get_or_try_init<E>(&self, create: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let _creating = self.creating.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let created = create()?;
        Ok(self.value.get_or_init(|| created))
    }
}

/// A platform's handle on one of its threads, for [`Platform::probe`] (on
/// std, the Linux thread id; on a model platform, whatever it keys its
/// threads by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadProbe(pub u64);

/// One observation of a thread ([`Platform::probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadSample {
    /// Asleep: waiting for something (Linux states S and D), not merely
    /// preempted. A runnable thread that waits for a CPU is not asleep.
    pub asleep: bool,
    /// A counter that changes whenever the thread has run between two
    /// observations (std: its CPU time in nanoseconds): the same value
    /// twice, both asleep, means it slept all along. Read only when
    /// `asleep` (a platform may leave it 0 otherwise).
    pub ran: u64,
    /// The CPU time the thread has used so far, if the platform can tell
    /// (std on Linux: its CPU-time clock; a model platform: time that
    /// passes only while a model marks the thread hogging). The blocking
    /// monitor finds CPU hogs (`Config::cpu_hog`) and samples each
    /// workqueue's CPU time with it; `None` leaves both off.
    pub cpu: Option<Duration>,
}
