//! Applications: their instance configurations and the names of what they use.

use std::collections::BTreeMap;

use base64::Engine;
use eve_api::common::EncryptionBlock;
use eve_api::config::{
    Ace, AceAction, AceMatch, Adapter, AppInstanceConfig, InstanceOpsCmd, NetworkAdapter,
    UuiDandVersion, VmConfig, VmMode, Volume, VolumeContentOrigin, VolumeContentOriginType,
    VolumeRef,
};
use eve_model::{Application, annotations};
use kube::ResourceExt;

use super::storage::storage_bytes;
use super::{Builder, Snapshot, derived_uuid, uid, version};

impl Builder<'_> {
    pub(super) fn application(&mut self, app: &Application) -> AppInstanceConfig {
        let id = uid(app);
        let spec = &app.spec;
        let mut refs = Vec::new();
        let mut memory_kib: u64 = 0;
        let mut max_kib: u64 = 0;
        let mut vcpus: u64 = 0;
        let mut env = Vec::new();
        for (i, container) in spec.containers.iter().enumerate() {
            let resources = container.resources.clone().unwrap_or_default();
            let q = |map: &BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            >,
                     key: &str| {
                map.get(key)
                    .and_then(eve_model::quantity::milli_of)
                    .map_or(0, |milli| milli.max(0) as u64)
            };
            vcpus += q(&resources.requests, "cpu").div_ceil(1000);
            memory_kib += q(&resources.requests, "memory") / 1000 / 1024;
            max_kib += q(&resources.limits, "memory") / 1000 / 1024;
            env.extend(
                container
                    .env
                    .iter()
                    .map(|e| format!("{}={}", e.name, e.value)),
            );
            // The first container's command and arguments replace the image's entrypoint and
            // command, through EVE's EVE_ECO_CMD (its cmdline override).
            if i == 0 && !(container.command.is_empty() && container.args.is_empty()) {
                let words: Vec<String> = container
                    .command
                    .iter()
                    .chain(&container.args)
                    .map(|w| shell_word(w))
                    .collect();
                env.push(format!("EVE_ECO_CMD={}", words.join(" ")));
            }
            if i == 0
                && let Some(image) = self.image(&container.image)
            {
                let tree = self.content_tree(&image);
                let boot = boot_volume_uuid(&id);
                self.volumes.insert(
                    boot.clone(),
                    Volume {
                        uuid: boot.clone(),
                        origin: Some(VolumeContentOrigin {
                            r#type: VolumeContentOriginType::VcotDownload as i32,
                            download_content_tree_id: tree,
                        }),
                        maxsizebytes: (q(&resources.requests, "storage") / 1000) as i64,
                        display_name: format!("{}-boot", app.name_any()),
                        ..Volume::default()
                    },
                );
                refs.push(VolumeRef {
                    uuid: boot,
                    generation_count: 0,
                    mount_dir: String::new(),
                });
            }
        }
        let mounts: BTreeMap<&str, &str> = spec
            .containers
            .iter()
            .flat_map(|c| {
                c.volume_mounts
                    .iter()
                    .map(|m| (m.name.as_str(), m.mount_path.as_str()))
                    .chain(
                        c.volume_devices
                            .iter()
                            .map(|d| (d.name.as_str(), d.device_path.as_str())),
                    )
            })
            .collect();
        for volume in &spec.volumes {
            let uuid = if let Some(claim) = &volume.persistent_volume_claim {
                match self
                    .claim(&claim.claim_name)
                    .and_then(|claim| self.volume_from_claim(&claim))
                {
                    Some(uuid) => uuid,
                    None => continue,
                }
            } else if let Some(ephemeral) = &volume.ephemeral {
                let uuid = ephemeral_volume_uuid(&id, &volume.name);
                let size = storage_bytes(&ephemeral.volume_claim_template.spec);
                self.volumes.insert(
                    uuid.clone(),
                    Volume {
                        uuid: uuid.clone(),
                        origin: Some(VolumeContentOrigin {
                            r#type: VolumeContentOriginType::VcotBlank as i32,
                            download_content_tree_id: String::new(),
                        }),
                        maxsizebytes: size,
                        display_name: format!("{}-{}", app.name_any(), volume.name),
                        ..Volume::default()
                    },
                );
                uuid
            } else {
                continue;
            };
            refs.push(VolumeRef {
                uuid,
                generation_count: 0,
                mount_dir: mounts
                    .get(volume.name.as_str())
                    .copied()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        let networks = app
            .annotations()
            .get(annotations::NETWORKS)
            .map(|v| annotations::networks(v))
            .unwrap_or_default();
        let mut interfaces = Vec::new();
        for (i, network) in networks.iter().enumerate() {
            let Some(instance) = self.instance(network) else {
                continue;
            };
            let mut acls = vec![Ace {
                matches: vec![AceMatch {
                    r#type: "ip".into(),
                    value: "0.0.0.0/0".into(),
                }],
                actions: Vec::new(),
                name: "allow-all".into(),
                id: 1,
                dir: 0,
            }];
            if i == 0 {
                for (n, port) in spec
                    .containers
                    .iter()
                    .flat_map(|c| c.ports.iter())
                    .filter(|p| p.host_port.is_some())
                    .enumerate()
                {
                    acls.push(Ace {
                        matches: vec![
                            AceMatch {
                                r#type: "protocol".into(),
                                value: port.protocol.clone().unwrap_or("tcp".into()).to_lowercase(),
                            },
                            AceMatch {
                                r#type: "lport".into(),
                                value: port.host_port.unwrap_or(0).to_string(),
                            },
                        ],
                        actions: vec![AceAction {
                            portmap: true,
                            app_port: port.container_port.max(0) as u32,
                            ..AceAction::default()
                        }],
                        name: format!("portmap-{}", port.host_port.unwrap_or(0)),
                        id: 2 + n as i32,
                        dir: 0,
                    });
                }
            }
            interfaces.push(NetworkAdapter {
                name: format!("eth{i}"),
                network_id: instance,
                acls,
                ..NetworkAdapter::default()
            });
        }
        let mode = match spec.virtualization.as_deref() {
            Some("hvm") => VmMode::Hvm,
            Some("pv") => VmMode::Pv,
            Some("fml") => VmMode::Fml,
            Some("noHypervisor") => VmMode::Nohyper,
            _ => VmMode::Hvm,
        };
        let user_data = match &spec.user_data {
            Some(data) => base64::engine::general_purpose::STANDARD.encode(data),
            None if !env.is_empty() => {
                base64::engine::general_purpose::STANDARD.encode(env.join("\n"))
            }
            None => String::new(),
        };
        // Sealed for the device when it can decrypt (user data and environments hold secrets
        // too): EVE reads `protectedUserData` (base64, as `userData`) from the block.
        let (user_data, cipher_data) = if user_data.is_empty() {
            (user_data, None)
        } else {
            let block = EncryptionBlock {
                protected_user_data: user_data.clone(),
                ..EncryptionBlock::default()
            };
            match self.seal(&block) {
                Some(sealed) => (String::new(), Some(sealed)),
                None => (user_data, None),
            }
        };
        // Adapters passed through: assignment groups of the device's model.
        let mut adapters = Vec::new();
        for group in eve_model::device_model::wanted(app.annotations()) {
            match self.adapters.get(&group) {
                Some(ptype) => adapters.push(Adapter {
                    r#type: *ptype,
                    name: group,
                    ..Adapter::default()
                }),
                None => self.problems.push(format!(
                    "Application {}: annotation {}: the device's model has no assignment group {group}; it is not given to the application",
                    app.name_any(),
                    annotations::ADAPTERS
                )),
            }
        }
        AppInstanceConfig {
            adapters,
            uuidandversion: Some(UuiDandVersion {
                uuid: id,
                version: version(app),
            }),
            displayname: app.name_any(),
            fixedresources: Some(VmConfig {
                memory: memory_kib.min(u32::MAX as u64) as u32,
                maxmem: max_kib.max(memory_kib).min(u32::MAX as u64) as u32,
                vcpus: vcpus.max(1).min(u32::MAX as u64) as u32,
                virtualization_mode: mode as i32,
                ..VmConfig::default()
            }),
            activate: spec.activate.unwrap_or(true),
            interfaces,
            user_data,
            cipher_data,
            volume_ref_list: refs,
            restart: instance_op(app, annotations::RESTART),
            purge: instance_op(app, annotations::PURGE),
            ..AppInstanceConfig::default()
        }
    }
}

/// `word` as one word of a POSIX shell command line: as is when it is plain, else in single
/// quotes.
pub(super) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An Application's operation counter from its annotation `name` (a number; raising it asks
/// the device to do it once more), as EVE's `InstanceOpsCmd`.
fn instance_op(app: &Application, name: &str) -> Option<InstanceOpsCmd> {
    let counter = app.annotations().get(name)?.trim().parse::<u32>().ok()?;
    Some(InstanceOpsCmd {
        counter,
        ops_time: String::new(),
    })
}

/// The UUID of the boot volume of the application with UID `app`.
fn boot_volume_uuid(app: &str) -> String {
    derived_uuid(&[app, "boot"])
}

/// The UUID of the ephemeral volume `name` of the application with UID `app`.
fn ephemeral_volume_uuid(app: &str, name: &str) -> String {
    derived_uuid(&[app, "ephemeral", name])
}

/// A volume of an application, as composition names it for the device.
pub struct VolumeName {
    /// The UUID the device reports it under.
    pub uuid: String,
    /// `boot`, or its name in `spec.volumes`.
    pub name: String,
    /// The claim it comes from, if any.
    pub claim: Option<String>,
}

/// The volumes composition makes for `app`: the boot volume, and the application's volumes by
/// their names in `spec.volumes` (a claim's volume is the claim's UID, an ephemeral volume's is
/// derived from the application's).
pub fn volume_names(snapshot: &dyn Snapshot, app: &Application) -> Vec<VolumeName> {
    let id = uid(app);
    let namespace = app.namespace().unwrap_or_default();
    let mut names = vec![VolumeName {
        uuid: boot_volume_uuid(&id),
        name: "boot".into(),
        claim: None,
    }];
    for volume in &app.spec.volumes {
        let uuid = if let Some(claim) = &volume.persistent_volume_claim {
            match snapshot.claim(&namespace, &claim.claim_name) {
                Some(found) => uid(found.as_ref()),
                None => continue,
            }
        } else if volume.ephemeral.is_some() {
            ephemeral_volume_uuid(&id, &volume.name)
        } else {
            continue;
        };
        names.push(VolumeName {
            uuid,
            name: volume.name.clone(),
            claim: volume
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.clone()),
        });
    }
    names
}

/// An Image an application uses, as composition names it for the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// The UUID of its ContentTree, which the device reports it under (the Image's UID).
    pub uuid: String,
    /// The Image's name.
    pub name: String,
}

/// The Images composition sends the device for `app`, each once: the first container's image,
/// then the Images its claims are made from, in the order of `spec.volumes`. Images that do not
/// exist (yet) are left out, as composition leaves them out.
pub fn image_names(snapshot: &dyn Snapshot, app: &Application) -> Vec<ImageName> {
    use eve_model::claims::{DataSource, data_source};
    let namespace = app.namespace().unwrap_or_default();
    let mut wanted: Vec<String> = Vec::new();
    if let Some(first) = app.spec.containers.first() {
        wanted.push(first.image.clone());
    }
    for volume in &app.spec.volumes {
        let Some(claim) = &volume.persistent_volume_claim else {
            continue;
        };
        if let Some(found) = snapshot.claim(&namespace, &claim.claim_name)
            && let DataSource::Image { name, .. } =
                data_source(&found.spec.clone().unwrap_or_default())
        {
            wanted.push(name);
        }
    }
    let mut names: Vec<ImageName> = Vec::new();
    for name in wanted {
        let Some(found) = snapshot.image(&namespace, &name) else {
            continue;
        };
        let uuid = uid(found.as_ref());
        if !names.iter().any(|n| n.uuid == uuid) {
            names.push(ImageName { uuid, name });
        }
    }
    names
}
