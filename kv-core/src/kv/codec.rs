//! The log format of KV commands: how an [`Op`] is written into a Raft entry and read back
//! as an [`OpRef`] that borrows key and value from the entry. Hand-written because every
//! replicated write goes through it (encoded once, decoded on every replica):
//!
//! ```text
//! op     = 0x00 key                           Get
//!        | 0x01 key value                     Put (unconditional)
//!        | 0x02 varint(version) key value     Put (versioned)
//!        | 0x03 key value                     Append
//!        | 0x04 key value                     Append, returning the old value
//!        | 0x05 key                           Delete
//!        | 0x06 i64(by) key                   Incr (by: 8 bytes, little endian)
//! key    = varint(length) bytes
//! value  = the remaining bytes (the layer frames every command with its length)
//! ```

use crate::rsm::DecodeError;
use crate::rsm::codec::{put_varint, take_bytes, take_varint};

use super::{Op, OpRef};

const GET: u8 = 0;
const PUT: u8 = 1;
const PUT_VERSIONED: u8 = 2;
const APPEND: u8 = 3;
const APPEND_RETURN_OLD: u8 = 4;
const DELETE: u8 = 5;
const INCR: u8 = 6;

/// Appends `op`'s log encoding to `out`.
pub(crate) fn encode(op: &Op, out: &mut Vec<u8>) {
    // The common replicated write, an unconditional Put with a key under 128 bytes: one
    // reservation, a two-byte header, two copies (the same bytes as the general path).
    if let Op::Put {
        key,
        value,
        version: None,
    } = op
        && key.len() < 0x80
    {
        out.reserve(2 + key.len() + value.len());
        out.extend_from_slice(&[PUT, key.len() as u8]);
        out.extend_from_slice(key);
        out.extend_from_slice(value);
        return;
    }
    let (key, value): (&[u8], &[u8]) = match op {
        Op::Get { key } => {
            out.push(GET);
            (key, &[])
        }
        Op::Put {
            key,
            value,
            version,
        } => {
            match version {
                None => out.push(PUT),
                Some(v) => {
                    out.push(PUT_VERSIONED);
                    put_varint(out, *v);
                }
            }
            (key, value)
        }
        Op::Append {
            key,
            value,
            return_old,
        } => {
            out.push(if *return_old {
                APPEND_RETURN_OLD
            } else {
                APPEND
            });
            (key, value)
        }
        Op::Delete { key } => {
            out.push(DELETE);
            (key, &[])
        }
        Op::Incr { key, by } => {
            out.push(INCR);
            out.extend_from_slice(&by.to_le_bytes());
            (key, &[])
        }
    };
    out.reserve(key.len() + value.len() + 2);
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Reads an operation written by [`encode`].
pub(crate) fn decode(mut data: &[u8]) -> Result<OpRef<'_>, DecodeError> {
    // Fast path for the common replicated write, an unconditional Put with a key under
    // 128 bytes (one-byte length); it accepts exactly what the general path accepts.
    if let [PUT, key_len @ 0..0x80, rest @ ..] = data
        && let Some((key, value)) = rest.split_at_checked(usize::from(*key_len))
    {
        return Ok(OpRef::Put {
            key,
            value,
            version: None,
        });
    }
    let data = &mut data;
    let kind = take_bytes(data, 1)?[0];
    let mut by = 0;
    let version = match kind {
        PUT_VERSIONED => Some(take_varint(data)?),
        INCR => {
            let b = take_bytes(data, 8)?;
            by = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            None
        }
        GET | PUT | APPEND | APPEND_RETURN_OLD | DELETE => None,
        _ => return Err(DecodeError::malformed("unknown kv operation")),
    };
    let key_len =
        usize::try_from(take_varint(data)?).map_err(|_| DecodeError::malformed("key length"))?;
    let key = take_bytes(data, key_len)?;
    let value = *data;
    Ok(match kind {
        GET | DELETE | INCR if !value.is_empty() => {
            return Err(DecodeError::malformed("bytes after the key"));
        }
        GET => OpRef::Get { key },
        DELETE => OpRef::Delete { key },
        INCR => OpRef::Incr { key, by },
        PUT | PUT_VERSIONED => OpRef::Put {
            key,
            value,
            version,
        },
        _ => OpRef::Append {
            key,
            value,
            return_old: kind == APPEND_RETURN_OLD,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips() {
        let ops = [
            Op::get("k"),
            Op::get(""),
            Op::put("key", "value", 7),
            Op::put("key", "", u64::MAX),
            Op::put_any("", ""),
            Op::put_any(vec![1u8; 200], vec![2u8; 1000]),
            Op::put_any(vec![1u8; 127], "v"), // longest key of the fast path
            Op::put_any(vec![1u8; 128], "v"), // shortest of the general path
            Op::append("a", "b"),
            Op::append_return("a", vec![0u8, 255, 3]),
            Op::delete("gone"),
            Op::incr("n", -1),
            Op::incr("", i64::MIN),
        ];
        for op in ops {
            let mut buf = vec![0xEE]; // appends, does not overwrite
            encode(&op, &mut buf);
            assert_eq!(decode(&buf[1..]), Ok(op.as_op_ref()));
        }
    }

    #[test]
    fn garbage_is_an_error_or_an_op_never_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0]).is_err());
        assert!(decode(&[GET, 5, b'a']).is_err()); // key shorter than its length
        assert!(decode(&[PUT, 5, b'a']).is_err()); // the same, through the Put fast path
        assert!(decode(&[PUT]).is_err());
        let mut put = Vec::new();
        encode(&Op::put_any("key", "v"), &mut put);
        assert_eq!(put, [PUT, 3, b'k', b'e', b'y', b'v']); // the documented layout
        for cut in 0..5 {
            assert!(decode(&put[..cut]).is_err(), "cut {cut}");
        }
        assert!(decode(&[GET, 1, b'a', b'b']).is_err()); // a get with a value
        assert!(decode(&[PUT_VERSIONED, 0x80]).is_err()); // truncated varint
        assert!(decode(&[INCR, 1, 0, 0]).is_err()); // truncated amount
        assert!(decode(&[DELETE, 1, b'a', b'b']).is_err()); // a delete with a value
        let mut buf = Vec::new();
        encode(&Op::put("key", "value", 300), &mut buf);
        for cut in 0..buf.len() {
            let _ = decode(&buf[..cut]);
        }
        // Every byte string of length <= 2 over a few interesting bytes.
        let alphabet = [0u8, 1, 2, 3, 4, 5, 0x7f, 0x80, 0xff];
        for &a in &alphabet {
            for &b in &alphabet {
                let _ = decode(&[a, b]);
            }
        }
    }
}
