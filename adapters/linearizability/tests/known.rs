//! Hand-written histories with known verdicts, one behaviour per test.

use std::time::{Duration, Instant};

use stepwise_linearizability::models::{
    Kv, KvErr, KvInput, Register, RegisterInput, RegisterOutput, VersionedInput, VersionedKv,
    VersionedOutput,
};
use stepwise_linearizability::{CheckResult, History, Operation, SharedHistory, check};

type RegOp = Operation<RegisterInput<u32>, RegisterOutput<u32>>;
type VOp = Operation<VersionedInput<String, String>, VersionedOutput<String>>;
type KvOp = Operation<KvInput<String, String>, String>;

fn write(client: u64, v: u32, call: u64, ret: u64) -> RegOp {
    Operation::complete(
        client,
        RegisterInput::Write(v),
        call,
        RegisterOutput::Ack,
        ret,
    )
}

fn read(client: u64, v: u32, call: u64, ret: u64) -> RegOp {
    Operation::complete(
        client,
        RegisterInput::Read,
        call,
        RegisterOutput::Value(v),
        ret,
    )
}

fn vget(client: u64, key: &str, value: &str, version: u64, call: u64, ret: u64) -> VOp {
    Operation::complete(
        client,
        VersionedInput::get(key),
        call,
        VersionedOutput::get(value, version),
        ret,
    )
}

fn vput(client: u64, key: &str, value: &str, version: u64, err: KvErr, call: u64, ret: u64) -> VOp {
    Operation::complete(
        client,
        VersionedInput::put(key, value, version),
        call,
        VersionedOutput::put(err),
        ret,
    )
}

fn kv(client: u64, input: KvInput<String, String>, out: &str, call: u64, ret: u64) -> KvOp {
    Operation::complete(client, input, call, out.to_string(), ret)
}

fn reg_check(ops: &[RegOp]) -> CheckResult {
    check(&Register::new(0u32), ops, None)
}

fn v_check(ops: &[VOp]) -> CheckResult {
    check(&VersionedKv::new(), ops, None)
}

fn kv_check(ops: &[KvOp]) -> CheckResult {
    check(&Kv::new(), ops, None)
}

// ---- linearizable ----

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(reg_check(&[]), CheckResult::Ok);
}

#[test]
fn sequential_register_history_is_linearizable() {
    let ops = [
        read(0, 0, 0, 1),
        write(0, 1, 2, 3),
        read(1, 1, 4, 5),
        write(1, 2, 6, 7),
        read(0, 2, 8, 9),
    ];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn reads_concurrent_with_a_write_may_see_old_then_new() {
    // write(1) spans [0, 10]; a read of 0 then a read of 1 inside it.
    let ops = [write(0, 1, 0, 10), read(1, 0, 1, 2), read(2, 1, 3, 4)];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn linearization_order_may_differ_from_call_order() {
    // Two overlapping writes; the later-called one takes effect first.
    let ops = [
        write(0, 1, 0, 10),
        write(1, 2, 1, 9),
        read(2, 1, 11, 12),
        read(2, 1, 13, 14),
    ];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    // The read is called at the instant the write returns: calls sort before returns at
    // equal times (Porcupine's rule), so the read may precede the write.
    let ops = [write(0, 1, 0, 5), read(1, 0, 5, 6)];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
    // One tick later it cannot.
    let ops = [write(0, 1, 0, 5), read(1, 0, 6, 7)];
    assert!(reg_check(&ops).is_illegal());
}

#[test]
fn pending_write_that_took_effect() {
    let ops = [
        Operation::pending(0, RegisterInput::Write(5), 0),
        read(1, 5, 10, 11),
        read(1, 5, 12, 13),
    ];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn pending_write_that_never_took_effect() {
    let ops = [
        Operation::pending(0, RegisterInput::Write(5), 0),
        read(1, 0, 10, 11),
        read(1, 0, 12, 13),
    ];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn pending_write_may_take_effect_long_after_its_call() {
    let ops = [
        Operation::pending(0, RegisterInput::Write(5), 0),
        read(1, 0, 10, 11),
        read(1, 5, 12, 13),
    ];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn timed_out_call_is_pending_even_with_a_return_time() {
    // The client gave up at 3 (no output), but the request took effect later.
    let mut timed_out = Operation::pending(0, RegisterInput::Write(5), 0);
    timed_out.ret = Some(3);
    let ops = [timed_out, read(1, 0, 4, 5), read(1, 5, 6, 7)];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn pending_read_with_known_output_is_optional() {
    // A reply whose return time was lost: the read may be placed anywhere after its call,
    // or not at all.
    let mut late = read(2, 7, 0, 0);
    late.ret = None;
    let ops = [write(0, 1, 1, 2), late];
    assert_eq!(reg_check(&ops), CheckResult::Ok);
}

#[test]
fn history_recorder_feeds_the_checker() {
    let mut h = History::new();
    let w = h.begin(0, RegisterInput::Write(3), 0);
    let r = h.begin(1, RegisterInput::Read, 1);
    h.end(r, RegisterOutput::Value(3), 2).unwrap();
    h.end(w, RegisterOutput::Ack, 4).unwrap();
    h.begin(2, RegisterInput::Write(9), 5); // never ends
    assert_eq!(check(&Register::new(0u32), &h, None), CheckResult::Ok);
}

#[test]
fn real_threads_on_a_mutex_register_are_linearizable() {
    let shared: SharedHistory<RegisterInput<u32>, RegisterOutput<u32>> = SharedHistory::new();
    let register = std::sync::Mutex::new(0u32);
    std::thread::scope(|s| {
        for client in 0..4u32 {
            let (shared, register) = (&shared, &register);
            s.spawn(move || {
                for i in 0..200u32 {
                    let input = if i % 3 == 0 {
                        RegisterInput::Write(client * 1000 + i)
                    } else {
                        RegisterInput::Read
                    };
                    let id = shared.begin(u64::from(client), input.clone());
                    let output = {
                        let mut value = register.lock().unwrap();
                        match input {
                            RegisterInput::Write(v) => {
                                *value = v;
                                RegisterOutput::Ack
                            }
                            RegisterInput::Read => RegisterOutput::Value(*value),
                        }
                    };
                    shared.end(id, output).unwrap();
                }
            });
        }
    });
    let history = shared.into_history();
    assert_eq!(history.len(), 800);
    let result = check(
        &Register::new(0u32),
        &history,
        Some(Duration::from_secs(10)),
    );
    assert_eq!(result, CheckResult::Ok);
}

// ---- not linearizable ----

#[test]
fn stale_read_after_completed_write() {
    let ops = [
        vput(0, "k", "a", 0, KvErr::Ok, 0, 1),
        vget(1, "k", "a", 1, 2, 3),
        vput(0, "k", "b", 1, KvErr::Ok, 4, 5),
        vget(1, "k", "a", 1, 6, 7),
    ];
    let result = v_check(&ops);
    let v = result.violation().expect("stale read must be illegal");
    assert_eq!(v.op(), 3);
    assert_eq!(v.partition(), "\"k\"");
    assert_eq!(v.linearized(), &[0, 1, 2]);
    assert!(v.open().is_empty());
    assert_eq!(v.cut(), 7);
}

#[test]
fn new_old_inversion_between_readers() {
    // Both reads overlap the write, but once a reader saw 1 a later read cannot see 0.
    let ops = [write(0, 1, 0, 10), read(1, 1, 1, 2), read(2, 0, 3, 4)];
    let result = reg_check(&ops);
    assert_eq!(result.violation().map(|v| v.op()), Some(2));
}

#[test]
fn lost_write() {
    // Two completed appends, then a read that only shows the second.
    let ops = [
        kv(0, KvInput::append("k", "x"), "", 0, 1),
        kv(1, KvInput::append("k", "y"), "", 2, 3),
        kv(2, KvInput::get("k"), "y", 4, 5),
    ];
    assert_eq!(kv_check(&ops).violation().map(|v| v.op()), Some(2));
    // Likewise a put overwritten by nothing yet invisible.
    let ops = [
        kv(0, KvInput::put("k", "a"), "", 0, 1),
        kv(1, KvInput::get("k"), "", 2, 3),
    ];
    assert!(kv_check(&ops).is_illegal());
}

#[test]
fn duplicated_append() {
    let ops = [
        kv(0, KvInput::append("k", "x"), "", 0, 1),
        kv(0, KvInput::append("k", "y"), "", 2, 3),
        kv(1, KvInput::get("k"), "xyx", 4, 5),
    ];
    assert_eq!(kv_check(&ops).violation().map(|v| v.op()), Some(2));
    // The same with a retried append that is still pending: at most one copy may appear.
    let ops = [
        kv(0, KvInput::append("k", "x"), "", 0, 1),
        Operation::pending(1, KvInput::append("k", "y"), 2),
        kv(2, KvInput::get("k"), "xy", 4, 5),
        kv(2, KvInput::get("k"), "xyy", 6, 7),
    ];
    assert_eq!(kv_check(&ops).violation().map(|v| v.op()), Some(3));
}

#[test]
fn append_with_return_sees_the_old_value() {
    let ops = [
        kv(0, KvInput::append_return("k", "x"), "", 0, 1),
        kv(1, KvInput::append_return("k", "y"), "x", 2, 3),
        kv(2, KvInput::get("k"), "xy", 4, 5),
    ];
    assert_eq!(kv_check(&ops), CheckResult::Ok);
    let ops = [
        kv(0, KvInput::append_return("k", "x"), "", 0, 1),
        kv(1, KvInput::append_return("k", "y"), "", 2, 3),
    ];
    assert_eq!(kv_check(&ops).violation().map(|v| v.op()), Some(1));
}

#[test]
fn read_of_a_value_never_written() {
    let ops = [
        vput(0, "k", "a", 0, KvErr::Ok, 0, 10),
        vget(1, "k", "z", 1, 2, 3),
    ];
    let result = v_check(&ops);
    let v = result.violation().expect("illegal");
    assert_eq!(v.op(), 1);
    // The concurrent put was open but cannot help.
    assert_eq!(v.sub_history(), vec![0, 1]);
}

#[test]
fn versioned_put_succeeding_twice_at_the_same_version() {
    let sequential = [
        vput(0, "k", "a", 0, KvErr::Ok, 0, 1),
        vput(1, "k", "b", 0, KvErr::Ok, 2, 3),
    ];
    assert_eq!(v_check(&sequential).violation().map(|v| v.op()), Some(1));
    let concurrent = [
        vput(0, "k", "a", 0, KvErr::Ok, 0, 3),
        vput(1, "k", "b", 0, KvErr::Ok, 1, 2),
    ];
    assert!(v_check(&concurrent).is_illegal());
    // One of them getting ErrVersion is fine.
    let fine = [
        vput(0, "k", "a", 0, KvErr::Ok, 0, 3),
        vput(1, "k", "b", 0, KvErr::Version, 1, 2),
        vget(2, "k", "a", 1, 4, 5),
    ];
    assert_eq!(v_check(&fine), CheckResult::Ok);
}

#[test]
fn err_maybe_put_is_applied_iff_versions_match() {
    // ErrMaybe at the current version counts as applied...
    let applied = [
        vput(0, "k", "a", 0, KvErr::Maybe, 0, 1),
        vget(1, "k", "a", 1, 2, 3),
    ];
    assert_eq!(v_check(&applied), CheckResult::Ok);
    let not_seen = [
        vput(0, "k", "a", 0, KvErr::Maybe, 0, 1),
        vget(1, "k", "", 0, 2, 3),
    ];
    assert!(v_check(&not_seen).is_illegal());
    // ...unless another put got there first, so that its version no longer matches.
    let raced = [
        vput(0, "k", "a", 0, KvErr::Maybe, 0, 4),
        vput(1, "k", "b", 0, KvErr::Ok, 1, 2),
        vget(2, "k", "b", 1, 5, 6),
    ];
    assert_eq!(v_check(&raced), CheckResult::Ok);
}

#[test]
fn wrong_error_on_put_is_illegal() {
    let ops = [vput(0, "k", "a", 0, KvErr::Version, 0, 1)];
    assert!(v_check(&ops).is_illegal());
    let ops = [vput(0, "k", "a", 3, KvErr::Ok, 0, 1)];
    assert!(v_check(&ops).is_illegal());
}

#[test]
fn pending_put_that_took_effect_cannot_be_undone() {
    let ops = [
        Operation::pending(0, VersionedInput::put("k", "a", 0), 0),
        vget(1, "k", "a", 1, 2, 3),
        vget(1, "k", "", 0, 4, 5),
    ];
    assert_eq!(v_check(&ops).violation().map(|v| v.op()), Some(2));
}

// ---- partitions ----

#[test]
fn partitions_are_checked_independently() {
    // As a single register these would conflict (two successful puts at version 0).
    let ops = [
        vput(0, "k1", "a", 0, KvErr::Ok, 0, 1),
        vput(1, "k2", "b", 0, KvErr::Ok, 2, 3),
        vget(2, "k1", "a", 1, 4, 5),
        vget(2, "k2", "b", 1, 4, 5),
    ];
    assert_eq!(v_check(&ops), CheckResult::Ok);
}

#[test]
fn first_illegal_partition_in_key_order_is_reported() {
    let ops = [
        vget(0, "k3", "bad", 0, 0, 1),
        vput(1, "k2", "b", 0, KvErr::Ok, 0, 1),
        vget(2, "k1", "bad", 0, 0, 1),
        vget(2, "k2", "b", 1, 2, 3),
    ];
    let result = v_check(&ops);
    let v = result.violation().expect("illegal");
    assert_eq!(v.partition(), "\"k1\"");
    assert_eq!(v.op(), 2);
    // Without k1, k3 is next.
    let result = v_check(&ops[..2]);
    assert_eq!(result.violation().map(|v| v.partition()), Some("\"k3\""));
}

#[test]
fn byte_string_keys_work() {
    let model: VersionedKv<Vec<u8>, Vec<u8>> = VersionedKv::new();
    let ops = vec![
        Operation::complete(
            0,
            VersionedInput::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                version: 0,
            },
            0,
            VersionedOutput::put(KvErr::Ok),
            1,
        ),
        Operation::complete(
            1,
            VersionedInput::Get { key: b"k".to_vec() },
            2,
            VersionedOutput::get(b"v".to_vec(), 1),
            3,
        ),
    ];
    assert_eq!(check(&model, &ops, None), CheckResult::Ok);
}

// ---- reports ----

#[test]
fn violation_report_names_the_failing_operation_and_state() {
    let ops = [
        write(0, 1, 0, 1),
        write(0, 2, 2, 3),
        read(1, 1, 4, 5),
        write(2, 3, 4, 8),
    ];
    let result = reg_check(&ops);
    let v = result.violation().expect("illegal");
    assert_eq!(v.op(), 2);
    assert_eq!(v.sub_history(), vec![0, 1, 2, 3]);
    let text = v.to_string();
    assert!(
        text.contains("#2 client 1 [4, 5] Read -> Value(1)"),
        "{text}"
    );
    assert!(
        text.contains("#1 client 0 [2, 3] Write(2) -> Ack\n      => 2"),
        "{text}"
    );
    assert!(text.contains("4 operations"), "{text}");
}

#[test]
fn long_reports_are_truncated() {
    let mut ops: Vec<RegOp> = (0..50)
        .map(|i| write(0, i, 2 * i as u64, 2 * i as u64 + 1))
        .collect();
    ops.push(read(1, 7, 200, 201));
    let result = reg_check(&ops);
    let text = result.violation().expect("illegal").to_string();
    assert!(text.contains("... 40 earlier operations"), "{text}");
    assert!(text.lines().count() < 40, "{text}");
}

// ---- timeouts ----

/// `n` fully concurrent writes of distinct values, then a read of a value never written:
/// illegal, but only after the search tried every subset of the writes.
fn hard_history(n: u32) -> Vec<RegOp> {
    let mut ops: Vec<RegOp> = (1..=n).map(|v| write(u64::from(v), v, 0, 100)).collect();
    ops.push(read(0, n + 1, 200, 201));
    ops
}

#[test]
fn hard_history_is_illegal_without_timeout() {
    let ops = hard_history(10);
    assert_eq!(reg_check(&ops).violation().map(|v| v.op()), Some(10));
}

#[test]
fn timeout_gives_unknown() {
    let ops = hard_history(40);
    let start = Instant::now();
    let result = check(&Register::new(0u32), &ops, Some(Duration::from_millis(100)));
    assert_eq!(result, CheckResult::Unknown);
    // The clock is read every 1024 search steps, so the check stops promptly.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        check(&Register::new(0u32), &ops, Some(Duration::ZERO)),
        CheckResult::Unknown
    );
}

/// Pending writes that were overwritten before anyone could see them: each may or may not
/// have taken effect, which must not double the search per write.
fn overwritten_pending_writes(n: u32, last_read: u32) -> Vec<RegOp> {
    let mut ops = Vec::new();
    for i in 0..n {
        let t = 10 * u64::from(i);
        ops.push(Operation::pending(
            100 + u64::from(i),
            RegisterInput::Write(1000 + i),
            t,
        ));
        ops.push(write(0, i, t + 1, t + 2));
        ops.push(read(1, i, t + 3, t + 4));
    }
    ops.push(read(1, last_read, 10 * u64::from(n), 10 * u64::from(n) + 1));
    ops
}

#[test]
fn many_overwritten_pending_writes_check_quickly() {
    let timeout = Some(Duration::from_secs(5));
    let ok = overwritten_pending_writes(40, 39);
    assert_eq!(check(&Register::new(0u32), &ok, timeout), CheckResult::Ok);
    // A final read of a pending value: that write took effect late. The eager order would
    // try every subset of the other pending writes first; the lazy one finds it at once.
    let late = overwritten_pending_writes(40, 1005);
    assert_eq!(check(&Register::new(0u32), &late, timeout), CheckResult::Ok);
    // A final read of a value never written is illegal. Proving it explores the choices of
    // every pending write (exponential), so only a few here.
    let bad = overwritten_pending_writes(8, 7777);
    let result = check(&Register::new(0u32), &bad, timeout);
    assert_eq!(result.violation().map(|v| v.op()), Some(bad.len() - 1));
}
