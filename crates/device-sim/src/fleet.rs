//! `adamant sim`: N simulated devices onboarding, polling their configuration at EVE's
//! intervals with jitter, running what they receive (their Images download and load, their
//! volumes are created, applications progress to `RUNNING`, all reported by `info`) and
//! posting metrics; a progress line and a summary of requests, errors and latency percentiles.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eve_api::info::ZSwState;

use crate::{Controller, Device, Identity, SimError};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How many devices (besides `known`).
    pub devices: usize,
    /// One more device whose identity and serial number are given (an example device, or a
    /// Device created in advance with its certificate), run before the others.
    pub known: Option<(Identity, String)>,
    /// The onboarding certificate they register with (none: their certificates must be known).
    pub onboard: Option<Identity>,
    /// A certificate authority that issues the devices' certificates (the
    /// DeviceCertificateAuthority policy); none: each device makes a self-signed one, as EVE does.
    pub device_ca: Option<Identity>,
    /// Serial numbers are this prefix and the device's number.
    pub serial_prefix: String,
    /// `timer.config.interval` (EVE polls at a random point of [0.3, 1] of it).
    pub config_interval: Duration,
    /// `timer.metric.interval`.
    pub metric_interval: Duration,
    /// How long to run after onboarding.
    pub duration: Duration,
    /// Spread source addresses over 127.0.0.0/8 (when the controller is on loopback).
    pub spread_sources: bool,
}

/// Counters and latencies of all devices.
#[derive(Default)]
pub struct Stats {
    latencies: Vec<Duration>,
    errors: usize,
    onboarded: usize,
    running: usize,
    first_error: Option<String>,
}

/// The summary of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Devices that onboarded.
    pub onboarded: usize,
    /// Applications reported running.
    pub running: usize,
    /// Requests answered.
    pub requests: usize,
    /// Requests failed.
    pub errors: usize,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The first error, if any.
    pub first_error: Option<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} devices onboarded, {} applications running; {} requests, {} errors; latency p50 {:.1} ms, p99 {:.1} ms",
            self.onboarded,
            self.running,
            self.requests,
            self.errors,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0
        )?;
        if let Some(error) = &self.first_error {
            write!(f, "; first error: {error}")?;
        }
        Ok(())
    }
}

fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u32::from_le_bytes(bytes) as f64 / u32::MAX as f64
}

/// EVE's jitter: a random point of [0.3, 1] × `interval`.
pub fn jitter(interval: Duration) -> Duration {
    interval.mul_f64(0.3 + 0.7 * random_fraction())
}

async fn timed<T>(
    stats: &Mutex<Stats>,
    call: impl std::future::Future<Output = Result<T, SimError>>,
) -> Option<T> {
    let started = Instant::now();
    let result = call.await;
    let mut stats = stats.lock().expect("not poisoned");
    match result {
        Ok(value) => {
            stats.latencies.push(started.elapsed());
            Some(value)
        }
        Err(e) => {
            stats.errors += 1;
            stats.first_error.get_or_insert_with(|| e.to_string());
            None
        }
    }
}

async fn live(mut device: Device, plan: Plan, stats: Arc<Mutex<Stats>>) {
    let mut onboarded = false;
    while !onboarded {
        onboarded = timed(&stats, device.onboard()).await.is_some();
        if !onboarded {
            tokio::time::sleep(jitter(Duration::from_secs(5))).await;
        }
    }
    stats.lock().expect("not poisoned").onboarded += 1;
    let _ = timed(&stats, device.report_device("0.0.0-sim", "10.0.0.2")).await;
    let end = Instant::now() + plan.duration;
    let mut next_config = Instant::now();
    let mut next_metrics = Instant::now() + jitter(plan.metric_interval);
    let mut running = std::collections::BTreeSet::new();
    let mut loaded = std::collections::BTreeSet::new();
    while Instant::now() < end {
        let wake = next_config.min(next_metrics).min(end);
        tokio::time::sleep_until(wake.into()).await;
        if Instant::now() >= next_config {
            next_config = Instant::now() + jitter(plan.config_interval);
            let apps = match timed(&stats, device.poll_config()).await {
                Some(Some(config)) => config
                    .apps
                    .iter()
                    .filter(|a| a.activate)
                    .filter_map(|a| {
                        let volumes: Vec<&eve_api::config::Volume> = a
                            .volume_ref_list
                            .iter()
                            .filter_map(|r| config.volumes.iter().find(|v| v.uuid == r.uuid))
                            .collect();
                        // The content trees its volumes are made from.
                        let trees: Vec<(String, String)> = volumes
                            .iter()
                            .filter_map(|v| v.origin.as_ref())
                            .filter_map(|o| {
                                config
                                    .content_info
                                    .iter()
                                    .find(|t| t.uuid == o.download_content_tree_id)
                            })
                            .map(|t| (t.uuid.clone(), t.display_name.clone()))
                            .collect();
                        let volumes: Vec<(String, String)> = volumes
                            .iter()
                            .map(|v| (v.uuid.clone(), v.display_name.clone()))
                            .collect();
                        Some((
                            a.uuidandversion.clone()?.uuid,
                            a.displayname.clone(),
                            trees,
                            volumes,
                        ))
                    })
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            };
            for (uuid, name, trees, volumes) in apps {
                if running.contains(&uuid) {
                    continue;
                }
                // Its Images: downloading (half way), downloaded, loaded; one the device has
                // already loaded (for another application) is reported loaded again.
                for (tree, tree_name) in &trees {
                    let states: &[(ZSwState, u32)] = if loaded.insert(tree.clone()) {
                        &[
                            (ZSwState::DownloadStarted, 50),
                            (ZSwState::Downloaded, 100),
                            (ZSwState::Loaded, 100),
                        ]
                    } else {
                        &[(ZSwState::Loaded, 100)]
                    };
                    for &(state, progress) in states {
                        let _ = timed(
                            &stats,
                            device.report_content_tree(tree, tree_name, state, progress, None),
                        )
                        .await;
                    }
                }
                for (volume, volume_name) in &volumes {
                    let _ = timed(
                        &stats,
                        device.report_volume(volume, volume_name, ZSwState::CreatedVolume, 100),
                    )
                    .await;
                }
                for state in [ZSwState::Downloaded, ZSwState::Booting, ZSwState::Running] {
                    let _ = timed(&stats, device.report_app(&uuid, &name, state)).await;
                }
                running.insert(uuid);
                stats.lock().expect("not poisoned").running += 1;
            }
        }
        if Instant::now() >= next_metrics {
            next_metrics = Instant::now() + jitter(plan.metric_interval);
            let _ = timed(&stats, device.metrics()).await;
            let _ = timed(&stats, device.logs(&["simulated log line", "another one"])).await;
            for app in &running {
                let _ = timed(&stats, device.app_logs(app, "app", &["console output"])).await;
            }
        }
    }
}

/// Runs the plan against `controller`, printing progress to stderr every few seconds.
pub async fn run(controller: Controller, plan: Plan) -> Summary {
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut tasks = Vec::new();
    let total = plan.devices + usize::from(plan.known.is_some());
    for i in 0..total {
        let (identity, name) = match (&plan.known, i) {
            (Some((identity, serial)), 0) => (Ok(identity.clone()), serial.clone()),
            _ => {
                let name = format!(
                    "{}{}",
                    plan.serial_prefix,
                    i - usize::from(plan.known.is_some())
                );
                let identity = match &plan.device_ca {
                    Some(ca) => Identity::issued_by(ca, &name),
                    None => Identity::generate(&name),
                };
                (identity, name)
            }
        };
        let Ok(identity) = identity else {
            continue;
        };
        // Under a device CA the onboarding certificate does not matter, but registering needs
        // one: each device makes its own.
        let onboard = match (&plan.onboard, &plan.device_ca) {
            (None, Some(_)) => Identity::generate(&format!("onboard-{name}")).ok(),
            (onboard, _) => onboard.clone(),
        };
        let Ok(mut device) = Device::new(controller.clone(), identity, onboard, &name) else {
            continue;
        };
        if plan.spread_sources {
            let n = i as u32 + 2;
            device.source = Some(IpAddr::V4(Ipv4Addr::new(
                127,
                (n >> 16) as u8,
                (n >> 8) as u8,
                n as u8,
            )));
        }
        tasks.push(tokio::spawn(live(device, plan.clone(), stats.clone())));
        // Boot storms are real, but not all at once.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let progress = {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let s = stats.lock().expect("not poisoned");
                eprintln!(
                    "{}/{total} onboarded, {} running, {} requests, {} errors",
                    s.onboarded,
                    s.running,
                    s.latencies.len(),
                    s.errors
                );
            }
        })
    };
    for task in tasks {
        let _ = task.await;
    }
    progress.abort();
    let mut stats = stats.lock().expect("not poisoned");
    stats.latencies.sort();
    let at = |q: f64| {
        let n = stats.latencies.len();
        if n == 0 {
            Duration::ZERO
        } else {
            stats.latencies[((n as f64 * q) as usize).min(n - 1)]
        }
    };
    Summary {
        onboarded: stats.onboarded,
        running: stats.running,
        requests: stats.latencies.len(),
        errors: stats.errors,
        p50: at(0.5),
        p99: at(0.99),
        first_error: stats.first_error.clone(),
    }
}
