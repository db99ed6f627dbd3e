//! The composer: a device's `EdgeDevConfig` from the objects (docs/resources.md says which
//! object becomes which message). A plain function of a [`Snapshot`] of the objects: the same
//! objects give the same bytes, so the same hash, across restarts and replicas.

#[cfg(test)]
mod fixture;
mod fleet;
mod snapshot;
#[cfg(test)]
mod tests;

pub use snapshot::Snapshot;

use std::collections::BTreeMap;

use base64::Engine;
use eve_api::Message;
use eve_api::common::{
    DhcpType, IpRange, Ipspec, NetworkType, PhyIoMemberUsage, PhyIoType, ProxyConfig, ProxyProto,
    ProxyServer,
};
use eve_api::config::{
    Ace, AceAction, AceMatch, AppInstanceConfig, BaseOs, ConfigItem, ContentTree, DatastoreConfig,
    DeviceOpsCmd, DsType, EdgeDevConfig, Format, InstanceOpsCmd, NetworkAdapter, NetworkConfig,
    NetworkInstanceConfig, PhysicalIo, SystemAdapter, UuiDandVersion, VmConfig, VmMode, Volume,
    VolumeContentOrigin, VolumeContentOriginType, VolumeRef, ZNetworkInstType,
};
use eve_model::selection::{Target, matches_affinity};
use eve_model::{Application, Device, Image, annotations};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;

/// The management port every device gets unless annotations name others.
pub const DEFAULT_PORT: &str = "eth0";

/// A composed configuration and its hash.
#[derive(Clone, Debug)]
pub struct Composed {
    /// The configuration.
    pub config: EdgeDevConfig,
    /// base64url of SHA-256 of its encoding.
    pub hash: String,
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

/// The bytes a claim asks for (`resources.requests.storage`), 0 when it does not say.
fn storage_bytes(spec: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec) -> i64 {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(eve_model::quantity::milli_of)
        .map_or(0, |milli| (milli / 1000) as i64)
}

fn uid<K: kube::Resource>(object: &K) -> String {
    object.meta().uid.clone().unwrap_or_default()
}

fn version<K: kube::Resource>(object: &K) -> String {
    object.meta().generation.unwrap_or(0).to_string()
}

struct Builder<'a> {
    snapshot: &'a dyn Snapshot,
    namespace: String,
    config: EdgeDevConfig,
    trees: BTreeMap<String, ContentTree>,
    stores: BTreeMap<String, DatastoreConfig>,
    volumes: BTreeMap<String, Volume>,
    instances: BTreeMap<String, NetworkInstanceConfig>,
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
    fn image(&self, name: &str) -> Option<std::sync::Arc<Image>> {
        self.snapshot.image(&self.namespace, name)
    }

    /// The ContentTree of an Image (and its data store); returns its UUID.
    fn content_tree(&mut self, image: &Image) -> String {
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
    fn datastore(&mut self, class: &str) -> String {
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
        self.stores.insert(
            id.clone(),
            DatastoreConfig {
                id: id.clone(),
                d_type: d_type as i32,
                fqdn,
                dpath: path.to_string(),
                region: parameters.get("region").cloned().unwrap_or_default(),
                ..DatastoreConfig::default()
            },
        );
        id
    }

    fn claim(&self, name: &str) -> Option<std::sync::Arc<PersistentVolumeClaim>> {
        self.snapshot.claim(&self.namespace, name)
    }

    /// The Volume of a claim; returns its UUID. None when its source cannot be had: an Image
    /// that does not exist (admitted in warning mode) or a source that is not an Image. Such a
    /// volume is left out (the application reports `ReferencesResolved=False`), never sent as a
    /// blank disk in its place.
    fn volume_from_claim(&mut self, claim: &PersistentVolumeClaim) -> Option<String> {
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

    fn application(&mut self, app: &Application) -> AppInstanceConfig {
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
        AppInstanceConfig {
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
            volume_ref_list: refs,
            restart: instance_op(app, annotations::RESTART),
            purge: instance_op(app, annotations::PURGE),
            ..AppInstanceConfig::default()
        }
    }

    /// The NetworkInstanceConfig of a DeviceNetwork; returns its UUID.
    fn instance(&mut self, name: &str) -> Option<String> {
        let network = self.snapshot.network(&self.namespace, name)?;
        let id = uid(network.as_ref());
        if self.instances.contains_key(&id) {
            return Some(id);
        }
        let config = self
            .snapshot
            .network_config(&self.namespace, &network.spec.network_config);
        let switch = network.spec.type_.as_deref() == Some("switch");
        let ip = config.as_ref().map(|c| ipspec(&c.spec, !switch));
        self.instances.insert(
            id.clone(),
            NetworkInstanceConfig {
                uuidandversion: Some(UuiDandVersion {
                    uuid: id.clone(),
                    version: version(network.as_ref()),
                }),
                displayname: network.name_any(),
                inst_type: if switch {
                    ZNetworkInstType::ZnetInstSwitch
                } else {
                    ZNetworkInstType::ZnetInstLocal
                } as i32,
                activate: true,
                port: Some(eve_api::config::Adapter {
                    r#type: PhyIoType::PhyIoNetEth as i32,
                    name: network.spec.port.clone().unwrap_or("uplink".into()),
                    ..Default::default()
                }),
                ip_type: eve_api::config::AddressType::Ipv4 as i32,
                ip,
                ..NetworkInstanceConfig::default()
            },
        );
        Some(id)
    }
}

/// `word` as one word of a POSIX shell command line: as is when it is plain, else in single
/// quotes.
fn shell_word(word: &str) -> String {
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

/// A NetworkConfig's proxies as EVE's `entProxy`: each URL a server of its scheme's protocol
/// (`http`, `https`, `socks`/`socks5`, `ftp`; another scheme `PROXY_OTHER`), `noProxy` as the
/// comma-separated exceptions, `pacUrl` as the URL of the PAC file EVE fetches. `None` when the
/// NetworkConfig names no proxy. (Admission refuses proxies that are not URLs.)
pub fn ent_proxy(spec: &eve_model::NetworkConfigSpec) -> Option<ProxyConfig> {
    let proxies: Vec<ProxyServer> = spec
        .proxies
        .iter()
        .filter_map(|url| {
            let uri: http::Uri = url.parse().ok()?;
            let scheme = uri.scheme_str()?.to_ascii_lowercase();
            let proto = match scheme.as_str() {
                "http" => ProxyProto::ProxyHttp,
                "https" => ProxyProto::ProxyHttps,
                "socks" | "socks5" => ProxyProto::ProxySocks,
                "ftp" => ProxyProto::ProxyFtp,
                _ => ProxyProto::ProxyOther,
            };
            let default_port = match proto {
                ProxyProto::ProxyHttps => 443,
                ProxyProto::ProxySocks => 1080,
                ProxyProto::ProxyFtp => 21,
                _ => 80,
            };
            Some(ProxyServer {
                proto: proto as i32,
                server: uri.host()?.trim_matches(['[', ']']).to_string(),
                port: uri.port_u16().map_or(default_port, u32::from),
            })
        })
        .collect();
    let pac = spec.pac_url.clone().unwrap_or_default();
    if proxies.is_empty() && pac.is_empty() {
        return None;
    }
    Some(ProxyConfig {
        network_proxy_enable: !pac.is_empty(),
        network_proxy_url: pac,
        proxies,
        exceptions: spec.no_proxy.join(","),
        ..ProxyConfig::default()
    })
}

fn ipspec(spec: &eve_model::NetworkConfigSpec, serve_dhcp: bool) -> Ipspec {
    let dhcp = match spec.ip.as_deref() {
        Some("static") => DhcpType::Static,
        Some("none") => DhcpType::DhcpNone,
        _ if serve_dhcp => DhcpType::Static,
        _ => DhcpType::Client,
    };
    let range = spec
        .dhcp_range
        .as_deref()
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| IpRange {
            start: a.trim().into(),
            end: b.trim().into(),
        });
    Ipspec {
        dhcp: dhcp as i32,
        subnet: spec.subnet.clone().unwrap_or_default(),
        gateway: spec.gateway.clone().unwrap_or_default(),
        domain: spec.domain.clone().unwrap_or_default(),
        ntp: spec.ntp.first().cloned().unwrap_or_default(),
        more_ntp: spec.ntp.iter().skip(1).cloned().collect(),
        dns: spec.dns.clone(),
        dhcp_range: range,
    }
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

/// Composes the configuration of `device`.
pub fn compose(
    snapshot: &dyn Snapshot,
    device: &Device,
    uuid: &str,
    controllercert_confighash: &str,
) -> Composed {
    let namespace = device.namespace().unwrap_or_default();
    let mut b = Builder {
        snapshot,
        namespace: namespace.clone(),
        config: EdgeDevConfig::default(),
        trees: BTreeMap::new(),
        stores: BTreeMap::new(),
        volumes: BTreeMap::new(),
        instances: BTreeMap::new(),
    };
    let name = device.name_any();
    let device_annotations = device.annotations();

    // Ports: eve.lfedge.org/network-<port> annotations, or eth0 with DHCP.
    let mut ports: Vec<(String, Option<std::sync::Arc<eve_model::NetworkConfig>>)> =
        device_annotations
            .iter()
            .filter_map(|(k, v)| {
                let port = k.strip_prefix(annotations::NETWORK_PORT_PREFIX)?;
                let config = snapshot.network_config(&namespace, v);
                Some((port.to_string(), config))
            })
            .collect();
    if ports.is_empty() {
        ports.push((DEFAULT_PORT.into(), None));
    }
    for (port, config) in &ports {
        let network_id = match config {
            Some(config) => uid(config.as_ref()),
            None => derived_uuid(&[&uid(device), "port", port]),
        };
        b.config.device_io_list.push(PhysicalIo {
            ptype: PhyIoType::PhyIoNetEth as i32,
            phylabel: port.clone(),
            phyaddrs: [("Ifname".to_string(), port.clone())].into(),
            logicallabel: port.clone(),
            assigngrp: port.clone(),
            usage: PhyIoMemberUsage::PhyIoUsageMgmtAndApps as i32,
            ..PhysicalIo::default()
        });
        b.config.system_adapter_list.push(SystemAdapter {
            name: port.clone(),
            uplink: true,
            network_uuid: network_id.clone(),
            lower_layer_name: port.clone(),
            // A static port's own address.
            addr: config
                .as_ref()
                .and_then(|c| c.spec.address.clone())
                .unwrap_or_default(),
            ..SystemAdapter::default()
        });
        let ip = match config {
            Some(config) => ipspec(&config.spec, false),
            None => Ipspec {
                dhcp: DhcpType::Client as i32,
                ..Ipspec::default()
            },
        };
        // IPv6 when the subnet is.
        let ipv6 = config
            .as_ref()
            .and_then(|c| c.spec.subnet.as_deref())
            .is_some_and(|subnet| subnet.contains(':'));
        b.config.networks.push(NetworkConfig {
            id: network_id,
            r#type: if ipv6 {
                NetworkType::V6 as i32
            } else {
                NetworkType::V4 as i32
            },
            ip: Some(ip),
            ent_proxy: config.as_ref().and_then(|c| ent_proxy(&c.spec)),
            ..NetworkConfig::default()
        });
    }

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
            .images(&namespace)
            .into_iter()
            .filter(|i| {
                i.spec.type_.as_deref() == Some("eve-os")
                    && i.spec.r#ref.rsplit_once(':').map(|(_, tag)| tag) == Some(wanted)
            })
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

    // Config items: the global options, then the device's own.
    let mut items: BTreeMap<String, String> = BTreeMap::new();
    for options in snapshot.global_options() {
        if options.namespace().as_deref() == Some("kube-system") {
            items.extend(options.data.clone().unwrap_or_default());
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
    Composed { config, hash }
}

/// A configuration's `configHash`: base64url of the SHA-256 of its encoding.
pub fn hash_of(config: &EdgeDevConfig) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(eve_api::envelope::sha256(&config.encode_to_vec()))
}
