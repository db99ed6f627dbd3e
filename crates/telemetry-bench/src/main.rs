//! `telemetry-bench [DEVICES] [APPENDS]`: appends and reads on the memory, embedded and Redis
//! telemetry backends, on this machine, in one run; prints a Markdown table.
//!
//! Each of DEVICES tasks (default 200) appends APPENDS times (default 50) to its device's log
//! stream, one log record of about 260 bytes of JSON each time, all at once: what a fleet reporting
//! together costs with each append durable. Then batches of 20 records, then reads: each stream
//! whole, and its last 10 records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use telemetry::{Kind, MemoryTelemetry, NewRecord, Range, StreamKey, TelemetryStore};
use telemetry_embedded::{EmbeddedTelemetry, Options};
use telemetry_redis::RedisTelemetry;
use telemetry_redis::server::RedisServer;

type Error = Box<dyn std::error::Error>;

fn line(device: usize, i: usize) -> Bytes {
    Bytes::from(format!(
        "{{\"source\":\"pillar\",\"severity\":\"info\",\"filename\":\"/pillar/cmd/zedagent/handlemetrics.go:{i}\",\"function\":\"publishMetrics\",\"msg\":\"published metrics for device {device}: {i} counters, {} bytes sent, {} received, no errors\",\"pid\":1423,\"timestamp\":{{\"seconds\":{},\"nanos\":{}}}}}",
        i * 7919 % 100_000,
        i * 104_729 % 1_000_000,
        1_700_000_000 + i,
        i * 1_000_003 % 1_000_000_000
    ))
}

fn stream(device: usize) -> StreamKey {
    StreamKey::new(format!("00000000-0000-4000-8000-{device:012}"), Kind::Log)
}

/// Records per second of `appends` appends of `batch` records from each of `devices` tasks.
async fn append(
    store: &Arc<dyn TelemetryStore>,
    devices: usize,
    appends: usize,
    batch: usize,
    from: usize,
) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..devices)
        .map(|d| {
            let store = store.clone();
            tokio::spawn(async move {
                for a in 0..appends {
                    let records = (0..batch)
                        .map(|b| {
                            let i = from + a * batch + b;
                            NewRecord {
                                millis: 1_700_000_000_000 + i as u64,
                                body: line(d, i),
                            }
                        })
                        .collect();
                    store.append(&stream(d), records).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (devices * appends * batch) as f64 / started.elapsed().as_secs_f64()
}

/// Records per second read by `devices` tasks, each reading its stream with `range`.
async fn read(store: &Arc<dyn TelemetryStore>, devices: usize, range: Range, times: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..devices)
        .map(|d| {
            let (store, range) = (store.clone(), range.clone());
            tokio::spawn(async move {
                let mut n = 0;
                for _ in 0..times {
                    n += store.read(&stream(d), &range).await.unwrap().len();
                }
                n
            })
        })
        .collect();
    let mut records = 0;
    for task in tasks {
        records += task.await.unwrap();
    }
    records as f64 / started.elapsed().as_secs_f64()
}

fn size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let devices = args.first().copied().unwrap_or(200);
    let appends = args.get(1).copied().unwrap_or(50);
    let dir = tempfile::tempdir()?;
    let redis = RedisServer::start().await?;
    let backends: Vec<(&str, Arc<dyn TelemetryStore>, Option<std::path::PathBuf>)> = vec![
        ("memory", Arc::new(MemoryTelemetry::new()), None),
        (
            "embedded (redb, fsync per group)",
            Arc::new(EmbeddedTelemetry::open(
                dir.path().join("telemetry.redb"),
                Options::default(),
            )?),
            Some(dir.path().to_path_buf()),
        ),
        (
            "Redis 7 (appendfsync always)",
            Arc::new(RedisTelemetry::connect(&redis.url()).await?),
            Some(redis.data_dir()),
        ),
    ];
    println!(
        "{devices} devices appending at once; records of {} bytes of JSON.\n",
        line(0, 0).len()
    );
    println!(
        "| backend | append 1 record (records/s) | append 20 records (records/s) | read whole stream (records/s) | read last 10 (records/s) | on disk |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, store, data) in backends {
        let single = append(&store, devices, appends, 1, 0).await;
        let batched = append(&store, devices, appends / 5 + 1, 20, appends).await;
        let whole = read(&store, devices, Range::default(), 3).await;
        let tail = Range {
            limit: 10,
            tail: true,
            ..Range::default()
        };
        let last = read(&store, devices, tail, 50).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let disk = data.map_or("-".to_string(), |d| {
            format!("{:.1} MB", size(&d) as f64 / 1e6)
        });
        println!("| {name} | {single:.0} | {batched:.0} | {whole:.0} | {last:.0} | {disk} |");
    }
    let records = devices * (appends + (appends / 5 + 1) * 20);
    println!(
        "\n{records} records in all, {:.1} MB of bodies.",
        (records * line(0, 0).len()) as f64 / 1e6
    );
    Ok(())
}
