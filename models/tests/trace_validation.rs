//! Trace validation catches seeded bugs: each seeded bug is switched on in
//! each traced model (`src/traced.rs`) under shuttle, in a child process,
//! and the failure is classified: the replay against the spec rejected an
//! event ("spec"), or the model failed otherwise (its own assertion, or a
//! deadlock: "model"). Prints the table; asserts the bugs the replay must
//! catch.

use cmwq::SeededBug;
use cmwq_models::budget::PCT_DEPTH;
use cmwq_models::scenarios::MODELS;
use std::process::Command;

const CASE_VAR: &str = "CMWQ_TRACE_CASE";
const TRACED: [&str; 5] =
    ["traced_pool", "traced_hotplug", "traced_rescue", "traced_activation", "traced_keep_working"];

/// Seeded bugs whose transitions the spec rejects in a traced model.
const CAUGHT_BY_REPLAY: [SeededBug; 6] = [
    SeededBug::SkipNonReentrancyLookup,
    SeededBug::SkipCollisionCheck,
    SeededBug::LifoActivation,
    SeededBug::NoSpareWorker,
    SeededBug::KeepWorkingIgnoresRunners,
    SeededBug::DuplicateMayday,
];

/// Child side: one (bug, model) case under shuttle.
#[test]
fn trace_case() {
    let Ok(case) = std::env::var(CASE_VAR) else { return };
    let (bug, model) = case.split_once(':').expect("bug:model");
    let bug = SeededBug::ALL.into_iter().find(|b| format!("{b:?}") == bug).expect("known bug");
    let body = MODELS.iter().find(|m| m.name == model).expect("known model").shuttle;
    let bits = bug.bit();
    shuttle::check_pct(move || body(bits), 300, PCT_DEPTH);
    shuttle::check_random(move || body(bits), 300);
}

/// How a (bug, model) case ended.
fn outcome(bug: SeededBug, model: &str) -> &'static str {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "trace_case", "--test-threads=1", "--nocapture"])
        .env(CASE_VAR, format!("{bug:?}:{model}"))
        .output()
        .expect("child runs");
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), text.contains("the engine left the spec")) {
        (true, _) => "passed",
        (false, true) => "spec",
        (false, false) => "model",
    }
}

#[test]
fn seeded_bugs_fail_trace_validation() {
    let mut by_replay = Vec::new();
    println!("\nbug → outcome per traced model ({})", TRACED.join(", "));
    for bug in SeededBug::ALL {
        let outcomes: Vec<&str> = TRACED.iter().map(|model| outcome(bug, model)).collect();
        println!("  {bug:?}: {}", outcomes.join(", "));
        if outcomes.contains(&"spec") {
            by_replay.push(bug);
        }
    }
    for bug in CAUGHT_BY_REPLAY {
        assert!(by_replay.contains(&bug), "{bug:?} is no longer caught by the replay");
    }
}
