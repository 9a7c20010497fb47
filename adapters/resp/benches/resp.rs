//! Throughput of the request decoder and the reply encoder.
//!
//! Run with `cargo bench -p stepwise-resp --bench resp`.

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use stepwise_resp::{Decoder, Reply, ReplyDecoder, encode_request};

const BATCH: usize = 1000;
const VALUE_LEN: usize = 128;

/// `BATCH` pipelined `SET key:<n> <128-byte value>` requests, as redis-benchmark sends them.
fn set_batch() -> BytesMut {
    let value = vec![b'x'; VALUE_LEN];
    let mut out = BytesMut::new();
    for n in 0..BATCH {
        let key = format!("key:{n:012}");
        encode_request(&[&b"SET"[..], key.as_bytes(), &value], &mut out);
    }
    out
}

/// The replies a server sends: a mix of `+OK`, bulk values, integers and nulls.
fn reply_batch() -> Vec<Reply> {
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    (0..BATCH)
        .map(|n| match n % 4 {
            0 => Reply::ok(),
            1 => Reply::Bulk(value.clone()),
            2 => Reply::integer(n as i64 * 7919),
            _ => Reply::NullBulk,
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let input = set_batch();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("pipelined_set_128B_x1000", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |buf| {
                let mut decoder = Decoder::default();
                let mut count = 0;
                while let Some(request) = decoder.decode(buf).expect("valid input") {
                    black_box(&request);
                    count += 1;
                }
                assert_eq!(count, BATCH);
            },
            BatchSize::SmallInput,
        );
    });
    // The same bytes arriving 1460 bytes (one TCP segment) at a time.
    group.bench_function("pipelined_set_128B_x1000_segmented", |b| {
        b.iter(|| {
            let mut decoder = Decoder::default();
            let mut buf = BytesMut::with_capacity(16 * 1024);
            let mut count = 0;
            for chunk in input.chunks(1460) {
                buf.extend_from_slice(chunk);
                while let Some(request) = decoder.decode(&mut buf).expect("valid input") {
                    black_box(&request);
                    count += 1;
                }
            }
            assert_eq!(count, BATCH);
        });
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let replies = reply_batch();
    let mut sample = BytesMut::new();
    for reply in &replies {
        reply.encode(&mut sample);
    }
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(sample.len() as u64));
    group.bench_function("replies_mixed_x1000", |b| {
        let mut out = BytesMut::with_capacity(sample.len());
        b.iter(|| {
            out.clear();
            for reply in &replies {
                reply.encode(&mut out);
            }
            black_box(&out);
        });
    });
    group.finish();

    let mut group = c.benchmark_group("decode_replies");
    group.throughput(Throughput::Bytes(sample.len() as u64));
    group.bench_function("replies_mixed_x1000", |b| {
        b.iter_batched_ref(
            || sample.clone(),
            |buf| {
                let mut decoder = ReplyDecoder::default();
                let mut count = 0;
                while let Some(reply) = decoder.decode(buf).expect("valid input") {
                    black_box(&reply);
                    count += 1;
                }
                assert_eq!(count, BATCH);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
