//! Every seeded bug must make at least one model fail; a model that no bug
//! can break proves nothing. Each (bug, model) pair runs under shuttle (PCT
//! and random) in a child process of this test binary (shuttle cannot
//! carry on in-process after a failing schedule), and the test prints the
//! bug → catching models table.

use cmwq::SeededBug;
use cmwq_models::budget::{deep, PCT_DEPTH};
use cmwq_models::scenarios::MODELS;
use cmwq_models::shuttle_platform::Shuttle;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;

const CASE_VAR: &str = "CMWQ_SEEDED_CASE";

fn iterations() -> usize {
    if deep() {
        20_000
    } else {
        1_000
    }
}

/// Child side: runs one (bug, model) pair; panics if shuttle finds a
/// failing schedule. Does nothing in a normal test run.
#[test]
fn seeded_case() {
    let Ok(case) = std::env::var(CASE_VAR) else { return };
    let (bug, model) = case.split_once(':').expect("CASE is bug:model");
    let bug = SeededBug::ALL.into_iter().find(|b| format!("{b:?}") == bug).expect("known bug");
    let model = MODELS.iter().find(|m| m.name == model).expect("known model");
    let (body, bits, n) = (model.shuttle, bug.bit(), iterations());
    shuttle::check_pct(move || body(Shuttle::default(), bits), n, PCT_DEPTH);
    shuttle::check_random(move || body(Shuttle::default(), bits), n);
}

/// Whether the model fails with the bug switched on (run in a child).
fn catches(bug: SeededBug, model: &str) -> bool {
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "seeded_case", "--test-threads=1"])
        .env(CASE_VAR, format!("{bug:?}:{model}"))
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
    let cases: Vec<(SeededBug, &str)> =
        SeededBug::ALL.into_iter().flat_map(|bug| MODELS.iter().map(move |m| (bug, m.name))).collect();
    let results = Mutex::new(Vec::new());
    let next = Mutex::new(cases.into_iter());
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((bug, model)) = next.lock().unwrap().next() else { return };
                let caught = catches(bug, model);
                results.lock().unwrap().push((bug, model, caught));
            });
        }
    });
    let results = results.into_inner().unwrap();
    println!("\n{:<32} caught by", "seeded bug");
    let mut missed = Vec::new();
    for bug in SeededBug::ALL {
        let mut by: Vec<&str> = results.iter().filter(|(b, _, c)| *b == bug && *c).map(|(_, m, _)| *m).collect();
        by.sort_by_key(|m| MODELS.iter().position(|x| x.name == *m));
        if by.is_empty() {
            missed.push(bug);
        }
        let list = if by.is_empty() { "NOTHING".to_string() } else { by.join(", ") };
        println!("{:<32} {list}", format!("{bug:?}"));
    }
    assert!(missed.is_empty(), "seeded bugs no model catches: {missed:?}");
}
