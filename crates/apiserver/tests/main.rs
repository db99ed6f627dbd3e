//! The `apiserver` crate's integration tests as one binary: each file of this folder is a module
//! (one link of the crate and its dependencies, not one per file).

mod common;

mod api;
mod apply;
mod bad_input;
mod events;
mod gc;
mod keys;
mod list;
mod patch;
mod protobuf;
mod serviceaccounts;
