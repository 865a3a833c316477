//! Benchmark (not a test): blocking seen without annotation
//! (`core/src/monitor.rs`). Linux only.
//!
//! - **Detection latency**: on one CPU, item A records the time and then
//!   blocks in a plain `std::thread::sleep`; item B, queued behind it,
//!   records when it starts. The latency is B's start minus A's block,
//!   with 0 and with 63 other workers already blocked unannotated on the
//!   pool (65 workers), and the same with A's sleep annotated
//!   (`cmwq::blocking`) for comparison. In the `late` rows B is queued
//!   1 ms after A blocked (the seed's scenario: a short item arrives
//!   behind a sleeping one), and the latency runs from B's queueing. Trials are 10 ms apart: with no
//!   other worker blocked, the monitor has parked by then and A's start
//!   wakes it; with 63 blocked, it never parks, and A's start cuts its
//!   pause short (workers are seen blocked). Either way the pass that
//!   follows probes A at once (B waits behind it).
//! - **Monitor CPU**: the monitor thread's CPU time (`schedstat`) over 2 s
//!   idle, and over floods of 200,000 and 2,000,000 no-op items from one
//!   thread, and over a storm of 256 items that each sleep 5 ms
//!   unannotated, as a share of one core; the short flood's time per item
//!   with detection on and off, in the same run.
//!
//! `cargo bench -p cmwq-bench --bench detect` (`CMWQ_DETECT_TRIALS`, default
//! 200, 0 skips the latency rows; `CMWQ_DETECT_FLOOD_ITEMS`, default
//! 200,000, the short flood (the long one is ten times it); `CMWQ_DETECT_OUT`, the output folder, default `bench/results`:
//! writes `detect.md`).

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("detect: Linux only (the monitor reads /proc)");
}

#[cfg(target_os = "linux")]
mod linux {
    use cmwq::{System, Work, Workqueue};
    use cmwq_bench::flood_from_outside;
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    fn env_or(name: &str, default: usize) -> usize {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// Percentiles of `samples` (sorted here), in microseconds.
    fn percentiles(mut samples: Vec<Duration>) -> [f64; 5] {
        samples.sort();
        let at = |q: f64| {
            let i = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[i].as_secs_f64() * 1e6
        };
        [at(0.0), at(0.5), at(0.9), at(0.99), at(1.0)]
    }

    /// One latency trial: A blocks (annotated or not), B behind it starts;
    /// B is queued with A, or (`late`) 1 ms after A blocked. The latency
    /// runs from the later of A's block and B's queueing to B's start.
    fn trial(wq: &Workqueue, annotated: bool, late: bool) -> Duration {
        let blocked_at = Arc::new(Mutex::new(None::<Instant>));
        let started_at = Arc::new(Mutex::new(None::<Instant>));
        let b_done = Arc::new(AtomicBool::new(false));
        let a = {
            let (blocked_at, b_done) = (blocked_at.clone(), b_done.clone());
            Work::new(move || {
                *blocked_at.lock().unwrap() = Some(Instant::now());
                let wait = || {
                    while !b_done.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                };
                if annotated {
                    cmwq::blocking(wait);
                } else {
                    wait();
                }
            })
        };
        let b = {
            let (started_at, b_done) = (started_at.clone(), b_done.clone());
            Work::new(move || {
                *started_at.lock().unwrap() = Some(Instant::now());
                b_done.store(true, SeqCst);
            })
        };
        wq.queue_on(0, &a).unwrap();
        if late {
            while blocked_at.lock().unwrap().is_none() {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let queued = Instant::now();
        wq.queue_on(0, &b).unwrap();
        a.flush().unwrap();
        b.flush().unwrap();
        let (blocked, started) = (blocked_at.lock().unwrap().unwrap(), started_at.lock().unwrap().unwrap());
        started.saturating_duration_since(blocked.max(queued))
    }

    /// Latencies of `trials` trials on a fresh one-CPU system with `others`
    /// workers blocked unannotated on the pool throughout.
    fn latencies(trials: usize, others: usize, annotated: bool, late: bool) -> (Vec<Duration>, usize) {
        let system = System::builder().cpus(1).highpri_pools(false).unbound_pools(false).build().unwrap();
        let wq = Workqueue::builder("detect").build(&system).unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicUsize::new(0));
        let blockers: Vec<Work> = (0..others)
            .map(|_| {
                let (release, running) = (release.clone(), running.clone());
                Work::new(move || {
                    running.fetch_add(1, SeqCst);
                    while !release.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            })
            .collect();
        for blocker in &blockers {
            wq.queue_on(0, blocker).unwrap();
        }
        while running.load(SeqCst) < others {
            std::thread::sleep(Duration::from_millis(1));
        }
        // A pause between trials, so each A blocks in a pool that was quiet
        // (the monitor parks after about 8 ms without an item running;
        // with blockers it never parks).
        let samples = (0..trials)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                trial(&wq, annotated, late)
            })
            .collect();
        let workers = system.pool_stats()[0].workers;
        release.store(true, SeqCst);
        wq.flush().unwrap();
        (samples, workers)
    }

    /// The CPU time of this process's thread named `name`, if any.
    fn thread_cpu(name: &str) -> Option<Duration> {
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            if comm.trim() == name {
                let sched = std::fs::read_to_string(path.join("schedstat")).ok()?;
                let ns: u64 = sched.split_whitespace().next()?.parse().ok()?;
                return Some(Duration::from_nanos(ns));
            }
        }
        None
    }

    /// Queues `n` items that each sleep `each` unannotated, and waits for
    /// them all.
    fn storm(wq: &Workqueue, n: usize, each: Duration) {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let done = done.clone();
            let item = Work::new(move || {
                std::thread::sleep(each);
                done.fetch_add(1, SeqCst);
            });
            wq.queue(&item).expect("queue");
        }
        while done.load(SeqCst) < n {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    pub fn main() {
        let trials = env_or("CMWQ_DETECT_TRIALS", 200);
        let mut out = String::new();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let _ = writeln!(
            out,
            "# Blocking detection\n\n`cargo bench -p cmwq-bench --bench detect`, {trials} trials per row, {cpus} CPUs, load average at start {}.\n",
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
        let _ = writeln!(out, "## Latency: an item blocks, the item behind it starts (µs)\n");
        let _ = writeln!(
            out,
            "| A blocks | B queued | workers on the pool | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|---|"
        );
        let rows = [
            (0, false, false),
            (63, false, false),
            (0, false, true),
            (0, true, false),
            (63, true, false),
            (0, true, true),
        ];
        for (others, annotated, late) in rows {
            if trials == 0 {
                break;
            }
            let (samples, workers) = latencies(trials, others, annotated, late);
            let [min, p50, p90, p99, max] = percentiles(samples);
            let how = if annotated { "in `blocking()`" } else { "unannotated (`std` sleep)" };
            let b = if late { "1 ms after A blocked" } else { "with A" };
            let _ = writeln!(out, "| {how} | {b} | {workers} | {min:.0} | {p50:.0} | {p90:.0} | {p99:.0} | {max:.0} |");
            println!("latency {how}, B queued {b}, {workers} workers: p50 {p50:.0} µs, p99 {p99:.0} µs");
        }

        let _ = writeln!(out, "\n## The monitor's CPU, as a share of one core\n");
        let _ = writeln!(out, "| phase | wall | monitor CPU | share |\n|---|---|---|---|");
        let system = System::builder().build().unwrap();
        let wq = Workqueue::builder("flood").build(&system).unwrap();
        let monitor = "kworker/monitor";
        std::thread::sleep(Duration::from_millis(100));
        let (cpu0, t0) = (thread_cpu(monitor), Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let (cpu1, idle_wall) = (thread_cpu(monitor), t0.elapsed());
        let items = env_or("CMWQ_DETECT_FLOOD_ITEMS", 200_000);
        let t1 = Instant::now();
        let on_ns = flood_from_outside(&wq, items);
        let (cpu2, flood_wall) = (thread_cpu(monitor), t1.elapsed());
        // Ten times as long: the monitor's steady state in a flood (the
        // short one is mostly its first passes).
        let t2 = Instant::now();
        flood_from_outside(&wq, items * 10);
        let (cpu3, long_wall) = (thread_cpu(monitor), t2.elapsed());
        // A storm of unannotated blocking items: the monitor passes hot,
        // yielding in between, while it lasts (no target: for the record).
        let t3 = Instant::now();
        storm(&wq, 256, Duration::from_millis(5));
        let (cpu4, storm_wall) = (thread_cpu(monitor), t3.elapsed());
        let (short, long) = (format!("flood, {items} items"), format!("flood, {} items", items * 10));
        for (phase, wall, before, after) in [
            ("idle, 2 s", idle_wall, cpu0, cpu1),
            (short.as_str(), flood_wall, cpu1, cpu2),
            (long.as_str(), long_wall, cpu2, cpu3),
            ("storm: 256 items each in a 5 ms `std` sleep", storm_wall, cpu3, cpu4),
        ] {
            match (before, after) {
                (Some(before), Some(after)) => {
                    let used = after.saturating_sub(before);
                    let share = used.as_secs_f64() / wall.as_secs_f64() * 100.0;
                    let _ = writeln!(
                        out,
                        "| {phase} | {:.0} ms | {:.2} ms | {share:.2}% |",
                        wall.as_secs_f64() * 1e3,
                        used.as_secs_f64() * 1e3
                    );
                    println!("monitor {phase}: {share:.2}% of a core");
                }
                _ => {
                    let _ = writeln!(out, "| {phase} | — | no monitor thread found | — |");
                }
            }
        }
        drop(wq);
        drop(system);
        let off_system = System::builder().detect_blocking(None).cpu_hog(None).build().unwrap();
        let off_wq = Workqueue::builder("flood").build(&off_system).unwrap();
        let off_ns = flood_from_outside(&off_wq, items);
        let on_again = {
            let system = System::builder().build().unwrap();
            let wq = Workqueue::builder("flood").build(&system).unwrap();
            flood_from_outside(&wq, items)
        };
        let _ = writeln!(
            out,
            "\nFlood of {items} no-op items from one thread, bound workqueue: {on_ns:.0} and {on_again:.0} ns per item with detection (before and after), {off_ns:.0} without: {:.2}x (without: blocking and hog detection off, no monitor thread).",
            (on_ns + on_again) / 2.0 / off_ns
        );
        println!("flood: on {on_ns:.0}/{on_again:.0} ns, off {off_ns:.0} ns");
        let dir = std::env::var("CMWQ_DETECT_OUT")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results"));
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join("detect.md"), out).expect("write detect.md");
        println!("wrote {}", dir.join("detect.md").display());
    }
}
