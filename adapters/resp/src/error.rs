//! Protocol errors: what the decoders report for malformed or oversized input.

use bytes::{BufMut, BytesMut};

use crate::reply::Reply;

/// Malformed or oversized input.
///
/// Request-side messages are Redis 7's wording (checked against redis-server
/// 7.0.15). A server answers with [`ProtocolError::to_reply`] and then closes the
/// connection, as Redis does: after an error the stream position is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An inline request line is longer than [`Limits::max_inline_len`](crate::Limits::max_inline_len).
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline request has an unterminated quote, or a closing quote
    /// followed by something other than a space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A `*<count>` line is longer than `max_inline_len` without a CRLF.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$<len>` line is longer than `max_inline_len` without a CRLF.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// A `*<count>` header that is not a number, or exceeds
    /// [`Limits::max_array_len`](crate::Limits::max_array_len).
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$<len>` header that is not a number, is negative (in a request), or exceeds
    /// [`Limits::max_bulk_len`](crate::Limits::max_bulk_len).
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An element of a request array does not start with `$` (holds the byte found).
    #[error("Protocol error: expected '$', got '{}'", printable(*.0))]
    ExpectedBulk(u8),
    /// Bulk data not followed by CRLF. Redis skips these two bytes unchecked;
    /// we reject them, so this wording is ours.
    #[error("Protocol error: expected CRLF after bulk data")]
    MissingBulkCrlf,
    /// (Replies) a value starts with a byte that is not a RESP2 type.
    #[error("Protocol error: got '{}' as reply type byte", printable(*.0))]
    InvalidReplyType(u8),
    /// (Replies) an `:<integer>` reply that is not a valid 64-bit integer.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// (Replies) a status or error line longer than `max_inline_len`.
    #[error("Protocol error: too big reply line")]
    TooBigReplyLine,
    /// (Replies) a status or error line whose CR is not followed by LF.
    #[error("Protocol error: expected LF after CR")]
    InvalidLineEnd,
    /// (Replies) arrays nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    #[error("Protocol error: reply nested too deep")]
    TooDeep,
}

impl ProtocolError {
    /// The error reply Redis sends for this error: `-ERR <message>`.
    ///
    /// For [`ExpectedBulk`](Self::ExpectedBulk) the offending byte is written raw, as
    /// Redis does (the encoder turns CR and LF into spaces).
    pub fn to_reply(&self) -> Reply {
        match self {
            Self::ExpectedBulk(byte) => {
                let mut text = BytesMut::with_capacity(48);
                text.extend_from_slice(b"ERR Protocol error: expected '$', got '");
                text.put_u8(*byte);
                text.put_u8(b'\'');
                Reply::Error(text.freeze())
            }
            other => Reply::Error(format!("ERR {other}").into()),
        }
    }
}

/// Shows an ASCII graphic byte or space as itself and anything else as `\xNN`.
fn printable(byte: u8) -> String {
    if byte == b' ' || byte.is_ascii_graphic() {
        char::from(byte).to_string()
    } else {
        format!("\\x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_redis() {
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_string(),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            ProtocolError::ExpectedBulk(b'x').to_string(),
            "Protocol error: expected '$', got 'x'"
        );
        assert_eq!(
            ProtocolError::ExpectedBulk(0).to_string(),
            "Protocol error: expected '$', got '\\x00'"
        );
        assert_eq!(
            ProtocolError::TooBigInlineRequest.to_reply(),
            Reply::error("ERR Protocol error: too big inline request")
        );
        assert_eq!(
            ProtocolError::ExpectedBulk(0xff).to_reply(),
            Reply::Error(b"ERR Protocol error: expected '$', got '\xff'"[..].into())
        );
    }
}
