//! Placeholder so the manifest parses; the KV benchmark replaces it.
fn main() {}
