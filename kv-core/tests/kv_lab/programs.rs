//! The lab's client loops as state machines ([`Program`]s).

use std::collections::BTreeMap;

use bytes::Bytes;
use stepwise_kv::{KvError, KvOutput, KvResult, Lock, LockStep, Op};
use stepwise_sim::{NodeId, Rand64, SEC};

use crate::harness::{Event, KvTester, Next, Program, ProgramTester, Report, text};

/// (value, version) of a Get result; a missing key is ("", 0).
fn read(result: &KvResult) -> Option<(String, u64)> {
    match result {
        Ok(KvOutput::Value { value, version }) => Some((text(value), *version)),
        Err(KvError::NoKey) => Some((String::new(), 0)),
        _ => None,
    }
}

// ----- 2025: OneClientPut ----------------------------------------------------------------

enum PutPhase {
    Top,
    Putting {
        key: String,
        ver: u64,
    },
    Getting {
        key: String,
        ver: u64,
        err: Option<KvError>,
    },
}

/// The lab's OneClientPut / OnePut (kvtest.go): Put `{me, ver}` at `ver`, Get, check that
/// an OK Put at `ver` left our entry (or one at `ver`), follow the version, count OK and
/// Maybe Puts.
pub struct OneClientPut {
    me: u64,
    keys: Vec<String>,
    random_keys: bool,
    verm: BTreeMap<String, u64>,
    phase: PutPhase,
    report: Report,
}

impl OneClientPut {
    pub fn new(me: u64, keys: Vec<String>, random_keys: bool) -> Self {
        let verm = keys.iter().map(|k| (k.clone(), 0)).collect();
        OneClientPut {
            me,
            keys,
            random_keys,
            verm,
            phase: PutPhase::Top,
            report: Report::default(),
        }
    }

    fn put(&mut self, key: String, ver: u64) -> Next {
        let value = format!("{} {}", self.me, ver);
        let op = Op::put(key.clone(), value, ver);
        self.phase = PutPhase::Putting { key, ver };
        Next::Op(op)
    }
}

impl Program<Report> for OneClientPut {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(..) = event {
            self.report.ops += 1;
        }
        match (std::mem::replace(&mut self.phase, PutPhase::Top), event) {
            (PutPhase::Top, _) => {
                if stopping {
                    return Next::Stop;
                }
                let key = if self.random_keys {
                    self.keys[rng.rand_range(0..self.keys.len() as u64) as usize].clone()
                } else {
                    self.keys[0].clone()
                };
                let ver = self.verm[&key];
                self.put(key, ver)
            }
            (PutPhase::Putting { key, ver }, Event::Done(_, result)) => {
                let err = match result {
                    Ok(_) => None,
                    Err(e @ (KvError::Version | KvError::Maybe)) => Some(*e),
                    Err(e) => return Next::Fail(format!("OnePut: wrong error {e:?}")),
                };
                self.phase = PutPhase::Getting {
                    key: key.clone(),
                    ver,
                    err,
                };
                Next::Op(Op::get(key))
            }
            (PutPhase::Getting { key, ver, err }, Event::Done(_, result)) => {
                let Some((value, ver0)) = read(result) else {
                    return Next::Fail(format!("OnePut: Get failed {result:?}"));
                };
                if err.is_none() && ver0 == ver + 1 {
                    let mut parts = value.split(' ');
                    let id: Option<u64> = parts.next().and_then(|p| p.parse().ok());
                    let v: Option<u64> = parts.next().and_then(|p| p.parse().ok());
                    if id != Some(self.me) && v != Some(ver) {
                        return Next::Fail(format!("OnePut: wrong value {value:?}"));
                    }
                }
                self.verm.insert(key.clone(), ver0);
                match err {
                    None => self.report.ok += 1,
                    Some(KvError::Maybe) => self.report.maybe += 1,
                    // ErrVersion: retry at the version just read.
                    _ => return self.put(key, ver0),
                }
                if stopping {
                    return Next::Stop;
                }
                self.next(Event::Start, stopping, rng)
            }
            (phase, _) => {
                // Woken while an operation is pending: keep waiting.
                self.phase = phase;
                Next::Sleep(1)
            }
        }
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

// ----- 2020-2024: GenericTest client ---------------------------------------------------------

enum AppendPhase {
    Init,
    Top,
    Appending { nv: String },
    Putting,
    Getting,
}

/// The 2020-2024 GenericTest client: Put its own key to "", then 50% Append
/// `"x <cli> <j> y"`, with random keys 10% of the rest Put, else Get (which must equal the
/// locally predicted value when keys are not random). With `return_old` (the 2024 kvsrv),
/// the Append returns the old value, which must contain our previous element and not the
/// new one.
pub struct AppendClient {
    cli: u64,
    key: String,
    nkeys: Option<u64>,
    return_old: bool,
    /// Appends to our own key (j).
    j: u64,
    last: String,
    phase: AppendPhase,
    cur_key: String,
    report: Report,
}

impl AppendClient {
    pub fn new(cli: u64, key: String, random_keys: Option<u64>, return_old: bool) -> Self {
        AppendClient {
            cli,
            key,
            nkeys: random_keys,
            return_old,
            j: 0,
            last: String::new(),
            phase: AppendPhase::Init,
            cur_key: String::new(),
            report: Report::default(),
        }
    }

    fn element(&self, j: u64) -> String {
        format!("x {} {} y", self.cli, j)
    }

    fn pick_key(&mut self, rng: &mut Rand64) -> String {
        match self.nkeys {
            Some(n) => rng.rand_range(0..n).to_string(),
            None => self.key.clone(),
        }
    }
}

impl Program<Report> for AppendClient {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(..) = event {
            self.report.ops += 1;
        }
        match std::mem::replace(&mut self.phase, AppendPhase::Top) {
            AppendPhase::Init if self.nkeys.is_none() => {
                self.phase = AppendPhase::Putting;
                self.cur_key = self.key.clone();
                return Next::Op(Op::put_any(self.key.clone(), ""));
            }
            AppendPhase::Init | AppendPhase::Top | AppendPhase::Putting => {}
            AppendPhase::Appending { nv } => {
                let Event::Done(_, result) = event else {
                    unreachable!("woken only between operations")
                };
                match result {
                    Ok(KvOutput::Appended { old, .. }) if self.return_old => {
                        let old = text(old);
                        if self.nkeys.is_none() {
                            if self.j > 0 && !old.contains(&self.element(self.j - 1)) {
                                return Next::Fail(format!(
                                    "Append: old value {old:?} lacks the previous element"
                                ));
                            }
                            if old.contains(&nv) {
                                return Next::Fail(format!(
                                    "Append: old value {old:?} already holds {nv:?}"
                                ));
                            }
                        }
                    }
                    Ok(KvOutput::Written { .. }) if !self.return_old => {}
                    other => return Next::Fail(format!("Append returned {other:?}")),
                }
                if self.cur_key == self.key {
                    self.report.appends.push((self.cur_key.clone(), nv.clone()));
                }
                if self.nkeys.is_none() {
                    self.last.push_str(&nv);
                }
                self.j += 1;
            }
            AppendPhase::Getting => {
                let Event::Done(_, result) = event else {
                    unreachable!("woken only between operations")
                };
                let Some((v, _)) = read(result) else {
                    return Next::Fail(format!("Get returned {result:?}"));
                };
                if self.nkeys.is_none() && v != self.last {
                    return Next::Fail(format!(
                        "get wrong value, key {}, wanted:\n{:?}\n, got\n{:?}",
                        self.key, self.last, v
                    ));
                }
            }
        }
        if stopping {
            self.report.ops = self.j;
            return Next::Stop;
        }
        let r = rng.rand_range(0..1000);
        self.cur_key = self.pick_key(rng);
        if r < 500 {
            let nv = self.element(self.j);
            self.phase = AppendPhase::Appending { nv: nv.clone() };
            Next::Op(Op::Append {
                key: Bytes::from(self.cur_key.clone()),
                value: Bytes::from(nv),
                return_old: self.return_old,
            })
        } else if self.nkeys.is_some() && rng.rand_range(0..1000) < 100 {
            let nv = self.element(self.j);
            self.j += 1;
            self.phase = AppendPhase::Putting;
            Next::Op(Op::put_any(self.cur_key.clone(), nv))
        } else {
            self.phase = AppendPhase::Getting;
            Next::Op(Op::get(self.cur_key.clone()))
        }
    }

    fn report(&self) -> Report {
        let mut r = self.report.clone();
        r.ops = self.j;
        r
    }
}

/// Appends `"x <cli> <n> y"` to one key `upto` times, then stops (the lab's
/// UnreliableOneKey clients).
pub struct FixedAppends {
    cli: u64,
    key: String,
    upto: u64,
    n: u64,
    return_old: bool,
}

impl FixedAppends {
    pub fn new(cli: u64, key: &str, upto: u64, return_old: bool) -> Self {
        FixedAppends {
            cli,
            key: key.to_owned(),
            upto,
            n: 0,
            return_old,
        }
    }
}

impl Program<Report> for FixedAppends {
    fn next(&mut self, event: Event<'_>, _stopping: bool, _rng: &mut Rand64) -> Next {
        if let Event::Done(_, result) = event {
            if result.is_err() {
                return Next::Fail(format!("Append returned {result:?}"));
            }
            self.n += 1;
        }
        if self.n == self.upto {
            return Next::Stop;
        }
        Next::Op(Op::Append {
            key: Bytes::from(self.key.clone()),
            value: Bytes::from(format!("x {} {} y", self.cli, self.n)),
            return_old: self.return_old,
        })
    }

    fn report(&self) -> Report {
        Report {
            ops: self.n,
            ..Report::default()
        }
    }
}

/// The lab's one-key append test: after a Put of "" to "k", `nclient` clients each append
/// `upto` elements to "k" ([`FixedAppends`]); then every client's elements must be in the
/// value once and in order, and the history linearizable.
pub fn one_key_appends(t: &mut KvTester, nclient: usize, upto: u64) {
    let ck = t.clerk(0);
    t.op(ck, Op::put_any("k", "")).expect("Put");
    let programs: Vec<(NodeId, Box<dyn Program<Report>>)> = (0..nclient)
        .map(|cli| {
            let p: Box<dyn Program<Report>> =
                Box::new(FixedAppends::new(cli as u64, "k", upto, true));
            (t.clerk(cli + 1), p)
        })
        .collect();
    let clerks: Vec<NodeId> = programs.iter().map(|(c, _)| *c).collect();
    t.run_programs(programs);
    t.stop_programs(&clerks, 120 * SEC);
    let (v, _) = t.get(ck, "k");
    for cli in 0..nclient {
        if let Err(e) = check_clnt_appends(cli as u64, &v, upto) {
            t.fail(&e);
        }
    }
    t.check_legacy();
}

/// The lab's checkClntAppends: every append of client `cli` (`count` of them) is in `v`
/// exactly once and in order. Returns the problem, if any.
pub fn check_clnt_appends(cli: u64, v: &str, count: u64) -> Result<(), String> {
    let mut lastoff = None;
    for j in 0..count {
        let wanted = format!("x {cli} {j} y");
        let Some(off) = v.find(&wanted) else {
            return Err(format!(
                "{cli} missing element {wanted:?} in Append result {v:?}"
            ));
        };
        if v.rfind(&wanted) != Some(off) {
            return Err(format!("duplicate element {wanted:?} in Append result"));
        }
        if lastoff.is_some_and(|l| off <= l) {
            return Err(format!(
                "wrong order for element {wanted:?} in Append result"
            ));
        }
        lastoff = Some(off);
    }
    Ok(())
}

// ----- 2025: lock client ----------------------------------------------------------------------

enum LockPhase {
    Start,
    /// The initial Put("l0", "", 0), whose result is ignored.
    InitPut,
    Acquiring,
    /// Someone else holds the lock: run this after the wait.
    AcquireWait(Op),
    Checking,
    Setting {
        ver: u64,
    },
    Sleeping {
        ver: u64,
    },
    Clearing,
    Releasing,
}

/// The lab's lock client loop (lock_test.go): acquire, check "l0" is empty, write our id,
/// sleep 10 ms, clear it, release; stop only between cycles.
pub struct LockClient {
    me: u64,
    lock: Lock,
    phase: LockPhase,
    report: Report,
}

impl LockClient {
    pub fn new(me: u64) -> Self {
        LockClient {
            me,
            lock: Lock::new("l", format!("owner-{me}"), 1),
            phase: LockPhase::Start,
            report: Report::default(),
        }
    }

    fn top(&mut self, stopping: bool) -> Next {
        if stopping {
            return Next::Stop;
        }
        self.phase = LockPhase::Acquiring;
        Next::Op(self.lock.acquire())
    }

    fn lock_step(&mut self, step: LockStep, stopping: bool) -> Next {
        match step {
            LockStep::Run(op) => Next::Op(op),
            LockStep::Wait { ticks, op } => {
                self.phase = LockPhase::AcquireWait(op);
                Next::Sleep(ticks)
            }
            LockStep::Acquired => {
                self.phase = LockPhase::Checking;
                Next::Op(Op::get("l0"))
            }
            LockStep::Released => {
                self.report.ops += 1;
                self.top(stopping)
            }
        }
    }
}

impl Program<Report> for LockClient {
    fn next(&mut self, event: Event<'_>, stopping: bool, _rng: &mut Rand64) -> Next {
        let me = self.me;
        match (std::mem::replace(&mut self.phase, LockPhase::Start), event) {
            (LockPhase::Start, _) => {
                self.phase = LockPhase::InitPut;
                Next::Op(Op::put("l0", "", 0))
            }
            (LockPhase::InitPut, Event::Done(..)) => self.top(stopping),
            (phase @ (LockPhase::Acquiring | LockPhase::Releasing), Event::Done(_, result)) => {
                self.phase = phase;
                let step = self.lock.on_result(result);
                self.lock_step(step, stopping)
            }
            (LockPhase::AcquireWait(op), Event::Woke) => {
                self.phase = LockPhase::Acquiring;
                Next::Op(op)
            }
            (LockPhase::Checking, Event::Done(_, result)) => match result {
                Ok(KvOutput::Value { value, version }) if value.is_empty() => {
                    let ver = *version;
                    self.phase = LockPhase::Setting { ver };
                    Next::Op(Op::put("l0", me.to_string(), ver))
                }
                Ok(KvOutput::Value { value, .. }) => {
                    Next::Fail(format!("{me}: two clients acquired lock {:?}", text(value)))
                }
                other => Next::Fail(format!("{me}: Get(l0) returned {other:?}")),
            },
            (LockPhase::Setting { ver }, Event::Done(_, result)) => match result {
                Ok(_) | Err(KvError::Maybe) => {
                    self.phase = LockPhase::Sleeping { ver };
                    Next::Sleep(1)
                }
                other => Next::Fail(format!("{me}: Put(l0, me) returned {other:?}")),
            },
            (LockPhase::Sleeping { ver }, Event::Woke) => {
                self.phase = LockPhase::Clearing;
                Next::Op(Op::put("l0", "", ver + 1))
            }
            (LockPhase::Clearing, Event::Done(_, result)) => match result {
                Ok(_) | Err(KvError::Maybe) => {
                    self.phase = LockPhase::Releasing;
                    Next::Op(self.lock.release())
                }
                other => Next::Fail(format!("{me}: Put(l0, \"\") returned {other:?}")),
            },
            (phase, _) => {
                // Woken by the stop signal while an operation or a wait is pending:
                // carry on with the cycle.
                let waiting = matches!(
                    phase,
                    LockPhase::AcquireWait(_) | LockPhase::Sleeping { .. }
                );
                self.phase = phase;
                if waiting {
                    Next::Sleep(1)
                } else {
                    Next::Fail(format!("{me}: unexpected event in lock client"))
                }
            }
        }
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

// ----- randomized schedules -----------------------------------------------------------------

/// A random mix of versioned Gets and Puts over a few keys, following the versions it
/// reads (used by the randomized fault schedules).
pub struct RandomVersioned {
    me: u64,
    keys: u64,
    verm: BTreeMap<u64, u64>,
    pending: Option<(u64, bool)>,
    report: Report,
}

impl RandomVersioned {
    pub fn new(me: u64, keys: u64) -> Self {
        RandomVersioned {
            me,
            keys,
            verm: BTreeMap::new(),
            pending: None,
            report: Report::default(),
        }
    }
}

impl Program<Report> for RandomVersioned {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let (Event::Done(_, result), Some((k, is_put))) = (event, self.pending.take()) {
            self.report.ops += 1;
            match result {
                Ok(KvOutput::Value { version, .. }) => {
                    self.verm.insert(k, *version);
                }
                Err(KvError::NoKey) => {
                    self.verm.insert(k, 0);
                }
                Ok(KvOutput::Written { version }) => {
                    self.report.ok += 1;
                    self.verm.insert(k, *version);
                }
                Err(KvError::Maybe) => self.report.maybe += 1,
                Err(KvError::Version) if is_put => {}
                other => return Next::Fail(format!("unexpected result {other:?}")),
            }
        }
        if stopping {
            return Next::Stop;
        }
        let k = rng.rand_range(0..self.keys);
        let key = format!("r{k}");
        if rng.rand_range(0..2) == 0 {
            self.pending = Some((k, false));
            Next::Op(Op::get(key))
        } else {
            let ver = self.verm.get(&k).copied().unwrap_or(0);
            self.pending = Some((k, true));
            Next::Op(Op::put(
                key,
                format!("{} {}", self.me, rng.rand_u64() % 1000),
                ver,
            ))
        }
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

/// Appends unique elements to per-client keys (for the "no acknowledged write lost"
/// check) and reads them back, checking each read against the acknowledged appends.
pub struct Appender {
    cli: u64,
    j: u64,
    acked: String,
    in_flight: Option<String>,
    reading: bool,
    report: Report,
}

impl Appender {
    pub fn new(cli: u64) -> Self {
        Appender {
            cli,
            j: 0,
            acked: String::new(),
            in_flight: None,
            reading: false,
            report: Report::default(),
        }
    }

    fn key(&self) -> String {
        format!("a{}", self.cli)
    }
}

impl Program<Report> for Appender {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(_, result) = event {
            self.report.ops += 1;
            if let Some(nv) = self.in_flight.take() {
                match result {
                    Ok(KvOutput::Written { .. }) => {
                        self.acked.push_str(&nv);
                        self.report.appends.push((self.key(), nv));
                        self.j += 1;
                    }
                    other => return Next::Fail(format!("Append returned {other:?}")),
                }
            } else if std::mem::take(&mut self.reading) {
                let Some((v, _)) = read(result) else {
                    return Next::Fail(format!("Get returned {result:?}"));
                };
                // Only this client writes its key, with exactly-once appends.
                if v != self.acked {
                    return Next::Fail(format!(
                        "read {v:?} but acknowledged appends are {:?}",
                        self.acked
                    ));
                }
            }
        }
        if stopping {
            return Next::Stop;
        }
        if rng.rand_range(0..3) == 0 {
            self.reading = true;
            Next::Op(Op::get(self.key()))
        } else {
            let nv = format!("x {} {} y", self.cli, self.j);
            self.in_flight = Some(nv.clone());
            Next::Op(Op::append(self.key(), nv))
        }
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

// ----- Delete and Incr ------------------------------------------------------------------

/// A value as Incr reads it: canonical decimal (what `Kv` accepts).
fn as_i64(value: &str) -> Option<i64> {
    value.parse::<i64>().ok().filter(|n| n.to_string() == value)
}

/// Increments, decrements, deletes, overwrites and reads a counter key of its own, `n<cli>`,
/// checking every answer against what its acknowledged operations left there (only this
/// client writes the key, so an Incr or Delete applied twice or lost shows at once); now
/// and then it Puts a non-integer or `i64::MAX` there so that Incr fails (NotInteger,
/// Overflow). It also Incrs, Deletes and reads the key `c` shared by all counters, which
/// only the linearizability check judges.
pub struct Counter {
    cli: u64,
    j: u64,
    /// What the own key holds after the acknowledged operations (`None`: missing).
    expected: Option<String>,
    /// The operation on the own key awaiting its answer.
    in_flight: Option<Op>,
    report: Report,
}

impl Counter {
    pub fn new(cli: u64) -> Self {
        Counter {
            cli,
            j: 0,
            expected: None,
            in_flight: None,
            report: Report::default(),
        }
    }

    pub fn key(cli: u64) -> String {
        format!("n{cli}")
    }

    /// Checks `result` of `op` on the own key and moves `expected` on.
    fn answer(&mut self, op: Op, result: &KvResult) -> Result<(), String> {
        let expected = self.expected.as_deref();
        match (&op, result) {
            (Op::Get { .. }, _) => match read(result) {
                Some((v, _)) if v == expected.unwrap_or_default() => Ok(()),
                _ => Err(format!("Get returned {result:?}, expected {expected:?}")),
            },
            (Op::Put { value, .. }, Ok(KvOutput::Written { .. })) => {
                self.expected = Some(text(value));
                Ok(())
            }
            (Op::Delete { .. }, Ok(KvOutput::Deleted { existed }))
                if *existed == expected.is_some() =>
            {
                self.expected = None;
                Ok(())
            }
            (Op::Incr { by, .. }, _) => {
                let sum = match expected {
                    None => Some(*by),
                    Some(v) => as_i64(v).and_then(|n| n.checked_add(*by)),
                };
                match (sum, result) {
                    (Some(sum), Ok(KvOutput::Number { value, .. })) if *value == sum => {
                        self.expected = Some(sum.to_string());
                        Ok(())
                    }
                    (None, Err(KvError::NotInteger | KvError::Overflow)) => Ok(()),
                    _ => Err(format!("Incr by {by} on {expected:?} returned {result:?}")),
                }
            }
            _ => Err(format!("{op:?} on {expected:?} returned {result:?}")),
        }
    }
}

impl Program<Report> for Counter {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(_, result) = event {
            self.report.ops += 1;
            if let Some(op) = self.in_flight.take()
                && let Err(why) = self.answer(op, result)
            {
                return Next::Fail(why);
            }
        }
        if stopping {
            return Next::Stop;
        }
        let key = Self::key(self.cli);
        let by = rng.rand_range(0..9) as i64 - 3;
        let op = match rng.rand_range(0..20) {
            0..=3 => Op::get(key),
            4..=10 => Op::incr(key, by),
            11 | 12 => Op::delete(key),
            13 => {
                self.j += 1;
                if self.j.is_multiple_of(2) {
                    Op::put_any(key, i64::MAX.to_string())
                } else {
                    Op::put_any(key, format!("x{}.{}", self.cli, self.j))
                }
            }
            14..=16 => return Next::Op(Op::incr("c", by)),
            17 => return Next::Op(Op::delete("c")),
            _ => return Next::Op(Op::get("c")),
        };
        self.in_flight = Some(op.clone());
        Next::Op(op)
    }

    fn report(&self) -> Report {
        let mut report = self.report.clone();
        report.finals = vec![(Self::key(self.cli), self.expected.clone())];
        report
    }
}
