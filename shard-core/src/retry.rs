//! Which server of a replicated group to send a request to, and when to send it again:
//! [`Retry`], shared with the KV service's clerk and defined in [`stepwise_kv::retry`]
//! (re-exported here). The controller clerk, the shard client and the shard groups' pulls
//! and deletes all use it.

pub use stepwise_kv::retry::Retry;
