//! `telemetry-api-bench`: device telemetry through `adamant serve`'s device API and its
//! `/edgenode/` endpoints, with simulated devices (`device-sim`), in one run:
//!
//! 1. ingest, on `--telemetry-store embedded` and on a private Redis (`appendfsync always`):
//!    the server's CPU per 304 config poll (the baseline), per metrics post and per `newlogs`
//!    post (gzip, realistic entries), then every device at EVE's default intervals for a
//!    bounded time: messages and MB per second, server CPU, and a follower's latency;
//! 2. query latency over a day of logs for 1,000 devices (written straight into
//!    `telemetry.redb` while the server is stopped, then read through the API);
//! 3. disk per device-day.
//!
//! Prints the Markdown of `docs/benchmarks.md`'s "Device telemetry" section.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use api_bench::{Fleet, Server, cpu_of, figures, grow, ms, namespace};
use bytes::Bytes;
use clap::Parser;
use device_sim::{Controller, Device, Identity};
use eve_api::Message;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use telemetry::{Kind, NewRecord, StreamKey, TelemetryStore};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks device telemetry through Adamant's device API")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<std::path::PathBuf>,
    /// Devices posting (ingest).
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Requests per CPU measurement of a 304 poll and of a metrics post.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// `newlogs` posts per CPU measurement.
    #[arg(long, default_value_t = 2_000)]
    log_requests: usize,
    /// Concurrent requests in the CPU measurements.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Log entries per `newlogs` file.
    #[arg(long, default_value_t = 30)]
    entries: usize,
    /// Bytes of each log entry's `content`.
    #[arg(long, default_value_t = 150)]
    content: usize,
    /// Bytes of each metrics message (a `ZMetricMsg` of device metrics and as many applications' as fit).
    #[arg(long, default_value_t = 2_000)]
    metrics_bytes: usize,
    /// Seconds between a device's config polls, and between its metrics posts (EVE's
    /// `timer.config.interval` and `timer.metric.interval`).
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// Seconds between a device's `newlogs` files.
    #[arg(long, default_value_t = 300)]
    log_interval: u64,
    /// Seconds of the paced run at those intervals.
    #[arg(long, default_value_t = 60)]
    paced: u64,
    /// Requests of the paced run in flight at most.
    #[arg(long, default_value_t = 512)]
    in_flight: usize,
    /// `newlogs` posts the follower waits for.
    #[arg(long, default_value_t = 200)]
    follow_posts: usize,
    /// Devices with a day of logs for the query measurements.
    #[arg(long, default_value_t = 1_000)]
    query_devices: usize,
    /// Requests per query measurement (`limit=10000` does a tenth of them).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Skip Redis.
    #[arg(long)]
    no_redis: bool,
    /// Skip the ingest runs (query only).
    #[arg(long)]
    no_ingest: bool,
    /// Skip the query run.
    #[arg(long)]
    no_query: bool,
}

const SOURCES: [(&str, &str, &str); 6] = [
    ("zedagent", "handlemetrics.go", "publishMetrics"),
    ("nim", "dpcmanager.go", "verifyDPC"),
    ("zedmanager", "handleapp.go", "doUpdate"),
    ("domainmgr", "domainmgr.go", "handleDomainModify"),
    ("newlogd", "newlogd.go", "doMoveCompressFile"),
    ("zedrouter", "networkinstance.go", "checkNetworkInstance"),
];
const VERBS: [&str; 8] = [
    "published",
    "verified",
    "updated",
    "checked",
    "moved",
    "received",
    "applied",
    "refreshed",
];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Entry `i` of a device: about one in a hundred is an error, one in twenty a warning.
fn entry_fields(device: usize, i: u64, content: usize) -> (&'static str, usize, String) {
    let r = splitmix(device as u64 * 1_000_003 + i);
    let severity = match r % 100 {
        0 => "error",
        1..=5 => "warning",
        _ => "info",
    };
    let source = (r >> 8) as usize % SOURCES.len();
    let mut text = format!(
        "{} {} for {}: {} items, {} bytes in {} ms, generation {}",
        VERBS[(r >> 16) as usize % VERBS.len()],
        SOURCES[source].2,
        format_args!("{:08x}-{:04x}", r >> 32, (r >> 20) & 0xffff),
        (r >> 24) % 1000,
        (r >> 12) % 1_000_000,
        (r >> 40) % 5000,
        i
    );
    let mut k = r;
    while text.len() < content {
        k = splitmix(k);
        text.push_str(&format!(" key{}={}", k % 64, (k >> 8) % 100_000));
    }
    text.truncate(content);
    (severity, source, text)
}

/// A log entry as EVE's `newlogs` carries it (Go's JSON of `LogEntry`).
fn entry(device: usize, i: u64, content: usize, millis: u64) -> Value {
    let (severity, source, text) = entry_fields(device, i, content);
    let (agent, file, function) = SOURCES[source];
    json!({
        "severity": severity, "source": agent, "iid": format!("{}", 1000 + source),
        "content": text, "msgid": i + 1,
        "filename": format!("/pillar/cmd/{agent}/{file}:{}", 100 + i % 400),
        "function": function,
        "timestamp": {"seconds": millis / 1000, "nanos": (millis % 1000) * 1_000_000},
    })
}

/// The record the device API keeps for that entry (`ingest::log_record`'s fields).
fn record(device: usize, i: u64, content: usize, millis: u64) -> anyhow::Result<NewRecord> {
    let (severity, source, text) = entry_fields(device, i, content);
    let (agent, file, function) = SOURCES[source];
    let time = jiff::Timestamp::from_millisecond(millis as i64)?.to_string();
    let body = json!({
        "time": time, "severity": severity, "source": agent, "iid": format!("{}", 1000 + source),
        "content": text, "msgid": i + 1, "tags": {},
        "filename": format!("/pillar/cmd/{agent}/{file}:{}", 100 + i % 400),
        "function": function,
    });
    Ok(NewRecord {
        millis,
        body: Bytes::from(serde_json::to_vec(&body)?),
    })
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A `ZMetricMsg` of about `size` bytes as EVE's `zedagent` makes one: the device's CPU, memory,
/// disks and ports, then applications' metrics (CPU, memory, a port, a disk) until the size is
/// reached; counters drawn from `seed`.
fn metrics_payload(uuid: &str, size: usize, seed: u64) -> Vec<u8> {
    use eve_api::telemetry::{
        AppDiskMetric, AppMemoryMetric, AppMetric, CpuMetric, DeviceMemoryMetric, DeviceMetric,
        DiskMetric, MemoryMetric, NetworkMetric, ZMetricMsg, z_metric_msg::MetricContent,
    };
    let state = std::cell::Cell::new(seed);
    let next = |bound: u64| {
        state.set(splitmix(state.get()));
        state.get() % bound
    };
    let port = |name: &str| NetworkMetric {
        i_name: name.into(),
        local_name: name.into(),
        tx_bytes: next(1 << 40),
        rx_bytes: next(1 << 40),
        tx_pkts: next(1 << 30),
        rx_pkts: next(1 << 30),
        tx_drops: next(1000),
        rx_drops: next(1000),
        ..NetworkMetric::default()
    };
    let network = vec![port("eth0"), port("eth1"), port("wlan0")];
    let disk = |disk: &str, mount: &str| DiskMetric {
        disk: disk.into(),
        mount_path: mount.into(),
        read_bytes: next(1 << 20),
        write_bytes: next(1 << 20),
        read_count: next(1 << 30),
        write_count: next(1 << 30),
        total: 100_000,
        used: next(100_000),
        free: next(100_000),
    };
    let disks = vec![
        disk("sda1", "/config"),
        disk("sda9", "/persist"),
        disk("sda2", "/"),
    ];
    let mut message = ZMetricMsg {
        dev_id: uuid.to_string(),
        at_time_stamp: Some(pbjson_types::Timestamp {
            seconds: (now_millis() / 1000) as i64,
            nanos: 0,
        }),
        metric_content: Some(MetricContent::Dm(DeviceMetric {
            memory: Some(MemoryMetric {
                used_mem: next(4096) as u32,
                avail_mem: next(4096) as u32,
            }),
            device_memory: Some(DeviceMemoryMetric {
                memory_mb: 8192,
                allocated_apps_mb: next(4096) as u32,
                allocated_eve_mb: 800,
                used_eve_mb: next(800) as u32,
            }),
            cpu_metric: Some(CpuMetric {
                total: next(1 << 24),
                total_ns: next(1 << 54),
                ..CpuMetric::default()
            }),
            network,
            disk: disks,
            ..DeviceMetric::default()
        })),
        ..ZMetricMsg::default()
    };
    let mut app = 0;
    while message.encoded_len() < size {
        app += 1;
        message.am.push(AppMetric {
            app_id: format!("{:08x}-0000-4000-8000-{app:012x}", seed as u32),
            app_name: format!("app-{app}"),
            cpu: Some(CpuMetric {
                total: next(1 << 24),
                total_ns: next(1 << 54),
                ..CpuMetric::default()
            }),
            app_memory: Some(AppMemoryMetric {
                allocated_mb: 512,
                used_mb: next(512) as u32,
            }),
            network: vec![port(&format!("nbu{app}x1"))],
            disk: vec![AppDiskMetric {
                disk: format!("/persist/vault/volumes/{app}"),
                provisioned: 10_240,
                used: next(10_240),
                disk_type: "QCOW2".into(),
                dirty: false,
            }],
            ..AppMetric::default()
        });
    }
    message.encode_to_vec()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Call {
    Poll,
    Metrics,
    Logs,
}

struct Counters {
    messages: AtomicUsize,
    errors: AtomicUsize,
    posted: AtomicU64,
    msgid: AtomicU64,
}

/// One request of `call` by `device`; the bytes it posted.
async fn call(device: &mut Device, call: Call, args: &Args, msgid: u64) -> anyhow::Result<usize> {
    let uuid = device.uuid.clone().unwrap_or_default();
    match call {
        Call::Poll => {
            anyhow::ensure!(device.poll_config().await?.is_none(), "expected 304");
            Ok(0)
        }
        Call::Metrics => {
            let sealed = device
                .signer()
                .seal(metrics_payload(&uuid, args.metrics_bytes, msgid));
            let size = sealed.len();
            let status = device.raw(&device.path("metrics"), sealed).await?;
            anyhow::ensure!(status.is_success(), "metrics: {status}");
            Ok(size)
        }
        Call::Logs => {
            let now = now_millis();
            let entries: Vec<Value> = (0..args.entries as u64)
                .map(|e| entry(0, msgid * 1000 + e, args.content, now))
                .collect();
            let meta = json!({"devID": uuid, "image": "IMGA", "eveVersion": "14.5.0-sim"});
            let file = eve_api::newlogs::write(&meta.to_string(), false, &entries);
            let sealed = device.signer().seal(file);
            let size = sealed.len();
            let status = device.raw(&device.path("newlogs"), sealed).await?;
            anyhow::ensure!(status.is_success(), "newlogs: {status}");
            Ok(size)
        }
    }
}

/// What the server says it kept: (records, bytes) of all kinds, from its `/metrics`.
async fn kept(client: &kube::Client) -> anyhow::Result<(f64, f64)> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let sum = |name: &str| {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    Ok((
        sum("eve_telemetry_records_total"),
        sum("eve_telemetry_bytes_total"),
    ))
}

/// The CPU of the server and, on Redis, of redis-server.
struct Cpu {
    pids: Vec<u32>,
}

impl Cpu {
    fn now(&self) -> Duration {
        self.pids.iter().map(|&p| cpu_of(p)).sum()
    }
}

struct PerCall {
    cpu: Duration,
    per_second: f64,
    posted: f64,
    kept_bytes: f64,
    kept_records: f64,
}

/// `requests` calls over the fleet, `concurrency` at a time.
async fn measure(
    cpu: &Cpu,
    client: &kube::Client,
    fleet: &Fleet,
    which: Call,
    requests: usize,
    args: &Arc<Args>,
    offset: usize,
) -> anyhow::Result<PerCall> {
    let before = kept(client).await?;
    let counters = Arc::new(Counters {
        messages: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        posted: AtomicU64::new(0),
        msgid: AtomicU64::new(0),
    });
    let used = cpu.now();
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..requests)
        .map(|i| {
            let device = fleet[(offset + i) % fleet.len()].clone();
            let (args, counters) = (args.clone(), counters.clone());
            async move {
                let mut device = device.lock().await;
                let size = call(&mut device, which, &args, i as u64).await?;
                counters.posted.fetch_add(size as u64, Ordering::Relaxed);
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let used = cpu.now().saturating_sub(used);
    for result in results {
        result?;
    }
    let after = kept(client).await?;
    let n = requests as f64;
    Ok(PerCall {
        cpu: used / requests as u32,
        per_second: n / elapsed.as_secs_f64(),
        posted: counters.posted.load(Ordering::Relaxed) as f64 / n,
        kept_records: (after.0 - before.0) / n,
        kept_bytes: (after.1 - before.1) / n,
    })
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn size_of(path: &std::path::Path) -> u64 {
    if path.is_file() {
        return path.metadata().map_or(0, |m| m.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() {
            size_of(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn device_address(server: &Server) -> anyhow::Result<SocketAddr> {
    Ok(server
        .ready
        .split("devices=https://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .context("no device API address")?
        .parse()?)
}

async fn start_fleet(
    binary: &std::path::PathBuf,
    store: &str,
    devices: usize,
    concurrency: usize,
) -> anyhow::Result<(Server, kube::Client, Fleet, Duration)> {
    let server = Server::start(
        binary,
        &["--open-registration", "fleet", "--telemetry-store", store],
    )
    .context("cannot start adamant serve")?;
    let client = server.client().await?;
    namespace(&client, "fleet").await?;
    let root = std::fs::read(server.data_dir().join("pki/root-certificate.pem"))?;
    let controller = Controller::new(device_address(&server)?, "localhost", &root)?;
    let onboard = Identity::generate("bench-onboarding")?;
    let mut fleet = Fleet::new();
    let took = grow(&mut fleet, &controller, &onboard, devices, concurrency).await?;
    Ok((server, client, fleet, took))
}

/// Latencies from each post's acknowledgement (and from its start) to its last line reaching a
/// follower of the device's log; how many arrived before the acknowledgement did.
async fn follow(
    client: &kube::Client,
    device: Arc<tokio::sync::Mutex<Device>>,
    args: &Args,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>, usize)> {
    let mut device = device.lock().await;
    let uuid = device.uuid.clone().unwrap_or_default();
    let request = http::Request::get(format!("/edgenode/{uuid}/log?follow=true&tail=1"))
        .body(kube::client::Body::from(Vec::new()))?;
    let response = client.send(request).await?;
    anyhow::ensure!(response.status() == 200, "follow: {}", response.status());
    let mut body = response.into_body();
    let (arrived_tx, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            let at = Instant::now();
            text.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = text.find('\n') {
                if let Ok(line) = serde_json::from_str::<Value>(&text[..end])
                    && let Some(msgid) = line["msgid"].as_u64()
                {
                    let _ = arrived_tx.send((msgid, at));
                }
                text.drain(..=end);
            }
        }
        anyhow::Ok(())
    });
    let mut from_ack = Vec::new();
    let mut from_start = Vec::new();
    let mut early = 0;
    // Message ids far above those of the other measurements.
    let base = 1_000_000u64;
    for post in 0..args.follow_posts as u64 {
        let msgid = base + post;
        let started = Instant::now();
        call(&mut device, Call::Logs, args, msgid).await?;
        let acked = Instant::now();
        // The post's last entry.
        let last = msgid * 1000 + args.entries as u64;
        let arrived = loop {
            let (id, at) = tokio::time::timeout(Duration::from_secs(30), arrived_rx.recv())
                .await
                .context("no line within 30 s")?
                .context("the follow stream ended")?;
            if id == last {
                break at;
            }
        };
        if arrived < acked {
            early += 1;
        }
        from_ack.push(arrived.saturating_duration_since(acked));
        from_start.push(arrived - started);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.abort();
    Ok((from_ack, from_start, early))
}

struct Paced {
    messages: usize,
    errors: usize,
    elapsed: Duration,
    cpu: Duration,
    posted: u64,
    kept: (f64, f64),
    late_p99: Duration,
}

/// Every device but the first (the follower's) at EVE's intervals, for `args.paced` seconds:
/// each device's config poll and metrics post at its own offset within `interval`, its log file
/// at its own offset within `log_interval`.
async fn paced(
    cpu: &Cpu,
    client: &kube::Client,
    fleet: &Fleet,
    args: &Arc<Args>,
) -> anyhow::Result<Paced> {
    let span = args.paced * 1000;
    let mut events = Vec::new();
    for d in 1..fleet.len() {
        for (which, every, salt) in [
            (Call::Poll, args.interval * 1000, 1),
            (Call::Metrics, args.interval * 1000, 2),
            (Call::Logs, args.log_interval * 1000, 3),
        ] {
            let mut at = splitmix(d as u64 * 7 + salt) % every.max(1);
            while at < span {
                events.push((at, d, which));
                at += every.max(1);
            }
        }
    }
    events.sort_by_key(|e| e.0);
    let before = kept(client).await?;
    let counters = Arc::new(Counters {
        messages: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        posted: AtomicU64::new(0),
        msgid: AtomicU64::new(10_000),
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(args.in_flight));
    let mut late = Vec::with_capacity(events.len());
    let used = cpu.now();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(events.len());
    for (at, d, which) in events {
        tokio::time::sleep_until((started + Duration::from_millis(at)).into()).await;
        let permit = limit.clone().acquire_owned().await?;
        late.push(started.elapsed().saturating_sub(Duration::from_millis(at)));
        let (device, args, counters) = (fleet[d].clone(), args.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            let mut device = device.lock().await;
            let msgid = counters.msgid.fetch_add(1, Ordering::Relaxed);
            match call(&mut device, which, &args, msgid).await {
                Ok(size) => {
                    counters.messages.fetch_add(1, Ordering::Relaxed);
                    counters.posted.fetch_add(size as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("paced {which:?}: {e:#}");
                    }
                }
            }
            drop(permit);
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed();
    let used = cpu.now().saturating_sub(used);
    let after = kept(client).await?;
    let late = figures(late, elapsed);
    Ok(Paced {
        messages: counters.messages.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        elapsed,
        cpu: used,
        posted: counters.posted.load(Ordering::Relaxed),
        kept: (after.0 - before.0, after.1 - before.1),
        late_p99: late.p99,
    })
}

async fn ingest(binary: &std::path::PathBuf, args: &Arc<Args>) -> anyhow::Result<()> {
    let redis = if args.no_redis {
        None
    } else {
        Some(telemetry_redis::server::RedisServer::start().await?)
    };
    let mut backends = vec![("embedded".to_string(), None)];
    if let Some(redis) = &redis {
        backends.push((
            redis.url().trim_end_matches('/').to_string(),
            Some(redis.pid()),
        ));
    }
    let day_records =
        (86_400 / args.interval) as f64 + (86_400 / args.log_interval) as f64 * args.entries as f64;
    let mut rows = Vec::new();
    let mut pace_rows = Vec::new();
    let mut follow_rows = Vec::new();
    let mut disk_rows = Vec::new();
    for (store, redis_pid) in backends {
        let name = if redis_pid.is_some() {
            "Redis (appendfsync always)"
        } else {
            "embedded (redb)"
        };
        eprintln!("{name}: onboarding {} devices", args.devices);
        let (server, client, fleet, took) =
            start_fleet(binary, &store, args.devices, args.concurrency).await?;
        eprintln!("{name}: onboarded in {:.1} s", took.as_secs_f64());
        let mut pids = vec![server.pid()];
        pids.extend(redis_pid);
        let cpu = Cpu { pids };
        let poll = measure(&cpu, &client, &fleet, Call::Poll, args.requests, args, 0).await?;
        let metrics = measure(&cpu, &client, &fleet, Call::Metrics, args.requests, args, 0).await?;
        let logs = measure(
            &cpu,
            &client,
            &fleet,
            Call::Logs,
            args.log_requests,
            args,
            0,
        )
        .await?;
        for (what, m) in [
            ("304 config poll (baseline)", &poll),
            ("metrics post", &metrics),
            ("newlogs post", &logs),
        ] {
            rows.push(format!(
                "| {name} | {what} | {} | {:.1}× | {:.0} | {:.0} | {:.0} | {:.1} | {} |",
                us(m.cpu),
                m.cpu.as_secs_f64() / poll.cpu.as_secs_f64(),
                m.per_second,
                m.posted,
                m.kept_bytes,
                m.kept_records,
                if m.kept_records > 0.0 {
                    us(m.cpu / m.kept_records.max(1.0) as u32)
                } else {
                    "-".into()
                },
            ));
        }
        eprintln!("{name}: paced run of {} s", args.paced);
        let follower = fleet[0].clone();
        let follow_args = args.clone();
        let follow_client = client.clone();
        let follow_task =
            tokio::spawn(async move { follow(&follow_client, follower, &follow_args).await });
        let pace = paced(&cpu, &client, &fleet, args).await?;
        let (from_ack, from_start, early) = follow_task.await??;
        let secs = pace.elapsed.as_secs_f64();
        pace_rows.push(format!(
            "| {name} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.0} | {} | {} |",
            args.devices,
            pace.messages as f64 / secs,
            pace.kept.0 / secs,
            pace.posted as f64 / secs / 1e6,
            pace.kept.1 / secs / 1e6,
            pace.cpu.as_secs_f64() * 1e6 / pace.messages.max(1) as f64,
            pace.cpu.as_secs_f64() / secs,
            server.memory().0,
            pace.errors,
            ms(pace.late_p99),
        ));
        let n = from_ack.len();
        let ack = figures(from_ack, Duration::from_secs(1));
        let start = figures(from_start, Duration::from_secs(1));
        follow_rows.push(format!(
            "| {name} | {n} | {} | {} | {} | {} | {early} |",
            ms(ack.p50),
            ms(ack.p99),
            ms(start.p50),
            ms(start.p99),
        ));
        let (records, bytes) = kept(&client).await?;
        drop(client);
        let (disk, memory) = if let Some(pid) = redis_pid {
            let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb * 1024.0);
            let dir = redis.as_ref().map(|r| r.data_dir()).unwrap_or_default();
            (size_of(&dir) as f64, Some(rss))
        } else {
            let dir = server.stop()?;
            (size_of(&dir.path().join("telemetry.redb")) as f64, None)
        };
        let per_record = disk / records.max(1.0);
        disk_rows.push(format!(
            "| {name} (after the ingest run) | {records:.0} | {:.1} | {:.1} | {per_record:.0} | {:.1}{} |",
            bytes / 1e6,
            disk / 1e6,
            per_record * day_records / 1e6,
            memory.map_or(String::new(), |m| format!(
                " (memory: {:.0} B a record, {:.1} MB a device-day)",
                m / records.max(1.0),
                m / records.max(1.0) * day_records / 1e6
            )),
        ));
    }
    println!("### Server CPU per message ({} devices)\n", args.devices);
    println!(
        "| store | message | server CPU µs | against a 304 poll | per second | bytes posted | record bytes kept | records kept | CPU µs per record |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!(
        "\n### {} devices at EVE's intervals for {} s\n",
        args.devices, args.paced
    );
    println!(
        "| store | devices | messages/s | records/s | MB/s posted | MB/s of records kept | server CPU µs per message | server cores busy | server RSS MiB | errors | schedule lag p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in pace_rows {
        println!("{row}");
    }
    println!("\n### Follow latency, during that run\n");
    println!(
        "| store | posts | ack → last line p50 ms | p99 ms | post sent → last line p50 ms | p99 ms | lines before the ack |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in follow_rows {
        println!("{row}");
    }
    println!("\n### Disk (a device-day: {day_records:.0} records at these intervals)\n");
    println!("| store | records | MB of records | MB on disk | bytes a record | MB a device-day |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in disk_rows {
        println!("{row}");
    }
    println!();
    Ok(())
}

async fn query(binary: &std::path::PathBuf, args: &Arc<Args>) -> anyhow::Result<()> {
    eprintln!("query: onboarding {} devices", args.query_devices);
    let (server, client, fleet, _) =
        start_fleet(binary, "embedded", args.query_devices, args.concurrency).await?;
    drop(client);
    let mut uuids = Vec::new();
    for device in &fleet {
        uuids.push(device.lock().await.uuid.clone().unwrap_or_default());
    }
    drop(fleet);
    let dir = server.stop()?;
    let path = dir.path().join("telemetry.redb");
    let before = size_of(&path);
    // A day of logs up to now, one file of `entries` every `log_interval`, written an hour at a
    // time (the store's group commit is per append; the API's appends are per file).
    let now = now_millis();
    let files = 86_400 / args.log_interval;
    let per_day = files as usize * args.entries;
    eprintln!(
        "query: writing {} records ({per_day} a device) into telemetry.redb",
        per_day * uuids.len()
    );
    let store: Arc<dyn TelemetryStore> = Arc::new(telemetry_embedded::EmbeddedTelemetry::open(
        &path,
        telemetry_embedded::Options::default(),
    )?);
    let started = Instant::now();
    let content = args.content;
    let entries = args.entries as u64;
    let log_interval = args.log_interval;
    let files_per_append = (3600 / log_interval).max(1);
    let results: Vec<_> = futures::stream::iter(uuids.iter().cloned().enumerate())
        .map(|(d, uuid)| {
            let store = store.clone();
            async move {
                let key = StreamKey::new(uuid, Kind::Log);
                let mut file = 0;
                while file < files {
                    let mut records = Vec::new();
                    for f in file..(file + files_per_append).min(files) {
                        let at = now - 86_400_000 + (f + 1) * log_interval * 1000;
                        for e in 0..entries {
                            records.push(record(d, f * entries + e, content, at - (entries - e))?);
                        }
                    }
                    store.append(&key, records).await?;
                    file += files_per_append;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for result in results {
        result?;
    }
    let fill = started.elapsed();
    drop(store);
    // The writer thread closes the file once the last handle is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = size_of(&path);
    let total = per_day * uuids.len();
    let server = Server::start_in(binary, dir, &[])?;
    let client = server.client().await?;
    println!(
        "### Query latency over a day of logs, {} devices\n",
        uuids.len()
    );
    println!(
        "{total} log records ({per_day} a device, one file of {} entries every {} s, {}-byte contents) written straight into `telemetry.redb` in {:.0} s ({:.0} records/s, {} files an append); the file grew from {:.1} MB to {:.1} MB: **{:.2} MB a device-day**, {:.0} bytes a record.\n",
        args.entries,
        args.log_interval,
        args.content,
        fill.as_secs_f64(),
        total as f64 / fill.as_secs_f64(),
        files_per_append,
        before as f64 / 1e6,
        after as f64 / 1e6,
        (after - before) as f64 / 1e6 / uuids.len() as f64,
        (after - before) as f64 / total as f64,
    );
    println!(
        "| request | requests | records answered (mean) | bytes answered (mean) | p50 ms | p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (query, times) in [
        ("tail=100", args.queries),
        ("since=1h&severity=error", args.queries),
        ("limit=10000", (args.queries / 10).max(10)),
    ] {
        let mut latencies = Vec::new();
        let (mut lines, mut bytes) = (0usize, 0usize);
        let started = Instant::now();
        for i in 0..times {
            let uuid = &uuids[splitmix(i as u64) as usize % uuids.len()];
            let request =
                http::Request::get(format!("/edgenode/{uuid}/log?{query}")).body(Vec::new())?;
            let began = Instant::now();
            let text = client.request_text(request).await?;
            latencies.push(began.elapsed());
            lines += text.lines().count();
            bytes += text.len();
        }
        let f = figures(latencies, started.elapsed());
        println!(
            "| `GET /edgenode/<uuid>/log?{query}` | {times} | {:.0} | {:.0} | {} | {} |",
            lines as f64 / times as f64,
            bytes as f64 / times as f64,
            ms(f.p50),
            ms(f.p99),
        );
    }
    println!();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Arc::new(Args::parse());
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# telemetry-api-bench\n\n{cpus} CPUs; log files of {} entries with {}-byte contents (gzip), metrics of {} bytes; config polls and metrics every {} s, a log file every {} s\n",
        args.entries, args.content, args.metrics_bytes, args.interval, args.log_interval
    );
    if !args.no_ingest {
        ingest(&binary, &args).await?;
    }
    if !args.no_query {
        query(&binary, &args).await?;
    }
    Ok(())
}
