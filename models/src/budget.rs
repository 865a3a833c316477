//! How hard the checkers look: the default run (part of the README's test
//! command) and deep mode (`CMWQ_MODELS_DEEP=1`).

/// Whether deep mode is on.
pub fn deep() -> bool {
    std::env::var("CMWQ_MODELS_DEEP").is_ok_and(|v| v != "0" && !v.is_empty())
}

/// Shuttle iterations per model and scheduler (PCT and random each).
pub fn shuttle_iterations() -> usize {
    if deep() {
        100_000
    } else {
        1_000
    }
}

/// Shuttle PCT depth.
pub const PCT_DEPTH: usize = 3;

/// Loom preemption bound: 1 by default, 2 in deep mode; `CMWQ_LOOM_PREEMPTION`
/// sets it explicitly (a number, or `none` for unbounded; beware: bound 3
/// already takes more than 6 minutes for a single model here).
pub fn loom_preemption_bound() -> Option<usize> {
    match std::env::var("CMWQ_LOOM_PREEMPTION") {
        Ok(v) if v == "none" => None,
        Ok(v) => Some(v.parse().expect("CMWQ_LOOM_PREEMPTION is a number or `none`")),
        Err(_) if deep() => Some(2),
        Err(_) => Some(1),
    }
}
