//! Placeholder: filled in by the adapters issue.
#![forbid(unsafe_code)]
