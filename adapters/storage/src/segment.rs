//! Log segment files: `magic | record(SegmentV1 header) | chunk records...`.
//!
//! A segment is created under a temporary name, with its header written and synced, then
//! renamed into place (and the directory synced). So a segment under its final name
//! always has a complete header; only its tail can be torn by a crash.
//!
//! Each `sync` writes one *batch*: the batch body (the postcard-encoded operations) cut
//! into chunk records of at most 1 MiB, the last one flagged. A batch is applied on
//! replay only if all its chunks are intact, so every batch is atomic.

use std::path::Path;

use crate::error::StorageError;
use crate::format::{self, CHUNK_TAG, Op, RecordHead, SEGMENT_MAGIC, SegmentHeader};
use crate::record;

/// Magic and header record of a new segment.
pub(crate) fn encode_head(header: &SegmentHeader) -> Vec<u8> {
    let mut out = SEGMENT_MAGIC.to_vec();
    format::push_record(&mut out, &RecordHead::SegmentV1(header.clone()), &[]);
    out
}

/// Reads the magic and header of a segment. Returns the header and where the chunks start.
pub(crate) fn read_head(path: &Path, buf: &[u8]) -> Result<(SegmentHeader, usize), StorageError> {
    if buf.get(..SEGMENT_MAGIC.len()) != Some(&SEGMENT_MAGIC[..]) {
        return Err(StorageError::corrupt(
            path,
            0,
            "not a stepwise log segment (bad magic)",
        ));
    }
    let at = SEGMENT_MAGIC.len();
    let (body, end) =
        record::parse(buf, at).map_err(|e| StorageError::corrupt(path, at as u64, e.describe()))?;
    match format::decode_head(body) {
        Some((RecordHead::SegmentV1(header), [])) => Ok((header, end)),
        _ => Err(StorageError::corrupt(
            path,
            at as u64,
            "not a segment header (unknown version?)",
        )),
    }
}

/// How the chunks of a segment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// The number the next batch gets.
    pub next_batch: u64,
    /// Offset just after the last complete batch.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` (if any) were judged a torn write.
    pub torn: Option<String>,
}

/// Reads the batches of a segment from `at`, calling `on_batch(offset, ops)` for each
/// complete batch in order. `first_batch` is the number the first batch must have.
///
/// In the last segment (`is_last`), damage is a torn write (reported in [`Tail::torn`];
/// the caller cuts it off) when no intact record of a *later* batch follows it: a later
/// batch is written only after the earlier one was synced, so an intact later batch
/// proves the damaged bytes had been durable. Anything else is corruption, reported with
/// the offset of the first bad record. In other segments every defect is corruption: they
/// were complete and synced before the next segment was created.
pub(crate) fn read_batches(
    path: &Path,
    buf: &[u8],
    at: usize,
    first_batch: u64,
    is_last: bool,
    mut on_batch: impl FnMut(u64, Vec<Op>) -> Result<(), StorageError>,
) -> Result<Tail, StorageError> {
    let mut at = at;
    let mut batch = first_batch;
    let mut batch_start = at;
    let mut body = Vec::new();
    let damaged = |at: usize, batch: u64, batch_start: usize, reason: String| {
        if !is_last {
            return Err(StorageError::corrupt(path, at as u64, reason));
        }
        let later = record::find_after(
            buf,
            at + 1,
            CHUNK_TAG,
            |body| matches!(format::decode_head(body), Some((RecordHead::ChunkV1 { batch: b, .. }, _)) if b != batch),
        );
        match later {
            Some(next) => Err(StorageError::corrupt(
                path,
                at as u64,
                format!(
                    "{reason} (an intact record follows at byte {next}, so this is not a torn write)"
                ),
            )),
            None => Ok(Tail {
                next_batch: batch,
                valid_len: batch_start as u64,
                torn: Some(format!("{reason} at byte {at}")),
            }),
        }
    };
    loop {
        if at == buf.len() {
            if batch_start != at {
                let reason = format!("file ends inside batch {batch}");
                return damaged(at, batch, batch_start, reason);
            }
            return Ok(Tail {
                next_batch: batch,
                valid_len: at as u64,
                torn: None,
            });
        }
        if batch_start == at && buf[at..].iter().all(|&b| b == 0) {
            // Preallocated space past the last batch (see `StorageOptions::preallocate`):
            // the end of the log. A batch that was being written there when the process
            // stopped left non-zero bytes and is handled as a torn write below.
            return Ok(Tail {
                next_batch: batch,
                valid_len: at as u64,
                torn: None,
            });
        }
        let (rec, next) = match record::parse(buf, at) {
            Ok(r) => r,
            Err(e) => return damaged(at, batch, batch_start, e.describe()),
        };
        match format::decode_head(rec) {
            Some((RecordHead::ChunkV1 { batch: b, last }, payload)) if b == batch => {
                body.extend_from_slice(payload);
                at = next;
                if last {
                    let ops = format::decode_ops(&body).map_err(|e| {
                        StorageError::corrupt(
                            path,
                            batch_start as u64,
                            format!("batch {batch} does not decode: {e}"),
                        )
                    })?;
                    on_batch(batch_start as u64, ops)?;
                    body.clear();
                    batch += 1;
                    batch_start = at;
                }
            }
            Some((RecordHead::ChunkV1 { batch: b, .. }, _)) => {
                return Err(StorageError::corrupt(
                    path,
                    at as u64,
                    format!("found batch {b} where batch {batch} was expected"),
                ));
            }
            _ => {
                return Err(StorageError::corrupt(
                    path,
                    at as u64,
                    "unexpected record kind (written by a newer version?)",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{OpRef, encode_into};
    use stepwise_raft::HardState;

    fn hs(term: u64) -> HardState {
        HardState {
            term,
            vote: Some(1),
        }
    }

    /// A segment with batches 5, 6, 7; returns it and the offsets after each batch.
    /// Batch 6 is split into two chunks by hand.
    fn sample() -> (Vec<u8>, Vec<usize>) {
        let header = SegmentHeader {
            segment: 2,
            first_batch: 5,
            hard_state: HardState::default(),
            snapshot: None,
        };
        let mut buf = encode_head(&header);
        let mut ends = vec![buf.len()];
        for (batch, term) in [(5, 1), (6, 2), (7, 3)] {
            let mut body = Vec::new();
            encode_into(&OpRef::HardState(hs(term)), &mut body);
            encode_into(&OpRef::Truncate { from: term }, &mut body);
            if batch == 6 {
                let (a, b) = body.split_at(3);
                let head = |last| RecordHead::ChunkV1 { batch, last };
                format::push_record(&mut buf, &head(false), a);
                format::push_record(&mut buf, &head(true), b);
            } else {
                let head = RecordHead::ChunkV1 { batch, last: true };
                format::push_record(&mut buf, &head, &body);
            }
            ends.push(buf.len());
        }
        (buf, ends)
    }

    fn read(buf: &[u8], is_last: bool) -> Result<(Tail, Vec<u64>), StorageError> {
        let path = Path::new("seg");
        let (header, at) = read_head(path, buf)?;
        let mut terms = Vec::new();
        let tail = read_batches(path, buf, at, header.first_batch, is_last, |_, ops| {
            match ops[0] {
                Op::HardState(h) => terms.push(h.term),
                _ => panic!("sample batches start with a hard state"),
            }
            Ok(())
        })?;
        Ok((tail, terms))
    }

    #[test]
    fn clean_segment_reads_all_batches() {
        let (buf, _) = sample();
        let (tail, terms) = read(&buf, false).unwrap();
        assert_eq!(terms, [1, 2, 3]);
        assert_eq!(tail.next_batch, 8);
        assert_eq!(tail.valid_len, buf.len() as u64);
        assert_eq!(tail.torn, None);
    }

    #[test]
    fn every_cut_of_the_last_segment_keeps_the_complete_batches() {
        let (buf, ends) = sample();
        for cut in ends[0]..=buf.len() {
            let (tail, terms) = read(&buf[..cut], true).unwrap();
            let complete = ends[1..].iter().filter(|&&e| e <= cut).count();
            assert_eq!(terms.len(), complete, "cut at {cut}");
            assert_eq!(tail.valid_len as usize, ends[complete]);
            assert_eq!(tail.torn.is_some(), cut != ends[complete]);
            // The same cut in an earlier segment is corruption unless it is clean.
            assert_eq!(read(&buf[..cut], false).is_err(), cut != ends[complete]);
        }
        for cut in 0..ends[0] {
            assert!(matches!(
                read(&buf[..cut], true),
                Err(StorageError::Corrupt { .. })
            ));
        }
    }

    #[test]
    fn damage_followed_by_a_later_batch_is_corruption_at_the_record() {
        let (buf, ends) = sample();
        for i in ends[0]..ends[3] {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            let result = read(&bad, true);
            if i < ends[2] {
                // Batch 5 or 6: batch 7 is intact after it.
                let record_start = if i < ends[1] {
                    ends[0]
                } else {
                    // Batch 6 has two chunks; find which one holds byte i.
                    let (_, second) = record::parse(&buf, ends[1]).unwrap();
                    if i < second { ends[1] } else { second }
                };
                match result {
                    Err(StorageError::Corrupt { offset, .. }) => {
                        assert_eq!(offset as usize, record_start, "flip at {i}")
                    }
                    other => panic!("flip at {i}: expected corruption, got {other:?}"),
                }
            } else {
                // The last batch: indistinguishable from a torn write; the batch is dropped.
                let (tail, terms) = result.unwrap();
                assert_eq!(terms, [1, 2]);
                assert_eq!(tail.valid_len as usize, ends[2]);
            }
        }
    }

    #[test]
    fn a_hole_inside_the_last_batch_is_a_torn_write() {
        // Out-of-order writeback: the first chunk of the last batch is lost (zeros), the
        // second reached the disk.
        let (buf, ends) = sample();
        let mut holed = buf[..ends[2]].to_vec();
        let (_, second) = record::parse(&buf, ends[1]).unwrap();
        holed[ends[1]..second].fill(0);
        let (tail, terms) = read(&holed, true).unwrap();
        assert_eq!(terms, [1]);
        assert_eq!(tail.valid_len as usize, ends[1]);
        assert_eq!(tail.next_batch, 6);
        assert!(read(&holed, false).is_err());
    }
}
