//! Integration tests of `stepwise-sim`, driving the toy protocol in `toy.rs`.

mod connectivity;
mod counters;
mod crashes;
mod determinism;
mod driving;
mod network;
mod property;
mod seeds;
mod speed;
mod toy;
