//! Record framing: `len u32 LE | crc32 u32 LE | body`, the checksum over the body.
//!
//! Every file this crate writes starts with an 8-byte magic and continues with framed
//! records. The body of each record starts with a versioned enum tag (see
//! [`format`](crate::format)), so a reader can tell record kinds and versions apart.

/// Bytes of framing before each body.
pub(crate) const FRAME_LEN: usize = 8;
/// Most payload bytes in one log chunk; bigger batches are split into several chunks.
pub(crate) const CHUNK_PAYLOAD: usize = 1 << 20;
/// Largest body a reader accepts: a full chunk plus its head. Bounds what a damaged length
/// field can make the reader (or the torn-tail scan) look at.
pub(crate) const MAX_BODY: usize = CHUNK_PAYLOAD + 64;

/// Why no valid record starts at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The buffer ends before the frame or its body does.
    Truncated,
    /// The length field is zero or above [`MAX_BODY`].
    BadLength(u32),
    /// The body does not match its checksum.
    BadChecksum,
}

impl FrameError {
    /// Human-readable reason, used in corruption errors.
    pub(crate) fn describe(self) -> String {
        match self {
            FrameError::Truncated => "record extends past the end of the file".into(),
            FrameError::BadLength(len) => format!("impossible record length {len}"),
            FrameError::BadChecksum => "record checksum mismatch".into(),
        }
    }
}

/// Starts a record at the end of `out`; returns where it starts, for [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    start
}

/// Completes the record started at `start`: everything pushed since is its body.
pub(crate) fn finish(out: &mut [u8], start: usize) {
    let body = &out[start + FRAME_LEN..];
    debug_assert!(!body.is_empty() && body.len() <= MAX_BODY);
    let len = u32::try_from(body.len()).expect("bodies are bounded by MAX_BODY");
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Parses the record at `at`. Returns its body and the offset after it.
pub(crate) fn parse(buf: &[u8], at: usize) -> Result<(&[u8], usize), FrameError> {
    let Some(frame) = buf.get(at..at.saturating_add(FRAME_LEN)) else {
        return Err(FrameError::Truncated);
    };
    let len = u32::from_le_bytes(frame[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    if len == 0 || len as usize > MAX_BODY {
        return Err(FrameError::BadLength(len));
    }
    let start = at + FRAME_LEN;
    let end = start + len as usize;
    let Some(body) = buf.get(start..end) else {
        return Err(FrameError::Truncated);
    };
    if crc32fast::hash(body) != crc {
        return Err(FrameError::BadChecksum);
    }
    Ok((body, end))
}

/// Finds the first offset after `from` where a valid record starts whose body begins with
/// `tag` and satisfies `accept`. Used to tell a torn tail (nothing valid follows) from
/// damage in the middle of a file (valid records follow).
///
/// Cost: every offset is tried, but a candidate is checksummed only if its length fits
/// [`MAX_BODY`] and the rest of the file and its first body byte equals `tag`.
pub(crate) fn find_after<'a>(
    buf: &'a [u8],
    from: usize,
    tag: u8,
    mut accept: impl FnMut(&'a [u8]) -> bool,
) -> Option<usize> {
    let mut at = from;
    while at + FRAME_LEN < buf.len() {
        if buf[at + FRAME_LEN] == tag
            && let Ok((body, _)) = parse(buf, at)
            && accept(body)
        {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &[u8]) -> Vec<u8> {
        let mut out = vec![0xAA]; // records need not start at 0
        let start = begin(&mut out);
        out.extend_from_slice(body);
        finish(&mut out, start);
        out
    }

    #[test]
    fn round_trip() {
        let buf = record(b"\x01hello");
        assert_eq!(parse(&buf, 1), Ok((&b"\x01hello"[..], buf.len())));
        assert_eq!(&buf[1..5], &6u32.to_le_bytes());
    }

    #[test]
    fn every_truncation_and_flip_is_detected() {
        let buf = record(b"\x01some body bytes");
        for cut in 1..buf.len() {
            assert!(parse(&buf[..cut], 1).is_err(), "cut at {cut}");
        }
        for i in 1..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(parse(&bad, 1).is_err(), "flip byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn bad_lengths_are_rejected_without_reading() {
        let mut buf = vec![0u8; 16];
        assert_eq!(parse(&buf, 0), Err(FrameError::BadLength(0)));
        buf[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&buf, 0), Err(FrameError::BadLength(u32::MAX)));
        assert_eq!(parse(&buf, 100), Err(FrameError::Truncated));
    }

    #[test]
    fn find_after_skips_garbage_and_respects_tag() {
        let mut buf = vec![7u8; 13];
        let a = buf.len();
        buf.extend_from_slice(&record(b"\x02not this tag")[1..]);
        let b = buf.len();
        buf.extend_from_slice(&record(b"\x01this one")[1..]);
        assert_eq!(find_after(&buf, 0, 1, |_| true), Some(b));
        assert_eq!(find_after(&buf, 0, 2, |_| true), Some(a));
        assert_eq!(find_after(&buf, 0, 1, |_| false), None);
        assert_eq!(find_after(&buf, b + 1, 1, |_| true), None);
    }
}
