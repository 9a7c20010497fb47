//! Simulation speed (informational; run with
//! `cargo test -p stepwise-sim --release --test sim -- speed_report --ignored --nocapture`).

use std::time::Instant;

use stepwise_sim::{NetConfig, SEC};

use crate::toy::{self, Behaviour};

#[test]
#[ignore = "timing report, run explicitly"]
fn speed_report() {
    let behaviour = Behaviour {
        gossip: true,
        report_ticks: false,
    };
    let mut sim = toy::sim(1, 5, NetConfig::unreliable(), behaviour);
    let virtual_time = 1000 * SEC;
    let start = Instant::now();
    let mut outputs = 0;
    let mut t = 0;
    while t < virtual_time {
        sim.run_for(SEC);
        outputs += sim.take_outputs().len();
        t += SEC;
    }
    let real = start.elapsed();
    let s = sim.stats();
    println!(
        "5 nodes, 10 ms ticks, {} virtual s in {:?}: {:.0}x real time; {} events ({:.0} ns/event), \
         {} msgs sent, {} delivered, {} outputs",
        virtual_time / SEC,
        real,
        virtual_time as f64 / 1e6 / real.as_secs_f64(),
        s.events,
        real.as_nanos() as f64 / s.events as f64,
        s.total.msgs_sent,
        s.total.msgs_delivered,
        outputs
    );
}
