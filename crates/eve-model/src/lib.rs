//! The EVE resource model: the `eve.lfedge.org/v1beta1` kinds of the specification as Rust types,
//! the CustomResourceDefinitions generated from them, and the model's rules that need no API
//! server: quantities, certificates, device selection, annotations and identities.
//!
//! This crate knows neither HTTP nor storage nor protobuf; the controllers and the device API use
//! it through these types and functions.

// kube-derive's `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

pub mod annotations;
mod application;
pub mod certs;
pub mod claims;
pub mod conditions;
mod crds;
pub mod data_store;
mod device;
pub mod device_model;
pub mod disks;
mod fleet;
pub mod image;
mod kinds;
mod network;
mod onboarding;
pub mod quantity;
pub mod selection;

pub use application::{
    Affinity, Application, ApplicationSpec, ApplicationState, ApplicationStatus, Container,
    ContainerPort, ContentTreeStatus, EnvVar, EphemeralVolumeSource,
    PersistentVolumeClaimVolumeSource, ResourceRequirements, StateRecord, Volume,
    VolumeClaimTemplate, VolumeDevice, VolumeMount, VolumeStatus,
};
pub use crds::{
    CRD_REVISION, CRD_REVISION_ANNOTATION, TELEMETRY_SUBRESOURCES, cluster_roles, crds, crds_yaml,
};
pub use device::{
    Device, DeviceAdapter, DeviceAddress, DeviceAttestation, DeviceCondition, DeviceConfig,
    DeviceConfigSpec, DeviceConfigStatus, DeviceInfo, DeviceSpec, DeviceStatus, EcdhCertificate,
};
pub use fleet::{
    ApplicationDaemonSet, ApplicationDaemonSetSpec, ApplicationDaemonSetStatus,
    ApplicationDeployment, ApplicationDeploymentSpec, ApplicationDeploymentStatus,
    ApplicationTemplate, DaemonSetUpdateStrategy, DeploymentStrategy, Revision, RollingUpdate,
    TemplateMetadata,
};
pub use image::{Image, ImageSpec, ImageStatus};
pub use kinds::{KINDS, Kind};
pub use network::{
    DeviceNetwork, DeviceNetworkSpec, DeviceNetworkStatus, NetworkConfig, NetworkConfigSpec, Wifi,
};
pub use onboarding::{
    CertificateSpec, DeviceCaSpec, DeviceCertificateAuthority, OnboardCaSpec, OnboardCertificate,
    OnboardCertificateAuthority,
};

/// The API group of the EVE kinds. Reserved: no other CustomResourceDefinition may use it.
pub const GROUP: &str = "eve.lfedge.org";
/// The version the kinds are served and stored at.
pub const VERSION: &str = "v1beta1";
/// `GROUP/VERSION`.
pub const API_VERSION: &str = "eve.lfedge.org/v1beta1";
/// The category every EVE kind is in (`kubectl get eve`).
pub const CATEGORY: &str = "eve";

/// A condition in the Kubernetes convention (`type`, `status`, `reason`, `message`,
/// `lastTransitionTime`, `observedGeneration`).
pub type Condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
