//! Trace validation checks the step sequence: every event must be recorded
//! in a pool section whose step makes it (`StepId::records`), so a trace
//! whose events are right for the spec but come from the wrong section,
//! or from no marked section at all, is refused.

use cmwq::machine::trace::{Event, StepId};
use cmwq_proofs::replay::Replay;
use cmwq_proofs::{Behaviour, Config, WqSpec};

const WQ: usize = 7;
const ITEM: usize = 100;

/// One CPU, one worker at most (it needs no spare to start an item).
fn config() -> Config {
    let wq = WqSpec { unbound: false, ordered: false, mem_reclaim: false, max_active: 1 };
    Config::traced(1, 1, vec![wq], vec![(0, Behaviour::Plain)], false)
}

fn check(events: &[Event]) -> Result<usize, String> {
    Replay::check(config(), &[WQ], &[ITEM], events)
}

fn queued() -> Event {
    Event::Queued { item: ITEM, wq: WQ, pool: 0, active: true }
}

fn started() -> Event {
    Event::Started { pool: 0, worker: 0, item: ITEM, scheduled: false }
}

fn finished() -> Event {
    Event::Finished { pool: 0, worker: 0, item: ITEM }
}

fn step(step: StepId) -> Event {
    Event::Step { pool: 0, step }
}

#[test]
fn events_in_the_sections_of_the_steps_that_make_them_replay() {
    let trace = [step(StepId::Queue), queued(), step(StepId::Woken), started(), step(StepId::Finished), finished()];
    assert_eq!(check(&trace), Ok(trace.len()));
}

#[test]
fn an_event_from_a_section_whose_step_does_not_make_it_is_refused() {
    // The spec allows the start; a queueing section cannot start an item.
    let trace = [step(StepId::Queue), queued(), started()];
    let why = check(&trace).expect_err("a start inside a queueing section");
    assert!(why.contains("event #2") && why.contains("does not make it"), "{why}");
    // A finish recorded in the worker's wake section, not after its item ran.
    let trace = [step(StepId::Queue), queued(), step(StepId::Woken), started(), finished()];
    assert!(check(&trace).is_err_and(|why| why.contains("event #4")));
}

#[test]
fn an_event_outside_any_marked_section_is_refused() {
    let why = check(&[queued()]).expect_err("no section began");
    assert!(why.contains("event #0") && why.contains("None"), "{why}");
}

/// C10: the monitor's reports replay as the spec's `Detect` and `Undetect`
/// when recorded in its own section (PS9 / PS10), and not elsewhere; the
/// spec refuses a worker counted in again that was never counted out.
#[test]
fn the_monitors_reports_replay_in_its_section() {
    let asleep = Event::SeenAsleep { pool: 0, worker: 0 };
    let running = Event::SeenRunning { pool: 0, worker: 0 };
    let ran = [step(StepId::Queue), queued(), step(StepId::Woken), started()];
    let seen = [step(StepId::Monitor), asleep.clone(), step(StepId::Monitor), running.clone()];
    let trace: Vec<Event> = ran.iter().chain(&seen).cloned().chain([step(StepId::Finished), finished()]).collect();
    assert_eq!(check(&trace), Ok(trace.len()));
    // Counted out, then the worker's own finish ends the detection.
    let trace: Vec<Event> = ran
        .iter()
        .cloned()
        .chain([seen[0].clone(), asleep.clone()])
        .chain([step(StepId::Finished), finished()])
        .collect();
    assert_eq!(check(&trace), Ok(trace.len()));
    let trace: Vec<Event> = ran.iter().cloned().chain([asleep]).collect();
    assert!(check(&trace).is_err_and(|why| why.contains("event #4") && why.contains("does not make it")));
    let trace: Vec<Event> = ran.iter().cloned().chain([step(StepId::Monitor), running]).collect();
    assert!(check(&trace).is_err_and(|why| why.contains("event #5") && why.contains("Undetect")));
}

/// C11: the monitor's hog report replays as the spec's `Hog` when recorded
/// in its own section (PS11), and not elsewhere; the spec refuses a second
/// mark of a worker CPU-intensive already, and the item's end clears it.
#[test]
fn a_hog_report_replays_in_the_monitors_section() {
    let hog = Event::SeenHogging { pool: 0, worker: 0 };
    let ran = [step(StepId::Queue), queued(), step(StepId::Woken), started()];
    let seen = [step(StepId::Monitor), hog.clone()];
    let trace: Vec<Event> = ran.iter().chain(&seen).cloned().chain([step(StepId::Finished), finished()]).collect();
    assert_eq!(check(&trace), Ok(trace.len()));
    // Marked, finished, run again, and marked again: the mark ended with the item.
    let again = [step(StepId::Queue), queued(), step(StepId::Woken), started()];
    let trace: Vec<Event> = trace.iter().chain(&again).chain(&seen).cloned().collect();
    assert!(check(&trace).is_err_and(|why| why.contains("at the end")), "only the work left is refused");
    let trace: Vec<Event> = ran.iter().cloned().chain([hog.clone()]).collect();
    assert!(check(&trace).is_err_and(|why| why.contains("event #4") && why.contains("does not make it")));
    let trace: Vec<Event> = ran.iter().chain(&seen).chain(&seen).cloned().collect();
    assert!(check(&trace).is_err_and(|why| why.contains("event #7") && why.contains("Hog")));
}
