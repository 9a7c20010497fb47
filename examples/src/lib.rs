//! Example binaries live in `src/bin/`.
pub mod kvserver;
pub mod mr;
