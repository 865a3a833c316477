//! The machine refines the spec: every quick configuration explored
//! exhaustively, and every seeded machine bug caught.

use cmwq::SeededBug;
use cmwq_proofs::refine::{Refinement, RefinementReport};
use cmwq_proofs::{configs, Config};
use std::time::Instant;

fn run(name: &str, config: Config, first_passes: bool) -> RefinementReport {
    let start = Instant::now();
    let spread = spreads(name);
    let report = Refinement { config, bugs: 0, first_passes, spread }.check();
    let took = start.elapsed().as_secs_f64();
    println!(
        "{name} (first passes {first_passes}): {} states, {took:.1} s, failure: {:?}",
        report.states, report.failure
    );
    report
}

/// The refinement configurations: the spec's quick ones.
pub fn refinement_configs() -> Vec<(&'static str, Config)> {
    vec![
        ("chain with rescuer", configs::chain(true)),
        ("waits", configs::waits()),
        // The unbound pool managed to a target of 2 (C6): two items run
        // at once, the third waits for one of them. Early in the list: it
        // is quick, and the seeded bugs stop at the first configuration
        // that catches them.
        ("unbound", configs::unbound()),
        // The blocking monitor (C10): a worker asleep, outside a blocking
        // section or in one, is read, then reported (PS9, PS10), perhaps
        // after it moved on. Quick, early: the monitor's seeded bugs are
        // caught here. On the unbound pool (target 2) too.
        ("detect", configs::detect()),
        ("detect, unbound", configs::detect_unbound()),
        // CPU hogs (C11): a worker whose item spins is read, then reported
        // (PS11), perhaps after it moved on to another item. The hog
        // rule's seeded bugs are caught here: NoWakeOnHog on one CPU,
        // StaleHog on the unbound pool (target 2), where the spinner can
        // finish while a report of it is still on its way.
        ("hog", configs::hog()),
        ("hog, unbound", configs::hog_unbound()),
        ("requeue", configs::requeue()),
        ("ordered", configs::ordered()),
        ("mixed", configs::mixed()),
        // A CPU goes down under a running blocker with an item waiting
        // behind it, comes back, the trustee retires (without the spec
        // configuration's flush: its pairs do not fit in memory).
        ("hotplug", Config { flushes: 0, ..configs::hotplug() }),
        // The monitor on 2 CPUs with CPU 0 going down and up: it counts
        // nobody out on the offline pool (after `hotplug`, which catches
        // OfflinePoolCountsRunning by PROGRESS; this one catches it too, by
        // REFINES: the offline worker still counts, and is detected).
        ("detect during hotplug", configs::detect_hotplug()),
        ("rescue chain", configs::rescue_chain(true)),
        ("rescue during hotplug", configs::rescue_hotplug()),
        ("ordered rescue", configs::ordered_rescue()),
        // `flush_workqueue`'s colours over 3 colours: two flushes hold
        // tickets and the third waits for one (the machine's `FlushWq`
        // is refused until the head is done), and the colours wrap around
        // (ticket 2 gives new instances colour 0 again).
        ("colors", configs::colors()),
        // Plain `queue` from outside the workers on 2 CPUs: the machine
        // spreads an item to the other CPU's pool when it is less loaded,
        // and still redirects a requeue to the pool where the item runs.
        (SPREAD, Config { cpus: 2, queues: 3, ..configs::requeue() }),
    ]
}

/// The configuration whose queueings are plain `queue`s from outside the
/// workers (the machine chooses the CPU: QU3 spreads).
const SPREAD: &str = "requeue, spread over 2 CPUs";

fn spreads(name: &str) -> bool {
    name == SPREAD
}

/// Larger budgets for `CMWQ_PROOFS_DEEP=1`.
fn deep() -> bool {
    std::env::var("CMWQ_PROOFS_DEEP").is_ok_and(|v| v == "1")
}

fn deep_configs() -> Vec<(&'static str, Config)> {
    if !deep() {
        return vec![];
    }
    vec![
        ("mixed, 3 queueings", Config { queues: 3, ..configs::mixed() }),
        ("requeue, 5 queueings, 2 cancels", Config { queues: 5, cancels: 2, ..configs::requeue() }),
        ("chain with rescuer on 2 CPUs", Config { cpus: 2, ..configs::chain(true) }),
        ("hotplug, 2 queueings, a flush", Config { queues: 2, ..configs::hotplug() }),
        ("detect, 3 queueings", Config { queues: 3, ..configs::detect() }),
        ("detect on 2 CPUs", Config { cpus: 2, ..configs::detect() }),
        ("hog, 3 queueings", Config { queues: 3, ..configs::hog() }),
        ("hog on 2 CPUs", Config { cpus: 2, ..configs::hog() }),
    ]
}

#[test]
fn the_machine_refines_the_spec() {
    // Retiring workers (the idle cull, TM3) only here: no seeded bug is in it.
    let retiring = ("requeue with retiring workers", Config { retire: true, ..configs::requeue() });
    for (name, config) in refinement_configs().into_iter().chain([retiring]).chain(deep_configs()) {
        // New workers' first passes (the first workers' too) multiply the
        // larger configurations' states (mixed: 88,272 to 3,749,760;
        // hotplug: 11,767 to 1,535,386; colors: 123,498 to 1,861,748;
        // detect, unbound: 5,662 to 418,542; detect during hotplug: 22,690
        // without them; hog, unbound: 67,820 with them, 6.6 s):
        // there only in the deep run, and
        // never on the deep run's own largest two.
        let largest = name.contains("3 queueings") || name.contains("5 queueings");
        let quick_only =
            ["requeue", "mixed", "hotplug", "colors", "detect, unbound", "detect during hotplug", "hog, unbound"]
                .iter()
                .any(|n| name.starts_with(n));
        let first_passes = !largest && (deep() || !quick_only);
        let report = run(name, config, first_passes);
        assert!(report.failure.is_none(), "{name}: {:#?}", report.failure);
    }
}

/// The seeded bugs whose logic lives in the machine's rules or steps and
/// shows in what the refinement compares (where items are, who runs what,
/// worker counts, lists, who waits, flush colours), in a machine that does less than the
/// spec owes (PROGRESS: TrusteeSkipsItem and OfflinePoolCountsRunning
/// leave an item waiting behind a worker of an offline CPU) or in liveness
/// under weak fairness (a machine that stops with work left, or that
/// cycles without doing it: NoMayday's timer fires forever and calls
/// nobody; RescuerLeavesWithoutWake on `ordered rescue`, where the
/// rescued item's completion activates the next ordered item and only the
/// rescuer's leaving kick wakes a worker for it). RebindLosesInactive
/// joined when rebinding became a machine step (HP3), SpreadSkipsRedirect
/// with plain queueing's choice (QU3, on `requeue, spread over 2 CPUs`),
/// SkipFlushColorDecrement when the executor ran
/// `flush_workqueue`'s steps FW1-FW6 (by LIVE; since the shape compares
/// flush colours, by REFINES: the head's mark stays after its colour
/// emptied). The blocking monitor's four joined when the executor took
/// monitor turns (a read, then a report: PS9, PS10), all on `detect`:
/// StaleDetection by REFINES (a report made before the worker left its
/// blocking section counts it out: the witness says a report of an
/// earlier run is no spec step, so the detection is no stutter),
/// FinishKeepsDetection by REFINES (the worker starts its next item still
/// counted out), DetectWhileBlocked by REFINES (the spec detects no worker
/// inside a blocking section), NoWakeOnDetect by LIVE (the sleeper is
/// counted out, nobody is woken for the item it waits for, and the
/// machine stops). The hog rule's two joined when the executor took hog
/// turns (a read of a spinning worker's run, then a report: PS11):
/// NoWakeOnHog on `hog` by LIVE (the spinner is marked CPU-intensive,
/// nobody is woken for the item it waits for, and the machine stops),
/// StaleHog on `hog, unbound` by REFINES (a report made while the spinner
/// ran item 0 marks it in its next item: a report of an earlier run is no
/// spec step, so the mark is no stutter). The rest break the rescuer's stop (the spec has no rescuer
/// exit: RescuerExitsBeforeDraining), a wait of the driver's
/// (CpuDownWaitsForDrain: `cpu_down` is one step in the machine, the wait
/// is the engine's thread) and delayed work (not in the spec:
/// DelayedAcceptedUncounted); `models/` and `tests/` catch those.
///
/// Each with the configuration that last caught it (from a run of the
/// whole search, `CMWQ_REFINE_SEARCH=1`): tried first, so the default run
/// checks one configuration per bug; if that no longer catches it, the
/// search goes on through every configuration.
const CAUGHT_BY_REFINEMENT: [(SeededBug, &str); 26] = [
    (SeededBug::NoWakeOnSleep, "waits"),
    (SeededBug::SkipNonReentrancyLookup, "mixed"),
    (SeededBug::SkipCollisionCheck, "unbound"),
    (SeededBug::ClearPendingAfterRun, "unbound"),
    (SeededBug::SkipFlushColorDecrement, "chain with rescuer"),
    (SeededBug::LifoActivation, "requeue"),
    (SeededBug::CancelInactiveDecrementsActive, "requeue"),
    (SeededBug::NoSpareWorker, "chain with rescuer"),
    (SeededBug::DoubleCountRunning, "detect"),
    (SeededBug::CancelSyncSkipsWait, "requeue"),
    (SeededBug::FlushWorkIgnoresRunning, "chain with rescuer"),
    (SeededBug::KeepWorkingIgnoresRunners, "detect"),
    (SeededBug::NoMayday, "chain with rescuer"),
    (SeededBug::RescuerLeavesWithoutWake, "ordered rescue"),
    (SeededBug::DuplicateMayday, "chain with rescuer"),
    (SeededBug::TrusteeSkipsItem, "hotplug"),
    (SeededBug::RebindLosesInactive, "mixed"),
    (SeededBug::OfflinePoolCountsRunning, "hotplug"),
    (SeededBug::SpreadSkipsRedirect, "requeue, spread over 2 CPUs"),
    (SeededBug::UnboundTargetIgnored, "unbound"),
    (SeededBug::StaleDetection, "detect"),
    (SeededBug::FinishKeepsDetection, "detect"),
    (SeededBug::NoWakeOnDetect, "detect"),
    (SeededBug::DetectWhileBlocked, "detect"),
    (SeededBug::StaleHog, "hog, unbound"),
    (SeededBug::NoWakeOnHog, "hog"),
];

/// The seeded bugs that live in the engine's driver, not in the machine's
/// rules or steps (`models/README.md`): the refinement runs the machine
/// through the plain executor, which never reaches them, so they are not
/// run here (the models catch them).
const IN_THE_DRIVER: [SeededBug; 7] = [
    SeededBug::CpuDownWaitsForDrain,
    SeededBug::DelayedAcceptedUncounted,
    SeededBug::FastPathIgnoresLastPool,
    SeededBug::SectionSkipsSplice,
    SeededBug::InboxCloseSkipsSplice,
    SeededBug::DestroySkipsInboxSplice,
    SeededBug::CancelSkipsResplice,
];

/// Whether to search every configuration for every machine bug, the ones
/// not expected to be caught too (`CMWQ_REFINE_SEARCH=1`; the default run
/// checks `CAUGHT_BY_REFINEMENT`, each on its last catcher first).
fn search_all() -> bool {
    std::env::var("CMWQ_REFINE_SEARCH").is_ok_and(|v| v == "1")
}

#[test]
fn seeded_bugs_in_the_machine_fail_the_refinement() {
    let names: Vec<&str> = refinement_configs().into_iter().map(|(name, _)| name).collect();
    assert!(
        CAUGHT_BY_REFINEMENT.iter().all(|(bug, known)| names.contains(known) && !IN_THE_DRIVER.contains(bug)),
        "every bug the refinement catches has a known catcher among its configurations, and lives in the machine"
    );
    let caught = |bug: &SeededBug| CAUGHT_BY_REFINEMENT.iter().any(|(b, _)| b == bug);
    let mut missed = Vec::new();
    for bug in SeededBug::ALL {
        if IN_THE_DRIVER.contains(&bug) {
            println!("{bug:?}: lives in the driver, not run");
            continue;
        }
        if !search_all() && !caught(&bug) {
            println!("{bug:?}: not expected to be caught, not searched (CMWQ_REFINE_SEARCH=1 searches it)");
            continue;
        }
        let known = CAUGHT_BY_REFINEMENT.iter().find(|(b, _)| *b == bug).map(|&(_, name)| name);
        let mut configs = refinement_configs();
        // The known catcher first, then the others in their order.
        configs.sort_by_key(|(name, _)| Some(*name) != known);
        let caught = configs.into_iter().find_map(|(name, config)| {
            let spread = spreads(name);
            let report = Refinement { config, bugs: bug.bit(), first_passes: false, spread }.check();
            let lasso = report.lasso;
            report.failure.map(|(property, path, what)| (name, property, path.len(), what, lasso))
        });
        match caught {
            Some((name, property, len, what, lasso)) => {
                println!(
                    "{bug:?}: caught on {name} by \"{property}\" after {len} steps: {}",
                    &what[..what.len().min(300)]
                );
                if let Some(lasso) = lasso {
                    println!("{lasso}");
                }
            }
            None => {
                println!("{bug:?}: not caught");
                missed.push(bug);
            }
        }
    }
    println!("not caught here: {missed:?}");
    for (bug, _) in CAUGHT_BY_REFINEMENT {
        assert!(!missed.contains(&bug), "{bug:?} no longer fails the refinement");
    }
}
