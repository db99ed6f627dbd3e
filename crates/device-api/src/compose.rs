//! The composer: a device's `EdgeDevConfig` from the objects (docs/resources.md says which
//! object becomes which message). A plain function of a [`Snapshot`] of the objects: the same
//! objects give the same bytes, so the same hash, across restarts and replicas.

mod application;
mod credentials;
#[cfg(test)]
pub(crate) mod fixture;
mod fleet;
mod network;
mod reads;
mod snapshot;
mod storage;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_coverage;
#[cfg(test)]
mod tests_features;

pub use application::{ImageName, VolumeName, image_names, volume_names};
pub use network::ent_proxy;
pub use reads::{Recording, Shared, moved_by};
pub use snapshot::Snapshot;

use std::collections::BTreeMap;

use base64::Engine;
use eve_api::Message;
use eve_api::config::{
    BaseOs, ConfigItem, ContentTree, DatastoreConfig, DeviceOpsCmd, EdgeDevConfig,
    NetworkInstanceConfig, UuiDandVersion, Volume,
};
use eve_model::selection::{Target, matches_affinity};
use eve_model::{Device, annotations};
use kube::ResourceExt;

use crate::cipher::Sealer;

/// The management port every device gets unless annotations name others.
pub const DEFAULT_PORT: &str = "eth0";

/// A composed configuration and its hash.
#[derive(Clone, Debug)]
pub struct Composed {
    /// The configuration.
    pub config: EdgeDevConfig,
    /// base64url of SHA-256 of its encoding.
    pub hash: String,
    /// What the objects ask for that the configuration could not carry, each naming the object
    /// and the fix (the device is told with a Warning Event when it gets this configuration).
    pub problems: Vec<String>,
}

/// A UUID derived from `parts` (for objects EVE needs that have no Kubernetes object of their
/// own: a port's network, an application's boot volume): stable because its inputs are.
pub fn derived_uuid(parts: &[&str]) -> String {
    let digest = eve_api::envelope::sha256(parts.join("/").as_bytes());
    let h: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-5{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

fn uid<K: kube::Resource>(object: &K) -> String {
    object.meta().uid.clone().unwrap_or_default()
}

fn version<K: kube::Resource>(object: &K) -> String {
    object.meta().generation.unwrap_or(0).to_string()
}

struct Builder<'a> {
    snapshot: &'a dyn Snapshot,
    sealer: &'a Sealer,
    device: &'a Device,
    namespace: String,
    config: EdgeDevConfig,
    trees: BTreeMap<String, ContentTree>,
    stores: BTreeMap<String, DatastoreConfig>,
    volumes: BTreeMap<String, Volume>,
    instances: BTreeMap<String, NetworkInstanceConfig>,
    /// Whether a cipher block was sealed for the device (its context goes in the configuration).
    sealed: bool,
    /// The device's ECDH key, once read from its status (`None` inside: it has none).
    device_key: Option<Option<crate::cipher::DeviceKey>>,
    /// The assignment groups of the device's model, with their IO type.
    adapters: BTreeMap<String, i32>,
    problems: Vec<String>,
}

/// Composes the configuration of `device`.
pub fn compose(
    snapshot: &dyn Snapshot,
    sealer: &Sealer,
    device: &Device,
    uuid: &str,
    controllercert_confighash: &str,
) -> Composed {
    let namespace = device.namespace().unwrap_or_default();
    let mut b = Builder {
        snapshot,
        sealer,
        device,
        namespace: namespace.clone(),
        config: EdgeDevConfig::default(),
        trees: BTreeMap::new(),
        stores: BTreeMap::new(),
        volumes: BTreeMap::new(),
        instances: BTreeMap::new(),
        sealed: false,
        device_key: None,
        adapters: BTreeMap::new(),
        problems: Vec::new(),
    };
    let name = device.name_any();
    let device_annotations = device.annotations();
    b.ports();

    // Networks with affinity to this device.
    let empty = BTreeMap::new();
    let target = Target {
        name: &name,
        labels: device.metadata.labels.as_ref().unwrap_or(&empty),
    };
    let mut networks: Vec<_> = snapshot
        .networks(&namespace)
        .into_iter()
        .filter(|n| {
            matches_affinity(
                n.spec
                    .affinity
                    .as_ref()
                    .and_then(|a| a.node_affinity.as_ref()),
                target,
            )
        })
        .collect();
    networks.sort_by_key(|n| n.name_any());
    for network in networks {
        b.instance(&network.name_any());
    }

    // Applications bound to this device.
    // (The index yields them by name: the order, so the hash, is stable.)
    let apps = snapshot.applications_on(&namespace, &name);
    for app in apps
        .iter()
        .filter(|a| a.metadata.deletion_timestamp.is_none())
    {
        let config = b.application(app);
        b.config.apps.push(config);
    }

    // The base OS.
    if let Some(wanted) = device
        .spec
        .eve_os_version
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        let mut images: Vec<_> = snapshot
            .base_os_images(&namespace)
            .into_iter()
            .filter(|i| i.spec.r#ref.rsplit_once(':').map(|(_, tag)| tag) == Some(wanted))
            .collect();
        images.sort_by_key(|i| i.name_any());
        if let Some(image) = images.first() {
            let tree = b.content_tree(image);
            b.config.baseos = Some(BaseOs {
                content_tree_uuid: tree,
                retry_update: None,
                activate: true,
                base_os_version: wanted.to_string(),
            });
        }
    }

    // Config items: the global options, over them the namespace's, then the device's own.
    let mut items: BTreeMap<String, String> = BTreeMap::new();
    let options = snapshot.global_options();
    for scope in ["kube-system", namespace.as_str()] {
        for found in options
            .iter()
            .filter(|o| o.namespace().as_deref() == Some(scope))
        {
            items.extend(found.data.clone().unwrap_or_default());
        }
    }
    if let Some(lines) = device_annotations.get(annotations::CONFIG_ITEMS) {
        for line in lines.lines() {
            if let Some((k, v)) = line.split_once('=') {
                items.insert(k.trim().into(), v.trim().into());
            }
        }
    }
    b.config.config_items = items
        .into_iter()
        .map(|(key, value)| ConfigItem { key, value })
        .collect();
    let device_op = |name: &str| {
        let counter = device_annotations.get(name)?.trim().parse::<u32>().ok()?;
        Some(DeviceOpsCmd {
            counter,
            desired_state: true,
            ops_time: String::new(),
        })
    };
    b.config.reboot = device_op(annotations::REBOOT);
    b.config.shutdown = device_op(annotations::SHUTDOWN);
    if let Some(text) = device_annotations.get(annotations::DISKS) {
        match eve_model::disks::read(text)
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        {
            Ok(disks) => b.config.disks = Some(disks),
            Err(e) => b.problems.push(format!(
                "annotation {}: {e}; no disk layout is sent",
                annotations::DISKS
            )),
        }
    }
    b.config.maintenance_mode = device_annotations
        .get(annotations::MAINTENANCE)
        .is_some_and(|v| v.trim() == "true");
    if b.sealed
        && let Some(key) = b.device_key()
    {
        b.config.cipher_contexts = vec![sealer.context(&key)];
    }

    let mut config = b.config;
    config.id = Some(UuiDandVersion {
        uuid: uuid.to_string(),
        version: String::new(),
    });
    config.content_info = b.trees.into_values().collect();
    config.datastores = b
        .stores
        .into_values()
        .filter(|s| !s.id.is_empty())
        .collect();
    config.volumes = b.volumes.into_values().collect();
    config.network_instances = b.instances.into_values().collect();
    config.controllercert_confighash = controllercert_confighash.to_string();
    config.device_name = name;
    config.project_name = namespace;
    let hash = hash_of(&config);
    Composed {
        config,
        hash,
        problems: b.problems,
    }
}

/// A configuration's `configHash`: base64url of the SHA-256 of its encoding.
pub fn hash_of(config: &EdgeDevConfig) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(eve_api::envelope::sha256(&config.encode_to_vec()))
}
