//! Image: content in a data store.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An image in a data store.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "Image",
    namespaced,
    status = "ImageStatus",
    shortname = "img",
    category = "eve",
    doc = "An image in a data store: a container image, a VM disk, or (type eve-os) an EVE-OS release. Applications boot from Images (containers[].image); volumes are made from them (PersistentVolumeClaim dataSourceRef). EVE API: a ContentTree in the data store of its StorageClass; a BaseOS for type eve-os.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Storage-Class",
        type_ = "string",
        json_path = ".spec.storageClass"
    ),
    printcolumn(name = "Ref", type_ = "string", json_path = ".spec.ref"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Where the image is in its data store: a repository and tag (`corp1/ubuntu:20.04`) for a
    /// container registry, a path relative to the store's URL for HTTP(S), FTP and object stores.
    #[schemars(length(min = 1))]
    pub r#ref: String,
    /// The StorageClass (with `provisioner: eve`) of the data store the image is in.
    #[schemars(length(min = 1))]
    pub storage_class: String,
    /// What the image is for: any name (`user` by convention); `eve-os` is reserved for EVE-OS
    /// releases, which Devices ask for by their version in `spec.eve-os-version`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The image's format: `container` (OCI), `qcow2`, `raw`, `vmdk`, `vhdx` or `iso`. Default:
    /// `container` in a container registry, from the file name otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["container", "qcow2", "qcow", "raw", "vmdk", "vhdx", "iso"]))]
    pub format: Option<String>,
    /// The content's SHA-256 (64 hex digits), which devices verify; without it devices trust the
    /// store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub sha256: Option<String>,
    /// The image's size in bytes, if known (devices reserve space for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub size: Option<i64>,
}

/// What the controller reports of a Image.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct ImageStatus {
    /// Conditions: `ReferencesResolved` (False while an object it names is missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<crate::Condition>,
}

/// The `type` of the Images that are EVE-OS releases.
pub const BASE_OS: &str = "eve-os";

/// Whether `image` is an EVE-OS release (`type: eve-os`), which Devices ask for by version.
pub fn is_base_os(image: &Image) -> bool {
    image.spec.type_.as_deref() == Some(BASE_OS)
}
