//! The lab's client loops as state machines ([`Program`]s).

use stepwise_kv::{KvError, KvOutput, KvResult, Op};
use stepwise_sim::Rand64;

use crate::harness::{Event, Next, Program, Report, text};

/// The 2020-2024 concurrent clients: append a unique element to one of `keys` every
/// `period` ticks; remember what was appended, per key, to check afterwards.
pub struct Appender {
    me: u64,
    keys: Vec<String>,
    period: u32,
    n: u64,
    report: Report,
}

impl Appender {
    pub fn new(me: u64, keys: Vec<String>, period: u32) -> Self {
        Appender {
            me,
            keys,
            period,
            n: 0,
            report: Report::default(),
        }
    }

    fn append(&mut self, rng: &mut Rand64) -> Next {
        let key = self.keys[rng.rand_range(0..self.keys.len() as u64) as usize].clone();
        let value = format!("x {} {} y", self.me, self.n);
        self.n += 1;
        Next::Op(Op::append(key, value))
    }
}

impl Program<Report> for Appender {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(op, result) = event {
            if let Err(e) = result {
                return Next::Fail(format!("append failed: {e:?}"));
            }
            if let Op::Append { key, value, .. } = op {
                self.report.ops += 1;
                self.report
                    .appended
                    .entry(text(key))
                    .or_default()
                    .push_str(&text(value));
            }
            if stopping {
                return Next::Stop;
            }
            if self.period > 0 {
                return Next::Sleep(self.period);
            }
        }
        if stopping {
            return Next::Stop;
        }
        self.append(rng)
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

/// (value, version) of a Get result; a missing key is ("", 0).
fn read(result: &KvResult) -> Option<(String, u64)> {
    match result {
        Ok(KvOutput::Value { value, version }) => Some((text(value), *version)),
        Err(KvError::NoKey) => Some((String::new(), 0)),
        _ => None,
    }
}

/// The 2025 lab's OneClientPut: Get the key, Put `"{me} {ver}"` at the version read,
/// again and again. A Put refused with ErrVersion (another client won) is fine.
pub struct Putter {
    me: u64,
    key: String,
    ver: Option<u64>,
    report: Report,
}

impl Putter {
    pub fn new(me: u64, key: String) -> Self {
        Putter {
            me,
            key,
            ver: None,
            report: Report::default(),
        }
    }
}

impl Program<Report> for Putter {
    fn next(&mut self, event: Event<'_>, stopping: bool, _rng: &mut Rand64) -> Next {
        if let Event::Done(op, result) = event {
            self.report.ops += 1;
            match op {
                Op::Get { .. } => match read(result) {
                    Some((_, ver)) => self.ver = Some(ver),
                    None => return Next::Fail(format!("Get failed: {result:?}")),
                },
                _ => match result {
                    Ok(_) | Err(KvError::Version) => self.ver = None,
                    Err(e) => return Next::Fail(format!("Put failed: {e:?}")),
                },
            }
        }
        if stopping {
            return Next::Stop;
        }
        match self.ver {
            None => Next::Op(Op::get(self.key.clone())),
            Some(ver) => Next::Op(Op::put(self.key.clone(), format!("{} {ver}", self.me), ver)),
        }
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

/// TestUnreliable3's clients: random Get, Put or Append on `nkeys` keys.
pub struct RandomOps {
    me: u64,
    nkeys: u64,
    n: u64,
    report: Report,
}

impl RandomOps {
    pub fn new(me: u64, nkeys: u64) -> Self {
        RandomOps {
            me,
            nkeys,
            n: 0,
            report: Report::default(),
        }
    }
}

impl Program<Report> for RandomOps {
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next {
        if let Event::Done(..) = event {
            self.report.ops += 1;
        }
        if stopping {
            return Next::Stop;
        }
        if matches!(event, Event::Done(..)) && rng.rand_range(0..4) == 0 {
            return Next::Sleep(1 + rng.rand_range(0..5) as u32);
        }
        let key = format!("r{}", rng.rand_range(0..self.nkeys));
        self.n += 1;
        let value = format!("({} {})", self.me, self.n);
        Next::Op(match rng.rand_range(0..3) {
            0 => Op::get(key),
            1 => Op::put_any(key, value),
            _ => Op::append(key, value),
        })
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}

/// Reads `keys` round and round (TestProgressJoin's reader), counting completions.
pub struct Reader {
    keys: Vec<String>,
    i: usize,
    report: Report,
}

impl Reader {
    pub fn new(keys: Vec<String>) -> Self {
        Reader {
            keys,
            i: 0,
            report: Report::default(),
        }
    }
}

impl Program<Report> for Reader {
    fn next(&mut self, event: Event<'_>, stopping: bool, _rng: &mut Rand64) -> Next {
        if let Event::Done(_, result) = event {
            if read(result).is_none() {
                return Next::Fail(format!("Get failed: {result:?}"));
            }
            self.report.ops += 1;
        }
        if stopping || self.keys.is_empty() {
            return Next::Stop;
        }
        self.i = (self.i + 1) % self.keys.len();
        Next::Op(Op::get(self.keys[self.i].clone()))
    }

    fn report(&self) -> Report {
        self.report.clone()
    }
}
