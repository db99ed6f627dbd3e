//! The live caches as a [`Snapshot`]: each lookup reads the reflector store of its kind.

use std::sync::Arc;

use eve_model::{Application, DeviceNetwork, Image, NetworkConfig};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::ObjectRef;

use super::Snapshot;
use crate::fleet::Fleet;

impl Snapshot for Fleet {
    fn image(&self, namespace: &str, name: &str) -> Option<Arc<Image>> {
        self.images.get(&ObjectRef::new(name).within(namespace))
    }

    fn base_os_images(&self, namespace: &str) -> Vec<Arc<Image>> {
        self.images.state_filter(|i| {
            i.metadata.namespace.as_deref() == Some(namespace) && eve_model::image::is_base_os(i)
        })
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(name).within(namespace))
    }

    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new(name))
    }

    fn network(&self, namespace: &str, name: &str) -> Option<Arc<DeviceNetwork>> {
        self.networks.get(&ObjectRef::new(name).within(namespace))
    }

    fn networks(&self, namespace: &str) -> Vec<Arc<DeviceNetwork>> {
        self.networks
            .state()
            .into_iter()
            .filter(|n| n.metadata.namespace.as_deref() == Some(namespace))
            .collect()
    }

    fn network_config(&self, namespace: &str, name: &str) -> Option<Arc<NetworkConfig>> {
        self.network_configs
            .get(&ObjectRef::new(name).within(namespace))
    }

    fn applications_on(&self, namespace: &str, device: &str) -> Vec<Arc<Application>> {
        Fleet::applications_on(self, namespace, device)
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets.get(namespace, name)
    }

    fn device_models(&self, namespace: &str) -> Option<Arc<ConfigMap>> {
        self.models
            .get(&ObjectRef::new(eve_model::device_model::MODELS).within(namespace))
    }

    fn global_options(&self) -> Vec<Arc<ConfigMap>> {
        self.options.state()
    }
}
