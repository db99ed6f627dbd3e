//! Device (readable certificates; its device certificate, and its serial with its onboarding
//! certificate, unique among Devices) and DeviceConfig (its Device exists).

use std::collections::{BTreeMap, HashSet};

use apimachinery::FieldError;
use eve_model::{Device, DeviceConfig, NetworkConfig, annotations, quantity};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde_json::Value;

use super::Refusal;
use super::check::Check;
use super::table::Rules;
use super::uniqueness::unique_keys;

impl Rules for Device {
    fn normalize(object: &mut Value) -> Vec<quantity::Invalid> {
        quantity::normalize_device(object)
    }

    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        unique(check, object);
        ports(check, object).await?;
        if let Some(text) = object.annotations().get(annotations::DISKS)
            && let Err(e) = eve_model::disks::read(text)
        {
            check.errors.push(FieldError::invalid(
                format!("metadata.annotations[{}]", annotations::DISKS),
                text,
                format!("must be EVE's DisksConfig in proto3 JSON or YAML: {e}"),
            ));
        }
        if let Some(model) = object.annotations().get(annotations::MODEL) {
            device_model(check, model).await?;
        }
        if object.annotations().contains_key(annotations::COLLECT_INFO) {
            check.warnings.push(format!(
                "metadata.annotations[{}]: not sent: the EVE API has no collect-info request a controller can make; run collect-info on the device (eve collect-info) or through edge-view",
                annotations::COLLECT_INFO
            ));
        }
        if let Some(value) = object.annotations().get(annotations::MAINTENANCE)
            && !matches!(value.trim(), "true" | "false")
        {
            check.errors.push(FieldError::invalid(
                format!("metadata.annotations[{}]", annotations::MAINTENANCE),
                value,
                "must be \"true\" (maintenance mode) or \"false\"",
            ));
        }
        Ok(())
    }
}

/// The device model a Device names: a key of the namespace's ConfigMap
/// `adamant-device-models` whose physical IO reads.
async fn device_model(check: &mut Check<'_>, name: &str) -> Result<(), Refusal> {
    let path = format!("metadata.annotations[{}]", annotations::MODEL);
    let Some(found) = check
        .fetch::<ConfigMap>(&path, eve_model::device_model::MODELS)
        .await?
    else {
        return Ok(());
    };
    if let Err(e) = eve_model::device_model::read(&found.data.unwrap_or_default(), name) {
        check
            .errors
            .push(FieldError::invalid(&path, name, e.to_string()));
    }
    Ok(())
}

/// The longest network interface name Linux takes.
const IFNAME_MAX: usize = 15;

/// A Device's ports (`eve.lfedge.org/network-<port>` annotations): each names NetworkConfigs
/// that exist, at most one without a VLAN (the port's own network) and distinct VLANs for the
/// others; a Wi-Fi NetworkConfig alone; names that fit an interface name.
async fn ports(check: &mut Check<'_>, device: &Device) -> Result<(), Refusal> {
    for (key, value) in device.annotations() {
        let Some(port) = key.strip_prefix(annotations::NETWORK_PORT_PREFIX) else {
            continue;
        };
        let path = format!("metadata.annotations[{key}]");
        if port.len() > IFNAME_MAX {
            check.errors.push(FieldError::invalid(
                &path,
                port,
                format!("a port name has at most {IFNAME_MAX} characters (a Linux interface name)"),
            ));
        }
        let names = annotations::list(value);
        if names.is_empty() {
            check.errors.push(FieldError::invalid(
                &path,
                value,
                "name the port's NetworkConfig, or several comma-separated: one without spec.vlan (the port's own network) and one per VLAN",
            ));
        }
        let mut untagged = Vec::new();
        let mut vlans = BTreeMap::new();
        let mut wifi = None;
        for name in &names {
            let Some(config) = check.fetch::<NetworkConfig>(&path, name).await? else {
                continue;
            };
            if config.spec.wifi.is_some() {
                wifi = Some(name.clone());
            }
            match config.spec.vlan {
                None => untagged.push(name.clone()),
                Some(vlan) => {
                    if format!("{port}.{vlan}").len() > IFNAME_MAX {
                        check.errors.push(FieldError::invalid(
                            &path,
                            name,
                            format!("the VLAN interface {port}.{vlan} is longer than {IFNAME_MAX} characters: use a shorter port name"),
                        ));
                    }
                    if let Some(other) = vlans.insert(vlan, name.clone()) {
                        check.errors.push(FieldError::invalid(
                            &path,
                            name,
                            format!("NetworkConfigs {other} and {name} both have VLAN {vlan}: a VLAN is one network on a port"),
                        ));
                    }
                }
            }
        }
        if untagged.len() > 1 {
            check.errors.push(FieldError::invalid(
                &path,
                value,
                format!(
                    "{} have no spec.vlan: a port has one network of its own; give the others a VLAN",
                    untagged.join(" and ")
                ),
            ));
        }
        if let Some(wifi) = wifi
            && names.len() > 1
        {
            check.errors.push(FieldError::invalid(
                &path,
                value,
                format!("{wifi} is a Wi-Fi network: a wireless port carries that one network only"),
            ));
        }
    }
    Ok(())
}

fn unique(check: &mut Check<'_>, device: &Device) {
    if let Some(certificate) = &device.spec.certificate {
        check.certificate("spec.certificate", certificate, false);
    }
    if let Some(onboard) = &device.spec.onboard {
        check.certificate("spec.onboard", onboard, false);
    }
    if !check.errors.is_empty() {
        return;
    }
    let review = check.review;
    let me = format!("{}/{}", review.namespace, review.name);
    let mut conflicts: Vec<(&'static str, &'static str, String)> = Vec::new();
    for key in unique_keys(&device.spec) {
        if let Some(devices) = &check.admission.devices {
            for other in devices.keys.holders(&devices.store, &key) {
                let them = format!(
                    "{}/{}",
                    other.namespace.clone().unwrap_or_default(),
                    other.name
                );
                if them != me {
                    conflicts.push((key.path(), key.what(), them));
                }
            }
        }
        let recent = format!("{}:{:016x}", key.path(), key.short());
        if let Some(other) = check.admission.claim_recent(recent, &me, !review.dry_run) {
            conflicts.push((key.path(), key.what(), other));
        }
    }
    let mut seen = HashSet::new();
    let here = format!("{}/", review.namespace);
    for (path, what, other) in conflicts {
        if seen.insert((path, other.clone())) {
            // Another tenant's Device is not named to this one.
            let detail = match other.strip_prefix(&here) {
                Some(name) => {
                    format!("the {what} is already Device {name}'s; a device must be unique")
                }
                None => format!(
                    "the {what} is already claimed in another namespace; a device belongs to one namespace"
                ),
            };
            check.errors.push(FieldError::duplicate(path, detail));
        }
    }
}

impl Rules for DeviceConfig {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        check
            .exists::<Device>("spec.device", &object.spec.device)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::{Harness, cases, example_certificate};

    #[test]
    fn device_ports() {
        let device = |annotations: &str| {
            format!("kind: Device\nmetadata:\n  annotations: {{{annotations}}}\nspec: {{}}")
        };
        cases(
            &[
                "kind: NetworkConfig\nmetadata: {name: lan}\nspec: {ip: dhcp}",
                "kind: NetworkConfig\nmetadata: {name: wan}\nspec: {ip: dhcp}",
                "kind: NetworkConfig\nmetadata: {name: v100}\nspec: {ip: dhcp, vlan: 100}",
                "kind: NetworkConfig\nmetadata: {name: also100}\nspec: {ip: dhcp, vlan: 100}",
                "kind: NetworkConfig\nmetadata: {name: air}\nspec: {ip: dhcp, wifi: {ssid: office}}",
                "kind: ConfigMap\nmetadata: {name: adamant-device-models}\ndata:\n  nuc: '[{ptype: PhyIoUSB, phylabel: USB1, logicallabel: usb1, assigngrp: USB}]'\n  plain: '[{ptype: PhyIoUSB, phylabel: USB1}]'",
            ],
            &[
                (
                    device(
                        "eve.lfedge.org/network-eth0: 'lan, v100', eve.lfedge.org/maintenance: 'true'",
                    ),
                    expect!["accepted"],
                ),
                (
                    device("eve.lfedge.org/network-wlan0: air"),
                    expect!["accepted"],
                ),
                (
                    device("eve.lfedge.org/collect-info: '1'"),
                    expect![[r#"
                    accepted
                    warning: metadata.annotations[eve.lfedge.org/collect-info]: not sent: the EVE API has no collect-info request a controller can make; run collect-info on the device (eve collect-info) or through edge-view"#]],
                ),
                (device("eve.lfedge.org/model: nuc"), expect!["accepted"]),
                (
                    device(
                        "eve.lfedge.org/disks: '{arrayType: DISKS_ARRAY_TYPE_RAID1, disks: [{disk: {name: /dev/sdb}, diskConfig: DISK_CONFIG_TYPE_ZFS_ONLINE}]}'",
                    ),
                    expect!["accepted"],
                ),
                (
                    device("eve.lfedge.org/disks: '{arrayType: RAID9}'"),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/disks]: Invalid value: "{arrayType: RAID9}": must be EVE's DisksConfig in proto3 JSON or YAML: arrayType: "RAID9" is none of DISKS_ARRAY_TYPE_UNSPECIFIED, DISKS_ARRAY_TYPE_RAID0, DISKS_ARRAY_TYPE_RAID1, DISKS_ARRAY_TYPE_RAID5, DISKS_ARRAY_TYPE_RAID6"#]],
                ),
                (
                    device("eve.lfedge.org/model: plain"),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/model]: Invalid value: "plain": model plain: entry 0 has no logicallabel: each entry needs ptype, phylabel and logicallabel"#]],
                ),
                (
                    device("eve.lfedge.org/model: gone"),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/model]: Invalid value: "gone": ConfigMap adamant-device-models has no key gone: list the model's physical IO under it"#]],
                ),
                (
                    device("eve.lfedge.org/network-eth0: 'lan,wan,v100,also100,gone'"),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/network-eth0]: Invalid value: "also100": NetworkConfigs v100 and also100 both have VLAN 100: a VLAN is one network on a port
                          metadata.annotations[eve.lfedge.org/network-eth0]: Invalid value: "lan,wan,v100,also100,gone": lan and wan have no spec.vlan: a port has one network of its own; give the others a VLAN
                          metadata.annotations[eve.lfedge.org/network-eth0]: Not found: "gone": NetworkConfig ns/gone does not exist; create it first"#]],
                ),
                (
                    device(
                        "eve.lfedge.org/network-wlan0: 'air,v100', eve.lfedge.org/network-averyverylongport: lan",
                    ),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/network-averyverylongport]: Invalid value: "averyverylongport": a port name has at most 15 characters (a Linux interface name)
                          metadata.annotations[eve.lfedge.org/network-wlan0]: Invalid value: "air,v100": air is a Wi-Fi network: a wireless port carries that one network only"#]],
                ),
                (
                    device("eve.lfedge.org/network-eth0: '', eve.lfedge.org/maintenance: 'yes'"),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/network-eth0]: Invalid value: "": name the port's NetworkConfig, or several comma-separated: one without spec.vlan (the port's own network) and one per VLAN
                          metadata.annotations[eve.lfedge.org/maintenance]: Invalid value: "yes": must be "true" (maintenance mode) or "false""#]],
                ),
            ],
        );
    }

    #[test]
    fn devices() {
        let device = example_certificate("device.pem");
        let onboard = example_certificate("onboard.pem");
        cases(
            &[],
            &[
                (
                    "kind: Device\nspec: {certificate: bm90IGEgY2VydGlmaWNhdGU=}".into(),
                    expect![[r#"
                        invalid:
                          spec.certificate: Invalid value: "bm90IGEgY2VydGlmaWNhdGU=": must be a base64-encoded PEM certificate: the decoded text has no -----BEGIN CERTIFICATE----- block"#]],
                ),
                (
                    "kind: Device\nspec: {onboard: aGVsbG8=, serial: s1}".into(),
                    expect![[r#"
                        invalid:
                          spec.onboard: Invalid value: "aGVsbG8=": must be a base64-encoded PEM certificate: the decoded text has no -----BEGIN CERTIFICATE----- block"#]],
                ),
                (
                    format!(
                        "kind: Device\nspec: {{certificate: {device}, serial: s1, onboard: {onboard}}}"
                    ),
                    expect!["accepted"],
                ),
                (
                    "kind: Device\nstatus: {capacity: {memory: 1.5, cpu: lots}}".into(),
                    expect![[r#"
                        invalid:
                          status.capacity[cpu]: Invalid value: "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#]],
                ),
            ],
        );
    }

    #[test]
    fn a_device_is_unique_and_a_dry_run_claims_nothing() {
        let device = example_certificate("device.pem");
        let onboard = example_certificate("onboard.pem");
        let harness = Harness::new(&[]);
        let named = |name: &str, spec: &str| {
            format!("kind: Device\nmetadata: {{name: {name}}}\nspec: {spec}")
        };
        let by_certificate = format!("{{certificate: {device}}}");
        let by_serial = format!("{{serial: s1, onboard: {onboard}}}");
        let mut out = String::new();
        for (name, spec, dry_run) in [
            ("dry", &by_certificate, true),
            ("a", &by_certificate, false),
            ("a", &by_certificate, false),
            ("b", &by_certificate, true),
            ("c", &by_serial, false),
            ("d", &by_serial, false),
        ] {
            out += &format!(
                "{name} (dry run {dry_run}): {}\n",
                harness.admit_with(&named(name, spec), None, dry_run)
            );
        }
        expect![[r#"
            dry (dry run true): accepted
            a (dry run false): accepted
            a (dry run false): accepted
            b (dry run true): invalid:
              spec.certificate: Duplicate value: "the device certificate is already Device a's; a device must be unique"
            c (dry run false): accepted
            d (dry run false): invalid:
              spec.serial: Duplicate value: "the serial and onboarding certificate is already Device c's; a device must be unique"
        "#]].assert_eq(&out);
    }

    #[test]
    fn device_configs() {
        cases(
            &["kind: Device\nmetadata: {name: d1}\nspec: {}"],
            &[
                (
                    "kind: DeviceConfig\nspec: {device: d1}".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: DeviceConfig\nspec: {device: d2}".into(),
                    expect![[r#"
                        invalid:
                          spec.device: Not found: "d2": Device ns/d2 does not exist; create it first"#]],
                ),
            ],
        );
    }
}
