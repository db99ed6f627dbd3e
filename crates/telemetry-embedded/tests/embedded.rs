//! What the embedded telemetry store promises beyond the conformance suite: history survives
//! reopening, ids go on after the last, the file is private, appends are group-committed with a
//! bounded queue, and retention bounds the file and opens only the streams it drops from.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use telemetry::{Id, Kind, NewRecord, Range, Retention, StreamKey, TelemetryStore};
use telemetry_embedded::{EmbeddedTelemetry, Options};

fn record(millis: u64, text: &str) -> NewRecord {
    NewRecord {
        millis,
        body: Bytes::from(format!("{{\"msg\":{text:?}}}")),
    }
}

/// Bodies that deflate poorly, so the file holds about what was appended.
fn noise(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_reopening_and_ids_go_on_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.redb");
    let log = StreamKey::new("d1", Kind::Log);
    let info = StreamKey::new("d1", Kind::Info);
    {
        let store = EmbeddedTelemetry::open(&path, Options::default()).unwrap();
        let long = "a log line that is long enough to be deflated on disk ".repeat(12);
        store
            .append(
                &log,
                vec![record(100, "a"), record(100, &long), record(300, "c")],
            )
            .await
            .unwrap();
        store.append(&info, vec![record(5_000, "i")]).await.unwrap();
        let retention = Retention {
            max_age: Duration::from_secs(1),
            max_bytes: u64::MAX,
        };
        assert_eq!(store.trim(&retention, 100_000).await.unwrap(), 4);
        store
            .append(&log, vec![record(200_000, "d")])
            .await
            .unwrap();
        store.close();
    }
    let store = EmbeddedTelemetry::open(&path, Options::default()).unwrap();
    let kept = store.read(&log, &Range::default()).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, Id::at(200_000));
    assert_eq!(
        store.first(&info).await.unwrap(),
        None,
        "emptied by retention"
    );
    let ids = store.append(&info, vec![record(10, "late")]).await.unwrap();
    assert_eq!(
        ids,
        [Id {
            millis: 5_000,
            seq: 1
        }],
        "after the last id given before the restart"
    );
    let ids = store
        .append(&log, vec![record(200_000, "e")])
        .await
        .unwrap();
    assert_eq!(
        ids,
        [Id {
            millis: 200_000,
            seq: 1
        }]
    );
    assert!(
        store
            .wait(&log, Id::at(200_000), Duration::from_secs(5))
            .await
            .unwrap()
    );
}

#[cfg(unix)]
#[test]
fn the_file_is_created_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.redb");
    EmbeddedTelemetry::open(&path, Options::default())
        .unwrap()
        .close();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_of_many_devices_share_commits_and_a_full_queue_makes_callers_wait() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        queue: 8,
        ..Options::default()
    };
    let store = Arc::new(EmbeddedTelemetry::open(dir.path().join("t.redb"), options).unwrap());
    const DEVICES: usize = 200;
    const ROUNDS: u64 = 3;
    let tasks: Vec<_> = (0..DEVICES)
        .map(|d| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = StreamKey::new(format!("device-{d}"), Kind::Metrics);
                for i in 0..ROUNDS {
                    store.append(&s, vec![record(i, "m")]).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let appends = DEVICES as u64 * ROUNDS;
    let commits = store.commits();
    assert!(
        commits < appends / 2,
        "{commits} commits for {appends} appends"
    );
    for d in 0..DEVICES {
        let s = StreamKey::new(format!("device-{d}"), Kind::Metrics);
        assert_eq!(store.read(&s, &Range::default()).await.unwrap().len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_bounds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.redb");
    let store = EmbeddedTelemetry::open(&path, Options::default()).unwrap();
    const STREAMS: u64 = 20;
    const BODY: usize = 2_000;
    let retention = Retention {
        max_age: Duration::from_secs(3600),
        max_bytes: 20 * BODY as u64,
    };
    let mut sizes = Vec::new();
    let mut millis = 0;
    for cycle in 0..8u64 {
        // About 2 MB a cycle, ten times what retention keeps.
        for s in 0..STREAMS {
            let stream = StreamKey::new(format!("device-{s}"), Kind::AppLog);
            let records = (0..50)
                .map(|i| {
                    millis += 1;
                    NewRecord {
                        millis,
                        body: noise(cycle * 10_000 + s * 100 + i, BODY),
                    }
                })
                .collect();
            store.append(&stream, records).await.unwrap();
        }
        let removed = store.trim(&retention, millis).await.unwrap();
        assert_eq!(removed, STREAMS * if cycle == 0 { 30 } else { 50 });
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    for s in 0..STREAMS {
        let stream = StreamKey::new(format!("device-{s}"), Kind::AppLog);
        assert_eq!(
            store.read(&stream, &Range::default()).await.unwrap().len(),
            20
        );
    }
    // What is kept is 800 KB; 16 MB went through. Freed pages are reused, so the file stops
    // growing after the first cycles.
    let settled = sizes[2];
    assert!(
        sizes[7] <= settled + settled / 2,
        "the file grows with what was trimmed: {sizes:?}"
    );
    assert!(sizes[7] < 8 << 20, "{sizes:?}");
}

/// At 100,000 devices a retention pass that opened every stream's records took most of a second
/// of CPU each minute; it now reads the streams' entries and opens only those with something to
/// drop, including after the file is reopened, and a file from before the `oldest` table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_pass_opens_only_the_streams_with_something_to_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.redb");
    let stream = |d: u64| StreamKey::new(format!("device-{d:03}"), Kind::Metrics);
    let retention = Retention {
        max_age: Duration::from_millis(50),
        max_bytes: 1_000,
    };
    // At millis 100: what is older than 50 goes.
    const NOW: u64 = 100;
    {
        let store = EmbeddedTelemetry::open(&path, Options::default()).unwrap();
        for d in 0..100 {
            // Devices 0 to 9 posted long ago; the others lately.
            let base = if d < 10 { 1 } else { 60 };
            let records = (0..3).map(|i| record(base + i, "up")).collect();
            store.append(&stream(d), records).await.unwrap();
        }
        assert_eq!(store.trim(&retention, NOW).await.unwrap(), 30);
        assert_eq!(store.streams_opened_by_retention(), 10);
        assert_eq!(store.trim(&retention, NOW).await.unwrap(), 0);
        assert_eq!(
            store.streams_opened_by_retention(),
            10,
            "nothing to drop, nothing opened"
        );
        // Over the byte budget: that stream alone is opened.
        let big = NewRecord {
            millis: 70,
            body: noise(7, 1_200),
        };
        store.append(&stream(50), vec![big]).await.unwrap();
        assert_eq!(store.trim(&retention, NOW).await.unwrap(), 4);
        assert_eq!(store.streams_opened_by_retention(), 11);
        // An emptied stream that gets a record again is known again.
        store
            .append(&stream(0), vec![record(90, "back")])
            .await
            .unwrap();
        assert_eq!(store.trim(&retention, NOW).await.unwrap(), 0);
        assert_eq!(store.streams_opened_by_retention(), 11);
        store.close();
    }
    {
        let store = EmbeddedTelemetry::open(&path, Options::default()).unwrap();
        assert_eq!(store.trim(&retention, NOW).await.unwrap(), 0);
        assert_eq!(
            store.streams_opened_by_retention(),
            0,
            "kept across reopening"
        );
        // Later, the devices that posted at 60 to 62 have two records to drop.
        assert_eq!(store.trim(&retention, 112).await.unwrap(), 89 * 2);
        assert_eq!(store.streams_opened_by_retention(), 89);
        store.close();
    }
    // A file from before the `oldest` table: each stream is opened once, then known.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let oldest: redb::TableDefinition<(&str, u8), u64> = redb::TableDefinition::new("oldest");
        assert!(txn.delete_table(oldest).unwrap());
        txn.commit().unwrap();
    }
    let store = EmbeddedTelemetry::open(&path, Options::default()).unwrap();
    let reading = store.read(&stream(0), &Range::default()).await.unwrap();
    assert_eq!(reading.len(), 1, "records are untouched");
    assert_eq!(store.trim(&retention, 112).await.unwrap(), 0);
    assert_eq!(
        store.streams_opened_by_retention(),
        90,
        "each non-empty stream, once"
    );
    assert_eq!(store.trim(&retention, 112).await.unwrap(), 0);
    assert_eq!(store.streams_opened_by_retention(), 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_alone_are_synced_by_the_next_commit_or_after_a_while_everything_else_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.redb");
    let options = Options {
        metrics_sync: Duration::from_secs(3600),
        ..Options::default()
    };
    let store = EmbeddedTelemetry::open(&path, options.clone()).unwrap();
    let metrics = StreamKey::new("d1", Kind::Metrics);
    let log = StreamKey::new("d1", Kind::Log);
    let before = store.synced_commits();
    for i in 0..20 {
        store.append(&metrics, vec![record(i, "m")]).await.unwrap();
    }
    // Twenty appends one after another, none synced; all readable at once.
    assert_eq!(store.synced_commits(), before);
    assert_eq!(
        store.read(&metrics, &Range::default()).await.unwrap().len(),
        20
    );
    // A log is durable on return, and makes the metrics before it durable too.
    store.append(&log, vec![record(1, "l")]).await.unwrap();
    assert_eq!(store.synced_commits(), before + 1);
    for i in 20..25 {
        store.append(&metrics, vec![record(i, "m")]).await.unwrap();
    }
    assert_eq!(store.synced_commits(), before + 1);
    // Closing syncs what is left.
    store.close();
    let store = EmbeddedTelemetry::open(&path, options).unwrap();
    assert_eq!(
        store.read(&metrics, &Range::default()).await.unwrap().len(),
        25
    );
    store.close();

    // With a short wait, metrics left alone are synced without anything else coming.
    let store = EmbeddedTelemetry::open(
        dir.path().join("short.redb"),
        Options {
            metrics_sync: Duration::from_millis(50),
            ..Options::default()
        },
    )
    .unwrap();
    let before = store.synced_commits();
    store.append(&metrics, vec![record(1, "m")]).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.synced_commits() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "metrics appended alone were never synced"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And with no wait allowed, every append is synced.
    let store = EmbeddedTelemetry::open(
        dir.path().join("zero.redb"),
        Options {
            metrics_sync: Duration::ZERO,
            ..Options::default()
        },
    )
    .unwrap();
    let before = store.synced_commits();
    for i in 0..3 {
        store.append(&metrics, vec![record(i, "m")]).await.unwrap();
    }
    assert_eq!(store.synced_commits(), before + 3);
}
