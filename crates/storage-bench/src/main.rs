//! `storage-bench`: measures the embedded store and etcd with the same workloads, in one run, on
//! the same disk, and prints a Markdown report (the figures of `docs/benchmarks.md`).
//!
//! Workloads: durable writes per second with 1, 16 and 256 concurrent writers; a list of 100,000
//! keys, whole and in pages of 500; watch delivery latency to 1,000 watchers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use storage::{ListRequest, Store, WatchItem, WriteOptions};
use storage_embedded::{EmbeddedStore, Options};
use storage_etcd::EtcdStore;
use storage_etcd::server::EtcdServer;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks the embedded store against etcd")]
struct Args {
    /// Seconds each write measurement runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Keys in the list measurement.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Watchers in the watch measurement.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Events written in the watch measurement.
    #[arg(long, default_value_t = 500)]
    events: usize,
    /// Where to put the stores' files (the disk being measured); a temporary directory by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave etcd out (when it is not installed).
    #[arg(long)]
    no_etcd: bool,
}

const VALUE_BYTES: usize = 256;

struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any>,
}

async fn subjects(args: &Args) -> anyhow::Result<Vec<Subject>> {
    let parent = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir(),
    };
    let dir = tempfile::tempdir_in(&parent)?;
    let embedded = EmbeddedStore::open(dir.path().join("store.redb"), Options::default())?;
    let mut subjects = vec![Subject {
        name: "embedded",
        store: Arc::new(embedded),
        _guard: Box::new(dir),
    }];
    if !args.no_etcd {
        let server = EtcdServer::start_in(Some(parent))
            .await
            .context("start etcd (or pass --no-etcd)")?;
        let store = EtcdStore::connect(&[server.endpoint().to_string()]).await?;
        subjects.push(Subject {
            name: "etcd",
            store: Arc::new(store),
            _guard: Box::new(server),
        });
    }
    Ok(subjects)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct WriteResult {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// `writers` tasks each create fresh keys one after another for `seconds`.
async fn writes(store: &Arc<dyn Store>, writers: usize, seconds: u64, tag: &str) -> WriteResult {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let tasks = (0..writers).map(|w| {
        let store = store.clone();
        let value = value.clone();
        let tag = tag.to_string();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let key = Bytes::from(format!("/bench/{tag}/{w}/{i}"));
                let start = Instant::now();
                store
                    .create(key, value.clone(), WriteOptions::default())
                    .await
                    .expect("write");
                latencies.push(start.elapsed());
                i += 1;
            }
            latencies
        })
    });
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in futures::future::join_all(tasks).await {
        latencies.extend(task.expect("writer"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    WriteResult {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

/// Writes with 16 writers while the whole history (at least the list measurement's keys) is
/// compacted; returns the writes' latencies and how long the compaction call took.
async fn writes_during_compaction(store: &Arc<dyn Store>, seconds: u64) -> (WriteResult, Duration) {
    let target = store.current_revision().await.expect("revision");
    let compactor = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            store.compact(target).await.expect("compact");
            started.elapsed()
        })
    };
    let result = writes(store, 16, seconds, "compaction").await;
    (result, compactor.await.expect("compactor"))
}

struct ListResult {
    load: Duration,
    whole: Duration,
    paged: Duration,
}

async fn list(store: &Arc<dyn Store>, keys: usize) -> ListResult {
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let started = Instant::now();
    let loaders = 256;
    let tasks = (0..loaders).map(|l| {
        let store = store.clone();
        let value = value.clone();
        tokio::spawn(async move {
            for i in (l..keys).step_by(loaders) {
                let key = Bytes::from(format!("/list/{i:08}"));
                store
                    .create(key, value.clone(), WriteOptions::default())
                    .await
                    .expect("load");
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.expect("loader");
    }
    let load = started.elapsed();

    let request = ListRequest {
        prefix: Bytes::from_static(b"/list/"),
        ..ListRequest::default()
    };
    let started = Instant::now();
    let page = store.list(request.clone()).await.expect("list");
    let whole = started.elapsed();
    assert_eq!(page.kvs.len(), keys);

    let started = Instant::now();
    let mut seen = 0;
    let mut next = ListRequest {
        limit: 500,
        ..request
    };
    loop {
        let page = store.list(next.clone()).await.expect("list page");
        seen += page.kvs.len();
        if !page.more {
            break;
        }
        next.start_after = page.kvs.last().map(|kv| kv.key.clone());
        next.revision = Some(page.revision);
    }
    let paged = started.elapsed();
    assert_eq!(seen, keys);
    ListResult { load, whole, paged }
}

struct WatchResult {
    deliveries: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// `watchers` watch one prefix; one writer writes `events` keys, 2 ms apart; each delivery's
/// latency is measured from the start of the write that caused it.
async fn watch(store: &Arc<dyn Store>, watchers: usize, events: usize) -> WatchResult {
    let epoch = Instant::now();
    let start = store.current_revision().await.expect("revision");
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut watch = store
            .watch(Bytes::from_static(b"/watch/"), start)
            .await
            .expect("watch");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events);
            while latencies.len() < events {
                match watch.next().await {
                    Some(Ok(WatchItem::Event(event))) => {
                        let kv = match event {
                            storage::Event::Put { kv, .. } => kv,
                            storage::Event::Delete { .. } => continue,
                        };
                        let sent = u64::from_le_bytes(kv.value[..8].try_into().unwrap());
                        let now = epoch.elapsed().as_nanos() as u64;
                        latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
                    }
                    Some(Ok(WatchItem::Progress(_))) => {}
                    other => panic!("watch ended: {other:?}"),
                }
            }
            latencies
        }));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    for i in 0..events {
        tick.tick().await;
        let sent = epoch.elapsed().as_nanos() as u64;
        let mut value = sent.to_le_bytes().to_vec();
        value.resize(VALUE_BYTES, b'v');
        let key = Bytes::from(format!("/watch/{i}"));
        store
            .create(key, Bytes::from(value), WriteOptions::default())
            .await
            .expect("write");
    }
    let mut latencies = Vec::new();
    for task in futures::future::join_all(tasks).await {
        latencies.extend(task.expect("watcher"));
    }
    latencies.sort_unstable();
    WatchResult {
        deliveries: latencies.len(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let subjects = subjects(&args).await?;

    println!(
        "### Durable writes ({VALUE_BYTES}-byte values, {} s per run)\n",
        args.seconds
    );
    println!("| store | writers | writes/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rates = Vec::new();
    for writers in [1, 16, 256] {
        for subject in &subjects {
            let tag = format!("w{writers}");
            let r = writes(&subject.store, writers, args.seconds, &tag).await;
            println!(
                "| {} | {writers} | {:.0} | {} | {} | {} |",
                subject.name,
                r.per_second,
                ms(r.p50),
                ms(r.p99),
                ms(r.max)
            );
            rates.push((subject.name, writers, r.per_second));
        }
    }
    if subjects.len() > 1 {
        println!("\n| writers | embedded / etcd |\n|---:|---:|");
        for writers in [1, 16, 256] {
            let rate = |name| {
                rates
                    .iter()
                    .find(|r| r.0 == name && r.1 == writers)
                    .map(|r| r.2)
            };
            if let (Some(e), Some(c)) = (rate("embedded"), rate("etcd")) {
                println!("| {writers} | {:.2}x |", e / c);
            }
        }
    }

    println!("\n### List of {} keys\n", args.keys);
    println!("| store | load (256 writers) s | one list ms | pages of 500 ms |");
    println!("|---|---:|---:|---:|");
    for subject in &subjects {
        let r = list(&subject.store, args.keys).await;
        println!(
            "| {} | {:.1} | {} | {} |",
            subject.name,
            r.load.as_secs_f64(),
            ms(r.whole),
            ms(r.paged)
        );
    }

    println!("\n### Writes while the history of the list measurement is compacted (16 writers)\n");
    println!("| store | compaction call ms | writes/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for subject in &subjects {
        let (r, took) = writes_during_compaction(&subject.store, args.seconds).await;
        println!(
            "| {} | {} | {:.0} | {} | {} | {} |",
            subject.name,
            ms(took),
            r.per_second,
            ms(r.p50),
            ms(r.p99),
            ms(r.max)
        );
    }

    println!(
        "\n### Watch delivery: {} watchers of one prefix, {} writes 2 ms apart\n",
        args.watchers, args.events
    );
    println!("| store | deliveries | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for subject in &subjects {
        let r = watch(&subject.store, args.watchers, args.events).await;
        println!(
            "| {} | {} | {} | {} | {} |",
            subject.name,
            r.deliveries,
            ms(r.p50),
            ms(r.p99),
            ms(r.max)
        );
    }
    Ok(())
}
