//! The object store, timed: every call the API server makes to it is observed in
//! `apiserver_storage_request_duration_seconds{operation}` (writes return once committed, so
//! `create`, `update` and `delete` are the store's commit latency). The store is not changed.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use storage::{
    Deleted, GetResponse, KeyValue, ListRequest, ListResponse, Result, Revision, Store, Watch,
    WriteOptions,
};

/// The operations timed (a fixed set: the label's bound).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OperationLabels {
    operation: &'static str,
}

/// Store call durations by operation.
pub(crate) type Durations = Family<OperationLabels, Histogram, fn() -> Histogram>;

/// The upper bounds of the store latency buckets, in seconds (finer than requests': a commit
/// on a local disk takes milliseconds).
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// A new, empty family of store call durations.
pub(crate) fn durations() -> Durations {
    Family::new_with_constructor(histogram as fn() -> Histogram)
}

/// `inner`, with each call timed into `durations`.
pub(crate) struct MeteredStore {
    inner: Arc<dyn Store>,
    durations: Durations,
}

impl MeteredStore {
    /// Times `inner`'s calls into `durations`.
    pub(crate) fn new(inner: Arc<dyn Store>, durations: Durations) -> MeteredStore {
        MeteredStore { inner, durations }
    }

    fn observe(&self, operation: &'static str, started: Instant) {
        self.durations
            .get_or_create(&OperationLabels { operation })
            .observe(started.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn get(&self, key: &[u8], revision: Option<Revision>) -> Result<GetResponse> {
        let started = Instant::now();
        let answer = self.inner.get(key, revision).await;
        self.observe("get", started);
        answer
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let started = Instant::now();
        let answer = self.inner.list(request).await;
        self.observe("list", started);
        answer
    }

    async fn create(&self, key: Bytes, value: Bytes, options: WriteOptions) -> Result<KeyValue> {
        let started = Instant::now();
        let answer = self.inner.create(key, value, options).await;
        self.observe("create", started);
        answer
    }

    async fn update(
        &self,
        key: Bytes,
        value: Bytes,
        expected: Revision,
        options: WriteOptions,
    ) -> Result<KeyValue> {
        let started = Instant::now();
        let answer = self.inner.update(key, value, expected, options).await;
        self.observe("update", started);
        answer
    }

    async fn delete(&self, key: Bytes, expected: Option<Revision>) -> Result<Deleted> {
        let started = Instant::now();
        let answer = self.inner.delete(key, expected).await;
        self.observe("delete", started);
        answer
    }

    async fn watch(&self, prefix: Bytes, after: Revision) -> Result<Watch> {
        self.inner.watch(prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let started = Instant::now();
        let answer = self.inner.compact(revision).await;
        self.observe("compact", started);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_timed_by_operation_and_answered_as_the_store_answers() {
        let durations = durations();
        let store = MeteredStore::new(Arc::new(storage::MemoryStore::new()), durations.clone());
        let created = store
            .create("/a".into(), "1".into(), WriteOptions::default())
            .await
            .unwrap();
        store
            .update(
                "/a".into(),
                "2".into(),
                created.mod_revision,
                WriteOptions::default(),
            )
            .await
            .unwrap();
        assert!(
            store
                .create("/a".into(), "3".into(), WriteOptions::default())
                .await
                .is_err(),
            "errors pass through"
        );
        store.get(b"/a", None).await.unwrap();
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("store", "", durations);
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for (operation, count) in [("create", 2), ("update", 1), ("get", 1)] {
            let line = format!("store_count{{operation=\"{operation}\"}} {count}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(!text.contains("operation=\"list\""), "{text}");
    }
}
