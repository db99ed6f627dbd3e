//! `eve-bench`: the EVE controllers of `adamant serve` at fleet scale, through the Kubernetes
//! API, with the raw API cost of the same writes as the baseline in the same run; prints the
//! Markdown of `docs/benchmarks.md`.
//!
//! - A daemon set over N devices (10,000 by default): time from its creation until every device
//!   has its application, bound; then until the server is quiet again (every DeviceConfig
//!   written), with its CPU and the writes it answered per device; the server's memory before
//!   and after. `--daemon-set-only` stops there.
//! - Baseline: the same N applications created directly by 16 clients.
//! - A deployment over M devices (1,000): time until all replicas are available (a simulated
//!   fleet reports `RUNNING` for every bound application through the status subresource), then
//!   a template change rolled out with `maxUnavailable: 10%`, and the fewest available
//!   replicas seen meanwhile.
//! - Two bursts of N changes after the daemon set (an annotation of another domain on each
//!   Device, then a label): how long the server takes to absorb each, its memory, and the work
//!   it did from its own counters.
//! - A watcher that reads nothing during a third burst: its watch is ended, not buffered for;
//!   it catches up from the store's history and by listing again, losing no update.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use api_bench::{Server, bound, measure, namespace};
use clap::Parser;
use eve_model::{Application, ApplicationDaemonSet, ApplicationDeployment, Device, Image};
use futures::StreamExt;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Adamant's EVE controllers at fleet scale")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<std::path::PathBuf>,
    /// Devices of the daemon set.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Devices (and replicas) of the rollout.
    #[arg(long, default_value_t = 1_000)]
    rollout_devices: usize,
    /// Only the daemon set's creation: no bursts, baseline or rollout.
    #[arg(long)]
    daemon_set_only: bool,
}

fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

/// The namespace, an eve StorageClass and two Images.
async fn base(client: &Client, ns: &str) -> anyhow::Result<()> {
    namespace(client, ns).await?;
    let classes: Api<StorageClass> = Api::all(client.clone());
    if classes.get_opt("eve-hub").await?.is_none() {
        classes
            .create(
                &PostParams::default(),
                &object(json!({
                    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": "eve-hub"}, "provisioner": "eve",
                    "parameters": {"type": "container", "URL": "https://hub.example.com"},
                })),
            )
            .await?;
    }
    let images: Api<Image> = Api::namespaced(client.clone(), ns);
    for (name, reference) in [("agent", "agent:1"), ("agent2", "agent:2")] {
        images
            .create(
                &PostParams::default(),
                &object(json!({
                    "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Image",
                    "metadata": {"name": name},
                    "spec": {"ref": reference, "storageClass": "eve-hub"},
                })),
            )
            .await?;
    }
    Ok(())
}

/// Creates `count` Devices in `ns` from 16 clients; returns the time it took.
async fn devices(server: &Server, ns: &str, count: usize) -> anyhow::Result<Duration> {
    let mut apis = Vec::new();
    for _ in 0..16 {
        apis.push(Api::<Device>::namespaced(server.client().await?, ns));
    }
    let started = Instant::now();
    measure(&apis, count, |api: Api<Device>, i| async move {
        let device: Device = object(json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Device",
            "metadata": {"name": format!("dev-{i:06}"), "labels": {"kubernetes.io/os": "eve", "site": format!("s{}", i % 10)}},
            "spec": {"serial": format!("serial-{i:06}")},
        }));
        api.create(&PostParams::default(), &device).await?;
        Ok(())
    })
    .await?;
    Ok(started.elapsed())
}

fn template(image: &str, label: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": label}},
        "spec": {
            "nodeSelector": {"kubernetes.io/os": "eve"},
            "containers": [{"name": label, "image": image}],
        },
    })
}

/// The daemon set over `count` new Devices of `fleet`, reported until every Application is bound
/// and then until every DeviceConfig is written. Returns the client it used.
async fn daemon_set(server: &Server, count: usize) -> anyhow::Result<Client> {
    let client = server.client().await?;
    base(&client, "fleet").await?;
    let took = devices(server, "fleet", count).await?;
    let (rss_before, _) = server.memory();
    println!(
        "{count} Devices created through the API (16 clients) in {:.1} s; server RSS {rss_before:.0} MiB\n",
        took.as_secs_f64()
    );
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { bound(&client, "fleet", count).await }
    });
    let api: Api<ApplicationDaemonSet> = Api::namespaced(client.clone(), "fleet");
    server.settle(Duration::from_secs(300)).await;
    let before = api_bench::counters(&client).await?;
    let cpu = server.cpu();
    let started = Instant::now();
    eprintln!("the daemon set is created");
    api.create(
        &PostParams::default(),
        &object(json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "ApplicationDaemonSet",
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", "agent")},
        })),
    )
    .await?;
    let done = waiting.await??;
    let elapsed = done - started;
    let bound_cpu = server.cpu().saturating_sub(cpu);
    let (quiet, used) = quiet_again(server, started, cpu).await;
    let after = api_bench::counters(&client).await?;
    let (rss, peak) = server.memory();
    println!("| measurement | figure |\n|---|---|");
    println!(
        "| daemon set created → {count} applications exist, bound (every device's next poll gets it) | {:.1} s ({:.0} applications/s; server CPU {:.1} s) |",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        bound_cpu.as_secs_f64()
    );
    println!(
        "| → the server quiet again (every DeviceConfig written) | {:.1} s (server CPU {:.1} s, {:.0} µs a device) |",
        quiet.as_secs_f64(),
        used.as_secs_f64(),
        used.as_secs_f64() * 1e6 / count as f64
    );
    let delta = |name: &str| api_bench::delta(&before, &after, name);
    println!(
        "| configurations composed | {:.2} a device |",
        delta("eve_device_api_config_compositions_total") / count as f64
    );
    println!(
        "| daemon-set plans | {:.0} |",
        delta("eve_controller_plans_total{kind=\"daemon_set\"}")
    );
    for (what, n) in api_bench::writes_between(&before, &after) {
        println!("| writes: {what} | {:.2} a device |", n / count as f64);
    }
    println!("| server RSS before / after | {rss_before:.0} MiB / {rss:.0} MiB |");
    println!("| server peak RSS (whole run so far) | {peak:.0} MiB |");
    Ok(client)
}

/// Waits (up to 10 minutes) for the server to be quiet again, and returns
/// the time since `started` and the server's CPU since it read `cpu`.
async fn quiet_again(server: &Server, started: Instant, cpu: Duration) -> (Duration, Duration) {
    server.settle(Duration::from_secs(600)).await;
    // `settle` returns after a quiet second: that second is not the server's.
    let quiet = started.elapsed().saturating_sub(Duration::from_secs(1));
    (quiet, server.cpu().saturating_sub(cpu))
}

/// After the daemon set over `count` Devices: two bursts of changes, a watcher that falls
/// behind, and the baseline of the same number of Applications written straight through the API.
async fn after_daemon_set(server: &Server, client: &Client, count: usize) -> anyhow::Result<()> {
    let client = client.clone();
    let annotation =
        |_: usize| json!({"metadata": {"annotations": {"bench.adamant.dev/burst": "1"}}});
    let other = "An annotation of another domain (`bench.adamant.dev/burst`) on each Device";
    burst(server, &client, count, other, annotation).await?;
    let label = |i: usize| json!({"metadata": {"labels": {"rack": format!("r{}", i % 7)}}});
    let read = "A label on each Device (`rack`), which placement and configurations read but no \
                selector of this namespace names";
    burst(server, &client, count, read, label).await?;
    behind(server, &client, count).await?;

    // Baseline: the same number of applications written straight through the API.
    namespace(&client, "baseline").await?;
    let images: Api<Image> = Api::namespaced(client.clone(), "baseline");
    images
        .create(
            &PostParams::default(),
            &object(json!({
                "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Image",
                "metadata": {"name": "agent"},
                "spec": {"ref": "agent:1", "storageClass": "eve-hub"},
            })),
        )
        .await?;
    let mut apis = Vec::new();
    for _ in 0..16 {
        apis.push(Api::<Application>::namespaced(
            server.client().await?,
            "baseline",
        ));
    }
    let started = Instant::now();
    measure(&apis, count, |api: Api<Application>, i| async move {
        let mut app = template("agent", "agent");
        app["apiVersion"] = "eve.lfedge.org/v1beta1".into();
        app["kind"] = "Application".into();
        app["metadata"]["name"] = format!("agent-{i:06}").into();
        let app: Application = object(app);
        api.create(&PostParams::default(), &app).await?;
        Ok(())
    })
    .await?;
    let baseline = started.elapsed();
    println!(
        "| baseline: {count} applications created by 16 clients through the API | {:.1} s ({:.0}/s) |",
        baseline.as_secs_f64(),
        count as f64 / baseline.as_secs_f64()
    );
    Ok(())
}

/// Reports `RUNNING` for every bound application of `ns`, as the fleet's devices would.
fn simulate_fleet(client: Client, ns: &str) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let api: Api<Application> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
        let (send, receive) = tokio::sync::mpsc::unbounded_channel::<String>();
        let receive = Arc::new(tokio::sync::Mutex::new(receive));
        for _ in 0..16 {
            let api = api.clone();
            let receive = receive.clone();
            tokio::spawn(async move {
                loop {
                    let Some(name) = receive.lock().await.recv().await else {
                        return;
                    };
                    let status = json!({"status": {"state": "RUNNING"}});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await;
                }
            });
        }
        let mut reported = HashSet::new();
        while let Some(event) = events.next().await {
            if let watcher::Event::Apply(app) | watcher::Event::InitApply(app) = event? {
                let running =
                    app.status.as_ref().and_then(|s| s.state.as_deref()) == Some("RUNNING");
                let uid = app.uid().unwrap_or_default();
                if app.spec.node_name.is_some()
                    && !running
                    && app.metadata.deletion_timestamp.is_none()
                    && reported.insert(uid)
                {
                    let _ = send.send(app.name_any());
                }
            }
        }
        Ok(())
    })
}

async fn rollout(server: &Server, count: usize) -> anyhow::Result<()> {
    let client = server.client().await?;
    base(&client, "rollout").await?;
    devices(server, "rollout", count).await?;
    let fleet = simulate_fleet(server.client().await?, "rollout");
    let api: Api<ApplicationDeployment> = Api::namespaced(client.clone(), "rollout");
    let started = Instant::now();
    api.create(
        &PostParams::default(),
        &object(json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "ApplicationDeployment",
            "metadata": {"name": "agent"},
            "spec": {
                "replicas": count,
                "selector": {"matchLabels": {"app": "agent"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}},
                "template": template("agent", "agent"),
            },
        })),
    )
    .await?;
    // Polls the deployment's status until the rollout of `generation` is complete; returns
    // the fewest available replicas seen meanwhile.
    let settled = |generation: i64| {
        let api = api.clone();
        async move {
            let mut least = i64::MAX;
            loop {
                let d = api.get("agent").await?;
                let s = d.status.unwrap_or_default();
                if s.observed_generation.unwrap_or(0) >= generation {
                    least = least.min(s.available_replicas as i64);
                    if s.updated_replicas as usize == count
                        && s.available_replicas as usize == count
                        && s.replicas as usize == count
                    {
                        return anyhow::Ok(least);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    settled(1).await?;
    let first = started.elapsed();
    let started = Instant::now();
    let change = json!({"spec": {"template": template("agent2", "agent")}});
    let changed = api
        .patch("agent", &PatchParams::default(), &Patch::Merge(&change))
        .await?;
    let least = settled(changed.metadata.generation.unwrap_or(2)).await?;
    let rolled = started.elapsed();
    fleet.abort();
    println!(
        "| deployment of {count} replicas created → all available (the fleet reports RUNNING) | {:.1} s |",
        first.as_secs_f64()
    );
    println!(
        "| template changed → {count} updated and available, `maxUnavailable: 10%`, `maxSurge: 0` | {:.1} s |",
        rolled.as_secs_f64()
    );
    println!(
        "| fewest available replicas seen during the rollout (allowed: {}) | {least} |",
        count - count / 10
    );
    Ok(())
}

/// Merges `patch(i)` into each of the daemon set's `count` Devices, 16 clients at once.
async fn patch_devices(
    server: &Server,
    count: usize,
    patch: impl Fn(usize) -> serde_json::Value + Send + Sync + Clone + 'static,
) -> anyhow::Result<()> {
    let mut apis = Vec::new();
    for _ in 0..16 {
        apis.push(Api::<Device>::namespaced(server.client().await?, "fleet"));
    }
    measure(&apis, count, move |api: Api<Device>, i| {
        let patch = patch(i);
        async move {
            api.patch(
                &format!("dev-{i:06}"),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
            Ok(())
        }
    })
    .await?;
    Ok(())
}

/// A watcher of the daemon set's `count` Devices that reads nothing while a burst labels every
/// one of them: the server ends its watch rather than buffer for it (the server's memory is
/// reported). The watcher then catches up twice, as a client does: by watching again from the
/// last revision it was sent (the store's history), and by listing again in pages of 500. Each
/// way must see every Device labelled: no update lost.
async fn behind(server: &Server, client: &Client, count: usize) -> anyhow::Result<()> {
    use kube::api::{ListParams, WatchEvent, WatchParams};
    server.settle(Duration::from_secs(300)).await;
    server.reset_peak()?;
    let (rss_before, _) = server.memory();
    let api: Api<Device> = Api::namespaced(client.clone(), "fleet");
    let version = api
        .list_metadata(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .context("a list without a resourceVersion")?;
    // Opened, and then not read while the burst runs.
    let mut slow = api
        .watch(&WatchParams::default().timeout(290), &version)
        .await?
        .boxed();
    let cpu = server.cpu();
    eprintln!("the burst starts with a watcher that does not read");
    let started = Instant::now();
    patch_devices(
        server,
        count,
        |i: usize| json!({"metadata": {"labels": {"row": format!("w{}", i % 5)}}}),
    )
    .await?;
    let written = started.elapsed();
    server.settle(Duration::from_secs(600)).await;
    let burst_cpu = server.cpu().saturating_sub(cpu);
    let (rss, peak) = server.memory();

    // What the slow watcher was sent, and how its watch ended.
    let labelled = |d: &Device| d.labels().contains_key("row");
    let mut seen = HashSet::new();
    let mut last = version.clone();
    let mut ended = "the server closed it".to_string();
    let drained = Instant::now();
    loop {
        let event = match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                ended = "still open, nothing more for 10 s: every event was kept for it".into();
                break;
            }
        };
        match event? {
            WatchEvent::Added(d) | WatchEvent::Modified(d) => {
                last = d.resource_version().unwrap_or_default();
                if labelled(&d) {
                    seen.insert(d.name_any());
                }
            }
            WatchEvent::Bookmark(b) => last = b.metadata.resource_version,
            WatchEvent::Deleted(_) => {}
            WatchEvent::Error(e) => {
                ended = format!("{} {}: {}", e.code, e.reason, e.message);
                break;
            }
        }
    }
    let sent = seen.len();
    let drained = drained.elapsed();

    // Catching up from the last revision it was sent.
    let cpu = server.cpu();
    let started = Instant::now();
    let mut resumed = api
        .watch(&WatchParams::default().timeout(60), &last)
        .await?
        .boxed();
    let mut resumed_end = String::new();
    while seen.len() < count {
        match tokio::time::timeout(Duration::from_secs(60), resumed.next()).await {
            Ok(Some(Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)))) => {
                if labelled(&d) {
                    seen.insert(d.name_any());
                }
            }
            Ok(Some(Ok(WatchEvent::Error(e)))) => {
                resumed_end = format!(", ended {} {}", e.code, e.reason);
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) | Err(_) => break,
        }
    }
    drop(resumed);
    let caught_up = started.elapsed();
    let caught_up_cpu = server.cpu().saturating_sub(cpu);
    let from_history = seen.len();

    // Listing again.
    let cpu = server.cpu();
    let started = Instant::now();
    let mut listed = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        listed += page.items.iter().filter(|d| labelled(d)).count();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let relisted = started.elapsed();
    let relisted_cpu = server.cpu().saturating_sub(cpu);

    println!("\n### A watcher that falls behind a burst of {count} changes\n");
    println!(
        "A watch of the {count} Devices opened and not read while a label (`row`) is put on \
         each, 16 clients at once; then read, and caught up.\n"
    );
    println!("| measurement | figure |\n|---|---|");
    println!(
        "| the {count} patches answered | {:.1} s ({:.0}/s); server CPU to quiet {:.1} s |",
        written.as_secs_f64(),
        count as f64 / written.as_secs_f64(),
        burst_cpu.as_secs_f64()
    );
    println!(
        "| server RSS before / after / peak during | {rss_before:.0} / {rss:.0} / {peak:.0} MiB |"
    );
    println!(
        "| the slow watcher, read afterwards | {sent} labelled Devices in {:.1} s, then: {ended} |",
        drained.as_secs_f64()
    );
    println!(
        "| watched again from its last revision | {from_history} of {count} labelled in {:.1} s \
         (server CPU {:.1} s{resumed_end}) |",
        caught_up.as_secs_f64(),
        caught_up_cpu.as_secs_f64()
    );
    println!(
        "| listed again, pages of 500 | {listed} of {count} labelled in {:.1} s (server CPU {:.1} s) |",
        relisted.as_secs_f64(),
        relisted_cpu.as_secs_f64()
    );
    anyhow::ensure!(
        from_history == count && listed == count,
        "an update was lost: {from_history} and {listed} of {count} Devices seen labelled"
    );
    Ok(())
}

/// A burst of `count` changes that move no configuration: `patch(i)` merged into each of the
/// daemon set's `count` Devices, 16 clients at once (`what` says what it is). Reports how long
/// the server took to absorb it, its memory, and what it did for it from its own counters:
/// each Device's configuration composed again at most once, no DeviceConfig or Application
/// written, the daemon set's plans coalesced.
async fn burst(
    server: &Server,
    client: &Client,
    count: usize,
    what: &str,
    patch: impl Fn(usize) -> serde_json::Value + Send + Sync + Clone + 'static,
) -> anyhow::Result<()> {
    server.settle(Duration::from_secs(300)).await;
    server.reset_peak()?;
    let (rss_before, _) = server.memory();
    let before = api_bench::counters(client).await?;
    let cpu = server.cpu();
    eprintln!("the burst starts: {what}");
    let started = Instant::now();
    patch_devices(server, count, patch).await?;
    let written = started.elapsed();
    let (absorbed, used) = quiet_again(server, started, cpu).await;
    let (rss, peak) = server.memory();
    let after = api_bench::counters(client).await?;
    let delta = |name: &str| api_bench::delta(&before, &after, name);
    println!("\n### A burst of {count} changes that move no configuration\n");
    println!("{what}, 16 clients at once.\n\n| measurement | figure |\n|---|---|");
    println!(
        "| the {count} patches answered | {:.1} s ({:.0}/s) |",
        written.as_secs_f64(),
        count as f64 / written.as_secs_f64()
    );
    println!(
        "| → the server quiet again | {:.1} s (server CPU {:.1} s) |",
        absorbed.as_secs_f64(),
        used.as_secs_f64()
    );
    println!(
        "| server RSS before / after / peak during | {rss_before:.0} / {rss:.0} / {peak:.0} MiB |"
    );
    println!(
        "| configurations composed | {:.0} |",
        delta("eve_device_api_config_compositions_total")
    );
    println!(
        "| daemon-set plans | {:.0} |",
        delta("eve_controller_plans_total{kind=\"daemon_set\"}")
    );
    println!(
        "| namespace reconciles (applications examined) | {:.0} ({:.0}) |",
        delta("eve_controller_namespace_reconciles_total"),
        delta("eve_controller_namespace_applications_examined_total")
    );
    for (what, n) in api_bench::writes_between(&before, &after) {
        println!("| writes: {what} | {n:.0} |");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# eve-bench\n\n{cpus} CPUs\n");
    println!("## A daemon set over {} devices\n", args.devices);
    let server = Server::start(&binary, &[]).context("cannot start adamant serve")?;
    let client = daemon_set(&server, args.devices).await?;
    if args.daemon_set_only {
        return Ok(());
    }
    after_daemon_set(&server, &client, args.devices).await?;
    drop(server);
    println!(
        "\n## A rollout over {} devices\n\n| measurement | figure |\n|---|---|",
        args.rollout_devices
    );
    let server = Server::start(&binary, &[]).context("cannot start adamant serve")?;
    rollout(&server, args.rollout_devices).await?;
    Ok(())
}
