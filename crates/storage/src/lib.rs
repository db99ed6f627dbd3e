//! The storage contract of Adamant: a revisioned key-value store with watch, modelled on etcd.
//!
//! Everything the API server keeps goes through [`Store`]. The contract, which the conformance
//! suite in [`testing`] pins down and every backend passes:
//!
//! - One global, monotonic [`Revision`]. A fresh store is at revision 1; every successful write
//!   creates exactly one new revision and returns it. Failed writes create none.
//! - Reads ([`Store::get`], [`Store::list`]) see one consistent snapshot, at the current revision
//!   or at an older one still in the retained history. Lists are ordered by key, take a `limit`,
//!   and continue after a key; pinning the revision of the first page makes every page come from
//!   the same snapshot.
//! - Writes are single-key and conditional: create-if-absent, compare-and-swap update and delete
//!   on the key's modification revision. A write returns only once it is durable.
//! - Keys may carry a time to live; an expired key is deleted as if by a client, with an event.
//! - [`Store::watch`] delivers, in revision order, every change under a prefix after a revision,
//!   with the previous value on updates and deletes. A watcher that falls too far behind is ended
//!   with [`StorageError::WatcherTooSlow`]; it is never silently skipped past. Watching from a
//!   compacted revision yields [`StorageError::Compacted`].
//! - [`Store::compact`] drops history up to a revision; [`spawn_compactor`] does it periodically.
//!
//! The crate knows keys, bytes and revisions, nothing about resource kinds or any protocol.

mod compactor;
pub mod engine;
mod error;
mod hub;
mod memory;
mod snapshot;
#[cfg(feature = "testing")]
pub mod testing;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

pub use compactor::{Retention, spawn_compactor};
pub use error::StorageError;
pub use hub::{History, WatchHub};
pub use memory::{DEFAULT_WATCH_CAPACITY, MemoryStore};
pub use snapshot::{KeyRange, list_snapshot, prefix_end};

/// A store revision: etcd's `int64` revision, which the API server shows as `resourceVersion`.
pub type Revision = i64;

/// The result type of every store operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The largest key any backend accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 4 * 1024;

/// The largest value any backend accepts, in bytes: 1.5 MiB less 16 KiB, so that a key, a value
/// and etcd's request framing fit within etcd's default request limit of 1.5 MiB.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024 - 16 * 1024;

/// One stored key with its value and etcd's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// The revision that created the key (since it last did not exist).
    pub create_revision: Revision,
    /// The revision of the key's latest modification.
    pub mod_revision: Revision,
    /// How many times the key was written since it was created; 1 after the create.
    pub version: i64,
}

/// A change to one key, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was created (`prev` is `None`) or updated.
    Put {
        /// The key as written.
        kv: KeyValue,
        /// The key as it was before, on an update.
        prev: Option<KeyValue>,
    },
    /// The key was deleted, by a client or by expiry.
    Delete {
        /// The key.
        key: Bytes,
        /// The revision of the deletion.
        revision: Revision,
        /// The key as it was before the deletion.
        prev: KeyValue,
    },
}

impl Event {
    /// The revision this change created.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &Bytes {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }

    /// The key's state just before this change (`None` for a create).
    pub fn prev(&self) -> Option<&KeyValue> {
        match self {
            Event::Put { prev, .. } => prev.as_ref(),
            Event::Delete { prev, .. } => Some(prev),
        }
    }
}

/// What a watch stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    /// A change under the watched prefix.
    Event(Event),
    /// Every change under the prefix up to this revision has been delivered (an answer to
    /// [`Watch::request_progress`]; the API server turns it into a bookmark).
    Progress(Revision),
}

/// A watch on a prefix: a stream of [`WatchItem`]s in revision order.
///
/// An `Err` item is always the last one: the watch is over and must be started again (after a
/// re-list when the error is [`StorageError::Compacted`]). Dropping the `Watch` cancels it.
pub struct Watch {
    stream: Pin<Box<dyn Stream<Item = Result<WatchItem>> + Send>>,
    progress: Progress,
}

/// A watch's way to ask for a [`WatchItem::Progress`], kept apart from its stream (so that what
/// consumes the stream can still ask). Asking after the watch is gone does nothing.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn() + Send + Sync>);

impl Progress {
    /// See [`Watch::request_progress`].
    pub fn request(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl Watch {
    /// Builds a watch from a backend's stream and its way to ask for a progress notification.
    pub fn new(
        stream: impl Stream<Item = Result<WatchItem>> + Send + 'static,
        progress: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Watch {
            stream: Box::pin(stream),
            progress: Progress(Arc::new(progress)),
        }
    }

    /// Asks for a [`WatchItem::Progress`] to be delivered after the events already committed.
    /// Best effort: a watcher that is already behind gets its events first, and may get none.
    pub fn request_progress(&self) {
        self.progress.request()
    }

    /// The handle that asks this watch for progress.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

impl Stream for Watch {
    type Item = Result<WatchItem>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

/// A list request: keys under `prefix`, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys starting with these bytes; empty for all keys.
    pub prefix: Bytes,
    /// Only keys after this one (the last key of the previous page).
    pub start_after: Option<Bytes>,
    /// At most this many keys; 0 for no limit.
    pub limit: usize,
    /// Read at this revision instead of the current one.
    pub revision: Option<Revision>,
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResponse {
    /// The revision the page was read at: pass it as `revision` for the following pages.
    pub revision: Revision,
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
    /// Whether more keys follow the last one.
    pub more: bool,
}

/// The answer to a get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetResponse {
    /// The revision the key was read at.
    pub revision: Revision,
    /// The key, if it existed at that revision.
    pub kv: Option<KeyValue>,
}

/// The answer to a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The revision the deletion created.
    pub revision: Revision,
    /// The key as it was before it was deleted.
    pub prev: KeyValue,
}

/// Options of a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Delete the key this long after the write, unless it is written again first. Rounded up to
    /// whole seconds on etcd. A later write without a TTL makes the key permanent.
    pub ttl: Option<Duration>,
}

impl WriteOptions {
    /// A write whose key expires after `ttl`.
    pub fn ttl(ttl: Duration) -> Self {
        WriteOptions { ttl: Some(ttl) }
    }
}

/// The store contract. See the crate documentation for the semantics every backend keeps.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The revision of the latest write.
    async fn current_revision(&self) -> Result<Revision>;

    /// Reads one key, at the current revision or at `revision`.
    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<GetResponse>;

    /// Reads a page of keys under a prefix from one consistent snapshot.
    async fn list(&self, request: ListRequest) -> Result<ListResponse>;

    /// Creates `key`; fails with [`StorageError::AlreadyExists`] if it exists.
    async fn create(&self, key: Bytes, value: Bytes, options: WriteOptions) -> Result<KeyValue>;

    /// Replaces `key`'s value if its modification revision is `expected`; fails with
    /// [`StorageError::Conflict`] if it is not, [`StorageError::NotFound`] if the key is absent.
    async fn update(
        &self,
        key: Bytes,
        value: Bytes,
        expected: Revision,
        options: WriteOptions,
    ) -> Result<KeyValue>;

    /// Deletes `key`, if `expected` is given only when its modification revision is that.
    async fn delete(&self, key: Bytes, expected: Option<Revision>) -> Result<Deleted>;

    /// Watches every change under `prefix` after revision `after`.
    async fn watch(&self, prefix: Bytes, after: Revision) -> Result<Watch>;

    /// Drops the history up to `revision`: afterwards reads at and watches from revisions before
    /// it fail with [`StorageError::Compacted`]. Compacting to an already compacted revision does
    /// nothing.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// Checks a write's key and value against the limits every backend shares. Backends call it
/// before doing anything, so an oversized write changes nothing.
pub fn check_write(key: &[u8], value: &[u8]) -> Result<()> {
    check_key(key)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(StorageError::TooLarge {
            what: "value",
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// Checks a key against the limits every backend shares.
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(StorageError::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::TooLarge {
            what: "key",
            size: key.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    Ok(())
}
