//! The specification, checked: every quick configuration exhaustively
//! (all properties hold), the rescuer chain without a rescuer (L1 fails,
//! with the path printed), and every deliberate mistake in the spec caught
//! by the property it breaks. `CMWQ_PROOFS_DEEP=1` adds larger
//! configurations.

use cmwq_proofs::{configs, Config, Mistake, Report, PROPERTIES};
use std::time::Instant;

fn run(name: &str, config: Config) -> Report {
    let start = Instant::now();
    let report = config.check().expect("within the state limit");
    println!(
        "{name}: {} states, {} transitions, depth {}, {:.1} s, failed: {:?}",
        report.states,
        report.transitions,
        report.depth,
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
    ];
    if deep() {
        runs.extend(configs::deep());
    }
    for (name, config) in runs {
        let report = run(name, config);
        assert!(report.failures.is_empty(), "{name}: {:#?}", report.failures);
    }
}

/// R2 / the negative liveness case: without `mem_reclaim`, the chain "A
/// waits for B queued behind it, no worker can be created" never finishes;
/// the checker shows how.
#[test]
fn the_chain_without_a_rescuer_is_stuck() {
    let report = run("chain without rescuer", configs::chain(false));
    let path = report.failures.get(PROPERTIES[9]).expect("L1 must fail without a rescuer");
    println!("path to the stuck state: {path:?}");
    assert_eq!(report.failures.len(), 1, "only liveness fails: {:?}", report.failures.keys());
}

/// Each mistake, on the configuration that exercises it, and the property
/// that must catch it.
const MATRIX: [(Mistake, &str, usize); 19] = [
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
