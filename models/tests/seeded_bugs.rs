//! Every seeded bug must make at least one model fail; a model that no bug
//! can break proves nothing. Each (bug, model) pair runs under shuttle (PCT
//! and random) in a child process of this test binary (shuttle cannot
//! carry on in-process after a failing schedule), and the test prints the
//! bug → catching models table.

use cmwq::SeededBug;
use cmwq_models::budget::PCT_DEPTH;
use cmwq_models::scenarios::MODELS;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;

const CASE_VAR: &str = "CMWQ_SEEDED_CASE";

/// Shuttle schedules per scheduler and case. Deep mode does not raise it:
/// 456 cases would take hours; deep mode is for the models themselves.
fn iterations() -> usize {
    1_000
}

/// Loom preemption bound per case (fixed for the same reason).
const LOOM_BOUND: usize = 1;

/// The two checkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checker {
    Shuttle,
    Loom,
}

/// Child side: runs one (checker, bug, model) case; panics if the checker
/// finds a failing schedule. Does nothing in a normal test run.
#[test]
fn seeded_case() {
    let Ok(case) = std::env::var(CASE_VAR) else { return };
    let mut parts = case.split(':');
    let (checker, bug, model) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let bug = SeededBug::ALL.into_iter().find(|b| format!("{b:?}") == bug).expect("known bug");
    let model = MODELS.iter().find(|m| m.name == model).expect("known model");
    let bits = bug.bit();
    if checker == "Loom" {
        let body = model.loom;
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(LOOM_BOUND);
        builder.check(move || body(bits));
    } else {
        let (body, n) = (model.shuttle, iterations());
        shuttle::check_pct(move || body(bits), n, PCT_DEPTH);
        shuttle::check_random(move || body(bits), n);
    }
}

/// Whether the model fails with the bug switched on (run in a child).
fn catches(checker: Checker, bug: SeededBug, model: &str) -> bool {
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "seeded_case", "--test-threads=1"])
        .env(CASE_VAR, format!("{checker:?}:{bug:?}:{model}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("child test runs");
    !status.success()
}

#[test]
fn every_seeded_bug_is_caught_by_a_model() {
    if std::env::var(CASE_VAR).is_ok() {
        return;
    }
    let cases: Vec<(Checker, SeededBug, &str)> = [Checker::Shuttle, Checker::Loom]
        .into_iter()
        .flat_map(|c| SeededBug::ALL.into_iter().flat_map(move |bug| MODELS.iter().map(move |m| (c, bug, m.name))))
        .collect();
    let results = Mutex::new(Vec::new());
    let next = Mutex::new(cases.into_iter());
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((checker, bug, model)) = next.lock().unwrap().next() else { return };
                let caught = catches(checker, bug, model);
                results.lock().unwrap().push((checker, bug, model, caught));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let caught_by = |checker: Checker, bug: SeededBug| -> Vec<&str> {
        let mut by: Vec<&str> =
            results.iter().filter(|(c, b, _, hit)| *c == checker && *b == bug && *hit).map(|(_, _, m, _)| *m).collect();
        by.sort_by_key(|m| MODELS.iter().position(|x| x.name == *m));
        by
    };
    let mut missed = Vec::new();
    println!("\n| seeded bug | caught by shuttle models | caught by loom models |\n|---|---|---|");
    for bug in SeededBug::ALL {
        let (s, l) = (caught_by(Checker::Shuttle, bug), caught_by(Checker::Loom, bug));
        if s.is_empty() && l.is_empty() {
            missed.push(bug);
        }
        let show = |v: &Vec<&str>| if v.is_empty() { "—".to_string() } else { v.join(", ") };
        println!("| {bug:?} | {} | {} |", show(&s), show(&l));
    }
    assert!(missed.is_empty(), "seeded bugs no model catches: {missed:?}");
}
