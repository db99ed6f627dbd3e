//! Both ports under hostile load. One `adamant serve` with its default limits and budgets;
//! well-behaved simulated devices polling their configuration at a steady rate and a kubectl-like
//! client listing ConfigMaps throughout; one fault at a time, each for the same length as a
//! clean run at the start of the same invocation. Loopback only, bounded in count and time.
//! Prints, per phase, what the well-behaved saw (requests, errors, p50, p99 and the p99 against
//! the clean run) and the server's peak memory and open descriptors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use api_bench::{Fleet, Server, grow, ms, namespace};
use clap::Parser;
use device_sim::{Controller, Identity};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

#[derive(Clone, Debug, Parser)]
#[command(about = "Both ports of adamant serve under hostile load, against a clean run")]
struct Args {
    /// The `adamant` binary (by default, next to this one).
    #[arg(long)]
    adamant: Option<std::path::PathBuf>,
    /// Well-behaved simulated devices.
    #[arg(long, default_value_t = 1_000)]
    devices: usize,
    /// Their configuration polls a second, all together.
    #[arg(long, default_value_t = 50)]
    polls: usize,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Idle TLS connections of that fault.
    #[arg(long, default_value_t = 5_000)]
    idle: usize,
}

/// What the well-behaved saw in a phase.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    errors: usize,
}

impl Seen {
    fn p(&mut self, q: f64) -> Duration {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len().max(1) - 1);
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Clean,
    IdleTls,
    SlowHeaders,
    SlowBodies,
    Garbage,
    HotDevice,
    UnreadWatches,
}

impl Fault {
    fn name(self, args: &Args) -> String {
        match self {
            Fault::Clean => "clean (no fault)".into(),
            Fault::IdleTls => format!("{} idle TLS connections (from 50 addresses)", args.idle),
            Fault::SlowHeaders => "500 connections sending a header line a second".into(),
            Fault::SlowBodies => "200 POSTs sending their body a byte a second".into(),
            Fault::Garbage => "random and truncated bodies, 200 a second, new connections".into(),
            Fault::HotDevice => "one device polling as fast as it can (4 at a time)".into(),
            Fault::UnreadWatches => {
                "50 watches never read while ConfigMaps change 20 times a second".into()
            }
        }
    }
}

/// A TLS client trusting `root`, optionally with a client certificate.
fn tls(root: &[u8], client: Option<(&[u8], &[u8])>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(root) {
        roots.add(certificate?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(
            CertificateDer::pem_slice_iter(chain).collect::<Result<Vec<_>, _>>()?,
            PrivateKeyDer::from_pem_slice(key)?,
        )?,
        None => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

fn attacker(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        200,
        (i / 250) as u8,
        (i % 250) as u8 + 1,
    ))
}

/// What the faults aim at.
#[derive(Clone)]
struct Target {
    devices: SocketAddr,
    api: SocketAddr,
    root: Vec<u8>,
    /// The admin's client certificate and key.
    admin: (Vec<u8>, Vec<u8>),
    client: kube::Client,
    /// The device that polls as fast as it can.
    hot: Option<Arc<tokio::sync::Mutex<device_sim::Device>>>,
}

/// Runs `fault` until `stop`; returns how many of its requests were made.
async fn run_fault(
    fault: Fault,
    args: &Args,
    target: Target,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<usize> {
    let Target {
        devices,
        api,
        root,
        admin,
        client,
        hot,
    } = target;
    let made = Arc::new(AtomicUsize::new(0));
    let connector = tls(&root, None)?;
    let name = ServerName::try_from("localhost")?;
    let mut held = Vec::new();
    match fault {
        Fault::Clean => {}
        Fault::IdleTls => {
            for i in 0..args.idle {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(tcp) = connect(attacker(i % 50), devices).await else {
                    continue;
                };
                if let Ok(stream) = connector.connect(name.clone(), tcp).await {
                    held.push(stream);
                    made.fetch_add(1, Ordering::Relaxed);
                }
            }
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Fault::SlowHeaders | Fault::SlowBodies => {
            let count = if fault == Fault::SlowHeaders {
                500
            } else {
                200
            };
            let mut tasks = Vec::new();
            for i in 0..count {
                let connector = connector.clone();
                let name = name.clone();
                let stop = stop.clone();
                let made = made.clone();
                tasks.push(tokio::spawn(async move {
                    let tcp = connect(attacker(i % 2), devices).await.ok()?;
                    let mut stream = connector.connect(name, tcp).await.ok()?;
                    made.fetch_add(1, Ordering::Relaxed);
                    let start: &[u8] = if fault == Fault::SlowHeaders {
                        b"POST /api/v2/edgedevice/register HTTP/1.1\r\nhost: localhost\r\n"
                    } else {
                        b"POST /api/v2/edgedevice/register HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100000\r\n\r\n"
                    };
                    stream.write_all(start).await.ok()?;
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let more: &[u8] = if fault == Fault::SlowHeaders { b"x-a: b\r\n" } else { b"x" };
                        stream.write_all(more).await.ok()?;
                    }
                    Some(())
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        Fault::Garbage => {
            let mut i = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                i += 1;
                let connector = connector.clone();
                let name = name.clone();
                let made = made.clone();
                tokio::spawn(async move {
                    let tcp = connect(attacker(i % 1000), devices).await.ok()?;
                    let mut stream = connector.connect(name, tcp).await.ok()?;
                    let mut body = vec![0u8; 64 + (i * 7919) % 4000];
                    for (j, b) in body.iter_mut().enumerate() {
                        *b = ((i * 31 + j * 17) % 251) as u8;
                    }
                    // Half declare more than they send (truncated).
                    let declared = if i.is_multiple_of(2) {
                        body.len()
                    } else {
                        body.len() * 2
                    };
                    let path = if i.is_multiple_of(3) {
                        "/api/v2/edgedevice/register".to_string()
                    } else {
                        format!("/api/v2/edgedevice/id/{i:08x}-0000-4000-8000-000000000000/config")
                    };
                    let head = format!(
                        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n"
                    );
                    stream.write_all(head.as_bytes()).await.ok()?;
                    stream.write_all(&body).await.ok()?;
                    let _ = stream.shutdown().await;
                    made.fetch_add(1, Ordering::Relaxed);
                    Some(())
                });
            }
        }
        Fault::HotDevice => {
            let hot = hot.context("no hot device")?;
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let hot = hot.clone();
                let stop = stop.clone();
                let made = made.clone();
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let mut device = hot.lock().await;
                        let _ = device.poll_config().await;
                        made.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        Fault::UnreadWatches => {
            let admin = tls(&root, Some((&admin.0, &admin.1)))?;
            for _ in 0..50 {
                let tcp = connect(IpAddr::V4(Ipv4Addr::LOCALHOST), api).await?;
                let mut stream = admin.connect(name.clone(), tcp).await?;
                stream
                    .write_all(b"GET /api/v1/namespaces/churn/configmaps?watch=true HTTP/1.1\r\nhost: localhost\r\n\r\n")
                    .await?;
                held.push(stream);
                made.fetch_add(1, Ordering::Relaxed);
            }
            let configmaps: Api<ConfigMap> = Api::namespaced(client, "churn");
            let big = "x".repeat(16 * 1024);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("churn-{}", i % 200));
                cm.data = Some([("big".to_string(), big.clone())].into());
                let _ = configmaps
                    .delete(&format!("churn-{}", i % 200), &Default::default())
                    .await;
                let _ = configmaps.create(&PostParams::default(), &cm).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(held);
    Ok(made.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let binary = api_bench::adamant_binary(args.adamant.clone())?;
    let server = Server::start_defended(&binary, &["--open-registration", "fleet"])
        .context("cannot start adamant serve")?;
    let client = server.client().await?;
    namespace(&client, "fleet").await?;
    namespace(&client, "churn").await?;
    let address_of = |field: &str| -> anyhow::Result<SocketAddr> {
        Ok(server
            .ready
            .split(&format!("{field}=https://"))
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .with_context(|| format!("no {field} address"))?
            .parse()?)
    };
    let devices = address_of("devices")?;
    let api = address_of("api")?;
    let pki = server.data_dir().join("pki");
    let root = std::fs::read(pki.join("root-certificate.pem"))?;
    let admin = (
        std::fs::read(pki.join("admin.crt"))?,
        std::fs::read(pki.join("admin.key"))?,
    );
    let controller = Controller::new(devices, "localhost", &root)?;
    let onboard = Identity::generate("hostile-onboarding")?;
    let mut fleet: Fleet = Vec::new();
    let onboarding = grow(&mut fleet, &controller, &onboard, args.devices + 1, 64).await?;
    let hot = fleet.pop();
    println!(
        "# hostile-bench\n\n{} well-behaved devices (onboarded in {:.1} s) polling {} times a second in all; a client listing ConfigMaps every 50 ms; {} s a phase\n",
        fleet.len(),
        onboarding.as_secs_f64(),
        args.polls,
        args.seconds
    );
    println!(
        "| fault | fault's requests | device polls | errors | p50 ms | p99 ms | p99 / clean | kubectl lists | errors | p50 ms | p99 ms | p99 / clean | peak RSS MiB | most descriptors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut clean = (Duration::ZERO, Duration::ZERO);
    for fault in [
        Fault::Clean,
        Fault::IdleTls,
        Fault::SlowHeaders,
        Fault::SlowBodies,
        Fault::Garbage,
        Fault::HotDevice,
        Fault::UnreadWatches,
    ] {
        // Let the previous fault's connections go (deadlines are 30 s at most).
        if fault != Fault::Clean {
            tokio::time::sleep(Duration::from_secs(35)).await;
        }
        server.reset_peak()?;
        let stop = Arc::new(AtomicBool::new(false));
        let attack = tokio::spawn({
            let target = Target {
                devices,
                api,
                root: root.clone(),
                admin: admin.clone(),
                client: client.clone(),
                hot: hot.clone(),
            };
            let (args, stop) = (args.clone(), stop.clone());
            async move { run_fault(fault, &args, target, stop).await }
        });
        // Give the fault a moment to be in place.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let until = Instant::now() + Duration::from_secs(args.seconds);
        // Devices: `polls` a second round the fleet.
        let polling = {
            let fleet = fleet.clone();
            let polls = args.polls;
            tokio::spawn(async move {
                let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / polls as f64));
                let mut i = 0usize;
                let mut tasks = Vec::new();
                while Instant::now() < until {
                    tick.tick().await;
                    let device = fleet[i % fleet.len()].clone();
                    i += 1;
                    let seen = seen.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut device = device.lock().await;
                        let began = Instant::now();
                        let result =
                            tokio::time::timeout(Duration::from_secs(10), device.poll_config())
                                .await;
                        let mut seen = seen.lock().expect("not poisoned");
                        match result {
                            Ok(Ok(_)) => seen.latencies.push(began.elapsed()),
                            _ => seen.errors += 1,
                        }
                    }));
                }
                for task in tasks {
                    let _ = task.await;
                }
                std::mem::take(&mut *seen.lock().expect("not poisoned"))
            })
        };
        let listing = {
            let client = client.clone();
            tokio::spawn(async move {
                let configmaps: Api<ConfigMap> = Api::namespaced(client, "fleet");
                let mut seen = Seen::default();
                while Instant::now() < until {
                    let began = Instant::now();
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        configmaps.list(&ListParams::default()),
                    )
                    .await
                    {
                        Ok(Ok(_)) => seen.latencies.push(began.elapsed()),
                        _ => seen.errors += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                seen
            })
        };
        let mut descriptors = 0;
        while Instant::now() < until {
            descriptors = descriptors.max(server.descriptors());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut polled = polling.await?;
        let mut listed = listing.await?;
        stop.store(true, Ordering::Relaxed);
        let made = attack.await??;
        let (_, peak) = server.memory();
        let (poll50, poll99, list50, list99) =
            (polled.p(0.5), polled.p(0.99), listed.p(0.5), listed.p(0.99));
        if fault == Fault::Clean {
            clean = (poll99, list99);
        }
        let ratio = |p: Duration, base: Duration| {
            if base.is_zero() {
                "-".to_string()
            } else {
                format!("{:.2}×", p.as_secs_f64() / base.as_secs_f64())
            }
        };
        println!(
            "| {} | {made} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {peak:.0} | {descriptors} |",
            fault.name(&args),
            polled.latencies.len(),
            polled.errors,
            ms(poll50),
            ms(poll99),
            ratio(poll99, clean.0),
            listed.latencies.len(),
            listed.errors,
            ms(list50),
            ms(list99),
            ratio(list99, clean.1),
        );
    }
    Ok(())
}
