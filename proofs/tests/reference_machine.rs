//! The reference model of what a user observes, run against the pure
//! machine (the real-system side is `tests/reference_model.rs`): proptest
//! generates operation sequences (queue on a CPU, cancel, run everything
//! that can run), applies them to the machine's turns (`cmwq::plain`, as
//! the refinement's executor takes them), and compares every return value and,
//! after each run, how many times each item ran, the order on the ordered
//! workqueue, and how many items of a workqueue ever ran at once on one
//! pool (`max_active`). Failures shrink and print the sequence.
//! `PROPTEST_CASES` sets the number of cases (default 256).

use cmwq::machine::queue::Target;
use cmwq_proofs::refine::machine::{Step, Sys};
use cmwq_proofs::{configs, Behaviour, Config};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use std::collections::BTreeMap;

/// A user operation.
#[derive(Clone, Copy, Debug)]
enum Op {
    Queue {
        item: usize,
        cpu: usize,
    },
    Cancel {
        item: usize,
    },
    /// Let the system run until nothing more can happen.
    Run,
}

/// What a user expects: pending items (in queueing order per workqueue),
/// runs per item.
#[derive(Default)]
struct Reference {
    pending: Vec<bool>,
    runs: Vec<usize>,
    /// Successful queueings per ordered workqueue, in order, minus cancels.
    order: BTreeMap<usize, Vec<usize>>,
}

fn config() -> Config {
    // Two CPUs, a bound workqueue (max_active 1) with a blocking item, an
    // ordered workqueue with three items (so that two can wait inactive);
    // budgets unbounded.
    let items = vec![(0, Behaviour::Blocks), (1, Behaviour::Plain), (1, Behaviour::Plain), (1, Behaviour::Blocks)];
    Config { queues: u8::MAX, cancels: u8::MAX, hotplug: false, items, ..configs::mixed() }
}

fn ops(c: &Config) -> impl Strategy<Value = Vec<Op>> {
    let (items, cpus) = (c.items.len(), c.cpus);
    let op = prop_oneof![
        4 => (0..items, 0..cpus).prop_map(|(item, cpu)| Op::Queue { item, cpu }),
        1 => (0..items).prop_map(|item| Op::Cancel { item }),
        2 => Just(Op::Run),
    ];
    proptest::collection::vec(op, 1..40)
}

/// Runs every step but the user's until none is productive; returns the
/// items finished, in order, and the most items of each workqueue that
/// ran at once on one pool.
fn run(c: &Config, m: &mut Sys, busiest: &mut BTreeMap<(usize, usize), usize>) -> Vec<usize> {
    let mut finished = Vec::new();
    for _ in 0..10_000 {
        let mut steps = Vec::new();
        m.steps(c, &mut steps);
        let user = |s: &Step| {
            use Step::*;
            matches!(
                s,
                Queue { .. }
                    | Cancel { .. }
                    | CancelSync { .. }
                    | FlushWork { .. }
                    | FlushWq { .. }
                    | Destroy { .. }
                    | CpuDown
                    | CpuUp
            )
        };
        let Some(step) = steps.into_iter().find(|s| !user(s) && m.productive(c, *s)) else { return finished };
        if let Step::Finish { pool, id } = step {
            finished.push(m.plain.running()[&(pool, id)].item);
        }
        let _ = m.apply(c, step);
        for wq in 0..c.wqs.len() {
            for pool in 0..=c.cpus {
                let now = m.plain.running().iter().filter(|(&(p, _), e)| p == pool && e.wq == wq).count();
                let max = busiest.entry((wq, pool)).or_default();
                *max = (*max).max(now);
            }
        }
    }
    panic!("the machine did not settle in 10,000 steps");
}

fn check(bugs: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let c = config();
    let mut m = Sys::new(&c, bugs);
    let mut r = Reference { pending: vec![false; c.items.len()], runs: vec![0; c.items.len()], ..Default::default() };
    let mut busiest = BTreeMap::new();
    let mut ran = vec![0; c.items.len()];
    let ordered = |i: usize| c.wqs[c.items[i].0].ordered;
    for &op in ops {
        match op {
            Op::Queue { item, cpu } => {
                let accepted = m.plain.queue(item, Target::On(cpu), false) == Ok(true);
                prop_assert_eq!(accepted, !r.pending[item], "{:?}: queue returned {}", op, accepted);
                if accepted {
                    r.pending[item] = true;
                    if ordered(item) {
                        r.order.entry(c.items[item].0).or_default().push(item);
                    }
                }
            }
            Op::Cancel { item } => {
                let was = m.plain.cancel(item) == Some(true);
                prop_assert_eq!(was, r.pending[item], "{:?}: cancel returned {}", op, was);
                if was {
                    r.pending[item] = false;
                    if let Some(order) = r.order.get_mut(&c.items[item].0) {
                        if let Some(pos) = order.iter().rposition(|&x| x == item) {
                            order.remove(pos);
                        }
                    }
                }
            }
            Op::Run => {
                let finished = run(&c, &mut m, &mut busiest);
                finished.iter().for_each(|&i| ran[i] += 1);
                for (i, pending) in r.pending.iter_mut().enumerate() {
                    r.runs[i] += usize::from(*pending);
                    *pending = false;
                }
                for (i, &runs) in r.runs.iter().enumerate() {
                    prop_assert_eq!(ran[i], runs, "item {} ran {} times, the model says {}", i, ran[i], runs);
                }
                for (&wq, expected) in &r.order {
                    let got: Vec<usize> = finished.iter().copied().filter(|&i| c.items[i].0 == wq).collect();
                    prop_assert_eq!(&got, expected, "ordered workqueue {} ran out of order", wq);
                }
                r.order.clear();
            }
        }
    }
    for (&(wq, pool), &most) in &busiest {
        let max = usize::from(c.max_active(wq));
        prop_assert!(most <= max, "workqueue {} ran {} items at once on pool {}", wq, most, pool);
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

#[test]
fn the_machine_does_what_the_reference_model_says() {
    let c = config();
    let mut runner =
        TestRunner::new(RunnerConfig { cases: cases(), failure_persistence: None, ..RunnerConfig::default() });
    if let Err(failure) = runner.run(&ops(&c), |ops| check(0, &ops)) {
        panic!("{failure}");
    }
}

/// The comparison can fail: the seeded bugs of the machine that change
/// what a user sees between quiet points are caught. (The others concern
/// requeueing while an item runs, which this sequential model never does
/// between `Run`s, or the rescuer and hotplug, not in this system.)
const CAUGHT: [cmwq::SeededBug; 3] = [
    cmwq::SeededBug::LifoActivation,
    cmwq::SeededBug::CancelInactiveDecrementsActive,
    cmwq::SeededBug::DoubleCountRunning,
];

#[test]
fn seeded_bugs_fail_the_reference_model_on_the_machine() {
    let c = config();
    let mut caught = Vec::new();
    for bug in cmwq::SeededBug::ALL {
        let mut runner =
            TestRunner::new(RunnerConfig { cases: 256, failure_persistence: None, ..RunnerConfig::default() });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runner.run(&ops(&c), |ops| check(bug.bit(), &ops)).is_err()
        }));
        // A machine assertion (a panic) counts as caught too.
        if outcome.unwrap_or(true) {
            caught.push(bug);
        }
    }
    println!("caught by the reference model on the machine: {caught:?}");
    for bug in CAUGHT {
        assert!(caught.contains(&bug), "{bug:?} was not caught");
    }
}
