//! In-memory log store and an empty state machine, shaped like the ones of openraft's
//! `benchmarks/minimal`: the log is a `BTreeMap` behind a tokio `RwLock`, reads clone the
//! entries, the state machine keeps only the last applied log id and membership, and a
//! snapshot is that state encoded as JSON.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;

use futures::Stream;
use futures::TryStreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::RaftSnapshotBuilder;
use openraft::entry::RaftEntry;
use openraft::storage::EntryResponder;
use openraft::storage::IOFlushed;
use openraft::storage::LogState;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::StoredMembershipOf;
use openraft::type_config::alias::VoteOf;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::RwLock;

/// The request: empty, as in openraft's benchmark.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Request {}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

/// The response: empty.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Response {}

/// Types of the benchmark cluster: the defaults of `declare_raft_types!` except the empty
/// request/response, `()` as node info and a oneshot responder (openraft's benchmark's
/// choices).
#[derive(Debug, Clone, Copy, Default, Eq, PartialEq, Ord, PartialOrd)]
pub struct Cfg;

#[allow(deprecated)]
impl openraft::RaftTypeConfig for Cfg {
    type D = Request;
    type R = Response;
    type NodeId = u64;
    type Node = ();
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, u64>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = EntryPayload<Request, u64, ()>;
    type Entry =
        openraft::Entry<<Self::LeaderId as openraft::vote::RaftLeaderId>::Committed, Self::Payload>;
    type AsyncRuntime = openraft::impls::TokioRuntime;
    type Responder<T>
        = openraft::impls::OneshotResponder<Self, T>
    where
        T: OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: OptionalSend + 'static;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// Snapshot bytes.
pub type SnapshotData = Vec<u8>;

type Entry = EntryOf<Cfg>;
type LogId = LogIdOf<Cfg>;

/// The log, vote and purge point of one node.
#[derive(Default)]
pub struct LogStore {
    vote: RwLock<Option<VoteOf<Cfg>>>,
    log: RwLock<BTreeMap<u64, Entry>>,
    purged: RwLock<Option<LogId>>,
}

impl RaftLogReader<Cfg> for Arc<LogStore> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let log = self.log.read().await;
        Ok(log.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<Cfg>>, io::Error> {
        Ok(*self.vote.read().await)
    }
}

impl RaftLogStorage<Cfg> for Arc<LogStore> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Cfg>, io::Error> {
        let last = self
            .log
            .read()
            .await
            .values()
            .next_back()
            .map(|e| e.log_id());
        let purged = *self.purged.read().await;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<Cfg>) -> Result<(), io::Error> {
        *self.vote.write().await = Some(*vote);
        Ok(())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Cfg>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.log
            .write()
            .await
            .extend(entries.into_iter().map(|e| (e.index(), e)));
        // Memory is "durable" as soon as the entries are in the map.
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), io::Error> {
        let from = last.map_or(0, |id| id.index() + 1);
        self.log.write().await.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, upto: LogId) -> Result<(), io::Error> {
        *self.purged.write().await = Some(upto);
        let mut log = self.log.write().await;
        let keep = log.split_off(&(upto.index() + 1));
        *log = keep;
        Ok(())
    }
}

/// All the state machine holds: where it is and the membership it applied.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
struct State {
    applied: Option<LogId>,
    membership: StoredMembershipOf<Cfg>,
}

/// The state machine and its latest snapshot.
#[derive(Default)]
pub struct StateMachine {
    state: RwLock<State>,
    snapshot: RwLock<Option<(SnapshotMetaOf<Cfg>, SnapshotData)>>,
}

impl RaftSnapshotBuilder<Cfg> for Arc<StateMachine> {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<Cfg, SnapshotData>, io::Error> {
        let (data, meta) = {
            let s = self.state.read().await;
            let data = serde_json::to_vec(&*s).map_err(io::Error::other)?;
            let meta = SnapshotMetaOf::<Cfg> {
                last_log_id: s.applied,
                last_membership: s.membership.clone(),
            };
            (data, meta)
        };
        *self.snapshot.write().await = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<Cfg, SnapshotData> {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<Cfg> for Arc<StateMachine> {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembershipOf<Cfg>), io::Error> {
        let s = self.state.read().await;
        Ok((s.applied, s.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: Stream<Item = Result<EntryResponder<Cfg>, io::Error>> + Unpin + OptionalSend,
    {
        let mut s = self.state.write().await;
        while let Some((entry, responder)) = entries.try_next().await? {
            s.applied = Some(entry.log_id);
            if let EntryPayload::Membership(m) = &entry.payload {
                s.membership = StoredMembershipOf::<Cfg>::new(Some(entry.log_id), m.clone());
            }
            if let Some(r) = responder {
                r.send(Response {});
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Cfg>,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let state: State = serde_json::from_slice(&snapshot).map_err(io::Error::other)?;
        *self.state.write().await = state;
        *self.snapshot.write().await = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<Cfg, SnapshotData>>, io::Error> {
        Ok(self.snapshot.read().await.as_ref().map(
            |(meta, data)| SnapshotOf::<Cfg, SnapshotData> {
                meta: meta.clone(),
                snapshot: data.clone(),
            },
        ))
    }
}
