//! The embedded telemetry store: Adamant's default, durable on local disk, on the redb engine,
//! in one file (`DATA/telemetry.redb`).
//!
//! Layout (three redb tables):
//! - `records`: (device, kind, millis, seq) → the record's body (see `codec`: deflated when that
//!   helps), so the records of a stream are one contiguous, ordered range and a read is a range
//!   scan;
//! - `streams`: (device, kind) → (last millis, last seq, bytes of bodies, records), so `append`
//!   assigns ids and `trim` finds what is over budget without scanning. The entry stays when
//!   retention empties the stream: ids never go back;
//! - `oldest`: (device, kind) → the millis of the stream's first record, written on a stream's
//!   first append and by retention for the streams it opens, so a retention pass reads the
//!   streams' entries in order and opens the records of only those with something to drop. A
//!   stream without an entry (a file written before the table, a stream whose trim was cut
//!   short) is opened at the next pass, and gets one.
//!
//! Appends go to one writer thread through a bounded queue (a full queue makes callers wait:
//! backpressure). The writer takes every append queued at that moment (up to a bound, from any
//! number of devices), applies them in one redb transaction, commits it with one fsync, and only
//! then answers them and wakes the followers: group commit, so many devices cost one fsync per
//! batch, and no append is acknowledged before it is durable, except metrics: a batch of
//! metrics alone is committed without an fsync, made durable by the next synced commit, at most
//! [`Options::metrics_sync`] later. Trims and forgets go through the same writer; a large trim
//! is cut into transactions of a bounded size so appends go on between them. Reads run concurrently on redb's MVCC snapshots, on the blocking pool.

mod codec;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::{Database, ReadableDatabase, TableDefinition};
use telemetry::{
    Id, Kind, NewRecord, Range, Record, Result, Retention, StreamKey, TelemetryError,
    TelemetryStore, check,
};
use tokio::sync::{oneshot, watch};

use crate::writer::Request;

/// (device, kind, millis, seq) → stored body.
pub(crate) const RECORDS: TableDefinition<(&str, u8, u64, u64), &[u8]> =
    TableDefinition::new("records");
/// (device, kind) → (last millis, last seq, bytes, records).
pub(crate) const STREAMS: TableDefinition<(&str, u8), (u64, u64, u64, u64)> =
    TableDefinition::new("streams");
/// (device, kind) → millis of the stream's first record.
pub(crate) const OLDEST: TableDefinition<(&str, u8), u64> = TableDefinition::new("oldest");

/// Tuning of an embedded telemetry store.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many appends may wait for the writer before callers wait to queue theirs.
    pub queue: usize,
    /// At most this many records are committed together.
    pub max_batch_records: usize,
    /// At most about this many stored bytes are committed together.
    pub max_batch_bytes: usize,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
    /// How long after its append returns a metrics record may wait to be durable. Metrics are
    /// samples a device takes again a minute later, and most of a metrics post's cost in the
    /// store is the fsync, so a commit of metrics alone is not synced: the next commit with
    /// anything else is, or an empty one this long after the first unsynced commit. A crash
    /// loses at most this much of acknowledged metrics (as a Prometheus WAL that is not synced
    /// on each sample would); every other kind is durable when its append returns.
    /// `Duration::ZERO` makes metrics durable on return too.
    pub metrics_sync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue: 4096,
            max_batch_records: 16_384,
            max_batch_bytes: 32 << 20,
            cache_bytes: 64 << 20,
            metrics_sync: Duration::from_secs(1),
        }
    }
}

/// Why an embedded telemetry store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be created readable by its owner only.
    #[error("cannot create the telemetry file {path} (mode 0600): {source}")]
    Create {
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be opened as a redb database.
    #[error("cannot open the telemetry file {path}: {source}")]
    Database {
        /// The file.
        path: String,
        /// What redb said.
        #[source]
        source: redb::DatabaseError,
    },
    /// The file opened but its tables could not be made or read.
    #[error("cannot read the telemetry file: {0}")]
    Telemetry(#[from] TelemetryError),
}

/// What the store's handle and its writer thread share.
pub(crate) struct Shared {
    pub(crate) db: Database,
    /// Bumped after every commit that appended: followers wake and look.
    pub(crate) committed: watch::Sender<u64>,
    /// Streams whose records retention has opened since the store was opened.
    pub(crate) opened_by_retention: std::sync::atomic::AtomicU64,
    /// Durable (fsynced) commits since the store was opened.
    pub(crate) synced: std::sync::atomic::AtomicU64,
    /// Why the store stopped taking writes, after a failed commit.
    pub(crate) failed: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn stopped(&self) -> Option<TelemetryError> {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        failed.as_ref().map(|reason| {
            TelemetryError::Unavailable(format!(
                "the telemetry store stopped taking writes after a failed commit ({reason}); restart to reopen it"
            ))
        })
    }
}

/// The embedded telemetry store. See the crate documentation.
pub struct EmbeddedTelemetry {
    shared: Arc<Shared>,
    writer: Option<writer::Handle>,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Unavailable(e.to_string())
}

fn closed() -> TelemetryError {
    TelemetryError::Unavailable("the telemetry store is closed".into())
}

/// The kind's number in keys.
pub(crate) fn kind_code(kind: Kind) -> u8 {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
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

impl EmbeddedTelemetry {
    /// Opens the store in the file `path`, creating it if it does not exist (readable and
    /// writable by its owner only: mode 0600 from its creation).
    pub fn open(
        path: impl AsRef<Path>,
        options: Options,
    ) -> std::result::Result<EmbeddedTelemetry, OpenError> {
        let path = path.as_ref();
        let name = || path.display().to_string();
        create_private(path).map_err(|source| OpenError::Create {
            path: name(),
            source,
        })?;
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(|source| OpenError::Database {
                path: name(),
                source,
            })?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(RECORDS).map_err(unavailable)?;
        txn.open_table(STREAMS).map_err(unavailable)?;
        txn.open_table(OLDEST).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        let shared = Arc::new(Shared {
            db,
            committed: watch::channel(0).0,
            opened_by_retention: Default::default(),
            synced: Default::default(),
            failed: Mutex::new(None),
        });
        let writer = writer::spawn(shared.clone(), &options).map_err(unavailable)?;
        Ok(EmbeddedTelemetry {
            shared,
            writer: Some(writer),
        })
    }

    /// How many transactions with appends were committed since the store was opened: with
    /// group commit, fewer than the appends (for tests and benchmarks).
    pub fn commits(&self) -> u64 {
        *self.shared.committed.borrow()
    }

    /// How many commits were made durable (fsynced) since the store was opened: metrics alone
    /// are synced at most every [`Options::metrics_sync`] (for tests and benchmarks).
    pub fn synced_commits(&self) -> u64 {
        self.shared
            .synced
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many streams retention has opened the records of since the store was opened: a pass
    /// with nothing to drop opens none (for tests and benchmarks).
    pub fn streams_opened_by_retention(&self) -> u64 {
        self.shared
            .opened_by_retention
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lets the writer finish what is queued, then waits for its thread to stop.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.join();
        }
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        if let Some(error) = self.shared.stopped() {
            return Err(error);
        }
        let writer = self.writer.as_ref().ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        writer.send(make(reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `read` on a snapshot, on the blocking pool.
    async fn snapshot<T: Send + 'static>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let txn = shared.db.begin_read().map_err(unavailable)?;
            read(&txn)
        })
        .await
        .map_err(unavailable)?
    }

    fn last(&self, stream: &StreamKey) -> Result<Option<Id>> {
        let txn = self.shared.db.begin_read().map_err(unavailable)?;
        let streams = txn.open_table(STREAMS).map_err(unavailable)?;
        let meta = streams
            .get((stream.device.as_str(), kind_code(stream.kind)))
            .map_err(unavailable)?;
        Ok(meta.map(|m| {
            let (millis, seq, _, _) = m.value();
            Id { millis, seq }
        }))
    }
}

impl Drop for EmbeddedTelemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The largest id.
const LAST: Id = Id {
    millis: u64::MAX,
    seq: u64::MAX,
};

type RecordKey<'a> = (&'a str, u8, u64, u64);

fn key(stream: &StreamKey, id: Id) -> RecordKey<'_> {
    (
        stream.device.as_str(),
        kind_code(stream.kind),
        id.millis,
        id.seq,
    )
}

fn read_range(
    txn: &redb::ReadTransaction,
    stream: &StreamKey,
    range: &Range,
) -> Result<Vec<Record>> {
    let table = txn.open_table(RECORDS).map_err(unavailable)?;
    let low = match range.after {
        Some(after) => after.next(),
        None => Id::default(),
    };
    let high = range.until.unwrap_or(LAST);
    if low > high || range.after == Some(LAST) {
        return Ok(Vec::new());
    }
    let limit = if range.limit == 0 {
        usize::MAX
    } else {
        range.limit
    };
    let entries = table
        .range(key(stream, low)..=key(stream, high))
        .map_err(unavailable)?;
    let decode = |entry: std::result::Result<
        (
            redb::AccessGuard<'_, RecordKey<'static>>,
            redb::AccessGuard<'_, &'static [u8]>,
        ),
        redb::StorageError,
    >| {
        let (k, v) = entry.map_err(unavailable)?;
        let (_, _, millis, seq) = k.value();
        Ok(Record {
            id: Id { millis, seq },
            body: codec::decode(v.value())?,
        })
    };
    if range.tail {
        let mut records = entries
            .rev()
            .take(limit)
            .map(decode)
            .collect::<Result<Vec<_>>>()?;
        records.reverse();
        Ok(records)
    } else {
        entries.take(limit).map(decode).collect()
    }
}

#[async_trait::async_trait]
impl TelemetryStore for EmbeddedTelemetry {
    async fn append(&self, stream: &StreamKey, records: Vec<NewRecord>) -> Result<Vec<Id>> {
        check(&records)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // Compression runs here, on the callers' threads, not in the one writer.
        let encoded = records
            .iter()
            .map(|r| writer::Encoded {
                millis: r.millis,
                len: r.body.len() as u64,
                stored: codec::encode(&r.body),
            })
            .collect();
        let stream = stream.clone();
        self.request(|reply| Request::Append(stream, encoded, reply))
            .await
    }

    async fn read(&self, stream: &StreamKey, range: &Range) -> Result<Vec<Record>> {
        let (stream, range) = (stream.clone(), range.clone());
        self.snapshot(move |txn| read_range(txn, &stream, &range))
            .await
    }

    async fn first(&self, stream: &StreamKey) -> Result<Option<Id>> {
        let stream = stream.clone();
        self.snapshot(move |txn| {
            let table = txn.open_table(RECORDS).map_err(unavailable)?;
            let first = table
                .range(key(&stream, Id::default())..=key(&stream, LAST))
                .map_err(unavailable)?
                .next()
                .transpose()
                .map_err(unavailable)?
                .map(|(k, _)| {
                    let (_, _, millis, seq) = k.value();
                    Id { millis, seq }
                });
            Ok(first)
        })
        .await
    }

    async fn wait(&self, stream: &StreamKey, after: Id, timeout: Duration) -> Result<bool> {
        let mut committed = self.shared.committed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            committed.borrow_and_update();
            if self.last(stream)?.is_some_and(|last| last > after) {
                return Ok(true);
            }
            match tokio::time::timeout_at(deadline, committed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(closed()),
                Err(_) => return Ok(false),
            }
        }
    }

    async fn trim(&self, retention: &Retention, now_millis: u64) -> Result<u64> {
        let oldest_kept = now_millis.saturating_sub(retention.max_age.as_millis() as u64);
        let max_bytes = retention.max_bytes;
        let mut removed = 0;
        loop {
            let (n, done) = self
                .request(|reply| Request::Trim {
                    oldest_kept,
                    max_bytes,
                    reply,
                })
                .await?;
            removed += n;
            if done {
                return Ok(removed);
            }
        }
    }

    async fn forget(&self, device: &str) -> Result<()> {
        let device = device.to_string();
        self.request(|reply| Request::Forget(device, reply)).await
    }
}
