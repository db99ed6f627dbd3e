//! The etcd store: the storage contract on etcd's v3 API, for several Adamant replicas sharing
//! one etcd cluster.
//!
//! Each operation is one etcd request: a get or range for reads (etcd keeps the revisions, so
//! reads at past revisions and pinned pages come for free), a transaction comparing the key's
//! create or mod revision for writes, a lease per write with a TTL, and one etcd watch per
//! [`Store::watch`], with previous values and progress notifications.
//!
//! etcd never drops a slow watcher (it catches it up from disk), so a watch here is never ended
//! with "too slow"; events wait in a bounded queue and etcd is read at the consumer's pace.

pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KvClient, LeaseClient,
    PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use storage::{
    Deleted, Event, GetResponse, KeyValue, ListRequest, ListResponse, Result, Revision,
    StorageError, Store, Watch, WatchItem, WriteOptions, check_key, check_write, prefix_end,
};
use tokio::sync::mpsc;

/// How many events a watch may have waiting for its consumer.
const WATCH_QUEUE: usize = 1024;
/// The largest response the client accepts (a page of large values).
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Why the etcd store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to etcd at {endpoints}: {source}")]
pub struct ConnectError {
    endpoints: String,
    #[source]
    source: etcd_client::Error,
}

/// The etcd store. See the crate documentation.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// The newest compacted revision this store has seen, for error messages.
    compacted: Arc<AtomicI64>,
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`host:port` or URLs).
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore, ConnectError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_keep_alive(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(5),
            );
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|source| ConnectError {
                endpoints: endpoints.join(","),
                source,
            })?;
        Ok(EtcdStore {
            client,
            compacted: Arc::new(AtomicI64::new(0)),
        })
    }

    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn lease(&self) -> LeaseClient {
        self.client.lease_client()
    }

    fn error(&self, error: etcd_client::Error, requested: Revision) -> StorageError {
        let text = error.to_string();
        if text.contains("required revision has been compacted") {
            // etcd does not say where its history starts; past `requested`, at least.
            StorageError::Compacted {
                requested,
                compacted: self.compacted.load(Ordering::Relaxed).max(requested + 1),
            }
        } else if text.contains("required revision is a future revision") {
            // etcd does not say its revision either; callers ask (`future_revision`).
            StorageError::FutureRevision {
                requested,
                current: requested - 1,
            }
        } else if text.contains("request is too large") {
            StorageError::TooLarge {
                what: "request",
                size: 0,
                limit: storage::MAX_VALUE_BYTES,
            }
        } else {
            StorageError::Unavailable(format!("etcd: {text}"))
        }
    }

    async fn put_options(&self, options: WriteOptions) -> Result<PutOptions> {
        let mut put = PutOptions::new().with_prev_key();
        if let Some(ttl) = options.ttl {
            let seconds = i64::try_from(ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
            let lease = self
                .lease()
                .grant(seconds.max(1), None)
                .await
                .map_err(|e| self.error(e, 0))?;
            put = put.with_lease(lease.id());
        }
        Ok(put)
    }

    /// After a failed compare: why (the key's absence or its actual mod revision).
    fn compare_failure(
        key: &[u8],
        expected: Revision,
        responses: Vec<TxnOpResponse>,
    ) -> StorageError {
        let current = responses.into_iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        });
        match current {
            None => StorageError::NotFound { key: key.to_vec() },
            Some(actual) => StorageError::Conflict {
                key: key.to_vec(),
                expected,
                actual,
            },
        }
    }

    async fn range(
        &self,
        key: Vec<u8>,
        options: GetOptions,
        requested: Revision,
    ) -> Result<etcd_client::GetResponse> {
        self.kv()
            .get(key, Some(options))
            .await
            .map_err(|e| self.error(e, requested))
    }

    async fn future_revision(&self, requested: Revision) -> StorageError {
        match self.current_revision().await {
            Ok(current) => StorageError::FutureRevision { requested, current },
            Err(e) => e,
        }
    }
}

fn key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(etcd_client::ResponseHeader::revision)
        .ok_or_else(|| StorageError::Unavailable("etcd sent a response without a header".into()))
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision> {
        let response = self
            .range(vec![0], GetOptions::new().with_count_only(), 0)
            .await?;
        header_revision(response.header())
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<GetResponse> {
        check_key(key)?;
        let requested = revision.unwrap_or(0);
        let response = match self
            .range(
                key.to_vec(),
                GetOptions::new().with_revision(requested),
                requested,
            )
            .await
        {
            Err(StorageError::FutureRevision { .. }) => {
                return Err(self.future_revision(requested).await);
            }
            other => other?,
        };
        let revision = match revision {
            Some(revision) => revision,
            None => header_revision(response.header())?,
        };
        Ok(GetResponse {
            revision,
            kv: response.kvs().first().map(key_value),
        })
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let requested = request.revision.unwrap_or(0);
        let start = match &request.start_after {
            Some(after) if after.as_ref() >= request.prefix.as_ref() => {
                let mut start = after.to_vec();
                start.push(0);
                start
            }
            _ => request.prefix.to_vec(),
        };
        let mut options = GetOptions::new()
            .with_revision(requested)
            .with_limit(i64::try_from(request.limit).unwrap_or(i64::MAX));
        options = match prefix_end(&request.prefix) {
            Some(end) => options.with_range(end),
            None => options.with_from_key(),
        };
        // etcd cannot range from the empty key; "\0" is the first key there can be.
        let start = if start.is_empty() { vec![0] } else { start };
        let response = match self.range(start, options, requested).await {
            Err(StorageError::FutureRevision { .. }) => {
                return Err(self.future_revision(requested).await);
            }
            other => other?,
        };
        let revision = match request.revision {
            Some(revision) => revision,
            None => header_revision(response.header())?,
        };
        Ok(ListResponse {
            revision,
            kvs: response.kvs().iter().map(key_value).collect(),
            more: response.more(),
        })
    }

    async fn create(&self, key: Bytes, value: Bytes, options: WriteOptions) -> Result<KeyValue> {
        check_write(&key, &value)?;
        let put = self.put_options(options).await?;
        let txn = Txn::new()
            .when([Compare::create_revision(key.to_vec(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.to_vec(), value.to_vec(), Some(put))]);
        let response = self.kv().txn(txn).await.map_err(|e| self.error(e, 0))?;
        if !response.succeeded() {
            return Err(StorageError::AlreadyExists { key: key.to_vec() });
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key,
            value,
            create_revision: revision,
            mod_revision: revision,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: Bytes,
        value: Bytes,
        expected: Revision,
        options: WriteOptions,
    ) -> Result<KeyValue> {
        check_write(&key, &value)?;
        let put = self.put_options(options).await?;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.to_vec(),
                CompareOp::Equal,
                expected,
            )])
            .and_then([TxnOp::put(key.to_vec(), value.to_vec(), Some(put))])
            .or_else([TxnOp::get(key.to_vec(), None)]);
        let response = self.kv().txn(txn).await.map_err(|e| self.error(e, 0))?;
        if !response.succeeded() {
            return Err(Self::compare_failure(
                &key,
                expected,
                response.op_responses(),
            ));
        }
        let revision = header_revision(response.header())?;
        let prev = response.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Put(put) => put.prev_key().map(key_value),
            _ => None,
        });
        let prev = prev.ok_or_else(|| {
            StorageError::Unavailable("etcd did not return the previous value of an update".into())
        })?;
        Ok(KeyValue {
            key,
            value,
            create_revision: prev.create_revision,
            mod_revision: revision,
            version: prev.version + 1,
        })
    }

    async fn delete(&self, key: Bytes, expected: Option<Revision>) -> Result<Deleted> {
        check_key(&key)?;
        let compare = match expected {
            Some(expected) => Compare::mod_revision(key.to_vec(), CompareOp::Equal, expected),
            None => Compare::create_revision(key.to_vec(), CompareOp::Greater, 0),
        };
        let delete = etcd_client::DeleteOptions::new().with_prev_key();
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(key.to_vec(), Some(delete))])
            .or_else([TxnOp::get(key.to_vec(), None)]);
        let response = self.kv().txn(txn).await.map_err(|e| self.error(e, 0))?;
        if !response.succeeded() {
            return Err(Self::compare_failure(
                &key,
                expected.unwrap_or(0),
                response.op_responses(),
            ));
        }
        let revision = header_revision(response.header())?;
        let prev = response.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Delete(delete) => delete.prev_kvs().first().map(key_value),
            _ => None,
        });
        let prev = prev.ok_or_else(|| StorageError::NotFound { key: key.to_vec() })?;
        Ok(Deleted { revision, prev })
    }

    async fn watch(&self, prefix: Bytes, after: Revision) -> Result<Watch> {
        let (items, queue) = mpsc::channel(WATCH_QUEUE);
        let (progress, progress_requests) = mpsc::unbounded_channel();
        let requested = after;
        // etcd would replay from a compacted revision's survivors; the contract says Compacted.
        let compacted = if after > 1 {
            match self
                .range(
                    vec![0],
                    GetOptions::new().with_count_only().with_revision(after),
                    after,
                )
                .await
            {
                Err(e @ StorageError::Compacted { .. }) => Some(e),
                _ => None,
            }
        } else {
            None
        };
        if let Some(error) = compacted {
            let _ = items.try_send(Err(error));
        } else {
            let mut options = WatchOptions::new()
                .with_start_revision(after + 1)
                .with_prev_key()
                .with_progress_notify();
            options = match prefix_end(&prefix) {
                Some(end) => options.with_range(end),
                None => options.with_from_key(),
            };
            let key = if prefix.is_empty() {
                vec![0]
            } else {
                prefix.to_vec()
            };
            let stream = self
                .client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .watch(key, Some(options))
                .await
                .map_err(|e| self.error(e, requested))?;
            tokio::spawn(forward(
                stream,
                items,
                progress_requests,
                requested,
                self.compacted.clone(),
            ));
        }
        let queue = tokio_stream_from(queue);
        Ok(Watch::new(queue, move || {
            let _ = progress.send(());
        }))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.kv().compact(revision, None).await {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => match self.error(e, revision) {
                StorageError::Compacted { .. } => Ok(()),
                StorageError::FutureRevision { .. } => Err(self.future_revision(revision).await),
                other => Err(other),
            },
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut queue: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| queue.poll_recv(cx))
}

/// Moves one etcd watch's responses to the watch's queue, at the consumer's pace, and its
/// progress requests to etcd. Ends when either side does.
async fn forward(
    stream: etcd_client::WatchStream,
    items: mpsc::Sender<Result<storage::WatchItem>>,
    mut progress_requests: mpsc::UnboundedReceiver<()>,
    requested: Revision,
    compacted: Arc<AtomicI64>,
) {
    let (mut sender, mut responses) = stream.split();
    let mut last = requested;
    loop {
        let response = tokio::select! {
            response = responses.next() => response,
            Some(()) = progress_requests.recv() => {
                let _ = sender.request_progress().await;
                continue;
            }
            () = items.closed() => return,
        };
        let response = match response {
            Some(Ok(response)) => response,
            Some(Err(e)) => {
                let _ = items
                    .send(Err(StorageError::Unavailable(format!("etcd watch: {e}"))))
                    .await;
                return;
            }
            None => {
                let error = StorageError::Unavailable("etcd ended the watch".into());
                let _ = items.send(Err(error)).await;
                return;
            }
        };
        if response.compact_revision() > 0 {
            compacted.fetch_max(response.compact_revision(), Ordering::Relaxed);
            let error = StorageError::Compacted {
                requested: last,
                compacted: response.compact_revision(),
            };
            let _ = items.send(Err(error)).await;
            return;
        }
        if response.canceled() {
            let reason = format!("etcd canceled the watch: {}", response.cancel_reason());
            let _ = items.send(Err(StorageError::Unavailable(reason))).await;
            return;
        }
        if response.created() && response.events().is_empty() {
            continue;
        }
        if response.events().is_empty() {
            let Ok(revision) = header_revision(response.header()) else {
                continue;
            };
            if items
                .send(Ok(WatchItem::Progress(revision.max(last))))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        for event in response.events() {
            let item = convert(event);
            if let Ok(WatchItem::Event(event)) = &item {
                last = event.revision();
            }
            let failed = item.is_err();
            if items.send(item).await.is_err() || failed {
                return;
            }
        }
    }
}

fn convert(event: &etcd_client::Event) -> Result<WatchItem> {
    let kv = event
        .kv()
        .ok_or_else(|| StorageError::Unavailable("etcd sent an event without a key".into()))?;
    let prev = event.prev_kv().map(key_value);
    let event = match event.event_type() {
        EventType::Put => Event::Put {
            kv: key_value(kv),
            prev,
        },
        EventType::Delete => Event::Delete {
            key: Bytes::copy_from_slice(kv.key()),
            revision: kv.mod_revision(),
            // etcd leaves the previous value out only when it was compacted away.
            prev: prev.ok_or(StorageError::Compacted {
                requested: kv.mod_revision() - 1,
                compacted: kv.mod_revision() - 1,
            })?,
        },
    };
    Ok(WatchItem::Event(event))
}
