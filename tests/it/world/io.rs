//! See `world/mod.rs`.
