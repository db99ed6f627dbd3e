//! The writer thread: group commit of every queued write, expiry of keys, and compaction.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Durability, ReadableTable, Table, WriteTransaction};
use storage::engine::{self, Stored, Tx, WriteOp};
use storage::{Event, Result, Revision, StorageError};
use tokio::sync::oneshot;

use crate::{COMPACTED, EXPIRY, KV, LOG, META, Options, REVISION, Shared, codec, unavailable};

/// How often expired keys and compacted history are cleaned up.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// At most this many expired keys are deleted in one transaction.
const MAX_EXPIRED_PER_COMMIT: usize = 1000;
/// At most this many log entries are dropped in one transaction, so compaction never holds the
/// writer for long.
const MAX_COMPACTED_PER_COMMIT: usize = 10_000;

/// A request to the writer thread.
pub(crate) enum Request {
    Write(WriteOp, oneshot::Sender<Result<Event>>),
    Compact(Revision, oneshot::Sender<Result<()>>),
}

impl Request {
    /// Answers the request with `error`, doing nothing.
    fn reject(self, error: &StorageError) {
        match self {
            Request::Write(_, reply) => drop(reply.send(Err(error.clone()))),
            Request::Compact(_, reply) => drop(reply.send(Err(error.clone()))),
        }
    }

    fn size(&self) -> usize {
        match self {
            Request::Write(op, _) => op.size(),
            Request::Compact(..) => 0,
        }
    }
}

/// The store's way to the writer thread.
pub(crate) struct Handle {
    requests: mpsc::Sender<Request>,
    thread: JoinHandle<()>,
}

impl Handle {
    pub(crate) fn send(&self, request: Request) -> std::result::Result<(), Request> {
        self.requests.send(request).map_err(|e| e.0)
    }

    /// Lets the writer finish what is queued, then waits for it to stop.
    pub(crate) fn join(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, options: &Options) -> std::io::Result<Handle> {
    let (requests, queue) = mpsc::channel();
    let limits = (options.max_batch_writes.max(1), options.max_batch_bytes);
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(&shared, &queue, limits))?;
    Ok(Handle { requests, thread })
}

fn run(shared: &Shared, queue: &mpsc::Receiver<Request>, (max_writes, max_bytes): (usize, usize)) {
    let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
    loop {
        let wait = next_housekeeping.saturating_duration_since(Instant::now());
        let mut batch = Vec::new();
        match queue.recv_timeout(wait) {
            Ok(request) => {
                let mut bytes = request.size();
                batch.push(request);
                while batch.len() < max_writes && bytes < max_bytes {
                    let Ok(request) = queue.try_recv() else { break };
                    bytes += request.size();
                    batch.push(request);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let housekeeping = Instant::now() >= next_housekeeping;
        if housekeeping {
            next_housekeeping = Instant::now() + HOUSEKEEPING;
        }
        if !batch.is_empty() || housekeeping {
            commit(shared, batch, housekeeping);
        }
    }
}

/// The answer owed to one request once the transaction is committed.
enum Answer {
    Write(oneshot::Sender<Result<Event>>, Result<Event>),
    Compact(oneshot::Sender<Result<()>>, Result<()>),
}

impl Answer {
    fn send(self) {
        // A caller that went away does not need its answer.
        match self {
            Answer::Write(reply, result) => drop(reply.send(result)),
            Answer::Compact(reply, result) => drop(reply.send(result)),
        }
    }

    fn fail(self, error: &StorageError) {
        match self {
            Answer::Write(reply, _) => drop(reply.send(Err(error.clone()))),
            Answer::Compact(reply, _) => drop(reply.send(Err(error.clone()))),
        }
    }
}

fn commit(shared: &Shared, batch: Vec<Request>, housekeeping: bool) {
    if let Some(error) = shared.stopped() {
        batch.into_iter().for_each(|request| request.reject(&error));
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut pending = batch.into_iter();
    let outcome = transact(shared, &mut pending, housekeeping, &mut answers);
    match outcome {
        Ok(Some((revision, events))) => {
            shared.revision.store(revision, Ordering::Release);
            shared.hub.publish(&events);
            answers.into_iter().for_each(Answer::send);
        }
        Ok(None) => answers.into_iter().for_each(Answer::send),
        Err(error) => {
            tracing::error!(%error, "a commit failed; the store takes no more writes");
            *shared.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            // Nothing of the batch was committed: those applied and those not reached alike.
            answers.into_iter().for_each(|answer| answer.fail(&error));
            pending.for_each(|request| request.reject(&error));
        }
    }
}

/// Applies a batch in one transaction and commits it. Returns the new revision and the events
/// committed, or `None` if nothing needed writing.
fn transact(
    shared: &Shared,
    batch: &mut impl Iterator<Item = Request>,
    housekeeping: bool,
    answers: &mut Vec<Answer>,
) -> Result<Option<(Revision, Vec<Event>)>> {
    let mut txn = shared.db.begin_write().map_err(unavailable)?;
    txn.set_durability(Durability::Immediate)
        .map_err(unavailable)?;
    let now = engine::now_millis();
    let mut events = Vec::new();
    let (revision, changed) = {
        let mut meta = txn.open_table(META).map_err(unavailable)?;
        let read = |meta: &Table<&str, i64>, name| -> Result<i64> {
            Ok(meta
                .get(name)
                .map_err(unavailable)?
                .map_or(0, |v| v.value()))
        };
        let start = read(&meta, REVISION)?;
        let compacted_before = read(&meta, COMPACTED)?;
        let mut revision = start;
        let mut compacted = compacted_before;
        let mut tables = Tables::open(&txn)?;
        let mut apply = |tables: &mut Tables<'_>, revision: &mut Revision, op| {
            let result = engine::apply(tables, *revision + 1, op, now);
            match &result {
                Ok(event) => {
                    *revision += 1;
                    events.push(event.clone());
                }
                // The transaction itself failed: nothing of the batch may be committed.
                Err(e @ (StorageError::Unavailable(_) | StorageError::Corrupt(_))) => {
                    return Err(e.clone());
                }
                Err(_) => {}
            }
            Ok(result)
        };
        for request in batch.by_ref() {
            match request {
                Request::Write(op, reply) => {
                    let result = apply(&mut tables, &mut revision, op)?;
                    answers.push(Answer::Write(reply, result));
                }
                Request::Compact(target, reply) => {
                    let result = if target > revision {
                        Err(StorageError::FutureRevision {
                            requested: target,
                            current: revision,
                        })
                    } else {
                        compacted = compacted.max(target);
                        Ok(())
                    };
                    answers.push(Answer::Compact(reply, result));
                }
            }
        }
        let mut dropped = 0;
        if housekeeping {
            for op in tables.expired(now)? {
                // A key written since it was found expired is left alone.
                let _ = apply(&mut tables, &mut revision, op)?;
            }
            dropped = tables.drop_history(compacted)?;
        }
        if revision != start {
            meta.insert(REVISION, revision).map_err(unavailable)?;
        }
        if compacted != compacted_before {
            meta.insert(COMPACTED, compacted).map_err(unavailable)?;
        }
        (
            revision,
            revision != start || compacted != compacted_before || dropped > 0,
        )
    };
    if !changed {
        txn.abort().map_err(unavailable)?;
        return Ok(None);
    }
    txn.commit().map_err(unavailable)?;
    Ok(Some((revision, events)))
}

/// The tables a write transaction changes, as the engine's [`Tx`].
struct Tables<'t> {
    kv: Table<'t, &'static [u8], &'static [u8]>,
    log: Table<'t, i64, &'static [u8]>,
    expiry: Table<'t, (u64, &'static [u8]), ()>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Tables<'t>> {
        Ok(Tables {
            kv: txn.open_table(KV).map_err(unavailable)?,
            log: txn.open_table(LOG).map_err(unavailable)?,
            expiry: txn.open_table(EXPIRY).map_err(unavailable)?,
        })
    }

    /// Expire ops for the keys whose TTL has run out.
    fn expired(&mut self, now: u64) -> Result<Vec<WriteOp>> {
        let mut due = Vec::new();
        let end: (u64, &[u8]) = (now.saturating_add(1), &[]);
        for entry in self.expiry.range(..end).map_err(unavailable)? {
            let (key, _) = entry.map_err(unavailable)?;
            due.push(key.value().1.to_vec());
            if due.len() == MAX_EXPIRED_PER_COMMIT {
                break;
            }
        }
        let mut ops = Vec::with_capacity(due.len());
        for key in due {
            if let Some(stored) = self.read(&key)? {
                ops.push(WriteOp::Expire {
                    key: stored.kv.key,
                    mod_revision: stored.kv.mod_revision,
                });
            }
        }
        Ok(ops)
    }

    /// Drops log entries up to `compacted`, a bounded number at a time. Returns how many.
    fn drop_history(&mut self, compacted: Revision) -> Result<usize> {
        let revisions: Vec<i64> = self
            .log
            .range(..=compacted)
            .map_err(unavailable)?
            .take(MAX_COMPACTED_PER_COMMIT)
            .map(|entry| entry.map(|(rev, _)| rev.value()).map_err(unavailable))
            .collect::<Result<_>>()?;
        for rev in &revisions {
            self.log.remove(rev).map_err(unavailable)?;
        }
        Ok(revisions.len())
    }
}

impl Tx for Tables<'_> {
    fn read(&mut self, key: &[u8]) -> Result<Option<Stored>> {
        match self.kv.get(key).map_err(unavailable)? {
            Some(bytes) => Ok(Some(codec::decode_record(key, bytes.value())?)),
            None => Ok(None),
        }
    }

    fn write(&mut self, new: &Stored, old: Option<&Stored>) -> Result<()> {
        let key = new.kv.key.as_ref();
        if let Some(at) = old.and_then(|o| o.expires_at) {
            self.expiry.remove((at, key)).map_err(unavailable)?;
        }
        if let Some(at) = new.expires_at {
            self.expiry.insert((at, key), ()).map_err(unavailable)?;
        }
        self.kv
            .insert(key, codec::encode_record(new).as_slice())
            .map_err(unavailable)?;
        Ok(())
    }

    fn remove(&mut self, old: &Stored) -> Result<()> {
        let key = old.kv.key.as_ref();
        if let Some(at) = old.expires_at {
            self.expiry.remove((at, key)).map_err(unavailable)?;
        }
        self.kv.remove(key).map_err(unavailable)?;
        Ok(())
    }

    fn append(&mut self, event: &Event) -> Result<()> {
        self.log
            .insert(event.revision(), codec::encode_event(event).as_slice())
            .map_err(unavailable)?;
        Ok(())
    }
}
