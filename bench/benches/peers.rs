//! Benchmark (not a test): cmwq against its peers, six workloads.
//!
//! Pools: cmwq (a bound workqueue, an unbound one, and one-shot jobs via
//! `Workqueue::spawn` on a bound workqueue), rayon (`ThreadPool::spawn`),
//! tokio (`spawn_blocking` on a multi-thread runtime), the `threadpool`
//! crate, and a fixed pool over one crossbeam channel (`FixedPool`). Every
//! fixed-size pool gets as many threads as the machine has CPUs.
//!
//! Each trial is one OS process: this binary re-executes itself as
//! `peers --trial POOL WORKLOAD` and reads one `PEERS-RESULT` line back.
//! Trials are interleaved across pools (trial k runs the pools in an order
//! rotated by k). Reports the median and min-max over the trials, the ratio
//! to the best pool and to the ideal, and the peak number of threads the
//! pool added to the process; writes `bench/results/peers.md` and one SVG
//! plot per workload.
//!
//! `cargo bench -p cmwq-bench --bench peers`; environment:
//! `CMWQ_PEERS_TRIALS` (default 5), `CMWQ_PEERS_QUICK=1` (small sizes),
//! `CMWQ_PEERS_ONLY` / `CMWQ_PEERS_POOLS` (comma-separated workload / pool
//! names), `CMWQ_PEERS_OUT` (output folder; default `bench/results`).
//! See `bench/README.md`.

use cmwq::{System, Work, Workqueue};
use cmwq_bench::{spin_until, FixedPool};
use crossbeam_channel::{bounded, RecvTimeoutError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- sizes --

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn quick() -> bool {
    std::env::var("CMWQ_PEERS_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Workload sizes: the defaults, or the quick ones.
#[derive(Clone, Copy)]
struct Sizes {
    flood_items: usize,
    hol_blockers: usize,
    hol_block: Duration,
    hol_short: usize,
    storm_items: usize,
    storm_block: Duration,
    cpu_items: usize,
    cpu_work: Duration,
    nested_parents: usize,
    nested_child: Duration,
    nested_patience: Duration,
    sporadic_iters: usize,
    sporadic_gap: Duration,
}

fn sizes() -> Sizes {
    let q = quick();
    Sizes {
        flood_items: if q { 20_000 } else { 200_000 },
        hol_blockers: 8,
        hol_block: Duration::from_millis(20),
        hol_short: if q { 32 } else { 200 },
        storm_items: if q { 64 } else { 256 },
        storm_block: Duration::from_millis(5),
        cpu_items: if q { 16 } else { 64 },
        cpu_work: Duration::from_millis(2),
        nested_parents: if q { 16 } else { 64 },
        nested_child: Duration::from_millis(1),
        nested_patience: Duration::from_millis(if q { 1000 } else { 2000 }),
        sporadic_iters: if q { 50 } else { 300 },
        sporadic_gap: Duration::from_millis(2),
    }
}

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------- pools --

/// (name on the command line, label in the table).
const POOLS: &[(&str, &str)] = &[
    ("cmwq-bound", "cmwq bound wq (Work)"),
    ("cmwq-unbound", "cmwq unbound wq (Work)"),
    ("cmwq-jobs", "cmwq jobs (spawn/join)"),
    ("cmwq-plain", "cmwq bound wq, waits not annotated"),
    ("rayon", "rayon ThreadPool::spawn"),
    ("tokio", "tokio spawn_blocking"),
    ("threadpool", "threadpool crate"),
    ("fixed", "fixed pool (crossbeam channel)"),
];

enum Pool {
    /// `annotated`: the items declare their waits (`cmwq::sleep`, `flush`);
    /// otherwise they wait as on any pool and the blocking monitor must see it.
    Cmwq {
        _system: System,
        wq: Workqueue,
        jobs: bool,
        annotated: bool,
    },
    Rayon(rayon::ThreadPool),
    Tokio(tokio::runtime::Runtime),
    ThreadPool(threadpool::ThreadPool),
    Fixed(FixedPool),
}

/// Whether this trial's items declare their waits (cmwq, except `cmwq-plain`).
static ON_CMWQ: AtomicBool = AtomicBool::new(false);

/// Blocks for `d`: on cmwq as a declared blocking section (`cmwq::sleep`),
/// elsewhere a plain sleep.
fn block_for(d: Duration) {
    if ON_CMWQ.load(SeqCst) {
        cmwq::sleep(d);
    } else {
        thread::sleep(d);
    }
}

/// Fixed CPU work: `iters` rounds of an LCG the optimiser cannot drop.
fn spin(iters: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..iters {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

impl Pool {
    fn new(name: &str) -> Pool {
        let n = cpus();
        match name {
            "cmwq-bound" | "cmwq-unbound" | "cmwq-jobs" | "cmwq-plain" => {
                let annotated = name != "cmwq-plain";
                ON_CMWQ.store(annotated, SeqCst);
                let system = System::builder().build().expect("system");
                let mut builder = Workqueue::builder("peers");
                if name == "cmwq-unbound" {
                    builder.unbound();
                }
                let wq = builder.build(&system).expect("workqueue");
                Pool::Cmwq { _system: system, wq, jobs: name == "cmwq-jobs", annotated }
            }
            "rayon" => Pool::Rayon(rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("rayon")),
            "tokio" => Pool::Tokio(tokio::runtime::Builder::new_multi_thread().build().expect("tokio")),
            "threadpool" => Pool::ThreadPool(threadpool::ThreadPool::new(n)),
            "fixed" => Pool::Fixed(FixedPool::new(n)),
            other => panic!("unknown pool {other}"),
        }
    }

    /// Submits one item (a fresh `Work` per item on cmwq; a detached job
    /// for `cmwq-jobs`).
    fn submit(&self, f: impl Fn() + Send + Sync + 'static) {
        match self {
            Pool::Cmwq { wq, jobs: false, .. } => {
                wq.queue(&Work::new(f)).expect("queue");
            }
            Pool::Cmwq { wq, jobs: true, .. } => {
                drop(wq.spawn(f).unwrap_or_else(|_| panic!("spawn refused")));
            }
            Pool::Rayon(p) => p.spawn(f),
            Pool::Tokio(rt) => drop(rt.spawn_blocking(f)),
            Pool::ThreadPool(p) => p.execute(f),
            Pool::Fixed(p) => p.execute(f),
        }
    }

    /// From inside an item: queues `child` on the same pool and waits for
    /// it, each pool its own way; gives up at `deadline` where the pool
    /// has no wait of its own that can make progress. Returns whether the
    /// child finished.
    fn run_child_and_wait(&self, child: impl Fn() + Send + Sync + 'static, deadline: Instant) -> bool {
        match self {
            Pool::Cmwq { wq, jobs: false, annotated: true, .. } => {
                let work = Work::new(child);
                wq.queue(&work).expect("queue");
                work.flush().expect("flush");
                true
            }
            Pool::Cmwq { wq, jobs: true, annotated: true, .. } => {
                wq.spawn(child).unwrap_or_else(|_| panic!("spawn refused")).join().is_ok()
            }
            Pool::Rayon(_) => {
                // rayon's own wait: the scope's thread runs pending work
                // (the child or other items) while it waits.
                rayon::scope(|s| s.spawn(|_| child()));
                true
            }
            Pool::Tokio(rt) => {
                let handle = rt.handle();
                handle.block_on(handle.spawn_blocking(child)).is_ok()
            }
            Pool::ThreadPool(_) | Pool::Fixed(_) | Pool::Cmwq { annotated: false, .. } => {
                let (tx, rx) = bounded::<()>(1);
                self.submit(move || {
                    child();
                    let _ = tx.send(());
                });
                match rx.recv_deadline(deadline) {
                    Ok(()) => true,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => false,
                }
            }
        }
    }
}

// ------------------------------------------------------------ the trial --

/// Threads of this process (`/proc/self/stat`, field 20).
fn thread_count() -> usize {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    after.split_whitespace().nth(17).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Samples the thread count every 500 µs until stopped; keeps the peak.
struct Sampler {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Sampler {
        let peak = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(SeqCst) {
                p.fetch_max(thread_count(), SeqCst);
                thread::sleep(Duration::from_micros(500));
            }
        });
        // Wait for the first sample, so the sampler itself is counted.
        while peak.load(SeqCst) == 0 {
            thread::yield_now();
        }
        Sampler { peak, stop, thread: Some(thread) }
    }

    fn finish(mut self) -> usize {
        self.peak.fetch_max(thread_count(), SeqCst);
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(SeqCst)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a trial measured: its metrics (first is the headline) and whether
/// it finished on its own.
struct Measured {
    metrics: Vec<f64>,
    timed_out: bool,
}

fn flood(pool: &Arc<Pool>, s: Sizes) -> Measured {
    let n = s.flood_items;
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    if let Pool::Cmwq { wq, jobs: true, .. } = &**pool {
        // Jobs as meant: keep the handles, join them for the values.
        let handles: Vec<_> = (0..n).map(|i| wq.spawn(move || i).unwrap_or_else(|_| panic!("spawn refused"))).collect();
        let sum: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
        assert_eq!(sum, n * (n - 1) / 2);
    } else {
        for _ in 0..n {
            let d = done.clone();
            pool.submit(move || {
                d.fetch_add(1, SeqCst);
            });
        }
        spin_until(&done, n);
    }
    Measured { metrics: vec![start.elapsed().as_nanos() as f64 / n as f64], timed_out: false }
}

fn head_of_line(pool: &Arc<Pool>, s: Sizes) -> Measured {
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..s.hol_blockers {
        let (d, b) = (done.clone(), s.hol_block);
        pool.submit(move || {
            block_for(b);
            d.fetch_add(1, SeqCst);
        });
    }
    let t0 = Instant::now();
    let started: Arc<Vec<AtomicU64>> = Arc::new((0..s.hol_short).map(|_| AtomicU64::new(0)).collect());
    let mut submitted = Vec::with_capacity(s.hol_short);
    for i in 0..s.hol_short {
        let (d, st) = (done.clone(), started.clone());
        submitted.push(t0.elapsed().as_nanos() as u64);
        pool.submit(move || {
            st[i].store(t0.elapsed().as_nanos() as u64, SeqCst);
            d.fetch_add(1, SeqCst);
        });
    }
    spin_until(&done, s.hol_blockers + s.hol_short);
    let mut lat: Vec<f64> =
        (0..s.hol_short).map(|i| (started[i].load(SeqCst).saturating_sub(submitted[i])) as f64 / 1e6).collect();
    lat.sort_by(f64::total_cmp);
    Measured { metrics: vec![percentile(&lat, 99.0), percentile(&lat, 50.0)], timed_out: false }
}

fn blocking_storm(pool: &Arc<Pool>, s: Sizes) -> Measured {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..s.storm_items {
        let (d, b) = (done.clone(), s.storm_block);
        pool.submit(move || {
            block_for(b);
            d.fetch_add(1, SeqCst);
        });
    }
    spin_until(&done, s.storm_items);
    Measured { metrics: vec![ms(start.elapsed())], timed_out: false }
}

fn cpu_storm(pool: &Arc<Pool>, s: Sizes, iters: u64) -> Measured {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..s.cpu_items {
        let d = done.clone();
        pool.submit(move || {
            std::hint::black_box(spin(iters));
            d.fetch_add(1, SeqCst);
        });
    }
    spin_until(&done, s.cpu_items);
    Measured { metrics: vec![ms(start.elapsed())], timed_out: false }
}

fn nested(pool: &Arc<Pool>, s: Sizes) -> Measured {
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + s.nested_patience;
    for _ in 0..s.nested_parents {
        let (d, f, p, c) = (done.clone(), failed.clone(), pool.clone(), s.nested_child);
        pool.submit(move || {
            if !p.run_child_and_wait(move || block_for(c), deadline) {
                f.fetch_add(1, SeqCst);
            }
            d.fetch_add(1, SeqCst);
        });
    }
    spin_until(&done, s.nested_parents);
    Measured { metrics: vec![ms(start.elapsed())], timed_out: failed.load(SeqCst) > 0 }
}

fn sporadic(pool: &Arc<Pool>, s: Sizes) -> Measured {
    let (tx, rx) = bounded::<Instant>(1);
    let mut lat = Vec::with_capacity(s.sporadic_iters);
    for _ in 0..s.sporadic_iters {
        thread::sleep(s.sporadic_gap);
        let tx = tx.clone();
        let submitted = Instant::now();
        pool.submit(move || {
            let _ = tx.send(Instant::now());
        });
        let started = rx.recv().expect("item ran");
        lat.push((started - submitted).as_secs_f64() * 1e6);
    }
    lat.sort_by(f64::total_cmp);
    let max = *lat.last().unwrap_or(&f64::NAN);
    Measured { metrics: vec![percentile(&lat, 50.0), percentile(&lat, 99.0), max], timed_out: false }
}

/// One trial, in this process: prints one `PEERS-RESULT` line and exits
/// without tearing the pool down (a stuck pool cannot hang the exit).
fn trial(pool_name: &str, workload: &str) -> ! {
    let s = sizes();
    let iters: u64 = std::env::var("CMWQ_PEERS_SPIN_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let sampler = Sampler::start();
    let baseline = thread_count();
    let pool = Arc::new(Pool::new(pool_name));
    // Warm-up: one item through, so the pool has started.
    let (tx, rx) = bounded::<()>(1);
    pool.submit(move || {
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("warm-up item ran");
    let m = match workload {
        "flood" => flood(&pool, s),
        "hol" => head_of_line(&pool, s),
        "blocking-storm" => blocking_storm(&pool, s),
        "cpu-storm" => cpu_storm(&pool, s, iters),
        "nested" => nested(&pool, s),
        "sporadic" => sporadic(&pool, s),
        other => panic!("unknown workload {other}"),
    };
    let peak = sampler.finish();
    let mut line = format!(
        "PEERS-RESULT status={} threads={}",
        if m.timed_out { "timeout" } else { "ok" },
        peak.saturating_sub(baseline)
    );
    for (i, v) in m.metrics.iter().enumerate() {
        let _ = write!(line, " m{i}={v}");
    }
    println!("{line}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

// ----------------------------------------------------------- the driver --

struct WorkloadSpec {
    name: &'static str,
    title: String,
    /// Metric names and unit; the first is the headline (plotted, ranked).
    metrics: &'static [&'static str],
    unit: &'static str,
    /// The ideal for the headline metric, if there is one.
    ideal: Option<f64>,
    ideal_note: String,
}

fn workloads(s: Sizes, cpu_item_ms: f64) -> Vec<WorkloadSpec> {
    let n = cpus();
    vec![
        WorkloadSpec {
            name: "flood",
            title: format!("flood: {} no-op items queued from one thread", s.flood_items),
            metrics: &["ns/item"],
            unit: "ns per item",
            ideal: None,
            ideal_note: "none (lower is better)".into(),
        },
        WorkloadSpec {
            name: "hol",
            title: format!(
                "head-of-line: {} blockers ({} ms each) queued first, then {} short items",
                s.hol_blockers,
                s.hol_block.as_millis(),
                s.hol_short
            ),
            metrics: &["p99 ms", "p50 ms"],
            unit: "short items' queue-to-start latency, p99 (ms)",
            ideal: None,
            ideal_note: format!(
                "~0: short items need not wait for the blockers (one blocker lasts {} ms)",
                s.hol_block.as_millis()
            ),
        },
        WorkloadSpec {
            name: "blocking-storm",
            title: format!("blocking storm: {} items that each block {} ms", s.storm_items, s.storm_block.as_millis()),
            metrics: &["total ms"],
            unit: "total time (ms)",
            ideal: Some(ms(s.storm_block)),
            ideal_note: format!("{} ms: every item blocks at once", s.storm_block.as_millis()),
        },
        WorkloadSpec {
            name: "cpu-storm",
            title: format!(
                "CPU storm: {} items of ~{} ms CPU each, queued from one thread",
                s.cpu_items,
                s.cpu_work.as_millis()
            ),
            metrics: &["total ms"],
            unit: "total time (ms)",
            ideal: Some(s.cpu_items as f64 * cpu_item_ms / n as f64),
            ideal_note: format!(
                "{:.1} ms = {} items x {:.3} ms (measured) / {} CPUs",
                s.cpu_items as f64 * cpu_item_ms / n as f64,
                s.cpu_items,
                cpu_item_ms,
                n
            ),
        },
        WorkloadSpec {
            name: "nested",
            title: format!(
                "nested waits: {} items each queue a child ({} ms block) and wait for it",
                s.nested_parents,
                s.nested_child.as_millis()
            ),
            metrics: &["total ms"],
            unit: "total time (ms)",
            ideal: Some(ms(s.nested_child)),
            ideal_note: format!(
                "{} ms: all children block at once (patience {} ms, then deadlock/timeout)",
                s.nested_child.as_millis(),
                s.nested_patience.as_millis()
            ),
        },
        WorkloadSpec {
            name: "sporadic",
            title: format!(
                "sporadic: {} single items, {} ms apart, each waited for",
                s.sporadic_iters,
                s.sporadic_gap.as_millis()
            ),
            metrics: &["p50 µs", "p99 µs", "max µs"],
            unit: "submit-to-start latency, p50 (µs)",
            ideal: None,
            ideal_note: "none (lower is better)".into(),
        },
    ]
}

#[derive(Default)]
struct Trials {
    metrics: Vec<Vec<f64>>, // per ok trial
    threads: Vec<usize>,
    timeouts: usize,
    failures: usize,
}

/// Runs one trial process; `None` if it crashed or hung.
fn run_trial(pool: &str, workload: &str, iters: u64) -> Option<(bool, usize, Vec<f64>)> {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(["--trial", pool, workload])
        .env("CMWQ_PEERS_SPIN_ITERS", iters.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("re-execute self");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = bounded(1);
    thread::spawn(move || {
        let line = BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.starts_with("PEERS-RESULT"));
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            None
        }
    };
    let _ = child.wait();
    let line = line?;
    let mut ok = false;
    let mut threads = 0;
    let mut metrics = Vec::new();
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=')?;
        match k {
            "status" => ok = v == "ok",
            "threads" => threads = v.parse().ok()?,
            _ => metrics.push(v.parse().ok()?),
        }
    }
    Some((ok, threads, metrics))
}

/// Iterations of `spin` for about `target`, and the measured time of one
/// item of that many (the best of several runs).
fn calibrate(target: Duration) -> (u64, f64) {
    let probe = 2_000_000u64;
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(spin(probe));
            t.elapsed()
        })
        .min()
        .unwrap();
    let iters = (probe as f64 * target.as_secs_f64() / best.as_secs_f64()).max(1.0) as u64;
    let item = (0..9)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(spin(iters));
            t.elapsed()
        })
        .min()
        .unwrap();
    (iters, ms(item))
}

/// Median, min, max.
type Stats = (f64, f64, f64);

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    (median, v[0], v[v.len() - 1])
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn selected(var: &str, all: &[&'static str]) -> Vec<&'static str> {
    match std::env::var(var) {
        Ok(list) if !list.trim().is_empty() => {
            let want: Vec<&str> = list.split(',').map(str::trim).collect();
            all.iter().copied().filter(|n| want.contains(n)).collect()
        }
        _ => all.to_vec(),
    }
}

/// Per pool: (label, median, min, max) of the headline, or `None` for a
/// pool that timed out or failed in every trial.
type PlotRow = (String, Option<Stats>);

fn plot(path: &std::path::Path, spec: &WorkloadSpec, rows: &[PlotRow]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let values: Vec<f64> = rows
        .iter()
        .filter_map(|(_, s)| *s)
        .flat_map(|s| [s.1, s.2])
        .chain(spec.ideal)
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    let hi = values.iter().copied().fold(0.0, f64::max);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    // A log axis where the pools differ by more than 20x.
    let log = hi > 0.0 && lo.is_finite() && hi / lo > 20.0;
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = rows.len() as f64;
    let y_desc = if log { format!("{} (log scale)", spec.unit) } else { spec.unit.to_string() };
    macro_rules! draw {
        ($y_range:expr, $floor:expr, $text_y:expr) => {{
            let floor: f64 = $floor;
            let text_y: f64 = $text_y;
            let mut chart = ChartBuilder::on(&root)
                .caption(&spec.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..n, $y_range)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(rows.len() * 2 + 1)
                .x_label_formatter(&|x| {
                    let i = x.floor() as usize;
                    if (x - i as f64 - 0.5).abs() < 1e-6 && i < rows.len() {
                        rows[i].0.clone()
                    } else {
                        String::new()
                    }
                })
                .x_label_style(("sans-serif", 13))
                .y_desc(y_desc.as_str())
                .draw()?;
            for (i, (name, s)) in rows.iter().enumerate() {
                let x = i as f64;
                match s {
                    Some((median, min, max)) => {
                        let color =
                            if name.starts_with("cmwq") { RGBColor(60, 110, 200) } else { RGBColor(150, 150, 150) };
                        chart.draw_series(std::iter::once(Rectangle::new(
                            [(x + 0.2, floor), (x + 0.8, *median)],
                            color.filled(),
                        )))?;
                        chart.draw_series(std::iter::once(PathElement::new(
                            vec![(x + 0.5, *min), (x + 0.5, *max)],
                            BLACK,
                        )))?;
                        for y in [*min, *max] {
                            chart.draw_series(std::iter::once(PathElement::new(
                                vec![(x + 0.4, y), (x + 0.6, y)],
                                BLACK,
                            )))?;
                        }
                    }
                    None => {
                        chart.draw_series(std::iter::once(Text::new(
                            "deadlock/timeout",
                            (x + 0.1, text_y),
                            ("sans-serif", 12).into_font().color(&RED),
                        )))?;
                    }
                }
            }
            if let Some(ideal) = spec.ideal {
                chart
                    .draw_series(std::iter::once(PathElement::new(vec![(0.0, ideal), (n, ideal)], RED)))?
                    .label("ideal")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
                chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
            }
        }};
    }
    if log {
        draw!((lo / 2.0..hi * 2.0).log_scale(), lo / 2.0, lo);
    } else {
        let top = if hi > 0.0 { hi * 1.15 } else { 1.0 };
        draw!(0f64..top, 0.0, top * 0.05);
    }
    root.present()?;
    Ok(())
}

fn driver() {
    let started = Instant::now();
    let s = sizes();
    let n_trials = env_or("CMWQ_PEERS_TRIALS", 5).max(1);
    let (iters, cpu_item_ms) = calibrate(s.cpu_work);
    let specs = workloads(s, cpu_item_ms);
    let all_pools: Vec<&'static str> = POOLS.iter().map(|p| p.0).collect();
    let pools = selected("CMWQ_PEERS_POOLS", &all_pools);
    let all_workloads: Vec<&'static str> = specs.iter().map(|w| w.name).collect();
    let chosen = selected("CMWQ_PEERS_ONLY", &all_workloads);
    let out_dir = std::env::var("CMWQ_PEERS_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results"));
    std::fs::create_dir_all(&out_dir).expect("output folder");
    let label = |p: &str| POOLS.iter().find(|q| q.0 == p).map_or(p.to_string(), |q| q.1.to_string());

    let mut md = String::new();
    let _ = writeln!(md, "# cmwq vs peers\n");
    let _ = writeln!(
        md,
        "{} CPUs; {} trials per (pool, workload), one process each, interleaved across pools; {} sizes; \
         fixed-size pools have {} threads. Median, [min–max] over the trials; `× best` = median / best \
         median of the workload; `× ideal` = median / ideal; threads = peak threads the pool added to the \
         process (median over trials, max in parentheses). Generated by `cargo bench -p cmwq-bench --bench peers`.\n",
        cpus(),
        n_trials,
        if quick() { "quick" } else { "default" },
        cpus()
    );
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let _ = writeln!(
        md,
        "Machine: {cpu_model}; load average at the start {} (the machine may be shared: the CPU-bound figures \
         are the most sensitive to that). Workload sizes are in the headings; the harness and the ideals are \
         described in `bench/README.md`.\n",
        load.join(" ")
    );
    for spec in specs.iter().filter(|w| chosen.contains(&w.name)) {
        eprintln!("peers: {} ...", spec.name);
        let mut results: BTreeMap<&str, Trials> = BTreeMap::new();
        for t in 0..n_trials {
            for k in 0..pools.len() {
                let pool = pools[(k + t) % pools.len()];
                let entry = results.entry(pool).or_default();
                match run_trial(pool, spec.name, iters) {
                    Some((ok, threads, metrics)) => {
                        entry.threads.push(threads);
                        if ok {
                            entry.metrics.push(metrics);
                        } else {
                            entry.timeouts += 1;
                        }
                    }
                    None => entry.failures += 1,
                }
            }
        }
        let headline: Vec<(&str, Option<Stats>)> = pools
            .iter()
            .map(|p| {
                let r = &results[p];
                let ok = r.timeouts == 0 && r.failures == 0 && !r.metrics.is_empty();
                (*p, ok.then(|| stats(r.metrics.iter().map(|m| m[0]).collect())))
            })
            .collect();
        let best = headline.iter().filter_map(|(_, s)| s.map(|s| s.0)).fold(f64::INFINITY, f64::min);

        let _ = writeln!(md, "## {}\n", spec.title);
        let _ = writeln!(md, "Headline: {}. Ideal: {}.\n", spec.unit, spec.ideal_note);
        let mut header = String::from("| pool |");
        let mut rule = String::from("|---|");
        for m in spec.metrics {
            let _ = write!(header, " {m} |");
            rule.push_str("---:|");
        }
        header.push_str(" × best | × ideal | threads |");
        rule.push_str("---:|---:|---:|");
        let _ = writeln!(md, "{header}\n{rule}");
        for (pool, head) in &headline {
            let r = &results[pool];
            let mut row = format!("| {} |", label(pool));
            if head.is_none() {
                let what = if r.timeouts > 0 { "deadlock/timeout" } else { "failed" };
                let _ = write!(row, " {what} ({}/{} trials) |", r.timeouts + r.failures, n_trials);
                for _ in 1..spec.metrics.len() {
                    row.push_str(" — |");
                }
                row.push_str(" — | — |");
            } else {
                for i in 0..spec.metrics.len() {
                    let (med, lo, hi) = stats(r.metrics.iter().map(|m| m[i]).collect());
                    let _ = write!(row, " {} [{}–{}] |", fmt_num(med), fmt_num(lo), fmt_num(hi));
                }
                let med = head.unwrap().0;
                let _ = write!(row, " {:.2} |", med / best);
                match spec.ideal {
                    Some(ideal) => {
                        let _ = write!(row, " {:.2} |", med / ideal);
                    }
                    None => row.push_str(" — |"),
                }
            }
            let threads = if r.threads.is_empty() {
                "—".to_string()
            } else {
                let (m, _, hi) = stats(r.threads.iter().map(|&t| t as f64).collect());
                format!("{m:.0} ({hi:.0})")
            };
            let _ = writeln!(row, " {threads} |");
            md.push_str(&row);
        }
        let _ = writeln!(md, "\n![{}](peers-{}.svg)\n", spec.name, spec.name);
        let rows: Vec<PlotRow> = headline.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        if let Err(e) = plot(&out_dir.join(format!("peers-{}.svg", spec.name)), spec, &rows) {
            eprintln!("peers: plot for {} failed: {e}", spec.name);
        }
    }
    let load_end = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_end: Vec<&str> = load_end.split_whitespace().take(3).collect();
    let _ = writeln!(
        md,
        "Run took {:.0} s; load average at the end {}.",
        started.elapsed().as_secs_f64(),
        load_end.join(" ")
    );
    print!("{md}");
    std::fs::write(out_dir.join("peers.md"), &md).expect("write peers.md");
    eprintln!("peers: wrote {}", out_dir.join("peers.md").display());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--trial") {
        let pool = args.get(i + 1).expect("pool name");
        let workload = args.get(i + 2).expect("workload name");
        trial(pool, workload);
    }
    driver();
}
