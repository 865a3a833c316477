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

cmwq_models::model_tests!(run);
