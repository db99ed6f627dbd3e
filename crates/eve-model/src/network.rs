//! NetworkConfig (reusable network settings) and DeviceNetwork (a network on devices).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::application::Affinity;

/// Reusable network settings, as a NetworkAttachmentDefinition: how addresses are obtained and
/// what the network needs to reach the outside.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "NetworkConfig",
    namespaced,
    shortname = "netcfg",
    category = "eve",
    doc = "Reusable network settings (EVE API: NetworkConfig): how a port or a network instance gets its addresses, DNS, NTP and proxies. A Device's port uses one through the annotation eve.lfedge.org/network-<port>; a DeviceNetwork through spec.networkConfig.",
    printcolumn(name = "IP", type_ = "string", json_path = ".spec.ip"),
    printcolumn(name = "Subnet", type_ = "string", json_path = ".spec.subnet"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfigSpec {
    /// How addresses are assigned: `dhcp` (a DHCP client on a port, a DHCP server on a local
    /// network instance), `static` (from `subnet`, `gateway` and, on a port, `address`), or
    /// `none` (no IP: a switch network, or a port for applications only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["dhcp", "static", "none"]))]
    pub ip: Option<String>,
    /// IPv4 or IPv6 subnet in CIDR notation, e.g. `10.1.0.0/24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// The static address of a port (with `ip: static`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The first and last address a local network instance hands out, `10.1.0.10-10.1.0.200`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_range: Option<String>,
    /// DNS servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// The DNS search domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// NTP servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ntp: Vec<String>,
    /// Proxies as URLs, `https://10.100.100.1:8888`; the scheme names what they proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<String>,
    /// Hosts and domains reached without a proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
    /// The URL of a proxy auto-configuration (PAC) file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pac_url: Option<String>,
    /// CA certificates the proxies' TLS is checked with (a proxy that intercepts TLS), each a
    /// base64-encoded PEM certificate (`base64 -w0 ca.pem`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxy_certificates: Vec<String>,
    /// A VLAN ID (1-4094) for the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub vlan: Option<i32>,
    /// Wi-Fi settings, for wireless ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi: Option<Wifi>,
}

/// Wi-Fi settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wifi {
    /// The network's SSID.
    pub ssid: String,
    /// A Secret in this namespace with the key `password` (WPA-PSK) or `identity` and
    /// `password` (WPA-Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// A network on devices, for applications to attach to.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "DeviceNetwork",
    namespaced,
    status = "DeviceNetworkStatus",
    shortname = "dnet",
    category = "eve",
    doc = "A network on the devices it has affinity to (all devices of the namespace without one), for applications to attach to by naming it in the annotation k8s.v1.cni.cncf.io/networks. EVE API: a NetworkInstanceConfig on each such device, configured by the NetworkConfig spec.networkConfig.",
    printcolumn(name = "Config", type_ = "string", json_path = ".spec.networkConfig"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Port", type_ = "string", json_path = ".spec.port"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct DeviceNetworkSpec {
    /// The NetworkConfig (in this namespace) with the network's addressing.
    pub network_config: String,
    /// The devices the network exists on, as a Pod's node affinity over Device labels (and
    /// `metadata.name` in matchFields). Without it the network exists on every Device of the
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// `local` (the default): a network behind NAT with the device's DHCP server; `switch`: a
    /// bridge onto the port's own network, applications get addresses from it.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["local", "switch"]))]
    pub type_: Option<String>,
    /// The device port the network goes out through: a port name (`eth1`), or `uplink` (the
    /// default), any port that reaches the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
}

/// What the controller reports of a DeviceNetwork.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct DeviceNetworkStatus {
    /// Conditions: `ReferencesResolved` (False while an object it names is missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<crate::Condition>,
}
