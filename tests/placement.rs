//! Where a plain `queue` goes on real threads (guarantee C9): from a thread
//! that is not one of the system's workers it spreads to a less loaded
//! CPU's pool, so one submitter uses every CPU; from a worker it stays on
//! the worker's CPU, as the kernel's `queue_work` does; `queue_on` goes
//! where it is told.

use cmwq::Work;
use cmwq_tests::{system, wq};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Patience for something that happens at once when the guarantee holds,
/// and never when it does not.
const PATIENCE: Duration = Duration::from_secs(20);

/// The CPU in a worker's thread name (`kworker/<cpu>:<id>`).
fn worker_cpu() -> String {
    let name = thread::current().name().unwrap_or_default().to_string();
    let rest = name.strip_prefix("kworker/").unwrap_or_else(|| panic!("not a worker thread: {name}"));
    rest.split(':').next().unwrap_or_default().to_string()
}

/// Items that each count themselves running, then wait (without telling
/// the pool, as CPU-bound items would) until `n` of them run at once.
struct Rendezvous {
    running: Mutex<Vec<String>>,
    cv: Condvar,
    n: usize,
}

impl Rendezvous {
    fn arrive(&self) -> bool {
        let mut running = self.running.lock().unwrap();
        running.push(worker_cpu());
        self.cv.notify_all();
        let (running, timeout) = self.cv.wait_timeout_while(running, PATIENCE, |r| r.len() < self.n).unwrap();
        drop(running);
        !timeout.timed_out()
    }
}

#[test]
fn items_from_one_outside_thread_run_on_every_cpu() {
    let system = system(2);
    let wq = wq(&system, "spread");
    let meet = Arc::new(Rendezvous { running: Mutex::new(Vec::new()), cv: Condvar::new(), n: 2 });
    let met = Arc::new(Mutex::new(Vec::new()));
    let items: Vec<Work> = (0..2)
        .map(|_| {
            let (meet, met) = (meet.clone(), met.clone());
            Work::new(move || {
                let ok = meet.arrive();
                met.lock().unwrap().push(ok);
            })
        })
        .collect();
    for item in &items {
        assert!(wq.queue(item).unwrap());
    }
    wq.flush().unwrap();
    assert_eq!(*met.lock().unwrap(), vec![true, true], "the second item waited behind the first on one CPU");
    let mut cpus = meet.running.lock().unwrap().clone();
    cpus.sort();
    assert_eq!(cpus, vec!["0".to_string(), "1".to_string()], "both items ran on one CPU's pool");
}

#[test]
fn items_queued_by_a_worker_stay_on_its_cpu() {
    let system = system(2);
    let wq = wq(&system, "local");
    let child_cpus = Arc::new(Mutex::new(Vec::new()));
    let children: Vec<Work> = (0..4)
        .map(|_| {
            let cpus = child_cpus.clone();
            Work::new(move || cpus.lock().unwrap().push(worker_cpu()))
        })
        .collect();
    for cpu in 0..2 {
        let (q, mine) = (wq.clone(), children[cpu * 2..cpu * 2 + 2].to_vec());
        let parent = Work::new(move || {
            // This pool is busy (its worker runs this item) and the other
            // may be idle: the children still go here.
            for child in &mine {
                assert!(q.queue(child).unwrap());
            }
        });
        assert!(wq.queue_on(cpu, &parent).unwrap());
        parent.flush().unwrap();
        // Queued during the parent, so after any `flush` of the workqueue
        // that began before: waited for one by one.
        for child in &children[cpu * 2..cpu * 2 + 2] {
            child.flush().unwrap();
        }
        let cpus = std::mem::take(&mut *child_cpus.lock().unwrap());
        assert_eq!(cpus, vec![cpu.to_string(); 2], "a worker's queueing left its CPU");
    }
}
