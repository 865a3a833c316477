//! The shuttle platform: shuttle's controlled threads and primitives
//! (defined in `cmwq::model_check`, feature `shuttle`).

pub use cmwq::model_check::Shuttle;
