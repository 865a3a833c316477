//! Trace validation under the model checkers: in every schedule explored,
//! the engine records its transitions (cmwq's `trace` feature) and the log
//! is replayed against the specification (`cmwq_proofs::replay`); a
//! transition the spec does not allow fails the schedule, naming it. Each
//! model also keeps its own end-to-end assertions.

use crate::scenarios::{model_builder, Flag};
use crate::{FaultPlan, ModelPlatform};
use cmwq::{blocking_on, Platform, System, Work, Workqueue};
use cmwq_proofs::replay::Replay;
use cmwq_proofs::{Behaviour, Config, WqSpec};
use std::sync::Arc;

/// The spec of a model system (see `Config::traced`).
fn spec(cpus: usize, max_workers: usize, wqs: Vec<WqSpec>, items: Vec<(usize, Behaviour)>, fails: bool) -> Config {
    Config::traced(cpus, max_workers, wqs, items, fails)
}

fn bound(max_active: u8, mem_reclaim: bool) -> WqSpec {
    WqSpec { unbound: false, ordered: false, mem_reclaim, max_active }
}

/// Replays the system's trace (the system is quiet: everything flushed).
fn replay<P: Platform>(system: &System<P>, config: Config, wqs: &[&Workqueue<P>], items: &[&Work<P>]) {
    let events = system.take_trace();
    let wqs: Vec<usize> = wqs.iter().map(|wq| wq.trace_id()).collect();
    let items: Vec<usize> = items.iter().map(|item| item.trace_id()).collect();
    match Replay::check(config, &wqs, &items, &events) {
        // Every item queued at least once: a queueing, a start and a finish each.
        Ok(n) => assert!(n >= 3 * items.len(), "a trace of {n} events is too short: {events:?}"),
        Err(why) => panic!("the engine left the spec: {why}\ntrace: {events:?}"),
    }
}

fn workqueue<P: Platform>(system: &System<P>, max_active: usize, mem_reclaim: bool) -> Workqueue<P> {
    crate::rescue::rescue_wq(system, "traced", mem_reclaim, max_active)
}

/// An item that enters one blocking section per run, signals `started`
/// there and waits for `go` (spec `Blocks`).
fn blocker<P: Platform>(started: &Arc<Flag<P>>, go: &Arc<Flag<P>>) -> Work<P> {
    let (started, go) = (started.clone(), go.clone());
    Work::new(move || {
        blocking_on::<P, _>(|| {
            started.set();
            go.wait();
        })
    })
}

fn plain<P: Platform>(done: &Arc<Flag<P>>) -> Work<P> {
    let done = done.clone();
    Work::new(move || done.set())
}

/// W4, Q3, C1 traced: A blocks on CPU 0 and is queued again from CPU 1
/// (non-reentrancy sends it to CPU 0, where a spare worker defers it to
/// A's worker); B queued behind waits inactive (`max_active` 2) and is
/// cancelled, C takes its place. (Sized for loom's thread limit.)
pub fn traced_pool<P: ModelPlatform>(bugs: u64) {
    let system = model_builder(2, 2, bugs).build_on(P::with_faults(FaultPlan::default())).expect("builds");
    let wq = workqueue(&system, 2, false);
    let (started, go, b_done, c_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let (a, b, c) = (blocker(&started, &go), plain(&b_done), plain(&c_done));
    let items = vec![(0, Behaviour::Blocks), (0, Behaviour::Plain), (0, Behaviour::Plain)];
    let config = spec(2, 2, vec![bound(2, false)], items, false);
    system.start_trace();
    wq.queue_on(0, &a).unwrap();
    started.wait();
    assert!(wq.queue_on(1, &a).unwrap(), "A runs and is not pending: queueing succeeds");
    wq.queue_on(0, &b).unwrap();
    let _ = b.cancel();
    wq.queue_on(0, &c).unwrap();
    go.set();
    wq.flush().unwrap();
    assert!(c_done.is_set());
    replay(&system, config, &[&wq], &[&a, &b, &c]);
}

/// H1, H2 traced: CPU 0 goes down while X holds its worker (unannotated)
/// and Y waits behind it; the rogue pool runs Y; CPU 0 comes back.
pub fn traced_hotplug<P: ModelPlatform>(bugs: u64) {
    let system = model_builder(2, 2, bugs).build_on(P::with_faults(FaultPlan::default())).expect("builds");
    let wq = workqueue(&system, 0, false);
    let (x_started, release_x, y_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let x = {
        let (started, release) = (x_started.clone(), release_x.clone());
        Work::<P>::new(move || {
            started.set();
            release.wait(); // unannotated: X's worker keeps counting while bound
        })
    };
    let y = plain(&y_done);
    let config = spec(2, 2, vec![bound(u8::MAX, false)], vec![(0, Behaviour::Plain), (0, Behaviour::Plain)], false);
    system.start_trace();
    wq.queue_on(0, &x).unwrap();
    x_started.wait();
    wq.queue_on(0, &y).unwrap();
    system.cpu_down(0).unwrap();
    y.flush().unwrap();
    release_x.set();
    wq.flush().unwrap();
    system.cpu_up(0).unwrap();
    assert!(y_done.is_set());
    replay(&system, config, &[&wq], &[&x, &y]);
}

/// R1 traced: the pool's only worker blocks in A, B waits behind it, no
/// worker can be created; the mayday timer calls the rescuer, which runs B.
pub fn traced_rescue<P: ModelPlatform>(bugs: u64) {
    // The pool's first worker and the rescuer start; nothing else can.
    let system = model_builder(1, 4, bugs).build_on(P::with_faults(FaultPlan::allow(2))).expect("builds");
    let wq = workqueue(&system, 0, true);
    let (started, go, b_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let (a, b) = (blocker(&started, &go), plain(&b_done));
    let max_active = u8::try_from(wq.max_active()).unwrap_or(u8::MAX);
    let config = spec(1, 4, vec![bound(max_active, true)], vec![(0, Behaviour::Blocks), (0, Behaviour::Plain)], true);
    system.start_trace();
    wq.queue(&a).unwrap();
    started.wait();
    wq.queue(&b).unwrap();
    // Twice: the second firing finds the pool listed (R6) unless the
    // rescuer took it meanwhile.
    system.run_due_timers();
    system.run_due_timers();
    b_done.wait();
    go.set();
    wq.flush().unwrap();
    replay(&system, config, &[&wq], &[&a, &b]);
}

/// Q3, Q4 traced: with `max_active` 1, B and C wait inactive behind A and
/// are activated oldest first.
pub fn traced_activation<P: ModelPlatform>(bugs: u64) {
    let system = model_builder(1, 2, bugs).build_on(P::with_faults(FaultPlan::default())).expect("builds");
    let wq = workqueue(&system, 1, false);
    let (started, go, b_done, c_done) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let (a, b, c) = (blocker(&started, &go), plain(&b_done), plain(&c_done));
    let items = vec![(0, Behaviour::Blocks), (0, Behaviour::Plain), (0, Behaviour::Plain)];
    let config = spec(1, 2, vec![bound(1, false)], items, false);
    system.start_trace();
    wq.queue(&a).unwrap();
    started.wait();
    wq.queue(&b).unwrap();
    wq.queue(&c).unwrap();
    go.set();
    wq.flush().unwrap();
    assert!(b_done.is_set() && c_done.is_set());
    replay(&system, config, &[&wq], &[&a, &b, &c]);
}

/// C1, C4 traced: A blocks, so B gets a worker of its own and holds it
/// (unannotated); C queued behind B waits for B's worker, also after A's
/// worker is back: one runner takes items (`keep_working`).
pub fn traced_keep_working<P: ModelPlatform>(bugs: u64) {
    let system = model_builder(1, 3, bugs).build_on(P::with_faults(FaultPlan::default())).expect("builds");
    let wq = workqueue(&system, 3, false);
    let (a_started, go_a, b_started, go_b) = (Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new(), Flag::<P>::new());
    let a = blocker(&a_started, &go_a);
    let b = {
        let (started, go) = (b_started.clone(), go_b.clone());
        Work::<P>::new(move || {
            started.set();
            go.wait(); // unannotated: B's worker keeps counting as running
        })
    };
    let c_done = Flag::<P>::new();
    let c = plain(&c_done);
    let items = vec![(0, Behaviour::Blocks), (0, Behaviour::Plain), (0, Behaviour::Plain)];
    let config = spec(1, 3, vec![bound(3, false)], items, false);
    system.start_trace();
    wq.queue(&a).unwrap();
    a_started.wait();
    wq.queue(&b).unwrap();
    b_started.wait();
    wq.queue(&c).unwrap();
    go_a.set();
    a.flush().unwrap();
    go_b.set();
    wq.flush().unwrap();
    assert!(c_done.is_set());
    replay(&system, config, &[&wq], &[&a, &b, &c]);
}
