//! The specification, checked: every quick configuration exhaustively
//! (all properties hold), the rescuer chain without a rescuer (LIVE and S0
//! fail, with the path printed), a livelock only a fair cycle shows (the
//! lasso printed and replayed), a blocked creation rescued only under the
//! kernel's mayday rule, an unannotated wait that only the blocking
//! monitor unblocks, a busy wait that only the CPU hog rule lets
//! complete, and every deliberate mistake in the spec caught by
//! the property it breaks. `CMWQ_PROOFS_DEEP=1` adds larger
//! configurations.

use cmwq_proofs::fair::replay;
use cmwq_proofs::spec::Worker;
use cmwq_proofs::{configs, Action, Config, Mistake, Report, LIVE, PROPERTIES};
use std::time::Instant;

fn run(name: &str, config: Config) -> Report {
    let start = Instant::now();
    let report = config.check().expect("within the state limit");
    println!(
        "{name}: {} states, {} transitions, depth {}, cyclic components {}, with work pending {} (unfair {}), {:.1} s, failed: {:?}",
        report.states,
        report.transitions,
        report.depth,
        report.cycles,
        report.pending_cycles.0,
        report.pending_cycles.1,
        start.elapsed().as_secs_f64(),
        report.failures.keys().collect::<Vec<_>>()
    );
    report
}

fn deep() -> bool {
    std::env::var("CMWQ_PROOFS_DEEP").is_ok_and(|v| v == "1")
}

#[test]
fn every_property_holds_on_the_quick_configurations() {
    let mut runs = vec![
        ("mixed", configs::mixed()),
        ("chain with rescuer", configs::chain(true)),
        ("requeue", configs::requeue()),
        ("ordered", configs::ordered()),
        ("waits", configs::waits()),
        ("colors", configs::colors()),
        ("hotplug", configs::hotplug()),
        ("rescue chain", configs::rescue_chain(true)),
        ("rescue during hotplug", configs::rescue_hotplug()),
        ("ordered rescue", configs::ordered_rescue()),
        ("rescue", configs::rescue()),
        ("unbound", configs::unbound()),
        ("detect", configs::detect()),
        ("detect, unbound", configs::detect_unbound()),
        ("detect during hotplug", configs::detect_hotplug()),
        ("hog", configs::hog()),
        ("hog, unbound", configs::hog_unbound()),
        // The monitor may see any running worker asleep: detections among
        // CPU 0 going down and up and workers retiring.
        ("hotplug with the monitor", Config { detect: true, ..configs::hotplug() }),
        (
            "chain with rescuer, the kernel's mayday rule",
            Config { mayday_at_creation_start: true, ..configs::chain(true) },
        ),
        ("blocked creation, the kernel's mayday rule", configs::blocked_creation(true)),
    ];
    if deep() {
        runs.extend(configs::deep());
    }
    for (name, config) in runs {
        let report = run(name, config);
        assert!(report.failures.is_empty(), "{name}: {:#?}", report.failures);
    }
}

/// R1 and R2 per workqueue: a rescuer serves only its own. Two `mem_reclaim`
/// workqueues waiting on each other complete with a rescuer each; without
/// workqueue 0's, an item of workqueue 1 waits for one of workqueue 0's
/// that nobody can run.
#[test]
fn workqueues_waiting_on_each_other_need_a_rescuer_each() {
    let report = run("rescue chain, workqueue 0 without a rescuer", configs::rescue_chain(false));
    let path = report.failures.get(PROPERTIES[0]).expect("S0 must fail without workqueue 0's rescuer");
    println!("path to the stuck state: {path:?}");
    assert!(report.failures.contains_key(LIVE));
}

/// R2 / the negative liveness case: without `mem_reclaim`, the chain "A
/// waits for B queued behind it, no worker can be created" never finishes;
/// the checker shows how: a deadlock (S0), LIVE's lasso with an empty cycle.
#[test]
fn the_chain_without_a_rescuer_is_stuck() {
    let report = run("chain without rescuer", configs::chain(false));
    let path = report.failures.get(PROPERTIES[0]).expect("S0 must fail without a rescuer");
    println!("path to the stuck state: {path:?}");
    let lasso = report.lasso.as_ref().expect("LIVE must fail without a rescuer");
    println!("LIVE's counterexample:\n{lasso}");
    assert!(lasso.cycle.is_empty(), "the spec stops there");
    assert_eq!(&lasso.prefix, path, "both are the shortest path to the stuck state");
    let only: Vec<_> = report.failures.keys().copied().collect();
    assert_eq!(only, [LIVE, PROPERTIES[0]], "only liveness fails");
}

/// Issue 23 item 5: when the mayday timer is armed. A creation that never
/// returns (`creation_may_hang`) still gets the rescuers under the
/// kernel's rule (armed when creation starts, `maybe_create_worker`): every
/// property holds. Under the engine's rule (armed only after a creation
/// failed) nothing calls them: the items wait forever while the manager
/// creates (S0 and LIVE fail; the lasso stops after the manager starts).
/// A dependency within one workqueue is stuck under either rule: its
/// rescuer runs the waiting item and nobody the one it waits for.
#[test]
fn a_blocked_creation_gets_the_rescuer_only_under_the_kernels_rule() {
    let kernel = run("blocked creation, the kernel's mayday rule", configs::blocked_creation(true));
    assert!(kernel.failures.is_empty(), "{:#?}", kernel.failures);

    let engine = run("blocked creation, the engine's mayday rule", configs::blocked_creation(false));
    let lasso = engine.lasso.as_ref().expect("LIVE must fail under the engine's rule");
    println!("LIVE's counterexample under the engine's rule:\n{lasso}");
    let only: Vec<_> = engine.failures.keys().copied().collect();
    assert_eq!(only, [LIVE, PROPERTIES[0]], "only liveness fails");
    assert!(lasso.cycle.is_empty(), "the spec stops there: only the manager's creation could act");
    let state = replay(&configs::blocked_creation(false), lasso.init, &lasso.prefix).expect("the prefix replays");
    assert!(state.pools[0].workers.contains(&Worker::Managing), "the manager creates throughout");
    assert!(state.maydays.iter().all(Vec::is_empty), "nobody called the rescuers");

    let one_wq = Config { mayday_at_creation_start: true, creation_may_hang: true, ..configs::chain(true) };
    let report = run("chain on one workqueue, creation hangs, the kernel's rule", one_wq);
    let lasso = report.lasso.as_ref().expect("a dependency within one workqueue is stuck");
    println!("LIVE's counterexample on one workqueue:\n{lasso}");
    assert!(lasso.prefix.contains(&Action::RescueBlock { wq: 0 }), "its rescuer blocks in item 0");
}

/// C10: an item that waits without a blocking section for an item queued
/// behind it holds its worker, which keeps counting as running: without
/// the blocking monitor the pool is stuck (S0, LIVE's lasso with an empty
/// cycle); with it, the monitor counts the sleeper out and another worker
/// runs the item (every property holds, `every_property_holds_...`). A
/// monitor that counts the sleeper in again while it sleeps livelocks.
#[test]
fn an_unannotated_wait_completes_only_with_the_monitor() {
    let report = run("detect, without the monitor", Config { detect: false, ..configs::detect() });
    let path = report.failures.get(PROPERTIES[0]).expect("S0 must fail without the monitor");
    println!("path to the stuck state: {path:?}");
    assert!(path.contains(&Action::Sleep { pool: 0, worker: 0 }), "its worker went to sleep");
    let only: Vec<_> = report.failures.keys().copied().collect();
    assert_eq!(only, [LIVE, PROPERTIES[0]], "only liveness fails");

    // A monitor that sees the sleeper run while it still sleeps counts it
    // in and out forever: no state is stuck, only a fair cycle shows it.
    let config = Config { mistake: Some(Mistake::UndetectWhileAsleep), ..configs::detect() };
    let report = run("UndetectWhileAsleep on detect", config);
    let lasso = report.lasso.as_ref().expect("LIVE must fail");
    println!("LIVE's counterexample:\n{lasso}");
    let only: Vec<_> = report.failures.keys().copied().collect();
    assert_eq!(only, [LIVE], "only LIVE fails: no safety property, no deadlock");
    assert!(lasso.cycle.contains(&Action::Detect { pool: 0, worker: 0 }), "the cycle counts the sleeper out");
    assert!(lasso.cycle.contains(&Action::Undetect { pool: 0, worker: 0 }), "and in again");
}

/// C11: an item that spins on the CPU waiting for an item queued behind it
/// holds its worker, which keeps counting as running and never sleeps:
/// without the hog rule the pool is stuck (S0: the spec has no spinning
/// step, so the engine's livelock is a stuck state here; LIVE's lasso with
/// an empty cycle); with it, the monitor marks the spinner CPU-intensive
/// and another worker runs the item (every property holds,
/// `every_property_holds_...`). A mark that counts the spinner out but
/// wakes nobody (it keeps counting) leaves the pool stuck the same way.
#[test]
fn a_busy_wait_completes_only_with_the_hog_rule() {
    let report = run("hog, without the hog rule", Config { hog: false, ..configs::hog() });
    let path = report.failures.get(PROPERTIES[0]).expect("S0 must fail without the hog rule");
    println!("path to the stuck state: {path:?}");
    assert!(path.contains(&Action::Spin { pool: 0, worker: 0 }), "its worker began to spin");
    let only: Vec<_> = report.failures.keys().copied().collect();
    assert_eq!(only, [LIVE, PROPERTIES[0]], "only liveness fails");

    let config = Config { mistake: Some(Mistake::HogCountsAsRunning), ..configs::hog() };
    let report = run("HogCountsAsRunning on hog", config);
    let path = report.failures.get(PROPERTIES[0]).expect("S0 must fail");
    println!("path to the stuck state: {path:?}");
    assert!(path.contains(&Action::Hog { pool: 0, worker: 0 }), "the spinner was marked, and nobody replaced it");
}

/// A livelock: the rescuer attaches to the wrong pool each time it comes,
/// finds nothing of its own there and leaves, the mayday re-arms, and item
/// 1 is never rescued. Someone can always act, so no state is stuck (S0
/// holds), no step breaks a safety property and no path ends: only the
/// fair-cycle search shows it, as a lasso whose cycle returns to where its
/// prefix ends.
#[test]
fn a_livelock_is_caught_as_a_fair_cycle() {
    let config = Config { mistake: Some(Mistake::RescuerAttachWrongPool), ..configs::chain(true) };
    let report = run("RescuerAttachWrongPool on chain", config.clone());
    let lasso = report.lasso.as_ref().expect("LIVE must fail");
    println!("LIVE's counterexample:\n{lasso}");
    let only: Vec<_> = report.failures.keys().copied().collect();
    assert_eq!(only, [LIVE], "only LIVE fails: no safety property, no deadlock");
    assert!(!lasso.cycle.is_empty(), "a livelock is a cycle");
    let entry = replay(&config, lasso.init, &lasso.prefix).expect("the prefix replays");
    let path: Vec<_> = lasso.prefix.iter().chain(&lasso.cycle).copied().collect();
    let back = replay(&config, lasso.init, &path).expect("the cycle replays");
    assert_eq!(back, entry, "the cycle returns to its first state");
    assert!(entry.items[1].pending != cmwq_proofs::spec::Pending::No, "item 1 waits throughout");
}

/// Each mistake, on the configuration that exercises it, and the property
/// that must catch it.
const MATRIX: [(Mistake, &str, usize); 46] = [
    (Mistake::QueuePendingAdds, "mixed", 2),
    (Mistake::CancelCountsRunning, "mixed", 1),
    (Mistake::SkipNonReentrancy, "mixed", 3),
    (Mistake::EarlyReturn, "chain", 4),
    (Mistake::CancelSyncNoWait, "mixed", 4),
    (Mistake::CancelInactiveFreesSlot, "ordered", 5),
    (Mistake::LifoActivation, "ordered", 6),
    (Mistake::IgnoreConcurrency, "requeue", 7),
    (Mistake::BlockedCountsAsRunning, "chain", 9),
    (Mistake::DuplicateMayday, "chain", 8),
    (Mistake::RescuerSkipsPool, "chain", 9),
    (Mistake::LatePendingClear, "requeue", 10),
    (Mistake::DestroyNoDrain, "chain", 4),
    (Mistake::AcceptAfterDestroy, "chain", 11),
    (Mistake::FlushWqSkipsRunning, "mixed", 4),
    (Mistake::FlushColorWraps, "colors", 12),
    (Mistake::FlushSkipsDecrement, "colors", 9),
    (Mistake::FlushNoFlip, "colors", 12),
    (Mistake::FlushOwnColorOnly, "colors", 4),
    (Mistake::RescuerLeavesAtOnce, "chain", 17),
    (Mistake::OfflineStaysManaged, "hotplug", 7),
    (Mistake::DeferDrops, "requeue", 2),
    (Mistake::StartScheduledUnclaimed, "requeue", 3),
    (Mistake::UnblockNotCounted, "requeue", 7),
    (Mistake::TwoManagers, "unbound", 14),
    (Mistake::CreateLosesWorker, "waits", 9),
    (Mistake::CreateFailsNotStarving, "chain", 9),
    (Mistake::RetireLastIdle, "hotplug", 0),
    (Mistake::RescuerAttachWrongPool, "chain", 9),
    (Mistake::RescueLeavesOnWorklist, "chain", 2),
    (Mistake::RescueDeferToSelf, "rescue", 3),
    (Mistake::RescueScheduledUnclaimed, "rescue", 3),
    (Mistake::RescueBlockAbandons, "rescue", 9),
    (Mistake::RescueDoneKeepsSlot, "rescue", 5),
    (Mistake::CpuUpLeavesUnmanaged, "hotplug", 7),
    (Mistake::FlushWorkWaitsForRunning, "requeue", 4),
    (Mistake::FlushTicketJoinsLast, "colors", 4),
    (Mistake::DestroyForgetsDying, "chain", 11),
    (Mistake::UnboundTargetOne, "unbound", 13),
    (Mistake::UnboundUnmanaged, "unbound", 13),
    (Mistake::CancelSyncLetsQueue, "requeue", 15),
    (Mistake::QueueWakesIdle, "requeue", 16),
    (Mistake::DetectedCountsAsRunning, "detect", 0),
    (Mistake::DetectWhileBlocked, "detect", 18),
    (Mistake::UndetectWhileAsleep, "detect", 9),
    (Mistake::HogCountsAsRunning, "hog", 0),
];

#[test]
fn every_mistake_is_caught_and_every_property_catches_one() {
    let mut caught_by = vec![Vec::new(); PROPERTIES.len()];
    for (mistake, on, expected) in MATRIX {
        let config = match on {
            "mixed" => configs::mixed(),
            "chain" => configs::chain(true),
            "ordered" => configs::ordered(),
            "colors" => configs::colors(),
            "hotplug" => configs::hotplug(),
            "waits" => configs::waits(),
            "rescue" => configs::rescue(),
            "unbound" => configs::unbound(),
            "detect" => configs::detect(),
            "hog" => configs::hog(),
            _ => configs::requeue(),
        };
        let report = run(&format!("{mistake:?} on {on}"), Config { mistake: Some(mistake), ..config });
        assert!(
            report.failures.contains_key(PROPERTIES[expected]),
            "{mistake:?} was not caught by {:?}: {:?}",
            PROPERTIES[expected],
            report.failures.keys()
        );
        for (n, name) in PROPERTIES.iter().enumerate() {
            if report.failures.contains_key(name) {
                caught_by[n].push(format!("{mistake:?}"));
            }
        }
    }
    println!("\nproperty → mistakes that break it");
    for (n, name) in PROPERTIES.iter().enumerate() {
        println!("  {name}: {}", caught_by[n].join(", "));
        assert!(!caught_by[n].is_empty(), "no mistake breaks {name}: it proves nothing");
    }
}
