//! The reply decoder: bytes from a server in, [`Reply`]s out (the client side).

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::line::{Line, find_crlf};
use crate::num::parse_i64;
use crate::reply::Reply;

/// Most element slots reserved up front from a server's `*<count>`.
const MAX_PREALLOCATED_ITEMS: usize = 1024;

/// Incremental decoder of RESP2 replies, for clients (load tools, tests).
///
/// Same contract as [`Decoder`](crate::Decoder): call [`decode`](Self::decode)
/// after appending bytes and again after each `Some`; the buffer is untouched
/// until a whole reply is there, then exactly its bytes are split off and bulk
/// strings, statuses and errors are zero-copy slices of them. Partial progress is
/// remembered, so feeding a reply byte by byte costs O(its length). Arrays may
/// nest up to [`Limits::max_depth`] deep. After an error, every later call returns
/// the same error.
#[derive(Debug, Clone)]
pub struct ReplyDecoder {
    limits: Limits,
    /// Where the next value (or the data of the bulk string being read) starts.
    pos: usize,
    /// No CR in `buf[pos..scanned]` (while reading a line).
    scanned: usize,
    /// The length of the bulk string whose data starts at `pos`, once its header is read.
    bulk: Option<usize>,
    /// Arrays still being filled, outermost first.
    stack: Vec<Frame>,
    failed: Option<ProtocolError>,
    /// Bytes examined while looking for line ends (tests check it stays linear).
    work: u64,
}

#[derive(Debug, Clone)]
struct Frame {
    remaining: usize,
    items: Vec<Partial>,
}

/// A reply whose strings are still positions in the buffer.
#[derive(Debug, Clone)]
enum Partial {
    Simple(Range<usize>),
    Error(Range<usize>),
    Integer(i64),
    Bulk(Range<usize>),
    NullBulk,
    Array(Vec<Partial>),
    NullArray,
}

impl Partial {
    /// Recursion depth is bounded by `Limits::max_depth`.
    fn into_reply(self, frame: &Bytes) -> Reply {
        match self {
            Partial::Simple(range) => Reply::SimpleString(frame.slice(range)),
            Partial::Error(range) => Reply::Error(frame.slice(range)),
            Partial::Integer(value) => Reply::Integer(value),
            Partial::Bulk(range) => Reply::Bulk(frame.slice(range)),
            Partial::NullBulk => Reply::NullBulk,
            Partial::Array(items) => Reply::Array(
                items
                    .into_iter()
                    .map(|item| item.into_reply(frame))
                    .collect(),
            ),
            Partial::NullArray => Reply::NullArray,
        }
    }
}

impl Default for ReplyDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ReplyDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pos: 0,
            scanned: 0,
            bulk: None,
            stack: Vec::new(),
            failed: None,
            work: 0,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// While reading a bulk string whose length is known: the buffer length at
    /// which it will be complete.
    pub fn wanted(&self) -> Option<usize> {
        self.bulk
            .map(|len| self.pos.saturating_add(len).saturating_add(2))
    }

    /// Decodes the next reply from the head of `buf`: `Ok(None)` when more bytes are
    /// needed (nothing is consumed), `Ok(Some(reply))` after splitting exactly that
    /// reply's bytes off `buf`, or an error for malformed or oversized input.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_inner(buf);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
            self.restart();
        }
        result
    }

    fn restart(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.bulk = None;
        self.stack = Vec::new();
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, ProtocolError> {
        if self.pos.max(self.scanned) > buf.len() {
            // The caller removed bytes we had parsed: start over at the head.
            self.restart();
        }
        loop {
            let Some(mut value) = self.value(buf)? else {
                return Ok(None);
            };
            // Put the value into its array; a filled array is itself a value.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    let frame = buf.split_to(self.pos).freeze();
                    self.pos = 0;
                    self.scanned = 0;
                    return Ok(Some(value.into_reply(&frame)));
                };
                top.items.push(value);
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let Some(full) = self.stack.pop() else {
                    unreachable!("the stack had a top a moment ago");
                };
                value = Partial::Array(full.items);
            }
        }
    }

    /// Reads the next complete scalar value or empty/null array; opens non-empty
    /// arrays on the stack. `None` when more bytes are needed.
    fn value(&mut self, buf: &BytesMut) -> Result<Option<Partial>, ProtocolError> {
        loop {
            if let Some(len) = self.bulk {
                let end = self.pos.saturating_add(len);
                let Some(terminator) = buf.get(end..end.saturating_add(2)) else {
                    return Ok(None);
                };
                if terminator != b"\r\n" {
                    return Err(ProtocolError::MissingBulkCrlf);
                }
                let value = Partial::Bulk(self.pos..end);
                self.bulk = None;
                self.advance(end + 2);
                return Ok(Some(value));
            }
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
                return Err(ProtocolError::InvalidReplyType(kind));
            }
            let max = self.limits.max_inline_len;
            let cr = match find_crlf(buf, self.pos, &mut self.scanned, max, &mut self.work) {
                Line::Complete(cr) => cr,
                Line::Incomplete => return Ok(None),
                Line::TooLong => {
                    return Err(match kind {
                        b'*' => ProtocolError::TooBigMultibulkCount,
                        b'$' => ProtocolError::TooBigBulkCount,
                        _ => ProtocolError::TooBigReplyLine,
                    });
                }
                Line::BadEnd => {
                    return Err(match kind {
                        b'*' => ProtocolError::InvalidMultibulkLength,
                        b'$' => ProtocolError::InvalidBulkLength,
                        b':' => ProtocolError::InvalidInteger,
                        _ => ProtocolError::InvalidLineEnd,
                    });
                }
            };
            let line = self.pos + 1..cr;
            let number = parse_i64(&buf[line.clone()]);
            let value = match kind {
                b'+' => Partial::Simple(line),
                b'-' => Partial::Error(line),
                b':' => Partial::Integer(number.ok_or(ProtocolError::InvalidInteger)?),
                b'$' => match number {
                    Some(-1) => Partial::NullBulk,
                    _ => {
                        let len = number
                            .and_then(|n| usize::try_from(n).ok())
                            .filter(|&n| n <= self.limits.max_bulk_len)
                            .ok_or(ProtocolError::InvalidBulkLength)?;
                        self.bulk = Some(len);
                        self.advance(cr + 2);
                        continue;
                    }
                },
                _ => match number {
                    Some(-1) => Partial::NullArray,
                    Some(0) => Partial::Array(Vec::new()),
                    _ => {
                        let count = number
                            .and_then(|n| usize::try_from(n).ok())
                            .filter(|&n| n <= self.limits.max_array_len)
                            .ok_or(ProtocolError::InvalidMultibulkLength)?;
                        if self.stack.len() >= self.limits.max_depth {
                            return Err(ProtocolError::TooDeep);
                        }
                        self.stack.push(Frame {
                            remaining: count,
                            items: Vec::with_capacity(count.min(MAX_PREALLOCATED_ITEMS)),
                        });
                        self.advance(cr + 2);
                        continue;
                    }
                },
            };
            self.advance(cr + 2);
            return Ok(Some(value));
        }
    }

    fn advance(&mut self, to: usize) {
        self.pos = to;
        self.scanned = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_by_byte_work_is_linear() {
        let mut input = BytesMut::new();
        Reply::Array(vec![
            Reply::bulk(vec![b'v'; 1_000_000]),
            Reply::simple("x".repeat(60_000)),
            Reply::Array((0..10_000).map(Reply::Integer).collect()),
        ])
        .encode(&mut input);
        let mut decoder = ReplyDecoder::default();
        let mut buf = BytesMut::new();
        let mut replies = 0;
        for &byte in input.iter() {
            buf.extend_from_slice(&[byte]);
            while decoder.decode(&mut buf).expect("valid input").is_some() {
                replies += 1;
            }
        }
        assert_eq!(replies, 1);
        // Lines are scanned about once; the 1 MB of bulk data is not scanned.
        let lines = input.len() as u64 - 1_000_000;
        assert!(decoder.work <= 2 * lines, "examined {} bytes", decoder.work);
    }
}
