//! Networks: ports (physical, VLAN and Wi-Fi), their IP configurations, proxies, and network
//! instances.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;

use eve_api::common::{
    DhcpType, EncryptionBlock, IpRange, Ipspec, NetworkType, PhyIoMemberUsage, PhyIoType,
    ProxyConfig, ProxyProto, ProxyServer, WiFiKeyScheme, WirelessType,
};
use eve_api::config::{
    NetworkConfig, NetworkInstanceConfig, PhysicalIo, SystemAdapter, UuiDandVersion, VlanAdapter,
    WifiConfig, WirelessConfig, ZNetworkInstType,
};
use eve_model::annotations;
use kube::ResourceExt;

use super::{Builder, DEFAULT_PORT, derived_uuid, uid, version};

/// The ports a Device's annotations manage, with the NetworkConfigs each names (`eth0` with
/// none, a DHCP client, when no annotation names a port).
pub(super) fn ports(device: &eve_model::Device) -> Vec<(String, Vec<String>)> {
    let mut ports: Vec<(String, Vec<String>)> = device
        .annotations()
        .iter()
        .filter_map(|(k, v)| {
            let port = k.strip_prefix(annotations::NETWORK_PORT_PREFIX)?;
            Some((port.to_string(), annotations::list(v)))
        })
        .collect();
    if ports.is_empty() {
        ports.push((DEFAULT_PORT.into(), Vec::new()));
    }
    ports
}

impl Builder<'_> {
    /// The device's ports: each a physical IO (Wi-Fi when a NetworkConfig it carries has
    /// `wifi`), a system adapter per network on it (the port itself for the NetworkConfig
    /// without `vlan`, a VLAN sub-interface `<port>.<vlan>` for each with one), and their
    /// NetworkConfigs.
    pub(super) fn ports(&mut self) {
        let modelled = self.model();
        for (port, names) in ports(self.device) {
            let mut configs = Vec::new();
            for name in &names {
                match self.snapshot.network_config(&self.namespace, name) {
                    Some(config) => configs.push(config),
                    None => self.problems.push(format!(
                        "annotation {}{port}: NetworkConfig {name} does not exist: create it; until then the port is a DHCP client",
                        annotations::NETWORK_PORT_PREFIX
                    )),
                }
            }
            let wifi = configs.iter().any(|c| c.spec.wifi.is_some());
            if !modelled.contains(&port) {
                self.config.device_io_list.push(PhysicalIo {
                    ptype: if wifi {
                        PhyIoType::PhyIoNetWlan
                    } else {
                        PhyIoType::PhyIoNetEth
                    } as i32,
                    phylabel: port.clone(),
                    phyaddrs: [("Ifname".to_string(), port.clone())].into(),
                    logicallabel: port.clone(),
                    assigngrp: port.clone(),
                    usage: PhyIoMemberUsage::PhyIoUsageMgmtAndApps as i32,
                    ..PhysicalIo::default()
                });
            }
            if configs.is_empty() {
                // A DHCP client on the port itself.
                let id = derived_uuid(&[&uid(self.device), "port", &port]);
                self.adapter(&port, &port, &id, "");
                self.config.networks.push(NetworkConfig {
                    id,
                    r#type: NetworkType::V4 as i32,
                    ip: Some(Ipspec {
                        dhcp: DhcpType::Client as i32,
                        ..Ipspec::default()
                    }),
                    ..NetworkConfig::default()
                });
                continue;
            }
            for config in configs {
                let id = uid(config.as_ref());
                let address = config.spec.address.clone().unwrap_or_default();
                match config.spec.vlan {
                    Some(vlan) => {
                        let label = format!("{port}.{vlan}");
                        self.config.vlans.push(VlanAdapter {
                            logicallabel: label.clone(),
                            interface_name: label.clone(),
                            lower_layer_name: port.clone(),
                            vlan_id: vlan.clamp(0, 4095) as u32,
                        });
                        self.adapter(&label, &label, &id, &address);
                    }
                    None => self.adapter(&port, &port, &id, &address),
                }
                if !self.config.networks.iter().any(|n| n.id == id) {
                    let network = self.port_network(&config);
                    self.config.networks.push(network);
                }
            }
        }
    }

    /// The device's model (its annotation `eve.lfedge.org/model`): its physical IO goes in
    /// `deviceIoList`, its assignment groups may be given to applications. The logical labels
    /// it defines.
    fn model(&mut self) -> BTreeSet<String> {
        let mut labels = BTreeSet::new();
        let Some(name) = self.device.annotations().get(annotations::MODEL).cloned() else {
            return labels;
        };
        let Some(found) = self.snapshot.device_models(&self.namespace) else {
            self.problems.push(format!(
                "annotation {}: the namespace has no ConfigMap {}: create it with the model {name}; until then only the annotated ports are sent",
                annotations::MODEL,
                eve_model::device_model::MODELS,
            ));
            return labels;
        };
        let entries =
            match eve_model::device_model::read(&found.data.clone().unwrap_or_default(), &name) {
                Ok(entries) => entries,
                Err(e) => {
                    self.problems.push(e.to_string());
                    return labels;
                }
            };
        for (index, entry) in entries.into_iter().enumerate() {
            match serde_json::from_value::<PhysicalIo>(entry) {
                Ok(io) => {
                    labels.insert(io.logicallabel.clone());
                    if !io.assigngrp.is_empty() {
                        self.adapters
                            .entry(io.assigngrp.clone())
                            .or_insert(io.ptype);
                    }
                    self.config.device_io_list.push(io);
                }
                Err(e) => self.problems.push(format!(
                    "device model {name}: physicalIO[{index}] is not a PhysicalIO: {e}"
                )),
            }
        }
        labels
    }

    /// A management port's system adapter.
    fn adapter(&mut self, name: &str, lower: &str, network: &str, address: &str) {
        self.config.system_adapter_list.push(SystemAdapter {
            name: name.to_string(),
            uplink: true,
            network_uuid: network.to_string(),
            lower_layer_name: lower.to_string(),
            // A static port's own address.
            addr: address.to_string(),
            ..SystemAdapter::default()
        });
    }

    /// A port's NetworkConfig: its addressing (IPv6 when its subnet is), proxies and Wi-Fi.
    fn port_network(&mut self, config: &Arc<eve_model::NetworkConfig>) -> NetworkConfig {
        let ipv6 = config
            .spec
            .subnet
            .as_deref()
            .is_some_and(|subnet| subnet.contains(':'));
        NetworkConfig {
            id: uid(config.as_ref()),
            r#type: if ipv6 {
                NetworkType::V6
            } else {
                NetworkType::V4
            } as i32,
            ip: Some(ipspec(&config.spec, false)),
            ent_proxy: ent_proxy(&config.spec),
            wireless: self.wireless(config),
            ..NetworkConfig::default()
        }
    }

    /// A NetworkConfig's Wi-Fi: its SSID, and the credentials of its Secret (`identity` and
    /// `password`: WPA-EAP; `password` alone: WPA-PSK; no Secret: an open network) sealed for
    /// the device.
    fn wireless(&mut self, config: &eve_model::NetworkConfig) -> Option<WirelessConfig> {
        let wifi = config.spec.wifi.as_ref()?;
        let mut entry = WifiConfig {
            wifi_ssid: wifi.ssid.clone(),
            key_scheme: WiFiKeyScheme::SchemeNoop as i32,
            ..WifiConfig::default()
        };
        if let Some(secret) = &wifi.credentials_secret {
            let user = format!("NetworkConfig {}", config.name_any());
            let namespace = self.namespace.clone();
            if let Some(fields) = self.secret(&user, &namespace, secret) {
                let identity = fields.get("identity").cloned().unwrap_or_default();
                let password = fields.get("password").cloned().unwrap_or_default();
                if password.is_empty() {
                    self.problems.push(format!(
                        "{user}: Secret {namespace}/{secret} has no password: add it; the Wi-Fi network is joined as an open one"
                    ));
                } else {
                    entry.key_scheme = if identity.is_empty() {
                        WiFiKeyScheme::Wpapsk
                    } else {
                        WiFiKeyScheme::Wpaeap
                    } as i32;
                    let block = EncryptionBlock {
                        wifi_user_name: identity.clone(),
                        wifi_password: password.clone(),
                        ..EncryptionBlock::default()
                    };
                    match self.seal(&block) {
                        Some(sealed) => entry.cipher_data = Some(sealed),
                        None => {
                            entry.identity = identity;
                            entry.password = password;
                        }
                    }
                }
            }
        }
        Some(WirelessConfig {
            r#type: WirelessType::WiFi as i32,
            wifi_cfg: vec![entry],
        })
    }
    /// The NetworkInstanceConfig of a DeviceNetwork; returns its UUID.
    pub(super) fn instance(&mut self, name: &str) -> Option<String> {
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
    // PEM text, as EVE takes it (admission refuses what is not a base64 PEM certificate).
    let certificates = spec
        .proxy_certificates
        .iter()
        .filter_map(|c| {
            let compact: String = c.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
        })
        .collect();
    Some(ProxyConfig {
        network_proxy_enable: !pac.is_empty(),
        network_proxy_url: pac,
        proxies,
        exceptions: spec.no_proxy.join(","),
        proxy_cert_pem: certificates,
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
