//! Reply decoding (the client side) against encoded replies and real Redis bytes.

use bytes::{Bytes, BytesMut};
use stepwise_resp::{Limits, ProtocolError, Reply, ReplyDecoder};

fn decode_all(
    decoder: &mut ReplyDecoder,
    input: &[u8],
) -> (Vec<Reply>, Result<Vec<u8>, ProtocolError>) {
    let mut buf = BytesMut::from(input);
    let mut replies = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(reply)) => replies.push(reply),
            Ok(None) => return (replies, Ok(buf.to_vec())),
            Err(error) => return (replies, Err(error)),
        }
    }
}

fn decode_bytewise(
    decoder: &mut ReplyDecoder,
    input: &[u8],
) -> (Vec<Reply>, Result<Vec<u8>, ProtocolError>) {
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    for &byte in input {
        buf.extend_from_slice(&[byte]);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(error) => return (replies, Err(error)),
            }
        }
    }
    (replies, Ok(buf.to_vec()))
}

fn both(limits: Limits, input: &[u8]) -> (Vec<Reply>, Result<Vec<u8>, ProtocolError>) {
    let whole = decode_all(&mut ReplyDecoder::new(limits), input);
    assert_eq!(
        decode_bytewise(&mut ReplyDecoder::new(limits), input),
        whole,
        "whole and byte-wise feeding disagree on {:?}",
        String::from_utf8_lossy(input)
    );
    whole
}

#[test]
fn decodes_every_kind() {
    // As sent by redis-server 7.0.15 for: SET, GET (missing), INCR, GET, an unknown
    // command, LRANGE of a list, EXEC after a WATCH conflict.
    let input: &[u8] = b"+OK\r\n$-1\r\n:1\r\n$4\r\nit's\r\n-ERR unknown command 'FOO', with args beginning with: \r\n*2\r\n$1\r\na\r\n$0\r\n\r\n*-1\r\n";
    let (replies, rest) = both(Limits::default(), input);
    assert_eq!(rest, Ok(vec![]));
    assert_eq!(
        replies,
        [
            Reply::ok(),
            Reply::NullBulk,
            Reply::Integer(1),
            Reply::bulk("it's"),
            Reply::error("ERR unknown command 'FOO', with args beginning with: "),
            Reply::Array(vec![Reply::bulk("a"), Reply::bulk("")]),
            Reply::NullArray,
        ]
    );
}

#[test]
fn nested_arrays_and_empty_arrays() {
    let reply = Reply::Array(vec![
        Reply::Array(vec![]),
        Reply::Array(vec![
            Reply::Integer(-7),
            Reply::Array(vec![Reply::NullBulk]),
        ]),
        Reply::simple("QUEUED"),
    ]);
    let mut input = BytesMut::new();
    reply.encode(&mut input);
    input.extend_from_slice(b"*1\r\n");
    let (replies, rest) = both(Limits::default(), &input);
    assert_eq!(replies, [reply]);
    assert_eq!(rest, Ok(b"*1\r\n".to_vec()));
}

#[test]
fn bulk_strings_are_slices_of_the_input() {
    let mut buf = BytesMut::from(&b"*2\r\n$5\r\nhello\r\n+OK\r\n"[..]);
    let range = buf.as_ptr_range();
    let Some(Reply::Array(items)) = ReplyDecoder::default().decode(&mut buf).unwrap() else {
        panic!("expected an array");
    };
    for item in items {
        let (Reply::Bulk(bytes) | Reply::SimpleString(bytes)) = item else {
            panic!("unexpected {item:?}");
        };
        assert!(range.contains(&bytes.as_ptr()));
    }
}

#[test]
fn consumes_exactly_one_reply_and_reports_wanted() {
    let mut decoder = ReplyDecoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nab"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], b"*2\r\n$3\r\nab");
    assert_eq!(decoder.wanted(), Some(4 + 4 + 3 + 2));
    buf.extend_from_slice(b"c\r\n:5\r\n:6\r\n");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Reply::Array(vec![
            Reply::bulk("abc"),
            Reply::Integer(5)
        ])))
    );
    assert_eq!(&buf[..], b":6\r\n");
}

#[test]
fn errors() {
    let cases: &[(&[u8], ProtocolError)] = &[
        (b"?\r\n", ProtocolError::InvalidReplyType(b'?')),
        (b"*1\r\nx", ProtocolError::InvalidReplyType(b'x')),
        (b":12a\r\n", ProtocolError::InvalidInteger),
        (b":1\rx", ProtocolError::InvalidInteger),
        (b":\r\n", ProtocolError::InvalidInteger),
        (b"$-2\r\n", ProtocolError::InvalidBulkLength),
        (b"$x\r\n", ProtocolError::InvalidBulkLength),
        (b"$1\rx", ProtocolError::InvalidBulkLength),
        (b"$1\r\nab\r\n", ProtocolError::MissingBulkCrlf),
        (b"*-2\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*1\rx", ProtocolError::InvalidMultibulkLength),
        (b"+OK\rx", ProtocolError::InvalidLineEnd),
    ];
    for (input, expected) in cases {
        assert_eq!(
            both(Limits::default(), input).1,
            Err(expected.clone()),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        ProtocolError::InvalidReplyType(b'?').to_string(),
        "Protocol error: got '?' as reply type byte"
    );
}

#[test]
fn limits() {
    let limits = Limits {
        max_bulk_len: 3,
        max_array_len: 2,
        max_inline_len: 4,
        max_depth: 2,
    };
    let ok = both(
        limits,
        b"$3\r\nabc\r\n*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n+123\r\n",
    );
    assert_eq!(ok.1, Ok(vec![]));
    assert_eq!(ok.0.len(), 3);
    let cases: &[(&[u8], ProtocolError)] = &[
        (b"$4\r\n", ProtocolError::InvalidBulkLength),
        (b"*3\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*1\r\n*1\r\n*1\r\n", ProtocolError::TooDeep),
        (b"+1234", ProtocolError::TooBigReplyLine),
        (b"-1234\r\n", ProtocolError::TooBigReplyLine),
        (b"*00000", ProtocolError::TooBigMultibulkCount),
        (b"$00000", ProtocolError::TooBigBulkCount),
    ];
    for (input, expected) in cases {
        assert_eq!(
            both(limits, input).1,
            Err(expected.clone()),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let input = b"*1\r\n".repeat(1_000_000);
    let (replies, rest) = decode_all(&mut ReplyDecoder::default(), &input);
    assert!(replies.is_empty());
    assert_eq!(rest, Err(ProtocolError::TooDeep));
    // At the limit it still works.
    let depth = Limits::default().max_depth;
    let mut input = b"*1\r\n".repeat(depth);
    input.extend_from_slice(b":1\r\n");
    let (replies, rest) = decode_all(&mut ReplyDecoder::default(), &input);
    assert_eq!(rest, Ok(vec![]));
    let mut reply = &replies[0];
    for _ in 0..depth {
        let Reply::Array(items) = reply else {
            panic!("expected an array")
        };
        reply = &items[0];
    }
    assert_eq!(reply, &Reply::Integer(1));
}

#[test]
fn errors_are_sticky() {
    let mut decoder = ReplyDecoder::default();
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&b"!\r\n"[..])),
        Err(ProtocolError::InvalidReplyType(b'!'))
    );
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&b"+OK\r\n"[..])),
        Err(ProtocolError::InvalidReplyType(b'!'))
    );
}

#[test]
fn large_bulk_byte_by_byte() {
    let value = Bytes::from(vec![7u8; 200_000]);
    let mut input = BytesMut::new();
    Reply::Array(vec![Reply::Bulk(value.clone()), Reply::ok()]).encode(&mut input);
    let (replies, rest) = both(Limits::default(), &input);
    assert_eq!(rest, Ok(vec![]));
    assert_eq!(
        replies,
        [Reply::Array(vec![Reply::Bulk(value), Reply::ok()])]
    );
}
