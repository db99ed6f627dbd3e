//! The registry: the one generic object store behind every resource of the API server.
//!
//! Objects are JSON objects (`serde_json::Value`): the API server serves kinds defined at run
//! time by CustomResourceDefinitions, so the registry cannot know their types. What differs
//! between kinds is a [`Strategy`] (naming rule, preparation, validation); everything else
//! (keys, system metadata, `resourceVersion` and optimistic concurrency, no-op updates,
//! `generation`, `generateName`, finalizers, label and field selectors, paginated lists pinned to
//! a snapshot) is written once, here.
//!
//! The registry knows nothing of HTTP: it takes and returns objects and [`ApiError`]s, which the
//! HTTP layer turns into Kubernetes `Status` responses.

mod error;
pub mod object;
mod store;
mod watch;

pub use error::ApiError;
pub use store::{
    Admit, DefaultStrategy, Deletion, ListOptions, ListResult, Registry, Resource, Strategy,
    WriteOptions,
};
pub use watch::{Start, WatchEvent, Watching};
