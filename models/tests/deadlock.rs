//! R2 by the checkers' own verdict: the chain (`rescue::chain`) without
//! `mem_reclaim` deadlocks, and with it does not. Each case runs in a child
//! process of this test binary (a checker cannot carry on in-process after
//! a failing schedule); the parent checks the child's exit status and that
//! the failure is the checker's deadlock report, not some other panic.

use cmwq_models::budget::loom_preemption_bound;
use cmwq_models::loom_platform::Loom;
use cmwq_models::rescue::chain;
use cmwq_models::shuttle_platform::Shuttle;
use std::process::Command;

const CASE_VAR: &str = "CMWQ_DEADLOCK_CASE";

/// Child side: runs one case named by `CMWQ_DEADLOCK_CASE`
/// (`<loom|shuttle>:<rescuer|plain>`). Does nothing in a normal run.
#[test]
fn deadlock_case() {
    let Ok(case) = std::env::var(CASE_VAR) else { return };
    let (checker, kind) = case.split_once(':').expect("checker:kind");
    let mem_reclaim = kind == "rescuer";
    match checker {
        "loom" => {
            let mut builder = loom::model::Builder::new();
            builder.preemption_bound = loom_preemption_bound();
            builder.check(move || chain::<Loom>(0, mem_reclaim));
        }
        "shuttle" => shuttle::check_random(move || chain::<Shuttle>(0, mem_reclaim), 200),
        other => panic!("unknown checker {other}"),
    }
}

/// Runs a case in a child; returns whether it passed and its stderr.
fn run_case(case: &str) -> (bool, String) {
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "deadlock_case", "--test-threads=1", "--nocapture"])
        .env(CASE_VAR, case)
        .output()
        .expect("child test runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn assert_deadlocks(case: &str, report: &str) {
    let (passed, stderr) = run_case(case);
    assert!(!passed, "{case}: the chain without a rescuer completed");
    assert!(stderr.contains(report), "{case}: failed, but not with the checker's deadlock report:\n{stderr}");
}

fn assert_completes(case: &str) {
    let (passed, stderr) = run_case(case);
    assert!(passed, "{case}: the chain with a rescuer failed:\n{stderr}");
}

#[test]
fn chain_without_rescuer_deadlocks_under_loom() {
    if std::env::var(CASE_VAR).is_ok() {
        return;
    }
    assert_deadlocks("loom:plain", "deadlock; threads");
    assert_completes("loom:rescuer");
}

#[test]
fn chain_without_rescuer_deadlocks_under_shuttle() {
    if std::env::var(CASE_VAR).is_ok() {
        return;
    }
    assert_deadlocks("shuttle:plain", "deadlock! blocked tasks");
    assert_completes("shuttle:rescuer");
}
