//! Running a test over many seeds, and replaying one failing seed.
//!
//! * `STEPWISE_SEED=<u64>`: run only this seed.
//! * `STEPWISE_SEEDS=<count>`: how many seeds to run (default: the caller's).
//! * `STEPWISE_SEED_START=<u64>`: first seed of the range (default 0), to explore new seeds.
//!
//! When a seed fails, [`run_seeds`] prints one line to stderr that replays exactly that
//! seed, for example
//! `replay: STEPWISE_SEED=1234 cargo test -p stepwise-raft --test raft_lab -- figure8 --exact`,
//! and then re-raises the panic.

use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};

/// Environment variable naming the single seed to run.
pub const SEED_VAR: &str = "STEPWISE_SEED";
/// Environment variable giving the number of seeds to run.
pub const SEEDS_VAR: &str = "STEPWISE_SEEDS";
/// Environment variable giving the first seed of the range.
pub const SEED_START_VAR: &str = "STEPWISE_SEED_START";

/// The seed for a single-seed test: `STEPWISE_SEED` if set, else `default`.
///
/// # Panics
/// If `STEPWISE_SEED` is set but is not a `u64` (a typo should not silently run another
/// seed).
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(v) => parse(SEED_VAR, &v),
        Err(_) => default,
    }
}

/// The seeds to run given the environment: `STEPWISE_SEED` alone if set, else
/// `STEPWISE_SEED_START .. STEPWISE_SEED_START + STEPWISE_SEEDS` (defaults `0` and
/// `default_count`).
///
/// # Panics
/// If a variable is set but does not parse as a `u64`.
pub fn seeds_from_env(default_count: u64) -> Range<u64> {
    let var = |name| std::env::var(name).ok();
    seeds_from(
        var(SEED_VAR).as_deref(),
        var(SEEDS_VAR).as_deref(),
        var(SEED_START_VAR).as_deref(),
        default_count,
    )
}

/// [`seeds_from_env`] over explicit values (for tests and other front ends).
///
/// # Panics
/// If a value is given but does not parse as a `u64`.
pub fn seeds_from(
    seed: Option<&str>,
    count: Option<&str>,
    start: Option<&str>,
    default_count: u64,
) -> Range<u64> {
    if let Some(seed) = seed {
        let seed = parse(SEED_VAR, seed);
        return seed..seed.saturating_add(1);
    }
    let count = count.map_or(default_count, |c| parse(SEEDS_VAR, c));
    let start = start.map_or(0, |s| parse(SEED_START_VAR, s));
    start..start.saturating_add(count)
}

fn parse(name: &str, value: &str) -> u64 {
    match value.trim().parse() {
        Ok(v) => v,
        Err(_) => panic!("{name}={value:?} is not a u64"),
    }
}

/// Which cargo target a test lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A unit test in the library (`--lib`).
    Lib,
    /// An integration test target (`--test <name>`).
    Test(String),
}

/// What is needed to print the replay command of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The cargo package (`-p`), e.g. `env!("CARGO_PKG_NAME")`.
    pub package: String,
    /// The cargo target.
    pub target: Target,
    /// The test's full name as libtest shows it, e.g. `figure8` or `tests::figure8`.
    pub test: String,
}

impl Replay {
    /// Builds the replay data from the call site: `package` is `env!("CARGO_PKG_NAME")`,
    /// `module_path` is `module_path!()`. The target is `--lib` if the crate of
    /// `module_path` is the package's library, else `--test <crate>`. The test name is the
    /// current thread's name, which libtest sets to the test's full name; outside libtest
    /// (no name, or `main`) it is `<test-name>`.
    pub fn here(package: &str, module_path: &str) -> Replay {
        let krate = module_path.split("::").next().unwrap_or(module_path);
        let target = if krate == package.replace('-', "_") {
            Target::Lib
        } else {
            Target::Test(krate.to_owned())
        };
        let test = match std::thread::current().name() {
            Some(name) if name != "main" => name.to_owned(),
            _ => "<test-name>".to_owned(),
        };
        Replay {
            package: package.to_owned(),
            target,
            test,
        }
    }

    /// The one line that replays `seed`, e.g.
    /// `replay: STEPWISE_SEED=1234 cargo test -p stepwise-raft --test raft_lab -- figure8 --exact`.
    pub fn line(&self, seed: u64) -> String {
        let target = match &self.target {
            Target::Lib => "--lib".to_owned(),
            Target::Test(name) => format!("--test {name}"),
        };
        format!(
            "replay: {SEED_VAR}={seed} cargo test -p {} {target} -- {} --exact",
            self.package, self.test
        )
    }
}

/// Runs `f` for every seed of [`seeds_from_env`]`(default_count)`, in order. If `f` panics,
/// prints [`Replay::line`] for that seed to stderr and re-raises the panic. Usually called
/// through [`sim_seeds!`](crate::sim_seeds).
pub fn run_seeds<F: FnMut(u64)>(replay: &Replay, default_count: u64, f: F) {
    run_seed_range(replay, seeds_from_env(default_count), f);
}

/// [`run_seeds`] over an explicit range of seeds.
pub fn run_seed_range<F: FnMut(u64)>(replay: &Replay, seeds: Range<u64>, mut f: F) {
    for seed in seeds {
        // The closure is not used again after a panic: the panic is re-raised at once, so
        // no broken state can be observed.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(seed))) {
            eprintln!("{}", replay.line(seed));
            panic::resume_unwind(payload);
        }
    }
}

/// Runs a closure `FnMut(u64)` over many seeds (see [`run_seeds`]), printing a replay line
/// for the first seed that panics.
///
/// `sim_seeds!(default_count, |seed| { ... })` reads `STEPWISE_SEED`, `STEPWISE_SEEDS` and
/// `STEPWISE_SEED_START`; the replay line names the calling package, test target and test
/// (see [`Replay::here`]).
///
/// ```
/// use stepwise_sim::sim_seeds;
/// let mut runs = 0;
/// sim_seeds!(3, |seed: u64| {
///     runs += 1;
///     assert!(seed < 1_000_000);
/// });
/// assert!(runs >= 1);
/// ```
#[macro_export]
macro_rules! sim_seeds {
    ($default_count:expr, $f:expr $(,)?) => {
        $crate::run_seeds(
            &$crate::Replay::here(env!("CARGO_PKG_NAME"), module_path!()),
            $default_count,
            $f,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_default_to_a_range_from_zero() {
        assert_eq!(seeds_from(None, None, None, 50), 0..50);
        assert_eq!(seeds_from(None, Some("7"), None, 50), 0..7);
        assert_eq!(seeds_from(None, Some("7"), Some("100"), 50), 100..107);
    }

    #[test]
    fn a_single_seed_overrides_the_range() {
        assert_eq!(
            seeds_from(Some("1234"), Some("7"), Some("5"), 50),
            1234..1235
        );
        assert_eq!(seeds_from(Some(" 9 "), None, None, 50), 9..10);
    }

    #[test]
    #[should_panic(expected = "STEPWISE_SEEDS=\"x\" is not a u64")]
    fn a_malformed_count_is_reported() {
        seeds_from(None, Some("x"), None, 50);
    }

    #[test]
    fn replay_here_detects_the_lib_target_and_test_name() {
        let r = Replay::here("stepwise-sim", module_path!());
        assert_eq!(r.target, Target::Lib);
        assert_eq!(
            r.test,
            "seeds::tests::replay_here_detects_the_lib_target_and_test_name"
        );
        assert_eq!(
            r.line(42),
            "replay: STEPWISE_SEED=42 cargo test -p stepwise-sim --lib -- \
             seeds::tests::replay_here_detects_the_lib_target_and_test_name --exact"
        );
    }
}
