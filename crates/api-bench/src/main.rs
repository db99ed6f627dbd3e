//! `api-bench`: measures `adamant serve` through a real Kubernetes client (kube-rs, HTTPS,
//! client certificates), and the embedded store underneath it with the same operations as a
//! baseline in the same run, and prints a Markdown report (the figures of
//! `docs/benchmarks.md`).
//!
//! Workloads: create, get, update (PUT) and list (100 objects) with 1, 16 and 64 concurrent
//! clients; how create and get latency grow with 0, 10,000 and 100,000 stored objects; a list of
//! 100,000 objects (whole and in pages of 500) with the server's peak memory; watch delivery
//! to 1,000 watchers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use api_bench::{Figures, Server, figures, measure, ms, namespace};
use bytes::Bytes;
use clap::Parser;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use storage::{ListRequest, Store, WriteOptions};
use storage_embedded::{EmbeddedStore, Options};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Adamant's Kubernetes API")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<PathBuf>,
    /// Requests per measurement (split over the clients).
    #[arg(long, default_value_t = 3_000)]
    requests: usize,
    /// Objects in the big list.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Watchers in the fan-out measurement.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Events written in the fan-out measurement.
    #[arg(long, default_value_t = 50)]
    events: usize,
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("bench".to_string(), "yes".to_string())].into()),
            ..Default::default()
        },
        data: Some([("value".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

/// The rows of the create/get/update/list figures at one concurrency.
fn table_rows(clients: usize, figures: [Figures; 4]) -> Vec<String> {
    ["create", "get", "update", "list (100 objects)"]
        .into_iter()
        .zip(figures)
        .map(|(verb, f)| {
            format!(
                "| {verb} | {clients} | {:.0} | {} | {} |",
                f.per_second,
                ms(f.p50),
                ms(f.p99)
            )
        })
        .collect()
}

async fn api_rows(server: &Server, requests: usize) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    let setup = server.client().await?;
    namespace(&setup, "listed").await?;
    let listed: Api<ConfigMap> = Api::namespaced(setup.clone(), "listed");
    for i in 0..100 {
        listed
            .create(&PostParams::default(), &config_map(&format!("l{i}"), "x"))
            .await?;
    }
    for clients in [1usize, 16, 64] {
        let ns = format!("c{clients}");
        namespace(&setup, &ns).await?;
        let mut apis = Vec::new();
        for _ in 0..clients {
            apis.push(Api::<ConfigMap>::namespaced(server.client().await?, &ns));
        }
        let create = measure(&apis, requests, |api: Api<ConfigMap>, i| async move {
            api.create(&PostParams::default(), &config_map(&format!("o{i}"), "0"))
                .await?;
            Ok(())
        })
        .await?;
        let get = measure(&apis, requests, |api: Api<ConfigMap>, i| async move {
            api.get(&format!("o{i}")).await?;
            Ok(())
        })
        .await?;
        let update = measure(&apis, requests, |api: Api<ConfigMap>, i| async move {
            api.replace(
                &format!("o{i}"),
                &PostParams::default(),
                &config_map(&format!("o{i}"), "1"),
            )
            .await?;
            Ok(())
        })
        .await?;
        let listers: Vec<Api<ConfigMap>> = apis
            .iter()
            .map(|a| Api::namespaced(a.clone().into_client(), "listed"))
            .collect();
        let list = measure(
            &listers,
            (requests / 5).max(clients),
            |api: Api<ConfigMap>, _| async move {
                api.list(&ListParams::default()).await?;
                Ok(())
            },
        )
        .await?;
        rows.extend(table_rows(clients, [create, get, update, list]));
    }
    Ok(rows)
}

async fn store_rows(requests: usize) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(
        dir.path().join("store.redb"),
        Options::default(),
    )?);
    let value = Bytes::from(serde_json::to_vec(&config_map("o", "0"))?);
    let mut rows = Vec::new();
    for i in 0..100 {
        store
            .create(
                Bytes::from(format!("/listed/l{i}")),
                value.clone(),
                WriteOptions::default(),
            )
            .await?;
    }
    for clients in [1usize, 16, 64] {
        let stores = vec![store.clone(); clients];
        let v = value.clone();
        let create = measure(&stores, requests, move |s: Arc<dyn Store>, i| {
            let v = v.clone();
            async move {
                s.create(
                    Bytes::from(format!("/c{clients}/o{i}")),
                    v,
                    WriteOptions::default(),
                )
                .await?;
                Ok(())
            }
        })
        .await?;
        let get = measure(&stores, requests, move |s: Arc<dyn Store>, i| async move {
            s.get(format!("/c{clients}/o{i}").as_bytes(), None).await?;
            Ok(())
        })
        .await?;
        let v = value.clone();
        let update = measure(&stores, requests, move |s: Arc<dyn Store>, i| {
            let v = v.clone();
            async move {
                let key = format!("/c{clients}/o{i}");
                let current = s.get(key.as_bytes(), None).await?.kv.context("present")?;
                s.update(
                    Bytes::from(key),
                    v,
                    current.mod_revision,
                    WriteOptions::default(),
                )
                .await?;
                Ok(())
            }
        })
        .await?;
        let list = measure(
            &stores,
            (requests / 5).max(clients),
            |s: Arc<dyn Store>, _| async move {
                s.list(ListRequest {
                    prefix: Bytes::from_static(b"/listed/"),
                    start_after: None,
                    limit: 0,
                    revision: None,
                })
                .await?;
                Ok(())
            },
        )
        .await?;
        rows.extend(table_rows(clients, [create, get, update, list]));
    }
    Ok(rows)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# api-bench\n\n{cpus} CPUs; {} requests per measurement\n",
        args.requests
    );

    let server = Server::start(&binary, &[])?;
    let (rss, _) = server.memory();
    println!("Server memory after start: {rss:.0} MiB RSS\n");
    println!("## Requests through the API (kube-rs over HTTPS), one connection per client\n");
    println!("| operation | clients | per second | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for row in api_rows(&server, args.requests).await? {
        println!("{row}");
    }
    println!("\n## Baseline: the same operations on the embedded store, in process\n");
    println!("| operation | clients | per second | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for row in store_rows(args.requests).await? {
        println!("{row}");
    }

    // Growth with the number of stored objects, and the big list.
    println!("\n## Cost against the number of stored objects (16 clients)\n");
    println!(
        "| stored objects | create p50 ms | create p99 ms | get p50 ms | get p99 ms | server RSS MiB |\n|---|---|---|---|---|---|"
    );
    let setup = server.client().await?;
    namespace(&setup, "big").await?;
    let mut apis = Vec::new();
    for _ in 0..16 {
        apis.push(Api::<ConfigMap>::namespaced(server.client().await?, "big"));
    }
    let mut stored = 0usize;
    let probe = 1_600;
    for target in [0usize, 10_000, args.objects] {
        if target > stored {
            let fill = target - stored;
            let base = stored;
            measure(&apis, fill, move |api: Api<ConfigMap>, i| async move {
                api.create(
                    &PostParams::default(),
                    &config_map(&format!("b{}", base + i), "payload"),
                )
                .await?;
                Ok(())
            })
            .await?;
            stored = target;
        }
        let base = stored + 1_000_000;
        let create = measure(&apis, probe, move |api: Api<ConfigMap>, i| async move {
            api.create(
                &PostParams::default(),
                &config_map(&format!("p{}", base + i), "probe"),
            )
            .await?;
            Ok(())
        })
        .await?;
        let get = measure(&apis, probe, move |api: Api<ConfigMap>, i| async move {
            api.get(&format!("p{}", base + i)).await?;
            Ok(())
        })
        .await?;
        let (rss, _) = server.memory();
        println!(
            "| {target} | {} | {} | {} | {} | {rss:.0} |",
            ms(create.p50),
            ms(create.p99),
            ms(get.p50),
            ms(get.p99)
        );
    }
    let total = apis[0].list(&ListParams::default().limit(1)).await?;
    let _ = total;
    let (_, peak_before) = server.memory();
    let started = Instant::now();
    let all = apis[0].list(&ListParams::default()).await?;
    let whole = started.elapsed();
    let (_, peak_after) = server.memory();
    let started = Instant::now();
    let mut paged = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = apis[0].list(&params).await?;
        paged += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let pages = started.elapsed();
    println!(
        "\n## List of {} objects\n\n- one unpaged list: {} ms; server peak memory {peak_before:.0} MiB before, {peak_after:.0} MiB after\n- pages of 500 (as kubectl): {} objects in {} ms\n",
        all.items.len(),
        whole.as_millis(),
        paged,
        pages.as_millis()
    );

    // Watch fan-out.
    let watch_client = server.client().await?;
    namespace(&watch_client, "watched").await?;
    let watched: Api<ConfigMap> = Api::namespaced(watch_client.clone(), "watched");
    let rv = watched
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut watchers = Vec::new();
    let mut connections = Vec::new();
    for w in 0..args.watchers {
        if w % 100 == 0 {
            connections.push(server.client().await?);
        }
        let api: Api<ConfigMap> =
            Api::namespaced(connections.last().expect("one").clone(), "watched");
        let stream = api.watch(&WatchParams::default().timeout(290), &rv).await?;
        let sender = sender.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(cm) = event {
                    let _ = sender.send((cm.metadata.name.unwrap_or_default(), Instant::now()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut written = std::collections::HashMap::new();
    let mut latencies = Vec::new();
    let fan_start = Instant::now();
    for e in 0..args.events {
        let name = format!("w{e}");
        written.insert(name.clone(), Instant::now());
        watched
            .create(&PostParams::default(), &config_map(&name, "w"))
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = args.events * args.watchers;
    while latencies.len() < expected {
        match tokio::time::timeout(Duration::from_secs(30), receiver.recv()).await {
            Ok(Some((name, at))) => latencies.push(at - written[&name]),
            _ => break,
        }
    }
    let delivered = latencies.len();
    let f = figures(latencies, fan_start.elapsed());
    println!(
        "## Watch fan-out\n\n{} watchers, {} creates: {delivered} of {expected} deliveries; from the start of the create request to the watcher's decoded event: p50 {} ms, p99 {} ms\n",
        args.watchers,
        args.events,
        ms(f.p50),
        ms(f.p99)
    );
    for w in watchers {
        w.abort();
    }
    Ok(())
}
