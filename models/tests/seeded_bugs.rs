//! Every seeded bug must make at least one model fail; a model that no bug
//! can break proves nothing. Each (bug, model) case runs under shuttle (PCT
//! and random) or loom in a child process of this test binary (shuttle
//! cannot carry on in-process after a failing schedule).
//!
//! The default run looks, for each bug, for one model that catches it
//! under shuttle (the model that caught it in the last full matrix first,
//! `KNOWN_CATCHER`, then every other model in turn) and runs that model
//! under loom too; it prints bug → catching model. The full matrix, every
//! (bug, model, checker) case and the bug → every catching model table of
//! `models/README.md`, runs with `CMWQ_SEEDED_MATRIX=full` (3,392 cases,
//! about 11 minutes on 2 cores).

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

/// Whether to run the full matrix (`CMWQ_SEEDED_MATRIX=full`).
fn full_matrix() -> bool {
    std::env::var("CMWQ_SEEDED_MATRIX").is_ok_and(|v| v == "full")
}

/// For each bug, a model that caught it in the last full matrix, under
/// both checkers where one does (`models/README.md`; DetectWhileBlocked,
/// CancelSkipsResplice: shuttle only): the default run tries it first. A
/// stale entry only costs time (the run then tries every model) and is
/// reported.
const KNOWN_CATCHER: [(SeededBug, &str); 34] = [
    (SeededBug::NoWakeOnSleep, "work_conserving"),
    (SeededBug::SkipNonReentrancyLookup, "non_reentrant_cross_cpu"),
    (SeededBug::SkipCollisionCheck, "non_reentrant_same_pool"),
    (SeededBug::ClearPendingAfterRun, "requeue_during_execution"),
    (SeededBug::SkipFlushColorDecrement, "exactly_once"),
    (SeededBug::LifoActivation, "max_active_fifo"),
    (SeededBug::CancelInactiveDecrementsActive, "cancel_inactive"),
    (SeededBug::NoSpareWorker, "work_conserving"),
    (SeededBug::DoubleCountRunning, "non_reentrant_same_pool"),
    (SeededBug::CancelSyncSkipsWait, "cancel_sync_self_requeue"),
    (SeededBug::FlushWorkIgnoresRunning, "flush_work_running"),
    (SeededBug::KeepWorkingIgnoresRunners, "keep_working_single_runner"),
    (SeededBug::NoMayday, "rescuer_chain"),
    (SeededBug::RescuerLeavesWithoutWake, "rescuer_wakes_worker"),
    (SeededBug::DuplicateMayday, "mayday_no_duplicate"),
    (SeededBug::RescuerExitsBeforeDraining, "destroy_racing_mayday"),
    (SeededBug::TrusteeSkipsItem, "offline_pool_runs_waiting_items"),
    (SeededBug::RebindLosesInactive, "rebind_keeps_inactive"),
    (SeededBug::OfflinePoolCountsRunning, "offline_pool_runs_waiting_items"),
    (SeededBug::CpuDownWaitsForDrain, "offline_pool_runs_waiting_items"),
    (SeededBug::DelayedAcceptedUncounted, "destroy_racing_queue_delayed"),
    (SeededBug::SpreadSkipsRedirect, "queue_spreads_past_busy_cpu"),
    (SeededBug::FastPathIgnoresLastPool, "non_reentrant_cross_cpu"),
    (SeededBug::UnboundTargetIgnored, "unbound_target_runs_two_at_once"),
    (SeededBug::SectionSkipsSplice, "inbox_items_cancelled_and_flushed"),
    (SeededBug::InboxCloseSkipsSplice, "inbox_left_as_the_worker_goes_idle"),
    (SeededBug::DestroySkipsInboxSplice, "destroy_racing_inbox_leave"),
    (SeededBug::CancelSkipsResplice, "cancel_racing_inbox_requeue"),
    (SeededBug::StaleDetection, "detection_races_finish"),
    (SeededBug::FinishKeepsDetection, "detection_races_finish"),
    (SeededBug::NoWakeOnDetect, "unannotated_wait_detected"),
    (SeededBug::DetectWhileBlocked, "detection_of_a_blocking_section"),
    (SeededBug::StaleHog, "hog_report_races_finish"),
    (SeededBug::NoWakeOnHog, "hog_lets_the_item_behind_it_run"),
];

/// What the default run found for one bug.
struct Found {
    bug: SeededBug,
    /// The first model that caught it under shuttle.
    shuttle: Option<&'static str>,
    /// Whether loom caught it with that model (or, where shuttle caught
    /// nothing, the first model loom caught it with).
    loom: Option<&'static str>,
    /// The known catcher, where it did not catch the bug under shuttle.
    stale: Option<&'static str>,
}

/// The default run's search for one bug.
fn find(bug: SeededBug) -> Found {
    let known = KNOWN_CATCHER.iter().find(|(b, _)| *b == bug).map(|(_, m)| *m);
    let order: Vec<&'static str> =
        known.into_iter().chain(MODELS.iter().map(|m| m.name).filter(|m| Some(*m) != known)).collect();
    let shuttle = order.iter().copied().find(|m| catches(Checker::Shuttle, bug, m));
    let stale = known.filter(|k| shuttle != Some(*k));
    let loom = match shuttle {
        Some(model) => catches(Checker::Loom, bug, model).then_some(model),
        None => order.iter().copied().find(|m| catches(Checker::Loom, bug, m)),
    };
    Found { bug, shuttle, loom, stale }
}

#[test]
fn every_seeded_bug_is_caught_by_a_model() {
    if std::env::var(CASE_VAR).is_ok() {
        return;
    }
    if full_matrix() {
        return every_case();
    }
    assert!(
        SeededBug::ALL.iter().all(|bug| KNOWN_CATCHER.iter().any(|(b, _)| b == bug)),
        "a seeded bug without a known catcher: add it to KNOWN_CATCHER"
    );
    let next = Mutex::new(SeededBug::ALL.into_iter());
    let found = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(bug) = next.lock().unwrap().next() else { return };
                let result = find(bug);
                found.lock().unwrap().push(result);
            });
        }
    });
    let mut found = found.into_inner().unwrap();
    found.sort_by_key(|f| f.bug as u32);
    println!("\n| seeded bug | first shuttle model to catch it | caught by loom there |\n|---|---|---|");
    for f in &found {
        let show = |m: Option<&str>| m.unwrap_or("—").to_string();
        println!("| {:?} | {} | {} |", f.bug, show(f.shuttle), show(f.loom));
        if let Some(stale) = f.stale {
            println!("  (KNOWN_CATCHER is stale: {stale} no longer catches {:?} under shuttle)", f.bug);
        }
    }
    let missed: Vec<SeededBug> =
        found.iter().filter(|f| f.shuttle.is_none() && f.loom.is_none()).map(|f| f.bug).collect();
    assert!(missed.is_empty(), "seeded bugs no model catches: {missed:?}");
}

/// The full matrix (`CMWQ_SEEDED_MATRIX=full`): every case, and the table.
fn every_case() {
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
