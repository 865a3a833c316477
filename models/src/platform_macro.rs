//! One definition of the model platforms: loom and shuttle offer the same
//! std-shaped API, so `model_platform!` writes the `Platform` impl once for
//! each.

/// Defines a model platform `$name` over the checker crate `$krate`
/// (`loom` or `shuttle`). Time stands still (timers fire only when a model
/// calls `run_due_timers`); spawns fail as the platform's fault plan says.
macro_rules! model_platform {
    ($name:ident, $krate:ident, $doc:expr) => {
        use crate::FaultPlan;
        use cmwq::{Platform, SpawnError, ThreadBody, ThreadContext};
        use core::cell::RefCell;
        use core::sync::atomic::Ordering;
        use core::time::Duration;
        use std::sync::PoisonError;
        use $krate::sync::{Condvar, Mutex, MutexGuard};

        #[doc = $doc]
        #[derive(Debug, Default)]
        pub struct $name {
            /// Which spawns fail.
            pub faults: FaultPlan,
        }

        $krate::thread_local! {
            static CONTEXT: RefCell<Option<ThreadContext>> = RefCell::new(None);
        }

        impl Platform for $name {
            type Mutex<T: Send> = Mutex<T>;
            type Guard<'a, T: Send + 'a> = MutexGuard<'a, T>;
            type Condvar = Condvar;
            type AtomicUsize = $krate::sync::atomic::AtomicUsize;
            type JoinHandle = $krate::thread::JoinHandle<()>;

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
                $krate::sync::atomic::AtomicUsize::new(value)
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
                $krate::thread::Builder::new().name(name).spawn(body).map_err(|e| SpawnError::new(e.to_string()))
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
            fn yield_now() {
                $krate::thread::yield_now()
            }
            fn sleep(&self, _duration: Duration) {
                $krate::thread::yield_now()
            }
            fn thread_context() -> Option<ThreadContext> {
                CONTEXT.with(|slot| slot.borrow().clone())
            }
            fn set_thread_context(context: Option<ThreadContext>) -> Option<ThreadContext> {
                CONTEXT.with(|slot| slot.replace(context))
            }
            // Re-raised, not aborted: the checker reports the failing
            // schedule.
            fn engine_thread_panicked(_thread: &str, payload: Box<dyn core::any::Any + Send>) -> ! {
                std::panic::resume_unwind(payload)
            }
        }
    };
}

pub(crate) use model_platform;
