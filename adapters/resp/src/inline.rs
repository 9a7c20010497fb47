//! Splitting an inline request line into arguments, following Redis's
//! `sdssplitargs`: blanks separate arguments, `"..."` understands `\n \r \t \b \a`,
//! `\xHH` and `\<any>`, `'...'` understands only `\'`, and a closing quote must be
//! followed by a blank or the end of the line.

use bytes::Bytes;

use crate::error::ProtocolError;

/// C's `isspace` in the "C" locale, which `sdssplitargs` uses to skip blanks.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// What the current argument is made of so far.
enum Arg {
    /// Unquoted bytes `line[start..end]`, sliced out without copying.
    Borrowed { start: usize, end: usize },
    /// Bytes with quotes or escapes resolved.
    Owned(Vec<u8>),
}

impl Arg {
    fn push(&mut self, line: &[u8], at: usize, byte: u8) {
        match self {
            // Unquoted bytes are contiguous in the line until a quote appears.
            Arg::Borrowed { end, .. } if *end == at => *end += 1,
            Arg::Borrowed { start, end } => {
                let mut owned = line[*start..*end].to_vec();
                owned.push(byte);
                *self = Arg::Owned(owned);
            }
            Arg::Owned(owned) => owned.push(byte),
        }
    }

    fn owned_mut(&mut self, line: &[u8]) -> &mut Vec<u8> {
        if let Arg::Borrowed { start, end } = *self {
            *self = Arg::Owned(line[start..end].to_vec());
        }
        match self {
            Arg::Owned(owned) => owned,
            Arg::Borrowed { .. } => unreachable!("converted just above"),
        }
    }

    fn finish(self, line: &Bytes) -> Bytes {
        match self {
            Arg::Borrowed { start, end } => line.slice(start..end),
            Arg::Owned(owned) => Bytes::from(owned),
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` (without its line ending) into arguments, pushing them to `out`.
///
/// Unquoted arguments are zero-copy slices of `line`. Like `sdssplitargs`, which
/// works on C strings, a NUL byte ends the line.
pub(crate) fn split_args(line: &Bytes, out: &mut Vec<Bytes>) -> Result<(), ProtocolError> {
    let len = line.iter().position(|&b| b == 0).unwrap_or(line.len());
    let bytes = &line[..len];
    // `at(i)` is 0 past the end, mirroring C's terminating NUL.
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut p = 0;
    loop {
        while p < len && is_space(bytes[p]) {
            p += 1;
        }
        if p >= len {
            return Ok(());
        }
        let mut arg = Arg::Borrowed { start: p, end: p };
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && let (Some(hi), Some(lo)) = (hex_value(at(p + 2)), hex_value(at(p + 3)))
                {
                    arg.owned_mut(bytes).push(hi * 16 + lo);
                    p += 4;
                    continue;
                }
                if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    let escaped = match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    arg.owned_mut(bytes).push(escaped);
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    arg.owned_mut(bytes).push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    arg.owned_mut(bytes).push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    arg.owned_mut(bytes).push(c);
                }
            } else {
                match c {
                    // sdssplitargs ends an unquoted argument only at these, not
                    // at every `isspace` byte.
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        if c != 0 {
                            p += 1;
                        }
                        break;
                    }
                    b'"' => {
                        arg.owned_mut(bytes);
                        in_double = true;
                    }
                    b'\'' => {
                        arg.owned_mut(bytes);
                        in_single = true;
                    }
                    _ => arg.push(bytes, p, c),
                }
            }
            p += 1;
        }
        out.push(arg.finish(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut out = Vec::new();
        split_args(&Bytes::copy_from_slice(line), &mut out)?;
        Ok(out.into_iter().map(|b| b.to_vec()).collect())
    }

    fn ok(line: &[u8], expected: &[&[u8]]) {
        let got = split(line).unwrap();
        let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
        assert_eq!(got, expected, "line {:?}", String::from_utf8_lossy(line));
    }

    #[test]
    fn splits_on_blanks() {
        ok(b"SET a b", &[b"SET", b"a", b"b"]);
        ok(b"  PING  ", &[b"PING"]);
        ok(b"a\tb\r c", &[b"a", b"b", b"c"]);
        ok(b"", &[]);
        ok(b"   ", &[]);
        // Vertical tab and form feed are skipped between arguments but do not end one.
        ok(b"\x0ba\x0bb", &[b"a\x0bb"]);
    }

    #[test]
    fn unquoted_arguments_are_zero_copy() {
        let line = Bytes::copy_from_slice(b"SET key value");
        let mut out = Vec::new();
        split_args(&line, &mut out).unwrap();
        let range = line.as_ptr_range();
        for arg in &out {
            assert!(range.contains(&arg.as_ptr()), "{arg:?} was copied");
        }
    }

    #[test]
    fn double_quotes_and_escapes() {
        ok(br#"SET a "b c""#, &[b"SET", b"a", b"b c"]);
        ok(br#""" x"#, &[b"", b"x"]);
        ok(br#""\x41\x4a\x7a""#, &[b"AJz"]);
        ok(br#""\xZZ""#, &[b"xZZ"]);
        ok(br#""\n\r\t\b\a\"\\\q""#, &[b"\n\r\t\x08\x07\"\\q"]);
    }

    #[test]
    fn quote_may_open_inside_an_argument() {
        ok(br#"ab"c d""#, &[b"abc d"]);
        ok(br#"ab'c d' e"#, &[b"abc d", b"e"]);
    }

    #[test]
    fn single_quotes() {
        ok(br"'it\'s' 'a\nb'", &[b"it's", br"a\nb"]);
    }

    #[test]
    fn unbalanced_quotes() {
        for line in [
            &br#"SET a "b"#[..],
            br#"SET a "b"c"#,
            br"SET a 'b",
            br"SET a 'b'c",
            br#""abc\"#,
        ] {
            assert_eq!(
                split(line),
                Err(ProtocolError::UnbalancedQuotes),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Each line was sent as `ECHO <line>` to redis-server 7.0.15; the comment is its reply.
    #[test]
    fn quirks_checked_against_redis() {
        ok(b"ECHO \x0ba\x0bb", &[b"ECHO", b"a\x0bb"]); // $3 a\vb
        ok(br#"ECHO "\xZZ""#, &[b"ECHO", b"xZZ"]); // $3 xZZ
        ok(br"ECHO 'a\nb'", &[b"ECHO", br"a\nb"]); // $4 a\nb
        ok(b"ECHO \"a\"\x0b", &[b"ECHO", b"a"]); // $1 a
        ok(br#"ECHO "\q\b""#, &[b"ECHO", b"q\x08"]); // $2 q\b
        ok(b"ECHO x\ry", &[b"ECHO", b"x", b"y"]); // wrong number of arguments
    }

    #[test]
    fn nul_ends_the_line() {
        ok(b"ECHO a\0b c", &[b"ECHO", b"a"]);
        assert_eq!(split(b"ECHO \"a\0\""), Err(ProtocolError::UnbalancedQuotes));
    }
}
