//! The request decoder: bytes from a client in, [`Request`]s out.

use std::ops::Range;

use bytes::{Buf, BytesMut};

use crate::error::ProtocolError;
use crate::inline::split_args;
use crate::limits::Limits;
use crate::line::{Line, find_crlf};
use crate::num::parse_i64;
use crate::request::Request;

/// Most argument slots reserved up front from a client's `*<count>` (Redis caps
/// its preallocation at 1024 too), so a large count alone costs no memory.
const MAX_PREALLOCATED_ARGS: usize = 1024;

/// Argument slots kept between requests; more are freed after a large request.
const RETAINED_ARG_SLOTS: usize = 4096;

/// Incremental decoder of client requests: arrays of bulk strings
/// (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline commands (`GET k\r\n`).
///
/// Call [`decode`](Self::decode) whenever bytes are appended to the buffer, and
/// again after each `Some` (one buffer may hold many pipelined requests). The
/// buffer is left untouched until a whole request is there; then exactly that
/// request's bytes are split off, and its arguments are zero-copy [`Bytes`](bytes::Bytes)
/// slices of them. Empty requests (blank inline lines, `*0`, `*-1`) are consumed
/// and skipped, as Redis does.
///
/// Between calls, only append to the buffer: the decoder remembers how far it has
/// parsed, so fed one byte at a time a request costs O(its length) in total. (If the
/// buffer shrinks below that point anyway, the decoder starts over at its head.)
///
/// After an error the connection is unusable; every later call returns the same
/// error. Redis replies with [`ProtocolError::to_reply`] and closes.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    state: State,
    /// Where the arguments of the array request in progress lie in the buffer.
    ranges: Vec<Range<usize>>,
    failed: Option<ProtocolError>,
    /// Bytes examined while looking for line ends (tests check it stays linear).
    work: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests.
    Idle,
    /// An inline request with no LF in `buf[..scanned]`.
    Inline { scanned: usize },
    /// A `*<count>` line with no CR in `buf[..scanned]`.
    Count { scanned: usize },
    /// An array request still missing `remaining` bulk strings; the next one
    /// starts at `pos`.
    Array {
        remaining: usize,
        pos: usize,
        element: Element,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    /// Its `$<len>` line, with no CR in `buf[..scanned]`.
    Header { scanned: usize },
    /// Its `len` bytes of data and CRLF, starting at `pos`.
    Data { len: usize },
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Idle,
            ranges: Vec::new(),
            failed: None,
            work: 0,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes the next request from the head of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed (nothing is consumed, except
    /// empty requests), `Ok(Some(request))` after splitting exactly that request's
    /// bytes off `buf`, or an error for malformed or oversized input.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_inner(buf);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
            self.state = State::Idle;
            self.ranges = Vec::new();
        }
        result
    }

    /// When the request in progress is reading a bulk string whose length is
    /// known: the buffer length at which that string will be complete. An adapter
    /// may reserve this much at once instead of growing the buffer read by read.
    pub fn wanted(&self) -> Option<usize> {
        match self.state {
            State::Array {
                pos,
                element: Element::Data { len },
                ..
            } => Some(pos.saturating_add(len).saturating_add(2)),
            _ => None,
        }
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        if self.resume_point() > buf.len() {
            self.state = State::Idle;
        }
        loop {
            match self.state {
                State::Idle => match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => self.state = State::Count { scanned: 0 },
                    Some(_) => self.state = State::Inline { scanned: 0 },
                },
                State::Inline { scanned } => match self.inline(buf, scanned)? {
                    Step::Done(request) => return Ok(Some(request)),
                    Step::Continue => {}
                    Step::NeedMore => return Ok(None),
                },
                State::Count { scanned } => match self.count(buf, scanned)? {
                    Step::Done(()) | Step::Continue => {}
                    Step::NeedMore => return Ok(None),
                },
                State::Array {
                    remaining,
                    pos,
                    element,
                } => match self.element(buf, remaining, pos, element)? {
                    Step::Done(request) => return Ok(Some(request)),
                    Step::Continue => {}
                    Step::NeedMore => return Ok(None),
                },
            }
        }
    }

    /// How far into the buffer the saved state points.
    fn resume_point(&self) -> usize {
        match self.state {
            State::Idle => 0,
            State::Inline { scanned } | State::Count { scanned } => scanned,
            State::Array {
                pos,
                element: Element::Header { scanned },
                ..
            } => pos.max(scanned),
            State::Array { pos, .. } => pos,
        }
    }

    fn inline(
        &mut self,
        buf: &mut BytesMut,
        scanned: usize,
    ) -> Result<Step<Request>, ProtocolError> {
        let max = self.limits.max_inline_len;
        // An LF at index `max` ends a line of `max` bytes (counting a CR before it).
        let limit = buf.len().min(max.saturating_add(1));
        let from = scanned.min(limit);
        let found = buf[from..limit].iter().position(|&b| b == b'\n');
        self.work += found.map_or(limit - from, |i| i + 1) as u64;
        let Some(offset) = found else {
            if buf.len() > max {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            self.state = State::Inline { scanned: limit };
            return Ok(Step::NeedMore);
        };
        let lf = from + offset;
        let line = buf.split_to(lf + 1).freeze();
        self.state = State::Idle;
        let end = if lf > 0 && line[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        };
        let mut args = Vec::new();
        split_args(&line.slice(..end), &mut args)?;
        if args.is_empty() {
            Ok(Step::Continue)
        } else {
            Ok(Step::Done(Request { args }))
        }
    }

    fn count(&mut self, buf: &mut BytesMut, mut scanned: usize) -> Result<Step<()>, ProtocolError> {
        let cr = match find_crlf(
            buf,
            0,
            &mut scanned,
            self.limits.max_inline_len,
            &mut self.work,
        ) {
            Line::Complete(cr) => cr,
            Line::Incomplete => {
                self.state = State::Count { scanned };
                return Ok(Step::NeedMore);
            }
            Line::TooLong => return Err(ProtocolError::TooBigMultibulkCount),
            Line::BadEnd => return Err(ProtocolError::InvalidMultibulkLength),
        };
        let count = parse_i64(&buf[1..cr]).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count <= 0 {
            // Redis ignores `*0` and negative counts.
            buf.advance(cr + 2);
            self.state = State::Idle;
            return Ok(Step::Continue);
        }
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= self.limits.max_array_len)
            .ok_or(ProtocolError::InvalidMultibulkLength)?;
        self.ranges.clear();
        self.ranges.reserve(count.min(MAX_PREALLOCATED_ARGS));
        self.state = State::Array {
            remaining: count,
            pos: cr + 2,
            element: Element::Header { scanned: cr + 2 },
        };
        Ok(Step::Done(()))
    }

    fn element(
        &mut self,
        buf: &mut BytesMut,
        remaining: usize,
        pos: usize,
        element: Element,
    ) -> Result<Step<Request>, ProtocolError> {
        match element {
            Element::Header { mut scanned } => {
                match buf.get(pos) {
                    None => return Ok(Step::NeedMore),
                    Some(b'$') => {}
                    Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
                }
                let max = self.limits.max_inline_len;
                let cr = match find_crlf(buf, pos, &mut scanned, max, &mut self.work) {
                    Line::Complete(cr) => cr,
                    Line::Incomplete => {
                        self.state = State::Array {
                            remaining,
                            pos,
                            element: Element::Header { scanned },
                        };
                        return Ok(Step::NeedMore);
                    }
                    Line::TooLong => return Err(ProtocolError::TooBigBulkCount),
                    Line::BadEnd => return Err(ProtocolError::InvalidBulkLength),
                };
                let len = parse_i64(&buf[pos + 1..cr])
                    .and_then(|len| usize::try_from(len).ok())
                    .filter(|&len| len <= self.limits.max_bulk_len)
                    .ok_or(ProtocolError::InvalidBulkLength)?;
                self.state = State::Array {
                    remaining,
                    pos: cr + 2,
                    element: Element::Data { len },
                };
                Ok(Step::Continue)
            }
            Element::Data { len } => {
                let end = pos.saturating_add(len);
                let Some(terminator) = buf.get(end..end.saturating_add(2)) else {
                    return Ok(Step::NeedMore);
                };
                if terminator != b"\r\n" {
                    return Err(ProtocolError::MissingBulkCrlf);
                }
                self.ranges.push(pos..end);
                let next = end + 2;
                if remaining > 1 {
                    self.state = State::Array {
                        remaining: remaining - 1,
                        pos: next,
                        element: Element::Header { scanned: next },
                    };
                    return Ok(Step::Continue);
                }
                let frame = buf.split_to(next).freeze();
                let args = self
                    .ranges
                    .drain(..)
                    .map(|range| frame.slice(range))
                    .collect();
                if self.ranges.capacity() > RETAINED_ARG_SLOTS {
                    // Do not keep a huge request's bookkeeping for the connection's life.
                    self.ranges = Vec::new();
                }
                self.state = State::Idle;
                Ok(Step::Done(Request { args }))
            }
        }
    }
}

/// The outcome of one parsing step.
enum Step<T> {
    /// Finished what this step parses.
    Done(T),
    /// Made progress (or consumed an empty request); keep going.
    Continue,
    /// Needs more bytes.
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` one byte at a time; returns the requests and the bytes examined
    /// while looking for line ends.
    fn bytewise(input: &[u8]) -> (usize, u64) {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut requests = 0;
        for &byte in input {
            buf.extend_from_slice(&[byte]);
            while decoder.decode(&mut buf).expect("valid input").is_some() {
                requests += 1;
            }
        }
        (requests, decoder.work)
    }

    #[test]
    fn byte_by_byte_work_is_linear() {
        // A long inline line: each byte is looked at about once, not once per call.
        let mut inline = vec![b'a'; 60_000];
        inline.extend_from_slice(b"\r\n");
        let (requests, work) = bytewise(&inline);
        assert_eq!(requests, 1);
        assert!(work <= 2 * inline.len() as u64, "examined {work} bytes");

        // A large bulk string: its data is never scanned at all.
        let mut big = BytesMut::new();
        crate::encode_request(&[&b"SET"[..], b"k", &vec![b'v'; 1_000_000]], &mut big);
        let (requests, work) = bytewise(&big);
        assert_eq!(requests, 1);
        assert!(work <= 64, "examined {work} bytes");

        // Many small requests.
        let mut many = BytesMut::new();
        for _ in 0..10_000 {
            crate::encode_request(&["GET", "key"], &mut many);
        }
        let (requests, work) = bytewise(&many);
        assert_eq!(requests, 10_000);
        assert!(work <= 2 * many.len() as u64, "examined {work} bytes");
    }
}
