//! The EVE device API v2 (docs: `docs/device-api.md` at the repository root): `ping`, `certs`,
//! `register`, `uuid`, `attest`, `config` (composed, signed, 304 when unchanged), `info` (applied
//! to Device and Application status), and the telemetry uploads. It reaches objects only as a
//! Kubernetes client (kube-rs) and its caches; only this crate and `eve-api` know protobuf.
//!
//! This file holds [`DeviceApi`] and its start; each endpoint's work is a module of its own:
//! `routes` (routing, bodies, authentication, budgets, answers), `onboarding` (`register`,
//! `uuid`), `attestation` (`attest`, escrowed keys), `serving` (`config`), `uploads` (`info`,
//! `metrics`, `flowlog`, `newlogs`) and `writer` (the DeviceConfig writer).

pub mod attestation;
pub mod budget;
pub mod cipher;
pub mod compose;
pub mod configs;
pub mod events;
pub mod fleet;
pub mod hex;
pub mod integrity;
pub mod liveness;
pub mod metrics;
mod onboarding;
pub mod pki;
/// TPM 2.0 quotes verified, and the PCR templates they must match.
pub mod quote;
pub mod report;
mod routes;
pub mod secrets;
mod serving;
pub mod telemetry;
mod uploads;
pub mod usage;
mod writer;
pub mod written;

pub use attestation::{ESCROW_LABEL, ESCROW_TYPE};
pub use routes::Refused;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use tokio::sync::watch;

use crate::attestation::Attestation;
use crate::events::DeviceEvents;
use crate::fleet::Fleet;
use crate::pki::ControllerCerts;
use crate::routes::{Budgets, UNVERIFIED_BYTES};
use crate::telemetry::Telemetry;

/// The path every device request starts with.
pub const PREFIX: &str = "/api/v2/edgedevice/";
/// The content type of every response, empty ones included (EVE's client requires it).
pub const PROTO: &str = "application/x-proto-binary";

/// How the device API admits and watches devices.
#[derive(Clone, Debug)]
pub struct Options {
    /// Open self-registration: any device registering with any onboarding certificate becomes a
    /// Device in this namespace. Off (`None`) by default.
    pub open_registration: Option<String>,
    /// How long a device may be silent before its `Ready` condition turns `Unknown`.
    pub grace: std::time::Duration,
    /// Requests a device may make a minute (a minute's worth at once); beyond, 429.
    pub requests_per_minute: u32,
    /// Bytes of requests a device may send a minute (a minute's worth at once); beyond, 429.
    pub bytes_per_minute: u64,
    /// Requests one source address may make a minute before a device is known by them
    /// (registrations, and requests no device signed); beyond, 429.
    pub stranger_requests_per_minute: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            open_registration: None,
            grace: liveness::GRACE,
            requests_per_minute: 300,
            bytes_per_minute: 32 * 1024 * 1024,
            stranger_requests_per_minute: 120,
        }
    }
}

/// The device API.
pub struct DeviceApi {
    client: Client,
    fleet: Fleet,
    certs: ControllerCerts,
    telemetry: Arc<Telemetry>,
    /// Turns true when the server stops (followers of telemetry end).
    stop: watch::Receiver<bool>,
    options: Options,
    attestations: Mutex<HashMap<String, Attestation>>,
    reporter: report::Reporter,
    events: DeviceEvents,
    metrics: metrics::Metrics,
    /// What each device last said it uses (the fleet exporter's per-device figures).
    usages: Arc<usage::Usages>,
    /// Attestation nonces and integrity tokens.
    integrity: integrity::Integrity,
    /// Request budgets per device and per source address.
    budgets: Budgets,
    /// Bytes of request bodies that may be held at once before their signatures are checked.
    unverified: Arc<tokio::sync::Semaphore>,
}

impl DeviceApi {
    /// Loads the controller certificates from `vault` and waits for `fleet`'s caches (registered
    /// with informers that have started).
    pub async fn start(
        client: Client,
        fleet: Fleet,
        vault: &dyn ::pki::Vault,
        options: Options,
        telemetry: Arc<Telemetry>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<DeviceApi>, pki::PkiError> {
        let certs = ControllerCerts::load_or_create(vault).await?;
        let integrity = integrity::Integrity::new(certs.integrity_secret());
        let budgets = Budgets::new(&options);
        fleet.ready().await;
        let liveness = Arc::new(liveness::Liveness::new(
            liveness::Liveness::random_replica(),
            options.grace,
        ));
        tokio::spawn(liveness::watch_silence(
            client.clone(),
            fleet.devices.clone(),
            liveness.clone(),
            stop.clone(),
        ));
        tokio::spawn(liveness::share(
            client.clone(),
            liveness.clone(),
            stop.clone(),
        ));
        let reporter = report::Reporter::new(client.clone(), liveness.clone());
        let api = Arc::new(DeviceApi {
            events: DeviceEvents::start(client.clone(), stop.clone()),
            reporter,
            metrics: telemetry.metrics().clone(),
            client,
            fleet,
            certs,
            telemetry,
            stop: stop.clone(),
            options,
            attestations: Mutex::new(HashMap::new()),
            usages: Arc::default(),
            integrity,
            budgets,
            unverified: Arc::new(tokio::sync::Semaphore::new(UNVERIFIED_BYTES)),
        });
        if let Some(departures) = api.fleet.departures() {
            tokio::spawn(api.clone().forget_departed(departures));
        }
        tokio::spawn(api.clone().write_device_configs(stop.clone()));
        let writer = api.clone();
        tokio::spawn(liveness::write_heartbeats(
            liveness,
            move |key| {
                let api = writer.clone();
                async move { api.reporter.heartbeat(&api.fleet, &key).await }
            },
            stop.clone(),
        ));
        tokio::spawn(
            api.fleet
                .secrets
                .clone()
                .run(api.client.clone(), api.fleet.clone(), stop),
        );
        Ok(api)
    }

    /// Forgets what is kept about each Device deleted, as its deletion comes: its telemetry,
    /// usage figures, attestation state, budgets and last reports.
    async fn forget_departed(
        self: Arc<Self>,
        mut departures: tokio::sync::mpsc::Receiver<fleet::Departed>,
    ) {
        while let Some(fleet::Departed { uuid, device }) = departures.recv().await {
            self.usages.forget(&uuid);
            self.integrity.forget(&uuid);
            self.budgets.forget(&uuid);
            self.reporter.forget(&device);
            self.events.forget(&uuid);
            self.attestations
                .lock()
                .expect("not poisoned")
                .remove(&uuid);
            if let Err(e) = self.telemetry.forget(&uuid).await {
                tracing::warn!(%uuid, error = %e, "a deleted Device's telemetry stays until retention removes it");
            }
        }
    }

    /// The controller certificates (for exports and TLS).
    pub fn certs(&self) -> &ControllerCerts {
        &self.certs
    }

    /// The caches.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Registers the device API's metrics (requests, telemetry, devices) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        metrics::register(&self.metrics, self.fleet.devices.clone(), registry);
        registry.register(
            "eve_device_api_config_compositions",
            "Device configurations composed (or read from a paused DeviceConfig) because none was kept or something they were made from changed",
            self.fleet.configs.compositions.clone(),
        );
    }

    /// The fleet exporter: per-Device and per-Application gauges, read from the caches at each
    /// scrape.
    pub fn fleet_registry(&self) -> prometheus_client::registry::Registry {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(metrics::Fleet {
            devices: self.fleet.devices.clone(),
            applications: self.fleet.applications.clone(),
            usages: self.usages.clone(),
        }));
        registry
    }
}
