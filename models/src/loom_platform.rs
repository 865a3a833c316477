//! The loom platform: loom's exhaustively scheduled threads and primitives
//! (defined in `cmwq::model_check`, feature `loom`).

pub use cmwq::model_check::Loom;
