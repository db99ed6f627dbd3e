//! Watch at scale on the embedded store: thousands of watchers, slow watchers, compaction.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use storage::testing::next_event;
use storage::{Retention, StorageError, Store, WriteOptions};
use storage_embedded::{EmbeddedStore, Options};

fn open(dir: &tempfile::TempDir, options: Options) -> EmbeddedStore {
    EmbeddedStore::open(dir.path().join("store.redb"), options).unwrap()
}

async fn put(store: &dyn Store, key: String) -> i64 {
    store
        .create(
            Bytes::from(key),
            Bytes::from_static(b"v"),
            WriteOptions::default(),
        )
        .await
        .unwrap()
        .mod_revision
}

/// 3,000 watchers on nested prefixes, started at different revisions (some replaying history,
/// some live), each get exactly the changes of their keys, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_watchers_on_overlapping_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Options::default());
    let prefixes = ["/", "/a/", "/a/b/", "/c/"];
    let keys = |round: usize| {
        [
            format!("/a/{round}"),
            format!("/a/b/{round}"),
            format!("/c/{round}"),
            format!("/d{round}"),
        ]
    };
    let mut written = Vec::new();
    let mut watches = Vec::new();
    for round in 0..20 {
        // A fifth of the watchers start before any write, the rest as writes go on.
        if round % 4 == 0 {
            let start = store.current_revision().await.unwrap();
            for i in 0..600 {
                let prefix = prefixes[i % prefixes.len()];
                let watch = store
                    .watch(Bytes::from_static(prefix.as_bytes()), start)
                    .await
                    .unwrap();
                watches.push((prefix, written.len(), watch));
            }
        }
        for key in keys(round) {
            put(&store, key.clone()).await;
            written.push(key);
        }
    }
    assert_eq!(watches.len(), 3000);
    for (prefix, from, watch) in &mut watches {
        let expected: Vec<&String> = written[*from..]
            .iter()
            .filter(|k| k.starts_with(*prefix))
            .collect();
        for key in expected {
            let event = next_event(watch).await;
            assert_eq!(
                event.key().as_ref(),
                key.as_bytes(),
                "watcher of {prefix} from {from}"
            );
        }
    }
}

/// A watcher that stops reading is ended with `WatcherTooSlow` once its queue is full, after
/// everything queued, and can resume from the revision it reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_ended_and_told_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        Options {
            watch_capacity: 16,
            ..Options::default()
        },
    );
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(Bytes::from_static(b"/"), start).await.unwrap();
    let mut revisions = Vec::new();
    for i in 0..100 {
        revisions.push(put(&store, format!("/{i:03}")).await);
    }
    for expected in &revisions[..16] {
        assert_eq!(next_event(&mut watch).await.revision(), *expected);
    }
    let end = watch.next().await;
    assert_eq!(
        end,
        Some(Err(StorageError::WatcherTooSlow {
            last_delivered: revisions[15]
        }))
    );
    assert_eq!(watch.next().await, None);
    let mut resumed = store
        .watch(Bytes::from_static(b"/"), revisions[15])
        .await
        .unwrap();
    for expected in &revisions[16..] {
        assert_eq!(next_event(&mut resumed).await.revision(), *expected);
    }
}

/// The automatic compactor keeps the configured number of revisions: older reads and watches
/// get `Compacted`, recent ones work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compactor_keeps_the_configured_history() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(open(&dir, Options::default()));
    let first = put(&*store, "/k/0".into()).await;
    for i in 1..50 {
        put(&*store, format!("/k/{i}")).await;
    }
    let current = store.current_revision().await.unwrap();
    let retention = Retention {
        revisions: 10,
        interval: Duration::from_millis(20),
    };
    let compactor = storage::spawn_compactor(store.clone(), retention);
    // Wait for the compactor's first pass to reach the old revision.
    tokio::time::timeout(Duration::from_secs(20), async {
        while store.get(b"/k/0", Some(first)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the compactor never ran");
    compactor.abort();
    let err = store.get(b"/k/0", Some(current - 11)).await.unwrap_err();
    assert_eq!(
        err,
        StorageError::Compacted {
            requested: current - 11,
            compacted: current - 10
        }
    );
    assert!(
        store
            .get(b"/k/0", Some(current - 10))
            .await
            .unwrap()
            .kv
            .is_some()
    );
    let mut watch = store
        .watch(Bytes::from_static(b"/k/"), current - 10)
        .await
        .unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), current - 9);
}
