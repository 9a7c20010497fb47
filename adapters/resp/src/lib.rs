//! A sans-IO RESP2 (Redis protocol) parser and encoder over [`bytes::BytesMut`],
//! so that redis-cli, redis-benchmark and Redis client libraries can talk to a
//! stepwise server.
//!
//! - [`Decoder`] turns bytes from a client into [`Request`]s: arrays of bulk strings
//!   and inline commands (`PING\r\n`, `SET a "b c"\r\n`, with Redis's quoting rules).
//!   It is incremental (returns `None` until a request is complete, keeping its
//!   place so byte-by-byte input costs linear time), zero-copy (arguments are
//!   [`Bytes`](bytes::Bytes) slices of the input) and bounded by [`Limits`].
//! - [`Reply`] is what a server sends back; [`Reply::encode`] appends it to a
//!   `BytesMut` without allocating. Constructors produce Redis 7's exact texts for
//!   common errors ([`Reply::unknown_command`], [`Reply::wrong_arity`],
//!   [`Reply::not_an_integer`], ...).
//! - [`ReplyDecoder`] and [`encode_request`] are the client side, for load tools
//!   and tests.
//!
//! Malformed input is a [`ProtocolError`], never a panic; its message is Redis's
//! where Redis has one, and a server should send [`ProtocolError::to_reply`] and
//! close the connection, as Redis does.
//!
//! # Example: one server turn
//!
//! ```
//! use bytes::BytesMut;
//! use stepwise_resp::{Decoder, Limits, Reply};
//!
//! let mut decoder = Decoder::new(Limits { max_bulk_len: 1 << 20, ..Limits::default() });
//! // Bytes as read from a socket: a pipelined array request and an inline one,
//! // the second cut short.
//! let mut input = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nGET k"[..]);
//! let mut output = BytesMut::new();
//!
//! while let Some(request) = decoder.decode(&mut input)? {
//!     let reply = match &*request.name_upper() {
//!         b"SET" => match request.check_arity(-3) {
//!             Ok(()) => Reply::ok(),
//!             Err(wrong_arity) => wrong_arity,
//!         },
//!         b"GET" => Reply::null_bulk(),
//!         _ => request.unknown_command(),
//!     };
//!     reply.encode(&mut output);
//! }
//! assert_eq!(&output[..], b"+OK\r\n");
//! assert_eq!(&input[..], b"GET k"); // waits for the rest of the line
//!
//! input.extend_from_slice(b"\r\n");
//! let request = decoder.decode(&mut input)?.expect("a whole request");
//! assert_eq!(request.args, ["GET", "k"]);
//! assert!(input.is_empty());
//! # Ok::<(), stepwise_resp::ProtocolError>(())
//! ```
//!
//! On a protocol error, reply and hang up:
//!
//! ```
//! # use bytes::BytesMut;
//! # use stepwise_resp::Decoder;
//! let mut input = BytesMut::from(&b"*1\r\n$-3\r\n"[..]);
//! let error = Decoder::default().decode(&mut input).unwrap_err();
//! let mut output = BytesMut::new();
//! error.to_reply().encode(&mut output);
//! assert_eq!(&output[..], b"-ERR Protocol error: invalid bulk length\r\n");
//! ```
//!
//! # Differences from Redis
//!
//! - Bulk data must be followed by CRLF ([`ProtocolError::MissingBulkCrlf`]); Redis
//!   skips those two bytes unchecked. A header's CR must be followed by LF.
//! - An array element that does not start with `$` is rejected as soon as its first
//!   byte arrives; Redis waits for the rest of the line first.
//! - An inline line longer than [`Limits::max_inline_len`] is rejected even when its
//!   LF is already buffered, so the outcome does not depend on how the bytes were
//!   split into reads. Redis checks only while the LF is missing.
//! - A NUL byte in an inline line ends it (as in Redis's `sdssplitargs`), but the
//!   LF after it is still found; Redis's `strchr` stops at the NUL and waits.
//!
//! # Memory
//!
//! [`Limits`] bound each header, string and array, not a whole request: an adapter
//! should also cap its read buffer (Redis's `client-query-buffer-limit`, 1 GB).
//! This is easy because the decoder leaves an incomplete request in the buffer.
//!
//! Arguments share the buffer they were read into, so a value kept for long (in a
//! key-value store, say) keeps that whole read chunk alive. A server that stores
//! values may prefer to copy them out (`Bytes::copy_from_slice`) when they are much
//! smaller than its read buffer.
#![forbid(unsafe_code)]

mod decoder;
mod error;
mod inline;
mod limits;
mod line;
mod num;
mod reply;
mod reply_decoder;
mod request;

pub use decoder::Decoder;
pub use error::ProtocolError;
pub use limits::Limits;
pub use reply::Reply;
pub use reply_decoder::ReplyDecoder;
pub use request::{Request, encode_request, parse_integer};
