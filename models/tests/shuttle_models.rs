//! Every model under shuttle: PCT (depth 3) and random scheduling,
//! `budget::shuttle_iterations()` schedules each. A failure prints the
//! schedule; replay it with `shuttle::replay` (see models/README.md).

use cmwq_models::budget::{shuttle_iterations, PCT_DEPTH};
use cmwq_models::scenarios::MODELS;

fn run(name: &str) {
    let model = MODELS.iter().find(|m| m.name == name).expect("model exists");
    let body = model.shuttle;
    shuttle::check_pct(move || body(0), shuttle_iterations(), PCT_DEPTH);
    shuttle::check_random(move || body(0), shuttle_iterations());
}

cmwq_models::model_tests!(run);

/// Every model name is unique (`run` looks models up by name, so a
/// duplicate would silently test the first one twice).
#[test]
fn model_names_are_unique() {
    for (i, model) in MODELS.iter().enumerate() {
        assert!(MODELS[..i].iter().all(|other| other.name != model.name), "model {} is registered twice", model.name);
    }
}

/// Replays a failing shuttle schedule: set `CMWQ_REPLAY_MODEL` to the
/// model's name, `CMWQ_REPLAY_SCHEDULE` to the printed schedule string, and
/// optionally `CMWQ_REPLAY_BUGS` to the seeded-bug bits. Does nothing
/// otherwise.
#[test]
fn replay() {
    let (Ok(name), Ok(schedule)) = (std::env::var("CMWQ_REPLAY_MODEL"), std::env::var("CMWQ_REPLAY_SCHEDULE")) else {
        return;
    };
    let bugs = std::env::var("CMWQ_REPLAY_BUGS").ok().and_then(|b| b.parse().ok()).unwrap_or(0);
    let model = MODELS.iter().find(|m| m.name == name).expect("CMWQ_REPLAY_MODEL names a model");
    let body = model.shuttle;
    shuttle::replay(move || body(bugs), &schedule);
}
