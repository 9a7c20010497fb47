//! Starting a node ([`start`]), its [`NodeHandle`], and the task that drives the machine.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use stepwise_host::{Driver, DriverStats, HostInput, Machine, Outlet, Storage};
use stepwise_raft::{Message, NodeId};
use tokio::net::TcpListener;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::peer::Outbound;
use crate::stats::NetStats;
use crate::transport::{Shared, accept_loop};

/// An input on its way to the node's task.
pub(crate) enum Inbound<R> {
    Receive { from: NodeId, msg: Message },
    Request(R),
}

/// Why a node stopped other than by [`NodeHandle::shutdown`].
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The storage failed; the batch was dropped unsent and the node stopped (restart it
    /// from its storage).
    #[error("storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The node's task panicked (a bug in the machine) or was aborted.
    #[error("node task panicked or was aborted")]
    Panicked,
}

/// The node is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node is not running")]
pub struct Stopped;

/// Submits client requests to a running node. Cheap to clone; usable from async code
/// and from plain threads.
pub struct Submitter<R> {
    tx: mpsc::Sender<Inbound<R>>,
}

impl<R> Clone for Submitter<R> {
    fn clone(&self) -> Self {
        Submitter {
            tx: self.tx.clone(),
        }
    }
}

impl<R> std::fmt::Debug for Submitter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Submitter")
    }
}

impl<R: Send + 'static> Submitter<R> {
    /// Submits a request, waiting while the node's inbox is full.
    pub async fn submit(&self, request: R) -> Result<(), Stopped> {
        self.tx
            .send(Inbound::Request(request))
            .await
            .map_err(|_| Stopped)
    }

    /// Submits a request from a thread outside the runtime, blocking while the inbox is
    /// full. Panics if called from async code (use [`submit`](Self::submit) there).
    pub fn blocking_submit(&self, request: R) -> Result<(), Stopped> {
        self.tx
            .blocking_send(Inbound::Request(request))
            .map_err(|_| Stopped)
    }
}

/// A running node: its machine on a task, its transport on others. Dropping the handle
/// stops them without waiting; [`shutdown`](NodeHandle::shutdown) stops them gracefully.
pub struct NodeHandle<M: Machine, S> {
    id: NodeId,
    local_addr: SocketAddr,
    submitter: Submitter<M::Request>,
    shared: Arc<Shared>,
    driver_stats: Arc<Mutex<DriverStats>>,
    /// Stops accepting, the readers and the node's task.
    stop_inbound: CancellationToken,
    /// Stops the writers (after the node's last batch).
    stop_outbound: CancellationToken,
    driver: JoinHandle<Result<(M, S), NodeError>>,
    net: JoinSet<()>,
}

impl<M: Machine, S> std::fmt::Debug for NodeHandle<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

/// Starts a node: `machine` with its `storage`, listening on `listener`, connecting to
/// the peers in `config`. Must be called within a tokio runtime.
///
/// Each batch of inputs (everything waiting, up to [`NodeConfig::max_batch`], or one
/// tick) is flushed through a [`Driver`]: persistence with one sync, then messages to
/// the peers' queues and events to `events`, in order. On the multi-thread runtime a
/// flush that syncs runs in [`block_in_place`](tokio::task::block_in_place), so a slow
/// disk does not stall the network tasks; on the current-thread runtime it blocks the
/// runtime for the sync (fine for tests and in-memory storage). `events` runs on the
/// node's task: it must not block.
///
/// # Errors
///
/// Only if the listener's address cannot be read.
pub async fn start<M, S, F>(
    config: NodeConfig,
    listener: TcpListener,
    machine: M,
    storage: S,
    events: F,
) -> io::Result<NodeHandle<M, S>>
where
    M: Machine,
    S: Storage + Send + 'static,
    F: FnMut(M::Event) + Send + 'static,
{
    let local_addr = listener.local_addr()?;
    let id = config.id;
    let (tx, rx) = mpsc::channel(config.inbox_capacity.max(1));
    let shared = Arc::new(Shared::new(config));
    let stop_inbound = CancellationToken::new();
    let stop_outbound = CancellationToken::new();
    let mut net = JoinSet::new();
    let outbound = Outbound::start(&shared, &stop_outbound, &mut net);
    net.spawn(accept_loop(
        listener,
        Arc::clone(&shared),
        tx.clone(),
        stop_inbound.clone(),
    ));
    let driver_stats = Arc::new(Mutex::new(DriverStats::default()));
    let task = DriverTask {
        driver: Driver::new(machine, storage),
        rx,
        outlet: NetOutlet { outbound, events },
        shared: Arc::clone(&shared),
        stats: Arc::clone(&driver_stats),
        cancel: stop_inbound.clone(),
    };
    let driver = tokio::spawn(task.run());
    tracing::info!(node = id, addr = %local_addr, "node started");
    Ok(NodeHandle {
        id,
        local_addr,
        submitter: Submitter { tx },
        shared,
        driver_stats,
        stop_inbound,
        stop_outbound,
        driver,
        net,
    })
}

impl<M: Machine, S: Send + 'static> NodeHandle<M, S> {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Where the node listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A submitter for client requests (clone it into client tasks or threads).
    pub fn submitter(&self) -> Submitter<M::Request> {
        self.submitter.clone()
    }

    /// Submits a request, waiting while the inbox is full.
    pub async fn submit(&self, request: M::Request) -> Result<(), Stopped> {
        self.submitter.submit(request).await
    }

    /// The transport's counters.
    pub fn net_stats(&self) -> NetStats {
        self.shared.counters.snapshot()
    }

    /// The driver's counters as of the last flush.
    pub fn stats(&self) -> DriverStats {
        *self
            .driver_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the node's task is still running.
    pub fn is_running(&self) -> bool {
        !self.driver.is_finished()
    }

    /// Stops gracefully: stops accepting connections and reading, lets the node finish
    /// the batch in progress (so its durable writes complete and its last messages are
    /// queued), then closes the outbound connections. Returns the machine and the
    /// storage.
    pub async fn shutdown(mut self) -> Result<(M, S), NodeError> {
        self.stop_inbound.cancel();
        let result = (&mut self.driver).await.unwrap_or(Err(NodeError::Panicked));
        self.stop_outbound.cancel();
        while self.net.join_next().await.is_some() {}
        tracing::info!(node = self.id, "node stopped");
        result
    }

    /// Waits for Ctrl-C, then [`shutdown`](Self::shutdown)s. For binaries.
    pub async fn shutdown_on_ctrl_c(self) -> Result<(M, S), NodeError> {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!(node = self.id, "Ctrl-C: shutting down"),
            Err(e) => tracing::error!(error = %e, "cannot listen for Ctrl-C; shutting down"),
        }
        self.shutdown().await
    }
}

impl<M: Machine, S> Drop for NodeHandle<M, S> {
    fn drop(&mut self) {
        // Without waiting: the tasks end at their next await (the JoinSet aborts the
        // transport's; the node's task stops between batches).
        self.stop_inbound.cancel();
        self.stop_outbound.cancel();
    }
}

struct NetOutlet<F> {
    outbound: Outbound,
    events: F,
}

impl<E, F: FnMut(E)> Outlet<E> for NetOutlet<F> {
    fn send(&mut self, to: NodeId, msg: Message) {
        self.outbound.send(to, msg);
    }

    fn event(&mut self, event: E) {
        (self.events)(event);
    }
}

struct DriverTask<M: Machine, S: Storage, F> {
    driver: Driver<M, S>,
    rx: mpsc::Receiver<Inbound<M::Request>>,
    outlet: NetOutlet<F>,
    shared: Arc<Shared>,
    stats: Arc<Mutex<DriverStats>>,
    cancel: CancellationToken,
}

impl<M, S, F> DriverTask<M, S, F>
where
    M: Machine,
    S: Storage,
    F: FnMut(M::Event),
{
    fn step(&mut self, input: Inbound<M::Request>) {
        match input {
            Inbound::Receive { from, msg } => self.driver.step(HostInput::Receive { from, msg }),
            Inbound::Request(r) => self.driver.step(HostInput::Request(r)),
        }
    }

    fn step_pipelined(&mut self, input: Inbound<M::Request>) {
        match input {
            Inbound::Receive { from, msg } => {
                self.driver.step_pipelined(HostInput::Receive { from, msg })
            }
            Inbound::Request(r) => self.driver.step_pipelined(HostInput::Request(r)),
        }
    }

    /// Whether a blocking sync should run in `block_in_place` (a multi-threaded runtime
    /// and not [`NodeConfig::sync_in_place`]) rather than right on this thread.
    fn may_block_in_place(&self) -> bool {
        Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread
            && !self.shared.config.sync_in_place
    }

    /// Ends the batch and flushes it, waiting for its sync: in `block_in_place` if
    /// `may_block` and the batch persists something, else right here.
    fn flush_blocking(&mut self, may_block: bool) -> Result<(), S::Error> {
        self.driver.end_batch();
        let (driver, outlet) = (&mut self.driver, &mut self.outlet);
        if may_block && driver.needs_persist() {
            tokio::task::block_in_place(|| driver.flush(outlet))
        } else {
            driver.flush(outlet)
        }
    }

    fn publish_stats(&self) {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.driver.stats();
    }

    /// The loop with [`NodeConfig::pipelined_sync`]: each sync's `fdatasync` runs on the
    /// blocking pool while the task goes on stepping; see [`Driver::flush_pipelined`].
    /// While the machine declines ([`Machine::overlap_sync`]) and nothing is in flight,
    /// batches are flushed as in [`run`](Self::run).
    async fn run_pipelined(mut self) -> Result<(M, S), NodeError> {
        let node = self.shared.config.id;
        let tick = self.shared.config.tick;
        let max_batch = self.shared.config.max_batch.max(1);
        let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let storage_failed = |e: Box<dyn std::error::Error + Send + Sync>| {
            tracing::error!(node, error = %e, "storage failed; stopping the node");
            NodeError::Storage(e)
        };
        let may_block = self.may_block_in_place();
        let min_interval = self.shared.config.min_sync_interval;
        let mut last_sync = Instant::now();
        let mut syncing: Option<JoinHandle<Result<(), S::Error>>> = None;
        loop {
            let wake = self.driver.machine().wake_at();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                done = async { syncing.as_mut().expect("guarded by the condition").await },
                    if syncing.is_some() =>
                {
                    syncing = None;
                    match done {
                        Ok(Ok(())) => self.driver.synced(&mut self.outlet),
                        Ok(Err(e)) => return Err(storage_failed(Box::new(e))),
                        Err(_) => return Err(NodeError::Panicked),
                    }
                }
                _ = ticker.tick() => self.driver.step_pipelined(HostInput::Tick),
                input = self.rx.recv() => match input {
                    Some(input) => self.step_pipelined(input),
                    None => break,
                },
                () = sleep_until_wake(wake), if wake.is_some() => {}
            }
            for _ in 1..max_batch {
                match self.rx.try_recv() {
                    Ok(input) => self.step_pipelined(input),
                    Err(_) => break,
                }
            }
            if syncing.is_none()
                && !self.driver.is_syncing()
                && !self.driver.machine().overlap_sync()
            {
                // Nothing in flight and the machine prefers not to overlap now: the
                // blocking flush, as in `run`.
                if let Err(e) = self.flush_blocking(may_block) {
                    return Err(storage_failed(Box::new(e)));
                }
            } else {
                match self.driver.flush_pipelined(&mut self.outlet) {
                    Ok(Some(job)) => {
                        let wait =
                            (last_sync + min_interval).saturating_duration_since(Instant::now());
                        last_sync = Instant::now() + wait;
                        syncing = Some(tokio::task::spawn_blocking(move || {
                            if !wait.is_zero() {
                                std::thread::sleep(wait);
                            }
                            job()
                        }));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(storage_failed(Box::new(e))),
                }
            }
            self.publish_stats();
        }
        // Stopping: complete the sync in flight and sync what is left, so the last
        // durable writes complete and what waited for them goes out.
        if let Some(sync) = syncing.take() {
            match sync.await {
                Ok(Ok(())) => self.driver.synced(&mut self.outlet),
                Ok(Err(e)) => return Err(storage_failed(Box::new(e))),
                Err(_) => return Err(NodeError::Panicked),
            }
        }
        loop {
            match self.driver.flush_pipelined(&mut self.outlet) {
                Ok(Some(job)) => match tokio::task::spawn_blocking(job).await {
                    Ok(Ok(())) => self.driver.synced(&mut self.outlet),
                    Ok(Err(e)) => return Err(storage_failed(Box::new(e))),
                    Err(_) => return Err(NodeError::Panicked),
                },
                Ok(None) => break,
                Err(e) => return Err(storage_failed(Box::new(e))),
            }
        }
        self.publish_stats();
        Ok(self.driver.into_parts())
    }

    async fn run(mut self) -> Result<(M, S), NodeError> {
        if self.shared.config.pipelined_sync {
            return self.run_pipelined().await;
        }
        let node = self.shared.config.id;
        let tick = self.shared.config.tick;
        let max_batch = self.shared.config.max_batch.max(1);
        let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
        // After a stall, tick at the normal rate again rather than in a burst (a burst
        // would shorten every timeout at once).
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let may_block = self.may_block_in_place();
        loop {
            let wake = self.driver.machine().wake_at();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = ticker.tick() => self.driver.step(HostInput::Tick),
                input = self.rx.recv() => match input {
                    Some(input) => self.step(input),
                    None => break,
                },
                () = sleep_until_wake(wake), if wake.is_some() => {}
            }
            for _ in 1..max_batch {
                match self.rx.try_recv() {
                    Ok(input) => self.step(input),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.flush_blocking(may_block) {
                tracing::error!(node, error = %e, "storage failed; stopping the node");
                return Err(NodeError::Storage(Box::new(e)));
            }
            *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.driver.stats();
        }
        Ok(self.driver.into_parts())
    }
}

/// Sleeps until the machine's [`Machine::wake_at`] (the caller polls this only when there
/// is one). Tokio's timer has millisecond resolution, so the wake may come up to about a
/// millisecond late; any input arriving earlier ends the wait sooner.
async fn sleep_until_wake(wake: Option<std::time::Instant>) {
    if let Some(at) = wake {
        tokio::time::sleep_until(Instant::from_std(at)).await;
    }
}
