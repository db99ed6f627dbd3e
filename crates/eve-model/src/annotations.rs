//! The standard `eve.lfedge.org/` annotations and labels.

/// The prefix of the standard annotations. Other domains' annotations are carried and ignored.
pub const PREFIX: &str = "eve.lfedge.org/";

/// Device: whether the device may onboard and receive its configuration (`"true"`, the default,
/// or `"false"`: the device gets 403 and its applications stop being sent).
pub const ACTIVATE: &str = "eve.lfedge.org/activate";
/// Device: what the device is (`physical`, `virtual`); informational.
pub const NODE_TYPE: &str = "eve.lfedge.org/node-type";
/// Device: where the device is (`texas/usa`); informational.
pub const LOCATION: &str = "eve.lfedge.org/location";
/// Device: the prefix of `eve.lfedge.org/network-<port>: <NetworkConfig>`, which manages the
/// physical port `<port>` with that NetworkConfig (EVE API: a SystemAdapter).
pub const NETWORK_PORT_PREFIX: &str = "eve.lfedge.org/network-";
/// Device: config items for this device only, `key=value` per line (EVE API: `configItems`),
/// over the global ones of the `adamant-global-options` ConfigMap.
pub const CONFIG_ITEMS: &str = "eve.lfedge.org/config-items";
/// Device: a number; raising it reboots the device once (EVE API: `reboot.counter`).
pub const REBOOT: &str = "eve.lfedge.org/reboot";
/// Device: a number; raising it shuts the device's applications down once (EVE API:
/// `shutdown.counter`).
pub const SHUTDOWN: &str = "eve.lfedge.org/shutdown";
/// Device: `"true"` puts the device in maintenance mode (EVE API: `maintenance_mode`): it stops
/// its applications' updates and reports `MAINTENANCE_MODE`; `"false"` or absent: normal.
pub const MAINTENANCE: &str = "eve.lfedge.org/maintenance";
/// Device or Namespace: how attestation quotes are judged (the Device's over its namespace's):
/// `record` (the default: every device is let through and the outcome recorded), `enforce` (a
/// device with a TPM must send a quote that verifies and matches a PCR template; one without a
/// TPM is let through) or `require-tpm` (as `enforce`, and devices without a TPM are refused).
pub const ATTESTATION: &str = "eve.lfedge.org/attestation";
/// Device: its model, a key of its namespace's ConfigMap `adamant-device-models`: its physical
/// IO, what applications may be given (EVE API: `deviceIoList`).
pub const MODEL: &str = "eve.lfedge.org/model";
/// Application: the device's adapters it is given (passthrough), by their assignment groups in
/// the device model, comma-separated (EVE API: `AppInstanceConfig.adapters`).
pub const ADAPTERS: &str = "eve.lfedge.org/adapters";
/// Device: how EVE arranges its disks, EVE's `DisksConfig` in proto3 JSON or YAML (`arrayType`,
/// `disks[] {disk: {name, logicalName, serial}, oldDisk, diskConfig}`, `children`) (EVE API:
/// `disks`).
pub const DISKS: &str = "eve.lfedge.org/disks";
/// Device: a number; raising it asks the device to send a fresh set of logs and info.
pub const COLLECT_INFO: &str = "eve.lfedge.org/collect-info";
/// Application: a number; raising it restarts the application once (EVE API: `restart.counter`).
pub const RESTART: &str = "eve.lfedge.org/restart";
/// Application: a number; raising it purges the application's volumes and restarts it (EVE API:
/// `purge.counter`).
pub const PURGE: &str = "eve.lfedge.org/purge";
/// PersistentVolumeClaim: the Device the claim is bound to, written by the controller.
pub const BOUND_DEVICE: &str = "eve.lfedge.org/bound-device";
/// Label on made Applications: the hash of the template they were made from.
pub const TEMPLATE_HASH: &str = "eve.lfedge.org/template-hash";
/// The annotation (on the EVE kinds and on namespaces) that turns refused references into
/// warnings: `eve.lfedge.org/reference-checks: warn`.
pub const REFERENCE_CHECKS: &str = "eve.lfedge.org/reference-checks";

/// The multus networks annotation: the DeviceNetworks an Application attaches to,
/// comma-separated.
pub const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";

/// Every standard annotation; a `network-<port>` one is recognised by its prefix.
pub const KNOWN: &[&str] = &[
    ACTIVATE,
    NODE_TYPE,
    LOCATION,
    CONFIG_ITEMS,
    REBOOT,
    SHUTDOWN,
    MAINTENANCE,
    ATTESTATION,
    MODEL,
    ADAPTERS,
    DISKS,
    COLLECT_INFO,
    RESTART,
    PURGE,
    BOUND_DEVICE,
    TEMPLATE_HASH,
    REFERENCE_CHECKS,
    "eve.lfedge.org/crd-revision",
];

/// Whether `key` is an `eve.lfedge.org/` annotation this version does not know.
pub fn is_unknown(key: &str) -> bool {
    key.starts_with(PREFIX)
        && !KNOWN.contains(&key)
        && key
            .strip_prefix(NETWORK_PORT_PREFIX)
            .is_none_or(str::is_empty)
}

/// The DeviceNetworks named by a networks annotation value (`a,b` or `ns/a`; JSON lists are
/// read for their `name`s).
pub fn networks(value: &str) -> Vec<String> {
    let value = value.trim();
    if value.starts_with('[')
        && let Ok(serde_json::Value::Array(items)) = serde_json::from_str(value)
    {
        return items
            .iter()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect();
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
        .collect()
}

/// The names of a comma-separated list annotation (`a, b`), empty ones left out.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The standard annotations docs/resources.md names and the ones this crate knows are the
    /// same: a documented annotation without code, or one the code knows and the docs do not,
    /// fails.
    #[test]
    fn the_documented_annotations_are_the_known_ones() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/resources.md"),
        )
        .expect("docs/resources.md");
        let documented: BTreeSet<&str> = doc
            .split('`')
            .filter_map(|s| s.strip_prefix(super::PREFIX))
            .map(|s| s.split([':', '=', ' ']).next().unwrap_or(s))
            .filter(|s| !s.is_empty() && !s.starts_with("network-") && !s.contains('/'))
            .collect();
        let known: BTreeSet<&str> = super::KNOWN
            .iter()
            .map(|k| {
                k.strip_prefix(super::PREFIX)
                    .expect("a standard annotation")
            })
            .collect();
        assert_eq!(documented, known);
    }
}
