//! In-process network: an RPC is a direct async call on the target node's `Raft` handle,
//! with no serialization and no copying beyond what openraft itself does (as in openraft's
//! `benchmarks/minimal`, whose v1 network is wrapped by `openraft-legacy`'s `Adapter`, which
//! forwards `append_entries` and `vote` unchanged).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;

use openraft::OptionalSend;
use openraft::Raft;
use openraft::RaftNetworkFactory;
use openraft::RaftNetworkV2;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::VoteOf;

use crate::store::Cfg;
use crate::store::SnapshotData;
use crate::store::StateMachine;

/// A node of the benchmark cluster.
pub type BenchRaft = Raft<Cfg, Arc<StateMachine>>;

/// Every node's handle, by id; each node's network factory is a clone.
#[derive(Clone, Default)]
pub struct Router {
    /// The nodes.
    pub table: Arc<Mutex<BTreeMap<u64, BenchRaft>>>,
}

impl Router {
    fn get(&self, id: u64) -> BenchRaft {
        self.table
            .lock()
            .unwrap()
            .get(&id)
            .expect("every member is registered before the cluster starts")
            .clone()
    }
}

impl RaftNetworkFactory<Cfg> for Router {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, _node: &()) -> Peer {
        Peer {
            target: self.get(target),
        }
    }
}

/// The connection from one node to one peer.
pub struct Peer {
    target: BenchRaft,
}

fn unreachable<E: std::error::Error + 'static>(e: E) -> Unreachable<Cfg> {
    Unreachable::new(&e)
}

impl RaftNetworkV2<Cfg> for Peer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Cfg>, RPCError<Cfg>> {
        self.target
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::Unreachable(unreachable(e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Cfg>, RPCError<Cfg>> {
        self.target
            .vote(rpc)
            .await
            .map_err(|e| RPCError::Unreachable(unreachable(e)))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Cfg>, RPCError<Cfg>> {
        self.target
            .pre_vote(rpc)
            .await
            .map_err(|e| RPCError::Unreachable(unreachable(e)))
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<Cfg>,
        snapshot: SnapshotOf<Cfg, SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Cfg>, StreamingError<Cfg>> {
        self.target
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::Unreachable(unreachable(e)))
    }
}
