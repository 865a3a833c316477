//! The production platform: std threads, std locks, the OS clock and CPU id.

use super::{Platform, SpawnError, ThreadBody, ThreadContext, ThreadProbe, ThreadSample};
use core::cell::RefCell;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// The production [`Platform`]: OS threads and `std::sync` primitives.
#[derive(Debug, Clone, Copy)]
pub struct Std {
    origin: Instant,
}

impl Std {
    /// A std platform whose clock starts now.
    pub fn new() -> Self {
        Std { origin: Instant::now() }
    }
}

impl Default for Std {
    fn default() -> Self {
        Std::new()
    }
}

thread_local! {
    /// I: set once by each engine thread at start.
    static CONTEXT: RefCell<Option<ThreadContext>> = const { RefCell::new(None) };
}

impl Platform for Std {
    type Mutex<T: Send> = Mutex<T>;
    type Guard<'a, T: Send + 'a> = MutexGuard<'a, T>;
    type Condvar = Condvar;
    type AtomicUsize = core::sync::atomic::AtomicUsize;
    type JoinHandle = JoinHandle<()>;

    fn mutex_new<T: Send>(value: T) -> Mutex<T> {
        Mutex::new(value)
    }

    fn mutex_lock<T: Send>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        // The engine runs no user code under its locks, so poison can only
        // come from an engine bug that already panicked; keep going.
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
        deadline: Duration,
    ) -> Self::Guard<'a, T> {
        match cv.wait_timeout(guard, deadline.saturating_sub(self.now())) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    fn condvar_notify_one(cv: &Condvar) {
        cv.notify_one()
    }

    fn condvar_notify_all(cv: &Condvar) {
        cv.notify_all()
    }

    fn atomic_new(value: usize) -> Self::AtomicUsize {
        core::sync::atomic::AtomicUsize::new(value)
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

    fn spawn(&self, name: String, body: ThreadBody) -> Result<JoinHandle<()>, SpawnError> {
        // std panics on such a name; the engine must get an error instead.
        if name.contains('\0') {
            return Err(SpawnError::new(format!("thread name {name:?} contains a NUL byte")));
        }
        thread::Builder::new().name(name).spawn(body).map_err(|err| SpawnError::new(err.to_string()))
    }

    fn join(handle: JoinHandle<()>) {
        // Worker bodies catch user panics; a panic here is an engine bug that
        // was already reported on stderr by the panic hook.
        let _ = handle.join();
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn current_cpu(&self) -> Option<usize> {
        current_cpu()
    }

    fn allowed_os_cpus(&self) -> Option<Vec<usize>> {
        affinity::process_cpus()
    }

    fn pin_current_thread(&self, os_cpus: &[usize]) {
        affinity::pin_current_thread(os_cpus);
    }

    fn thread_probe(&self) -> Option<ThreadProbe> {
        thread_state::current()
    }

    fn probe(&self, probe: ThreadProbe) -> Option<ThreadSample> {
        thread_state::sample(probe)
    }

    fn cpu_time(&self, probe: ThreadProbe) -> Option<core::time::Duration> {
        thread_state::cpu_time(probe)
    }

    fn precise_timers(&self) {
        thread_state::precise_timers();
    }

    fn yield_now() {
        thread::yield_now()
    }

    fn sleep(&self, duration: Duration) {
        thread::sleep(duration)
    }

    fn thread_context() -> Option<ThreadContext> {
        CONTEXT.with(|slot| slot.borrow().clone())
    }

    fn set_thread_context(context: Option<ThreadContext>) -> Option<ThreadContext> {
        CONTEXT.with(|slot| slot.replace(context))
    }
}

/// A thread's scheduling state, read from `/proc` (Linux): what the
/// blocking monitor observes (`core/src/monitor.rs`).
#[cfg(target_os = "linux")]
mod thread_state {
    use super::{ThreadProbe, ThreadSample};
    use std::io::{Read, Write};

    /// The calling thread's id (low 32 bits) and its CPU-time clock (high
    /// 32 bits).
    #[allow(unsafe_code)]
    pub(super) fn current() -> Option<ThreadProbe> {
        // SAFETY: the gettid system call has no arguments or preconditions
        // and cannot fail (called directly: glibc's wrapper is 2.30+).
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let tid = u32::try_from(tid).ok()?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `pthread_self` is always valid for the calling thread and
        // `clock` is a valid place for the result.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } != 0 {
            return None;
        }
        let probe = ThreadProbe(u64::from(clock as u32) << 32 | u64::from(tid));
        // Only if this process's threads can be read at all (a restricted
        // /proc leaves detection off rather than failing every probe).
        sample(probe).map(|_| probe)
    }

    /// The thread's state (field 3 of `/proc/self/task/<tid>/stat`: S and D
    /// are asleep) and its CPU time (its CPU-time clock, which another
    /// thread of the process may read): one file read and one system call.
    pub(super) fn sample(probe: ThreadProbe) -> Option<ThreadSample> {
        let tid = probe.0 as u32;
        // The path is written on the stack: the monitor allocates nothing
        // per probe (an allocation may wait on, and wake, workers that
        // allocate at the same time, all in the allocator's lock).
        let mut path = [0u8; 48];
        let path = {
            let mut cursor = &mut path[..];
            write!(cursor, "/proc/self/task/{tid}/stat").ok()?;
            let len = 48 - cursor.len();
            core::str::from_utf8(path.get(..len)?).ok()?
        };
        let mut buf = [0u8; 1024];
        let stat = read(path, &mut buf)?;
        // The command name (field 2) is in parentheses and may hold spaces
        // and parentheses: the fields after it start after the last ')'.
        let close = stat.iter().rposition(|&b| b == b')')?;
        let mut fields = stat.get(close + 1..)?.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let state = *fields.next()?.first()?;
        let asleep = matches!(state, b'S' | b'D');
        let cpu = cpu_time(probe)?;
        let ran = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        Some(ThreadSample { asleep, ran, cpu: Some(cpu) })
    }

    /// Sets the calling thread's timer slack to 1 ns (`PR_SET_TIMERSLACK`):
    /// its timed waits may otherwise end up to 50 µs late. Best effort: a
    /// refusal leaves the default.
    #[allow(unsafe_code)]
    pub(super) fn precise_timers() {
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument and changes
        // only the calling thread's timer slack.
        let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    }

    /// The thread's CPU time, from its CPU-time clock (which another thread
    /// of the process may read).
    #[allow(unsafe_code)]
    pub(super) fn cpu_time(probe: ThreadProbe) -> Option<core::time::Duration> {
        let clock = (probe.0 >> 32) as u32 as libc::clockid_t;
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a valid place for the result; a clock of a
        // thread that exited is refused (EINVAL), not undefined.
        if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
            return None;
        }
        Some(core::time::Duration::new(u64::try_from(now.tv_sec).ok()?, u32::try_from(now.tv_nsec).ok()?))
    }

    /// Reads `path` into `buf` (it fits: these files are short).
    fn read<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        let mut file = std::fs::File::open(path).ok()?;
        let n = file.read(buf).ok()?;
        buf.get(..n)
    }
}

#[cfg(not(target_os = "linux"))]
mod thread_state {
    use super::{ThreadProbe, ThreadSample};

    pub(super) fn current() -> Option<ThreadProbe> {
        None
    }

    pub(super) fn sample(_probe: ThreadProbe) -> Option<ThreadSample> {
        None
    }

    pub(super) fn cpu_time(_probe: ThreadProbe) -> Option<core::time::Duration> {
        None
    }

    pub(super) fn precise_timers() {}
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions; it returns -1 on failure.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

#[cfg(not(target_os = "linux"))]
fn current_cpu() -> Option<usize> {
    None
}

/// How many CPUs this process may run on (its affinity mask on Linux).
pub(crate) fn allowed_cpus() -> usize {
    thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// CPU affinity masks of any size: the kernel's mask can be wider than
/// libc's fixed 1,024-bit `cpu_set_t`, so masks are vectors of words,
/// grown until the kernel accepts them.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod affinity {
    use libc::c_ulong;

    /// Bits per mask word.
    const WORD_BITS: usize = c_ulong::BITS as usize;
    /// Largest mask tried (2^22 CPUs), so that a kernel that keeps saying
    /// EINVAL for another reason cannot make this loop forever.
    const MAX_WORDS: usize = (1 << 22) / WORD_BITS;

    /// The main thread's affinity mask (the process's CPU set).
    pub(super) fn process_cpus() -> Option<Vec<usize>> {
        let mut words = 1024 / WORD_BITS;
        loop {
            let mut mask: Vec<c_ulong> = vec![0; words];
            // SAFETY: the kernel writes at most `size` bytes into `mask`,
            // which holds exactly that many; getpid has no preconditions.
            let rc = unsafe {
                libc::sched_getaffinity(
                    libc::getpid(),
                    words * core::mem::size_of::<c_ulong>(),
                    mask.as_mut_ptr().cast(),
                )
            };
            if rc == 0 {
                return Some(cpus_of(&mask));
            }
            // EINVAL: the mask is narrower than the kernel's CPU ids.
            let einval = std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL);
            if !einval || words >= MAX_WORDS {
                return None;
            }
            words *= 2;
        }
    }

    /// The CPUs whose bits are set, ascending.
    fn cpus_of(mask: &[c_ulong]) -> Vec<usize> {
        let mut cpus = Vec::new();
        for (word_index, &word) in mask.iter().enumerate() {
            for bit in 0..WORD_BITS {
                if word & (1 << bit) != 0 {
                    cpus.push(word_index * WORD_BITS + bit);
                }
            }
        }
        cpus
    }

    /// Pins the calling thread to `cpus` (ignored if empty or refused).
    pub(super) fn pin_current_thread(cpus: &[usize]) {
        let Some(&highest) = cpus.iter().max() else {
            return;
        };
        let words = highest / WORD_BITS + 1;
        if words > MAX_WORDS {
            return;
        }
        let mut mask: Vec<c_ulong> = vec![0; words];
        for &cpu in cpus {
            mask[cpu / WORD_BITS] |= 1 << (cpu % WORD_BITS);
        }
        // SAFETY: the kernel reads `size` bytes from `mask`, which holds
        // exactly that many; 0 names the calling thread.
        let _ = unsafe { libc::sched_setaffinity(0, words * core::mem::size_of::<c_ulong>(), mask.as_ptr().cast()) };
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Masks wider than libc's 1,024-bit `cpu_set_t` are read in full.
        #[test]
        fn cpu_ids_beyond_1024_are_read() {
            let mut mask: Vec<c_ulong> = vec![0; 4096 / WORD_BITS];
            for cpu in [0, 1023, 1024, 4095] {
                mask[cpu / WORD_BITS] |= 1 << (cpu % WORD_BITS);
            }
            assert_eq!(cpus_of(&mask), vec![0, 1023, 1024, 4095]);
        }

        /// The process's real mask is read, whatever its width.
        #[test]
        fn the_process_cpu_set_is_read() {
            let cpus = process_cpus().expect("sched_getaffinity works here");
            assert!(!cpus.is_empty() && cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub(super) fn process_cpus() -> Option<Vec<usize>> {
        None
    }

    pub(super) fn pin_current_thread(_cpus: &[usize]) {}
}
