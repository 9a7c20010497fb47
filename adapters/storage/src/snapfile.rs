//! Snapshot files: `magic | record(SnapshotV1 header) | raw data`.
//!
//! Each snapshot gets a fresh file number and is written under its final name. It becomes
//! part of the state only when a log record naming it is durable, and that record is
//! written only after the file and its directory entry are synced. So a snapshot file
//! never has to replace another one atomically: a crash leaves at worst an unreferenced
//! file, which the next open deletes.

use std::path::Path;

use bytes::Bytes;
use stepwise_raft::Snapshot;

use crate::error::{StorageError, io_err};
use crate::format::{self, RecordHead, SNAPSHOT_MAGIC, SnapshotHeader};
use crate::record;

/// Everything before the data: magic and header record.
pub(crate) fn encode_head(file: u64, snap: &Snapshot) -> Vec<u8> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    let header = SnapshotHeader {
        file,
        meta: snap.meta,
        data_len: snap.data.len() as u64,
        data_crc: crc32fast::hash(&snap.data),
    };
    format::push_record(&mut out, &RecordHead::SnapshotV1(header), &[]);
    out
}

/// Reads and checks snapshot file number `file` at `path`.
pub(crate) fn read(path: &Path, file: u64) -> Result<Snapshot, StorageError> {
    let buf = std::fs::read(path).map_err(io_err(path))?;
    let corrupt =
        |offset: usize, reason: String| StorageError::corrupt(path, offset as u64, reason);
    if buf.get(..SNAPSHOT_MAGIC.len()) != Some(&SNAPSHOT_MAGIC[..]) {
        return Err(corrupt(
            0,
            "not a stepwise snapshot file (bad magic)".into(),
        ));
    }
    let at = SNAPSHOT_MAGIC.len();
    let (body, end) = record::parse(&buf, at).map_err(|e| corrupt(at, e.describe()))?;
    let header = match format::decode_head(body) {
        Some((RecordHead::SnapshotV1(h), [])) => h,
        _ => {
            return Err(corrupt(
                at,
                "not a snapshot header (unknown version?)".into(),
            ));
        }
    };
    if header.file != file {
        return Err(corrupt(
            at,
            format!("header says file {} but the name says {file}", header.file),
        ));
    }
    let data_len = (buf.len() - end) as u64;
    if data_len != header.data_len {
        return Err(corrupt(
            end,
            format!(
                "snapshot data is {data_len} bytes, the header says {}",
                header.data_len
            ),
        ));
    }
    if crc32fast::hash(&buf[end..]) != header.data_crc {
        return Err(corrupt(end, "snapshot data checksum mismatch".into()));
    }
    Ok(Snapshot {
        meta: header.meta,
        data: Bytes::from(buf).slice(end..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_raft::SnapshotMeta;

    fn snap() -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { index: 10, term: 3 },
            data: Bytes::from_static(b"service state"),
        }
    }

    fn write(dir: &Path, file: u64, s: &Snapshot) -> std::path::PathBuf {
        let path = dir.join(format::snapshot_name(file));
        let mut bytes = encode_head(file, s);
        bytes.extend_from_slice(&s.data);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 4, &snap());
        assert_eq!(read(&path, 4).unwrap(), snap());
        assert!(matches!(
            read(&path, 5),
            Err(StorageError::Corrupt { offset: 8, .. })
        ));
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 1, &snap());
        let good = std::fs::read(&path).unwrap();
        let mut bads = Vec::new();
        for cut in 0..good.len() {
            bads.push(good[..cut].to_vec());
        }
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x40;
            bads.push(b);
        }
        for bad in bads {
            std::fs::write(&path, &bad).unwrap();
            match read(&path, 1) {
                Err(StorageError::Corrupt {
                    path: p, offset, ..
                }) => {
                    assert_eq!(p, path);
                    assert!(offset as usize <= bad.len());
                }
                other => panic!("expected corruption, got {other:?}"),
            }
        }
    }
}
