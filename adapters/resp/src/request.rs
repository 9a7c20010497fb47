//! Requests: a command and its arguments, with helpers to match and check them.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use crate::num::put_u64;
use crate::reply::{Reply, put_bulk};

/// One client request: the command name and its arguments, as sent.
///
/// Requests from [`Decoder`](crate::Decoder) always have at least one argument
/// (Redis ignores empty requests, and so does the decoder). The methods below
/// tolerate an empty `args` built by hand.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Request {
    /// `args[0]` is the command name, in whatever case the client sent it.
    pub args: Vec<Bytes>,
}

impl Request {
    /// A request from anything convertible to `Bytes` (`&'static str`, `String`,
    /// `Vec<u8>`, `Bytes`), e.g. `Request::new(["SET", "k", "v"])`.
    pub fn new<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Bytes>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The command name as sent (empty if there are no arguments).
    pub fn name(&self) -> &[u8] {
        self.args.first().map_or(&[], |name| &name[..])
    }

    /// The command name in ASCII upper case, for `match` on byte-string literals.
    /// Borrows (no allocation) when the client already sent it in upper case, as
    /// redis-benchmark and most client libraries do.
    pub fn name_upper(&self) -> Cow<'_, [u8]> {
        let name = self.name();
        if name.iter().any(u8::is_ascii_lowercase) {
            Cow::Owned(name.to_ascii_uppercase())
        } else {
            Cow::Borrowed(name)
        }
    }

    /// Whether the command name equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// The arguments after the command name.
    pub fn params(&self) -> &[Bytes] {
        self.args.get(1..).unwrap_or(&[])
    }

    /// Argument `index` (0 is the command name), if present.
    pub fn arg(&self, index: usize) -> Option<&Bytes> {
        self.args.get(index)
    }

    /// Checks the argument count against a Redis-style arity, counting the command
    /// name: `n > 0` means exactly `n`, `n < 0` means at least `-n` (`GET` is 2,
    /// `SET` is -3). On mismatch returns Redis's wrong-arity error reply.
    pub fn check_arity(&self, arity: i32) -> Result<(), Reply> {
        let argc = self.args.len();
        let fits = match usize::try_from(arity) {
            Ok(exact) => argc == exact,
            Err(_) => argc >= arity.unsigned_abs() as usize,
        };
        if fits {
            Ok(())
        } else {
            Err(Reply::wrong_arity(self.name()))
        }
    }

    /// Redis's error reply for this request when its command is unknown.
    pub fn unknown_command(&self) -> Reply {
        Reply::unknown_command(&self.args)
    }

    /// Appends this request as a RESP array of bulk strings (what clients send).
    pub fn encode(&self, out: &mut BytesMut) {
        encode_request(&self.args, out);
    }
}

impl From<Vec<Bytes>> for Request {
    fn from(args: Vec<Bytes>) -> Self {
        Self { args }
    }
}

/// Appends a request made of `args` as a RESP array of bulk strings, without
/// building a [`Request`]: `encode_request(&["GET", "k"], &mut out)`.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    out.put_u8(b'*');
    put_u64(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for arg in args {
        put_bulk(out, arg.as_ref());
    }
}

/// Parses an argument as a Redis integer (`string2ll` rules: optional `-`, no `+`,
/// no leading zeros or spaces). On failure returns Redis's
/// `-ERR value is not an integer or out of range` reply.
pub fn parse_integer(arg: &[u8]) -> Result<i64, Reply> {
    crate::num::parse_i64(arg).ok_or_else(Reply::not_an_integer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_matching() {
        let lower = Request::new(["get", "k"]);
        let upper = Request::new(["GET", "k"]);
        assert!(lower.is("GET") && lower.is("get") && !lower.is("GE"));
        assert_eq!(&*lower.name_upper(), b"GET");
        assert!(matches!(upper.name_upper(), Cow::Borrowed(b"GET")));
        assert!(matches!(lower.name_upper(), Cow::Owned(_)));
        assert_eq!(lower.params(), &[Bytes::from_static(b"k")]);
        assert_eq!(lower.arg(1).map(|a| &a[..]), Some(&b"k"[..]));
        assert_eq!(lower.arg(2), None);
        let empty = Request::default();
        assert_eq!(empty.name(), b"");
        assert!(empty.params().is_empty());
        assert!(!empty.is("GET"));
    }

    #[test]
    fn arity() {
        let get = Request::new(["Get", "k"]);
        assert_eq!(get.check_arity(2), Ok(()));
        assert_eq!(
            get.check_arity(3),
            Err(Reply::error(
                "ERR wrong number of arguments for 'get' command"
            ))
        );
        assert_eq!(get.check_arity(-2), Ok(()));
        assert!(get.check_arity(-3).is_err());
        assert_eq!(
            Request::new(["SET", "k", "v", "NX"]).check_arity(-3),
            Ok(())
        );
    }

    #[test]
    fn integers() {
        assert_eq!(parse_integer(b"-12"), Ok(-12));
        assert_eq!(parse_integer(b"+12"), Err(Reply::not_an_integer()));
        assert_eq!(parse_integer(b"1.5"), Err(Reply::not_an_integer()));
    }

    #[test]
    fn encodes_as_bulk_array() {
        let mut out = BytesMut::new();
        Request::new(["GET", "k"]).encode(&mut out);
        encode_request::<&[u8]>(&[], &mut out);
        assert_eq!(&out[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n");
    }
}
