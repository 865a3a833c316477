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

macro_rules! shuttle_models {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { run(stringify!($name)); })*

        #[test]
        fn every_model_has_a_shuttle_test() {
            let listed = [$(stringify!($name)),*];
            for model in MODELS {
                assert!(listed.contains(&model.name), "model {} has no shuttle test", model.name);
            }
        }
    };
}

shuttle_models!(
    exactly_once,
    requeue_during_execution,
    non_reentrant_cross_cpu,
    non_reentrant_same_pool,
    work_conserving,
    flush_work_running,
    flush_work_racing_requeue,
    cancel_sync_self_requeue,
    cancel_sync_racing_queue,
    flush_colours,
    max_active_fifo,
    cancel_inactive,
    ordered_concurrent,
    idle_cull_racing_queue,
    panic_racing_flush,
    destroy_racing_queue,
    failed_spawn_retry,
    shutdown_racing_flush,
    keep_working_single_runner,
    rescuer_chain,
    chain_stalls_without_rescuer,
    rescuer_races_worker,
    rescuer_wakes_worker,
    destroy_racing_mayday,
    mayday_no_duplicate,
    cpu_down_racing_queue,
    offline_pool_runs_waiting_items,
    cpu_up_racing_drain,
    requeue_during_handoff,
    ordered_across_handoff,
    rebind_keeps_inactive,
);

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
