//! The checkers' platforms (features `loom`, `shuttle`), re-exported
//! with the kit by the API module `model_check`.

#[cfg(feature = "loom")]
pub use ::loom;
#[cfg(feature = "shuttle")]
pub use ::shuttle;

use crate::platform::SpawnError;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A deterministic fault plan for thread creation: the first `allowed`
/// spawns succeed, every later one fails, except that the spawns listed in
/// `fail` (1-based attempt numbers) fail as well. The counter is a plain atomic on
/// purpose: the model checker serialises threads, so it is deterministic,
/// and it is not part of the state under test.
#[derive(Debug)]
pub struct FaultPlan {
    allowed: usize,
    fail: Vec<usize>,
    spawned: AtomicUsize,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::allow(usize::MAX)
    }
}

impl FaultPlan {
    /// Lets `allowed` spawns succeed, then fails every spawn.
    pub fn allow(allowed: usize) -> Self {
        FaultPlan { allowed, fail: Vec::new(), spawned: AtomicUsize::new(0) }
    }

    /// Fails exactly the listed spawn attempts (1-based); all others succeed.
    pub fn fail_attempts(attempts: &[usize]) -> Self {
        FaultPlan { allowed: usize::MAX, fail: attempts.to_vec(), spawned: AtomicUsize::new(0) }
    }

    /// Counts a spawn attempt; fails it if over the plan.
    pub fn check(&self) -> Result<(), SpawnError> {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        if n >= self.allowed || self.fail.contains(&(n + 1)) {
            return Err(SpawnError::new(format!("fault plan: spawn #{} refused (allowed {})", n + 1, self.allowed)));
        }
        Ok(())
    }
}

/// Defines a model platform `$name` over the checker crate `$krate`
/// (`loom` or `shuttle`). Time stands still (timers fire only when a model
/// calls `run_due_timers`); spawns fail as the platform's fault plan says.
macro_rules! model_platform {
    ($name:ident, $krate:ident, $doc:expr) => {
        use super::FaultPlan;
        use crate::platform::{Platform, SpawnError, ThreadBody, ThreadContext, ThreadProbe, ThreadSample};
        use ::$krate::sync::{Condvar, Mutex, MutexGuard};
        use core::cell::{Cell, RefCell};
        use core::sync::atomic::Ordering;
        use core::time::Duration;
        use std::sync::PoisonError;

        #[doc = $doc]
        #[derive(Debug, Default)]
        pub struct $name {
            /// Which spawns fail.
            pub faults: FaultPlan,
            /// What the blocking monitor sees of this platform's threads.
            pub(crate) sleepers: Sleepers,
        }

        /// What the blocking monitor sees of a model platform's threads
        /// ([`Platform::probe`]): a thread is asleep only while a model
        /// says so, with [`Sleepers::asleep_while`] around a wait that the
        /// pool is not told about (the model's stand-in for the scheduler
        /// state that `/proc` shows on Linux). The marks are the checker's
        /// own state, so it interleaves them with the monitor's probes.
        #[derive(Clone)]
        pub struct Sleepers(::$krate::sync::Arc<Mutex<Vec<(ThreadSample, bool)>>>);

        impl Default for Sleepers {
            fn default() -> Self {
                Sleepers(::$krate::sync::Arc::new(Mutex::new(Vec::new())))
            }
        }

        impl core::fmt::Debug for Sleepers {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("Sleepers")
            }
        }

        impl Sleepers {
            /// The calling thread's slot, registered on first use.
            fn current(&self) -> usize {
                let key = ::$krate::sync::Arc::as_ptr(&self.0) as usize;
                if let Some((owner, id)) = PROBE.with(Cell::get) {
                    if owner == key {
                        return id;
                    }
                }
                let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                slots.push((ThreadSample { asleep: false, ran: 0, cpu: Some(Duration::ZERO) }, false));
                let id = slots.len() - 1;
                PROBE.with(|p| p.set(Some((key, id))));
                id
            }

            /// Runs `wait` with the calling thread marked asleep: the
            /// monitor's probe sees it asleep until `wait` returns, then
            /// sees that it ran.
            pub fn asleep_while<R>(&self, wait: impl FnOnce() -> R) -> R {
                let id = self.current();
                self.set(id, true);
                let result = wait();
                self.set(id, false);
                result
            }

            /// Runs `work` with the calling thread marked hogging the CPU:
            /// each probe of it sees an hour more CPU time than the last
            /// (time passes only while it hogs), so two probes in one
            /// stretch see a hog past any threshold.
            pub fn hogging_while<R>(&self, work: impl FnOnce() -> R) -> R {
                let id = self.current();
                self.set_hogging(id, true);
                let result = work();
                self.set_hogging(id, false);
                result
            }

            fn set_hogging(&self, id: usize, hogging: bool) {
                let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, flag)) = slots.get_mut(id) {
                    *flag = hogging;
                }
            }

            fn set(&self, id: usize, asleep: bool) {
                let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((slot, _)) = slots.get_mut(id) {
                    slot.asleep = asleep;
                    slot.ran = slot.ran.wrapping_add(u64::from(!asleep));
                }
            }

            fn sample(&self, id: usize) -> Option<ThreadSample> {
                let mut slots = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                let (slot, hogging) = slots.get_mut(id)?;
                if *hogging {
                    slot.cpu = slot.cpu.map(|cpu| cpu.saturating_add(Duration::from_secs(3600)));
                }
                Some(*slot)
            }
        }

        impl $name {
            /// A handle on what the blocking monitor sees of this
            /// platform's threads, for items to mark their waits with.
            pub fn sleepers(&self) -> Sleepers {
                self.sleepers.clone()
            }
        }

        ::$krate::thread_local! {
            static CONTEXT: RefCell<Option<ThreadContext>> = RefCell::new(None);
            /// The calling thread's slot: (its `Sleepers`' address, index).
            static PROBE: Cell<Option<(usize, usize)>> = Cell::new(None);
        }

        impl Platform for $name {
            type Mutex<T: Send> = Mutex<T>;
            type Guard<'a, T: Send + 'a> = MutexGuard<'a, T>;
            type Condvar = Condvar;
            type AtomicUsize = ::$krate::sync::atomic::AtomicUsize;
            type JoinHandle = ::$krate::thread::JoinHandle<()>;

            fn mutex_new<T: Send>(value: T) -> Mutex<T> {
                Mutex::new(value)
            }
            fn mutex_lock<T: Send>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
                mutex.lock().unwrap_or_else(PoisonError::into_inner)
            }
            fn condvar_new() -> Condvar {
                Condvar::new()
            }
            fn condvar_wait<'a, T: Send>(cv: &Condvar, guard: Self::Guard<'a, T>) -> Self::Guard<'a, T> {
                cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
            }
            fn condvar_wait_until<'a, T: Send>(
                &self,
                cv: &Condvar,
                guard: Self::Guard<'a, T>,
                _deadline: Duration,
            ) -> Self::Guard<'a, T> {
                // No time in a model: an untimed wait (the engine re-checks anyway).
                cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
            }
            fn condvar_notify_one(cv: &Condvar) {
                cv.notify_one()
            }
            fn condvar_notify_all(cv: &Condvar) {
                cv.notify_all()
            }
            fn atomic_new(value: usize) -> Self::AtomicUsize {
                ::$krate::sync::atomic::AtomicUsize::new(value)
            }
            fn atomic_load(atomic: &Self::AtomicUsize, order: Ordering) -> usize {
                atomic.load(order)
            }
            fn atomic_store(atomic: &Self::AtomicUsize, value: usize, order: Ordering) {
                atomic.store(value, order)
            }
            fn atomic_fetch_add(atomic: &Self::AtomicUsize, value: usize, order: Ordering) -> usize {
                atomic.fetch_add(value, order)
            }
            fn atomic_fetch_sub(atomic: &Self::AtomicUsize, value: usize, order: Ordering) -> usize {
                atomic.fetch_sub(value, order)
            }
            fn spawn(&self, name: String, body: ThreadBody) -> Result<Self::JoinHandle, SpawnError> {
                self.faults.check()?;
                ::$krate::thread::Builder::new().name(name).spawn(body).map_err(|e| SpawnError::new(e.to_string()))
            }
            fn join(handle: Self::JoinHandle) {
                let _ = handle.join();
            }
            fn now(&self) -> Duration {
                Duration::ZERO
            }
            fn current_cpu(&self) -> Option<usize> {
                None
            }
            fn thread_probe(&self) -> Option<ThreadProbe> {
                Some(ThreadProbe(self.sleepers.current() as u64))
            }
            fn probe(&self, probe: ThreadProbe) -> Option<ThreadSample> {
                self.sleepers.sample(usize::try_from(probe.0).ok()?)
            }
            fn yield_now() {
                ::$krate::thread::yield_now()
            }
            fn sleep(&self, _duration: Duration) {
                ::$krate::thread::yield_now()
            }
            fn thread_context() -> Option<ThreadContext> {
                CONTEXT.with(|slot| slot.borrow().clone())
            }
            fn set_thread_context(context: Option<ThreadContext>) -> Option<ThreadContext> {
                CONTEXT.with(|slot| slot.replace(context))
            }
            // The checker discards a failed execution; its primitives must
            // not run while a panic unwinds.
            fn may_wait_while_unwinding() -> bool {
                false
            }
            // Re-raised, not aborted: the checker reports the failing
            // schedule.
            fn engine_thread_panicked(_thread: &str, payload: Box<dyn core::any::Any + Send>) -> ! {
                std::panic::resume_unwind(payload)
            }
        }
    };
}

#[cfg(feature = "loom")]
mod loom_platform {
    model_platform!(Loom, loom, "cmwq on loom: exhaustive exploration within a preemption bound.");
}
#[cfg(feature = "loom")]
pub use loom_platform::{Loom, Sleepers as LoomSleepers};

#[cfg(feature = "shuttle")]
mod shuttle_platform {
    model_platform!(Shuttle, shuttle, "cmwq on shuttle: randomized and PCT scheduling of controlled threads.");
}
#[cfg(feature = "shuttle")]
pub use shuttle_platform::{Shuttle, Sleepers as ShuttleSleepers};

#[cfg(feature = "loom")]
impl Loom {
    /// A loom platform whose spawns fail as `faults` says.
    pub fn with_faults(faults: FaultPlan) -> Self {
        Loom { faults, sleepers: loom_platform::Sleepers::default() }
    }
}

#[cfg(feature = "shuttle")]
impl Shuttle {
    /// A shuttle platform whose spawns fail as `faults` says.
    pub fn with_faults(faults: FaultPlan) -> Self {
        Shuttle { faults, sleepers: shuttle_platform::Sleepers::default() }
    }
}
