//! Property tests (quickcheck, seeded): arbitrary input never panics, never
//! consumes more than given, and decodes the same however it is split; encoded
//! requests and replies decode back to themselves.
//!
//! Each property runs from a fixed seed; set `RESP_QC_SEED=<n>` to try others.
//! A failure prints the seed it ran with.

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck, Testable};
use stepwise_resp::{Decoder, Limits, ProtocolError, Reply, ReplyDecoder, Request, encode_request};

const TESTS: u64 = 3000;

fn check<A: Testable>(name: &str, size: usize, property: A) {
    let seed = std::env::var("RESP_QC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0000 + name.len() as u64);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(size, seed))
            .tests(TESTS)
            .max_tests(TESTS * 10)
            .quickcheck(property)
    }));
    if let Err(panic) = outcome {
        eprintln!("property {name} failed with RESP_QC_SEED={seed}");
        std::panic::resume_unwind(panic);
    }
}

/// Bytes that look a lot like RESP: a soup of protocol pieces and random bytes.
#[derive(Clone, Debug)]
struct Soup(Vec<u8>);

const PIECES: &[&[u8]] = &[
    b"*",
    b"$",
    b"+",
    b"-",
    b":",
    b"\r\n",
    b"\r",
    b"\n",
    b"0",
    b"1",
    b"2",
    b"3",
    b"-1",
    b"-2",
    b"10",
    b"99999999999999999999",
    b"\"",
    b"'",
    b"\\",
    b"\\x4",
    b"\\x41",
    b" ",
    b"\t",
    b"\x0b",
    b"\0",
    b"PING",
    b"SET",
    b"a",
    b"\xff",
    b"*1\r\n",
    b"*2\r\n",
    b"$1\r\n",
    b"$0\r\n",
    b"*0\r\n",
    b"*-1\r\n",
    b"$-1\r\n",
    b"*2\r\n$3\r\nGET\r\n",
    b"+OK\r\n",
    b":42\r\n",
    b"GET k\r\n",
];

/// Pieces of replies only, so reply soups get past the type byte more often.
const REPLY_PIECES: &[&[u8]] = &[
    b"*",
    b"$",
    b"+",
    b"-",
    b":",
    b"\r\n",
    b"\r",
    b"0",
    b"1",
    b"2",
    b"-1",
    b"-2",
    b"x",
    b"*1\r\n",
    b"*2\r\n",
    b"*0\r\n",
    b"*-1\r\n",
    b"$1\r\n",
    b"$0\r\n",
    b"$-1\r\n",
    b"+OK\r\n",
    b"-ERR x\r\n",
    b":42\r\n",
    b"$2\r\nab\r\n",
];

fn soup(g: &mut Gen, pieces: &[&[u8]]) -> Vec<u8> {
    let count = usize::arbitrary(g) % g.size().max(1);
    let mut bytes = Vec::new();
    for _ in 0..count {
        if u8::arbitrary(g) % 4 == 0 {
            bytes.push(u8::arbitrary(g));
        } else {
            bytes.extend_from_slice(g.choose(pieces).expect("not empty"));
        }
    }
    bytes
}

impl Arbitrary for Soup {
    fn arbitrary(g: &mut Gen) -> Self {
        // One in three soups is made of reply pieces only.
        if u8::arbitrary(g) % 3 == 0 {
            Soup(soup(g, REPLY_PIECES))
        } else {
            Soup(soup(g, PIECES))
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(Soup))
    }
}

/// How to cut the input into reads: sizes cycle through `1 + s % 23`.
#[derive(Clone, Debug)]
struct Cuts(Vec<u8>);

impl Arbitrary for Cuts {
    fn arbitrary(g: &mut Gen) -> Self {
        Cuts(Vec::arbitrary(g))
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(Cuts))
    }
}

impl Cuts {
    fn chunks<'a>(&self, input: &'a [u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        let mut rest = input;
        let mut sizes = self.0.iter().cycle().map(|&s| 1 + usize::from(s) % 23);
        while !rest.is_empty() {
            let size = if self.0.is_empty() {
                1
            } else {
                sizes.next().unwrap_or(1)
            };
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunks
    }
}

fn tight_limits() -> Limits {
    Limits {
        max_bulk_len: 8,
        max_array_len: 4,
        max_inline_len: 16,
        max_depth: 3,
    }
}

/// A decoder of either side, so both get the same properties.
trait Decode: Sized {
    type Item: PartialEq + std::fmt::Debug;
    fn new(limits: Limits) -> Self;
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, ProtocolError>;
}

impl Decode for Decoder {
    type Item = Request;
    fn new(limits: Limits) -> Self {
        Decoder::new(limits)
    }
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        Decoder::decode(self, buf)
    }
}

impl Decode for ReplyDecoder {
    type Item = Reply;
    fn new(limits: Limits) -> Self {
        ReplyDecoder::new(limits)
    }
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        ReplyDecoder::decode(self, buf)
    }
}

/// What a decoder made of an input: the items, then either the error or the
/// bytes still waiting for more.
type Outcome<T> = (Vec<T>, Result<Vec<u8>, ProtocolError>);

/// Feeds `chunks` one after another, decoding all it can after each, and checks
/// on every call that the decoder only removed bytes from the head of the buffer.
fn feed<D: Decode>(limits: Limits, chunks: &[&[u8]]) -> Outcome<D::Item> {
    let mut decoder = D::new(limits);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.clone();
            let result = decoder.decode(&mut buf);
            assert!(
                buf.len() <= before.len() && before.ends_with(&buf),
                "decode changed more than a prefix of the buffer"
            );
            match result {
                Ok(Some(item)) => {
                    assert!(buf.len() < before.len(), "an item from no bytes");
                    items.push(item);
                }
                Ok(None) => break,
                Err(error) => return (items, Err(error)),
            }
        }
    }
    (items, Ok(buf.to_vec()))
}

fn same_however_split<D: Decode>(input: &[u8], cuts: &Cuts, tight: bool) -> bool {
    let limits = if tight {
        tight_limits()
    } else {
        Limits::default()
    };
    let whole = feed::<D>(limits, &[input]);
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    whole == feed::<D>(limits, &bytewise) && whole == feed::<D>(limits, &cuts.chunks(input))
}

#[test]
fn arbitrary_bytes_as_requests() {
    fn property(input: Soup, cuts: Cuts, tight: bool) -> bool {
        same_however_split::<Decoder>(&input.0, &cuts, tight)
    }
    check(
        "requests_soup",
        60,
        property as fn(Soup, Cuts, bool) -> bool,
    );
}

#[test]
fn random_bytes_as_requests() {
    fn property(input: Vec<u8>, cuts: Cuts, tight: bool) -> bool {
        same_however_split::<Decoder>(&input, &cuts, tight)
    }
    check(
        "requests_random",
        200,
        property as fn(Vec<u8>, Cuts, bool) -> bool,
    );
}

#[test]
fn arbitrary_bytes_as_replies() {
    fn property(input: Soup, cuts: Cuts, tight: bool) -> bool {
        same_however_split::<ReplyDecoder>(&input.0, &cuts, tight)
    }
    check("replies_soup", 60, property as fn(Soup, Cuts, bool) -> bool);
}

#[test]
fn random_bytes_as_replies() {
    fn property(input: Vec<u8>, cuts: Cuts, tight: bool) -> bool {
        same_however_split::<ReplyDecoder>(&input, &cuts, tight)
    }
    check(
        "replies_random",
        200,
        property as fn(Vec<u8>, Cuts, bool) -> bool,
    );
}

/// A request and how to send it.
#[derive(Clone, Debug)]
struct Sent {
    args: Vec<Vec<u8>>,
    form: Form,
}

#[derive(Clone, Copy, Debug)]
enum Form {
    /// `*n\r\n$len\r\n...`
    Array,
    /// Inline, every argument double-quoted with escapes: any bytes survive.
    Quoted,
    /// Inline, bare words.
    Bare,
}

impl Arbitrary for Sent {
    fn arbitrary(g: &mut Gen) -> Self {
        let form = *g
            .choose(&[Form::Array, Form::Quoted, Form::Bare])
            .expect("not empty");
        let count = 1 + usize::arbitrary(g) % 5;
        let args = (0..count)
            .map(|_| match form {
                Form::Array | Form::Quoted => Vec::<u8>::arbitrary(g),
                Form::Bare => {
                    const WORD: &[u8] = b"abcXYZ019_:.-{}";
                    let len = 1 + usize::arbitrary(g) % 8;
                    (0..len)
                        .map(|_| *g.choose(WORD).expect("not empty"))
                        .collect()
                }
            })
            .collect();
        Sent { args, form }
    }
}

impl Sent {
    fn encode(&self, out: &mut BytesMut) {
        match self.form {
            Form::Array => encode_request(&self.args, out),
            Form::Quoted => {
                for arg in &self.args {
                    out.extend_from_slice(b" \"");
                    for &byte in arg {
                        if byte.is_ascii_alphanumeric() {
                            out.extend_from_slice(&[byte]);
                        } else {
                            out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
                        }
                    }
                    out.extend_from_slice(b"\"\t");
                }
                out.extend_from_slice(b"\r\n");
            }
            Form::Bare => {
                out.extend_from_slice(&self.args.join(&b' '));
                out.extend_from_slice(b"\n");
            }
        }
    }
}

#[test]
fn requests_round_trip() {
    fn property(sent: Vec<Sent>, cuts: Cuts) -> bool {
        let mut input = BytesMut::new();
        for request in &sent {
            request.encode(&mut input);
        }
        let expected: Vec<Request> = sent
            .iter()
            .map(|s| Request::new(s.args.iter().cloned()))
            .collect();
        let outcome = feed::<Decoder>(Limits::default(), &cuts.chunks(&input));
        outcome == (expected, Ok(vec![]))
    }
    check(
        "requests_round_trip",
        20,
        property as fn(Vec<Sent>, Cuts) -> bool,
    );
}

/// An arbitrary reply, nested at most a few levels.
#[derive(Clone, Debug)]
struct AnyReply(Reply);

fn line_bytes(g: &mut Gen) -> Bytes {
    Vec::<u8>::arbitrary(g)
        .into_iter()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

fn any_reply(g: &mut Gen, depth: usize) -> Reply {
    match u8::arbitrary(g) % if depth == 0 { 6 } else { 7 } {
        0 => Reply::SimpleString(line_bytes(g)),
        1 => Reply::Error(line_bytes(g)),
        2 => Reply::Integer(i64::arbitrary(g)),
        3 => Reply::Bulk(Vec::<u8>::arbitrary(g).into()),
        4 => Reply::NullBulk,
        5 => Reply::NullArray,
        _ => {
            let len = usize::arbitrary(g) % 5;
            Reply::Array((0..len).map(|_| any_reply(g, depth - 1)).collect())
        }
    }
}

impl Arbitrary for AnyReply {
    fn arbitrary(g: &mut Gen) -> Self {
        AnyReply(any_reply(g, 3))
    }
}

#[test]
fn replies_round_trip() {
    fn property(replies: Vec<AnyReply>, cuts: Cuts) -> bool {
        let mut input = BytesMut::new();
        for AnyReply(reply) in &replies {
            let before = input.len();
            reply.encode(&mut input);
            assert_eq!(input.len() - before, reply.encoded_len());
        }
        let expected: Vec<Reply> = replies.into_iter().map(|AnyReply(r)| r).collect();
        let outcome = feed::<ReplyDecoder>(Limits::default(), &cuts.chunks(&input));
        outcome == (expected, Ok(vec![]))
    }
    check(
        "replies_round_trip",
        20,
        property as fn(Vec<AnyReply>, Cuts) -> bool,
    );
}
