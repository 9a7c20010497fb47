//! Integer parsing and formatting without allocation.

use bytes::{BufMut, BytesMut};

/// Parses a decimal `i64` with the rules of Redis's `string2ll`: an optional
/// `-`, no `+`, no leading zeros (except `0` itself), no spaces, no `-0`, and
/// the value must fit in an `i64`.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    if s == b"0" {
        return Some(0);
    }
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // 0 - value in i128 keeps i64::MIN (whose magnitude is i64::MAX + 1) exact.
        i64::try_from(-i128::from(value)).ok()
    } else {
        i64::try_from(value).ok()
    }
}

/// Appends the decimal digits of `value` to `out`.
pub(crate) fn put_u64(out: &mut BytesMut, mut value: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends the decimal form of `value` (with a leading `-` if negative) to `out`.
pub(crate) fn put_i64(out: &mut BytesMut, value: i64) {
    if value < 0 {
        out.put_u8(b'-');
    }
    put_u64(out, value.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"7"), Some(7));
        assert_eq!(parse_i64(b"-7"), Some(-7));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
            b"123456789012345678901",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn formats_like_display() {
        for v in [0, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN] {
            let mut out = BytesMut::new();
            put_i64(&mut out, v);
            assert_eq!(&out[..], v.to_string().as_bytes());
        }
        let mut out = BytesMut::new();
        put_u64(&mut out, u64::MAX);
        assert_eq!(&out[..], u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn parse_inverts_format() {
        let mut g = quickcheck::Gen::from_size_and_seed(100, 0x5eed);
        for _ in 0..10_000 {
            let v = <i64 as quickcheck::Arbitrary>::arbitrary(&mut g);
            let mut out = BytesMut::new();
            put_i64(&mut out, v);
            assert_eq!(parse_i64(&out), Some(v));
        }
    }
}
