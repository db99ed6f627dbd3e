//! The in-memory backend: fast, not durable; for tests of the layers above the store.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::engine::{self, Stored, Tx, WriteOp};
use crate::hub::{History, WatchHub};
use crate::snapshot::{KeyRange, list_snapshot};
use crate::{
    Deleted, Event, GetResponse, KeyValue, ListRequest, ListResponse, Result, Revision,
    StorageError, Store, Watch, WriteOptions, check_key,
};

/// How many events a watcher may have queued before it is ended, by default.
pub const DEFAULT_WATCH_CAPACITY: usize = 10_000;

/// How often expired keys are looked for.
const REAP_INTERVAL: Duration = Duration::from_millis(100);

/// A store held in memory. Everything is lost when it is dropped.
///
/// It must be created inside a Tokio runtime, which runs its expiry task.
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    hub: Arc<WatchHub>,
}

struct State {
    revision: Revision,
    compacted: Revision,
    kvs: BTreeMap<Bytes, Stored>,
    /// Every event after `compacted`, in revision order.
    log: VecDeque<Event>,
    /// (expires_at, key) of every key with a time to live.
    expiry: BTreeSet<(u64, Bytes)>,
}

impl Tx for State {
    fn read(&mut self, key: &[u8]) -> Result<Option<Stored>> {
        Ok(self.kvs.get(key).cloned())
    }

    fn write(&mut self, new: &Stored, old: Option<&Stored>) -> Result<()> {
        if let Some(at) = old.and_then(|o| o.expires_at) {
            self.expiry.remove(&(at, new.kv.key.clone()));
        }
        if let Some(at) = new.expires_at {
            self.expiry.insert((at, new.kv.key.clone()));
        }
        self.kvs.insert(new.kv.key.clone(), new.clone());
        Ok(())
    }

    fn remove(&mut self, old: &Stored) -> Result<()> {
        if let Some(at) = old.expires_at {
            self.expiry.remove(&(at, old.kv.key.clone()));
        }
        self.kvs.remove(&old.kv.key);
        Ok(())
    }

    fn append(&mut self, event: &Event) -> Result<()> {
        self.log.push_back(event.clone());
        Ok(())
    }
}

impl State {
    fn check_revision(&self, revision: Revision) -> Result<()> {
        engine::check_read(revision, self.revision, self.compacted)
    }

    /// The events after `revision`.
    fn events_after(&self, revision: Revision) -> impl Iterator<Item = &Event> {
        let start = self.log.partition_point(|e| e.revision() <= revision);
        self.log.range(start..)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1.
    pub fn new() -> MemoryStore {
        Self::with_watch_capacity(DEFAULT_WATCH_CAPACITY)
    }

    /// An empty store whose watchers may queue `capacity` events before they are ended.
    pub fn with_watch_capacity(capacity: usize) -> MemoryStore {
        let state = Arc::new(Mutex::new(State {
            revision: 1,
            compacted: 0,
            kvs: BTreeMap::new(),
            log: VecDeque::new(),
            expiry: BTreeSet::new(),
        }));
        let hub = WatchHub::new(1, capacity);
        tokio::spawn(reap(Arc::downgrade(&state), Arc::downgrade(&hub)));
        MemoryStore { state, hub }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn write(&self, op: WriteOp) -> Result<Event> {
        write(&self.state, &self.hub, op)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn write(state: &Mutex<State>, hub: &WatchHub, op: WriteOp) -> Result<Event> {
    let mut state = lock(state);
    let revision = state.revision + 1;
    let event = engine::apply(&mut *state, revision, op, engine::now_millis())?;
    state.revision = revision;
    // Published under the state lock, so events reach the hub in revision order.
    hub.publish(std::slice::from_ref(&event));
    Ok(event)
}

async fn reap(state: Weak<Mutex<State>>, hub: Weak<WatchHub>) {
    loop {
        tokio::time::sleep(REAP_INTERVAL).await;
        let (Some(state), Some(hub)) = (state.upgrade(), hub.upgrade()) else {
            return;
        };
        let now = engine::now_millis();
        let expired: Vec<WriteOp> = {
            let s = lock(&state);
            s.expiry
                .iter()
                .take_while(|(at, _)| *at <= now)
                .filter_map(|(_, key)| s.kvs.get(key))
                .map(|stored| WriteOp::Expire {
                    key: stored.kv.key.clone(),
                    mod_revision: stored.kv.mod_revision,
                })
                .collect()
        };
        for op in expired {
            // A key written again since it was found expired is left alone.
            let _ = write(&state, &hub, op);
        }
    }
}

#[async_trait::async_trait]
impl History for Mutex<State> {
    async fn events(
        &self,
        prefix: &[u8],
        after: Revision,
        until: Revision,
        limit: usize,
    ) -> Result<(Vec<Event>, Revision)> {
        let state = lock(self);
        if after < state.compacted {
            return Err(StorageError::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let mut scanned = until;
        let mut out = Vec::new();
        for event in state.events_after(after) {
            if event.revision() > until {
                break;
            }
            if out.len() == limit {
                scanned = out.last().map_or(after, Event::revision);
                break;
            }
            if event.key().starts_with(prefix) {
                out.push(event.clone());
            }
        }
        Ok((out, scanned))
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<GetResponse> {
        check_key(key)?;
        let state = self.lock();
        let revision = revision.unwrap_or(state.revision);
        state.check_revision(revision)?;
        let range = KeyRange::single(key);
        let current = state.kvs.get(key).map(|stored| Ok(stored.kv.clone()));
        let (kvs, _) = list_snapshot(current.into_iter(), state.events_after(revision), &range, 1)?;
        Ok(GetResponse {
            revision,
            kv: kvs.into_iter().next(),
        })
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let state = self.lock();
        let revision = request.revision.unwrap_or(state.revision);
        state.check_revision(revision)?;
        let range = KeyRange::of(&request);
        let current = state
            .kvs
            .range::<[u8], _>(range.bounds())
            .map(|(_, stored)| Ok(stored.kv.clone()));
        let (kvs, more) =
            list_snapshot(current, state.events_after(revision), &range, request.limit)?;
        Ok(ListResponse {
            revision,
            kvs,
            more,
        })
    }

    async fn create(&self, key: Bytes, value: Bytes, options: WriteOptions) -> Result<KeyValue> {
        let ttl = options.ttl;
        self.write(WriteOp::Create { key, value, ttl })
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
        self.write(op).map(engine::written)
    }

    async fn delete(&self, key: Bytes, expected: Option<Revision>) -> Result<Deleted> {
        self.write(WriteOp::Delete { key, expected })
            .map(engine::deleted)
    }

    async fn watch(&self, prefix: Bytes, after: Revision) -> Result<Watch> {
        let history: Arc<dyn History> = self.state.clone();
        Ok(self.hub.subscribe(prefix, after, history))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.lock();
        state.check_revision(revision.max(state.compacted))?;
        if revision > state.compacted {
            state.compacted = revision;
            let keep = state.log.partition_point(|e| e.revision() <= revision);
            state.log.drain(..keep);
        }
        Ok(())
    }
}
