//! The shuttle platform: shuttle's controlled threads and primitives.

crate::platform_macro::model_platform!(
    Shuttle,
    shuttle,
    "cmwq on shuttle: randomized and PCT scheduling of controlled threads."
);
