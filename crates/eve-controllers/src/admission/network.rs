//! NetworkConfig (addresses, subnets, ranges and proxies that read; a static network's subnet)
//! and DeviceNetwork (its NetworkConfig exists; its node affinity).

use std::net::IpAddr;

use apimachinery::FieldError;
use eve_model::{DeviceNetwork, NetworkConfig};
use k8s_openapi::api::core::v1::Secret;

use super::Refusal;
use super::check::Check;
use super::table::Rules;

impl Rules for NetworkConfig {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        addressing(check, object);
        for (i, certificate) in object.spec.proxy_certificates.iter().enumerate() {
            check.certificate(&format!("spec.proxyCertificates[{i}]"), certificate, false);
        }
        if let Some(wifi) = &object.spec.wifi {
            if wifi.ssid.is_empty() || wifi.ssid.len() > 32 {
                check.errors.push(FieldError::invalid(
                    "spec.wifi.ssid",
                    &wifi.ssid,
                    "an SSID has 1 to 32 bytes",
                ));
            }
            if object.spec.vlan.is_some() {
                check.errors.push(FieldError::invalid(
                    "spec.vlan",
                    object.spec.vlan.unwrap_or_default().to_string(),
                    "a Wi-Fi network has no VLAN on EVE: drop spec.vlan or spec.wifi",
                ));
            }
            if let Some(secret) = &wifi.credentials_secret
                && let Some(found) = check
                    .fetch::<Secret>("spec.wifi.credentialsSecret", secret)
                    .await?
                && !found.data.unwrap_or_default().contains_key("password")
            {
                check.errors.push(FieldError::invalid(
                    "spec.wifi.credentialsSecret",
                    secret,
                    "the Secret has no key password: add the network's passphrase as password (and identity for WPA-Enterprise)",
                ));
            }
        }
        Ok(())
    }
}

fn ip_ok(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

fn cidr_ok(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<IpAddr>().is_ok_and(|ip| {
            bits.parse::<u8>()
                .is_ok_and(|b| b <= if ip.is_ipv4() { 32 } else { 128 })
        })
    })
}

fn range_ok(s: &str) -> bool {
    s.split_once('-')
        .is_some_and(|(a, b)| ip_ok(a.trim()) && ip_ok(b.trim()))
}

fn proxy_ok(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https" | "socks" | "socks5" | "ftp") && !rest.is_empty()
    })
}

/// The text of `spec.{field}`, if set, is `ok`; else it must be `what`.
fn text(
    check: &mut Check<'_>,
    field: &str,
    value: &Option<String>,
    ok: fn(&str) -> bool,
    what: &str,
) {
    if let Some(v) = value
        && !ok(v)
    {
        check.errors.push(FieldError::invalid(
            format!("spec.{field}"),
            v,
            format!("must be {what}"),
        ));
    }
}

fn addressing(check: &mut Check<'_>, config: &NetworkConfig) {
    let spec = &config.spec;
    text(
        check,
        "subnet",
        &spec.subnet,
        cidr_ok,
        "a subnet in CIDR notation, like 10.1.0.0/24",
    );
    text(check, "address", &spec.address, ip_ok, "an IP address");
    text(check, "gateway", &spec.gateway, ip_ok, "an IP address");
    text(
        check,
        "dhcpRange",
        &spec.dhcp_range,
        range_ok,
        "a range of two addresses, like 10.1.0.10-10.1.0.200",
    );
    for (i, dns) in spec.dns.iter().enumerate() {
        if !ip_ok(dns) {
            check.errors.push(FieldError::invalid(
                format!("spec.dns[{i}]"),
                dns,
                "must be an IP address",
            ));
        }
    }
    for (i, proxy) in spec.proxies.iter().enumerate() {
        if !proxy_ok(proxy) {
            check.errors.push(FieldError::invalid(
                format!("spec.proxies[{i}]"),
                proxy,
                "must be a proxy URL like https://10.100.100.1:8888 (scheme http, https, socks5 or ftp)",
            ));
        }
    }
    if spec.ip.as_deref() == Some("static") && spec.subnet.is_none() {
        check.errors.push(FieldError::required(
            "spec.subnet",
            "a static network needs its subnet",
        ));
    }
}

impl Rules for DeviceNetwork {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        check
            .exists::<NetworkConfig>("spec.networkConfig", &object.spec.network_config)
            .await?;
        check.affinity(object.spec.affinity.as_ref(), "spec.affinity");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::cases;

    #[test]
    fn network_configs() {
        cases(
            &[
                "kind: Secret\nmetadata: {name: wifi}\ndata: {password: cGFzc3dvcmQ=}",
                "kind: Secret\nmetadata: {name: nokey}\ndata: {psk: eA==}",
            ],
            &[
                ("kind: NetworkConfig\nspec: {ip: dhcp}".into(), expect!["accepted"]),
                (
                    "kind: NetworkConfig\nspec: {ip: static, subnet: 10.1.0.0/24, address: 10.1.0.5, gateway: 10.1.0.1, dhcpRange: 10.1.0.10-10.1.0.200, dns: [1.1.1.1, '2001:db8::1'], proxies: ['https://10.100.100.1:8888', 'socks5://p:1080']}".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: NetworkConfig\nspec: {ip: static, subnet: 10.0.0.0/99, address: 10.1.0, gateway: gw, dhcpRange: 10.1.0.10, dns: [one], proxies: ['10.1.1.1:80', 'gopher://x']}".into(),
                    expect![[r#"
                        invalid:
                          spec.subnet: Invalid value: "10.0.0.0/99": must be a subnet in CIDR notation, like 10.1.0.0/24
                          spec.address: Invalid value: "10.1.0": must be an IP address
                          spec.gateway: Invalid value: "gw": must be an IP address
                          spec.dhcpRange: Invalid value: "10.1.0.10": must be a range of two addresses, like 10.1.0.10-10.1.0.200
                          spec.dns[0]: Invalid value: "one": must be an IP address
                          spec.proxies[0]: Invalid value: "10.1.1.1:80": must be a proxy URL like https://10.100.100.1:8888 (scheme http, https, socks5 or ftp)
                          spec.proxies[1]: Invalid value: "gopher://x": must be a proxy URL like https://10.100.100.1:8888 (scheme http, https, socks5 or ftp)"#]],
                ),
                (
                    "kind: NetworkConfig\nspec: {ip: dhcp, proxies: ['http://p:3128'], proxyCertificates: [bm90IGEgY2VydA==]}".into(),
                    expect![[r#"
                        invalid:
                          spec.proxyCertificates[0]: Invalid value: "bm90IGEgY2VydA==": must be a base64-encoded PEM certificate: the decoded text has no -----BEGIN CERTIFICATE----- block"#]],
                ),
                (
                    "kind: NetworkConfig\nspec: {ip: dhcp, wifi: {ssid: office, credentialsSecret: wifi}}".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: NetworkConfig\nspec: {ip: dhcp, vlan: 7, wifi: {ssid: '', credentialsSecret: nokey}}".into(),
                    expect![[r#"
                        invalid:
                          spec.wifi.ssid: Invalid value: "": an SSID has 1 to 32 bytes
                          spec.vlan: Invalid value: "7": a Wi-Fi network has no VLAN on EVE: drop spec.vlan or spec.wifi
                          spec.wifi.credentialsSecret: Invalid value: "nokey": the Secret has no key password: add the network's passphrase as password (and identity for WPA-Enterprise)"#]],
                ),
                (
                    "kind: NetworkConfig\nspec: {ip: dhcp, wifi: {ssid: office, credentialsSecret: absent}}".into(),
                    expect![[r#"
                        invalid:
                          spec.wifi.credentialsSecret: Not found: "absent": Secret ns/absent does not exist; create it first"#]],
                ),
                ("kind: NetworkConfig\nspec: {ip: static}".into(), expect![[r#"
                    invalid:
                      spec.subnet: Required value: a static network needs its subnet"#]]),
            ],
        );
    }

    #[test]
    fn device_networks() {
        cases(
            &["kind: NetworkConfig\nmetadata: {name: lan}\nspec: {ip: dhcp}"],
            &[
                ("kind: DeviceNetwork\nspec: {networkConfig: lan}".into(), expect!["accepted"]),
                ("kind: DeviceNetwork\nspec: {networkConfig: wan}".into(), expect![[r#"
                    invalid:
                      spec.networkConfig: Not found: "wan": NetworkConfig ns/wan does not exist; create it first"#]]),
                (
                    "kind: DeviceNetwork\nspec:\n  networkConfig: lan\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions: [{key: site, operator: Near, values: [a]}]\n".into(),
                    expect![[r#"
                        invalid:
                          spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: "": Unsupported value: "Near": supported values: "DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn""#]],
                ),
            ],
        );
    }
}
