//! Example binaries live in `src/bin/`.
pub mod mr;
