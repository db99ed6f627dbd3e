//! The EVE device API v2 (docs: `docs/device-api.md` at the repository root): `ping`, `certs`,
//! `register`, `uuid`, `attest`, `config` (composed, signed, 304 when unchanged), `info` (applied
//! to Device and Application status), and the telemetry uploads. It reaches objects only as a
//! Kubernetes client (kube-rs) and its caches; only this crate and `eve-api` know protobuf.

pub mod budget;
pub mod compose;
pub mod configs;
pub mod events;
pub mod fleet;
pub mod integrity;
pub mod metrics;
pub mod pki;
pub mod report;
pub mod telemetry;
pub mod usage;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use eve_api::Message;
use eve_api::attest::{
    AttestStorageKeysResp, AttestStorageKeysResponseCode, AttestVolumeKey, ZAttestNonceResp,
    ZAttestQuoteResp, ZAttestReq, ZAttestReqType, ZAttestRespType, ZAttestResponse,
    ZAttestResponseCode,
};
use eve_api::config::{ConfigRequest, ConfigResponse};
use eve_api::envelope::{Opened, pem_to_der, public_key, sha256};
use eve_api::register::ZRegisterMsg;
use eve_api::uuid::UuidResponse;
use eve_model::{
    Condition, Device, DeviceConfig, DeviceConfigSpec, DeviceConfigStatus, annotations,
};
use futures::StreamExt;
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::configs::{Served, Source};
use crate::events::{DeviceEvents, Policy, Refused as Whose};
use crate::fleet::{Fleet, Known, certificate_der};
use crate::pki::ControllerCerts;
use crate::telemetry::Telemetry;
use crate::telemetry::ingest;

/// The path every device request starts with.
pub const PREFIX: &str = "/api/v2/edgedevice/";
/// Bytes of request bodies held at once before their signatures are checked (64 bodies of the
/// largest size; a device's usual request is a few kilobytes).
const UNVERIFIED_BYTES: usize = 64 * 1024 * 1024;
/// How long a device's request body may take to arrive.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// How many DeviceConfig writes run at once.
const CONFIG_WRITERS: usize = 8;
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
            grace: report::GRACE,
            requests_per_minute: 300,
            bytes_per_minute: 32 * 1024 * 1024,
            stranger_requests_per_minute: 120,
        }
    }
}

/// The most devices or addresses whose budgets are remembered at once.
const BUDGETS: usize = 1 << 20;

/// The per-device and per-address request budgets.
#[derive(Debug)]
struct Budgets {
    requests: budget::Buckets<String>,
    bytes: budget::Buckets<String>,
    strangers: budget::Buckets<std::net::IpAddr>,
}

impl Budgets {
    fn new(options: &Options) -> Budgets {
        let per_second = |per_minute: f64| per_minute.max(1.0) / 60.0;
        let requests = f64::from(options.requests_per_minute);
        let bytes = options.bytes_per_minute as f64;
        let strangers = f64::from(options.stranger_requests_per_minute);
        Budgets {
            requests: budget::Buckets::new(per_second(requests), requests, BUDGETS),
            bytes: budget::Buckets::new(per_second(bytes), bytes, BUDGETS),
            strangers: budget::Buckets::new(per_second(strangers), strangers, BUDGETS),
        }
    }

    /// Charges a device's request of `bytes`.
    fn device(&self, uuid: &str, bytes: usize) -> Result<(), Refused> {
        let key = uuid.to_string();
        self.requests
            .spend(&key, 1.0)
            .and_then(|()| self.bytes.spend(&key, bytes as f64))
            .map_err(|wait| {
                Refused::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "this device is over its request budget; retry in {} s",
                        wait.as_secs()
                    ),
                )
            })
    }

    /// Charges a request from `address` that no known device signed.
    fn stranger(&self, address: Option<std::net::IpAddr>) -> Result<(), Refused> {
        let Some(address) = address else {
            return Ok(());
        };
        self.strangers.spend(&address, 1.0).map_err(|wait| {
            Refused::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many requests from {address}; retry in {} s",
                    wait.as_secs()
                ),
            )
        })
    }

    fn forget(&self, uuid: &str) {
        self.requests.forget(&uuid.to_string());
        self.bytes.forget(&uuid.to_string());
    }
}

/// Attestation state of one device: the escrowed keys (kept in a Secret; nonces and tokens
/// are `integrity`'s).
#[derive(Default)]
struct Attestation {
    /// The escrowed keys, once read or written (`None`: look in the Secret).
    keys: Option<Vec<AttestVolumeKey>>,
}

/// The type of the Secrets that keep devices' escrowed keys.
pub const ESCROW_TYPE: &str = "eve.lfedge.org/key-escrow";
/// Their label naming the Device.
pub const ESCROW_LABEL: &str = "eve.lfedge.org/device";
/// Their data key.
const ESCROW_KEY: &str = "keys";

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

/// A response: status and body, always with the proto content type.
fn answer(status: StatusCode, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(PROTO),
    );
    response
}

fn status(code: StatusCode) -> http::Response<Full<Bytes>> {
    answer(code, Bytes::new())
}

/// Why a request is refused: the status code EVE acts on, and why (logged).
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub String);

impl Refused {
    fn new(code: StatusCode, why: impl Into<String>) -> Refused {
        Refused(code, why.into())
    }
}

type Answer = Result<http::Response<Full<Bytes>>, Refused>;

/// The registration rules of `ZRegisterMsg` (upstream's protoc-gen-validate rules).
/// Whether `config` is controlled by `owner` (its UID), blocking its deletion in foreground.
fn owned_by(config: &DeviceConfig, owner: &OwnerReference) -> bool {
    config.owner_references().iter().any(|o| {
        o.uid == owner.uid && o.controller == Some(true) && o.block_owner_deletion == Some(true)
    })
}

fn check_registration(message: &ZRegisterMsg) -> Result<(), String> {
    if !(100..=10240).contains(&message.pem_cert.len()) {
        return Err(format!(
            "pemCert is {} bytes; a certificate is 100 to 10240",
            message.pem_cert.len()
        ));
    }
    if message.serial.len() > 256 || message.soft_serial.len() > 256 {
        return Err("serial and softSerial are at most 256 characters".into());
    }
    if !message
        .soft_serial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("softSerial may only hold letters, digits, '_' and '-'".into());
    }
    Ok(())
}

/// A Device name from a serial: a DNS-1123 subdomain.
fn device_name(serial: &str, der: &[u8]) -> String {
    let mut name: String = serial
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    name.truncate(200);
    if name.is_empty() {
        let hash = sha256(der);
        name = format!(
            "device-{}",
            hash[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    name
}

/// Whether `certificate` (DER) is signed by the CA in `ca_base64_pem`.
fn signed_by(certificate: &[u8], ca_base64_pem: &str) -> bool {
    let Some(ca) = certificate_der(ca_base64_pem) else {
        return false;
    };
    let (Ok((_, ca)), Ok((_, leaf))) = (
        x509_parser::parse_x509_certificate(&ca),
        x509_parser::parse_x509_certificate(certificate),
    ) else {
        return false;
    };
    leaf.verify_signature(Some(ca.public_key())).is_ok()
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
        let reporter = report::Reporter::new(client.clone(), options.grace);
        tokio::spawn(report::watch_silence(
            client.clone(),
            fleet.devices.clone(),
            reporter.liveness(),
            options.grace,
            stop.clone(),
        ));
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
        tokio::spawn(api.clone().write_device_configs(stop));
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

    /// Serves devices on `listener` within `limits` until `stop`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        limits: https::Limits,
        stop: watch::Receiver<bool>,
    ) {
        https::serve_with(listener, tls, limits, stop, move |peer| {
            let api = self.clone();
            let address = peer.address.ip();
            move |request| {
                let api = api.clone();
                async move { api.handle_from(Some(address), request).await }
            }
        })
        .await;
    }

    /// Answers one request (from no known address: budgets by address do not apply).
    pub async fn handle<B>(
        self: Arc<Self>,
        request: http::Request<B>,
    ) -> http::Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.handle_from(None, request).await
    }

    /// Answers one request from `address`.
    pub async fn handle_from<B>(
        self: Arc<Self>,
        address: Option<std::net::IpAddr>,
        request: http::Request<B>,
    ) -> http::Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return status(StatusCode::NOT_FOUND);
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let endpoint = metrics::endpoint(method == http::Method::GET, &parts);
        let started = std::time::Instant::now();
        let response = self.route(address, request, &path, &method, &parts).await;
        self.metrics
            .request(endpoint, response.status().as_u16(), started.elapsed());
        response
    }

    /// Answers one request to `parts`, the segments of `path` after the prefix.
    async fn route<B>(
        &self,
        address: Option<std::net::IpAddr>,
        request: http::Request<B>,
        path: &str,
        method: &http::Method,
        parts: &[&str],
    ) -> http::Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if method == http::Method::GET {
            return match parts {
                ["ping"] => status(StatusCode::OK),
                ["certs"] => answer(StatusCode::OK, self.certs.certs_body.clone()),
                _ => status(StatusCode::NOT_FOUND),
            };
        }
        if method != http::Method::POST {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        // The envelope names its signer after its payload, so a body is whole before anyone is
        // known: what is declared too long is refused unread, and the bodies held before their
        // signatures are checked are bounded in all.
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|length| length > eve_api::envelope::MAX_BODY) {
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let limit = declared.unwrap_or(eve_api::envelope::MAX_BODY);
        let places = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        let Ok(Ok(_held)) = tokio::time::timeout(
            BODY_DEADLINE,
            self.unverified.clone().acquire_many_owned(places),
        )
        .await
        else {
            tracing::debug!(%path, "too many request bodies at once");
            return status(StatusCode::SERVICE_UNAVAILABLE);
        };
        let reading = Limited::new(request.into_body(), limit).collect();
        let Ok(read) = tokio::time::timeout(BODY_DEADLINE, reading).await else {
            tracing::debug!(%path, "device request body too slow");
            return status(StatusCode::REQUEST_TIMEOUT);
        };
        let body = match read {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                tracing::debug!(%path, error = %e, "device request body refused");
                return status(StatusCode::PAYLOAD_TOO_LARGE);
            }
        };
        let result = match parts {
            ["register"] => match self.budgets.stranger(address) {
                Ok(()) => self.register(&body).await,
                Err(refused) => Err(refused),
            },
            ["uuid"] | ["id", ..] | ["apps", "instanceid", _, "newlogs"] => {
                match self.signed(address, &body) {
                    Ok((known, opened)) => match parts {
                        ["uuid"] => self.uuid(&known),
                        ["id", uuid, rest @ ..] => {
                            self.device_call(&known, opened, uuid, rest).await
                        }
                        [.., app, _] => {
                            let received = ingest::now_millis();
                            self.logs(&known.uuid, Some(app), &opened.payload, received)
                                .await
                        }
                        _ => Err(Refused::new(StatusCode::NOT_FOUND, "no such endpoint")),
                    },
                    Err(refused) => Err(refused),
                }
            }
            _ => Err(Refused::new(StatusCode::NOT_FOUND, "no such endpoint")),
        };
        match result {
            Ok(response) => response,
            Err(Refused(code, why)) => {
                tracing::debug!(%path, code = code.as_u16(), %why, "device request refused");
                status(code)
            }
        }
    }

    /// The device that signed `body` from `address`, within its budget; a body no known
    /// device signed is charged to the address.
    fn signed(
        &self,
        address: Option<std::net::IpAddr>,
        body: &[u8],
    ) -> Result<(Known, Opened), Refused> {
        match self.authenticate(body) {
            Ok((known, opened)) => {
                self.budgets.device(&known.uuid, body.len())?;
                Ok((known, opened))
            }
            Err(refused) => {
                self.budgets.stranger(address)?;
                Err(refused)
            }
        }
    }

    /// The device that signed `body`, verified.
    fn authenticate(&self, body: &[u8]) -> Result<(Known, Opened), Refused> {
        let opened = Opened::decode(body)
            .map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let known = self
            .fleet
            .by_hash(&opened.sender_hash)
            .ok_or_else(|| Refused::new(StatusCode::UNAUTHORIZED, "unknown device certificate"))?;
        opened
            .verify(&known.public_key)
            .map_err(|e| Refused::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
        Ok((known, opened))
    }

    fn active(&self, known: &Known) -> Result<std::sync::Arc<Device>, Refused> {
        let device = self
            .fleet
            .device(known)
            .ok_or_else(|| Refused::new(StatusCode::UNAUTHORIZED, "the Device is gone"))?;
        if device
            .annotations()
            .get(annotations::ACTIVATE)
            .map(String::as_str)
            == Some("false")
        {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "the Device is not activated",
            ));
        }
        Ok(device)
    }

    fn seal(&self, message: &impl Message) -> Bytes {
        self.certs.signer.seal(message.encode_to_vec()).into()
    }

    async fn register(&self, body: &[u8]) -> Answer {
        let unprocessable = |e: String| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e);
        let unauthorized = |e: String| Refused::new(StatusCode::UNAUTHORIZED, e);
        let opened = Opened::decode(body).map_err(|e| unprocessable(e.to_string()))?;
        let onboard_pem = opened
            .sender_cert_pem
            .clone()
            .ok_or_else(|| unauthorized("register must carry the onboarding certificate".into()))?;
        let onboard_der = pem_to_der(&onboard_pem).map_err(|e| unauthorized(e.to_string()))?;
        let key = public_key(&onboard_der).map_err(|e| unauthorized(e.to_string()))?;
        if !opened.names(&sha256(&onboard_der)) {
            return Err(unauthorized(
                "senderCertHash does not name senderCert".into(),
            ));
        }
        opened
            .verify(&key)
            .map_err(|e| unauthorized(e.to_string()))?;
        let message = ZRegisterMsg::decode(opened.payload.as_slice())
            .map_err(|e| unprocessable(e.to_string()))?;
        check_registration(&message).map_err(unprocessable)?;
        let device_pem = base64::engine::general_purpose::STANDARD
            .decode(&message.pem_cert)
            .map_err(|e| unprocessable(format!("pemCert is not base64: {e}")))?;
        let device_der = pem_to_der(&device_pem).map_err(|e| unprocessable(e.to_string()))?;
        public_key(&device_der).map_err(|e| unprocessable(e.to_string()))?;
        let serial = if message.serial.is_empty() {
            message.soft_serial.clone()
        } else {
            message.serial.clone()
        };
        let device_b64 = base64::engine::general_purpose::STANDARD.encode(&device_pem);

        // Registered before with this certificate: nothing to do.
        if let Some(known) = self.fleet.by_hash(&sha256(&device_der)) {
            let device = self.active(&known).inspect_err(|refused| {
                if let Some(device) = self.fleet.device(&known) {
                    self.events.refused(Whose::Device(&device), &refused.1);
                }
            })?;
            self.events.onboarded(&device, &Policy::DeviceCertificate);
            return Ok(status(StatusCode::OK));
        }
        // A Device waiting for this (onboarding certificate, serial) pair.
        let onboard_hash = sha256(&onboard_der);
        let waiting = self
            .fleet
            .by_onboard(&onboard_hash, &message.serial)
            .or_else(|| match message.soft_serial.as_str() {
                "" => None,
                soft => self.fleet.by_onboard(&onboard_hash, soft),
            })
            .map(|device| (device, Policy::WaitingDevice));
        // A Device waiting for any device with this onboarding certificate (no serial): unless
        // a policy of another namespace admits the device too, as a policy of two namespaces
        // would not.
        let waiting = match waiting {
            Some(found) => Some(found),
            None => match self.fleet.by_onboard_only(&onboard_hash) {
                Some(device) => {
                    let mine = device.namespace().unwrap_or_default();
                    if let Some((other, _)) = self
                        .admitting(&onboard_der, &device_der)
                        .into_iter()
                        .find(|(namespace, _)| *namespace != mine)
                    {
                        let why = "an onboarding policy of another namespace also admits this device; the Device naming only its onboarding certificate does not claim it";
                        self.events.refused(
                            Whose::Device(&device),
                            &format!("{why} (serial {serial:?}; namespace {other})"),
                        );
                        return Err(Refused::new(StatusCode::FORBIDDEN, why));
                    }
                    Some((device, Policy::WaitingOnboardOnly))
                }
                None => None,
            },
        };
        if let Some((device, policy)) = waiting {
            let refuse = |code, why: &str| {
                self.events.refused(Whose::Device(&device), why);
                Err(Refused::new(code, why))
            };
            if device
                .spec
                .certificate
                .as_deref()
                .is_some_and(|c| !c.is_empty())
            {
                return refuse(
                    StatusCode::CONFLICT,
                    "this onboarding certificate and serial are registered with another device certificate",
                );
            }
            if device
                .annotations()
                .get(annotations::ACTIVATE)
                .map(String::as_str)
                == Some("false")
            {
                return refuse(StatusCode::FORBIDDEN, "the Device is not activated");
            }
            let api: Api<Device> =
                Api::namespaced(self.client.clone(), &device.namespace().unwrap_or_default());
            let patch = serde_json::json!({"spec": {"certificate": device_b64}});
            let updated = api
                .patch(
                    &device.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| Refused::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            self.fleet.learn(&updated);
            self.events.onboarded(&updated, &policy);
            return Ok(status(StatusCode::CREATED));
        }
        // Self-registration under a policy object.
        let name = device_name(&serial, &device_der);
        // Every policy that admits the device; they must all be of one namespace, or a tenant
        // could capture another's devices with a policy that also matches them.
        let admitted = self.admitting(&onboard_der, &device_der);
        let namespaces: std::collections::BTreeSet<&str> =
            admitted.iter().map(|(n, _)| n.as_str()).collect();
        if namespaces.len() > 1 {
            let why = "onboarding policies of more than one namespace admit this device; it is refused until only one does";
            self.events.refused(
                Whose::Named {
                    namespace: "default",
                    name: &name,
                },
                &format!("{why} (serial {serial:?}; namespaces {namespaces:?})"),
            );
            return Err(Refused::new(StatusCode::FORBIDDEN, why));
        }
        let (namespace, policy) = admitted
            .into_iter()
            .next()
            .or_else(|| {
                let namespace = self.options.open_registration.clone()?;
                Some((namespace, Policy::Open))
            })
            .ok_or_else(|| {
                let why = "no Device or onboarding policy admits this device";
                self.events.refused(
                    Whose::Named {
                        namespace: "default",
                        name: &name,
                    },
                    &format!("{why} (serial {serial:?})"),
                );
                Refused::new(StatusCode::FORBIDDEN, why)
            })?;
        let device: Device = serde_json::from_value(serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1",
            "kind": "Device",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "certificate": device_b64,
                "serial": serial,
                "onboard": base64::engine::general_purpose::STANDARD.encode(&onboard_pem),
            },
        }))
        .map_err(|e| unprocessable(e.to_string()))?;
        let api: Api<Device> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &device).await {
            Ok(created) => {
                self.fleet.learn(&created);
                tracing::info!(device = %created.name_any(), %namespace, "device self-registered");
                self.events.onboarded(&created, &policy);
                Ok(status(StatusCode::CREATED))
            }
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 422 => {
                let why = format!("the Device cannot be made: {}", e.message);
                let whose = Whose::Named {
                    namespace: &namespace,
                    name: &name,
                };
                self.events.refused(whose, &why);
                Err(Refused::new(StatusCode::CONFLICT, why))
            }
            Err(e) => Err(Refused::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        }
    }

    /// Every onboarding policy that admits a device with these onboarding and device
    /// certificates (DER), with its namespace.
    fn admitting(&self, onboard_der: &[u8], device_der: &[u8]) -> Vec<(String, Policy)> {
        let mut admitted: Vec<(String, Policy)> = Vec::new();
        for o in self.fleet.onboard_certificates.state().iter() {
            if certificate_der(&o.spec.certificate).as_deref() == Some(onboard_der)
                && let Some(namespace) = o.namespace()
            {
                admitted.push((namespace, Policy::OnboardCertificate(o.name_any())));
            }
        }
        for a in self.fleet.onboard_authorities.state().iter() {
            if signed_by(onboard_der, &a.spec.certificate)
                && let Some(namespace) = a.namespace()
            {
                admitted.push((namespace, Policy::OnboardAuthority(a.name_any())));
            }
        }
        for a in self.fleet.device_authorities.state().iter() {
            if signed_by(device_der, &a.spec.certificate)
                && let Some(namespace) = a.namespace()
            {
                admitted.push((namespace, Policy::DeviceAuthority(a.name_any())));
            }
        }
        admitted
    }

    fn uuid(&self, known: &Known) -> Answer {
        self.active(known)?;
        Ok(answer(
            StatusCode::OK,
            self.seal(&UuidResponse {
                uuid: known.uuid.clone(),
                manufacturer: String::new(),
                product_name: String::new(),
            }),
        ))
    }

    async fn device_call(
        &self,
        known: &Known,
        opened: Opened,
        uuid: &str,
        action: &[&str],
    ) -> Answer {
        if known.uuid != uuid {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "a device may only call its own UUID's endpoints",
            ));
        }
        let payload = Bytes::from(opened.payload);
        let received = ingest::now_millis();
        let kind = match action {
            ["info"] => Some(::telemetry::Kind::Info),
            ["metrics"] => Some(::telemetry::Kind::Metrics),
            ["flowlog"] => Some(::telemetry::Kind::FlowLog),
            _ => None,
        };
        let unreadable = |e: eve_api::DecodeError| {
            if let Some(kind) = kind {
                self.metrics.refused(kind, metrics::reason::UNREADABLE);
            }
            Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        };
        let kept = |result: Result<(), Refused>| result.map(|()| status(StatusCode::CREATED));
        match action {
            ["config"] => self.config(known, &payload),
            ["attest"] => self.attest(known, &payload).await,
            ["info"] => {
                let info = eve_api::info::ZInfoMsg::decode(payload.as_ref()).map_err(unreadable)?;
                let record = ingest::info_record(&info, received);
                if let Some(device) = self.fleet.device(known) {
                    self.reporter.info(&self.fleet, &device, info).await?;
                }
                kept(
                    self.telemetry
                        .keep(uuid, ::telemetry::Kind::Info, vec![record])
                        .await,
                )
            }
            ["metrics"] => {
                let metrics =
                    eve_api::telemetry::ZMetricMsg::decode(payload.as_ref()).map_err(unreadable)?;
                if let Some(device) = self.fleet.device(known) {
                    self.reporter.seen(&device).await;
                }
                let record = ingest::raw_record(metrics.at_time_stamp.as_ref(), &payload, received);
                self.telemetry
                    .keep(uuid, ::telemetry::Kind::Metrics, vec![record])
                    .await?;
                if let Some(usage) = usage::Usage::of(&metrics) {
                    self.usages.record(uuid, usage);
                }
                Ok(status(StatusCode::CREATED))
            }
            // Accepted, not kept: the telemetry store has no kind for it yet.
            ["hardwarehealth"] => Ok(status(StatusCode::CREATED)),
            ["flowlog"] => {
                eve_api::telemetry::FlowMessage::decode(payload.as_ref()).map_err(unreadable)?;
                let record = ingest::raw_record(None, &payload, received);
                kept(
                    self.telemetry
                        .keep(uuid, ::telemetry::Kind::FlowLog, vec![record])
                        .await,
                )
            }
            ["newlogs"] => self.logs(uuid, None, &payload, received).await,
            ["apps", "instanceid", app, "newlogs"] => {
                self.logs(uuid, Some(app), &payload, received).await
            }
            _ => Err(Refused::new(StatusCode::NOT_FOUND, "no such endpoint")),
        }
    }

    fn config(&self, known: &Known, payload: &[u8]) -> Answer {
        let device = self.active(known)?;
        let request = ConfigRequest::decode(payload)
            .map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        if let Err(why) =
            self.integrity
                .check_token(&known.uuid, &request.integrity_token, ingest::now_millis())
        {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                format!("no valid integrity token ({why}): attest again"),
            ));
        }
        let served = self.served(&device, &known.uuid);
        if served.hash == request.config_hash {
            return Ok(status(StatusCode::NOT_MODIFIED));
        }
        self.events.delivered(&device, &served.hash);
        Ok(answer(StatusCode::OK, served.sealed.clone()))
    }

    /// A `newlogs` upload: read (bounded), each entry a record, kept.
    async fn logs(&self, uuid: &str, app: Option<&str>, payload: &[u8], received: u64) -> Answer {
        let kind = match app {
            Some(_) => ::telemetry::Kind::AppLog,
            None => ::telemetry::Kind::Log,
        };
        let bundle = eve_api::newlogs::parse(payload).map_err(|e| {
            let (code, reason) = match e {
                eve_api::newlogs::LogError::TooLarge => {
                    (StatusCode::PAYLOAD_TOO_LARGE, metrics::reason::TOO_LARGE)
                }
                eve_api::newlogs::LogError::NotGzip(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    metrics::reason::UNREADABLE,
                ),
            };
            self.metrics.refused(kind, reason);
            Refused::new(code, e.to_string())
        })?;
        let records = bundle
            .entries
            .iter()
            .map(|entry| ingest::log_record(entry, app, received))
            .collect();
        self.telemetry.keep(uuid, kind, records).await?;
        Ok(status(StatusCode::CREATED))
    }

    /// The configuration `device` gets: the one kept, or one composed now (and kept).
    pub fn served(&self, device: &Device, uuid: &str) -> Arc<Served> {
        let key = ObjectRef::from_obj(device);
        let tracker = &self.fleet.configs;
        if let Some(served) = tracker.kept(&key) {
            return served;
        }
        let at = tracker.now();
        let served = Arc::new(self.serve_now(device, uuid));
        tracker.keep(key, at, served.clone());
        served
    }

    fn serve_now(&self, device: &Device, uuid: &str) -> Served {
        let composed = || compose::compose(&self.fleet, device, uuid, &self.certs.confighash);
        let written = self.fleet.device_configs.get(
            &ObjectRef::new(&device.name_any()).within(&device.namespace().unwrap_or_default()),
        );
        let (config, hash, source) = match written.filter(|c| c.spec.is_paused()) {
            Some(c) => {
                match configs::from_json(c.spec.config.as_ref(), uuid, &self.certs.confighash) {
                    Ok((config, hash)) => (config, hash, Source::Paused),
                    Err(why) => {
                        let c = composed();
                        (c.config, c.hash, Source::Invalid(why))
                    }
                }
            }
            None => {
                let c = composed();
                (c.config, c.hash, Source::Composed)
            }
        };
        let sealed = self.seal(&ConfigResponse {
            config: Some(config),
            config_hash: hash.clone(),
        });
        Served {
            hash,
            sealed,
            source,
        }
    }

    /// Writes each device's configuration as its DeviceConfig whenever it changes, until
    /// `stop`. A paused DeviceConfig keeps its spec (only its status is written); an edit of an
    /// unpaused one is replaced by the composed configuration. Each DeviceConfig is owned by its
    /// Device (`controller` and `blockOwnerDeletion`): the garbage collector deletes it with
    /// the Device (kube's in cluster mode, the API server's own in `adamant serve`).
    pub async fn write_device_configs(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let dirty = tokio::select! {
                dirty = self.fleet.configs.dirty() => dirty,
                _ = stop.changed() => return,
            };
            let mut devices: HashSet<ObjectRef<Device>> = dirty.devices;
            if dirty.all {
                devices.extend(
                    self.fleet
                        .devices
                        .state()
                        .iter()
                        .map(|d| ObjectRef::from_obj(d.as_ref())),
                );
                devices.extend(self.fleet.device_configs.state().iter().map(|c| {
                    ObjectRef::new(&c.name_any()).within(&c.namespace().unwrap_or_default())
                }));
            }
            futures::stream::iter(devices)
                .for_each_concurrent(CONFIG_WRITERS, |key| {
                    let api = self.clone();
                    async move {
                        if let Err(e) = api.write_device_config(&key).await {
                            tracing::debug!(device = %key, error = %e, "DeviceConfig not written; retrying");
                            tokio::spawn(async move {
                                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                                api.fleet.configs.mark(key);
                            });
                        }
                    }
                })
                .await;
        }
    }

    async fn write_device_config(&self, key: &ObjectRef<Device>) -> Result<(), kube::Error> {
        let namespace = key.namespace.clone().unwrap_or_default();
        let api: Api<DeviceConfig> = Api::namespaced(self.client.clone(), &namespace);
        let written = self
            .fleet
            .device_configs
            .get(&ObjectRef::new(&key.name).within(&namespace));
        let paused = written.as_ref().is_some_and(|c| c.spec.is_paused());
        let device = self
            .fleet
            .devices
            .get(key)
            .filter(|d| d.metadata.deletion_timestamp.is_none());
        // A DeviceConfig whose Device is gone is the garbage collector's.
        let Some(device) = device else {
            return Ok(());
        };
        let Some(uuid) = fleet::uuid_of(&device) else {
            return Ok(());
        };
        let served = self.served(&device, &uuid);
        let mut current = written;
        if !paused {
            let spec = DeviceConfigSpec {
                device: key.name.clone(),
                paused: current.as_ref().and_then(|c| c.spec.paused),
                config: Some(configs::to_json(&served.config())),
            };
            let owner = OwnerReference {
                api_version: "eve.lfedge.org/v1beta1".into(),
                kind: "Device".into(),
                name: key.name.clone(),
                uid: device.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            };
            current = match current {
                Some(c) if c.spec == spec && owned_by(&c, &owner) => Some(c),
                Some(c) => {
                    // Put back, and adopted by this Device (one made by hand, or left by a
                    // Device of the same name that is gone).
                    let mut next = (*c).clone();
                    next.spec = spec;
                    let mut owners = next.metadata.owner_references.take().unwrap_or_default();
                    owners.retain(|o| !(o.kind == owner.kind && o.name == owner.name));
                    owners.retain(|o| o.controller != Some(true));
                    owners.push(owner);
                    next.metadata.owner_references = Some(owners);
                    Some(Arc::new(
                        api.replace(&key.name, &PostParams::default(), &next)
                            .await?,
                    ))
                }
                None => {
                    let mut next = DeviceConfig::new(&key.name, spec);
                    next.metadata.namespace = Some(namespace.clone());
                    next.metadata.owner_references = Some(vec![owner]);
                    match api.create(&PostParams::default(), &next).await {
                        Ok(created) => Some(Arc::new(created)),
                        // Another replica wrote it first: check it on its watch event.
                        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            };
        }
        let Some(current) = current else {
            return Ok(());
        };
        let (state, reason, message) = match &served.source {
            Source::Composed => ("True", "Composed", "composed from the objects".to_string()),
            Source::Paused => (
                "True",
                "Paused",
                "paused: served as written, the composer leaves it alone".to_string(),
            ),
            Source::Invalid(why) => (
                "False",
                "InvalidConfig",
                format!("{why}; the device gets the composed configuration until this is fixed"),
            ),
        };
        let old = current.status.clone().unwrap_or_default();
        let same_condition = old.conditions.iter().any(|c| {
            c.type_ == "Valid" && c.status == state && c.reason == reason && c.message == message
        });
        if old.config_hash.as_deref() == Some(served.hash.as_str())
            && old.observed_generation == current.metadata.generation
            && same_condition
        {
            return Ok(());
        }
        let status = DeviceConfigStatus {
            config_hash: Some(served.hash.clone()),
            observed_generation: current.metadata.generation,
            conditions: vec![Condition {
                type_: "Valid".into(),
                status: state.into(),
                reason: reason.into(),
                message,
                observed_generation: current.metadata.generation,
                last_transition_time: Time(jiff::Timestamp::now()),
            }],
        };
        api.patch_status(
            &key.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
        Ok(())
    }

    async fn attest(&self, known: &Known, payload: &[u8]) -> Answer {
        let request = ZAttestReq::decode(payload)
            .map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let mut response = ZAttestResponse::default();
        match ZAttestReqType::try_from(request.req_type) {
            Ok(ZAttestReqType::AttestReqCert) => {
                let record = ingest::certs_record(&request.certs, ingest::now_millis());
                self.telemetry
                    .keep(&known.uuid, ::telemetry::Kind::Certs, vec![record])
                    .await?;
                response.resp_type = ZAttestRespType::AttestRespCert as i32;
            }
            Ok(ZAttestReqType::AttestReqNonce) => {
                let nonce = self.integrity.nonce(&known.uuid, ingest::now_millis());
                response.resp_type = ZAttestRespType::AttestRespNonce as i32;
                response.nonce = Some(ZAttestNonceResp { nonce });
            }
            Ok(ZAttestReqType::AttestReqQuote) => {
                // A deactivated device gets nothing, keys least of all.
                self.active(known)?;
                response.resp_type = ZAttestRespType::AttestRespQuoteResp as i32;
                // The quote must answer a nonce issued to this device, once. (The TPM's
                // signature and PCRs are not verified yet; a device without a TPM sends none.)
                let attest_data = request.quote.map(|q| q.attest_data).unwrap_or_default();
                if let Err(why) =
                    self.integrity
                        .answer_quote(&known.uuid, &attest_data, ingest::now_millis())
                {
                    tracing::info!(uuid = %known.uuid, %why, "a quote that answers no nonce");
                    response.quote_resp = Some(ZAttestQuoteResp {
                        response: ZAttestResponseCode::NonceMismatch as i32,
                        ..ZAttestQuoteResp::default()
                    });
                    return Ok(answer(StatusCode::CREATED, self.seal(&response)));
                }
                let keys = self.escrowed(known).await?;
                response.quote_resp = Some(ZAttestQuoteResp {
                    response: ZAttestResponseCode::Success as i32,
                    integrity_token: self.integrity.token(&known.uuid, ingest::now_millis()),
                    keys,
                });
            }
            Ok(ZAttestReqType::StoreKeys) => {
                self.active(known)?;
                let keys = request.storage_keys.unwrap_or_default();
                let held = self.integrity.check_token(
                    &known.uuid,
                    &keys.integrity_token,
                    ingest::now_millis(),
                );
                let code = if held.is_ok() {
                    self.escrow(known, keys.keys).await?;
                    AttestStorageKeysResponseCode::Success
                } else {
                    AttestStorageKeysResponseCode::ItokenMismatch
                };
                response.resp_type = ZAttestRespType::StoreKeys as i32;
                response.storage_keys_resp = Some(AttestStorageKeysResp {
                    response: code as i32,
                });
            }
            _ => {
                return Err(Refused::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown attestation request type",
                ));
            }
        }
        Ok(answer(StatusCode::CREATED, self.seal(&response)))
    }

    /// The Secret that keeps a device's escrowed keys: in its namespace, named by its UUID.
    fn escrow_secret(&self, known: &Known) -> (Api<Secret>, String) {
        let namespace = known.reference.namespace.clone().unwrap_or_default();
        (
            Api::namespaced(self.client.clone(), &namespace),
            format!("eve-escrow-{}", known.uuid),
        )
    }

    /// Keeps the keys a device escrowed, in memory and in a Secret (so they survive restarts
    /// and every replica has them). The keys are encrypted by the device.
    async fn escrow(&self, known: &Known, keys: Vec<AttestVolumeKey>) -> Result<(), Refused> {
        let (api, name) = self.escrow_secret(known);
        let encoded = eve_api::attest::AttestStorageKeys {
            integrity_token: Vec::new(),
            keys: keys.clone(),
        }
        .encode_to_vec();
        let mut secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(ESCROW_LABEL.to_string(), known.reference.name.clone())].into()),
                ..Default::default()
            },
            type_: Some(ESCROW_TYPE.into()),
            data: Some([(ESCROW_KEY.to_string(), k8s_openapi::ByteString(encoded))].into()),
            ..Default::default()
        };
        let unavailable = |e: kube::Error| {
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot keep the escrowed keys: {e}"),
            )
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let current = api.get(&name).await.map_err(unavailable)?;
                secret.metadata.resource_version = current.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &secret)
                    .await
                    .map_err(unavailable)?;
            }
            Err(e) => return Err(unavailable(e)),
        }
        self.attestations
            .lock()
            .expect("not poisoned")
            .entry(known.uuid.clone())
            .or_default()
            .keys = Some(keys);
        Ok(())
    }

    /// The keys a device escrowed: from memory, else from its Secret.
    async fn escrowed(&self, known: &Known) -> Result<Vec<AttestVolumeKey>, Refused> {
        if let Some(keys) = self
            .attestations
            .lock()
            .expect("not poisoned")
            .get(&known.uuid)
            .and_then(|a| a.keys.clone())
        {
            return Ok(keys);
        }
        let (api, name) = self.escrow_secret(known);
        let secret = api.get_opt(&name).await.map_err(|e| {
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the escrowed keys: {e}"),
            )
        })?;
        let keys = secret
            .and_then(|s| s.data?.remove(ESCROW_KEY))
            .and_then(|b| eve_api::attest::AttestStorageKeys::decode(b.0.as_slice()).ok())
            .map(|k| k.keys)
            .unwrap_or_default();
        self.attestations
            .lock()
            .expect("not poisoned")
            .entry(known.uuid.clone())
            .or_default()
            .keys = Some(keys.clone());
        Ok(keys)
    }
}
