//! The device API's metrics (`docs/metrics.md`): requests by endpoint and code with their
//! latency, telemetry kept and refused, the devices known, onboarded and ready; and the fleet
//! exporter, per-Device and per-Application gauges read from the caches at each scrape.
//!
//! The families are the Prometheus project's client's; whoever serves them registers them
//! (`DeviceApi::register_metrics`, `DeviceApi::fleet_registry`). Every label is bounded:
//! endpoints and reasons are fixed sets, telemetry kinds `telemetry::Kind::ALL`, codes HTTP
//! status codes; the fleet's namespace and name labels by the number of objects.

use std::time::Duration;

use eve_model::{Application, Device};
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::usage::Usage;

/// The endpoints of the device API, as labelled (`other`: any path that is none of them).
pub const ENDPOINTS: [&str; 13] = [
    "ping",
    "certs",
    "register",
    "uuid",
    "config",
    "attest",
    "info",
    "metrics",
    "newlogs",
    "appnewlogs",
    "flowlog",
    "hardwarehealth",
    "other",
];

/// Why telemetry was refused, as labelled.
pub mod reason {
    /// The device is over its byte budget (429).
    pub const BUDGET: &str = "budget";
    /// The store failed (503).
    pub const STORE: &str = "store";
    /// The upload was too large (413).
    pub const TOO_LARGE: &str = "too_large";
    /// The upload could not be read (422).
    pub const UNREADABLE: &str = "unreadable";
}

/// The upper bounds of the request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The endpoint a device API request is for, from its method and the path segments after
/// `/api/v2/edgedevice/`.
pub fn endpoint(get: bool, parts: &[&str]) -> &'static str {
    if get {
        return match parts {
            ["ping"] => "ping",
            ["certs"] => "certs",
            _ => "other",
        };
    }
    match parts {
        ["register"] => "register",
        ["uuid"] => "uuid",
        ["apps", "instanceid", _, "newlogs"] => "appnewlogs",
        ["id", _, rest @ ..] => match rest {
            ["config"] => "config",
            ["attest"] => "attest",
            ["info"] => "info",
            ["metrics"] => "metrics",
            ["newlogs"] => "newlogs",
            ["apps", "instanceid", _, "newlogs"] => "appnewlogs",
            ["flowlog"] => "flowlog",
            ["hardwarehealth"] => "hardwarehealth",
            _ => "other",
        },
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    kind: &'static str,
    reason: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The device API's counters.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    records: Family<KindLabels, Counter>,
    bytes: Family<KindLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    appends: Family<KindLabels, Histogram, fn() -> Histogram>,
    forgotten: Counter,
}

/// The upper bounds of the telemetry append buckets, in seconds (an append returns once
/// durable: a group commit on a local disk is milliseconds).
const APPEND_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn append_histogram() -> Histogram {
    Histogram::new(APPEND_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            records: Family::default(),
            bytes: Family::default(),
            refused: Family::default(),
            appends: Family::new_with_constructor(append_histogram as fn() -> Histogram),
            forgotten: Counter::default(),
        }
    }
}

impl Metrics {
    /// A request to `endpoint` answered with `code` after `elapsed`.
    pub fn request(&self, endpoint: &'static str, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, code })
            .inc();
        self.durations
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// `records` records of `kind`, `bytes` long in all, kept.
    pub fn kept(&self, kind: telemetry::Kind, records: usize, bytes: usize) {
        let labels = KindLabels {
            kind: kind.as_str(),
        };
        self.records.get_or_create(&labels).inc_by(records as u64);
        self.bytes.get_or_create(&labels).inc_by(bytes as u64);
    }

    /// An append of `kind` to the telemetry store that took `elapsed` (until durable).
    pub fn appended(&self, kind: telemetry::Kind, elapsed: Duration) {
        self.appends
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A deleted Device's telemetry forgotten.
    pub fn forgotten(&self) {
        self.forgotten.inc();
    }

    /// An upload of `kind` refused for `reason` (one of [`reason`]).
    pub fn refused(&self, kind: telemetry::Kind, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels {
                kind: kind.as_str(),
                reason,
            })
            .inc();
    }

    /// Registers the counters in `registry`.
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "eve_device_api_requests",
            "Device API requests, by endpoint and HTTP status code",
            self.requests.clone(),
        );
        registry.register(
            "eve_device_api_request_duration_seconds",
            "Time to answer a device API request, in seconds, by endpoint",
            self.durations.clone(),
        );
        registry.register(
            "eve_telemetry_records",
            "Telemetry records kept, by kind",
            self.records.clone(),
        );
        registry.register(
            "eve_telemetry_bytes",
            "Bytes of telemetry records kept, by kind",
            self.bytes.clone(),
        );
        registry.register(
            "eve_telemetry_append_duration_seconds",
            "Time the telemetry store took to make an upload's records durable (the device's acknowledgement waits for it), by kind, in seconds",
            self.appends.clone(),
        );
        registry.register(
            "eve_telemetry_devices_forgotten",
            "Deleted Devices whose telemetry was removed",
            self.forgotten.clone(),
        );
        registry.register(
            "eve_telemetry_refused",
            "Telemetry uploads refused, by kind and reason",
            self.refused.clone(),
        );
    }
}

/// Registers the device API's metrics (`metrics`) and the count of devices (read from
/// `devices` at each scrape) in `registry`.
pub(crate) fn register(metrics: &Metrics, devices: Store<Device>, registry: &mut Registry) {
    metrics.register(registry);
    registry.register_collector(Box::new(DeviceCounts(devices)));
}

/// Whether the Device's `Ready` condition is `True`.
fn ready(device: &Device) -> bool {
    condition(device).is_some_and(|c| c.status == "True")
}

fn condition(device: &Device) -> Option<&eve_model::DeviceCondition> {
    device
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Whether a device has onboarded: the Device has its certificate.
fn onboarded(device: &Device) -> bool {
    device
        .spec
        .certificate
        .as_deref()
        .is_some_and(|c| !c.is_empty())
}

/// `eve_devices{state}`: Devices known, onboarded and ready.
struct DeviceCounts(Store<Device>);

impl std::fmt::Debug for DeviceCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCounts").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

impl Collector for DeviceCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let devices = self.0.state();
        let counts = [
            ("known", devices.len()),
            ("onboarded", devices.iter().filter(|d| onboarded(d)).count()),
            ("ready", devices.iter().filter(|d| ready(d)).count()),
        ];
        let mut family = encoder.encode_descriptor(
            "eve_devices",
            "Devices known to the device API, those onboarded (their certificate known) and those ready",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in counts {
            ConstGauge::new(count as i64).encode(family.encode_family(&StateLabels { state })?)?;
        }
        Ok(())
    }
}

/// The fleet exporter's view: the caches of Devices and Applications.
pub(crate) struct Fleet {
    pub(crate) devices: Store<Device>,
    pub(crate) applications: Store<Application>,
    pub(crate) usages: std::sync::Arc<crate::usage::Usages>,
}

/// A per-object counter family, as [`gauge`].
fn counter<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a str, &'a str, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (namespace, name, value) in values {
        ConstCounter::new(value)
            .encode(family.encode_family(&[("namespace", namespace), ("name", name)])?)?;
    }
    Ok(())
}

/// A quantity of a Device's status (`capacity`), as a number (`None` when absent or invalid).
fn quantity(device: &Device, resource: &str) -> Option<f64> {
    let milli = eve_model::quantity::milli_of(device.status.as_ref()?.capacity.get(resource)?)?;
    Some(milli as f64 / 1000.0)
}

/// Seconds since the epoch of a `metav1.Time`.
fn seconds(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> f64 {
    time.0.as_millisecond() as f64 / 1000.0
}

/// A per-object gauge family: `values` yields (namespace, name, value) for the objects that
/// have one.
fn gauge<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a str, &'a str, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (namespace, name, value) in values {
        ConstGauge::new(value)
            .encode(family.encode_family(&[("namespace", namespace), ("name", name)])?)?;
    }
    Ok(())
}

impl Collector for Fleet {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut devices = self.devices.state();
        devices.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        let keyed: Vec<(String, String, &Device)> = devices
            .iter()
            .map(|d| (d.namespace().unwrap_or_default(), d.name_any(), &**d))
            .collect();
        let keyed = &keyed;
        let each = move |f: fn(&Device) -> Option<f64>| {
            keyed
                .iter()
                .filter_map(move |(ns, name, d)| Some((ns.as_str(), name.as_str(), f(d)?)))
        };
        gauge(
            &mut encoder,
            "eve_device_ready",
            "1 when the Device's Ready condition is True, else 0",
            each(|d| Some(if ready(d) { 1.0 } else { 0.0 })),
        )?;
        gauge(
            &mut encoder,
            "eve_device_onboarded",
            "1 when the Device's certificate is known, else 0",
            each(|d| Some(if onboarded(d) { 1.0 } else { 0.0 })),
        )?;
        gauge(
            &mut encoder,
            "eve_device_last_seen_timestamp_seconds",
            "When the device last called the device API (status.lastSeen), in seconds since the epoch",
            each(|d| d.status.as_ref()?.last_seen.as_ref().map(seconds)),
        )?;
        gauge(
            &mut encoder,
            "eve_device_ready_heartbeat_timestamp_seconds",
            "When the device last reported its Ready condition, in seconds since the epoch",
            each(|d| condition(d)?.last_heartbeat_time.as_ref().map(seconds)),
        )?;
        gauge(
            &mut encoder,
            "eve_device_cpu_cores",
            "The device's CPUs (status.capacity.cpu)",
            each(|d| quantity(d, "cpu")),
        )?;
        gauge(
            &mut encoder,
            "eve_device_memory_bytes",
            "The device's memory (status.capacity.memory), in bytes",
            each(|d| quantity(d, "memory")),
        )?;
        gauge(
            &mut encoder,
            "eve_device_storage_bytes",
            "The device's storage (status.capacity.ephemeral-storage), in bytes",
            each(|d| quantity(d, "ephemeral-storage")),
        )?;
        let uuids: std::collections::HashSet<&str> = keyed
            .iter()
            .filter_map(|(_, _, d)| d.status.as_ref()?.uuid.as_deref())
            .collect();
        let usages = self.usages.of_known(|uuid| uuids.contains(uuid));
        let usages = &usages;
        let used = |f: fn(&Usage) -> Option<f64>| {
            keyed.iter().filter_map(move |(ns, name, d)| {
                let uuid = d.status.as_ref()?.uuid.as_deref()?;
                Some((ns.as_str(), name.as_str(), f(usages.get(uuid)?)?))
            })
        };
        gauge(
            &mut encoder,
            "eve_device_metrics_timestamp_seconds",
            "When the device took the figures of its last metrics message, in seconds since the epoch",
            used(|u| u.at),
        )?;
        counter(
            &mut encoder,
            "eve_device_cpu_seconds",
            "CPU time the device has used since it booted (its last metrics message)",
            used(|u| u.cpu_seconds),
        )?;
        gauge(
            &mut encoder,
            "eve_device_memory_used_bytes",
            "Memory in use on the device (its last metrics message), in bytes",
            used(|u| u.memory_used_bytes),
        )?;
        gauge(
            &mut encoder,
            "eve_device_persist_size_bytes",
            "The size of the device's /persist partition (its last metrics message), in bytes",
            used(|u| u.disk_total_bytes),
        )?;
        gauge(
            &mut encoder,
            "eve_device_persist_used_bytes",
            "What is used of the device's /persist partition (its last metrics message), in bytes",
            used(|u| u.disk_used_bytes),
        )?;
        counter(
            &mut encoder,
            "eve_device_network_receive_bytes",
            "Bytes the device's ports received since it booted, summed over ports (its last metrics message)",
            used(|u| u.network_receive_bytes),
        )?;
        counter(
            &mut encoder,
            "eve_device_network_transmit_bytes",
            "Bytes the device's ports sent since it booted, summed over ports (its last metrics message)",
            used(|u| u.network_transmit_bytes),
        )?;
        let mut family = encoder.encode_descriptor(
            "eve_device_eve_os_info",
            "1 for the EVE-OS version each device reports (status.eve-os-version)",
            None,
            MetricType::Gauge,
        )?;
        for (namespace, name, device) in keyed {
            let Some(version) = device
                .status
                .as_ref()
                .and_then(|s| s.eve_os_version.as_deref())
            else {
                continue;
            };
            ConstGauge::new(1).encode(family.encode_family(&[
                ("namespace", namespace.as_str()),
                ("name", name.as_str()),
                ("version", version),
            ])?)?;
        }
        let mut applications = self.applications.state();
        applications.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        let mut family = encoder.encode_descriptor(
            "eve_application_state",
            "1 for the state each Application is in (status.state; PENDING before its device reports it), with the device it is on",
            None,
            MetricType::Gauge,
        )?;
        for app in &applications {
            let namespace = app.namespace().unwrap_or_default();
            let name = app.name_any();
            let state = app
                .status
                .as_ref()
                .and_then(|s| s.state.as_deref())
                .unwrap_or("PENDING");
            ConstGauge::new(1).encode(family.encode_family(&[
                ("namespace", namespace.as_str()),
                ("name", name.as_str()),
                ("device", app.spec.node_name.as_deref().unwrap_or("")),
                ("state", state),
            ])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_a_fixed_set() {
        assert_eq!(endpoint(false, &["register"]), "register");
        assert_eq!(endpoint(false, &["id", "u", "config"]), "config");
        assert_eq!(
            endpoint(false, &["id", "u", "apps", "instanceid", "a", "newlogs"]),
            "appnewlogs"
        );
        assert_eq!(
            endpoint(false, &["apps", "instanceid", "a", "newlogs"]),
            "appnewlogs"
        );
        assert_eq!(endpoint(false, &["id", "u", "nonsense"]), "other");
        assert_eq!(endpoint(true, &["certs"]), "certs");
        assert_eq!(endpoint(true, &["register"]), "other");
        for parts in [
            &["register"][..],
            &["uuid"],
            &["id", "u", "attest"],
            &["id", "u", "info"],
            &["id", "u", "metrics"],
            &["id", "u", "newlogs"],
            &["id", "u", "flowlog"],
            &["id", "u", "hardwarehealth"],
            &["x", "y"],
        ] {
            assert!(ENDPOINTS.contains(&endpoint(false, parts)), "{parts:?}");
        }
    }

    #[test]
    fn counters_are_encoded_with_their_labels() {
        let metrics = Metrics::default();
        metrics.request("info", 201, Duration::from_millis(2));
        metrics.kept(telemetry::Kind::Log, 3, 300);
        metrics.refused(telemetry::Kind::Log, reason::BUDGET);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "eve_device_api_requests_total{endpoint=\"info\",code=\"201\"} 1\n",
            "eve_telemetry_records_total{kind=\"log\"} 3\n",
            "eve_telemetry_bytes_total{kind=\"log\"} 300\n",
            "eve_telemetry_refused_total{kind=\"log\",reason=\"budget\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
