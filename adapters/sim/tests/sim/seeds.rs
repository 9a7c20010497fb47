//! The seeds helper and its replay line.

use std::panic;

use stepwise_sim::{Replay, Target, run_seed_range, seeds_from_env, sim_seeds};

#[test]
fn the_replay_line_names_package_target_and_test() {
    let replay = Replay::here(env!("CARGO_PKG_NAME"), module_path!());
    assert_eq!(replay.target, Target::Test("sim".to_owned()));
    assert_eq!(
        replay.test,
        "seeds::the_replay_line_names_package_target_and_test"
    );
    assert_eq!(
        replay.line(1234),
        "replay: STEPWISE_SEED=1234 cargo test -p stepwise-sim --test sim -- \
         seeds::the_replay_line_names_package_target_and_test --exact"
    );
    let raft = Replay {
        package: "stepwise-raft".to_owned(),
        target: Target::Test("raft_lab".to_owned()),
        test: "figure8".to_owned(),
    };
    assert_eq!(
        raft.line(1234),
        "replay: STEPWISE_SEED=1234 cargo test -p stepwise-raft --test raft_lab -- figure8 --exact"
    );
}

#[test]
fn run_seed_range_stops_at_the_first_failing_seed_and_repanics() {
    let replay = Replay::here(env!("CARGO_PKG_NAME"), module_path!());
    let mut ran = Vec::new();
    let result = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        run_seed_range(&replay, 10..20, |seed| {
            ran.push(seed);
            assert!(seed != 13, "seed 13 fails");
        })
    }));
    let payload = result.expect_err("the panic is re-raised");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(message, Some("seed 13 fails"));
    assert_eq!(ran, vec![10, 11, 12, 13]);
}

#[test]
fn sim_seeds_runs_the_seeds_from_the_environment() {
    let mut ran = Vec::new();
    sim_seeds!(7, |seed: u64| ran.push(seed));
    assert_eq!(ran, seeds_from_env(7).collect::<Vec<_>>());
}
