//! Request decoding: formats, pipelining, incremental feeding, errors and limits.

use bytes::{Bytes, BytesMut};
use stepwise_resp::{Decoder, Limits, ProtocolError, Reply, Request};

/// Decodes everything in `input` at once: the requests, then the error or the
/// bytes left waiting for more.
fn decode_all(
    decoder: &mut Decoder,
    input: &[u8],
) -> (Vec<Request>, Result<Vec<u8>, ProtocolError>) {
    let mut buf = BytesMut::from(input);
    let mut requests = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(request)) => requests.push(request),
            Ok(None) => return (requests, Ok(buf.to_vec())),
            Err(error) => return (requests, Err(error)),
        }
    }
}

/// Feeds `input` one byte at a time, decoding after each byte.
fn decode_bytewise(
    decoder: &mut Decoder,
    input: &[u8],
) -> (Vec<Request>, Result<Vec<u8>, ProtocolError>) {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for &byte in input {
        buf.extend_from_slice(&[byte]);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => break,
                Err(error) => return (requests, Err(error)),
            }
        }
    }
    (requests, Ok(buf.to_vec()))
}

fn args(request: &Request) -> Vec<&[u8]> {
    request.args.iter().map(|a| &a[..]).collect()
}

fn one(input: &[u8]) -> Request {
    let (requests, rest) = decode_all(&mut Decoder::default(), input);
    assert_eq!(
        rest,
        Ok(vec![]),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(requests.len(), 1);
    requests.into_iter().next().unwrap()
}

fn error(input: &[u8]) -> ProtocolError {
    error_with(Limits::default(), input)
}

fn error_with(limits: Limits, input: &[u8]) -> ProtocolError {
    let whole = decode_all(&mut Decoder::new(limits), input);
    let bytewise = decode_bytewise(&mut Decoder::new(limits), input);
    assert_eq!(whole, bytewise, "whole and byte-wise feeding disagree");
    whole.1.expect_err(&format!(
        "no error for {:?}",
        String::from_utf8_lossy(input)
    ))
}

#[test]
fn array_request() {
    let request = one(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_eq!(args(&request), [&b"GET"[..], b"k"]);
}

#[test]
fn binary_safe_bulk_strings() {
    let request = one(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$6\r\na\r\n\0\xffb\r\n");
    assert_eq!(args(&request), [&b"SET"[..], b"", b"a\r\n\0\xffb"]);
}

#[test]
fn inline_requests() {
    assert_eq!(args(&one(b"PING\r\n")), [&b"PING"[..]]);
    assert_eq!(args(&one(b"PING\n")), [&b"PING"[..]]);
    assert_eq!(args(&one(b"SET a b\r\n")), [&b"SET"[..], b"a", b"b"]);
    assert_eq!(
        args(&one(b"  set   a\t b  \r\n")),
        [&b"set"[..], b"a", b"b"]
    );
    assert_eq!(
        args(&one(b"SET a \"b c\\n\\x41\"\r\n")),
        [&b"SET"[..], b"a", b"b c\nA"]
    );
    assert_eq!(
        args(&one(b"SET q 'it\\'s'\r\n")),
        [&b"SET"[..], b"q", b"it's"]
    );
    assert_eq!(args(&one(b"SET e \"\"\r\n")), [&b"SET"[..], b"e", b""]);
}

#[test]
fn empty_requests_are_skipped_like_redis() {
    // redis-server 7.0.15 answers only the PINGs in each of these.
    for input in [
        &b"\r\n\r\nPING\r\n"[..],
        b"*0\r\nPING\r\n",
        b"*-5\r\nPING\r\n",
        b"   \r\n*-1\r\n*0\r\n\nPING\r\n",
    ] {
        let (requests, rest) = decode_all(&mut Decoder::default(), input);
        assert_eq!(requests, [Request::new(["PING"])], "{input:?}");
        assert_eq!(rest, Ok(vec![]));
    }
    // An input of only empty requests is consumed entirely.
    let (requests, rest) = decode_all(&mut Decoder::default(), b"\r\n*0\r\n");
    assert!(requests.is_empty());
    assert_eq!(rest, Ok(vec![]));
}

#[test]
fn pipelined_requests_in_one_buffer() {
    let input =
        b"*1\r\n$4\r\nPING\r\nSET a b\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nECHO x\n*1\r\n$3\r\nDEL";
    let (requests, rest) = decode_all(&mut Decoder::default(), input);
    assert_eq!(
        requests,
        [
            Request::new(["PING"]),
            Request::new(["SET", "a", "b"]),
            Request::new(["GET", "a"]),
            Request::new(["ECHO", "x"]),
        ]
    );
    // The incomplete last request stays in the buffer, untouched.
    assert_eq!(rest, Ok(b"*1\r\n$3\r\nDEL".to_vec()));
    assert_eq!(
        decode_bytewise(&mut Decoder::default(), input),
        (requests, rest)
    );
}

#[test]
fn decode_consumes_exactly_one_request() {
    let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"[..]);
    let mut decoder = Decoder::default();
    assert!(decoder.decode(&mut buf).unwrap().is_some());
    assert_eq!(&buf[..], b"*1\r\n$4\r\nPING\r\n");
    let mut partial = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1"[..]);
    assert_eq!(decoder.decode(&mut partial), Ok(None));
    assert_eq!(&partial[..], b"*2\r\n$3\r\nGET\r\n$1");
}

#[test]
fn arguments_are_slices_of_the_input() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\nSET k v\r\n"[..]);
    let range = buf.as_ptr_range();
    let mut decoder = Decoder::default();
    for _ in 0..2 {
        let request = decoder.decode(&mut buf).unwrap().unwrap();
        for arg in &request.args {
            assert!(range.contains(&arg.as_ptr()), "{arg:?} was copied");
        }
    }
}

#[test]
fn byte_by_byte_equals_whole_for_a_large_value() {
    let value = vec![b'v'; 100_000];
    let mut input = BytesMut::new();
    Request::new([
        Bytes::from_static(b"SET"),
        Bytes::from_static(b"big"),
        Bytes::from(value.clone()),
    ])
    .encode(&mut input);
    input.extend_from_slice(b"GET big\r\n");
    let whole = decode_all(&mut Decoder::default(), &input);
    assert_eq!(whole.0.len(), 2);
    assert_eq!(whole.0[0].args[2], value);
    assert_eq!(decode_bytewise(&mut Decoder::default(), &input), whole);
}

#[test]
fn wanted_reports_the_end_of_a_bulk_string() {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$1000\r\nab"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    // 4 + 9 bytes of headers and "SET", 7 for "$1000\r\n", 1000 of data, 2 for CRLF.
    assert_eq!(decoder.wanted(), Some(13 + 7 + 1000 + 2));
    assert_eq!(Decoder::default().wanted(), None);
}

/// Messages captured from redis-server 7.0.15 for the same inputs.
#[test]
fn protocol_errors_match_redis() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"*2\r\n$3\r\nGET\r\n$-1\r\n",
            "Protocol error: invalid bulk length",
        ),
        (
            b"*2\r\n$3\r\nGET\r\nx1\r\n",
            "Protocol error: expected '$', got 'x'",
        ),
        (b"*abc\r\n", "Protocol error: invalid multibulk length"),
        (
            b"*3000000000\r\n",
            "Protocol error: invalid multibulk length",
        ),
        (
            b"*+1\r\n$4\r\nPING\r\n",
            "Protocol error: invalid multibulk length",
        ),
        (
            b"*1 \r\n$4\r\nPING\r\n",
            "Protocol error: invalid multibulk length",
        ),
        (
            b"*1\n$4\r\nPING\r\n",
            "Protocol error: invalid multibulk length",
        ),
        (
            b"*1\r\n$+4\r\nPING\r\n",
            "Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\n$04\r\nPING\r\n",
            "Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\n$4 \r\nPING\r\n",
            "Protocol error: invalid bulk length",
        ),
        (
            b"SET a \"b c\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
        (
            b"SET a \"b\"c\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
        (
            b"SET a 'b\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
    ];
    for (input, message) in cases {
        let error = error(input);
        assert_eq!(
            error.to_string(),
            *message,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        let mut out = BytesMut::new();
        error.to_reply().encode(&mut out);
        assert_eq!(out, format!("-ERR {message}\r\n").as_bytes());
    }
}

#[test]
fn protocol_errors_of_our_own() {
    // Redis skips the two bytes after bulk data unchecked; we insist on CRLF.
    assert_eq!(error(b"*1\r\n$4\r\nPINGxx"), ProtocolError::MissingBulkCrlf);
    assert_eq!(
        error(b"*1\r\n$4\r\nPING\rx"),
        ProtocolError::MissingBulkCrlf
    );
    // A header's CR must be followed by LF.
    assert_eq!(error(b"*1\rx"), ProtocolError::InvalidMultibulkLength);
    assert_eq!(error(b"*1\r\n$4\rx"), ProtocolError::InvalidBulkLength);
    // A non-'$' element is rejected as soon as its first byte arrives.
    assert_eq!(error(b"*1\r\n:"), ProtocolError::ExpectedBulk(b':'));
    let mut out = BytesMut::new();
    ProtocolError::ExpectedBulk(b'\r')
        .to_reply()
        .encode(&mut out);
    assert_eq!(&out[..], b"-ERR Protocol error: expected '$', got ' '\r\n");
}

#[test]
fn errors_are_sticky() {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::from(&b"*x\r\nPING\r\n"[..]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(ProtocolError::InvalidMultibulkLength)
    );
    let mut fresh = BytesMut::from(&b"PING\r\n"[..]);
    assert_eq!(
        decoder.decode(&mut fresh),
        Err(ProtocolError::InvalidMultibulkLength)
    );
}

#[test]
fn inline_length_limit() {
    let limits = Limits {
        max_inline_len: 10,
        ..Limits::default()
    };
    // Ten bytes before the LF (counting the CR) are fine...
    let (requests, rest) = decode_all(&mut Decoder::new(limits), b"GET 12345\r\n");
    assert_eq!(requests, [Request::new(["GET", "12345"])]);
    assert_eq!(rest, Ok(vec![]));
    // ...eleven are not, whether the LF has arrived or not.
    assert_eq!(
        error_with(limits, b"GET 123456\r\n"),
        ProtocolError::TooBigInlineRequest
    );
    assert_eq!(
        error_with(limits, b"GET 1234567"),
        ProtocolError::TooBigInlineRequest
    );
    // Up to the limit without an LF, the decoder just waits.
    let (requests, rest) = decode_all(&mut Decoder::new(limits), b"GET 123456");
    assert!(requests.is_empty());
    assert_eq!(rest, Ok(b"GET 123456".to_vec()));
    // Redis's default: 64 KiB.
    assert_eq!(
        error(&vec![b'a'; 64 * 1024 + 1]),
        ProtocolError::TooBigInlineRequest
    );
    assert_eq!(
        ProtocolError::TooBigInlineRequest.to_string(),
        "Protocol error: too big inline request"
    );
}

#[test]
fn header_line_limits() {
    let limits = Limits {
        max_inline_len: 8,
        ..Limits::default()
    };
    assert_eq!(
        error_with(limits, b"*000000000"),
        ProtocolError::TooBigMultibulkCount
    );
    assert_eq!(
        error_with(limits, b"*1\r\n$000000000"),
        ProtocolError::TooBigBulkCount
    );
    assert_eq!(
        ProtocolError::TooBigMultibulkCount.to_string(),
        "Protocol error: too big mbulk count string"
    );
    assert_eq!(
        ProtocolError::TooBigBulkCount.to_string(),
        "Protocol error: too big bulk count string"
    );
}

#[test]
fn bulk_length_limit() {
    let limits = Limits {
        max_bulk_len: 5,
        ..Limits::default()
    };
    let (requests, _) = decode_all(&mut Decoder::new(limits), b"*1\r\n$5\r\nhello\r\n");
    assert_eq!(requests, [Request::new(["hello"])]);
    // Rejected from the header alone, before any data is buffered.
    assert_eq!(
        error_with(limits, b"*1\r\n$6\r\n"),
        ProtocolError::InvalidBulkLength
    );
    // The default is Redis's 512 MB.
    assert_eq!(
        error(b"*1\r\n$536870913\r\n"),
        ProtocolError::InvalidBulkLength
    );
    let (requests, rest) = decode_all(&mut Decoder::default(), b"*1\r\n$536870912\r\n");
    assert!(requests.is_empty());
    assert!(rest.is_ok());
}

#[test]
fn array_length_limit() {
    let limits = Limits {
        max_array_len: 2,
        ..Limits::default()
    };
    let (requests, _) = decode_all(&mut Decoder::new(limits), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        error_with(limits, b"*3\r\n"),
        ProtocolError::InvalidMultibulkLength
    );
    // The default is Redis 7's: i32::MAX.
    assert_eq!(
        error(b"*2147483648\r\n"),
        ProtocolError::InvalidMultibulkLength
    );
    let (_, rest) = decode_all(&mut Decoder::default(), b"*2147483647\r\n");
    assert!(rest.is_ok());
}

#[test]
fn shrinking_the_buffer_between_calls_does_not_panic() {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.clear(); // misuse: drop bytes the decoder has parsed
    buf.extend_from_slice(b"PING\r\n");
    assert_eq!(decoder.decode(&mut buf), Ok(Some(Request::new(["PING"]))));
}

#[test]
fn command_helpers_on_decoded_requests() {
    let request = one(b"get\r\n");
    assert!(request.is("GET"));
    assert_eq!(
        request.check_arity(2),
        Err(Reply::error(
            "ERR wrong number of arguments for 'get' command"
        ))
    );
    let request = one(b"FOO a b\r\n");
    let mut out = BytesMut::new();
    request.unknown_command().encode(&mut out);
    assert_eq!(
        &out[..],
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
    );
}
