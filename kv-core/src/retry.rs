//! Which server of a replicated group to send a request to, and when to send it again.
//!
//! The bookkeeping every client of a Raft group needs: remember the leader, move on to the
//! next server on a refusal (following the server's leader hint) or when no answer came
//! within `retry_ticks`, and pause `backoff_ticks` after every server in turn refused, so
//! an election in progress is not flooded. The KV [`Clerk`](crate::clerk::Clerk) uses it,
//! and so do the sharded service's clerks and its groups' requests to each other. It
//! decides only *where* and *when*; its owner builds and sends the requests.
//!
//! ```
//! use stepwise_kv::retry::Retry;
//!
//! // Three servers; resend after 3 ticks without an answer, back off 4 ticks.
//! let mut retry = Retry::new(vec![10, 11, 12], 3, 4);
//! assert_eq!(retry.target(), 10);
//! retry.sent(); // the owner sent a copy to 10
//! // 10 is not the leader and names 12: send the next copy there at once.
//! assert!(retry.refused(10, Some(12)));
//! assert_eq!(retry.target(), 12);
//! retry.sent();
//! // No answer from 12 within 3 ticks: the third tick says to resend, to the next server.
//! assert!(!retry.tick() && !retry.tick());
//! assert!(retry.tick());
//! assert_eq!(retry.target(), 10);
//! retry.sent();
//! // 10 answers this time: it is tried first from now on.
//! retry.answered(10);
//! assert_eq!(retry.target(), 10);
//! ```

use stepwise_raft::NodeId;

/// A server's address (its Raft id in the group).
type Addr = NodeId;

/// Target selection and retransmission timing for one group of servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    servers: Vec<Addr>,
    /// Index in `servers` of the server believed to lead.
    leader: usize,
    since_send: u32,
    refusals: usize,
    backoff: Option<u32>,
    retry_ticks: u32,
    backoff_ticks: u32,
}

impl Retry {
    /// Starts with the first server.
    ///
    /// # Panics
    /// If `servers` is empty (a request with nobody to send it to is a setup bug).
    pub fn new(servers: Vec<Addr>, retry_ticks: u32, backoff_ticks: u32) -> Self {
        assert!(!servers.is_empty(), "a group has at least one server");
        Retry {
            servers,
            leader: 0,
            since_send: 0,
            refusals: 0,
            backoff: None,
            retry_ticks: retry_ticks.max(1),
            backoff_ticks: backoff_ticks.max(1),
        }
    }

    /// The servers.
    pub fn servers(&self) -> &[Addr] {
        &self.servers
    }

    /// The server to send to now.
    pub fn target(&self) -> Addr {
        self.servers[self.leader]
    }

    /// Whether a copy is due but waits for a back-off to end.
    pub fn backing_off(&self) -> bool {
        self.backoff.is_some()
    }

    /// Replaces the server list (a newer configuration); keeps the leader if it is still
    /// a member. An empty list is ignored.
    pub fn set_servers(&mut self, servers: &[Addr]) {
        if servers.is_empty() || servers == self.servers.as_slice() {
            return;
        }
        let leader = self.target();
        self.servers = servers.to_vec();
        self.leader = self.servers.iter().position(|&s| s == leader).unwrap_or(0);
        self.refusals = 0;
    }

    /// Records that a copy was sent to [`Retry::target`].
    pub fn sent(&mut self) {
        self.since_send = 0;
        self.backoff = None;
    }

    /// Waits `ticks` before the next copy (the server asked to be asked again later).
    pub fn wait(&mut self, ticks: u32) {
        self.backoff = Some(ticks.max(1));
    }

    /// One tick passed. Returns true if a copy must be sent now to [`Retry::target`]: a
    /// back-off ended, or the last copy went unanswered for `retry_ticks` (then the target
    /// moves to the next server).
    pub fn tick(&mut self) -> bool {
        match &mut self.backoff {
            Some(left) => {
                *left = left.saturating_sub(1);
                *left == 0
            }
            None => {
                self.since_send += 1;
                if self.since_send >= self.retry_ticks {
                    self.leader = (self.leader + 1) % self.servers.len();
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Server `from` refused because it is not the leader (with the leader it knows of).
    /// Returns true if a copy must be sent now to [`Retry::target`]; false if the refusal
    /// is ignored (it came from a server already left behind) or a back-off started.
    pub fn refused(&mut self, from: Addr, hint: Option<Addr>) -> bool {
        if from != self.target() || self.backoff.is_some() {
            return false;
        }
        let n = self.servers.len();
        self.refusals += 1;
        let hinted = hint
            .filter(|&l| l != from)
            .and_then(|l| self.servers.iter().position(|&s| s == l));
        self.leader = hinted.unwrap_or((self.leader + 1) % n);
        if (self.refusals >= n && hinted.is_none()) || self.refusals >= 2 * n {
            // Everyone refused, or hints go round in circles: an election is under way.
            self.refusals = 0;
            self.backoff = Some(self.backoff_ticks);
            false
        } else {
            true
        }
    }

    /// A new request starts: refusals of the earlier one no longer count towards a
    /// back-off.
    pub fn restart(&mut self) {
        self.refusals = 0;
    }

    /// Server `from` answered definitively: it is the one to try first from now on.
    pub fn answered(&mut self, from: Addr) {
        if let Some(i) = self.servers.iter().position(|&s| s == from) {
            self.leader = i;
        }
        self.refusals = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_round_the_servers_and_follows_hints() {
        let mut r = Retry::new(vec![10, 11, 12], 3, 4);
        assert_eq!(r.target(), 10);
        r.sent();
        assert!(!r.tick());
        assert!(!r.tick());
        assert!(r.tick());
        assert_eq!(r.target(), 11);
        r.sent();
        // A hint moves straight to the leader; a refusal from elsewhere is ignored.
        assert!(!r.refused(10, None));
        assert!(r.refused(11, Some(12)));
        assert_eq!(r.target(), 12);
        r.answered(12);
        assert_eq!(r.target(), 12);
    }

    #[test]
    fn backs_off_after_a_full_round_of_refusals() {
        let mut r = Retry::new(vec![0, 1], 10, 3);
        r.sent();
        assert!(r.refused(0, None));
        r.sent();
        assert!(!r.refused(1, None));
        assert!(r.backing_off());
        assert!(!r.tick());
        assert!(!r.tick());
        assert!(r.tick());
        r.sent();
        assert!(!r.backing_off());
        // A new server list keeps the leader if it stays.
        r.set_servers(&[5, 0]);
        assert_eq!(r.target(), 0);
        r.set_servers(&[7]);
        assert_eq!(r.target(), 7);
    }

    #[test]
    fn a_restart_forgets_the_refusals_of_the_earlier_request() {
        let mut r = Retry::new(vec![0, 1], 10, 3);
        r.sent();
        assert!(r.refused(0, None));
        r.restart();
        r.sent();
        // Without the restart this refusal would complete a round and back off.
        assert!(r.refused(1, None));
        assert!(!r.backing_off());
        r.sent();
        assert!(!r.refused(0, None));
        assert!(r.backing_off());
    }
}
