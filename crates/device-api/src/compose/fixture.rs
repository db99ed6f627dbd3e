//! A [`Snapshot`] for tests: objects held in memory, read from YAML as `kubectl apply` sends
//! them and stored as the API server stores them (quantities in canonical form, a UID and a
//! generation).

use std::path::Path;
use std::sync::Arc;

use eve_model::{Application, Device, DeviceNetwork, Image, NetworkConfig};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Snapshot;

/// Objects in memory, a list per kind.
#[derive(Default)]
pub(crate) struct Objects {
    pub(super) devices: Vec<Arc<Device>>,
    pub(super) images: Vec<Arc<Image>>,
    pub(super) claims: Vec<Arc<PersistentVolumeClaim>>,
    pub(super) classes: Vec<Arc<StorageClass>>,
    pub(super) networks: Vec<Arc<DeviceNetwork>>,
    pub(super) network_configs: Vec<Arc<NetworkConfig>>,
    pub(super) applications: Vec<Arc<Application>>,
    pub(super) options: Vec<Arc<ConfigMap>>,
    pub(super) secrets: Vec<Arc<Secret>>,
    pub(super) models: Vec<Arc<ConfigMap>>,
}

/// The object of `value` as its type.
fn typed<K: DeserializeOwned>(value: serde_json::Value) -> Arc<K> {
    Arc::new(serde_json::from_value(value).expect("an object of its kind"))
}

/// The one object of `list` named `name` in `namespace`.
fn find<K: kube::Resource>(list: &[Arc<K>], namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
    list.iter()
        .find(|o| {
            o.meta().namespace.as_deref() == namespace && o.meta().name.as_deref() == Some(name)
        })
        .cloned()
}

/// The objects of `list` in `namespace`.
fn within<K: kube::Resource>(list: &[Arc<K>], namespace: &str) -> Vec<Arc<K>> {
    list.iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
        .cloned()
        .collect()
}

impl Objects {
    /// The objects of the YAML documents in the files of `directory` whose names end in
    /// `.yaml`, in the order of their names.
    pub(super) fn from_directory(directory: &Path) -> Objects {
        let mut files: Vec<_> = std::fs::read_dir(directory)
            .expect("a directory")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let mut objects = Objects::default();
        for file in files {
            objects.add_yaml(&std::fs::read_to_string(file).expect("a YAML file"));
        }
        objects
    }

    /// The objects of `yaml`'s documents, added. Kinds composition does not read are skipped.
    /// An object without a UID gets `KIND-NAME` (lowercase), one without a generation 1.
    pub(super) fn add_yaml(&mut self, yaml: &str) {
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let mut value = serde_json::Value::deserialize(document).expect("YAML");
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let metadata = value["metadata"].as_object_mut().expect("metadata");
            metadata
                .entry("uid")
                .or_insert_with(|| format!("{}-{name}", kind.to_lowercase()).into());
            metadata.entry("generation").or_insert(1.into());
            let invalid = match kind.as_str() {
                "Application" => eve_model::quantity::normalize_application(&mut value),
                "Device" => eve_model::quantity::normalize_device(&mut value),
                _ => Vec::new(),
            };
            assert!(invalid.is_empty(), "{kind} {name}: {invalid:?}");
            // The API server keeps a Secret's stringData as data.
            if let Some(serde_json::Value::Object(strings)) =
                value.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                use base64::Engine;
                let data = value["data"].as_object_mut().map(std::mem::take);
                let mut data = data.unwrap_or_default();
                for (key, text) in strings {
                    let text = text.as_str().unwrap_or_default().as_bytes().to_vec();
                    data.insert(
                        key,
                        base64::engine::general_purpose::STANDARD
                            .encode(text)
                            .into(),
                    );
                }
                value["data"] = data.into();
            }
            match kind.as_str() {
                "Device" => self.devices.push(typed(value)),
                "Image" => self.images.push(typed(value)),
                "PersistentVolumeClaim" => self.claims.push(typed(value)),
                "StorageClass" => self.classes.push(typed(value)),
                "DeviceNetwork" => self.networks.push(typed(value)),
                "NetworkConfig" => self.network_configs.push(typed(value)),
                "Application" => self.applications.push(typed(value)),
                "ConfigMap" if name == eve_model::device_model::MODELS => {
                    self.models.push(typed(value))
                }
                "ConfigMap" => self.options.push(typed(value)),
                "Secret" => self.secrets.push(typed(value)),
                _ => {}
            }
        }
    }

    /// The Device `name`.
    pub(super) fn device(&self, name: &str) -> Arc<Device> {
        self.devices
            .iter()
            .find(|d| d.name_any() == name)
            .cloned()
            .expect("the Device")
    }

    /// Binds the Application `app` to the Device `device` (`spec.nodeName`), as the scheduler
    /// does.
    pub(super) fn bind(&mut self, app: &str, device: &str) {
        let found = self
            .applications
            .iter_mut()
            .find(|a| a.name_any() == app)
            .expect("the Application");
        Arc::make_mut(found).spec.node_name = Some(device.to_string());
    }
}

impl Snapshot for Objects {
    fn image(&self, namespace: &str, name: &str) -> Option<Arc<Image>> {
        find(&self.images, Some(namespace), name)
    }

    fn base_os_images(&self, namespace: &str) -> Vec<Arc<Image>> {
        let mut images = within(&self.images, namespace);
        images.retain(|i| eve_model::image::is_base_os(i));
        images
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        find(&self.claims, Some(namespace), name)
    }

    fn storage_class(&self, name: &str) -> Option<Arc<StorageClass>> {
        find(&self.classes, None, name)
    }

    fn network(&self, namespace: &str, name: &str) -> Option<Arc<DeviceNetwork>> {
        find(&self.networks, Some(namespace), name)
    }

    fn networks(&self, namespace: &str) -> Vec<Arc<DeviceNetwork>> {
        within(&self.networks, namespace)
    }

    fn network_config(&self, namespace: &str, name: &str) -> Option<Arc<NetworkConfig>> {
        find(&self.network_configs, Some(namespace), name)
    }

    fn applications_on(&self, namespace: &str, device: &str) -> Vec<Arc<Application>> {
        let mut bound: Vec<_> = within(&self.applications, namespace)
            .into_iter()
            .filter(|a| a.spec.node_name.as_deref() == Some(device))
            .collect();
        bound.sort_by_key(|a| a.name_any());
        bound
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        find(&self.secrets, Some(namespace), name)
    }

    fn device_models(&self, namespace: &str) -> Option<Arc<ConfigMap>> {
        find(
            &self.models,
            Some(namespace),
            eve_model::device_model::MODELS,
        )
    }

    fn global_options(&self) -> Vec<Arc<ConfigMap>> {
        self.options.clone()
    }
}

/// The controller's ECDH key in tests.
pub(super) fn controller_key() -> p256::SecretKey {
    p256::SecretKey::from_slice(&[7u8; 32]).expect("a scalar")
}

/// A device's ECDH key in tests.
pub(super) fn device_key() -> p256::SecretKey {
    p256::SecretKey::from_slice(&[9u8; 32]).expect("a scalar")
}

/// The sealer of [`controller_key`], its certificate hashing to 32 bytes of 1.
pub(super) fn sealer() -> crate::cipher::Sealer {
    use p256::pkcs8::EncodePrivateKey;
    let pem = controller_key()
        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .expect("PEM");
    crate::cipher::Sealer::new(&pem, vec![1; 32]).expect("a sealer")
}

/// `status.ecdhCertificate` of a Device holding [`device_key`] (its certificate hashing to 16
/// bytes of 2), as YAML.
pub(super) fn ecdh_status() -> String {
    use base64::Engine;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = device_key().public_key().to_encoded_point(false);
    format!(
        "status:\n  ecdhCertificate:\n    hash: {}\n    publicKey: {}\n",
        "02".repeat(16),
        base64::engine::general_purpose::STANDARD.encode(point.as_bytes())
    )
}
