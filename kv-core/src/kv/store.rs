//! The [`Kv`] store and its snapshot format.

use std::collections::HashMap;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::hash::KeyHash;
use serde::Serialize;

use super::value::Value;
use super::{KvError, KvOutput, KvResult, Op, OpRef};
use crate::rsm::{DecodeError, StateMachine};

/// Format byte of a [`Kv`] snapshot.
const KV_SNAPSHOT_FORMAT: u8 = 1;

/// A key's value and version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Slot {
    value: Value,
    version: u64,
}

/// The key/value store: a hash map from key to (value, version).
///
/// The map's order never reaches an output: snapshots list the keys sorted, so they are
/// byte-for-byte identical on every replica with the same contents.
///
/// Values up to 1 KiB are owned by the store (copied in, overwritten in place, copied out
/// by Gets); larger ones are kept as the [`Bytes`] they arrived in and shared with Gets. A
/// caller whose large values are slices of larger buffers (network frames) should copy
/// them first, or the whole buffer stays alive; the [`Server`](crate::server::Server)
/// does, and values decoded from the log are always copies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    map: HashMap<Key, Slot, KeyHash>,
}

/// A key as stored: up to 24 bytes inline (no pointer to chase on lookups), longer ones
/// on the heap. Hashes and compares as its bytes.
type Key = SmallVec<[u8; 24]>;

impl Kv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if no key was ever written.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value and version of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<(&[u8], u64)> {
        self.map.get(key).map(|s| (s.value.as_slice(), s.version))
    }

    /// Reads `key`: its value and version, or [`KvError::NoKey`].
    pub fn read(&self, key: &[u8]) -> KvResult {
        match self.map.get(key) {
            Some(s) => Ok(KvOutput::Value {
                value: s.value.to_bytes(),
                version: s.version,
            }),
            None => Err(KvError::NoKey),
        }
    }

    /// Applies one operation.
    pub fn apply_op(&mut self, op: Op) -> KvResult {
        match op {
            Op::Get { key } => self.read(&key),
            Op::Put {
                key,
                value,
                version,
            } => self.put(key, value, version),
            Op::Append {
                key,
                value,
                return_old,
            } => self.append(key, value, return_old),
            Op::Delete { key } => self.delete(&key),
            Op::Incr { key, by } => self.incr(&key, by),
        }
    }

    /// Applies one operation decoded from the log (copies only what it keeps).
    pub fn apply_ref(&mut self, op: OpRef<'_>) -> KvResult {
        match op {
            OpRef::Get { key } => self.read(key),
            OpRef::Put {
                key,
                value,
                version,
            } => self.put(key, value, version),
            OpRef::Append {
                key,
                value,
                return_old,
            } => self.append(key, value, return_old),
            OpRef::Delete { key } => self.delete(key),
            OpRef::Incr { key, by } => self.incr(key, by),
        }
    }

    fn delete(&mut self, key: &[u8]) -> KvResult {
        Ok(KvOutput::Deleted {
            existed: self.map.remove(key).is_some(),
        })
    }

    fn incr(&mut self, key: &[u8], by: i64) -> KvResult {
        let old = match self.map.get(key) {
            Some(slot) => parse_i64(slot.value.as_slice()).ok_or(KvError::NotInteger)?,
            None => 0,
        };
        let value = old.checked_add(by).ok_or(KvError::Overflow)?;
        let text = value.to_string();
        let slot = match self.map.get_mut(key) {
            Some(slot) => slot,
            None => self.map.entry(Key::from_slice(key)).or_default(),
        };
        slot.value.set(text.as_bytes());
        slot.version += 1;
        Ok(KvOutput::Number {
            value,
            version: slot.version,
        })
    }

    fn put(&mut self, key: impl Stored, value: impl Stored, version: Option<u64>) -> KvResult {
        if let Some(slot) = self.map.get_mut(key.as_ref()) {
            if version.is_some_and(|v| v != slot.version) {
                return Err(KvError::Version);
            }
            value.overwrite(&mut slot.value);
            slot.version += 1;
            return Ok(KvOutput::Written {
                version: slot.version,
            });
        }
        match version {
            Some(0) | None => {
                let slot = Slot {
                    value: value.into_value(),
                    version: 1,
                };
                self.map.insert(Key::from_slice(key.as_ref()), slot);
                Ok(KvOutput::Written { version: 1 })
            }
            Some(_) => Err(KvError::NoKey),
        }
    }

    fn append(&mut self, key: impl Stored, value: impl Stored, return_old: bool) -> KvResult {
        let slot = match self.map.get_mut(key.as_ref()) {
            Some(slot) => slot,
            None => self.map.entry(Key::from_slice(key.as_ref())).or_default(),
        };
        let old = std::mem::take(&mut slot.value);
        let suffix = value.as_ref();
        let mut joined = Vec::with_capacity(old.len() + suffix.len());
        joined.extend_from_slice(old.as_slice());
        joined.extend_from_slice(suffix);
        slot.value = Value::from_vec(joined);
        slot.version += 1;
        Ok(if return_old {
            KvOutput::Appended {
                old: old.into_bytes(),
                version: slot.version,
            }
        } else {
            KvOutput::Written {
                version: slot.version,
            }
        })
    }

    /// Approximate heap bytes held by keys and values (not counting map overhead).
    pub fn payload_bytes(&self) -> usize {
        self.map.iter().map(|(k, s)| k.len() + s.value.len()).sum()
    }
}

/// Parses a 64-bit signed integer written in decimal the way Redis accepts it for INCR: an
/// optional `-`, then digits without leading zeros (`0` alone is fine), nothing else.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == text.len(), // "0", not "-0"
        [first, ..] => *first != b'0',
    };
    if !canonical || text.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Digits only, at most 20 bytes: valid UTF-8; out of range fails the parse.
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Serializes a byte slice as bytes (not as a sequence of numbers).
struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// A key or value handed to the store: owned (moved in) or borrowed (copied if kept).
trait Stored: AsRef<[u8]> + Sized {
    /// The value to store.
    fn into_value(self) -> Value;

    /// Makes `slot` hold this value.
    fn overwrite(self, slot: &mut Value) {
        *slot = self.into_value();
    }
}

impl Stored for Bytes {
    fn into_value(self) -> Value {
        Value::from_bytes(self)
    }
}

impl Stored for &[u8] {
    fn into_value(self) -> Value {
        Value::copy_from(self)
    }

    /// In place when the old value is small and of the same length (the common
    /// overwrite), instead of freeing one buffer and allocating another.
    fn overwrite(self, slot: &mut Value) {
        slot.set(self);
    }
}

impl StateMachine for Kv {
    type Command = Op;
    type Decoded<'a> = OpRef<'a>;
    type Query = Bytes;
    type Output = KvResult;

    fn apply(&mut self, op: OpRef<'_>) -> KvResult {
        self.apply_ref(op)
    }

    fn query(&self, key: &Bytes) -> KvResult {
        self.read(key)
    }

    fn encode_command(op: &Op, out: &mut Vec<u8>) {
        super::codec::encode(op, out);
    }

    fn decode_command(data: &[u8]) -> Result<OpRef<'_>, DecodeError> {
        super::codec::decode(data)
    }

    /// The codec round-trips every operation exactly (its tests check each kind).
    fn view_command(command: &Op) -> Option<OpRef<'_>> {
        Some(command.as_op_ref())
    }

    fn snapshot(&self, out: &mut Vec<u8>) {
        out.push(KV_SNAPSHOT_FORMAT);
        let mut buf = std::mem::take(out);
        // Invariant: plain data serializes into a Vec without failing.
        buf = postcard::to_extend(&(self.map.len() as u64), buf).expect("u64 serializes");
        let mut sorted: Vec<(&Key, &Slot)> = self.map.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, slot) in sorted {
            buf = postcard::to_extend(
                &(AsBytes(key), AsBytes(slot.value.as_slice()), slot.version),
                buf,
            )
            .expect("bytes serialize");
        }
        *out = buf;
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let (&format, body) = data.split_first().ok_or("empty kv snapshot")?;
        if format != KV_SNAPSHOT_FORMAT {
            return Err(format!("unknown kv snapshot format {format}"));
        }
        let (count, mut rest) =
            postcard::take_from_bytes::<u64>(body).map_err(|e| e.to_string())?;
        let mut map = HashMap::with_capacity_and_hasher(
            usize::try_from(count).unwrap_or(0).min(rest.len() / 3),
            KeyHash::default(),
        );
        for _ in 0..count {
            let ((key, value, version), r) = postcard::take_from_bytes::<(&[u8], &[u8], u64)>(rest)
                .map_err(|e| e.to_string())?;
            rest = r;
            if map
                .insert(
                    Key::from_slice(key),
                    Slot {
                        value: Value::copy_from(value),
                        version,
                    },
                )
                .is_some()
            {
                return Err("a key appears twice in the kv snapshot".into());
            }
        }
        if !rest.is_empty() {
            return Err("trailing bytes after the kv snapshot".into());
        }
        self.map = map;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str, version: u64) -> KvResult {
        Ok(KvOutput::Value {
            value: Bytes::copy_from_slice(v.as_bytes()),
            version,
        })
    }

    #[test]
    fn versioned_put_follows_the_2025_rules() {
        let mut kv = Kv::new();
        assert_eq!(kv.apply_op(Op::get("k")), Err(KvError::NoKey));
        // A missing key with a version above 0: ErrNoKey.
        assert_eq!(kv.apply_op(Op::put("k", "x", 1)), Err(KvError::NoKey));
        assert_eq!(
            kv.apply_op(Op::put("k", "6.5840", 0)),
            Ok(KvOutput::Written { version: 1 })
        );
        assert_eq!(kv.apply_op(Op::get("k")), value("6.5840", 1));
        assert_eq!(kv.apply_op(Op::put("k", "y", 0)), Err(KvError::Version));
        assert_eq!(kv.apply_op(Op::put("k", "y", 2)), Err(KvError::Version));
        assert_eq!(
            kv.apply_op(Op::put("k", "y", 1)),
            Ok(KvOutput::Written { version: 2 })
        );
        assert_eq!(kv.apply_op(Op::get("k")), value("y", 2));
    }

    #[test]
    fn unconditional_put_and_append() {
        let mut kv = Kv::new();
        assert_eq!(
            kv.apply_op(Op::append("a", "x")),
            Ok(KvOutput::Written { version: 1 })
        );
        assert_eq!(
            kv.apply_op(Op::append_return("a", "y")),
            Ok(KvOutput::Appended {
                old: Bytes::from_static(b"x"),
                version: 2
            })
        );
        assert_eq!(
            kv.apply_op(Op::append_return("b", "z")),
            Ok(KvOutput::Appended {
                old: Bytes::new(),
                version: 1
            })
        );
        assert_eq!(
            kv.apply_op(Op::put_any("a", "p")),
            Ok(KvOutput::Written { version: 3 })
        );
        assert_eq!(
            kv.apply_op(Op::put_any("c", "q")),
            Ok(KvOutput::Written { version: 1 })
        );
        assert_eq!(kv.apply_op(Op::get("a")), value("p", 3));
        assert_eq!(kv.apply_op(Op::get("b")), value("z", 1));
        assert_eq!(kv.len(), 3);
        assert_eq!(kv.payload_bytes(), 6);
    }

    #[test]
    fn overwrites_reuse_a_buffer_nobody_else_holds_but_never_one_in_use() {
        let mut kv = Kv::new();
        kv.apply_ref(OpRef::Put {
            key: b"k",
            value: b"aaaa",
            version: None,
        })
        .unwrap();
        let before = kv.get(b"k").unwrap().0.as_ptr();
        kv.apply_ref(OpRef::Put {
            key: b"k",
            value: b"bbbb",
            version: None,
        })
        .unwrap();
        let (v, _) = kv.get(b"k").unwrap();
        assert_eq!((v, v.as_ptr()), (&b"bbbb"[..], before));
        // A reader holds the value: it must keep seeing it.
        let Ok(KvOutput::Value { value: held, .. }) = kv.read(b"k") else {
            panic!("k is there");
        };
        kv.apply_ref(OpRef::Put {
            key: b"k",
            value: b"cccc",
            version: None,
        })
        .unwrap();
        assert_eq!(&held[..], b"bbbb");
        assert_eq!(kv.get(b"k").unwrap().0, b"cccc");
    }

    #[test]
    fn delete_removes_and_incr_counts() {
        let mut kv = Kv::new();
        assert_eq!(
            kv.apply_op(Op::delete("k")),
            Ok(KvOutput::Deleted { existed: false })
        );
        kv.apply_op(Op::put_any("k", "v")).unwrap();
        assert_eq!(
            kv.apply_op(Op::delete("k")),
            Ok(KvOutput::Deleted { existed: true })
        );
        assert_eq!(kv.apply_op(Op::get("k")), Err(KvError::NoKey));
        // A deleted key is missing again: version 0 creates it.
        assert_eq!(
            kv.apply_op(Op::put("k", "w", 0)),
            Ok(KvOutput::Written { version: 1 })
        );
        // An empty value is a value, not a deletion.
        kv.apply_op(Op::put_any("e", "")).unwrap();
        assert_eq!(kv.apply_op(Op::get("e")), value("", 1));

        assert_eq!(
            kv.apply_op(Op::incr("n", 5)),
            Ok(KvOutput::Number {
                value: 5,
                version: 1
            })
        );
        assert_eq!(
            kv.apply_op(Op::incr("n", -7)),
            Ok(KvOutput::Number {
                value: -2,
                version: 2
            })
        );
        assert_eq!(kv.apply_op(Op::get("n")), value("-2", 2));
        assert_eq!(kv.apply_op(Op::incr("e", 1)), Err(KvError::NotInteger));
        kv.apply_op(Op::put_any("max", i64::MAX.to_string()))
            .unwrap();
        assert_eq!(kv.apply_op(Op::incr("max", 1)), Err(KvError::Overflow));
        assert_eq!(kv.apply_op(Op::get("max")), value(&i64::MAX.to_string(), 1));
    }

    #[test]
    fn incr_accepts_only_canonical_decimal_integers() {
        for good in [
            "0",
            "7",
            "-7",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(parse_i64(good.as_bytes()), good.parse().ok(), "{good}");
        }
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "9223372036854775808",
            "0x10",
            "١",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn snapshots_do_not_depend_on_insertion_order() {
        let (mut a, mut b) = (Kv::new(), Kv::new());
        for i in 0..100u32 {
            a.apply_op(Op::put_any(format!("k{i}"), "v")).unwrap();
            b.apply_op(Op::put_any(format!("k{}", 99 - i), "v"))
                .unwrap();
        }
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        a.snapshot(&mut sa);
        b.snapshot(&mut sb);
        assert_eq!(sa, sb);
    }

    #[test]
    fn snapshots_round_trip_and_bad_ones_are_refused() {
        let mut kv = Kv::new();
        for i in 0..50u32 {
            kv.apply_op(Op::append(format!("k{}", i % 7), format!("v{i}")))
                .unwrap();
        }
        let mut buf = Vec::new();
        kv.snapshot(&mut buf);
        let mut back = Kv::new();
        back.restore(&buf).unwrap();
        assert_eq!(back, kv);
        // Deterministic: the same state gives the same bytes.
        let mut again = Vec::new();
        back.snapshot(&mut again);
        assert_eq!(again, buf);
        for cut in 0..buf.len() {
            assert!(Kv::new().restore(&buf[..cut]).is_err(), "prefix {cut}");
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert!(Kv::new().restore(&extra).is_err());
    }
}
