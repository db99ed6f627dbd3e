//! The conformance suite: the telemetry store contract as executable cases, run by every
//! backend. A backend's test file calls [`conformance_tests!`](crate::conformance_tests) with an
//! async function returning a fresh, empty [`Subject`]; the macro makes one test per case.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{
    Id, Kind, MAX_RECORD_BYTES, NewRecord, Range, Retention, StreamKey, TelemetryError,
    TelemetryStore,
};

/// A store under test, with whatever must live as long as it (a server, a directory).
pub struct Subject {
    /// The store.
    pub store: Arc<dyn TelemetryStore>,
    /// Dropped after the store.
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Makes one test per case of the suite, each on a fresh store from `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            appends_get_increasing_ids_from_the_devices_time,
            reads_select_ranges_from_the_start_or_the_tail,
            streams_are_separate_by_device_and_kind,
            wait_returns_when_a_record_arrives_or_at_the_deadline,
            retention_drops_by_age_and_by_bytes,
            ids_never_go_back_after_retention_empties_a_stream,
            forgetting_a_device_drops_its_streams,
            oversized_records_are_refused_whole,
            concurrent_appends_lose_nothing,
            bodies_are_kept_byte_for_byte
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

fn record(millis: u64, body: &str) -> NewRecord {
    NewRecord {
        millis,
        body: Bytes::from(format!("{{\"m\":{body:?}}}")),
    }
}

fn body(text: &str) -> Bytes {
    Bytes::from(format!("{{\"m\":{text:?}}}"))
}

fn log(device: &str) -> StreamKey {
    StreamKey::new(device, Kind::Log)
}

async fn all(store: &dyn TelemetryStore, stream: &StreamKey) -> Vec<(Id, Bytes)> {
    store
        .read(stream, &Range::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.body))
        .collect()
}

/// Ids are the device's milliseconds; a time at or before the last id goes just after it.
pub async fn appends_get_increasing_ids_from_the_devices_time(store: &dyn TelemetryStore) {
    let s = log("d1");
    let ids = store
        .append(
            &s,
            vec![record(100, "a"), record(100, "b"), record(200, "c")],
        )
        .await
        .unwrap();
    assert_eq!(
        ids,
        [
            Id::at(100),
            Id {
                millis: 100,
                seq: 1
            },
            Id::at(200)
        ]
    );
    let ids = store
        .append(&s, vec![record(50, "clock stepped back"), record(300, "d")])
        .await
        .unwrap();
    assert_eq!(
        ids,
        [
            Id {
                millis: 200,
                seq: 1
            },
            Id::at(300)
        ]
    );
    let kept = all(store, &s).await;
    assert_eq!(kept.len(), 5);
    assert_eq!(
        kept[3],
        (
            Id {
                millis: 200,
                seq: 1
            },
            body("clock stepped back")
        )
    );
    assert!(kept.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    assert_eq!(store.first(&s).await.unwrap(), Some(Id::at(100)));
    assert_eq!(
        store.append(&s, Vec::new()).await.unwrap(),
        Vec::<Id>::new()
    );
}

/// `after`, `until`, `limit` and `tail` select what they say.
pub async fn reads_select_ranges_from_the_start_or_the_tail(store: &dyn TelemetryStore) {
    let s = log("d1");
    let records = (1..=10).map(|i| record(i * 10, &i.to_string())).collect();
    store.append(&s, records).await.unwrap();
    let read = |range: Range| async move {
        store
            .read(&log("d1"), &range)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id.millis)
            .collect::<Vec<_>>()
    };
    assert_eq!(read(Range::default()).await.len(), 10);
    let after = |millis| Some(Id { millis, seq: 0 });
    assert_eq!(
        read(Range {
            after: after(30),
            until: after(60),
            ..Range::default()
        })
        .await,
        [40, 50, 60]
    );
    assert_eq!(
        read(Range {
            limit: 3,
            ..Range::default()
        })
        .await,
        [10, 20, 30]
    );
    assert_eq!(
        read(Range {
            limit: 3,
            tail: true,
            ..Range::default()
        })
        .await,
        [80, 90, 100]
    );
    assert_eq!(
        read(Range {
            until: after(50),
            limit: 2,
            tail: true,
            ..Range::default()
        })
        .await,
        [40, 50]
    );
    assert_eq!(
        read(Range {
            after: after(100),
            ..Range::default()
        })
        .await,
        Vec::<u64>::new()
    );
    assert!(
        store
            .read(&log("nobody"), &Range::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.first(&log("nobody")).await.unwrap(), None);
}

/// Nothing a device appends shows in another device's streams or another kind's.
pub async fn streams_are_separate_by_device_and_kind(store: &dyn TelemetryStore) {
    store
        .append(&log("d1"), vec![record(1, "d1 log")])
        .await
        .unwrap();
    store
        .append(
            &StreamKey::new("d1", Kind::Metrics),
            vec![record(1, "d1 metrics")],
        )
        .await
        .unwrap();
    store
        .append(&log("d2"), vec![record(1, "d2 log")])
        .await
        .unwrap();
    store
        .append(&log("d10"), vec![record(1, "d10 log")])
        .await
        .unwrap();
    assert_eq!(all(store, &log("d1")).await, [(Id::at(1), body("d1 log"))]);
    assert_eq!(
        all(store, &StreamKey::new("d1", Kind::Metrics)).await,
        [(Id::at(1), body("d1 metrics"))]
    );
    assert_eq!(all(store, &log("d2")).await, [(Id::at(1), body("d2 log"))]);
    assert!(
        all(store, &StreamKey::new("d1", Kind::Info))
            .await
            .is_empty()
    );
}

/// `wait` wakes for a record after the id, and only then; otherwise at its deadline.
pub async fn wait_returns_when_a_record_arrives_or_at_the_deadline(store: &dyn TelemetryStore) {
    let s = log("d1");
    store.append(&s, vec![record(10, "old")]).await.unwrap();
    assert!(
        store
            .wait(&s, Id::at(5), Duration::from_secs(5))
            .await
            .unwrap(),
        "already there"
    );
    let started = std::time::Instant::now();
    assert!(
        !store
            .wait(&s, Id::at(10), Duration::from_millis(200))
            .await
            .unwrap()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited for the deadline"
    );
    let waiting = store.wait(&s, Id::at(10), Duration::from_secs(20));
    let appending = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store
            .append(&log("d2"), vec![record(20, "elsewhere")])
            .await
            .unwrap();
        store.append(&s, vec![record(20, "new")]).await.unwrap();
    };
    let (woke, ()) = tokio::join!(waiting, appending);
    assert!(woke.unwrap());
}

/// Records older than the age go; a stream over its bytes loses its oldest.
pub async fn retention_drops_by_age_and_by_bytes(store: &dyn TelemetryStore) {
    let old = log("old");
    let big = log("big");
    store
        .append(
            &old,
            vec![record(1_000, "a"), record(5_000, "b"), record(9_000, "c")],
        )
        .await
        .unwrap();
    let records = (0..10).map(|i| record(10_000 + i, "0123456789")).collect();
    store.append(&big, records).await.unwrap();
    let one = body("0123456789").len() as u64;
    let retention = Retention {
        max_age: Duration::from_secs(6),
        max_bytes: 4 * one,
    };
    let removed = store.trim(&retention, 11_000).await.unwrap();
    assert_eq!(removed, 1 + 6, "a by age, six of big by bytes");
    assert_eq!(store.first(&old).await.unwrap(), Some(Id::at(5_000)));
    let kept: Vec<u64> = all(store, &big).await.iter().map(|r| r.0.millis).collect();
    assert_eq!(kept, [10_006, 10_007, 10_008, 10_009]);
    assert_eq!(
        store.trim(&retention, 11_000).await.unwrap(),
        0,
        "nothing more"
    );
}

/// A stream that retention emptied goes on after the last id it gave.
pub async fn ids_never_go_back_after_retention_empties_a_stream(store: &dyn TelemetryStore) {
    let s = log("d1");
    store.append(&s, vec![record(5_000, "a")]).await.unwrap();
    let retention = Retention {
        max_age: Duration::from_secs(1),
        max_bytes: u64::MAX,
    };
    assert_eq!(store.trim(&retention, 100_000).await.unwrap(), 1);
    assert_eq!(store.first(&s).await.unwrap(), None);
    let ids = store.append(&s, vec![record(10, "late")]).await.unwrap();
    assert!(ids[0] > Id::at(5_000), "{:?}", ids[0]);
}

/// `forget` drops every stream of the device and nothing else.
pub async fn forgetting_a_device_drops_its_streams(store: &dyn TelemetryStore) {
    for kind in Kind::ALL {
        store
            .append(&StreamKey::new("gone", kind), vec![record(1, "x")])
            .await
            .unwrap();
    }
    store
        .append(&log("kept"), vec![record(1, "y")])
        .await
        .unwrap();
    store.forget("gone").await.unwrap();
    for kind in Kind::ALL {
        assert!(
            all(store, &StreamKey::new("gone", kind)).await.is_empty(),
            "{kind}"
        );
    }
    assert_eq!(all(store, &log("kept")).await.len(), 1);
}

/// A batch with a record over the limit is refused and nothing of it is kept.
pub async fn oversized_records_are_refused_whole(store: &dyn TelemetryStore) {
    let s = log("d1");
    let huge = NewRecord {
        millis: 2,
        body: Bytes::from(vec![b'x'; MAX_RECORD_BYTES + 1]),
    };
    let refused = store.append(&s, vec![record(1, "fine"), huge]).await;
    assert!(matches!(refused, Err(TelemetryError::TooLarge(n)) if n == MAX_RECORD_BYTES + 1));
    assert!(all(store, &s).await.is_empty());
    let limit = NewRecord {
        millis: 3,
        body: Bytes::from(vec![b'x'; MAX_RECORD_BYTES]),
    };
    store.append(&s, vec![limit]).await.unwrap();
}

/// Appends from many tasks to one stream and to many: every record kept once, ids distinct.
pub async fn concurrent_appends_lose_nothing(store: &dyn TelemetryStore) {
    let mut tasks = Vec::new();
    for writer in 0..8u64 {
        tasks.push(async move {
            for i in 0..25u64 {
                let shared = log("shared");
                store
                    .append(&shared, vec![record(1_000, &format!("{writer}-{i}"))])
                    .await
                    .unwrap();
                let own = log(&format!("own-{writer}"));
                store.append(&own, vec![record(i, "x")]).await.unwrap();
            }
        });
    }
    futures::future::join_all(tasks).await;
    let shared = all(store, &log("shared")).await;
    assert_eq!(shared.len(), 200);
    let mut ids: Vec<Id> = shared.iter().map(|r| r.0).collect();
    ids.dedup();
    assert_eq!(ids.len(), 200, "distinct ids");
    for writer in 0..8 {
        assert_eq!(all(store, &log(&format!("own-{writer}"))).await.len(), 25);
    }
}

/// Bodies come back exactly as appended, whatever bytes they hold.
pub async fn bodies_are_kept_byte_for_byte(store: &dyn TelemetryStore) {
    let s = StreamKey::new("d1", Kind::Certs);
    let bodies: Vec<Bytes> = vec![
        Bytes::from_static(b"{}"),
        Bytes::from((0..=255u8).collect::<Vec<u8>>()),
        Bytes::from("{\"content\":\"\\u00e9 \\n multi\\nline\"}"),
    ];
    let records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| NewRecord {
            millis: i as u64,
            body: b.clone(),
        })
        .collect();
    store.append(&s, records).await.unwrap();
    let kept: Vec<Bytes> = all(store, &s).await.into_iter().map(|r| r.1).collect();
    assert_eq!(kept, bodies);
}
