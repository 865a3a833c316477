//! The peer cmwq is measured against: a fixed pool of threads over a
//! `crossbeam-channel`, the usual "N threads, one queue" design; plus the
//! seed scenario, shared by the benchmark and the demo.

use cmwq::{System, Work, Workqueue};
use crossbeam_channel::{unbounded, Sender};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed pool: `size` threads receiving boxed jobs from one channel.
pub struct FixedPool {
    sender: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl FixedPool {
    /// Starts `size` threads.
    pub fn new(size: usize) -> Self {
        let (sender, receiver) = unbounded::<Job>();
        let threads = (0..size)
            .map(|_| {
                let receiver = receiver.clone();
                thread::spawn(move || {
                    while let Ok(job) = receiver.recv() {
                        job();
                    }
                })
            })
            .collect();
        FixedPool { sender: Some(sender), threads }
    }

    /// A handle to submit jobs with.
    pub fn sender(&self) -> Sender<Job> {
        self.sender.clone().expect("pool is running")
    }

    /// Submits a job.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Box::new(job));
        }
    }
}

impl Drop for FixedPool {
    fn drop(&mut self) {
        self.sender = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Waits until `counter` reaches `target` (both sides of a benchmark use
/// the same wait, so it cancels out of the ratio).
pub fn spin_until(counter: &AtomicUsize, target: usize) {
    while counter.load(SeqCst) < target {
        thread::yield_now();
    }
}

/// ns per item: this thread queues `n` fresh no-op items on `wq` (plain
/// `queue`) and waits until all have run.
pub fn flood_from_outside(wq: &Workqueue, n: usize) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let d = done.clone();
        let item = Work::new(move || {
            d.fetch_add(1, SeqCst);
        });
        wq.queue(&item).expect("queue");
    }
    spin_until(&done, n);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// A gate that blocked items wait on.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// Opens it.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Waits until open, or `timeout`; returns whether it opened.
    pub fn wait_for(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut open = self.open.lock().unwrap();
        while !*open {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            open = self.cv.wait_timeout(open, deadline - now).unwrap().0;
        }
        true
    }
}

/// What happened in one run of the seed scenario.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// Items that completed on their own (before any outside rescue).
    pub completed: usize,
    /// Items queued.
    pub queued: usize,
    /// Time from queueing the short item until it ran, if it ran.
    pub short_wait: Option<Duration>,
    /// Threads the pool had at the end (workers of the CPU pool).
    pub threads: usize,
}

/// The seed scenario on cmwq: `blockers` items block (inside `blocking`)
/// until a short item queued after them has run, on a `cpus`-CPU system.
pub fn seed_on_cmwq(cpus: usize, blockers: usize, patience: Duration) -> SeedOutcome {
    seed_on_cmwq_blocking(cpus, blockers, patience, Blocking::Annotated)
}

/// How the seed scenario's blockers block, on cmwq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// Inside `cmwq::blocking`: the pool is told at once.
    Annotated,
    /// In a plain wait, with the blocking monitor on (the default): the
    /// pool notices within about a millisecond (Linux).
    Unannotated,
    /// In a plain wait, with the monitor switched off: the pool is never
    /// told, as a fixed pool is not.
    UnannotatedUndetected,
}

/// The seed scenario on cmwq, its blockers blocking as `how` says.
pub fn seed_on_cmwq_blocking(cpus: usize, blockers: usize, patience: Duration, how: Blocking) -> SeedOutcome {
    let mut builder = System::builder();
    builder.cpus(cpus);
    if how == Blocking::UnannotatedUndetected {
        builder.detect_blocking(None);
    }
    let system = builder.build().expect("system");
    let wq = Workqueue::builder("seed").build(&system).expect("workqueue");
    let gate = Arc::new(Gate::default());
    let done = Arc::new(AtomicUsize::new(0));
    let mut items = Vec::new();
    for _ in 0..blockers {
        let (g, d) = (gate.clone(), done.clone());
        let item = Work::new(move || {
            if how == Blocking::Annotated {
                cmwq::blocking(|| g.wait_for(Duration::from_secs(3600)));
            } else {
                g.wait_for(Duration::from_secs(3600));
            }
            d.fetch_add(1, SeqCst);
        });
        wq.queue_on(0, &item).expect("queue");
        items.push(item);
    }
    let queued_at = Instant::now();
    let ran_at = Arc::new(Mutex::new(None));
    let (g, d, r) = (gate.clone(), done.clone(), ran_at.clone());
    let short = Work::new(move || {
        *r.lock().unwrap() = Some(Instant::now());
        d.fetch_add(1, SeqCst);
        g.open();
    });
    wq.queue_on(0, &short).expect("queue");
    let opened = gate.wait_for(patience);
    let completed = if opened {
        wq.flush().expect("flush");
        done.load(SeqCst)
    } else {
        let stalled_at = done.load(SeqCst);
        gate.open(); // rescue, so the run ends
        wq.flush().expect("flush");
        stalled_at
    };
    let threads = system.pool_stats()[0].workers;
    let short_wait = if opened { ran_at.lock().unwrap().map(|t| t - queued_at) } else { None };
    SeedOutcome { completed, queued: blockers + 1, short_wait, threads }
}

/// The seed scenario on a fixed pool of `size` threads.
pub fn seed_on_fixed_pool(size: usize, blockers: usize, patience: Duration) -> SeedOutcome {
    let pool = FixedPool::new(size);
    let gate = Arc::new(Gate::default());
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..blockers {
        let (g, d) = (gate.clone(), done.clone());
        pool.execute(move || {
            g.wait_for(Duration::from_secs(3600));
            d.fetch_add(1, SeqCst);
        });
    }
    let queued_at = Instant::now();
    let ran_at = Arc::new(Mutex::new(None));
    let (g, d, r) = (gate.clone(), done.clone(), ran_at.clone());
    pool.execute(move || {
        *r.lock().unwrap() = Some(Instant::now());
        d.fetch_add(1, SeqCst);
        g.open();
    });
    let opened = gate.wait_for(patience);
    let completed = if opened {
        spin_until(&done, blockers + 1);
        blockers + 1
    } else {
        let stalled_at = done.load(SeqCst);
        gate.open(); // rescue, so the run ends
        spin_until(&done, blockers + 1);
        stalled_at
    };
    let short_wait = if opened { ran_at.lock().unwrap().map(|t| t - queued_at) } else { None };
    SeedOutcome { completed, queued: blockers + 1, short_wait, threads: size }
}
