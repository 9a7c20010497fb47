//! Randomized tests: histories generated from a real sequential execution with random
//! overlapping intervals (linearizable by construction), the same with one output corrupted,
//! a brute-force oracle for small histories, and the performance check.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use quickcheck::{Gen, QuickCheck, TestResult};
use stepwise_linearizability::models::{
    Kv, KvErr, KvInput, Register, RegisterInput, RegisterOutput, VersionedInput, VersionedKv,
    VersionedOutput, VersionedState,
};
use stepwise_linearizability::{CheckResult, Model, Operation, check};

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// Shape of a generated history.
#[derive(Debug, Clone, Copy)]
struct Spec {
    clients: u64,
    ops: usize,
    keys: u64,
    /// Maximum idle time of a client between operations.
    max_gap: u64,
    /// Maximum time from call to linearization point, and from there to return.
    max_half: u64,
    /// Percentage of operations that never get a reply.
    pending_pct: u64,
}

/// One operation's timing: it takes effect at `lin`, inside `[call, ret]`.
struct Slot {
    client: u64,
    call: u64,
    lin: u64,
    ret: u64,
}

/// Random client timelines, sorted by linearization point. Each client runs one operation
/// at a time.
fn schedule(rng: &mut Rng, spec: Spec) -> Vec<Slot> {
    let mut next_call: Vec<u64> = (0..spec.clients)
        .map(|_| rng.below(spec.max_gap + 1))
        .collect();
    let mut slots = Vec::with_capacity(spec.ops);
    for _ in 0..spec.ops {
        let client = rng.below(spec.clients);
        let call = next_call[client as usize];
        let lin = call + rng.below(spec.max_half + 1);
        let ret = lin + rng.below(spec.max_half + 1);
        next_call[client as usize] = ret + rng.below(spec.max_gap + 1);
        slots.push(Slot {
            client,
            call,
            lin,
            ret,
        });
    }
    slots.sort_by_key(|s| (s.lin, s.client));
    slots
}

/// A model plus a reference implementation: how a correct service answers, and how to
/// generate inputs and corrupt outputs.
trait Reference: Model {
    /// How many distinct keys the model partitions by (the register has one).
    fn max_keys(&self) -> u64 {
        u64::MAX
    }
    fn random_input(&self, rng: &mut Rng, key: u64, state: &Self::State) -> Self::Input;
    /// The correct reply to `input` in `state`. `maybe`: the client lost the first reply.
    fn respond(&self, state: &Self::State, input: &Self::Input, maybe: bool) -> Self::Output;
    /// A different output for the same input (maybe still a legal one).
    fn corrupt(&self, rng: &mut Rng, input: &Self::Input, output: &Self::Output) -> Self::Output;
}

type OpRef<'a, M> = &'a Operation<<M as Model>::Input, <M as Model>::Output>;
type History<M> = Vec<Operation<<M as Model>::Input, <M as Model>::Output>>;

/// Executes random operations sequentially at their linearization points.
fn generate<M: Reference>(model: &M, rng: &mut Rng, spec: Spec) -> History<M>
where
    M::Input: Clone,
{
    let mut states: BTreeMap<u64, M::State> = BTreeMap::new();
    let mut ops = Vec::with_capacity(spec.ops);
    for slot in schedule(rng, spec) {
        let key = rng.below(spec.keys.min(model.max_keys()));
        let state = states.entry(key).or_insert_with(|| model.init());
        let input = model.random_input(rng, key, state);
        let pending = rng.percent(spec.pending_pct);
        let output = model.respond(state, &input, rng.percent(10));
        let applied = !pending || rng.percent(50);
        if applied {
            *state = model
                .step(state, &input, Some(&output))
                .expect("the reference output is legal");
        }
        let mut op = Operation::complete(slot.client, input, slot.call, output, slot.ret);
        if pending {
            op.output = None;
            if rng.percent(50) {
                op.ret = None;
            }
        }
        ops.push(op);
    }
    // A recorder stores operations in call order.
    ops.sort_by_key(|op| (op.call, op.client));
    ops
}

/// Replaces one complete operation's output.
fn corrupt_one<M: Reference>(model: &M, rng: &mut Rng, ops: &mut History<M>) -> Option<usize> {
    let complete: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].is_complete()).collect();
    if complete.is_empty() {
        return None;
    }
    let i = complete[rng.below(complete.len() as u64) as usize];
    let output = ops[i].output.as_ref().expect("complete");
    let bad = model.corrupt(rng, &ops[i].input, output);
    ops[i].output = Some(bad);
    Some(i)
}

// ---- models under test ----

fn value(key: u64, n: u64) -> String {
    format!("{key}.{n}")
}

impl Reference for VersionedKv {
    fn random_input(&self, rng: &mut Rng, key: u64, state: &VersionedState<String>) -> Self::Input {
        let k = format!("k{key}");
        if rng.percent(40) {
            return VersionedInput::get(k);
        }
        // Mostly the current version (a client that just read it), sometimes a stale one.
        let version = if rng.percent(70) {
            state.version
        } else {
            rng.below(state.version + 2)
        };
        VersionedInput::put(k, value(key, rng.below(1000)), version)
    }

    fn respond(
        &self,
        state: &VersionedState<String>,
        input: &Self::Input,
        maybe: bool,
    ) -> Self::Output {
        match input {
            VersionedInput::Get { .. } => VersionedOutput {
                value: state.value.clone(),
                version: state.version,
                err: if state.version == 0 {
                    KvErr::NoKey
                } else {
                    KvErr::Ok
                },
            },
            VersionedInput::Put { version, .. } => VersionedOutput::put(if maybe {
                KvErr::Maybe
            } else if *version == state.version {
                KvErr::Ok
            } else {
                KvErr::Version
            }),
        }
    }

    fn corrupt(&self, rng: &mut Rng, input: &Self::Input, output: &Self::Output) -> Self::Output {
        let mut bad = output.clone();
        match input {
            VersionedInput::Get { key } => {
                bad.value = match rng.below(3) {
                    0 => String::new(),
                    1 => format!("{}.{}", &key[1..], rng.below(1000)),
                    _ => format!("{}x", output.value),
                };
            }
            VersionedInput::Put { .. } => {
                bad.err = match output.err {
                    KvErr::Ok => KvErr::Version,
                    KvErr::Version => KvErr::Ok,
                    _ => [KvErr::Ok, KvErr::Version][rng.below(2) as usize],
                };
            }
        }
        bad
    }
}

impl Reference for Kv {
    fn random_input(&self, rng: &mut Rng, key: u64, _state: &Option<String>) -> Self::Input {
        let k = format!("k{key}");
        // Like the lab: every appended value is distinct and delimited.
        let v = format!("x{}y", rng.below(1 << 20));
        match rng.below(14) {
            0..=3 => KvInput::get(k),
            4 => KvInput::put(k, v),
            // A value Incr can count from.
            5 => KvInput::put(k, rng.below(100).to_string()),
            6..=7 => KvInput::append(k, v),
            8 => KvInput::append_return(k, v),
            9 => KvInput::delete(k),
            _ => KvInput::incr(k, rng.below(7) as i64 - 3),
        }
    }

    fn respond(&self, state: &Option<String>, input: &Self::Input, _maybe: bool) -> String {
        match input {
            KvInput::Get { .. } | KvInput::AppendReturn { .. } => state.clone().unwrap_or_default(),
            KvInput::Put { .. } | KvInput::Append { .. } => String::new(),
            KvInput::Delete { .. } => u8::from(state.is_some()).to_string(),
            KvInput::Incr { by, .. } => {
                let old = match state {
                    Some(v) => v.parse::<i64>().ok().filter(|n| n.to_string() == *v),
                    None => Some(0),
                };
                old.and_then(|n| n.checked_add(*by))
                    .map_or_else(String::new, |n| n.to_string())
            }
        }
    }

    fn corrupt(&self, rng: &mut Rng, input: &Self::Input, output: &String) -> String {
        match input {
            KvInput::Get { .. } | KvInput::AppendReturn { .. } => match rng.below(3) {
                0 if !output.is_empty() => output[..output.len() - 1].to_string(),
                1 => format!("{output}{output}"),
                _ => format!("{output}z"),
            },
            KvInput::Delete { .. } if output == "1" => "0".to_string(),
            KvInput::Delete { .. } => "1".to_string(),
            // A failed Incr that claims a sum, or a sum off by one or applied twice.
            KvInput::Incr { by, .. } => match output.parse::<i64>() {
                Err(_) => "1".to_string(),
                Ok(n) if rng.percent(50) => n.wrapping_add(*by).to_string(),
                Ok(n) => n.wrapping_add(1).to_string(),
            },
            // Put and Append outputs are not checked; corrupt them anyway (no effect).
            _ => "junk".to_string(),
        }
    }
}

impl Reference for Register<u64> {
    fn max_keys(&self) -> u64 {
        1
    }

    fn random_input(&self, rng: &mut Rng, _key: u64, _state: &u64) -> Self::Input {
        if rng.percent(50) {
            RegisterInput::Read
        } else {
            RegisterInput::Write(rng.below(8))
        }
    }

    fn respond(&self, state: &u64, input: &Self::Input, _maybe: bool) -> Self::Output {
        match input {
            RegisterInput::Read => RegisterOutput::Value(*state),
            RegisterInput::Write(_) => RegisterOutput::Ack,
        }
    }

    fn corrupt(&self, rng: &mut Rng, input: &Self::Input, output: &Self::Output) -> Self::Output {
        match (input, output) {
            (RegisterInput::Read, RegisterOutput::Value(v)) => {
                RegisterOutput::Value((v + 1 + rng.below(7)) % 8)
            }
            _ => output.clone(),
        }
    }
}

// ---- brute-force oracle ----

/// Tries every order of the operations of each partition: an operation may go next if no
/// unplaced complete operation returned strictly before its call. Pending operations may be
/// left out. Only for a handful of operations per partition.
fn brute_force<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    let mut parts: BTreeMap<M::Key, Vec<OpRef<'_, M>>> = BTreeMap::new();
    for op in ops {
        parts
            .entry(model.partition(&op.input))
            .or_default()
            .push(op);
    }
    parts.values().all(|part| {
        assert!(part.len() <= 12, "too large for brute force");
        place(model, part, 0, &model.init())
    })
}

fn place<M: Model>(model: &M, ops: &[OpRef<'_, M>], done: u32, state: &M::State) -> bool {
    let open = |i: usize| done & (1 << i) == 0;
    if (0..ops.len()).all(|i| !open(i) || !ops[i].is_complete()) {
        return true;
    }
    (0..ops.len()).filter(|&i| open(i)).any(|i| {
        let blocked = (0..ops.len()).any(|j| {
            open(j)
                && ops[j]
                    .effective_return()
                    .is_some_and(|ret| ret < ops[i].call)
        });
        !blocked
            && model
                .step(state, &ops[i].input, ops[i].output.as_ref())
                .is_some_and(|next| place(model, ops, done | 1 << i, &next))
    })
}

// ---- tests ----

fn medium(clients: u64, ops: usize, keys: u64) -> Spec {
    Spec {
        clients,
        ops,
        keys,
        max_gap: 5,
        max_half: 6,
        pending_pct: 3,
    }
}

fn assert_generated_histories_pass<M: Reference + Debug>(model: &M, spec: Spec, seeds: u64)
where
    M::Input: Clone,
{
    for seed in 0..seeds {
        let ops = generate(model, &mut Rng(seed), spec);
        let result = check(model, &ops, Some(Duration::from_secs(20)));
        assert_eq!(result, CheckResult::Ok, "{model:?} seed {seed}");
    }
}

#[test]
fn generated_versioned_histories_are_linearizable() {
    assert_generated_histories_pass(&VersionedKv::new(), medium(5, 300, 3), 200);
}

#[test]
fn generated_kv_histories_are_linearizable() {
    assert_generated_histories_pass(&Kv::new(), medium(5, 300, 3), 200);
}

#[test]
fn generated_register_histories_are_linearizable() {
    assert_generated_histories_pass(&Register::new(0u64), medium(4, 200, 1), 200);
}

/// Small histories, clean and corrupted: the checker's verdict equals the brute force one.
fn assert_agrees_with_brute_force<M: Reference + Debug>(model: &M, seeds: u64, pending_pct: u64)
where
    M::Input: Clone,
    M::Output: Clone,
{
    let mut illegal = 0;
    for seed in 0..seeds {
        let mut rng = Rng(seed);
        let spec = Spec {
            clients: 1 + rng.below(4),
            ops: 1 + rng.below(8) as usize,
            keys: 1 + rng.below(2),
            max_gap: rng.below(4),
            max_half: rng.below(5),
            pending_pct,
        };
        let mut ops = generate(model, &mut rng, spec);
        assert!(
            brute_force(model, &ops),
            "{model:?} seed {seed}: generator is wrong"
        );
        assert_eq!(check(model, &ops, None), CheckResult::Ok, "seed {seed}");
        corrupt_one(model, &mut rng, &mut ops);
        let expected = brute_force(model, &ops);
        let result = check(model, &ops, None);
        assert_eq!(
            result.is_ok(),
            expected,
            "{model:?} seed {seed}: {ops:#?}\n{result:?}"
        );
        illegal += u64::from(!expected);
    }
    // The corruptions must exercise the illegal path, not only the legal one.
    assert!(
        illegal > seeds / 10,
        "only {illegal} of {seeds} corrupted histories illegal"
    );
}

#[test]
fn versioned_checker_agrees_with_brute_force() {
    assert_agrees_with_brute_force(&VersionedKv::new(), 3000, 15);
    assert_agrees_with_brute_force(&VersionedKv::new(), 2000, 50);
}

#[test]
fn kv_checker_agrees_with_brute_force() {
    assert_agrees_with_brute_force(&Kv::new(), 3000, 15);
    assert_agrees_with_brute_force(&Kv::new(), 2000, 50);
}

#[test]
fn register_checker_agrees_with_brute_force() {
    assert_agrees_with_brute_force(&Register::new(0u64), 3000, 15);
    assert_agrees_with_brute_force(&Register::new(0u64), 2000, 50);
}

/// The sub-history of `v` cut at its return event (later returns made pending). With
/// `include_cut` false, the cut operation's own return is also moved past the cut, giving
/// the prefix that ends just before it.
fn cut_history<M: Model>(
    ops: &History<M>,
    sub: &[usize],
    stuck: usize,
    cut: u64,
    include_cut: bool,
) -> History<M>
where
    M::Input: Clone,
    M::Output: Clone,
{
    sub.iter()
        .map(|&i| {
            let mut op = ops[i].clone();
            // Events at equal times: returns are ordered by index (Porcupine keeps calls
            // first), so those with a larger index than `stuck` come after the cut.
            let after_cut = match op.effective_return() {
                Some(ret) => ret > cut || (ret == cut && i > stuck),
                None => true,
            };
            if after_cut || (i == stuck && !include_cut) {
                op.ret = None;
            }
            op
        })
        .collect()
}

fn assert_corrupted_histories_behave<M: Reference + Debug>(model: &M, spec: Spec, seeds: u64)
where
    M::Input: Clone,
    M::Output: Clone,
{
    let mut illegal = 0;
    for seed in 0..seeds {
        let mut rng = Rng(seed);
        let mut ops = generate(model, &mut rng, spec);
        corrupt_one(model, &mut rng, &mut ops);
        let timeout = Some(Duration::from_secs(20));
        let first = check(model, &ops, timeout);
        let second = check(model, &ops, timeout);
        assert_eq!(first, second, "seed {seed}: not deterministic");
        let CheckResult::Illegal(v) = first else {
            assert_eq!(first, CheckResult::Ok, "seed {seed}");
            continue;
        };
        illegal += 1;
        // The reported sub-history is itself not linearizable...
        let sub = v.sub_history();
        let prefix = cut_history::<M>(&ops, &sub, v.op(), v.cut(), true);
        let again = check(model, &prefix, timeout);
        let stuck_local = sub.iter().position(|&i| i == v.op());
        assert_eq!(
            again.violation().map(|w| w.op()),
            stuck_local,
            "seed {seed}: reported prefix is linearizable\n{v}"
        );
        // ...and the prefix ending just before the stuck operation's return is.
        let shorter = cut_history::<M>(&ops, &sub, v.op(), v.cut(), false);
        assert_eq!(
            check(model, &shorter, timeout),
            CheckResult::Ok,
            "seed {seed}\n{v}"
        );
        // The report is readable and mentions the operation.
        let text = v.to_string();
        assert!(text.contains(&format!("#{} client", v.op())), "{text}");
    }
    assert!(
        illegal > seeds / 10,
        "only {illegal} of {seeds} corrupted histories illegal"
    );
}

#[test]
fn corrupted_versioned_histories_are_deterministic_and_minimal() {
    assert_corrupted_histories_behave(&VersionedKv::new(), medium(5, 200, 3), 300);
}

#[test]
fn corrupted_kv_histories_are_deterministic_and_minimal() {
    assert_corrupted_histories_behave(&Kv::new(), medium(5, 200, 3), 300);
}

#[test]
fn corrupted_register_histories_are_deterministic_and_minimal() {
    assert_corrupted_histories_behave(&Register::new(0u64), medium(4, 100, 1), 300);
}

/// One client, one operation at a time: always linearizable, whatever the operations.
#[test]
fn single_client_sequential_histories_are_accepted() {
    fn prop(codes: Vec<(u8, u8, u8)>, gaps: Vec<u8>) -> TestResult {
        let versioned = VersionedKv::new();
        let kv = Kv::new();
        let (mut vs, mut ks): (
            BTreeMap<u8, VersionedState<String>>,
            BTreeMap<u8, Option<String>>,
        ) = Default::default();
        let (mut vops, mut kops) = (Vec::new(), Vec::new());
        let mut now = 0u64;
        for (i, &(kind, key, val)) in codes.iter().enumerate() {
            let key = key % 4;
            let call = now + u64::from(gaps.get(i).copied().unwrap_or(1) % 3);
            let ret = call + u64::from(val % 3);
            now = ret;
            let k = format!("k{key}");
            let state = vs.entry(key).or_default();
            let input = if kind % 2 == 0 {
                VersionedInput::get(k.clone())
            } else {
                VersionedInput::put(k.clone(), val.to_string(), u64::from(val % 3))
            };
            let out = versioned.respond(state, &input, kind % 5 == 0);
            *state = versioned.step(state, &input, Some(&out)).expect("legal");
            vops.push(Operation::complete(0, input, call, out, ret));
            let state = ks.entry(key).or_default();
            let input = match kind % 6 {
                0 => KvInput::get(k),
                1 => KvInput::put(k, val.to_string()),
                2 => KvInput::append(k, val.to_string()),
                3 => KvInput::append_return(k, val.to_string()),
                4 => KvInput::delete(k),
                _ => KvInput::incr(k, i64::from(val % 5) - 2),
            };
            let out = kv.respond(state, &input, false);
            *state = kv.step(state, &input, Some(&out)).expect("legal");
            kops.push(Operation::complete(0, input, call, out, ret));
        }
        TestResult::from_bool(
            check(&versioned, &vops, None).is_ok() && check(&kv, &kops, None).is_ok(),
        )
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(60, 0x5eed))
        .tests(500)
        .quickcheck(prop as fn(Vec<(u8, u8, u8)>, Vec<u8>) -> TestResult);
}

/// The lab's budget: a few thousand operations over ~10 keys checked within the 1 s
/// timeout. Prints the time taken (run with `--nocapture`).
#[test]
fn thousands_of_operations_check_within_the_lab_timeout() {
    fn timed<M: Reference>(model: &M, spec: Spec, seed: u64) -> Duration
    where
        M::Input: Clone,
    {
        let ops = generate(model, &mut Rng(seed), spec);
        let start = Instant::now();
        let result = check(model, &ops, Some(Duration::from_secs(1)));
        let took = start.elapsed();
        assert_eq!(result, CheckResult::Ok, "{spec:?} seed {seed}");
        took
    }
    let shapes = [
        // About the lab's linearizability tests: clients spread over keys.
        medium(10, 4000, 10),
        // Longer operations, no idle time: up to 20 operations open at once.
        Spec {
            clients: 20,
            ops: 4000,
            keys: 10,
            max_gap: 0,
            max_half: 50,
            pending_pct: 3,
        },
    ];
    for spec in shapes {
        for seed in 0..3 {
            let versioned = timed(&VersionedKv::new(), spec, seed);
            let kv = timed(&Kv::new(), spec, seed);
            eprintln!(
                "{} ops, {} clients, {} keys, max op length {}: versioned {versioned:?}, kv {kv:?}",
                spec.ops,
                spec.clients,
                spec.keys,
                2 * spec.max_half
            );
        }
    }
    // One register, ten clients.
    for seed in 0..3 {
        let register = timed(&Register::new(0u64), medium(10, 4000, 1), seed);
        eprintln!("4000 ops, 10 clients, one register: {register:?}");
    }
}
