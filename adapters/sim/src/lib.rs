//! Placeholder: filled in by a later issue.
#![forbid(unsafe_code)]
