//! The platform under a changed process: a narrowed CPU affinity mask, and
//! a thread limit that makes the default system fail once. Each runs in a
//! child process of this test binary, since both change the whole process.

#![cfg(target_os = "linux")]

use std::time::Duration;

const CHILD_VAR: &str = "CMWQ_PLATFORM_CHILD";
/// Hang guard for a child (each finishes in well under a second).
const CHILD_GUARD: Duration = Duration::from_secs(60);

/// Runs test `name` of this binary in a child process and checks that it
/// printed `RESULT ok` (or `RESULT skipped`, which is printed through).
fn run_child(name: &str) {
    let output = cmwq_tests::run_test_in_child(name, CHILD_VAR, name, CHILD_GUARD);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines().filter(|l| l.starts_with("child:") || l.starts_with("RESULT")) {
        println!("{name}: {line}");
    }
    assert!(
        output.status.success() && (stdout.contains("RESULT ok") || stdout.contains("RESULT skipped")),
        "child {name} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn in_child(name: &str) -> bool {
    std::env::var(CHILD_VAR).is_ok_and(|v| v == name)
}

/// The CPUs thread `tid` may run on (0: the caller), read with a mask
/// wide enough for any machine this runs on.
fn thread_cpus(tid: libc::pid_t) -> Vec<usize> {
    let mut mask = vec![0 as libc::c_ulong; 1 << 10];
    let bytes = mask.len() * std::mem::size_of::<libc::c_ulong>();
    // SAFETY: the kernel writes at most `bytes` bytes into `mask`.
    let rc = unsafe { libc::sched_getaffinity(tid, bytes, mask.as_mut_ptr().cast()) };
    assert_eq!(rc, 0, "sched_getaffinity");
    let bits = libc::c_ulong::BITS as usize;
    (0..mask.len() * bits).filter(|&cpu| mask[cpu / bits] & (1 << (cpu % bits)) != 0).collect()
}

/// Restricts thread `tid` to the single CPU `cpu`.
fn pin(tid: libc::pid_t, cpu: usize) {
    let bits = libc::c_ulong::BITS as usize;
    let mut mask = vec![0 as libc::c_ulong; cpu / bits + 1];
    mask[cpu / bits] |= 1 << (cpu % bits);
    let bytes = mask.len() * std::mem::size_of::<libc::c_ulong>();
    // SAFETY: the kernel reads `bytes` bytes from `mask`.
    assert_eq!(unsafe { libc::sched_setaffinity(tid, bytes, mask.as_ptr().cast()) }, 0, "sched_setaffinity");
}

/// Guarantee: with a narrowed affinity mask, plain `queue` from a thread on
/// OS CPU `h` uses the pool of the virtual CPU that `h` is (its place in the
/// process's CPU set at build), not `h % cpus`. Was: `h % cpus`.
#[test]
fn os_cpu_maps_to_its_pool_under_a_narrowed_mask() {
    if !in_child("os_cpu_child") {
        run_child("os_cpu_child");
    }
}

#[test]
fn os_cpu_child() {
    if !in_child("os_cpu_child") {
        return;
    }
    // SAFETY: getpid has no preconditions.
    let main_thread = unsafe { libc::getpid() };
    let original = thread_cpus(main_thread);
    // An odd CPU tells the two mappings apart with 2 virtual CPUs.
    let Some(&odd) = original.iter().find(|&&cpu| cpu % 2 == 1) else {
        println!("RESULT skipped: no odd CPU in {original:?}, so both mappings agree");
        return;
    };
    pin(main_thread, odd);
    pin(0, odd);
    let system = cmwq::System::builder().cpus(2).pin_workers(true).thread_name_prefix("aff").build().unwrap();
    let wq = cmwq::Workqueue::builder("where").build(&system).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let probe = {
        let seen = seen.clone();
        cmwq::Work::new(move || *seen.lock().unwrap() = std::thread::current().name().unwrap_or("").to_string())
    };
    wq.queue(&probe).unwrap();
    probe.flush().unwrap();
    let worker = seen.lock().unwrap().clone();
    println!("child: process narrowed to OS CPU {odd}; plain queue ran on worker {worker}");
    assert!(worker.starts_with("aff/0:"), "OS CPU {odd} is virtual CPU 0 of the set [{odd}], got worker {worker}");
    println!("RESULT ok");
}

/// Guarantee: `default_system()` is not poisoned by a transient failure:
/// the first call fails while no thread can be created, a later call (once
/// threads can be created again) succeeds. Was: the error was cached for
/// the life of the process.
#[test]
fn default_system_retries_after_a_transient_failure() {
    if !in_child("default_system_child") {
        run_child("default_system_child");
    }
}

#[test]
fn default_system_child() {
    if !in_child("default_system_child") {
        return;
    }
    use std::io::Error;
    const NOBODY: libc::uid_t = 65534;
    // SAFETY: plain syscalls on this throwaway process's credentials and
    // limits. Root is exempt from RLIMIT_NPROC, so root first becomes
    // `nobody`; the hard limit is kept so the soft one can be raised again.
    unsafe {
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NPROC, &mut old), 0);
        let limit = libc::rlimit { rlim_cur: 1, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NPROC, &limit), 0, "setrlimit: {}", Error::last_os_error());
        if libc::geteuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups: {}", Error::last_os_error());
            assert_eq!(libc::setgid(NOBODY), 0, "setgid: {}", Error::last_os_error());
            assert_eq!(libc::setuid(NOBODY), 0, "setuid: {}", Error::last_os_error());
        }
    }
    if std::thread::Builder::new().spawn(|| {}).is_ok() {
        println!("RESULT skipped: thread creation still works under RLIMIT_NPROC = 1");
        return;
    }
    let first = cmwq::try_default_system();
    let err = first.expect_err("the default system cannot start without threads");
    println!("child: first try_default_system: {err}");
    // SAFETY: as above; raising the soft limit up to the hard one.
    unsafe {
        let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NPROC, &mut now), 0);
        let wanted = libc::rlimit { rlim_cur: now.rlim_max, rlim_max: now.rlim_max };
        let rc = libc::setrlimit(libc::RLIMIT_NPROC, &wanted);
        assert_eq!(rc, 0, "raise {:?} to {:?}: {}", now.rlim_cur, now.rlim_max, Error::last_os_error());
    }
    let default = cmwq::try_default_system().expect("a later call builds the default system");
    let work = cmwq::Work::new(|| {});
    default.system_wq.queue(&work).unwrap();
    work.flush().unwrap();
    assert!(std::ptr::eq(cmwq::default_system(), &default.system), "built once, then kept");
    println!("child: second try_default_system built it; an item ran on system_wq");
    println!("RESULT ok");
}
