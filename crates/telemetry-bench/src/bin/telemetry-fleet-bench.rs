//! `telemetry-fleet-bench [DEVICES ...]`: what one more record costs the embedded telemetry
//! store as the fleet grows, against the memory store in the same run.
//!
//! For each fleet size (default 10,000 and 100,000 devices): a fresh store is filled as a fleet
//! fills it, round after round, each device appending one metrics-sized record per round
//! (`ROUNDS` rounds); then `APPENDS` appends of one record each to devices picked at random, 64
//! at a time, as a fleet's metrics posts arrive. Printed: the process's CPU time per append
//! (user and system, from `/proc/self/stat`) and appends per second, for the embedded store and
//! for the memory store (the floor: what the benchmark itself costs). Then the CPU time of one
//! retention pass that finds nothing to drop, as the server runs every minute.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use telemetry::{Kind, MemoryTelemetry, NewRecord, Retention, StreamKey, TelemetryStore};
use telemetry_embedded::{EmbeddedTelemetry, Options};

type Error = Box<dyn std::error::Error>;

/// Records each device has before the measurement.
const ROUNDS: usize = 10;
/// Appends measured.
const APPENDS: usize = 40_000;
/// Appends in flight at once.
const CONCURRENCY: usize = 64;

/// A metrics record as the device API keeps it: the message as sent, in base64, and its time.
fn body(device: usize, i: usize) -> Bytes {
    let mut message = Vec::with_capacity(240);
    let mut x = (device as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64;
    while message.len() < 240 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Metrics are mostly small varints and field tags: bytes under 64 half the time.
        let byte = (x & 0xff) as u8;
        message.push(if x & 0x100 == 0 { byte & 0x3f } else { byte });
    }
    use base64::Engine;
    let protobuf = base64::engine::general_purpose::STANDARD.encode(&message);
    Bytes::from(format!(
        r#"{{"protobuf":"{protobuf}","time":"2026-11-30T12:{:02}:{:02}.000Z"}}"#,
        i % 60,
        device % 60
    ))
}

fn stream(device: usize) -> StreamKey {
    StreamKey::new(
        format!("00000000-0000-4000-8000-{device:012}"),
        Kind::Metrics,
    )
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

async fn fill(store: &Arc<dyn TelemetryStore>, devices: usize) {
    for round in 0..ROUNDS {
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in 0..CONCURRENCY {
            let store = store.clone();
            tasks.spawn(async move {
                for device in (chunk..devices).step_by(CONCURRENCY) {
                    let record = NewRecord {
                        millis: 1_700_000_000_000 + (round * 60_000) as u64,
                        body: body(device, round),
                    };
                    store.append(&stream(device), vec![record]).await.unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// (CPU µs per append, appends per second) of `APPENDS` appends to random devices.
async fn measure(store: &Arc<dyn TelemetryStore>, devices: usize) -> (f64, f64) {
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..CONCURRENCY {
        let store = store.clone();
        tasks.spawn(async move {
            let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ task as u64;
            for i in 0..APPENDS / CONCURRENCY {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let device = (x % devices as u64) as usize;
                let record = NewRecord {
                    millis: 1_700_000_000_000 + ((ROUNDS + i) * 60_000) as u64,
                    body: body(device, ROUNDS + i),
                };
                store.append(&stream(device), vec![record]).await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let appends = (APPENDS / CONCURRENCY * CONCURRENCY) as f64;
    let (cpu, wall) = (cpu_seconds() - cpu, started.elapsed().as_secs_f64());
    (cpu * 1e6 / appends, appends / wall)
}

/// CPU milliseconds of one retention pass that drops nothing.
async fn trim(store: &Arc<dyn TelemetryStore>) -> f64 {
    let cpu = cpu_seconds();
    let retention = Retention {
        max_age: std::time::Duration::from_secs(100 * 365 * 86_400),
        max_bytes: u64::MAX,
    };
    let removed = store.trim(&retention, 1_800_000_000_000).await.unwrap();
    assert_eq!(removed, 0, "nothing is old enough to drop");
    (cpu_seconds() - cpu) * 1e3
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    println!(
        "Each device has {ROUNDS} records of {} bytes; then {APPENDS} appends of one record to random devices, {CONCURRENCY} at a time.\n",
        body(0, 0).len()
    );
    println!(
        "| devices | store | CPU per append (µs) | appends/s | retention pass, nothing dropped (CPU ms) | file (MB) |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for devices in sizes {
        let memory: Arc<dyn TelemetryStore> = Arc::new(MemoryTelemetry::new());
        fill(&memory, devices).await;
        let (cpu, rate) = measure(&memory, devices).await;
        let pass = trim(&memory).await;
        println!("| {devices} | memory | {cpu:.1} | {rate:.0} | {pass:.0} | - |");
        drop(memory);

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("telemetry.redb");
        let embedded: Arc<dyn TelemetryStore> =
            Arc::new(EmbeddedTelemetry::open(&path, Options::default())?);
        let started = Instant::now();
        fill(&embedded, devices).await;
        let filled = started.elapsed().as_secs_f64();
        let (cpu, rate) = measure(&embedded, devices).await;
        let pass = trim(&embedded).await;
        let size = std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6;
        println!("| {devices} | embedded | {cpu:.1} | {rate:.0} | {pass:.0} | {size:.0} |");
        eprintln!("(filled {devices} devices × {ROUNDS} records in {filled:.1} s)");
    }
    Ok(())
}
