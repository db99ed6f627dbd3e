//! What the benchmark binaries share: `adamant serve` in a child process with its memory
//! figures, a client for it, and the measurement of concurrent requests.
//!
//! - `api-bench`: the Kubernetes API through kube-rs against the embedded store underneath.
//! - `eve-bench`: the EVE controllers at fleet scale (daemon sets, rollouts).
//! - `device-bench`: the EVE device API against the in-process floor.
//! - `telemetry-api-bench`: device telemetry through the device API (ingest, query, follow).
//! - `hostile-bench`: both ports under hostile load, against a clean run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

/// The `adamant` binary: `explicit`, or the one next to the running benchmark.
pub fn adamant_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(path) => Ok(path),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("adamant")),
    }
}

/// `adamant serve` in a child process.
pub struct Server {
    child: Child,
    kubeconfig: PathBuf,
    /// The ready line the server logged (names its addresses).
    pub ready: String,
    dir: Option<tempfile::TempDir>,
}

/// The CPU time process `pid` has used so far (user + system), from `/proc/PID/stat`.
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name and state.
    let total = ticks(11) + ticks(12);
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis(total * 1000 / hz)
}

impl Server {
    /// Starts `adamant serve` on a fresh data directory, with `extra` arguments.
    pub fn start(binary: &PathBuf, extra: &[&str]) -> anyhow::Result<Server> {
        Server::start_in(binary, tempfile::tempdir()?, extra)
    }

    /// Starts `adamant serve` on the data directory `dir` (fresh, or one a stopped server left).
    /// The benchmarks measure capacity: budgets per device and address stay out of the way
    /// (their own costs are in every request all the same).
    pub fn start_in(
        binary: &PathBuf,
        dir: tempfile::TempDir,
        extra: &[&str],
    ) -> anyhow::Result<Server> {
        let capacity = [
            "--device-requests-per-minute",
            "100000000",
            "--device-bytes-per-minute",
            "100000000000",
            "--device-stranger-requests-per-minute",
            "100000000",
        ];
        Server::launch(binary, dir, &[&capacity[..], extra].concat())
    }

    /// Starts `adamant serve` with its default limits and budgets (and `extra`), as a server
    /// facing the internet runs.
    pub fn start_defended(binary: &PathBuf, extra: &[&str]) -> anyhow::Result<Server> {
        Server::launch(binary, tempfile::tempdir()?, extra)
    }

    fn launch(binary: &PathBuf, dir: tempfile::TempDir, extra: &[&str]) -> anyhow::Result<Server> {
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--device-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("ADAMANT_BENCH_RUST_LOG")
                    .unwrap_or_else(|_| "warn,adamant=info".into()),
            )
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("adamant is ready"))
            .context("adamant serve did not start")?;
        // The server's log is dropped, or kept in the file `ADAMANT_BENCH_LOG` names.
        let mut log = std::env::var_os("ADAMANT_BENCH_LOG").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        std::thread::spawn(move || {
            use std::io::Write;
            for line in lines.map_while(Result::ok) {
                if let Some(file) = log.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        Ok(Server {
            child,
            kubeconfig: dir.path().join("kubeconfig"),
            ready,
            dir: Some(dir),
        })
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir
            .as_ref()
            .map_or(std::path::Path::new(""), |d| d.path())
    }

    /// Stops the server as an operator would (SIGTERM, then waits for it to exit) and hands
    /// back its data directory.
    pub fn stop(mut self) -> anyhow::Result<tempfile::TempDir> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        self.child.wait()?;
        self.dir.take().context("no data directory")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPU time the server has used so far (user + system).
    pub fn cpu(&self) -> Duration {
        cpu_of(self.child.id())
    }

    /// Waits until the server is quiet (it used under 5 % of a core over a second), at most
    /// `limit`; returns its CPU share in the last second (of one core), so that a measurement
    /// taken next is not charged with the work of the one before (onboarding's DeviceConfig
    /// writes, heartbeats) and the fleet's idle cost is reported apart.
    pub async fn settle(&self, limit: Duration) -> f64 {
        let started = std::time::Instant::now();
        loop {
            let before = self.cpu();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let share = self.cpu().saturating_sub(before).as_secs_f64();
            if share < 0.05 || started.elapsed() >= limit {
                return share;
            }
        }
    }

    /// Starts a new peak: the server's peak resident memory (`VmHWM`) is reset to its resident
    /// memory now (Linux: `5` written to `/proc/PID/clear_refs`), so that [`Server::memory`]'s
    /// peak is then the highest since this call, not since the server started.
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        let path = format!("/proc/{}/clear_refs", self.child.id());
        std::fs::write(&path, "5").with_context(|| format!("resetting the peak through {path}"))
    }

    /// The server's resident and peak memory, in MiB (the peak since it started, or since the
    /// last [`Server::reset_peak`]).
    pub fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The server's open file descriptors.
    pub fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| d.count())
    }

    /// A client of the admin kubeconfig (one connection per client).
    pub async fn client(&self) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Throughput and latency of one measurement.
pub struct Figures {
    /// Requests per second.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// The figures of `latencies` measured over `elapsed`.
pub fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default()
    };
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Runs `requests` operations over `clients` concurrent tasks; `op(client, i)` is one request.
pub async fn measure<C, F, Fut>(clients: &[C], requests: usize, op: F) -> anyhow::Result<Figures>
where
    C: Clone + Send + 'static,
    F: Fn(C, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        let client = client.clone();
        let op = op.clone();
        // Request i goes to client i % clients: every request is made, whatever the division.
        let mine: Vec<usize> = (c..requests).step_by(clients.len()).collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            for i in mine {
                let began = Instant::now();
                op(client.clone(), i).await?;
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(figures(all, start.elapsed()))
}

/// Simulated devices, each behind its own lock (one request at a time, as EVE).
pub type Fleet = Vec<std::sync::Arc<tokio::sync::Mutex<device_sim::Device>>>;

/// Onboards devices `bench-NNNNNN` until `fleet` holds `target` (each from its own loopback
/// address, registered with `onboard`, then one config poll), `concurrency` at a time.
pub async fn grow(
    fleet: &mut Fleet,
    controller: &device_sim::Controller,
    onboard: &device_sim::Identity,
    target: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut made = Vec::new();
    for i in fleet.len()..target {
        let name = format!("bench-{i:06}");
        let mut device = device_sim::Device::new(
            controller.clone(),
            device_sim::Identity::generate(&name)?,
            Some(onboard.clone()),
            &name,
        )?;
        let n = i as u32 + 2;
        device.source = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            127,
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
        )));
        made.push(std::sync::Arc::new(tokio::sync::Mutex::new(device)));
    }
    let results: Vec<_> = futures::stream::iter(made.clone())
        .map(|device| async move {
            let mut device = device.lock().await;
            device.onboard().await?;
            device.poll_config().await?;
            // As EVE does once onboarded: its Device turns Ready here, not at a later request.
            let address = device.source.map(|a| a.to_string()).unwrap_or_default();
            device.report_device("14.5.0", &address).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for result in results {
        result?;
    }
    fleet.extend(made);
    Ok(started.elapsed())
}

/// Creates the namespace `name`.
pub async fn namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// Waits until `count` applications in `ns` are bound to a device; returns when.
pub async fn bound(client: &Client, ns: &str, count: usize) -> anyhow::Result<Instant> {
    use kube::ResourceExt;
    use kube::runtime::watcher;
    let api: Api<eve_model::Application> = Api::namespaced(client.clone(), ns);
    let mut events = watcher(api, watcher::Config::default()).boxed();
    let mut seen = std::collections::HashSet::new();
    while let Some(event) = events.next().await {
        match event? {
            watcher::Event::Apply(app) | watcher::Event::InitApply(app)
                if app.spec.node_name.is_some() =>
            {
                seen.insert(app.name_any());
            }
            watcher::Event::Delete(app) => {
                seen.remove(&app.name_any());
            }
            _ => {}
        }
        if seen.len() >= count {
            return Ok(Instant::now());
        }
    }
    anyhow::bail!("the application watch ended")
}

/// How much the counter sample `name` grew from `before` to `after` (samples as [`counters`]
/// reads them; an absent one counts as 0).
pub fn delta(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    name: &str,
) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

/// The server's counters on `/metrics` (samples of `counter` families: name and labels, the
/// `_total` suffix left on), read through `client`.
pub async fn counters(client: &Client) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(name, _)| {
            name.split('{')
                .next()
                .is_some_and(|n| n.ends_with("_total"))
        })
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect())
}

/// The writes the server answered between two readings of [`counters`], by verb, resource and
/// subresource (successful ones: 2xx), most first.
pub fn writes_between(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> Vec<(String, f64)> {
    let mut writes: std::collections::BTreeMap<String, f64> = Default::default();
    for (sample, value) in after {
        let Some(labels) = sample.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('}').trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let verb = label("verb");
        if !matches!(
            verb.as_str(),
            "create" | "update" | "patch" | "apply" | "delete"
        ) || !label("code").starts_with('2')
        {
            continue;
        }
        let mut what = format!("{verb} {}", label("resource"));
        let subresource = label("subresource");
        if !subresource.is_empty() {
            what = format!("{what}/{subresource}");
        }
        *writes.entry(what).or_default() += value - before.get(sample).copied().unwrap_or(0.0);
    }
    let mut writes: Vec<(String, f64)> = writes.into_iter().filter(|(_, n)| *n > 0.0).collect();
    writes.sort_by(|a, b| b.1.total_cmp(&a.1));
    writes
}
