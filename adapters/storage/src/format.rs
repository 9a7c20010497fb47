//! On-disk types and file names.
//!
//! All bodies are postcard. Each record body starts with a [`RecordHead`], a versioned enum:
//! its variant index (one byte) says what the record is and which version wrote it. A new
//! version adds variants and keeps reading the old ones. None of these types uses
//! `skip_serializing_if`, `flatten` or `untagged`.

use serde::{Deserialize, Serialize};
use stepwise_raft::{Entry, HardState, Index, SnapshotMeta};

use crate::record;

/// First 8 bytes of every log segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"stepwal1";
/// First 8 bytes of every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"stepsnp1";
/// First body byte of a [`RecordHead::ChunkV1`] record (postcard's variant index).
pub(crate) const CHUNK_TAG: u8 = 1;

/// Which snapshot file holds the snapshot, and what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapRef {
    /// The snapshot file's number (`snap-<file>.snap`).
    pub file: u64,
    /// The last entry the snapshot covers.
    pub meta: SnapshotMeta,
}

/// The first record of every segment: a checkpoint of everything except the log entries,
/// so that older segments can be deleted without losing the hard state or the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentHeader {
    /// The segment's number (also in its file name).
    pub segment: u64,
    /// The number of the first batch in this segment.
    pub first_batch: u64,
    /// Term and vote when the segment was started.
    pub hard_state: HardState,
    /// The snapshot in force when the segment was started.
    pub snapshot: Option<SnapRef>,
}

/// The first record of a snapshot file; the raw snapshot data follows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    /// The file's number (also in its name).
    pub file: u64,
    /// The last entry the snapshot covers.
    pub meta: SnapshotMeta,
    /// Length of the data after this record.
    pub data_len: u64,
    /// CRC-32 of that data.
    pub data_crc: u32,
}

/// What a record is. Postcard writes the variant index first: that byte is the version tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RecordHead {
    /// Segment header, version 1 (no payload).
    SegmentV1(SegmentHeader),
    /// A piece of a batch, version 1. The payload is the next bytes of the batch body (a
    /// sequence of postcard [`Op`]s); the batch is complete at the chunk with `last`.
    ChunkV1 {
        /// The batch number: one batch per `sync`, consecutive across the whole log.
        batch: u64,
        /// Whether this chunk ends the batch.
        last: bool,
    },
    /// Snapshot file header, version 1 (no payload; the data follows the record).
    SnapshotV1(SnapshotHeader),
}

/// One persistence action as logged (decoding side). The variant order is the format.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) enum Op {
    /// `SaveHardState`.
    HardState(HardState),
    /// `AppendLog`: consecutive entries.
    Append(Vec<Entry>),
    /// `TruncateLog`.
    Truncate {
        /// First index removed.
        from: Index,
    },
    /// `SaveSnapshot`: the data is in snapshot file `file`. `holds` records whether the log
    /// held `meta.index` with `meta.term` when the action was applied, so replay does not
    /// depend on entries in segments that may have been deleted since.
    Snapshot {
        /// The snapshot file.
        file: u64,
        /// What it covers.
        meta: SnapshotMeta,
        /// Keep the entries after `meta.index` (true) or discard all entries (false).
        holds: bool,
    },
}

/// [`Op`] for encoding, borrowing the entries (same variants, same order).
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) enum OpRef<'a> {
    /// See [`Op::HardState`].
    HardState(HardState),
    /// See [`Op::Append`].
    Append(&'a [Entry]),
    /// See [`Op::Truncate`].
    Truncate {
        /// First index removed.
        from: Index,
    },
    /// See [`Op::Snapshot`].
    Snapshot {
        /// The snapshot file.
        file: u64,
        /// What it covers.
        meta: SnapshotMeta,
        /// Keep the entries after `meta.index`.
        holds: bool,
    },
}

/// Appends the postcard encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let taken = std::mem::take(out);
    // Encoding our own plain types into a Vec cannot fail (no maps of unknown length, no
    // I/O, no size limit).
    *out = postcard::to_extend(value, taken).expect("postcard encoding into a Vec");
}

/// Appends a framed record (`head` then `payload`) to `out`.
pub(crate) fn push_record(out: &mut Vec<u8>, head: &RecordHead, payload: &[u8]) {
    let start = record::begin(out);
    encode_into(head, out);
    out.extend_from_slice(payload);
    record::finish(out, start);
}

/// Splits a record body into its head and payload; `None` if the head does not decode.
pub(crate) fn decode_head(body: &[u8]) -> Option<(RecordHead, &[u8])> {
    postcard::take_from_bytes::<RecordHead>(body).ok()
}

/// Decodes a complete batch body into its operations.
pub(crate) fn decode_ops(mut body: &[u8]) -> Result<Vec<Op>, postcard::Error> {
    let mut ops = Vec::new();
    while !body.is_empty() {
        let (op, rest) = postcard::take_from_bytes::<Op>(body)?;
        ops.push(op);
        body = rest;
    }
    Ok(ops)
}

/// File name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("wal-{seq:016x}.log")
}

/// File name of snapshot file `file`.
pub(crate) fn snapshot_name(file: u64) -> String {
    format!("snap-{file:016x}.snap")
}

/// What a directory entry is, judged by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A log segment and its number.
    Segment(u64),
    /// A snapshot file and its number.
    Snapshot(u64),
    /// A leftover temporary file (from a crash while creating a segment).
    Temp,
    /// Not ours.
    Other,
}

/// Classifies a file name.
pub(crate) fn classify(name: &str) -> FileKind {
    fn hex(s: &str) -> Option<u64> {
        (s.len() == 16)
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    }
    if name.ends_with(".tmp") && (name.starts_with("wal-") || name.starts_with("snap-")) {
        return FileKind::Temp;
    }
    if let Some(seq) = name
        .strip_prefix("wal-")
        .and_then(|s| s.strip_suffix(".log"))
        .and_then(hex)
    {
        return FileKind::Segment(seq);
    }
    if let Some(file) = name
        .strip_prefix("snap-")
        .and_then(|s| s.strip_suffix(".snap"))
        .and_then(hex)
    {
        return FileKind::Snapshot(file);
    }
    FileKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use stepwise_raft::Payload;

    #[test]
    fn chunk_tag_is_the_first_body_byte() {
        let mut out = Vec::new();
        encode_into(
            &RecordHead::ChunkV1 {
                batch: 300,
                last: true,
            },
            &mut out,
        );
        assert_eq!(out[0], CHUNK_TAG);
    }

    #[test]
    fn op_ref_encodes_as_op() {
        let entries = vec![
            Entry {
                term: 3,
                index: 9,
                payload: Payload::Noop,
            },
            Entry {
                term: 3,
                index: 10,
                payload: Payload::Command(Bytes::from_static(b"set x 1")),
            },
        ];
        let hs = HardState {
            term: 4,
            vote: Some(2),
        };
        let meta = SnapshotMeta { index: 8, term: 2 };
        let refs = [
            OpRef::HardState(hs),
            OpRef::Append(&entries),
            OpRef::Truncate { from: 7 },
            OpRef::Snapshot {
                file: 5,
                meta,
                holds: true,
            },
        ];
        let mut body = Vec::new();
        for r in &refs {
            encode_into(r, &mut body);
        }
        let ops = decode_ops(&body).unwrap();
        assert_eq!(
            ops,
            vec![
                Op::HardState(hs),
                Op::Append(entries.clone()),
                Op::Truncate { from: 7 },
                Op::Snapshot {
                    file: 5,
                    meta,
                    holds: true
                },
            ]
        );
        // A cut batch body never decodes to a shorter valid sequence by accident here.
        assert!(decode_ops(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn head_round_trip_with_payload() {
        let head = RecordHead::SegmentV1(SegmentHeader {
            segment: 7,
            first_batch: 99,
            hard_state: HardState::default(),
            snapshot: Some(SnapRef {
                file: 2,
                meta: SnapshotMeta { index: 5, term: 1 },
            }),
        });
        let mut out = Vec::new();
        push_record(&mut out, &head, b"tail");
        let (body, end) = record::parse(&out, 0).unwrap();
        assert_eq!(end, out.len());
        assert_eq!(decode_head(body), Some((head, &b"tail"[..])));
        assert_eq!(decode_head(&[200]), None);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(classify(&segment_name(0x2a)), FileKind::Segment(0x2a));
        assert_eq!(
            classify(&snapshot_name(u64::MAX)),
            FileKind::Snapshot(u64::MAX)
        );
        assert_eq!(classify("wal-000000000000002a.log.tmp"), FileKind::Temp);
        assert_eq!(classify("wal-2a.log"), FileKind::Other);
        assert_eq!(classify("notes.txt"), FileKind::Other);
    }
}
