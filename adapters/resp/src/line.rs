//! Finding the CRLF that ends a header line, resumably.

/// What [`find_crlf`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line {
    /// The line's CR is at this index and LF follows it.
    Complete(usize),
    /// No complete CRLF yet; call again when more bytes arrive.
    Incomplete,
    /// More than `max` bytes without a CR.
    TooLong,
    /// A CR followed by something other than LF.
    BadEnd,
}

/// Looks for the CRLF ending the line that starts at `start`, where the line's
/// content may hold at most `max` bytes.
///
/// `scanned` is where the search resumes (no CR before it), and is updated so
/// that feeding a line byte by byte costs O(length) in total. `work` counts the
/// bytes examined, for tests of that bound.
pub(crate) fn find_crlf(
    buf: &[u8],
    start: usize,
    scanned: &mut usize,
    max: usize,
    work: &mut u64,
) -> Line {
    let limit = buf.len().min(start.saturating_add(max).saturating_add(1));
    let from = (*scanned).max(start).min(limit);
    let window = &buf[from..limit];
    match window.iter().position(|&b| b == b'\r') {
        Some(offset) => {
            *work += offset as u64 + 1;
            let cr = from + offset;
            *scanned = cr;
            match buf.get(cr + 1) {
                None => Line::Incomplete,
                Some(b'\n') => Line::Complete(cr),
                Some(_) => Line::BadEnd,
            }
        }
        None => {
            *work += window.len() as u64;
            *scanned = limit;
            if buf.len() - start > max {
                Line::TooLong
            } else {
                Line::Incomplete
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(buf: &[u8], start: usize, max: usize) -> Line {
        find_crlf(buf, start, &mut 0, max, &mut 0)
    }

    #[test]
    fn outcomes() {
        assert_eq!(find(b"*1\r\n", 0, 10), Line::Complete(2));
        assert_eq!(find(b"xx$3\r\n", 2, 10), Line::Complete(4));
        assert_eq!(find(b"*1\r", 0, 10), Line::Incomplete);
        assert_eq!(find(b"*1", 0, 10), Line::Incomplete);
        assert_eq!(find(b"*1\rx", 0, 10), Line::BadEnd);
        // Content of exactly `max` bytes is fine; one more is too long.
        assert_eq!(find(b"12345\r\n", 0, 5), Line::Complete(5));
        assert_eq!(find(b"12345", 0, 5), Line::Incomplete);
        assert_eq!(find(b"123456", 0, 5), Line::TooLong);
        assert_eq!(find(b"123456\r\n", 0, 5), Line::TooLong);
    }

    #[test]
    fn resumes_without_rescanning() {
        let data = b"$1234567890\r\n";
        let (mut scanned, mut work) = (0, 0);
        for end in 1..data.len() {
            assert_eq!(
                find_crlf(&data[..end], 0, &mut scanned, 64, &mut work),
                Line::Incomplete
            );
        }
        assert_eq!(
            find_crlf(data, 0, &mut scanned, 64, &mut work),
            Line::Complete(11)
        );
        // Each byte up to the CR is examined once, plus the CR once more on resume.
        assert!(work <= data.len() as u64 + 1, "examined {work} bytes");
    }
}
