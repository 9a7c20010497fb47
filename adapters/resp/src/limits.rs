//! Size limits for the decoders.

/// Size limits, checked while parsing so oversized input fails before it is buffered.
///
/// The defaults are Redis 7's. A server should lower `max_bulk_len` (and usually
/// `max_array_len`) to what it is willing to hold per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, in bytes (Redis `proto-max-bulk-len`, default 512 MB).
    pub max_bulk_len: usize,
    /// Most elements in one array (Redis 7 accepts up to `i32::MAX`).
    pub max_array_len: usize,
    /// Longest line, in bytes before its line end: an inline request (before the
    /// LF, counting a CR), a `*`/`$` header or, in replies, a status or error line
    /// (before the CRLF, counting the type byte). Redis's `PROTO_INLINE_MAX_SIZE`,
    /// 64 KiB.
    pub max_inline_len: usize,
    /// Deepest nesting of arrays in a reply (replies only; requests are flat).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            max_array_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
            max_depth: 128,
        }
    }
}
