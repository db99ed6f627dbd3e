//! The writer thread: group commit of every queued append (and of trims and forgets) in one
//! redb transaction, one fsync per batch; a batch of metrics alone without an fsync, synced by
//! the next commit or after `Options::metrics_sync`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Durability, ReadableTable, Table, WriteTransaction};
use telemetry::{Id, Kind, Result, StreamKey, TelemetryError};
use tokio::sync::{mpsc, oneshot};

use crate::{OLDEST, Options, RECORDS, STREAMS, Shared, codec, kind_code, unavailable};

/// At most this many records are dropped by retention in one transaction, so a large trim
/// never holds the appends back for long.
const MAX_TRIMMED_PER_COMMIT: u64 = 10_000;

/// A record ready to be written: its time, its body's length, its stored form.
pub(crate) struct Encoded {
    pub(crate) millis: u64,
    pub(crate) len: u64,
    pub(crate) stored: Vec<u8>,
}

/// A request to the writer thread.
pub(crate) enum Request {
    Append(StreamKey, Vec<Encoded>, oneshot::Sender<Result<Vec<Id>>>),
    /// Drops up to [`MAX_TRIMMED_PER_COMMIT`] records; answers how many, and whether that was
    /// all there was to drop.
    Trim {
        oldest_kept: u64,
        max_bytes: u64,
        reply: oneshot::Sender<Result<(u64, bool)>>,
    },
    Forget(String, oneshot::Sender<Result<()>>),
}

impl Request {
    fn size(&self) -> (usize, usize) {
        match self {
            Request::Append(_, records, _) => (
                records.len(),
                records.iter().map(|r| r.stored.len() + 32).sum(),
            ),
            Request::Trim { .. } | Request::Forget(..) => (1, 0),
        }
    }

    /// Whether this request may be committed without an fsync: an append of metrics.
    fn may_wait_for_sync(&self) -> bool {
        matches!(self, Request::Append(stream, ..) if stream.kind == Kind::Metrics)
    }

    fn reject(self, error: &TelemetryError) {
        // A caller that went away does not need its answer.
        match self {
            Request::Append(_, _, reply) => drop(reply.send(Err(clone(error)))),
            Request::Trim { reply, .. } => drop(reply.send(Err(clone(error)))),
            Request::Forget(_, reply) => drop(reply.send(Err(clone(error)))),
        }
    }
}

fn clone(error: &TelemetryError) -> TelemetryError {
    match error {
        TelemetryError::Unavailable(s) => TelemetryError::Unavailable(s.clone()),
        TelemetryError::TooLarge(n) => TelemetryError::TooLarge(*n),
        TelemetryError::Damaged(s) => TelemetryError::Damaged(s.clone()),
    }
}

/// The answer owed to one request once the transaction is committed.
enum Answer {
    Append(oneshot::Sender<Result<Vec<Id>>>, Vec<Id>),
    Trim(oneshot::Sender<Result<(u64, bool)>>, (u64, bool)),
    Forget(oneshot::Sender<Result<()>>),
}

impl Answer {
    fn send(self) {
        match self {
            Answer::Append(reply, ids) => drop(reply.send(Ok(ids))),
            Answer::Trim(reply, trimmed) => drop(reply.send(Ok(trimmed))),
            Answer::Forget(reply) => drop(reply.send(Ok(()))),
        }
    }

    fn fail(self, error: &TelemetryError) {
        match self {
            Answer::Append(reply, _) => drop(reply.send(Err(clone(error)))),
            Answer::Trim(reply, _) => drop(reply.send(Err(clone(error)))),
            Answer::Forget(reply) => drop(reply.send(Err(clone(error)))),
        }
    }
}

/// The store's way to the writer thread.
pub(crate) struct Handle {
    requests: mpsc::Sender<Request>,
    thread: JoinHandle<()>,
}

impl Handle {
    /// Queues `request`, waiting while the queue is full.
    pub(crate) async fn send(&self, request: Request) -> std::result::Result<(), Request> {
        self.requests.send(request).await.map_err(|e| e.0)
    }

    /// Lets the writer finish what is queued, then waits for it to stop.
    pub(crate) fn join(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, options: &Options) -> std::io::Result<Handle> {
    let (requests, queue) = mpsc::channel(options.queue.max(1));
    let limits = Limits {
        records: options.max_batch_records.max(1),
        bytes: options.max_batch_bytes,
        metrics_sync: options.metrics_sync,
    };
    // The thread waits for requests with a deadline (the next sync) on a runtime of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("telemetry-writer".into())
        .spawn(move || runtime.block_on(run(&shared, queue, limits)))?;
    Ok(Handle { requests, thread })
}

/// How much goes into one commit, and how long metrics may wait for a sync.
struct Limits {
    records: usize,
    bytes: usize,
    metrics_sync: Duration,
}

async fn run(shared: &Shared, mut queue: mpsc::Receiver<Request>, limits: Limits) {
    // When the oldest commit not yet synced was made.
    let mut unsynced: Option<Instant> = None;
    loop {
        let next = match unsynced {
            None => queue.recv().await,
            Some(since) => {
                let due = tokio::time::Instant::from_std(since + limits.metrics_sync);
                match tokio::time::timeout_at(due, queue.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // Nothing came to sync it: an empty synced commit.
                        commit(shared, Vec::new(), true);
                        unsynced = None;
                        continue;
                    }
                }
            }
        };
        let Some(request) = next else { break };
        let (mut records, mut bytes) = request.size();
        let mut batch = vec![request];
        while records < limits.records && bytes < limits.bytes {
            let Ok(request) = queue.try_recv() else { break };
            let (r, b) = request.size();
            records += r;
            bytes += b;
            batch.push(request);
        }
        let sync = limits.metrics_sync.is_zero()
            || !batch.iter().all(Request::may_wait_for_sync)
            || unsynced.is_some_and(|since| since.elapsed() >= limits.metrics_sync);
        commit(shared, batch, sync);
        unsynced = match (sync, unsynced) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
    }
    if unsynced.is_some() {
        commit(shared, Vec::new(), true);
    }
}

fn commit(shared: &Shared, batch: Vec<Request>, sync: bool) {
    if let Some(error) = shared.stopped() {
        batch.into_iter().for_each(|request| request.reject(&error));
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut pending = batch.into_iter();
    match transact(shared, &mut pending, &mut answers, sync) {
        Ok(appended) => {
            if sync {
                shared.synced.fetch_add(1, Ordering::Relaxed);
            }
            if appended {
                shared.committed.send_modify(|n| *n += 1);
            }
            answers.into_iter().for_each(Answer::send);
        }
        Err(error) => {
            tracing::error!(%error, "a telemetry commit failed; the store takes no more writes");
            *shared.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            // Nothing of the batch was committed: those applied and those not reached alike.
            answers.into_iter().for_each(|answer| answer.fail(&error));
            pending.for_each(|request| request.reject(&error));
        }
    }
}

type Records<'t> = Table<'t, (&'static str, u8, u64, u64), &'static [u8]>;
/// (last millis, last seq, bytes, records).
type StreamMeta = (u64, u64, u64, u64);
type Streams<'t> = Table<'t, (&'static str, u8), StreamMeta>;
type Oldest<'t> = Table<'t, (&'static str, u8), u64>;

/// The tables a transaction writes.
struct Tables<'t> {
    records: Records<'t>,
    streams: Streams<'t>,
    oldest: Oldest<'t>,
}

/// Applies a batch in one transaction and commits it, durably (with an fsync, which also makes
/// every earlier commit durable) when `sync`; whether anything was appended.
fn transact(
    shared: &Shared,
    batch: &mut impl Iterator<Item = Request>,
    answers: &mut Vec<Answer>,
    sync: bool,
) -> Result<bool> {
    let mut txn: WriteTransaction = shared.db.begin_write().map_err(unavailable)?;
    txn.set_durability(if sync {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(unavailable)?;
    let mut appended = false;
    {
        let mut tables = Tables {
            records: txn.open_table(RECORDS).map_err(unavailable)?,
            streams: txn.open_table(STREAMS).map_err(unavailable)?,
            oldest: txn.open_table(OLDEST).map_err(unavailable)?,
        };
        for request in batch.by_ref() {
            match request {
                Request::Append(stream, encoded, reply) => {
                    let ids = append(&mut tables, &stream, encoded)?;
                    appended = true;
                    answers.push(Answer::Append(reply, ids));
                }
                Request::Trim {
                    oldest_kept,
                    max_bytes,
                    reply,
                } => {
                    let trimmed = trim(&mut tables, oldest_kept, max_bytes, shared)?;
                    answers.push(Answer::Trim(reply, trimmed));
                }
                Request::Forget(device, reply) => {
                    forget(&mut tables, &device)?;
                    answers.push(Answer::Forget(reply));
                }
            }
        }
    }
    txn.commit().map_err(unavailable)?;
    Ok(appended)
}

fn append(tables: &mut Tables<'_>, stream: &StreamKey, encoded: Vec<Encoded>) -> Result<Vec<Id>> {
    let Tables {
        records,
        streams,
        oldest,
    } = tables;
    let device = stream.device.as_str();
    let kind = kind_code(stream.kind);
    let meta = streams
        .get((device, kind))
        .map_err(unavailable)?
        .map(|m| m.value());
    let (mut last, mut bytes, mut count) = match meta {
        Some((millis, seq, bytes, count)) => (Some(Id { millis, seq }), bytes, count),
        None => (None, 0, 0),
    };
    let mut ids = Vec::with_capacity(encoded.len());
    for record in encoded {
        let id = Id::assign(record.millis, last);
        records
            .insert((device, kind, id.millis, id.seq), record.stored.as_slice())
            .map_err(unavailable)?;
        if count == 0 {
            // The stream's first record (ids only grow, so it stays first until retention).
            oldest
                .insert((device, kind), id.millis)
                .map_err(unavailable)?;
        }
        bytes += record.len;
        count += 1;
        last = Some(id);
        ids.push(id);
    }
    if let Some(last) = last {
        streams
            .insert((device, kind), (last.millis, last.seq, bytes, count))
            .map_err(unavailable)?;
    }
    Ok(ids)
}

/// Drops the oldest records of each stream while they are older than `oldest_kept` or the
/// stream is over `max_bytes`, at most [`MAX_TRIMMED_PER_COMMIT`] in all. Reads the `streams`
/// and `oldest` entries in order side by side, and opens the records of only the streams with
/// something to drop (or no `oldest` entry yet).
fn trim(
    tables: &mut Tables<'_>,
    oldest_kept: u64,
    max_bytes: u64,
    shared: &Shared,
) -> Result<(u64, bool)> {
    let candidates = due(tables, oldest_kept, max_bytes)?;
    let Tables {
        records,
        streams,
        oldest,
    } = tables;
    let mut removed = 0;
    for (device, kind, (last_millis, last_seq, mut bytes, mut count)) in candidates {
        shared
            .opened_by_retention
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let device = device.as_str();
        let mut doomed = Vec::new();
        let mut first_kept = None;
        let mut full = false;
        for entry in records
            .range((device, kind, 0, 0)..=(device, kind, u64::MAX, u64::MAX))
            .map_err(unavailable)?
        {
            let (key, stored) = entry.map_err(unavailable)?;
            let (_, _, millis, seq) = key.value();
            if millis >= oldest_kept && bytes <= max_bytes {
                first_kept = Some(millis);
                break;
            }
            bytes = bytes.saturating_sub(codec::body_len(stored.value())?);
            count = count.saturating_sub(1);
            doomed.push((millis, seq));
            if removed + doomed.len() as u64 == MAX_TRIMMED_PER_COMMIT {
                full = true;
                break;
            }
        }
        // The first record left, when known; otherwise the entry goes (an empty stream needs
        // none; one cut short by the bound is opened again next time).
        match first_kept {
            Some(millis) => oldest.insert((device, kind), millis).map(drop),
            None => oldest.remove((device, kind)).map(drop),
        }
        .map_err(unavailable)?;
        if doomed.is_empty() {
            continue;
        }
        for (millis, seq) in &doomed {
            records
                .remove((device, kind, *millis, *seq))
                .map_err(unavailable)?;
        }
        removed += doomed.len() as u64;
        streams
            .insert((device, kind), (last_millis, last_seq, bytes, count))
            .map_err(unavailable)?;
        if full {
            return Ok((removed, false));
        }
    }
    Ok((removed, true))
}

/// The streams with records to drop: over `max_bytes`, or whose oldest record is older than
/// `oldest_kept`, or not known (no `oldest` entry).
fn due(
    tables: &Tables<'_>,
    oldest_kept: u64,
    max_bytes: u64,
) -> Result<Vec<(String, u8, StreamMeta)>> {
    let mut firsts = tables.oldest.iter().map_err(unavailable)?.peekable();
    let mut due = Vec::new();
    for entry in tables.streams.iter().map_err(unavailable)? {
        let (key, meta) = entry.map_err(unavailable)?;
        let (device, kind) = key.value();
        let meta = meta.value();
        let (last_millis, _, bytes, count) = meta;
        // Both tables are in (device, kind) order: skip the oldest entries before this stream.
        let mut first = None;
        while let Some(next) = firsts.peek() {
            let (entry_key, millis) = match next {
                Ok((k, v)) => (k.value(), v.value()),
                Err(_) => {
                    // Surfaces the error.
                    firsts.next().transpose().map_err(unavailable)?;
                    continue;
                }
            };
            match entry_key.cmp(&(device, kind)) {
                std::cmp::Ordering::Less => {
                    firsts.next();
                }
                std::cmp::Ordering::Equal => {
                    first = Some(millis);
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        // An entry newer than the stream's last record cannot be right (a build from before the
        // table forgot the stream and it started again): unknown, so the stream is opened.
        let first = first.filter(|millis| *millis <= last_millis);
        if count > 0 && (bytes > max_bytes || first.is_none_or(|millis| millis < oldest_kept)) {
            due.push((device.to_string(), kind, meta));
        }
    }
    Ok(due)
}

fn forget(tables: &mut Tables<'_>, device: &str) -> Result<()> {
    let Tables {
        records,
        streams,
        oldest,
    } = tables;
    oldest
        .retain_in((device, 0u8)..=(device, u8::MAX), |_, _| false)
        .map_err(unavailable)?;
    records
        .retain_in(
            (device, 0u8, 0u64, 0u64)..=(device, u8::MAX, u64::MAX, u64::MAX),
            |_, _| false,
        )
        .map_err(unavailable)?;
    streams
        .retain_in((device, 0u8)..=(device, u8::MAX), |_, _| false)
        .map_err(unavailable)?;
    Ok(())
}
