//! Helpers shared by the integration tests.

use cmwq::{System, Workqueue};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Waits until `cond` holds. No timeout: tests assert behaviour, not time.
/// A wait that never ends is a failed CI job; lost wakeups and deadlocks
/// are what the models in `models/` detect deterministically. `what` names
/// the wait for a debugger's backtrace.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let _ = what;
    while !cond() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A system with `cpus` CPUs.
pub fn system(cpus: usize) -> System {
    System::builder().cpus(cpus).build().expect("system builds")
}

/// A system with `cpus` CPUs and blocking and CPU-hog detection off, for
/// tests that hold a CPU with an unannotated wait (`Gate::wait_unannotated`)
/// or a spinning item so that items behind it stay queued: with detection
/// on (the default) the monitor would see the wait, or the hog after 10 ms,
/// and run them.
pub fn system_holding(cpus: usize) -> System {
    System::builder().cpus(cpus).detect_blocking(None).cpu_hog(None).build().expect("system builds")
}

/// A bound workqueue on `system`.
pub fn wq(system: &System, name: &str) -> Workqueue {
    Workqueue::builder(name).build(system).expect("workqueue builds")
}

/// A one-shot gate that work items can block on (inside `blocking`).
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate::default()
    }

    /// Opens the gate for everyone, now and later.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Closes the gate again (for the next round of a test).
    pub fn close(&self) {
        *self.open.lock().unwrap() = false;
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        *self.open.lock().unwrap()
    }

    /// Waits for the gate as a blocking section (hands the CPU to another
    /// worker when called from a work item).
    pub fn wait(&self) {
        cmwq::blocking(|| {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.cv.wait(open).unwrap();
            }
        })
    }

    /// Waits without telling the pool (an unannotated block).
    pub fn wait_unannotated(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

/// Threads of this process whose name starts with `prefix` (Linux; 0
/// elsewhere).
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// Threads named `prefix` left once joined threads had time to vanish.
/// `pthread_join` returns when a thread has finished, slightly before the
/// kernel removes its task from `/proc`; so this polls, for up to 10 s,
/// until none is listed. The bound only turns a real leak into a failure
/// instead of a hang: a joined thread vanishes within microseconds.
pub fn threads_left_after_join(prefix: &str) -> usize {
    let start = std::time::Instant::now();
    loop {
        let left = threads_named(prefix);
        if left == 0 || start.elapsed() > Duration::from_secs(10) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs test `name` of the calling test binary in a child process, with
/// the environment variable `var` set to `value` (the child test's switch),
/// and returns its output. A child still running after `guard` is killed
/// and the call panics with what it printed: a hang fails instead of
/// blocking CI.
pub fn run_test_in_child(name: &str, var: &str, value: &str, guard: Duration) -> std::process::Output {
    run_test_in_child_with_env(name, &[(var, value)], guard)
}

/// [`run_test_in_child`] with several environment variables set (the
/// child test's switch, and settings the child's runtime reads at start,
/// such as glibc's `MALLOC_ARENA_MAX`).
pub fn run_test_in_child_with_env(name: &str, env: &[(&str, &str)], guard: Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("child test starts");
    // Drain both pipes while the child runs: a child that writes more than
    // a pipe holds would otherwise block and look like a hang.
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    }
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        if started.elapsed() > guard {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
            panic!(
                "child {name} did not finish within {guard:?}:\n{}{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    std::process::Output { status, stdout, stderr }
}

/// Makes every further thread creation in this process fail, for real.
///
/// Mechanism: `RLIMIT_NPROC` = 1. The kernel checks it in `clone()` for
/// threads too, against the number of tasks the process's real user owns,
/// which is at least this process; so every new thread gets `EAGAIN`. Root
/// is exempt from the limit (`CAP_SYS_RESOURCE` / `CAP_SYS_ADMIN`), so a
/// child running as root first becomes the unprivileged user 65534
/// (`nobody`), which drops those capabilities; the process can then not
/// regain them, and it is a throwaway child.
#[cfg(target_os = "linux")]
pub fn limit_thread_creation() -> String {
    use std::io::Error;
    const NOBODY: libc::uid_t = 65534;
    let mut how = String::new();
    // SAFETY: plain syscalls on this process's credentials and limits.
    unsafe {
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups: {}", Error::last_os_error());
            assert_eq!(libc::setgid(NOBODY), 0, "setgid: {}", Error::last_os_error());
            assert_eq!(libc::setuid(NOBODY), 0, "setuid: {}", Error::last_os_error());
            how.push_str("running as root, so first switched to uid/gid 65534; then ");
        }
        let limit = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NPROC, &limit), 0, "setrlimit: {}", Error::last_os_error());
    }
    how.push_str("RLIMIT_NPROC = 1");
    how
}
