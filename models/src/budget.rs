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

/// Loom preemption bound (`None`: unbounded).
pub fn loom_preemption_bound() -> Option<usize> {
    if deep() {
        Some(3)
    } else {
        Some(1)
    }
}
