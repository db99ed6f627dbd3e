//! Device, the edge device, and DeviceConfig, its composed configuration.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Condition;

/// What the operator declares of a device: its identity for onboarding and the EVE-OS it should
/// run.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "Device",
    namespaced,
    status = "DeviceStatus",
    shortname = "dev",
    shortname = "edev",
    category = "eve",
    doc = "An EVE edge device, much like a Node. The spec identifies it for onboarding (device certificate, onboarding certificate, serial) and asks for an EVE-OS version; the status is what the device reports. Devices are selected by their labels (nodeSelector, node affinity); annotations under eve.lfedge.org/ are device options (see docs/resources.md).",
    printcolumn(
        name = "UUID",
        type_ = "string",
        json_path = ".status.uuid",
        description = "The device's UUID in the EVE API"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the device reports in"
    ),
    printcolumn(
        name = "EVE-OS",
        type_ = "string",
        json_path = ".status.eve-os-version",
        description = "The EVE-OS version the device runs"
    ),
    printcolumn(
        name = "Last-Seen",
        type_ = "date",
        json_path = ".status.lastSeen",
        description = "When the device last called the controller, refreshed every half grace period at most (Ready tells whether it is alive)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Wanted-EVE-OS",
        type_ = "string",
        json_path = ".spec.eve-os-version",
        priority = 1,
        description = "The EVE-OS version asked for"
    ),
    printcolumn(
        name = "Serial",
        type_ = "string",
        json_path = ".spec.serial",
        priority = 1,
        description = "The device's serial number"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
pub struct DeviceSpec {
    /// The EVE-OS version the device should run, e.g. `8.10.0-kvm-amd64`; an Image of type
    /// `eve-os` in the namespace provides it. Empty: whatever the device runs now. Changing it
    /// starts a base-OS update (EVE API: `EdgeDevConfig.baseos`).
    #[serde(
        rename = "eve-os-version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub eve_os_version: Option<String>,
    /// The device certificate, a PEM-encoded X.509 certificate, base64-encoded. Known only once
    /// the device has booted; may be self-signed, as EVE's are. Unique among Devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The device's serial number, as EVE reads it from the hardware. With `onboard`, the pair
    /// (serial, onboarding certificate) is unique among Devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The onboarding certificate the device presents on `register`, a PEM-encoded X.509
    /// certificate, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboard: Option<String>,
}

/// What a device reports, much like a NodeStatus.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct DeviceStatus {
    /// The EVE-OS version the device runs.
    #[serde(
        rename = "eve-os-version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub eve_os_version: Option<String>,
    /// The device's UUID in the EVE API, assigned when the Device is first seen (or by the
    /// device on registration) and kept for the Device's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The device's addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<DeviceAddress>,
    /// The resources applications may use (cpu, memory, ephemeral-storage, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    /// The device's total resources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    /// The device's conditions, `Ready` among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<DeviceCondition>,
    /// What the device is: hardware, kernel, runtime.
    #[serde(rename = "nodeInfo", default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<DeviceInfo>,
    /// When the device last called the controller, as last written: refreshed every half grace
    /// period at most, less often in large fleets (`Ready` tells whether it is alive).
    #[serde(rename = "lastSeen", default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// The generation of the spec the controller last acted on.
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    /// The adapters the device can give applications, as it reports them (its model's
    /// assignment groups; `eve.lfedge.org/adapters` names them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adapters: Vec<DeviceAdapter>,
    /// The device's ECDH certificate, as it uploaded it (`attest` with its certificates): the
    /// key data store and Wi-Fi credentials are encrypted for. Without it they are sent in the
    /// clear fields.
    #[serde(
        rename = "ecdhCertificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ecdh_certificate: Option<EcdhCertificate>,
    /// The device's last attestation: what its TPM measured and how it was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<DeviceAttestation>,
}

/// A device's last attestation, as the controller judged it under the policy of the annotation
/// `eve.lfedge.org/attestation` (of the Device, else of its namespace).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAttestation {
    /// `Verified` (the quote answers the nonce issued, is signed by the attestation key and
    /// its PCRs are the ones signed; `template` names the PCR template they match, if any),
    /// `NoTPM` (the device has no TPM: nothing to verify) or `Failed` (`message` says why).
    pub outcome: String,
    /// Why it failed, or which template is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the device was let through (an integrity token given): the policy decides.
    pub accepted: bool,
    /// The policy applied: `record`, `enforce` or `require-tpm`.
    pub policy: String,
    /// The PCR template (a key of the ConfigMap `adamant-pcr-templates`) the PCRs match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The EVE version the device reported with its quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eve_version: Option<String>,
    /// The firmware version the device reported with its quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    /// The PCRs the TPM signed, by index (hex SHA-256): a template to approve.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pcrs: BTreeMap<String, String>,
    /// When the quote came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// An adapter a device reports it can give applications (EVE's `ZioBundle`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAdapter {
    /// Its assignment group.
    pub name: String,
    /// Its type (`PhyIoUSB`, `PhyIoCOM`, `PhyIoNetEth`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// Its members' logical labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The UUID of the application it is given to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    /// What the device says is wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A device's ECDH certificate, by what encryption for it needs.
#[derive(Clone, Debug, Default, PartialEq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EcdhCertificate {
    /// The certificate's hash as the device names it (`certHash`), hex.
    pub hash: String,
    /// Its P-256 public key (SEC1, uncompressed), base64.
    pub public_key: String,
}

/// An address of a device.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct DeviceAddress {
    /// The address.
    pub address: String,
    /// Its type: `InternalIP`, `ExternalIP`, `Hostname`, ...
    #[serde(rename = "type")]
    pub type_: String,
}

/// A condition of a device, as a NodeCondition.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct DeviceCondition {
    /// The condition's type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the device last reported it.
    #[serde(
        rename = "lastHeartbeatTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_heartbeat_time: Option<Time>,
    /// When the status last changed.
    #[serde(
        rename = "lastTransitionTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_transition_time: Option<Time>,
    /// Why, in one CamelCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a device is, as a NodeSystemInfo; every field optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// The CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The boot's identifier; changes on every reboot.
    #[serde(rename = "bootID", default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The container runtime and its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime_version: Option<String>,
    /// The kernel's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// The machine's identifier.
    #[serde(rename = "machineID", default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// The operating system (`eve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
    /// The OS image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_image: Option<String>,
    /// The hardware's UUID (SMBIOS).
    #[serde(
        rename = "systemUUID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub system_uuid: Option<String>,
    /// The hardware's manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// The hardware's product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
}

impl Device {
    /// A hash of what placing applications reads of a Device: identity, generation (the
    /// spec), labels, the `eve.lfedge.org/` annotations and deletion; not its status (the
    /// UUID, the certificates, the heartbeat), which the device and the controllers' own
    /// writes change, nor the annotations of other domains, which the EVE half carries and
    /// ignores (a GitOps tool's tracking annotation, say).
    pub fn placement_fingerprint(&self) -> u64 {
        use std::hash::Hasher;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash_placement(&mut h);
        h.finish()
    }

    /// A hash of everything a Device says except its heartbeat: what placement reads, and the
    /// UUID and ECDH certificate in its status. Equal before and after a status write that only
    /// refreshes the heartbeat, so watchers can ignore those.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash_placement(&mut h);
        let status = self.status.as_ref();
        status.and_then(|s| s.uuid.as_ref()).hash(&mut h);
        // What credentials are encrypted for.
        status
            .and_then(|s| s.ecdh_certificate.as_ref())
            .hash(&mut h);
        h.finish()
    }

    fn hash_placement(&self, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        let meta = &self.metadata;
        meta.uid.hash(h);
        meta.generation.hash(h);
        meta.labels.hash(h);
        for (key, value) in meta.annotations.iter().flatten() {
            if key.starts_with(crate::annotations::PREFIX) {
                (key, value).hash(h);
            }
        }
        meta.deletion_timestamp.is_some().hash(h);
    }
}

/// The composed configuration of one device.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "DeviceConfig",
    namespaced,
    status = "DeviceConfigStatus",
    shortname = "devcfg",
    category = "eve",
    doc = "The whole configuration of one device (EVE API: EdgeDevConfig, what `config` returns), named after its Device. The controller composes it from the other objects; a user may edit it, and with `spec.paused` keep the controller from overwriting it.",
    printcolumn(name = "Device", type_ = "string", json_path = ".spec.device"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused"),
    printcolumn(name = "Hash", type_ = "string", json_path = ".status.configHash"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
pub struct DeviceConfigSpec {
    /// The Device (in this namespace) the configuration is for.
    pub device: String,
    /// Whether the composer leaves this configuration alone (user edits stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// The EdgeDevConfig message in its JSON form (proto3 JSON mapping, field names in
    /// lowerCamelCase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crds::whole_object")]
    pub config: Option<serde_json::Value>,
}

impl DeviceConfigSpec {
    /// Whether the user holds this configuration (`spec.paused: true`).
    pub fn is_paused(&self) -> bool {
        self.paused == Some(true)
    }
}

/// What the controller reports of a DeviceConfig.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceConfigStatus {
    /// The hash of the configuration as sent to the device (its `configHash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The generation the hash was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The configuration's conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_leaves_the_fingerprint_alone() {
        let mut device = Device::new("d", DeviceSpec::default());
        device.status = Some(DeviceStatus {
            uuid: Some("u".into()),
            ..DeviceStatus::default()
        });
        let before = device.fingerprint();
        device.status.as_mut().unwrap().eve_os_version = Some("13.4.0".into());
        assert_eq!(device.fingerprint(), before, "status beyond the UUID");
        device.metadata.labels = Some([("site".to_string(), "a".to_string())].into());
        assert_ne!(device.fingerprint(), before, "labels");
    }

    #[test]
    fn only_eve_annotations_move_the_fingerprints() {
        let mut device = Device::new("d", DeviceSpec::default());
        let before = (device.fingerprint(), device.placement_fingerprint());
        let annotate = |device: &mut Device, key: &str| {
            device
                .metadata
                .annotations
                .get_or_insert_default()
                .insert(key.into(), "1".into());
        };
        annotate(&mut device, "argocd.argoproj.io/tracking-id");
        annotate(&mut device, "bench.example.com/burst");
        let after = (device.fingerprint(), device.placement_fingerprint());
        assert_eq!(after, before, "other domains' annotations");
        annotate(&mut device, crate::annotations::ACTIVATE);
        let eve = (device.fingerprint(), device.placement_fingerprint());
        assert_ne!(eve.0, before.0, "an eve.lfedge.org annotation");
        assert_ne!(eve.1, before.1, "an eve.lfedge.org annotation");
    }

    #[test]
    fn placement_hears_of_labels_eve_annotations_and_deletion_not_of_status() {
        let mut device = Device::new("d", DeviceSpec::default());
        let before = device.placement_fingerprint();
        device.status = Some(DeviceStatus {
            uuid: Some("u".into()),
            ecdh_certificate: Some(EcdhCertificate {
                hash: "h".into(),
                public_key: "k".into(),
            }),
            ..DeviceStatus::default()
        });
        assert_eq!(
            device.placement_fingerprint(),
            before,
            "the UUID, a certificate"
        );
        assert_ne!(device.fingerprint(), before, "the device API hears of them");
        type Change = fn(&mut Device);
        let changes: [(&str, Change); 3] = [
            ("labels", |d| {
                d.metadata.labels = Some([("site".to_string(), "a".to_string())].into())
            }),
            ("eve.lfedge.org annotations", |d| {
                let activate = (
                    crate::annotations::ACTIVATE.to_string(),
                    "false".to_string(),
                );
                d.metadata.annotations = Some([activate].into())
            }),
            ("deletion", |d| {
                d.metadata.deletion_timestamp = Some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
                )
            }),
        ];
        for (what, change) in changes {
            let mut changed = device.clone();
            change(&mut changed);
            assert_ne!(changed.placement_fingerprint(), before, "{what}");
        }
    }
}
