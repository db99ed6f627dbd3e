//! What each device last said it uses (CPU time, memory, the `/persist` disk, network bytes),
//! read from its metrics posts for the fleet exporter: one small entry per device, in this
//! process's memory (a replica knows the devices whose last metrics post it received).

use std::collections::HashMap;
use std::sync::Mutex;

use eve_api::telemetry::ZMetricMsg;

/// The partition EVE keeps applications' volumes and its own state on.
pub const PERSIST: &str = "/persist";

const MB: f64 = 1024.0 * 1024.0;

/// A device's usage as its last metrics message gave it; a figure the message lacks is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// When the device took the figures (`atTimeStamp`), seconds since the epoch.
    pub at: Option<f64>,
    /// CPU time the device has used since it booted, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Memory in use, in bytes: the device-wide figure when sent (`memory.usedMem`), otherwise
    /// EVE's own use plus what applications were given (`deviceMemory`).
    pub memory_used_bytes: Option<f64>,
    /// The `/persist` partition's size, in bytes.
    pub disk_total_bytes: Option<f64>,
    /// What is used of the `/persist` partition, in bytes.
    pub disk_used_bytes: Option<f64>,
    /// Bytes received on the device's ports since boot, summed over ports.
    pub network_receive_bytes: Option<f64>,
    /// Bytes sent on the device's ports since boot, summed over ports.
    pub network_transmit_bytes: Option<f64>,
}

impl Usage {
    /// The usage in `message` (`None` when it has no device metrics).
    pub fn of(message: &ZMetricMsg) -> Option<Usage> {
        let eve_api::telemetry::z_metric_msg::MetricContent::Dm(device) =
            message.metric_content.as_ref()?;
        let cpu_seconds = device.cpu_metric.as_ref().map(|cpu| {
            if cpu.total_ns > 0 {
                cpu.total_ns as f64 / 1e9
            } else {
                cpu.total as f64
            }
        });
        let memory_used_bytes = match (&device.memory, &device.device_memory) {
            (Some(memory), _) if memory.used_mem > 0 => Some(f64::from(memory.used_mem) * MB),
            (_, Some(memory)) if memory.memory_mb > 0 => {
                Some((f64::from(memory.used_eve_mb) + f64::from(memory.allocated_apps_mb)) * MB)
            }
            _ => None,
        };
        let persist = device.disk.iter().find(|d| d.mount_path == PERSIST);
        let ports = (!device.network.is_empty()).then_some(&device.network);
        Some(Usage {
            at: message
                .at_time_stamp
                .as_ref()
                .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9),
            cpu_seconds,
            memory_used_bytes,
            disk_total_bytes: persist.map(|d| d.total as f64 * MB),
            disk_used_bytes: persist.map(|d| d.used as f64 * MB),
            network_receive_bytes: ports.map(|p| p.iter().map(|n| n.rx_bytes as f64).sum()),
            network_transmit_bytes: ports.map(|p| p.iter().map(|n| n.tx_bytes as f64).sum()),
        })
    }
}

/// The last usage of each device, by UUID.
#[derive(Debug, Default)]
pub struct Usages(Mutex<HashMap<String, Usage>>);

impl Usages {
    /// Keeps `usage` as the device's latest.
    pub fn record(&self, uuid: &str, usage: Usage) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(uuid.to_string(), usage);
    }

    /// Forgets a device's usage.
    pub fn forget(&self, uuid: &str) {
        self.0.lock().expect("not poisoned").remove(uuid);
    }

    /// The usages of the devices `known` says are still there (the others are forgotten).
    pub fn of_known(&self, known: impl Fn(&str) -> bool) -> HashMap<String, Usage> {
        let mut usages = self.0.lock().expect("not poisoned");
        usages.retain(|uuid, _| known(uuid));
        usages.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_api::telemetry::{
        CpuMetric, DeviceMemoryMetric, DeviceMetric, DiskMetric, MemoryMetric, NetworkMetric,
        z_metric_msg::MetricContent,
    };

    fn message(device: DeviceMetric) -> ZMetricMsg {
        ZMetricMsg {
            dev_id: "d".into(),
            at_time_stamp: Some(pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 500_000_000,
            }),
            metric_content: Some(MetricContent::Dm(device)),
            ..ZMetricMsg::default()
        }
    }

    #[test]
    fn usage_is_read_from_device_metrics() {
        let usage = Usage::of(&message(DeviceMetric {
            cpu_metric: Some(CpuMetric {
                total: 12,
                total_ns: 12_500_000_000,
                ..CpuMetric::default()
            }),
            memory: Some(MemoryMetric {
                used_mem: 512,
                avail_mem: 1536,
            }),
            disk: vec![
                DiskMetric {
                    mount_path: "/config".into(),
                    total: 1,
                    used: 1,
                    ..DiskMetric::default()
                },
                DiskMetric {
                    mount_path: PERSIST.into(),
                    total: 1000,
                    used: 250,
                    ..DiskMetric::default()
                },
            ],
            network: vec![
                NetworkMetric {
                    i_name: "eth0".into(),
                    rx_bytes: 100,
                    tx_bytes: 10,
                    ..NetworkMetric::default()
                },
                NetworkMetric {
                    i_name: "eth1".into(),
                    rx_bytes: 1,
                    tx_bytes: 2,
                    ..NetworkMetric::default()
                },
            ],
            ..DeviceMetric::default()
        }))
        .unwrap();
        assert_eq!(
            usage,
            Usage {
                at: Some(1_700_000_000.5),
                cpu_seconds: Some(12.5),
                memory_used_bytes: Some(512.0 * MB),
                disk_total_bytes: Some(1000.0 * MB),
                disk_used_bytes: Some(250.0 * MB),
                network_receive_bytes: Some(101.0),
                network_transmit_bytes: Some(12.0),
            }
        );
    }

    #[test]
    fn newer_eve_memory_and_absent_figures() {
        let usage = Usage::of(&message(DeviceMetric {
            cpu_metric: Some(CpuMetric {
                total: 7,
                ..CpuMetric::default()
            }),
            device_memory: Some(DeviceMemoryMetric {
                memory_mb: 4096,
                allocated_apps_mb: 1024,
                allocated_eve_mb: 800,
                used_eve_mb: 600,
            }),
            ..DeviceMetric::default()
        }))
        .unwrap();
        assert_eq!(usage.cpu_seconds, Some(7.0), "seconds when no nanoseconds");
        assert_eq!(usage.memory_used_bytes, Some(1624.0 * MB));
        assert_eq!(usage.disk_used_bytes, None, "no /persist: no disk figure");
        assert_eq!(usage.network_receive_bytes, None);
        assert_eq!(Usage::of(&ZMetricMsg::default()), None, "no device metrics");
    }

    #[test]
    fn devices_no_longer_known_are_forgotten() {
        let usages = Usages::default();
        usages.record("a", Usage::default());
        usages.record("b", Usage::default());
        assert_eq!(usages.of_known(|uuid| uuid == "a").len(), 1);
        assert_eq!(usages.of_known(|_| true).len(), 1, "b is gone for good");
    }
}
