//! Benchmark (not a test): tiny-item floods and the seed scenario, cmwq
//! side by side with a fixed pool of the same size over crossbeam-channel.
//! Reports the median of several runs and the ratio cmwq / fixed pool,
//! both measured in the same process run.
//!
//! `cargo bench -p cmwq-bench` (set `CMWQ_BENCH_ITEMS` / `CMWQ_BENCH_RUNS`
//! to change the size).

use cmwq::{System, Work, Workqueue};
use cmwq_bench::{flood_from_outside, seed_on_cmwq, seed_on_fixed_pool, spin_until, FixedPool};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// ns per item: one outside thread queues `n` fresh items.
fn cmwq_outside(wq: &Workqueue, n: usize) -> f64 {
    flood_from_outside(wq, n)
}

/// ns per item: one item queues `n` fresh items from inside the pool.
fn cmwq_inside(wq: &Workqueue, n: usize) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let (d, q) = (done.clone(), wq.clone());
    let seeder = Work::new(move || {
        for _ in 0..n {
            let d = d.clone();
            let item = Work::new(move || {
                d.fetch_add(1, SeqCst);
            });
            q.queue(&item).expect("queue");
        }
    });
    wq.queue(&seeder).expect("queue");
    spin_until(&done, n);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn fixed_outside(pool: &FixedPool, n: usize) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let d = done.clone();
        pool.execute(move || {
            d.fetch_add(1, SeqCst);
        });
    }
    spin_until(&done, n);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn fixed_inside(pool: &FixedPool, n: usize) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let (d, sender) = (done.clone(), pool.sender());
    pool.execute(move || {
        for _ in 0..n {
            let d = d.clone();
            let _ = sender.send(Box::new(move || {
                d.fetch_add(1, SeqCst);
            }));
        }
    });
    spin_until(&done, n);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let items = env_or("CMWQ_BENCH_ITEMS", 200_000);
    let runs = env_or("CMWQ_BENCH_RUNS", 7);
    let system = System::builder().build().expect("system");
    let cpus = system.cpus();
    let bound = Workqueue::builder("bench_bound").build(&system).expect("wq");
    let unbound =
        Workqueue::builder("bench_unbound").unbound().max_active(cmwq::MAX_ACTIVE_LIMIT).build(&system).expect("wq");
    let pool = FixedPool::new(cpus);
    println!("cmwq flood benchmark: {items} tiny items per run, median of {runs} runs, {cpus} CPUs, fixed pool of {cpus} threads");
    println!("{:<34} {:>12} {:>12} {:>8}", "scenario", "cmwq ns/item", "fixed ns/item", "ratio");
    type Case<'a> = (&'a str, Box<dyn Fn() -> f64 + 'a>, Box<dyn Fn() -> f64 + 'a>);
    let cases: Vec<Case> = vec![
        (
            "flood from outside (bound wq)",
            Box::new(|| cmwq_outside(&bound, items)),
            Box::new(|| fixed_outside(&pool, items)),
        ),
        (
            "flood from outside (unbound wq)",
            Box::new(|| cmwq_outside(&unbound, items)),
            Box::new(|| fixed_outside(&pool, items)),
        ),
        (
            "flood from inside (bound wq)",
            Box::new(|| cmwq_inside(&bound, items)),
            Box::new(|| fixed_inside(&pool, items)),
        ),
        (
            "flood from inside (unbound wq)",
            Box::new(|| cmwq_inside(&unbound, items)),
            Box::new(|| fixed_inside(&pool, items)),
        ),
    ];
    let only = std::env::var("CMWQ_BENCH_ONLY").unwrap_or_default();
    for (name, ours, theirs) in cases.iter().filter(|(name, _, _)| name.contains(only.as_str())) {
        // Warm up once, then interleave the two so drift hits both.
        ours();
        theirs();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            a.push(ours());
            b.push(theirs());
        }
        let (a, b) = (median(a), median(b));
        println!("{name:<34} {a:>12.1} {b:>12.1} {:>7.2}x", a / b);
    }
    drop(cases);
    drop((bound, unbound, system, pool));

    let patience = Duration::from_secs(2);
    let blockers = cpus + 2;
    println!();
    println!("seed scenario: {blockers} items block until a short item queued after them runs (patience {patience:?})");
    let ours = seed_on_cmwq(cpus, blockers, patience);
    let theirs = seed_on_fixed_pool(cpus, blockers, patience);
    for (name, outcome) in [("cmwq", ours), ("fixed pool", theirs)] {
        let wait = outcome.short_wait.map_or("never (stalled)".to_string(), |w| format!("{w:?}"));
        println!(
            "  {name:<11} completed {}/{} on their own, short item waited {wait}, threads {}",
            outcome.completed, outcome.queued, outcome.threads
        );
    }
}
