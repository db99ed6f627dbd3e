//! What composition reads: the objects a device's configuration is made of, looked up by
//! namespace and name. The live caches ([`crate::fleet::Fleet`]) are one snapshot; a test's
//! objects in memory are another.

use std::sync::Arc;

use eve_model::{Application, DeviceNetwork, Image, NetworkConfig};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;

/// The objects composition looks up.
pub trait Snapshot {
    /// The Image `name` in `namespace`.
    fn image(&self, namespace: &str, name: &str) -> Option<Arc<Image>>;

    /// The Images of type `eve-os` in `namespace` (base OS images), in any order.
    fn base_os_images(&self, namespace: &str) -> Vec<Arc<Image>>;

    /// The PersistentVolumeClaim `name` in `namespace`.
    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>>;

    /// The StorageClass `name` (cluster-scoped).
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>>;

    /// The DeviceNetwork `name` in `namespace`.
    fn network(&self, namespace: &str, name: &str) -> Option<Arc<DeviceNetwork>>;

    /// The DeviceNetworks in `namespace`, in any order.
    fn networks(&self, namespace: &str) -> Vec<Arc<DeviceNetwork>>;

    /// The NetworkConfig `name` in `namespace`.
    fn network_config(&self, namespace: &str, name: &str) -> Option<Arc<NetworkConfig>>;

    /// The Applications bound to the Device `device` in `namespace` (`spec.nodeName`), by name.
    fn applications_on(&self, namespace: &str, device: &str) -> Vec<Arc<Application>>;

    /// The Secret `name` in `namespace` (credentials of data stores and Wi-Fi networks).
    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>>;

    /// The device models of `namespace` (its ConfigMap `adamant-device-models`).
    fn device_models(&self, namespace: &str) -> Option<Arc<ConfigMap>>;

    /// The global-options ConfigMaps (`adamant-global-options`) of every namespace, in any
    /// order.
    fn global_options(&self) -> Vec<Arc<ConfigMap>>;
}
