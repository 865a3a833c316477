//! The loom platform: loom's exhaustively scheduled threads and primitives.

crate::platform_macro::model_platform!(Loom, loom, "cmwq on loom: exhaustive exploration within a preemption bound.");
