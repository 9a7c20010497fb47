//! Replies: the [`Reply`] value, its encoder, and constructors for common replies.

use bytes::{BufMut, Bytes, BytesMut};

use crate::num::{put_i64, put_u64};

/// A RESP2 reply.
///
/// Status and error texts are bytes, not `String`, because Redis echoes client
/// bytes into some errors (an unknown command's name, for one). Constructors
/// taking `&'static str` do not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `+text`: a status such as `OK` or `PONG`. CR and LF are encoded as spaces.
    SimpleString(Bytes),
    /// `-text`: an error, conventionally `CODE message` such as `ERR syntax error`.
    /// CR and LF are encoded as spaces (Redis does the same).
    Error(Bytes),
    /// `:n`: a signed 64-bit integer.
    Integer(i64),
    /// `$len` then the bytes: a binary-safe string.
    Bulk(Bytes),
    /// `$-1`: the null bulk string (`GET` of a missing key).
    NullBulk,
    /// `*len` then the elements.
    Array(Vec<Reply>),
    /// `*-1`: the null array (an aborted `EXEC`, a timed-out `BLPOP`).
    NullArray,
}

const CRLF: &[u8] = b"\r\n";

impl Reply {
    /// `+OK`.
    pub fn ok() -> Self {
        Self::SimpleString(Bytes::from_static(b"OK"))
    }

    /// `+PONG`.
    pub fn pong() -> Self {
        Self::SimpleString(Bytes::from_static(b"PONG"))
    }

    /// A status reply, such as `Reply::simple("QUEUED")`.
    pub fn simple(text: impl Into<Bytes>) -> Self {
        Self::SimpleString(text.into())
    }

    /// An error reply. The text should start with an error code, as in
    /// `Reply::error("ERR syntax error")`; nothing is prefixed.
    pub fn error(text: impl Into<Bytes>) -> Self {
        Self::Error(text.into())
    }

    /// An integer reply.
    pub fn integer(value: i64) -> Self {
        Self::Integer(value)
    }

    /// A bulk string reply.
    pub fn bulk(value: impl Into<Bytes>) -> Self {
        Self::Bulk(value.into())
    }

    /// The null bulk string, `$-1`.
    pub fn null_bulk() -> Self {
        Self::NullBulk
    }

    /// The null array, `*-1`.
    pub fn null_array() -> Self {
        Self::NullArray
    }

    /// `Bulk(value)` if present, else `NullBulk`: the reply to `GET`.
    pub fn bulk_or_null(value: Option<Bytes>) -> Self {
        value.map_or(Self::NullBulk, Self::Bulk)
    }

    /// `-ERR value is not an integer or out of range`.
    pub fn not_an_integer() -> Self {
        Self::error("ERR value is not an integer or out of range")
    }

    /// `-ERR syntax error`.
    pub fn syntax_error() -> Self {
        Self::error("ERR syntax error")
    }

    /// `-WRONGTYPE Operation against a key holding the wrong kind of value`.
    pub fn wrong_type() -> Self {
        Self::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    /// `-ERR wrong number of arguments for '<name>' command`, with the name in
    /// lower case as Redis prints it (subcommands as `config|get`).
    pub fn wrong_arity(name: &[u8]) -> Self {
        let mut text = BytesMut::with_capacity(48 + name.len());
        text.extend_from_slice(b"ERR wrong number of arguments for '");
        text.extend(name.iter().map(u8::to_ascii_lowercase));
        text.extend_from_slice(b"' command");
        Self::Error(text.freeze())
    }

    /// Redis's reply to an unknown command, byte for byte:
    /// `-ERR unknown command 'xyz', with args beginning with: 'a' 'b' `.
    ///
    /// As in Redis (which formats with `%.128s` on C strings) the name and each
    /// argument stop at a NUL byte, the name is cut at 128 bytes, and arguments are
    /// added while the list is shorter than 128 bytes, the last one cut so the list
    /// holds at most 128 bytes before its closing quote.
    pub fn unknown_command(args: &[Bytes]) -> Self {
        fn c_str(bytes: &[u8], max: usize) -> &[u8] {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            &bytes[..end.min(max)]
        }
        let name = args.first().map_or(&[][..], |n| &n[..]);
        let mut text = BytesMut::with_capacity(200);
        text.extend_from_slice(b"ERR unknown command '");
        text.extend_from_slice(c_str(name, 128));
        text.extend_from_slice(b"', with args beginning with: ");
        let list_start = text.len();
        for arg in args.iter().skip(1) {
            let used = text.len() - list_start;
            if used >= 128 {
                break;
            }
            text.put_u8(b'\'');
            text.extend_from_slice(c_str(arg, 128 - used));
            text.extend_from_slice(b"' ");
        }
        Self::Error(text.freeze())
    }

    /// Appends the RESP2 encoding of this reply to `out`.
    ///
    /// Allocates only when `out` must grow.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::SimpleString(text) => put_line(out, b'+', text),
            Self::Error(text) => put_line(out, b'-', text),
            Self::Integer(value) => {
                out.put_u8(b':');
                put_i64(out, *value);
                out.extend_from_slice(CRLF);
            }
            Self::Bulk(value) => put_bulk(out, value),
            Self::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Self::Array(items) => {
                out.put_u8(b'*');
                put_u64(out, items.len() as u64);
                out.extend_from_slice(CRLF);
                for item in items {
                    item.encode(out);
                }
            }
            Self::NullArray => out.extend_from_slice(b"*-1\r\n"),
        }
    }

    /// The exact number of bytes [`encode`](Self::encode) appends, so a caller can
    /// reserve once for a batch of replies.
    pub fn encoded_len(&self) -> usize {
        fn digits(mut n: u64) -> usize {
            let mut count = 1;
            while n >= 10 {
                n /= 10;
                count += 1;
            }
            count
        }
        match self {
            Self::SimpleString(text) | Self::Error(text) => 1 + text.len() + 2,
            Self::Integer(v) => 1 + usize::from(*v < 0) + digits(v.unsigned_abs()) + 2,
            Self::Bulk(value) => 1 + digits(value.len() as u64) + 2 + value.len() + 2,
            Self::NullBulk | Self::NullArray => 5,
            Self::Array(items) => {
                1 + digits(items.len() as u64)
                    + 2
                    + items.iter().map(Self::encoded_len).sum::<usize>()
            }
        }
    }
}

impl From<crate::ProtocolError> for Reply {
    fn from(error: crate::ProtocolError) -> Self {
        error.to_reply()
    }
}

/// Writes `$len\r\n<value>\r\n`.
pub(crate) fn put_bulk(out: &mut BytesMut, value: &[u8]) {
    out.reserve(value.len() + 16);
    out.put_u8(b'$');
    put_u64(out, value.len() as u64);
    out.extend_from_slice(CRLF);
    out.extend_from_slice(value);
    out.extend_from_slice(CRLF);
}

/// Writes `<kind><text>\r\n` with CR and LF in `text` replaced by spaces, so the
/// line cannot end early or inject a second reply.
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.extend_from_slice(text);
    }
    out.extend_from_slice(CRLF);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.encode(&mut out);
        assert_eq!(out.len(), reply.encoded_len(), "encoded_len of {reply:?}");
        out.to_vec()
    }

    #[test]
    fn encodes_every_kind() {
        assert_eq!(encoded(&Reply::ok()), b"+OK\r\n");
        assert_eq!(encoded(&Reply::pong()), b"+PONG\r\n");
        assert_eq!(encoded(&Reply::syntax_error()), b"-ERR syntax error\r\n");
        assert_eq!(encoded(&Reply::integer(0)), b":0\r\n");
        assert_eq!(encoded(&Reply::integer(-42)), b":-42\r\n");
        assert_eq!(
            encoded(&Reply::integer(i64::MIN)),
            b":-9223372036854775808\r\n"
        );
        assert_eq!(encoded(&Reply::bulk("hello")), b"$5\r\nhello\r\n");
        assert_eq!(encoded(&Reply::bulk("")), b"$0\r\n\r\n");
        assert_eq!(encoded(&Reply::bulk("a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(encoded(&Reply::NullBulk), b"$-1\r\n");
        assert_eq!(encoded(&Reply::NullArray), b"*-1\r\n");
        assert_eq!(encoded(&Reply::Array(vec![])), b"*0\r\n");
        assert_eq!(
            encoded(&Reply::Array(vec![
                Reply::integer(1),
                Reply::Array(vec![Reply::bulk("x"), Reply::NullBulk]),
            ])),
            b"*2\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n"
        );
        assert_eq!(encoded(&Reply::bulk_or_null(None)), b"$-1\r\n");
        assert_eq!(
            encoded(&Reply::bulk_or_null(Some(Bytes::from_static(b"v")))),
            b"$1\r\nv\r\n"
        );
    }

    #[test]
    fn status_and_error_lines_cannot_break_framing() {
        assert_eq!(encoded(&Reply::simple("a\r\nb")), b"+a  b\r\n");
        assert_eq!(encoded(&Reply::error("ERR x\ny")), b"-ERR x y\r\n");
    }

    /// Captured from redis-server 7.0.15 (Debian 7.0.15-1~deb12u10).
    #[test]
    fn command_errors_match_redis_7() {
        let args = |list: &[&[u8]]| -> Vec<Bytes> {
            list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
        };
        assert_eq!(
            encoded(&Reply::unknown_command(&args(&[b"FOO", b"a", b"b"]))),
            b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        );
        assert_eq!(
            encoded(&Reply::unknown_command(&args(&[b"foo"]))),
            b"-ERR unknown command 'foo', with args beginning with: \r\n"
        );
        assert_eq!(
            encoded(&Reply::unknown_command(&args(&[b""]))),
            b"-ERR unknown command '', with args beginning with: \r\n"
        );
        assert_eq!(
            encoded(&Reply::unknown_command(&args(&[
                b"fo\r\no\x00x",
                b"a\nb",
                b"c\x00d"
            ]))),
            b"-ERR unknown command 'fo  o', with args beginning with: 'a b' 'c' \r\n"
        );
        let (x200, y100, z100) = (vec![b'x'; 200], vec![b'y'; 100], vec![b'z'; 100]);
        let expected = format!(
            "-ERR unknown command '{}', with args beginning with: '{}' '{}' \r\n",
            "x".repeat(128),
            "y".repeat(100),
            "z".repeat(25)
        );
        assert_eq!(
            encoded(&Reply::unknown_command(&args(&[&x200, &y100, &z100, b"w"]))),
            expected.as_bytes()
        );
        for (ys, expected_tail) in [
            (120, format!("'{}' 'zzzzz' ", "y".repeat(120))),
            (126, format!("'{}' ", "y".repeat(126))),
            (127, format!("'{}' ", "y".repeat(127))),
        ] {
            let y = vec![b'y'; ys];
            let expected = format!(
                "-ERR unknown command 'foo', with args beginning with: {expected_tail}\r\n"
            );
            assert_eq!(
                encoded(&Reply::unknown_command(&args(&[b"foo", &y, &z100, b"w"]))),
                expected.as_bytes(),
                "{ys} y's"
            );
        }
        assert_eq!(
            encoded(&Reply::wrong_arity(b"GET")),
            b"-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(
            encoded(&Reply::wrong_arity(b"config|get")),
            b"-ERR wrong number of arguments for 'config|get' command\r\n"
        );
        assert_eq!(
            encoded(&Reply::not_an_integer()),
            b"-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            encoded(&Reply::wrong_type()),
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(encoded(&Reply::syntax_error()), b"-ERR syntax error\r\n");
    }
}
