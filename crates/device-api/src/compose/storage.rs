//! Data stores, content trees and volumes.

use std::collections::BTreeMap;
use std::sync::Arc;

use eve_api::common::EncryptionBlock;
use eve_api::config::{
    ContentTree, DatastoreConfig, DsType, Format, Volume, VolumeContentOrigin,
    VolumeContentOriginType,
};
use eve_model::Image;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;

use super::{Builder, uid};

/// The bytes a claim asks for (`resources.requests.storage`), 0 when it does not say.
pub(super) fn storage_bytes(spec: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec) -> i64 {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(eve_model::quantity::milli_of)
        .map_or(0, |milli| (milli / 1000) as i64)
}

/// An Image's format: `spec.format`, or by its store when unset (registries hold containers,
/// other stores disk images, qcow2 by default).
fn format_of(image: &Image, store_type: Option<&str>) -> Format {
    match (image.spec.format.as_deref(), store_type) {
        (Some("qcow2"), _) => Format::Qcow2,
        (Some("qcow"), _) => Format::Qcow,
        (Some("raw"), _) => Format::Raw,
        (Some("vmdk"), _) => Format::Vmdk,
        (Some("vhdx"), _) => Format::Vhdx,
        (Some("iso"), _) => Format::Iso,
        (Some(_), _) | (None, Some("container")) => Format::Container,
        (None, _) => Format::Qcow2,
    }
}

impl Builder<'_> {
    pub(super) fn image(&self, name: &str) -> Option<Arc<Image>> {
        self.snapshot.image(&self.namespace, name)
    }

    /// The ContentTree of an Image (and its data store); returns its UUID.
    pub(super) fn content_tree(&mut self, image: &Image) -> String {
        let id = uid(image);
        if self.trees.contains_key(&id) {
            return id;
        }
        let store = self.datastore(&image.spec.storage_class);
        let store_type = self
            .snapshot
            .storage_class(&image.spec.storage_class)
            .and_then(|c| c.parameters.as_ref()?.get("type").cloned());
        let format = format_of(image, store_type.as_deref()) as i32;
        self.trees.insert(
            id.clone(),
            ContentTree {
                uuid: id.clone(),
                ds_id: store.clone(),
                url: image.spec.r#ref.clone(),
                iformat: format,
                sha256: image.spec.sha256.clone().unwrap_or_default(),
                max_size_bytes: image.spec.size.unwrap_or(0).max(0) as u64,
                display_name: image.name_any(),
                generation_count: 0,
                custom_meta_data: String::new(),
                ds_ids_list: vec![store],
            },
        );
        id
    }

    /// The DatastoreConfig of an eve StorageClass; returns its UUID.
    pub(super) fn datastore(&mut self, class: &str) -> String {
        let Some(class) = self.snapshot.storage_class(class) else {
            return String::new();
        };
        let id = uid(class.as_ref());
        if self.stores.contains_key(&id) {
            return id;
        }
        let parameters = class.parameters.clone().unwrap_or_default();
        let kind = parameters.get("type").map(String::as_str).unwrap_or("");
        let url = parameters.get("URL").cloned().unwrap_or_default();
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url.as_str()));
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (d_type, fqdn) = match kind {
            "container" => (DsType::DsContainerRegistry, format!("docker://{host}")),
            "http" => (DsType::DsHttp, format!("http://{host}")),
            "https" => (DsType::DsHttps, format!("https://{host}")),
            "sftp" => (DsType::DsSftp, host.to_string()),
            "s3" => (DsType::DsS3, host.to_string()),
            "azure" => (DsType::DsAzureBlob, host.to_string()),
            "ftp" => (DsType::DsHttp, format!("{scheme}://{host}")),
            _ => (DsType::DsUnknown, host.to_string()),
        };
        let mut store = DatastoreConfig {
            id: id.clone(),
            d_type: d_type as i32,
            fqdn,
            dpath: path.to_string(),
            region: parameters.get("region").cloned().unwrap_or_default(),
            ..DatastoreConfig::default()
        };
        self.store_credentials(&class.name_any(), &parameters, &mut store);
        self.stores.insert(id.clone(), store);
        id
    }

    /// A data store's credentials, from the Secret its StorageClass names
    /// (`credentialsSecret` and `credentialsSecretNamespace`, or `credentialsRef:
    /// namespace/name`): `apiKey` (or `username`) and `password`, sealed for the device.
    fn store_credentials(
        &mut self,
        class: &str,
        parameters: &BTreeMap<String, String>,
        store: &mut DatastoreConfig,
    ) {
        // Admission refused what does not name a Secret.
        let Ok(Some(secret)) = eve_model::data_store::credentials_secret(parameters) else {
            return;
        };
        let (namespace, name) = (secret.namespace, secret.name);
        let user = format!("StorageClass {class}");
        let Some(fields) = self.secret(&user, &namespace, &name) else {
            return;
        };
        let key = fields
            .get("apiKey")
            .or_else(|| fields.get("username"))
            .cloned()
            .unwrap_or_default();
        let password = fields.get("password").cloned().unwrap_or_default();
        if key.is_empty() && password.is_empty() {
            self.problems.push(format!(
                "{user}: Secret {namespace}/{name} has none of the keys username, apiKey, password: add them; no credentials are sent"
            ));
            return;
        }
        let block = EncryptionBlock {
            ds_api_key: key.clone(),
            ds_password: password.clone(),
            ..EncryptionBlock::default()
        };
        match self.seal(&block) {
            Some(sealed) => store.cipher_data = Some(sealed),
            None => {
                store.api_key = key;
                store.password = password;
            }
        }
    }

    pub(super) fn claim(&self, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.snapshot.claim(&self.namespace, name)
    }

    /// The Volume of a claim; returns its UUID. None when its source cannot be had: an Image
    /// that does not exist (admitted in warning mode) or a source that is not an Image. Such a
    /// volume is left out (the application reports `ReferencesResolved=False`), never sent as a
    /// blank disk in its place.
    pub(super) fn volume_from_claim(&mut self, claim: &PersistentVolumeClaim) -> Option<String> {
        use eve_model::claims::{DataSource, data_source};
        let id = uid(claim);
        let spec = claim.spec.clone().unwrap_or_default();
        let size = storage_bytes(&spec);
        let origin = match data_source(&spec) {
            DataSource::Image { name, .. } => {
                let image = self.image(&name)?;
                VolumeContentOrigin {
                    r#type: VolumeContentOriginType::VcotDownload as i32,
                    download_content_tree_id: self.content_tree(&image),
                }
            }
            DataSource::Blank => VolumeContentOrigin {
                r#type: VolumeContentOriginType::VcotBlank as i32,
                download_content_tree_id: String::new(),
            },
            DataSource::Unknown { .. } => return None,
        };
        let read_only = spec
            .access_modes
            .as_ref()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|m| m == "ReadOnlyMany"));
        self.volumes.insert(
            id.clone(),
            Volume {
                uuid: id.clone(),
                origin: Some(origin),
                generation_count: 0,
                maxsizebytes: size,
                readonly: read_only,
                display_name: claim.name_any(),
                ..Volume::default()
            },
        );
        Some(id)
    }
}
