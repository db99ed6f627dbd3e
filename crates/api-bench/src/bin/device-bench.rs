//! `device-bench`: the EVE device API of `adamant serve` under simulated devices (`device-sim`):
//! the server's own CPU time per request (from /proc, since the devices share the machine) for a
//! 304 config poll, a config with changes and a metrics post; requests per second with 1,000 and
//! 10,000 devices; in the same run, the floor (a resumed TLS handshake, one signature check and
//! one signature, in process) and the ratio to it; devices per core at EVE's default intervals;
//! and the time from a daemon set's creation until its applications are bound (each device's
//! next poll gets it) and until every device has fetched it. Each simulated device reports its
//! `info` once onboarded, as EVE does (its Device turns Ready then); each measurement starts
//! once the server is quiet, and the server's idle CPU at each fleet size is reported apart.
//!
//! Requests are measured on the devices onboarded last. Onboarding 100,000 devices takes longer
//! than the 5-minute grace period, and the devices the bench onboarded first, silent since, are
//! marked so; a report from such a device turns its Device Ready again (a status write and an
//! Event), which a fleet reporting every minute does not pay on each metrics post.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use api_bench::{Fleet, Server, bound, grow, namespace};
use clap::Parser;
use device_sim::{Controller, Identity};
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks Adamant's EVE device API")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<std::path::PathBuf>,
    /// Fleet sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    devices: Vec<usize>,
    /// Requests per CPU measurement.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Concurrent requests.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(Clone, Copy)]
enum Call {
    Unchanged,
    Changed,
    Metrics,
}

/// Runs `requests` calls over the fleet; returns (server CPU per request, requests per second).
async fn measure(
    server: &Server,
    fleet: &Fleet,
    call: Call,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, f64)> {
    let name = match call {
        Call::Unchanged => "304 polls",
        Call::Changed => "configs with changes",
        Call::Metrics => "metrics posts",
    };
    eprintln!("measuring {requests} {name} over {} devices", fleet.len());
    let cpu = server.cpu();
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..requests)
        .map(|i| {
            // The devices onboarded last: live ones (see the module's documentation).
            let device = fleet[fleet.len() - 1 - i % fleet.len()].clone();
            async move {
                let mut device = device.lock().await;
                match call {
                    Call::Unchanged => {
                        anyhow::ensure!(device.poll_config().await?.is_none(), "expected 304");
                    }
                    Call::Changed => {
                        device.config_hash.clear();
                        anyhow::ensure!(device.poll_config().await?.is_some(), "expected 200");
                    }
                    Call::Metrics => device.metrics().await?,
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let used = server.cpu().saturating_sub(cpu);
    for result in results {
        result?;
    }
    Ok((
        used / requests as u32,
        requests as f64 / elapsed.as_secs_f64(),
    ))
}

/// The unavoidable work per request, in process: a resumed TLS handshake (both ends), one
/// signature check, one signature.
async fn floor(iterations: u32) -> anyhow::Result<(Duration, Duration, Duration)> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let root = pki::Authority::generate("floor-root")?;
    let leaf = root.issue_server("floor", &["localhost".to_string()])?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The server's own TLS configuration (its choice of cipher suite included).
    let mut server = https::server_config(&leaf.certificate_pem, &leaf.key_pem, &[])?;
    https::resume_sessions(&mut server)?;
    let server = Arc::new(server);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root.certificate_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = ServerName::try_from("localhost")?;
    let mut handshake = Duration::ZERO;
    for i in 0..=iterations {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let started = Instant::now();
        let (s, c) = tokio::join!(acceptor.accept(a), connector.connect(name.clone(), b));
        s?;
        c?;
        if i > 0 {
            // The first is a full handshake; the rest resume.
            handshake += started.elapsed();
        }
    }
    let device = Identity {
        certificate_pem: root.certificate_pem.clone().into_bytes(),
        key_pem: root.key_pem().into_bytes(),
    };
    let signer = eve_api::envelope::Signer::device(&device.key_pem, &device.certificate_pem)?;
    let payload = vec![7u8; 285];
    let started = Instant::now();
    let mut signature = Vec::new();
    for _ in 0..iterations {
        signature = signer.sign(&payload);
    }
    let sign = started.elapsed() / iterations;
    let started = Instant::now();
    for _ in 0..iterations {
        eve_api::envelope::verify(signer.public_key(), &payload, &signature)?;
    }
    let verify = started.elapsed() / iterations;
    Ok((handshake / iterations, verify, sign))
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# device-bench\n\n{cpus} CPUs; {} requests per CPU measurement, {} at a time\n",
        args.requests, args.concurrency
    );

    let (handshake, verify, sign) = floor(2_000).await?;
    let unavoidable = handshake + verify + sign;
    println!("## The floor (in process, same run)\n");
    println!("| work | µs |\n|---|---|");
    println!(
        "| resumed TLS 1.3 handshake, both ends | {} |",
        us(handshake)
    );
    println!("| one ECDSA P-256 signature check | {} |", us(verify));
    println!("| one ECDSA P-256 signature | {} |", us(sign));
    println!("| floor per request | {} |\n", us(unavoidable));

    let server = Server::start(&binary, &["--open-registration", "fleet"])
        .context("cannot start adamant serve")?;
    let client = server.client().await?;
    namespace(&client, "fleet").await?;
    let address: SocketAddr = server
        .ready
        .split("devices=https://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .context("no device API address")?
        .parse()?;
    let root = std::fs::read(server.data_dir().join("pki/root-certificate.pem"))?;
    let controller = Controller::new(address, "localhost", &root)?;
    let onboard = Identity::generate("bench-onboarding")?;

    println!("## Through the device API\n");
    println!(
        "| devices | onboarding (s) | 304 poll: server CPU µs | ratio to floor | per second | config with changes: CPU µs | per second | metrics: CPU µs | per second | server RSS MiB | settling after onboarding (s) | idle server CPU (% of a core) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut fleet: Fleet = Vec::new();
    let mut last = (Duration::ZERO, Duration::ZERO);
    for &size in &args.devices {
        let onboarding = grow(&mut fleet, &controller, &onboard, size, args.concurrency).await?;
        eprintln!("{size} devices onboarded; waiting for the server to settle");
        let settled = Instant::now();
        let idle = server.settle(Duration::from_secs(300)).await;
        let settling = settled.elapsed();
        let (unchanged, unchanged_rate) = measure(
            &server,
            &fleet,
            Call::Unchanged,
            args.requests,
            args.concurrency,
        )
        .await?;
        server.settle(Duration::from_secs(60)).await;
        let (changed, changed_rate) = measure(
            &server,
            &fleet,
            Call::Changed,
            args.requests / 2,
            args.concurrency,
        )
        .await?;
        server.settle(Duration::from_secs(60)).await;
        let (metrics, metrics_rate) = measure(
            &server,
            &fleet,
            Call::Metrics,
            args.requests,
            args.concurrency,
        )
        .await?;
        let (rss, _) = server.memory();
        println!(
            "| {size} | {:.1} | {} | {:.1} | {unchanged_rate:.0} | {} | {changed_rate:.0} | {} | {metrics_rate:.0} | {rss:.0} | {:.1} | {:.1} |",
            onboarding.as_secs_f64(),
            us(unchanged),
            unchanged.as_secs_f64() / unavoidable.as_secs_f64(),
            us(changed),
            us(metrics),
            settling.as_secs_f64(),
            idle * 100.0,
        );
        last = (unchanged, metrics);
    }
    // EVE's defaults: about 1.5 config polls (mostly 304) and 1.5 metrics posts a minute, plus
    // logs and info; count 4 requests a minute at the mean of the two costs.
    let per_request = (last.0 + last.1) / 2;
    let per_device_per_second = per_request.as_secs_f64() * 4.0 / 60.0;
    println!(
        "\nDevices per core at EVE's default intervals (4 requests a minute each, at {} µs of server CPU): {:.0}\n",
        us(per_request),
        1.0 / per_device_per_second
    );

    // A daemon set over the whole fleet: until every device's configuration carries it.
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
    classes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "bench-hub"}, "provisioner": "eve",
                "parameters": {"type": "container", "URL": "https://hub.example.com"},
            }))?,
        )
        .await?;
    let images: Api<eve_model::Image> = Api::namespaced(client.clone(), "fleet");
    images
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Image",
            "metadata": {"name": "agent"}, "spec": {"ref": "agent:1", "storageClass": "bench-hub"},
        }))?)
        .await?;
    let sets: Api<eve_model::ApplicationDaemonSet> = Api::namespaced(client.clone(), "fleet");
    server.settle(Duration::from_secs(120)).await;
    let waiting = tokio::spawn({
        let client = client.clone();
        let count = fleet.len();
        async move { bound(&client, "fleet", count).await }
    });
    let counted = api_bench::counters(&client).await?;
    let started = Instant::now();
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "ApplicationDaemonSet",
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent"}]},
            }},
        }))?,
    )
    .await?;
    eprintln!("the daemon set is created");
    let results: Vec<_> = futures::stream::iter(fleet.clone())
        .map(|device| async move {
            let mut device = device.lock().await;
            loop {
                device.poll_config().await?;
                if device.config.as_ref().is_some_and(|c| !c.apps.is_empty()) {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    for result in results {
        result?;
    }
    let fetched = started.elapsed();
    let bound = waiting.await?? - started;
    println!(
        "A daemon set over {} devices: created → every application exists and is bound (so every \
         device's next poll gets it): {:.1} s; → every device has fetched it ({} at a time, \
         each polling again 200 ms after a configuration without it): {:.1} s",
        fleet.len(),
        bound.as_secs_f64(),
        args.concurrency,
        fetched.as_secs_f64()
    );
    // What the server did for it, from its own counters (the daemon set's writes continue a
    // little after the last device fetched; the server is given time to settle first).
    server.settle(Duration::from_secs(60)).await;
    let now = api_bench::counters(&client).await?;
    let per_device = |n: f64| n / fleet.len() as f64;
    println!("\nWhat the server wrote for it, per device (from `apiserver_request_total`):\n");
    println!("| write | count | per device |\n|---|---|---|");
    for (what, n) in api_bench::writes_between(&counted, &now) {
        println!("| {what} | {n:.0} | {:.2} |", per_device(n));
    }
    let composed = api_bench::delta(&counted, &now, "eve_device_api_config_compositions_total");
    println!(
        "| (configurations composed) | {composed:.0} | {:.2} |",
        per_device(composed)
    );
    Ok(())
}
