//! `etcd-load`: puts or linearizable gets against etcd v3's gRPC KV service, with N
//! clients each keeping one request outstanding (like `redis-benchmark -c N`), over
//! C HTTP/2 connections (default: one per client, as redis-benchmark opens one TCP
//! connection per client). Prints one line: `op,clients,requests,ops_per_s,p50_ms,p99_ms`.
//!
//! The few etcd protobuf messages are declared by hand with prost derives (field numbers
//! from etcd's `rpc.proto` and `kv.proto`), so no protoc is needed.
//!
//! ```text
//! etcd-load --endpoint http://127.0.0.1:2379 --op put --clients 16 --requests 50000 --size 128
//! ```

use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use tonic::codec::ProstCodec;
use tonic::transport::{Channel, Endpoint};

/// etcdserverpb.ResponseHeader.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    #[prost(int64, tag = "3")]
    pub revision: i64,
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// mvccpb.KeyValue.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    #[prost(int64, tag = "4")]
    pub version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// etcdserverpb.PutRequest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub lease: i64,
    #[prost(bool, tag = "4")]
    pub prev_kv: bool,
}

/// etcdserverpb.PutResponse.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(message, optional, tag = "2")]
    pub prev_kv: Option<KeyValue>,
}

/// etcdserverpb.RangeRequest (the fields a point read needs; `serializable = false` is
/// a linearizable read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub limit: i64,
    #[prost(int64, tag = "4")]
    pub revision: i64,
    #[prost(bool, tag = "7")]
    pub serializable: bool,
}

/// etcdserverpb.RangeResponse.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    #[prost(bool, tag = "3")]
    pub more: bool,
    #[prost(int64, tag = "4")]
    pub count: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
}

struct Args {
    endpoint: String,
    op: Op,
    clients: usize,
    conns: usize,
    requests: usize,
    size: usize,
    key: Vec<u8>,
}

fn usage() -> ! {
    eprintln!(
        "usage: etcd-load --endpoint URL --op put|get [--clients N] [--conns C] \
         [--requests N] [--size BYTES] [--key KEY]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        endpoint: "http://127.0.0.1:2379".into(),
        op: Op::Put,
        clients: 1,
        conns: 0,
        requests: 10_000,
        size: 128,
        key: b"key:__rand_int__".to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let num = || value.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--endpoint" => a.endpoint = value.clone(),
            "--op" => {
                a.op = match value.as_str() {
                    "put" => Op::Put,
                    "get" => Op::Get,
                    _ => usage(),
                }
            }
            "--clients" => a.clients = num().max(1),
            "--conns" => a.conns = num(),
            "--requests" => a.requests = num().max(1),
            "--size" => a.size = num(),
            "--key" => a.key = value.clone().into_bytes(),
            _ => usage(),
        }
    }
    if a.conns == 0 {
        a.conns = a.clients;
    }
    a
}

/// One client: `n` requests, one at a time, each latency recorded in microseconds.
async fn client(channel: Channel, op: Op, n: usize, key: Vec<u8>, value: Vec<u8>) -> Vec<u32> {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        grpc.ready().await.expect("channel ready");
        match op {
            Op::Put => {
                let req = PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    lease: 0,
                    prev_kv: false,
                };
                let path = PathAndQuery::from_static("/etcdserverpb.KV/Put");
                let codec = ProstCodec::<PutRequest, PutResponse>::default();
                grpc.unary(tonic::Request::new(req), path, codec)
                    .await
                    .expect("put failed");
            }
            Op::Get => {
                let req = RangeRequest {
                    key: key.clone(),
                    range_end: Vec::new(),
                    limit: 0,
                    revision: 0,
                    serializable: false,
                };
                let path = PathAndQuery::from_static("/etcdserverpb.KV/Range");
                let codec = ProstCodec::<RangeRequest, RangeResponse>::default();
                grpc.unary(tonic::Request::new(req), path, codec)
                    .await
                    .expect("range failed");
            }
        }
        lat.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    lat
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let mut channels = Vec::with_capacity(a.conns);
    for _ in 0..a.conns {
        let ch = Endpoint::from_shared(a.endpoint.clone())
            .expect("endpoint URL")
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to etcd");
        channels.push(ch);
    }
    let value = vec![b'x'; a.size];
    // Warm-up: one request per connection (connection setup is not measured).
    for ch in &channels {
        client(ch.clone(), a.op, 1, a.key.clone(), value.clone()).await;
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(a.clients);
    for i in 0..a.clients {
        let n = a.requests / a.clients + usize::from(i < a.requests % a.clients);
        let ch = channels[i % a.conns].clone();
        tasks.push(tokio::spawn(client(ch, a.op, n, a.key.clone(), value.clone())));
    }
    let mut all = Vec::with_capacity(a.requests);
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let op = match a.op {
        Op::Put => "put",
        Op::Get => "get",
    };
    println!(
        "{op},{},{},{:.0},{:.3},{:.3}",
        a.clients,
        all.len(),
        all.len() as f64 / secs,
        pct(&all, 0.50),
        pct(&all, 0.99)
    );
}
