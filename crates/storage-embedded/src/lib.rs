//! The embedded store: Adamant's default backend, durable on local disk, on the redb engine.
//!
//! Layout (four redb tables):
//! - `kv`: key → record, the current state;
//! - `log`: revision → event (with the previous state), the history for watches and reads at
//!   past revisions; entries up to the compacted revision are removed in the background;
//! - `expiry`: (expires_at, key) → (), the keys with a time to live, in expiry order;
//! - `meta`: `revision` and `compacted`.
//!
//! Writes go to one writer thread, which takes every write queued at that moment (up to a
//! bound), applies them in one redb transaction, commits it with one fsync, and only then answers
//! them and publishes their events: group commit, so throughput is not one fsync per write, and
//! no write is acknowledged before it is durable. Each write still gets its own revision and its
//! own success or failure. Reads run concurrently on redb's MVCC snapshots.

mod codec;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend,
    TableDefinition,
};
use storage::engine::{self, WriteOp};
use storage::{
    Deleted, Event, GetResponse, History, KeyRange, KeyValue, ListRequest, ListResponse, Result,
    Revision, StorageError, Store, Watch, WatchHub, WriteOptions, check_key, list_snapshot,
};
use tokio::sync::oneshot;

use crate::writer::Request;

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<i64, &[u8]> = TableDefinition::new("log");
const EXPIRY: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("expiry");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
const COMPACTED: &str = "compacted";

/// Tuning of an embedded store.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many events a watcher may have queued before it is ended.
    pub watch_capacity: usize,
    /// At most this many writes are committed together.
    pub max_batch_writes: usize,
    /// At most about this many bytes of keys and values are committed together.
    pub max_batch_bytes: usize,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            watch_capacity: storage::DEFAULT_WATCH_CAPACITY,
            max_batch_writes: 4096,
            max_batch_bytes: 64 << 20,
            cache_bytes: 256 << 20,
        }
    }
}

/// Why an embedded store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened or created.
    #[error("cannot open the store file {path}: {source}")]
    Database {
        /// The file.
        path: String,
        /// What redb said.
        #[source]
        source: redb::DatabaseError,
    },
    /// The file opened, but its contents are not a store or are damaged.
    #[error("cannot read the store: {0}")]
    Storage(#[from] StorageError),
    /// A new store file could not be created readable by its owner only.
    #[error("cannot create the store file {path} (mode 0600): {source}")]
    Create {
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// The embedded store. See the crate documentation.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    writer: Option<writer::Handle>,
}

/// What the store's handle, its writer thread and its watchers share.
pub(crate) struct Shared {
    db: Database,
    hub: Arc<WatchHub>,
    /// The revision of the latest commit.
    revision: AtomicI64,
    /// Why the store stopped taking writes, after a failed commit.
    failed: Mutex<Option<String>>,
}

/// Creates an empty file at `path` with mode 0600 unless one is there.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

impl EmbeddedStore {
    /// Opens the store in `path`, creating it if it does not exist (readable and writable by
    /// its owner only: mode 0600 from its creation).
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<EmbeddedStore, OpenError> {
        let path = path.as_ref();
        create_private(path).map_err(|source| OpenError::Create {
            path: path.display().to_string(),
            source,
        })?;
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(|source| OpenError::Database {
                path: path.display().to_string(),
                source,
            })?;
        Self::from_database(db, options)
    }

    /// Opens a store on any redb storage backend (an in-memory one, or one that injects faults).
    pub fn open_with_backend(
        backend: impl StorageBackend,
        options: Options,
    ) -> Result<EmbeddedStore, OpenError> {
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create_with_backend(backend)
            .map_err(|source| OpenError::Database {
                path: "(custom backend)".into(),
                source,
            })?;
        Self::from_database(db, options)
    }

    fn from_database(db: Database, options: Options) -> Result<EmbeddedStore, OpenError> {
        let txn = db.begin_write().map_err(unavailable)?;
        let revision = {
            txn.open_table(KV).map_err(unavailable)?;
            txn.open_table(LOG).map_err(unavailable)?;
            txn.open_table(EXPIRY).map_err(unavailable)?;
            let mut meta = txn.open_table(META).map_err(unavailable)?;
            let revision = meta.get(REVISION).map_err(unavailable)?.map(|v| v.value());
            match revision {
                Some(revision) => revision,
                None => {
                    meta.insert(REVISION, 1).map_err(unavailable)?;
                    meta.insert(COMPACTED, 0).map_err(unavailable)?;
                    1
                }
            }
        };
        txn.commit().map_err(unavailable)?;
        let shared = Arc::new(Shared {
            db,
            hub: WatchHub::new(revision, options.watch_capacity),
            revision: AtomicI64::new(revision),
            failed: Mutex::new(None),
        });
        let writer = writer::spawn(shared.clone(), &options).map_err(unavailable)?;
        Ok(EmbeddedStore {
            shared,
            writer: Some(writer),
        })
    }

    async fn write(&self, op: WriteOp) -> Result<Event> {
        op.check()?;
        let (reply, answer) = oneshot::channel();
        self.send(Request::Write(op, reply))?;
        answer.await.map_err(|_| closed())?
    }

    fn send(&self, request: Request) -> Result<()> {
        if let Some(error) = self.shared.stopped() {
            return Err(error);
        }
        let writer = self.writer.as_ref().ok_or_else(closed)?;
        writer.send(request).map_err(|_| closed())
    }

    /// Checks that the store's tables agree with each other: every key's bookkeeping is within
    /// the current revision, the log is gapless after the compacted revision and ends at the
    /// current one, each key's latest logged change is its current state, and the expiry index
    /// matches the keys' TTLs. Returns the current revision.
    pub fn check_consistency(&self) -> Result<Revision> {
        self.shared.check_consistency()
    }

    /// Blocks until the writer thread has stopped and every pending write is answered.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.join();
        }
        self.shared.hub.close();
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn closed() -> StorageError {
    StorageError::Unavailable("the store is closed".into())
}

impl Shared {
    /// The error for writes once a commit has failed, if one has.
    fn stopped(&self) -> Option<StorageError> {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        failed.as_ref().map(|reason| {
            StorageError::Unavailable(format!(
                "the store stopped taking writes after a failed commit ({reason}); restart to reopen it"
            ))
        })
    }

    fn read_meta(txn: &redb::ReadTransaction) -> Result<(Revision, Revision)> {
        let meta = txn.open_table(META).map_err(unavailable)?;
        let get = |name| -> Result<Revision> {
            meta.get(name)
                .map_err(unavailable)?
                .map(|v| v.value())
                .ok_or_else(|| StorageError::Corrupt(format!("the store has no {name} entry")))
        };
        Ok((get(REVISION)?, get(COMPACTED)?))
    }

    /// Lists `range` at `revision` (current if `None`), from one read transaction.
    fn read_range(
        &self,
        range: &KeyRange,
        revision: Option<Revision>,
        limit: usize,
    ) -> Result<(Revision, Vec<KeyValue>, bool)> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let (current, compacted) = Self::read_meta(&txn)?;
        let revision = revision.unwrap_or(current);
        engine::check_read(revision, current, compacted)?;
        let later = if revision < current {
            let log = txn.open_table(LOG).map_err(unavailable)?;
            let entries = log.range(revision + 1..=current).map_err(unavailable)?;
            entries
                .map(|entry| {
                    let (rev, bytes) = entry.map_err(unavailable)?;
                    codec::decode_event(rev.value(), bytes.value())
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let kv = txn.open_table(KV).map_err(unavailable)?;
        let current_state = kv
            .range::<&[u8]>(range.bounds())
            .map_err(unavailable)?
            .map(|entry| {
                let (key, bytes) = entry.map_err(unavailable)?;
                Ok(codec::decode_record(key.value(), bytes.value())?.kv)
            });
        let (kvs, more) = list_snapshot(current_state, &later, range, limit)?;
        Ok((revision, kvs, more))
    }

    fn check_consistency(&self) -> Result<Revision> {
        let bad = |what: String| Err(StorageError::Corrupt(what));
        let txn = self.db.begin_read().map_err(unavailable)?;
        let (current, compacted) = Self::read_meta(&txn)?;
        let log = txn.open_table(LOG).map_err(unavailable)?;
        let mut latest: std::collections::BTreeMap<Bytes, Event> = Default::default();
        let mut expected = compacted.max(1) + 1;
        for entry in log.range(compacted + 1..).map_err(unavailable)? {
            let (rev, bytes) = entry.map_err(unavailable)?;
            let rev = rev.value();
            if rev != expected {
                return bad(format!(
                    "the log has revision {rev} where {expected} was expected"
                ));
            }
            let event = codec::decode_event(rev, bytes.value())?;
            if event.revision() != rev {
                return bad(format!(
                    "the log entry of revision {rev} says {}",
                    event.revision()
                ));
            }
            latest.insert(event.key().clone(), event);
            expected += 1;
        }
        if expected != current + 1 {
            return bad(format!(
                "the log ends at {} but the store is at {current}",
                expected - 1
            ));
        }
        let kv = txn.open_table(KV).map_err(unavailable)?;
        let expiry = txn.open_table(EXPIRY).map_err(unavailable)?;
        let mut ttls = 0;
        for entry in kv.iter().map_err(unavailable)? {
            let (key, bytes) = entry.map_err(unavailable)?;
            let stored = codec::decode_record(key.value(), bytes.value())?;
            let kv = &stored.kv;
            if !(1 < kv.create_revision
                && kv.create_revision <= kv.mod_revision
                && kv.mod_revision <= current
                && kv.version >= 1)
            {
                return bad(format!("key {:?} has impossible revisions {kv:?}", kv.key));
            }
            match latest.remove(&kv.key) {
                Some(Event::Put { kv: logged, .. }) if logged == *kv => {}
                None if kv.mod_revision <= compacted => {}
                other => {
                    return bad(format!(
                        "key {:?} is {kv:?} but its last logged change is {other:?}",
                        kv.key
                    ));
                }
            }
            if let Some(at) = stored.expires_at {
                ttls += 1;
                if expiry
                    .get((at, key.value()))
                    .map_err(unavailable)?
                    .is_none()
                {
                    return bad(format!(
                        "key {:?} has a TTL missing from the expiry index",
                        kv.key
                    ));
                }
            }
        }
        if let Some((key, event)) = latest
            .into_iter()
            .find(|(_, e)| matches!(e, Event::Put { .. }))
        {
            return bad(format!(
                "key {key:?} was last written at {} but is missing",
                event.revision()
            ));
        }
        let indexed = expiry.len().map_err(unavailable)?;
        if indexed != ttls {
            return bad(format!(
                "the expiry index has {indexed} entries for {ttls} keys with a TTL"
            ));
        }
        Ok(current)
    }
}

#[async_trait::async_trait]
impl History for Shared {
    async fn events(
        &self,
        prefix: &[u8],
        after: Revision,
        until: Revision,
        limit: usize,
    ) -> Result<(Vec<Event>, Revision)> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let (_, compacted) = Self::read_meta(&txn)?;
        if after < compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compacted,
            });
        }
        let log = txn.open_table(LOG).map_err(unavailable)?;
        let mut out = Vec::new();
        for entry in log.range(after + 1..=until).map_err(unavailable)? {
            let (rev, bytes) = entry.map_err(unavailable)?;
            let rev = rev.value();
            if out.len() == limit {
                return Ok((out, rev - 1));
            }
            let event = codec::decode_event(rev, bytes.value())?;
            if event.key().starts_with(prefix) {
                out.push(event);
            }
        }
        Ok((out, until))
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<GetResponse> {
        check_key(key)?;
        let (revision, kvs, _) = self
            .shared
            .read_range(&KeyRange::single(key), revision, 1)?;
        Ok(GetResponse {
            revision,
            kv: kvs.into_iter().next(),
        })
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let shared = self.shared.clone();
        let (revision, kvs, more) = tokio::task::spawn_blocking(move || {
            shared.read_range(&KeyRange::of(&request), request.revision, request.limit)
        })
        .await
        .map_err(unavailable)??;
        Ok(ListResponse {
            revision,
            kvs,
            more,
        })
    }

    async fn create(&self, key: Bytes, value: Bytes, options: WriteOptions) -> Result<KeyValue> {
        let ttl = options.ttl;
        self.write(WriteOp::Create { key, value, ttl })
            .await
            .map(engine::written)
    }

    async fn update(
        &self,
        key: Bytes,
        value: Bytes,
        expected: Revision,
        options: WriteOptions,
    ) -> Result<KeyValue> {
        let ttl = options.ttl;
        let op = WriteOp::Update {
            key,
            value,
            expected,
            ttl,
        };
        self.write(op).await.map(engine::written)
    }

    async fn delete(&self, key: Bytes, expected: Option<Revision>) -> Result<Deleted> {
        self.write(WriteOp::Delete { key, expected })
            .await
            .map(engine::deleted)
    }

    async fn watch(&self, prefix: Bytes, after: Revision) -> Result<Watch> {
        let history: Arc<dyn History> = self.shared.clone();
        Ok(self.shared.hub.subscribe(prefix, after, history))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Compact(revision, reply))?;
        answer.await.map_err(|_| closed())?
    }
}
