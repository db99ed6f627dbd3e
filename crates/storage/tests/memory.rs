//! The conformance suite and the slow-watcher rule on the in-memory backend.

use bytes::Bytes;
use futures::StreamExt;
use storage::testing::{Subject, next_event};
use storage::{MemoryStore, StorageError, Store, WriteOptions};

async fn make() -> Subject {
    Subject::new(MemoryStore::new())
}

storage::conformance_tests!(make);

/// With a small queue, a watcher that does not read is ended once the queue is full, after
/// delivering everything that was queued.
#[tokio::test]
async fn a_watcher_that_falls_behind_is_ended_with_an_error() {
    let store = MemoryStore::with_watch_capacity(8);
    let mut watch = store.watch(Bytes::from_static(b"/"), 1).await.unwrap();
    for i in 0..20 {
        let key = Bytes::from(format!("/{i:02}"));
        store
            .create(key, Bytes::new(), WriteOptions::default())
            .await
            .unwrap();
    }
    for i in 0..8 {
        assert_eq!(next_event(&mut watch).await.revision(), i + 2);
    }
    let end = watch.next().await;
    assert_eq!(
        end,
        Some(Err(StorageError::WatcherTooSlow { last_delivered: 9 }))
    );
    assert_eq!(watch.next().await, None);
    // A watch started again from there replays the rest from history.
    let mut again = store.watch(Bytes::from_static(b"/"), 9).await.unwrap();
    assert_eq!(next_event(&mut again).await.revision(), 10);
}
