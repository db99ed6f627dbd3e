//! What a composition read of the objects devices share (Images, claims, networks, Secrets,
//! options), so that a change of one of them composes again only the configurations made from
//! it. Each read is a 64-bit key: of one object by kind, namespace and name (also when it was
//! not there: its creation must reach the device that looked for it), or of every object of a
//! kind in a namespace (a list). A change moves the object's key and the lists it is in; two
//! reads whose keys collide only make one configuration composed once more than needed.

use std::cell::RefCell;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use eve_model::{Application, DeviceNetwork, Image, NetworkConfig};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;

use super::Snapshot;

/// The kinds devices share that composition reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shared {
    /// Images.
    Image,
    /// Images of type `eve-os` (a change of one that is or was of that type is also one of
    /// these).
    BaseOsImage,
    /// PersistentVolumeClaims.
    Claim,
    /// StorageClasses (cluster-scoped: namespace "").
    StorageClass,
    /// DeviceNetworks.
    Network,
    /// NetworkConfigs.
    NetworkConfig,
    /// Credentials Secrets.
    Secret,
    /// The device-model ConfigMaps.
    DeviceModels,
    /// The global-options ConfigMaps.
    GlobalOptions,
}

/// The key of a read of `kind`: of the object `name` in `namespace`, or (`name` None) of every
/// object of `namespace`, or (both None) of every object of the kind.
fn key(kind: Shared, namespace: Option<&str>, name: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    (kind, namespace, name).hash(&mut h);
    h.finish()
}

/// The keys a change of the object `name` of `kind` in `namespace` moves: its own, its
/// namespace's list, the list of every namespace.
pub fn moved_by(kind: Shared, namespace: &str, name: &str) -> [u64; 3] {
    [
        key(kind, Some(namespace), Some(name)),
        key(kind, Some(namespace), None),
        key(kind, None, None),
    ]
}

/// A [`Snapshot`] that notes what is read through it.
pub struct Recording<'a> {
    inner: &'a dyn Snapshot,
    reads: RefCell<Vec<u64>>,
}

impl<'a> Recording<'a> {
    /// Reads through `inner`.
    pub fn new(inner: &'a dyn Snapshot) -> Recording<'a> {
        Recording {
            inner,
            reads: RefCell::default(),
        }
    }

    /// The keys of what was read, each once, in order.
    pub fn reads(self) -> Box<[u64]> {
        let mut reads = self.reads.into_inner();
        reads.sort_unstable();
        reads.dedup();
        reads.into_boxed_slice()
    }

    fn read(&self, kind: Shared, namespace: Option<&str>, name: Option<&str>) {
        self.reads.borrow_mut().push(key(kind, namespace, name));
    }
}

impl Snapshot for Recording<'_> {
    fn image(&self, namespace: &str, name: &str) -> Option<Arc<Image>> {
        self.read(Shared::Image, Some(namespace), Some(name));
        self.inner.image(namespace, name)
    }

    fn base_os_images(&self, namespace: &str) -> Vec<Arc<Image>> {
        self.read(Shared::BaseOsImage, Some(namespace), None);
        self.inner.base_os_images(namespace)
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.read(Shared::Claim, Some(namespace), Some(name));
        self.inner.claim(namespace, name)
    }

    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.read(Shared::StorageClass, Some(""), Some(name));
        self.inner.storage_class(name)
    }

    fn network(&self, namespace: &str, name: &str) -> Option<Arc<DeviceNetwork>> {
        self.read(Shared::Network, Some(namespace), Some(name));
        self.inner.network(namespace, name)
    }

    fn networks(&self, namespace: &str) -> Vec<Arc<DeviceNetwork>> {
        self.read(Shared::Network, Some(namespace), None);
        self.inner.networks(namespace)
    }

    fn network_config(&self, namespace: &str, name: &str) -> Option<Arc<NetworkConfig>> {
        self.read(Shared::NetworkConfig, Some(namespace), Some(name));
        self.inner.network_config(namespace, name)
    }

    fn applications_on(&self, namespace: &str, device: &str) -> Vec<Arc<Application>> {
        // The device's own: its Applications' events move the device itself.
        self.inner.applications_on(namespace, device)
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.read(Shared::Secret, Some(namespace), Some(name));
        self.inner.secret(namespace, name)
    }

    fn device_models(&self, namespace: &str) -> Option<Arc<ConfigMap>> {
        self.read(
            Shared::DeviceModels,
            Some(namespace),
            Some(eve_model::device_model::MODELS),
        );
        self.inner.device_models(namespace)
    }

    fn global_options(&self) -> Vec<Arc<ConfigMap>> {
        self.read(Shared::GlobalOptions, None, None);
        self.inner.global_options()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_moves_the_reads_of_the_object_and_of_the_lists_it_is_in() {
        let [object, namespace, every] = moved_by(Shared::Image, "ns", "ubuntu");
        assert_eq!(object, key(Shared::Image, Some("ns"), Some("ubuntu")));
        assert_eq!(namespace, key(Shared::Image, Some("ns"), None));
        assert_eq!(every, key(Shared::Image, None, None));
        let others = [
            key(Shared::Image, Some("ns"), Some("alpine")),
            key(Shared::Image, Some("other"), Some("ubuntu")),
            key(Shared::Image, Some("other"), None),
            key(Shared::Claim, Some("ns"), Some("ubuntu")),
        ];
        for other in others {
            assert!(![object, namespace, every].contains(&other));
        }
    }
}
