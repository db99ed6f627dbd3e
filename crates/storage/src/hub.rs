//! Watch fan-out for the in-process backends (memory and embedded).
//!
//! The backend publishes every committed event, in revision order, to the [`WatchHub`]. Each
//! watcher has a bounded channel; the hub never blocks a writer on a watcher. A watcher whose
//! channel is full is ended: it reads what was queued, then [`StorageError::WatcherTooSlow`].
//!
//! A watch from an older revision first reads the backlog from the backend's [`History`] (lazily,
//! a page at a time, by the watcher's own task), then switches to its live channel. Both halves
//! are joined without a gap or a duplicate: the live channel is registered at the same moment the
//! hub's latest published revision `P` is read, so the backlog is exactly `(after, P]` and the
//! channel holds exactly what follows `P`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Event, Result, Revision, StorageError, Watch, WatchItem};

/// How many events a backlog read asks for at a time.
const BACKLOG_PAGE: usize = 1024;

/// Where a watcher reads the events it missed: the backend's retained history.
#[async_trait::async_trait]
pub trait History: Send + Sync + 'static {
    /// The events under `prefix` with `after < revision <= until`, in revision order, at most
    /// `limit` of them, and the revision the read got to (`until` when it read everything).
    /// Fails with [`StorageError::Compacted`] if `after` is older than the retained history.
    async fn events(
        &self,
        prefix: &[u8],
        after: Revision,
        until: Revision,
        limit: usize,
    ) -> Result<(Vec<Event>, Revision)>;
}

/// The fan-out of committed events to watchers. See the module documentation.
pub struct WatchHub {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    /// The revision of the latest published event.
    published: Revision,
    next_id: u64,
    watchers: HashMap<u64, Slot>,
}

struct Slot {
    prefix: Bytes,
    tx: mpsc::Sender<WatchItem>,
    lagged: Arc<AtomicBool>,
}

impl WatchHub {
    /// A hub whose latest published revision is `published`, giving each watcher a queue of
    /// `capacity` events.
    pub fn new(published: Revision, capacity: usize) -> Arc<WatchHub> {
        Arc::new(WatchHub {
            inner: Mutex::new(Inner {
                published,
                next_id: 0,
                watchers: HashMap::new(),
            }),
            capacity: capacity.max(1),
        })
    }

    /// Ends every watch: each reads what it has queued, then an "unavailable" error.
    pub fn close(&self) {
        self.lock().watchers.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers committed events, given in revision order, to every watcher of their keys.
    /// Callers publish under the lock that orders their commits, so publications never overtake.
    pub fn publish(&self, events: &[Event]) {
        let Some(last) = events.last() else { return };
        let mut inner = self.lock();
        inner.published = last.revision();
        inner.watchers.retain(|_, slot| {
            for event in events {
                if !event.key().starts_with(&slot.prefix) {
                    continue;
                }
                match slot.tx.try_send(WatchItem::Event(event.clone())) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        slot.lagged.store(true, Ordering::Release);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            !slot.tx.is_closed()
        });
    }

    fn request_progress(&self, id: u64) {
        let inner = self.lock();
        if let Some(slot) = inner.watchers.get(&id) {
            // A full queue means the watcher is behind; it gets its events first.
            let _ = slot.tx.try_send(WatchItem::Progress(inner.published));
        }
    }

    /// Starts a watch of `prefix` after revision `after`, reading the backlog from `history`.
    pub fn subscribe(
        self: &Arc<Self>,
        prefix: Bytes,
        after: Revision,
        history: Arc<dyn History>,
    ) -> Watch {
        let (tx, rx) = mpsc::channel(self.capacity);
        let lagged = Arc::new(AtomicBool::new(false));
        let (id, published) = {
            let mut inner = self.lock();
            let id = inner.next_id;
            inner.next_id += 1;
            inner.watchers.insert(
                id,
                Slot {
                    prefix: prefix.clone(),
                    tx,
                    lagged: lagged.clone(),
                },
            );
            (id, inner.published)
        };
        let state = Watcher {
            prefix,
            after,
            scanned: after,
            backlog_until: published,
            delivered: after,
            buffer: VecDeque::new(),
            history,
            rx,
            lagged,
            done: false,
        };
        let hub: Weak<WatchHub> = Arc::downgrade(self);
        Watch::new(
            futures::stream::unfold(state, |mut w| async move {
                let item = w.next().await?;
                Some((item, w))
            }),
            move || {
                if let Some(hub) = hub.upgrade() {
                    hub.request_progress(id);
                }
            },
        )
    }
}

/// One watcher's side: the backlog it still has to read, then its live queue.
struct Watcher {
    prefix: Bytes,
    /// The revision the watch was asked to start after.
    after: Revision,
    /// How far the backlog has been read.
    scanned: Revision,
    /// The end of the backlog: the hub's published revision when the watcher registered.
    backlog_until: Revision,
    /// The revision of the last event delivered.
    delivered: Revision,
    buffer: VecDeque<Event>,
    history: Arc<dyn History>,
    rx: mpsc::Receiver<WatchItem>,
    lagged: Arc<AtomicBool>,
    done: bool,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<WatchItem>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.delivered = event.revision();
                return Some(Ok(WatchItem::Event(event)));
            }
            if self.scanned < self.backlog_until {
                match self
                    .history
                    .events(&self.prefix, self.scanned, self.backlog_until, BACKLOG_PAGE)
                    .await
                {
                    Ok((events, scanned)) => {
                        self.buffer.extend(events);
                        self.scanned = scanned;
                    }
                    Err(e) => return self.fail(e),
                }
                continue;
            }
            match self.rx.recv().await {
                // A watch from a future revision skips what comes before it.
                Some(WatchItem::Event(event)) if event.revision() <= self.after => continue,
                Some(WatchItem::Event(event)) => {
                    self.delivered = event.revision();
                    return Some(Ok(WatchItem::Event(event)));
                }
                Some(WatchItem::Progress(revision)) => {
                    return Some(Ok(WatchItem::Progress(revision.max(self.after))));
                }
                None if self.lagged.load(Ordering::Acquire) => {
                    let last_delivered = self.delivered;
                    return self.fail(StorageError::WatcherTooSlow { last_delivered });
                }
                None => return self.fail(StorageError::Unavailable("the store was closed".into())),
            }
        }
    }

    fn fail(&mut self, error: StorageError) -> Option<Result<WatchItem>> {
        self.done = true;
        self.rx.close();
        Some(Err(error))
    }
}
