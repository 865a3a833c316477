//! Every model under loom, exhaustively within `budget::loom_preemption_bound()`.

use cmwq_models::budget::loom_preemption_bound;
use cmwq_models::scenarios::MODELS;

fn run(name: &str) {
    let model = MODELS.iter().find(|m| m.name == name).expect("model exists");
    let body = model.loom;
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = loom_preemption_bound();
    builder.check(move || body(0));
}

macro_rules! loom_models {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { run(stringify!($name)); })*
    };
}

loom_models!(
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
