//! What the Redis telemetry store promises beyond the conformance suite, against a private
//! `redis-server`: acknowledged appends survive Redis being killed, replicas sharing a Redis
//! never collide, followers block on connections of their own, and the stored layout is the
//! documented one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use telemetry::{Id, Kind, NewRecord, Range, StreamKey, TelemetryStore};
use telemetry_redis::RedisTelemetry;
use telemetry_redis::server::RedisServer;

fn record(millis: u64, text: &str) -> NewRecord {
    NewRecord {
        millis,
        body: Bytes::from(format!("{{\"msg\":{text:?}}}")),
    }
}

/// A stream entry as Redis gives it: its id and its fields.
type Entry = (String, Vec<(String, Vec<u8>)>);

async fn server() -> RedisServer {
    RedisServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start a private Redis: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_redis_being_killed_and_ids_go_on() {
    let mut server = server().await;
    let s = StreamKey::new("d1", Kind::Log);
    let mut acked = Vec::new();
    {
        let store = RedisTelemetry::connect(&server.url()).await.unwrap();
        for i in 0..50 {
            let ids = store
                .append(&s, vec![record(1_000 + i / 3, &format!("r{i}"))])
                .await
                .unwrap();
            acked.extend(ids);
        }
    }
    server.kill_and_restart().await.unwrap();
    let store = RedisTelemetry::connect(&server.url()).await.unwrap();
    let kept: Vec<Id> = store
        .read(&s, &Range::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, acked);
    let ids = store.append(&s, vec![record(1, "late")]).await.unwrap();
    assert!(ids[0] > *acked.last().unwrap(), "{}", ids[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_appending_to_one_stream_never_collide() {
    let server = server().await;
    let s = StreamKey::new("shared", Kind::Metrics);
    let mut tasks = Vec::new();
    for replica in 0..4 {
        let store = Arc::new(RedisTelemetry::connect(&server.url()).await.unwrap());
        for task in 0..4 {
            let (store, s) = (store.clone(), s.clone());
            tasks.push(tokio::spawn(async move {
                let mut last = None;
                for i in 0..25 {
                    let text = format!("{replica}-{task}-{i}");
                    let ids = store
                        .append(&s, vec![record(5_000, &text), record(4_000, &text)])
                        .await
                        .unwrap();
                    assert!(ids[0] < ids[1]);
                    assert!(last.is_none_or(|last| ids[0] > last), "went back");
                    last = Some(ids[1]);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let store = RedisTelemetry::connect(&server.url()).await.unwrap();
    let ids: Vec<Id> = store
        .read(&s, &Range::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 4 * 4 * 25 * 2);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "distinct and ordered");
    assert_eq!(ids[0], Id::at(5_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_followers_wait_at_once_and_all_wake() {
    let server = server().await;
    let store = Arc::new(RedisTelemetry::connect(&server.url()).await.unwrap());
    let s = StreamKey::new("d1", Kind::Info);
    let followers: Vec<_> = (0..40)
        .map(|_| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                store
                    .wait(&s, Id::default(), Duration::from_secs(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    // Reads on the shared connection are not held up by the blocked followers.
    let started = Instant::now();
    for _ in 0..20 {
        store.read(&s, &Range::default()).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    store.append(&s, vec![record(7, "now")]).await.unwrap();
    let started = Instant::now();
    for follower in followers {
        assert!(follower.await.unwrap());
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_carry_the_records_ids_and_long_bodies_are_deflated() {
    let server = server().await;
    let store = RedisTelemetry::connect(&server.url()).await.unwrap();
    let s = StreamKey::new("6f1c2d34-0000-4000-8000-000000000001", Kind::FlowLog);
    let long = "a flow record with the same words again and again ".repeat(10);
    let ids = store
        .append(
            &s,
            vec![record(0, "epoch"), record(1_700_000_000_123, &long)],
        )
        .await
        .unwrap();
    assert_eq!(
        ids,
        [Id { millis: 0, seq: 1 }, Id::at(1_700_000_000_123)],
        "Redis reserves 0-0"
    );
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<Entry> = redis::cmd("XRANGE")
        .arg("adamant:telemetry:{6f1c2d34-0000-4000-8000-000000000001}:flowlog")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(entries[0].0, "0-1");
    assert_eq!(entries[1].0, "1700000000123-0");
    assert_eq!(entries[0].1[1].0, "b", "short bodies are kept as they are");
    assert_eq!(entries[1].1[1].0, "z");
    assert!(entries[1].1[1].1.len() < long.len() / 4);
    let bytes: u64 = redis::cmd("HGET")
        .arg("adamant:telemetry:{6f1c2d34-0000-4000-8000-000000000001}")
        .arg("flowlog:bytes")
        .query_async(&mut con)
        .await
        .unwrap();
    let kept = store.read(&s, &Range::default()).await.unwrap();
    assert_eq!(bytes, kept.iter().map(|r| r.body.len() as u64).sum::<u64>());
    assert_eq!(kept[1].body, record(0, &long).body);
}
