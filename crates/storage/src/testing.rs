//! The conformance suite: the store contract as executable cases, run by every backend.
//!
//! A backend's test file calls [`conformance_tests!`](crate::conformance_tests) with an async
//! function returning a fresh, empty [`Subject`]; the macro makes one test per case. The cases use
//! only the [`Store`] trait, and assert only what the contract promises (revisions increase, but
//! by how much is the backend's business).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    Event, KeyValue, ListRequest, MAX_KEY_BYTES, MAX_VALUE_BYTES, Revision, StorageError, Store,
    Watch, WatchItem, WriteOptions,
};

/// How long a case waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// A store under test, with whatever must live as long as it (a server process, a directory).
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Dropped after the store.
    pub guard: Box<dyn Any + Send + Sync>,
}

impl Subject {
    /// A subject that needs nothing kept alive.
    pub fn new(store: impl Store) -> Subject {
        Subject {
            store: Arc::new(store),
            guard: Box::new(()),
        }
    }
}

/// Generates one `#[tokio::test]` per conformance case, each on a fresh subject from `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            create_then_get,
            create_of_an_existing_key_is_refused,
            every_write_creates_a_new_revision,
            update_compares_the_mod_revision,
            delete_compares_the_mod_revision,
            list_returns_a_prefix_in_key_order,
            list_pages_are_pinned_to_one_revision,
            reads_at_past_revisions,
            compaction_bounds_the_history,
            watch_replays_history_with_previous_values,
            watch_delivers_concurrent_writes_in_order,
            watch_sees_only_its_prefix,
            watch_from_a_future_revision_waits_for_it,
            many_watchers_on_overlapping_prefixes,
            an_unread_watcher_never_skips_silently,
            progress_reports_the_revision_reached,
            keys_with_a_ttl_expire_with_an_event,
            oversized_and_empty_keys_are_refused,
            concurrent_compare_and_swap_loses_no_update,
            values_are_arbitrary_bytes
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let subject: $crate::testing::Subject = $make().await;
                $crate::testing::$case(&*subject.store).await;
                drop(subject);
            }
        )*
    };
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn none() -> WriteOptions {
    WriteOptions::default()
}

async fn put(store: &dyn Store, key: &str, value: &str) -> KeyValue {
    store
        .create(b(key), b(value), none())
        .await
        .expect("create")
}

async fn list_all(store: &dyn Store, prefix: &str, revision: Option<Revision>) -> Vec<KeyValue> {
    let request = ListRequest {
        prefix: b(prefix),
        revision,
        ..ListRequest::default()
    };
    store.list(request).await.expect("list").kvs
}

/// The next item of a watch, failing the test if none comes in time.
pub async fn next_item(watch: &mut Watch) -> Option<crate::Result<WatchItem>> {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("the watch delivered nothing in time")
}

/// The next event of a watch (skipping progress notifications).
pub async fn next_event(watch: &mut Watch) -> Event {
    loop {
        match next_item(watch).await {
            Some(Ok(WatchItem::Event(event))) => return event,
            Some(Ok(WatchItem::Progress(_))) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `key=value` of each event, as `put`/`del` lines, for readable assertions.
fn describe(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Put { kv, prev } => format!(
                "put {}={} prev={}",
                text(&kv.key),
                text(&kv.value),
                prev.as_ref().map_or("-".into(), |p| text(&p.value))
            ),
            Event::Delete { key, prev, .. } => {
                format!("del {} prev={}", text(key), text(&prev.value))
            }
        })
        .collect()
}

/// A create returns the new key's bookkeeping, and a get reads it back.
pub async fn create_then_get(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    assert!(start >= 1, "revisions start at 1, got {start}");
    let kv = put(store, "/t/a", "one").await;
    assert_eq!(kv.key, b("/t/a"));
    assert_eq!(kv.value, b("one"));
    assert!(kv.mod_revision > start);
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.version, 1);
    let got = store.get(b"/t/a", None).await.unwrap();
    assert_eq!(got.kv, Some(kv.clone()));
    assert_eq!(got.revision, kv.mod_revision);
    assert_eq!(store.current_revision().await.unwrap(), kv.mod_revision);
    let missing = store.get(b"/t/b", None).await.unwrap();
    assert_eq!(missing.kv, None);
    assert_eq!(missing.revision, kv.mod_revision);
}

/// Creating a key twice fails and leaves the first value and the revision alone.
pub async fn create_of_an_existing_key_is_refused(store: &dyn Store) {
    let kv = put(store, "/t/a", "one").await;
    let err = store.create(b("/t/a"), b("two"), none()).await.unwrap_err();
    assert_eq!(
        err,
        StorageError::AlreadyExists {
            key: b"/t/a".to_vec()
        }
    );
    assert_eq!(store.current_revision().await.unwrap(), kv.mod_revision);
    assert_eq!(store.get(b"/t/a", None).await.unwrap().kv, Some(kv));
}

/// Every successful write returns a revision above all before it, and becomes the current one.
pub async fn every_write_creates_a_new_revision(store: &dyn Store) {
    let mut last = store.current_revision().await.unwrap();
    let mut expected = last;
    for i in 0..10 {
        let kv = put(store, &format!("/t/{i}"), "x").await;
        assert!(kv.mod_revision > last, "{} after {last}", kv.mod_revision);
        last = kv.mod_revision;
        let kv = store
            .update(kv.key, b("y"), kv.mod_revision, none())
            .await
            .unwrap();
        assert!(kv.mod_revision > last);
        last = kv.mod_revision;
        let deleted = store.delete(kv.key, None).await.unwrap();
        assert!(deleted.revision > last);
        last = deleted.revision;
        expected = last;
    }
    assert_eq!(store.current_revision().await.unwrap(), expected);
}

/// An update succeeds only at the key's current mod revision, and keeps its create revision.
pub async fn update_compares_the_mod_revision(store: &dyn Store) {
    let first = put(store, "/t/a", "one").await;
    let second = store
        .update(b("/t/a"), b("two"), first.mod_revision, none())
        .await
        .unwrap();
    assert_eq!(second.create_revision, first.create_revision);
    assert!(second.mod_revision > first.mod_revision);
    assert_eq!(second.version, 2);
    assert_eq!(second.value, b("two"));

    let stale = store
        .update(b("/t/a"), b("three"), first.mod_revision, none())
        .await
        .unwrap_err();
    assert_eq!(
        stale,
        StorageError::Conflict {
            key: b"/t/a".to_vec(),
            expected: first.mod_revision,
            actual: second.mod_revision
        }
    );
    let missing = store
        .update(b("/t/missing"), b("x"), 1, none())
        .await
        .unwrap_err();
    assert_eq!(
        missing,
        StorageError::NotFound {
            key: b"/t/missing".to_vec()
        }
    );
    assert_eq!(store.current_revision().await.unwrap(), second.mod_revision);
    assert_eq!(store.get(b"/t/a", None).await.unwrap().kv, Some(second));
}

/// A conditional delete succeeds only at the key's mod revision and returns what was deleted; a
/// key created again starts over.
pub async fn delete_compares_the_mod_revision(store: &dyn Store) {
    let first = put(store, "/t/a", "one").await;
    let second = store
        .update(b("/t/a"), b("two"), first.mod_revision, none())
        .await
        .unwrap();
    let stale = store
        .delete(b("/t/a"), Some(first.mod_revision))
        .await
        .unwrap_err();
    assert!(
        matches!(stale, StorageError::Conflict { actual, .. } if actual == second.mod_revision)
    );
    let deleted = store
        .delete(b("/t/a"), Some(second.mod_revision))
        .await
        .unwrap();
    assert_eq!(deleted.prev, second);
    assert!(deleted.revision > second.mod_revision);
    assert_eq!(store.current_revision().await.unwrap(), deleted.revision);
    assert_eq!(store.get(b"/t/a", None).await.unwrap().kv, None);
    let again = store.delete(b("/t/a"), None).await.unwrap_err();
    assert_eq!(
        again,
        StorageError::NotFound {
            key: b"/t/a".to_vec()
        }
    );

    let reborn = put(store, "/t/a", "three").await;
    assert_eq!(reborn.version, 1);
    assert!(reborn.create_revision > deleted.revision);
    let gone = store.delete(b("/t/a"), None).await.unwrap();
    assert_eq!(gone.prev, reborn);
}

/// A list returns exactly the keys under its prefix, in byte order, whatever bytes they hold.
pub async fn list_returns_a_prefix_in_key_order(store: &dyn Store) {
    let keys: [&[u8]; 9] = [
        b"/p/a",
        b"/p/\x00",
        b"/p/\xff\xff",
        b"/p/",
        b"/p0",
        b"/p",
        b"/o/x",
        b"\xff\x01",
        b"\xff\xff",
    ];
    for key in keys {
        store
            .create(Bytes::copy_from_slice(key), b("v"), none())
            .await
            .unwrap();
    }
    let list = |prefix: &'static [u8], limit| async move {
        let request = ListRequest {
            prefix: Bytes::from_static(prefix),
            limit,
            ..ListRequest::default()
        };
        let page = store.list(request).await.unwrap();
        (
            page.kvs
                .into_iter()
                .map(|kv| kv.key.to_vec())
                .collect::<Vec<_>>(),
            page.more,
        )
    };
    let p: Vec<Vec<u8>> = vec![
        b"/p/".into(),
        b"/p/\x00".into(),
        b"/p/a".into(),
        b"/p/\xff\xff".into(),
    ];
    assert_eq!(list(b"/p/", 0).await, (p.clone(), false));
    assert_eq!(list(b"/p/", 4).await, (p.clone(), false));
    assert_eq!(list(b"/p/", 2).await, (p[..2].to_vec(), true));
    assert_eq!(
        list(b"\xff", 0).await,
        (vec![b"\xff\x01".to_vec(), b"\xff\xff".to_vec()], false)
    );
    assert_eq!(
        list(b"\xff\xff", 0).await,
        (vec![b"\xff\xff".to_vec()], false)
    );
    assert_eq!(list(b"", 0).await.0.len(), keys.len());
    assert_eq!(list(b"/q", 0).await, (vec![], false));
}

/// Pages read at the first page's revision come from one snapshot, whatever is written between.
pub async fn list_pages_are_pinned_to_one_revision(store: &dyn Store) {
    let mut original = Vec::new();
    for i in 0..10 {
        original.push(put(store, &format!("/l/{i:02}"), &format!("v{i}")).await);
    }
    put(store, "/l0", "outside").await;
    let first = store
        .list(ListRequest {
            prefix: b("/l/"),
            limit: 3,
            ..ListRequest::default()
        })
        .await
        .unwrap();
    assert!(first.more);
    assert_eq!(first.kvs, original[..3]);

    // Change the rest of the range before reading on.
    store.delete(b("/l/05"), None).await.unwrap();
    let seven = &original[7];
    store
        .update(seven.key.clone(), b("changed"), seven.mod_revision, none())
        .await
        .unwrap();
    put(store, "/l/99", "new").await;
    put(store, "/l/035", "new").await;

    let mut seen = first.kvs.clone();
    let mut after = first.kvs.last().unwrap().key.clone();
    loop {
        let page = store
            .list(ListRequest {
                prefix: b("/l/"),
                start_after: Some(after.clone()),
                limit: 3,
                revision: Some(first.revision),
            })
            .await
            .unwrap();
        assert_eq!(page.revision, first.revision);
        assert!(page.kvs.len() <= 3);
        seen.extend(page.kvs.iter().cloned());
        if !page.more {
            break;
        }
        after = page.kvs.last().unwrap().key.clone();
    }
    assert_eq!(seen, original);

    let now: Vec<String> = list_all(store, "/l/", None)
        .await
        .iter()
        .map(|kv| format!("{}={}", text(&kv.key), text(&kv.value)))
        .collect();
    assert_eq!(
        now,
        [
            "/l/00=v0",
            "/l/01=v1",
            "/l/02=v2",
            "/l/03=v3",
            "/l/035=new",
            "/l/04=v4",
            "/l/06=v6",
            "/l/07=changed",
            "/l/08=v8",
            "/l/09=v9",
            "/l/99=new"
        ]
    );
}

/// Gets and lists at a past revision see the state of that revision.
pub async fn reads_at_past_revisions(store: &dyn Store) {
    let one = put(store, "/r/a", "one").await;
    let other = put(store, "/r/b", "other").await;
    let two = store
        .update(b("/r/a"), b("two"), one.mod_revision, none())
        .await
        .unwrap();
    let deleted = store.delete(b("/r/a"), None).await.unwrap();
    put(store, "/r/c", "later").await;

    let at = |revision| async move { store.get(b"/r/a", Some(revision)).await.unwrap() };
    assert_eq!(at(one.mod_revision).await.kv, Some(one.clone()));
    assert_eq!(at(other.mod_revision).await.kv, Some(one.clone()));
    assert_eq!(at(two.mod_revision).await.kv, Some(two.clone()));
    assert_eq!(at(deleted.revision).await.kv, None);
    assert_eq!(at(one.mod_revision).await.revision, one.mod_revision);
    assert_eq!(
        list_all(store, "/r/", Some(other.mod_revision)).await,
        [one.clone(), other.clone()]
    );
    assert_eq!(
        list_all(store, "/r/", Some(two.mod_revision)).await,
        [two, other.clone()]
    );
    assert_eq!(
        list_all(store, "/r/", Some(deleted.revision)).await,
        [other]
    );
}

/// After a compaction, reads and watches before it fail with `Compacted`; from it on they work.
pub async fn compaction_bounds_the_history(store: &dyn Store) {
    let a = put(store, "/c/a", "1").await;
    let a2 = store
        .update(b("/c/a"), b("2"), a.mod_revision, none())
        .await
        .unwrap();
    let b_ = put(store, "/c/b", "1").await;
    let a3 = store
        .update(b("/c/a"), b("3"), a2.mod_revision, none())
        .await
        .unwrap();
    let current = a3.mod_revision;

    store.compact(b_.mod_revision).await.unwrap();
    store.compact(b_.mod_revision).await.unwrap(); // Again: nothing to do, no error.
    store.compact(a.mod_revision).await.unwrap(); // Older: nothing to do, no error.

    let too_old = store.get(b"/c/a", Some(a2.mod_revision)).await.unwrap_err();
    assert!(
        matches!(too_old, StorageError::Compacted { requested, .. } if requested == a2.mod_revision),
        "{too_old:?}"
    );
    let old_list = store
        .list(ListRequest {
            prefix: b("/c/"),
            revision: Some(a2.mod_revision),
            ..ListRequest::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(old_list, StorageError::Compacted { .. }),
        "{old_list:?}"
    );
    assert_eq!(
        list_all(store, "/c/", Some(b_.mod_revision)).await,
        [a2.clone(), b_.clone()]
    );
    assert_eq!(list_all(store, "/c/", None).await, [a3.clone(), b_.clone()]);

    let future = store.compact(current + 100).await.unwrap_err();
    assert!(
        matches!(future, StorageError::FutureRevision { .. }),
        "{future:?}"
    );
    let future = store.get(b"/c/a", Some(current + 100)).await.unwrap_err();
    assert!(
        matches!(future, StorageError::FutureRevision { .. }),
        "{future:?}"
    );

    let mut old_watch = store.watch(b("/c/"), b_.mod_revision - 1).await.unwrap();
    let first = next_item(&mut old_watch).await;
    assert!(
        matches!(first, Some(Err(StorageError::Compacted { .. }))),
        "a watch from before the compaction must fail with Compacted, got {first:?}"
    );
    let mut watch = store.watch(b("/c/"), b_.mod_revision).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(describe(&[event]), ["put /c/a=3 prev=2"]);
}

/// A watch from an old revision replays every change since, with previous values.
pub async fn watch_replays_history_with_previous_values(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let a = put(store, "/w/a", "1").await;
    store
        .update(b("/w/a"), b("2"), a.mod_revision, none())
        .await
        .unwrap();
    put(store, "/w/b", "1").await;
    store.delete(b("/w/a"), None).await.unwrap();
    let mut watch = store.watch(b("/w/"), start).await.unwrap();
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(next_event(&mut watch).await);
    }
    assert_eq!(
        describe(&events),
        [
            "put /w/a=1 prev=-",
            "put /w/a=2 prev=1",
            "put /w/b=1 prev=-",
            "del /w/a prev=2"
        ]
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
    assert_eq!(events[0].revision(), a.mod_revision);
    // And live after the replay.
    put(store, "/w/c", "1").await;
    assert_eq!(
        describe(&[next_event(&mut watch).await]),
        ["put /w/c=1 prev=-"]
    );
}

/// Concurrent writers' changes reach a watcher once each, in revision order.
pub async fn watch_delivers_concurrent_writes_in_order(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(b("/o/"), start).await.unwrap();
    let mut acked = Vec::new();
    {
        let writes = (0..4).map(|w| async move {
            let mut revs = Vec::new();
            for i in 0..50 {
                revs.push(put(store, &format!("/o/{w}/{i}"), "x").await.mod_revision);
            }
            revs
        });
        for revs in futures::future::join_all(writes).await {
            acked.extend(revs);
        }
    }
    acked.sort_unstable();
    let mut seen = Vec::new();
    for _ in 0..acked.len() {
        seen.push(next_event(&mut watch).await.revision());
    }
    assert_eq!(seen, acked);
}

/// A watcher sees the keys under its prefix and nothing else.
pub async fn watch_sees_only_its_prefix(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(b("/w/a/"), start).await.unwrap();
    put(store, "/w/b/x", "1").await;
    put(store, "/w/a0", "1").await;
    put(store, "/w/a", "1").await;
    put(store, "/w/a/1", "1").await;
    assert_eq!(
        describe(&[next_event(&mut watch).await]),
        ["put /w/a/1=1 prev=-"]
    );
}

/// A watch from a revision not yet reached delivers only what comes after it.
pub async fn watch_from_a_future_revision_waits_for_it(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(b("/f/"), start + 3).await.unwrap();
    let mut last = None;
    for i in 0..4 {
        last = Some(put(store, &format!("/f/{i}"), "x").await);
    }
    let event = next_event(&mut watch).await;
    assert_eq!(event.revision(), last.unwrap().mod_revision);
}

/// Hundreds of watchers on nested and disjoint prefixes each get exactly their keys' changes.
pub async fn many_watchers_on_overlapping_prefixes(store: &dyn Store) {
    let prefixes = ["/m/", "/m/a/", "/m/a/b/", "/m/c/", "/m/a/b/c/", "/n/"];
    let keys = [
        "/m/x",
        "/m/a/x",
        "/m/a/b/x",
        "/m/a/b/c/x",
        "/m/c/x",
        "/m/cx",
        "/n/x",
    ];
    let start = store.current_revision().await.unwrap();
    let mut watches = Vec::new();
    for i in 0..300 {
        let prefix = prefixes[i % prefixes.len()];
        watches.push((prefix, store.watch(b(prefix), start).await.unwrap()));
    }
    for round in 0..5 {
        for key in keys {
            put(store, &format!("{key}{round}"), "v").await;
        }
    }
    for (prefix, watch) in &mut watches {
        let expected: Vec<String> = (0..5)
            .flat_map(|round| keys.iter().map(move |k| format!("{k}{round}")))
            .filter(|k| k.starts_with(*prefix))
            .collect();
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            got.push(text(next_event(watch).await.key()));
        }
        assert_eq!(got, expected, "watcher of {prefix}");
    }
}

/// A watcher that reads nothing while many changes happen either gets them all, in order, or
/// gets an unbroken run of them and then `WatcherTooSlow`: never a gap.
pub async fn an_unread_watcher_never_skips_silently(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(b("/s/"), start).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..2000 {
        acked.push(put(store, &format!("/s/{i:05}"), "x").await.mod_revision);
    }
    for (i, expected) in acked.iter().enumerate() {
        match next_item(&mut watch).await {
            Some(Ok(WatchItem::Event(event))) => assert_eq!(event.revision(), *expected),
            Some(Ok(WatchItem::Progress(_))) => {}
            Some(Err(StorageError::WatcherTooSlow { last_delivered })) => {
                let before = if i == 0 { start } else { acked[i - 1] };
                assert_eq!(last_delivered, before);
                return;
            }
            other => panic!("event {i}: expected {expected}, got {other:?}"),
        }
    }
}

/// A progress request is answered with a revision covering every change delivered.
pub async fn progress_reports_the_revision_reached(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(b("/g/"), start).await.unwrap();
    let kv = put(store, "/g/a", "1").await;
    put(store, "/elsewhere", "1").await;
    assert_eq!(next_event(&mut watch).await.revision(), kv.mod_revision);
    watch.request_progress();
    match next_item(&mut watch).await {
        Some(Ok(WatchItem::Progress(revision))) => {
            assert!(
                revision >= kv.mod_revision,
                "{revision} < {}",
                kv.mod_revision
            );
        }
        other => panic!("expected progress, got {other:?}"),
    }
}

/// A key with a TTL is deleted when it runs out, with a delete event; a write without a TTL
/// makes a key permanent.
pub async fn keys_with_a_ttl_expire_with_an_event(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(b("/ttl/"), start).await.unwrap();
    let ttl = WriteOptions::ttl(Duration::from_secs(1));
    store.create(b("/ttl/a"), b("1"), ttl).await.unwrap();
    let kept = store.create(b("/ttl/b"), b("1"), ttl).await.unwrap();
    store
        .update(b("/ttl/b"), b("2"), kept.mod_revision, none())
        .await
        .unwrap();
    for _ in 0..3 {
        next_event(&mut watch).await;
    }
    let expired = next_event(&mut watch).await;
    assert_eq!(describe(&[expired]), ["del /ttl/a prev=1"]);
    assert_eq!(store.get(b"/ttl/a", None).await.unwrap().kv, None);
    // A later key expires too; by then /ttl/b would have, had it kept its TTL.
    store.create(b("/ttl/c"), b("1"), ttl).await.unwrap();
    next_event(&mut watch).await;
    assert_eq!(
        describe(&[next_event(&mut watch).await]),
        ["del /ttl/c prev=1"]
    );
    assert_eq!(
        store
            .get(b"/ttl/b", None)
            .await
            .unwrap()
            .kv
            .map(|kv| kv.value),
        Some(b("2"))
    );
}

/// Keys and values over the limits, and empty keys, are refused; nothing is written.
pub async fn oversized_and_empty_keys_are_refused(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let big_key = Bytes::from(vec![b'k'; MAX_KEY_BYTES + 1]);
    let err = store
        .create(big_key.clone(), b("v"), none())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::TooLarge {
            what: "key",
            size: MAX_KEY_BYTES + 1,
            limit: MAX_KEY_BYTES
        }
    );
    let big_value = Bytes::from(vec![7u8; MAX_VALUE_BYTES + 1]);
    let err = store
        .create(b("/big"), big_value, none())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::TooLarge {
            what: "value",
            size: MAX_VALUE_BYTES + 1,
            limit: MAX_VALUE_BYTES
        }
    );
    assert_eq!(
        store
            .create(Bytes::new(), b("v"), none())
            .await
            .unwrap_err(),
        StorageError::EmptyKey
    );
    assert_eq!(
        store.get(b"", None).await.unwrap_err(),
        StorageError::EmptyKey
    );
    assert!(store.get(&big_key, None).await.is_err());
    assert_eq!(store.current_revision().await.unwrap(), start);
    assert_eq!(list_all(store, "", None).await, []);

    // The largest key and value are accepted, on create and on update.
    let key = Bytes::from(vec![b'k'; MAX_KEY_BYTES]);
    let value = Bytes::from(
        (0..MAX_VALUE_BYTES)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let kv = store
        .create(key.clone(), value.clone(), none())
        .await
        .unwrap();
    let kv = store
        .update(key.clone(), value.clone(), kv.mod_revision, none())
        .await
        .unwrap();
    assert_eq!(store.get(&key, None).await.unwrap().kv, Some(kv.clone()));
    let err = store
        .update(
            key.clone(),
            Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]),
            kv.mod_revision,
            none(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { what: "value", .. }));
    assert_eq!(store.get(&key, None).await.unwrap().kv, Some(kv));
}

/// Concurrent read-modify-write loops over one key, retrying on conflict, lose no increment.
pub async fn concurrent_compare_and_swap_loses_no_update(store: &dyn Store) {
    put(store, "/cas", "0").await;
    let workers = (0..8).map(|_| async move {
        for _ in 0..25 {
            loop {
                let kv = store.get(b"/cas", None).await.unwrap().kv.unwrap();
                let n: u64 = text(&kv.value).parse().unwrap();
                match store
                    .update(b("/cas"), b(&(n + 1).to_string()), kv.mod_revision, none())
                    .await
                {
                    Ok(_) => break,
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    });
    futures::future::join_all(workers).await;
    let kv = store.get(b"/cas", None).await.unwrap().kv.unwrap();
    assert_eq!(kv.value, b("200"));
    assert_eq!(kv.version, 201);
}

/// Keys and values of arbitrary bytes come back as written.
pub async fn values_are_arbitrary_bytes(store: &dyn Store) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut written = BTreeMap::new();
    for _ in 0..100 {
        let key_len = rng.random_range(1..64);
        let mut key: Vec<u8> = (0..key_len).map(|_| rng.random()).collect();
        key.insert(0, 0x80);
        let value_len = rng.random_range(0..4096);
        let value: Vec<u8> = (0..value_len).map(|_| rng.random()).collect();
        if written.contains_key(&key) {
            continue;
        }
        store
            .create(Bytes::from(key.clone()), Bytes::from(value.clone()), none())
            .await
            .unwrap();
        written.insert(key, value);
    }
    let listed: BTreeMap<Vec<u8>, Vec<u8>> = store
        .list(ListRequest {
            prefix: Bytes::from_static(&[0x80]),
            ..ListRequest::default()
        })
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key.to_vec(), kv.value.to_vec()))
        .collect();
    assert_eq!(listed, written);
}
