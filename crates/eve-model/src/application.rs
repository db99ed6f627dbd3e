//! Application: one workload instance on one device.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeAffinity, PersistentVolumeClaimSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Condition;

/// An application on one device.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "Application",
    namespaced,
    status = "ApplicationStatus",
    shortname = "app",
    shortname = "apps",
    category = "eve",
    doc = "An application instance on one device, as a Pod on one node (EVE API: AppInstanceConfig with its VolumeConfigs). spec.nodeName binds it to a Device, set by the user or by the scheduler from nodeSelector, node affinity, and the devices its networks (annotation k8s.v1.cni.cncf.io/networks, naming DeviceNetworks) and volumes are on. The first container's image (an Image) is what it boots.",
    printcolumn(
        name = "Device",
        type_ = "string",
        json_path = ".spec.nodeName",
        description = "The Device the application is bound to"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "The state the device reports"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.containers[0].image",
        description = "The Image it boots"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "UUID",
        type_ = "string",
        json_path = ".metadata.uid",
        priority = 1,
        description = "The application's UUID in the EVE API"
    ),
    printcolumn(
        name = "Images",
        type_ = "string",
        json_path = ".status.images[*].state",
        priority = 1,
        description = "The state of each Image it uses on its device (download, verification, loading)"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.images[*].progress",
        priority = 1,
        description = "The download progress of each Image in percent"
    ),
    printcolumn(
        name = "Image Errors",
        type_ = "string",
        json_path = ".status.images[*].message",
        priority = 1,
        description = "Why an Image cannot be had, as the device reports it"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The Device (in this namespace) the application is bound to. Set it to choose the device
    /// yourself; otherwise the scheduler sets it. Once set it does not change: to move an
    /// application, delete it (an ApplicationDeployment does that for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Labels a Device must have (all of them) for the application to run there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Constraints on the Device, as a Pod's node affinity over Device labels and fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The application's containers. The first one's image is what the application boots (a
    /// container image, or a VM's disk); more containers are packaged with it.
    #[schemars(length(min = 1))]
    pub containers: Vec<Container>,
    /// Volumes the containers mount: PersistentVolumeClaims (made from an Image or blank), or
    /// ephemeral ones made for this application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// How the application runs: `container` (the default for a container image), `hvm` (a fully
    /// virtualized VM), `pv` (paravirtualized), `fml` (a VM with UEFI for Windows and the like),
    /// `noHypervisor` (on the bare device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["container", "hvm", "pv", "fml", "noHypervisor"]))]
    pub virtualization: Option<String>,
    /// Cloud-init user data given to the application (EVE API: `userData`), as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Whether the application should be running (`true`, the default) or stopped but kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate: Option<bool>,
}

/// Scheduling constraints.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    /// Constraints on the Device, over its labels (matchExpressions) and its name (matchFields
    /// on `metadata.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<NodeAffinity>,
}

/// A container of an application.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The container's name, unique in the application (a DNS label).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The name of an Image in this namespace.
    #[schemars(length(min = 1))]
    pub image: String,
    /// The entrypoint, replacing the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// CPU, memory and storage the application needs (requests) and may use (limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Where volumes are mounted in the container's filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Where volumes appear as block devices (for VMs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_devices: Vec<VolumeDevice>,
    /// Ports the application listens on; with `hostPort`, forwarded from the device's ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
}

/// An environment variable.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct EnvVar {
    /// Its name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// Resources, with quantities as Kubernetes writes them (`500m`, `1`, `256M`, `8Gi`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct ResourceRequirements {
    /// What the application needs: `cpu` (vCPUs), `memory` (RAM), `storage` (its boot volume's
    /// size).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
    /// The most the application may use: `cpu`, `memory`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
}

/// A volume mounted into the container's filesystem.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume's name in `spec.volumes`.
    pub name: String,
    /// Where it is mounted.
    pub mount_path: String,
    /// Whether it is mounted read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A volume given to the application as a block device.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeDevice {
    /// The volume's name in `spec.volumes`.
    pub name: String,
    /// The device's path in the application, `/dev/sda2`.
    pub device_path: String,
}

/// A port of the application.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// The port the application listens on.
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: i32,
    /// The device's port forwarded to it (EVE API: a port-map ACL on the first network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub host_port: Option<i32>,
    /// `TCP` (the default) or `UDP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["TCP", "UDP"]))]
    pub protocol: Option<String>,
    /// A name for the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A volume of the application: exactly one of `persistentVolumeClaim` or `ephemeral`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// The volume's name, which volumeMounts and volumeDevices use.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// A PersistentVolumeClaim in this namespace. It binds to the application's device: no
    /// application on another device can use it afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// A volume made for this application and deleted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EphemeralVolumeSource>,
}

/// A PersistentVolumeClaim used as a volume.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimVolumeSource {
    /// The PersistentVolumeClaim's name (in this namespace).
    pub claim_name: String,
    /// Whether the application may only read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// An ephemeral volume.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralVolumeSource {
    /// The claim the volume is made from, as a PersistentVolumeClaim's spec.
    pub volume_claim_template: VolumeClaimTemplate,
}

/// The template of an ephemeral volume's claim.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct VolumeClaimTemplate {
    /// The claim: `storageClassName` (a StorageClass with `provisioner: eve`), `resources`,
    /// `volumeMode`, and optionally `dataSourceRef` to an Image.
    pub spec: PersistentVolumeClaimSpec,
}

/// What the controller and the device report of an application.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The application's current state as the device reports it (EVE's states: `INIT`,
    /// `DOWNLOADING`, `VERIFYING`, `LOADING`, `CREATED_VOLUME`, `INSTALLED`, `BOOTING`,
    /// `RUNNING`, `PAUSING`, `PAUSED`, `HALTING`, `HALTED`, `RESTARTING`, `PURGING`, `ERROR`,
    /// ...), `PENDING` before the device has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ApplicationState>,
    /// The states the application went through, oldest first, with when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<StateRecord>,
    /// Conditions: `Scheduled`, `ReferencesResolved`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The application's addresses on its networks, as the device reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The generation of the spec the device last acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The application's volumes as the device reports them: `boot` (the first container's
    /// image) and each of `spec.volumes` by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeStatus>,
    /// The Images the application uses (the first container's image, then those of its
    /// claims), each as its device reports its content tree: download progress, verification,
    /// loading, or why it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ContentTreeStatus>,
}

/// An Image an application uses, as its device has it (EVE's content tree).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContentTreeStatus {
    /// The Image.
    pub name: String,
    /// EVE's state of its content tree (`INITIAL`, `DOWNLOAD_STARTED`, `DOWNLOADED`,
    /// `VERIFYING`, `VERIFIED`, `LOADING`, `LOADED`, `ERROR`, ...).
    pub state: String,
    /// Download or verification progress in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
    /// The device's error (at most 1 KiB), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A volume of an application on its device.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    /// `boot`, or the name in `spec.volumes`.
    pub name: String,
    /// The claim, for a volume from a PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    /// EVE's state of the volume (`INITIAL`, `DOWNLOAD_STARTED`, `VERIFYING`, `CREATING_VOLUME`,
    /// `CREATED_VOLUME`, `ERROR`, ...).
    pub state: String,
    /// Download or creation progress in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
    /// The device's error, when the state is `ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An application state (EVE's `ZSwState` names, and `PENDING`).
pub type ApplicationState = String;

/// A state an application was in.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct StateRecord {
    /// The state.
    pub state: ApplicationState,
    /// When the application entered it.
    pub timestamp: Time,
}
