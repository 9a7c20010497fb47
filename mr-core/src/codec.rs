//! The intermediate file format (`mr-X-Y`): a versioned header, then key/value records.
//!
//! ```text
//! file   = MAGIC record*
//! record = varint(key length) key varint(value length) value
//! ```
//!
//! Varints are LEB128 (7 bits per byte, low bits first). Keys and values are raw bytes.

use thiserror::Error;

/// The first bytes of every intermediate file: `MRI` and format version 1.
pub const MAGIC: &[u8; 4] = b"MRI\x01";

/// An intermediate file that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The file does not start with [`MAGIC`] (not an intermediate file, or another version).
    #[error("not a version 1 intermediate file (bad header)")]
    BadHeader,
    /// The file ends inside a record.
    #[error("truncated record at byte {0}")]
    Truncated(usize),
    /// A length does not fit in memory.
    #[error("record length too large at byte {0}")]
    TooLarge(usize),
}

/// Appends the file header to `buf`.
pub fn encode_header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(MAGIC);
}

/// Appends one record to `buf`.
#[inline]
pub fn encode_record(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_varint(buf, key.len() as u64);
    buf.extend_from_slice(key);
    put_varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Decodes a whole intermediate file, appending its records to `out` (borrowed from `data`).
pub fn decode_into<'a>(
    data: &'a [u8],
    out: &mut Vec<(&'a [u8], &'a [u8])>,
) -> Result<(), DecodeError> {
    let mut at = data
        .strip_prefix(MAGIC)
        .map(|_| MAGIC.len())
        .ok_or(DecodeError::BadHeader)?;
    while at < data.len() {
        let key = take(data, &mut at)?;
        let value = take(data, &mut at)?;
        out.push((key, value));
    }
    Ok(())
}

/// Reads one length-prefixed byte string at `*at`.
fn take<'a>(data: &'a [u8], at: &mut usize) -> Result<&'a [u8], DecodeError> {
    let start = *at;
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *data.get(*at).ok_or(DecodeError::Truncated(start))?;
        *at += 1;
        if shift >= 64 {
            return Err(DecodeError::TooLarge(start));
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let len = usize::try_from(len).map_err(|_| DecodeError::TooLarge(start))?;
    let end = at.checked_add(len).ok_or(DecodeError::TooLarge(start))?;
    let bytes = data.get(*at..end).ok_or(DecodeError::Truncated(start))?;
    *at = end;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_records_including_empty_and_long_ones() {
        let long = vec![b'x'; 300];
        let records: Vec<(&[u8], &[u8])> =
            vec![(b"a", b"1"), (b"", b""), (&long, b"v"), (b"k", &long)];
        let mut buf = Vec::new();
        encode_header(&mut buf);
        for (k, v) in &records {
            encode_record(&mut buf, k, v);
        }
        let mut out = Vec::new();
        decode_into(&buf, &mut out).unwrap();
        assert_eq!(out, records);
    }

    #[test]
    fn header_only_is_an_empty_file() {
        let mut out = Vec::new();
        decode_into(MAGIC, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn rejects_bad_header_and_truncation_without_panicking() {
        let mut out = Vec::new();
        assert_eq!(decode_into(b"", &mut out), Err(DecodeError::BadHeader));
        assert_eq!(
            decode_into(b"MRI\x02", &mut out),
            Err(DecodeError::BadHeader)
        );
        let mut buf = Vec::new();
        encode_header(&mut buf);
        encode_record(&mut buf, b"key", b"value");
        for cut in MAGIC.len() + 1..buf.len() {
            assert!(decode_into(&buf[..cut], &mut out).is_err(), "cut at {cut}");
        }
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode_into(&huge, &mut out), Err(DecodeError::TooLarge(4)));
        let mut big = MAGIC.to_vec();
        big.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(decode_into(&big, &mut out), Err(DecodeError::Truncated(4)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = oorandom::Rand64::new(3);
        for _ in 0..5000 {
            let mut data = MAGIC.to_vec();
            for _ in 0..rng.rand_range(0..16) {
                data.push(rng.rand_u64() as u8);
            }
            let mut out = Vec::new();
            let _ = decode_into(&data, &mut out);
        }
    }
}
