//! Composition of what needs more than addressing: credentials sealed for the device (and in
//! the clear before it can decrypt), Wi-Fi, VLANs, maintenance mode, config items, device
//! models and adapters passed through.

use eve_api::common::WiFiKeyScheme;
use expect_test::expect;

use super::fixture::{Objects, controller_key, device_key, ecdh_status};
use super::tests::{check, compose_for, json, with_device};
use crate::cipher;

/// A private registry whose credentials Secret is in `stores`, and an Image in it used by an
/// Application on `dev1`.
const PRIVATE_REGISTRY: &str = "apiVersion: v1
kind: Secret
metadata: {name: quay-creds, namespace: stores}
stringData: {username: robot, password: example-password}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: eve-quay}
provisioner: eve
parameters: {type: container, URL: 'https://quay.io', credentialsRef: stores/quay-creds}
---
apiVersion: eve.lfedge.org/v1beta1
kind: Image
metadata: {name: app-image, namespace: lab}
spec: {ref: corp/app:1.0, storageClass: eve-quay}
---
apiVersion: eve.lfedge.org/v1beta1
kind: Application
metadata: {name: app, namespace: lab}
spec:
  nodeName: dev1
  containers: [{name: main, image: app-image}]
";

/// The objects of `yaml` and `dev1` with the device's ECDH certificate in its status.
fn with_ecdh_device(yaml: &str, annotations: &str) -> Objects {
    let mut objects = Objects::default();
    objects.add_yaml(&format!(
        "apiVersion: eve.lfedge.org/v1beta1
kind: Device
metadata:
  name: dev1
  namespace: lab
  annotations: {{{annotations}}}
spec: {{}}
{}",
        ecdh_status()
    ));
    objects.add_yaml(yaml);
    objects
}

#[test]
fn data_store_credentials_are_sealed_for_a_device_that_decrypts_them() {
    let objects = with_ecdh_device(PRIVATE_REGISTRY, "");
    let composed = compose_for(&objects, "dev1");
    let store = &composed.config.datastores[0];
    assert!(
        store.api_key.is_empty() && store.password.is_empty(),
        "nothing in the clear"
    );
    // The device opens the block with its own key and the controller's public key, under the
    // context the configuration names.
    let block = store.cipher_data.as_ref().expect("a cipher block");
    let context = &composed.config.cipher_contexts[0];
    assert_eq!(block.cipher_context_id, context.context_id);
    assert_eq!(context.device_cert_hash, vec![2; 16]);
    assert_eq!(context.controller_cert_hash, vec![1; 32]);
    let opened = cipher::open(&device_key(), &controller_key().public_key(), block).expect("opens");
    assert_eq!(opened.ds_api_key, "robot");
    assert_eq!(opened.ds_password, "example-password");
    assert!(composed.problems.is_empty(), "{:?}", composed.problems);
    assert_eq!(
        compose_for(&objects, "dev1").hash,
        composed.hash,
        "a stable hash"
    );
    check(
        &objects,
        &["cipherContexts", "datastores"],
        expect![[r#"
            {
              "cipherContexts": [
                {
                  "contextId": "abfcecb1-1b5a-5efb-14ca-bab055b6d353",
                  "controllerCertHash": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                  "deviceCertHash": "AgICAgICAgICAgICAgICAg==",
                  "encryptionScheme": "SA_AES_256_CFB",
                  "hashScheme": "HASH_ALGORITHM_SHA256_16BYTES",
                  "keyExchangeScheme": "KEA_ECDH"
                }
              ],
              "datastores": [
                {
                  "cipherData": {
                    "cipherContextId": "abfcecb1-1b5a-5efb-14ca-bab055b6d353",
                    "cipherData": "WvG4hsJW+iSr1C59LrzUF5nGMM0Y8DupdA==",
                    "clearTextSha256": "Xnkz1dquLPqYqI3SuRE+1psdoiFmNYCeQ7PkATR/Rnw=",
                    "initialValue": "28R+KtSQ8Y7BRZ2MmuONtA=="
                  },
                  "dType": "DsContainerRegistry",
                  "fqdn": "docker://quay.io",
                  "id": "storageclass-eve-quay"
                }
              ]
            }
        "#]],
    );
}

#[test]
fn before_the_device_uploads_its_ecdh_certificate_credentials_go_in_the_clear_fields() {
    let objects = with_device(PRIVATE_REGISTRY, "");
    let composed = compose_for(&objects, "dev1");
    let store = &composed.config.datastores[0];
    assert!(store.cipher_data.is_none() && composed.config.cipher_contexts.is_empty());
    assert_eq!(
        (store.api_key.as_str(), store.password.as_str()),
        ("robot", "example-password")
    );
    // The DeviceConfig does not show the password.
    check(
        &objects,
        &["datastores"],
        expect![[r#"
            {
              "datastores": [
                {
                  "apiKey": "robot",
                  "dType": "DsContainerRegistry",
                  "fqdn": "docker://quay.io",
                  "id": "storageclass-eve-quay",
                  "password": "(from its Secret; not shown)"
                }
              ]
            }
        "#]],
    );
}

#[test]
fn missing_credentials_are_problems_never_a_different_store() {
    let objects = with_device(
        &PRIVATE_REGISTRY.replace("stores/quay-creds", "stores/gone"),
        "",
    );
    let composed = compose_for(&objects, "dev1");
    assert!(composed.config.datastores[0].api_key.is_empty());
    expect![[r#"
        [
            "StorageClass eve-quay: Secret stores/gone does not exist: create it; its credentials are not sent",
        ]
    "#]].assert_debug_eq(&composed.problems);
    let objects = with_device(
        &PRIVATE_REGISTRY.replace(
            "{username: robot, password: example-password}",
            "{token: x}",
        ),
        "",
    );
    expect![[r#"
        [
            "StorageClass eve-quay: Secret stores/quay-creds has none of the keys username, apiKey, password: add them; no credentials are sent",
        ]
    "#]].assert_debug_eq(&compose_for(&objects, "dev1").problems);
}

#[test]
fn a_wifi_port_gets_its_ssid_and_sealed_credentials() {
    let wifi = "apiVersion: v1
kind: Secret
metadata: {name: office-wifi, namespace: lab}
stringData: {identity: alice, password: wpa-secret}
---
apiVersion: eve.lfedge.org/v1beta1
kind: NetworkConfig
metadata: {name: office, namespace: lab}
spec: {ip: dhcp, wifi: {ssid: office-5g, credentialsSecret: office-wifi}}
";
    let objects = with_ecdh_device(wifi, "eve.lfedge.org/network-wlan0: office");
    let composed = compose_for(&objects, "dev1");
    let entry = &composed.config.networks[0]
        .wireless
        .as_ref()
        .expect("wireless")
        .wifi_cfg[0];
    assert_eq!(entry.key_scheme, WiFiKeyScheme::Wpaeap as i32);
    assert!(entry.password.is_empty() && entry.identity.is_empty());
    let opened = cipher::open(
        &device_key(),
        &controller_key().public_key(),
        entry.cipher_data.as_ref().expect("sealed"),
    )
    .expect("opens");
    assert_eq!(
        (
            opened.wifi_user_name.as_str(),
            opened.wifi_password.as_str()
        ),
        ("alice", "wpa-secret")
    );
    // The port is a wireless one.
    let mut shown: serde_json::Value =
        serde_json::from_str(&json(&composed.config, &["deviceIoList", "networks"])).expect("JSON");
    shown["networks"][0]["wireless"]["wifiCfg"][0]["cipherData"] = "(sealed)".into();
    expect![[r#"
        {
          "deviceIoList": [
            {
              "assigngrp": "wlan0",
              "logicallabel": "wlan0",
              "phyaddrs": {
                "Ifname": "wlan0"
              },
              "phylabel": "wlan0",
              "ptype": "PhyIoNetWLAN",
              "usage": "PhyIoUsageMgmtAndApps"
            }
          ],
          "networks": [
            {
              "id": "networkconfig-office",
              "ip": {
                "dhcp": "Client"
              },
              "type": "V4",
              "wireless": {
                "type": "WiFi",
                "wifiCfg": [
                  {
                    "cipherData": "(sealed)",
                    "keyScheme": "WPAEAP",
                    "wifiSSID": "office-5g"
                  }
                ]
              }
            }
          ]
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&shown).expect("JSON"));
    // Without the ECDH certificate: in the clear, redacted in the DeviceConfig.
    let objects = with_device(wifi, "eve.lfedge.org/network-wlan0: office");
    let composed = compose_for(&objects, "dev1");
    let entry = &composed.config.networks[0]
        .wireless
        .as_ref()
        .expect("wireless")
        .wifi_cfg[0];
    assert_eq!(
        (entry.identity.as_str(), entry.password.as_str()),
        ("alice", "wpa-secret")
    );
    assert!(!json(&composed.config, &[]).contains("wpa-secret"));
}

#[test]
fn vlans_on_a_port_become_vlan_adapters_with_their_own_networks() {
    let objects = with_device(
        "apiVersion: eve.lfedge.org/v1beta1
kind: NetworkConfig
metadata: {name: untagged, namespace: lab}
spec: {ip: dhcp}
---
apiVersion: eve.lfedge.org/v1beta1
kind: NetworkConfig
metadata: {name: cameras, namespace: lab}
spec: {ip: static, subnet: 10.20.0.0/24, address: 10.20.0.5, vlan: 20}
",
        "eve.lfedge.org/network-eth1: 'untagged, cameras'",
    );
    check(
        &objects,
        &["deviceIoList", "systemAdapterList", "vlans", "networks"],
        expect![[r#"
            {
              "deviceIoList": [
                {
                  "assigngrp": "eth1",
                  "logicallabel": "eth1",
                  "phyaddrs": {
                    "Ifname": "eth1"
                  },
                  "phylabel": "eth1",
                  "ptype": "PhyIoNetEth",
                  "usage": "PhyIoUsageMgmtAndApps"
                }
              ],
              "networks": [
                {
                  "id": "networkconfig-untagged",
                  "ip": {
                    "dhcp": "Client"
                  },
                  "type": "V4"
                },
                {
                  "id": "networkconfig-cameras",
                  "ip": {
                    "dhcp": "Static",
                    "subnet": "10.20.0.0/24"
                  },
                  "type": "V4"
                }
              ],
              "systemAdapterList": [
                {
                  "lowerLayerName": "eth1",
                  "name": "eth1",
                  "networkUUID": "networkconfig-untagged",
                  "uplink": true
                },
                {
                  "addr": "10.20.0.5",
                  "lowerLayerName": "eth1.20",
                  "name": "eth1.20",
                  "networkUUID": "networkconfig-cameras",
                  "uplink": true
                }
              ],
              "vlans": [
                {
                  "interfaceName": "eth1.20",
                  "logicallabel": "eth1.20",
                  "lowerLayerName": "eth1",
                  "vlanId": 20
                }
              ]
            }
        "#]],
    );
}

#[test]
fn the_maintenance_annotation_sets_maintenance_mode() {
    for (value, expected) in [("true", true), ("false", false), ("yes", false)] {
        let objects = with_device("", &format!("eve.lfedge.org/maintenance: '{value}'"));
        assert_eq!(
            compose_for(&objects, "dev1").config.maintenance_mode,
            expected,
            "{value}"
        );
    }
    assert!(
        !compose_for(&with_device("", ""), "dev1")
            .config
            .maintenance_mode
    );
}

#[test]
fn a_missing_port_network_config_leaves_a_dhcp_port_and_a_problem() {
    let objects = with_device("", "eve.lfedge.org/network-eth0: nowhere");
    let composed = compose_for(&objects, "dev1");
    expect![[r#"
        [
            "annotation eve.lfedge.org/network-eth0: NetworkConfig nowhere does not exist: create it; until then the port is a DHCP client",
        ]
    "#]].assert_debug_eq(&composed.problems);
    assert_eq!(composed.config.system_adapter_list.len(), 1);
}

#[test]
fn config_items_come_from_the_global_options_the_namespace_and_the_device() {
    let objects = with_device(
        "apiVersion: v1
kind: ConfigMap
metadata: {name: adamant-global-options, namespace: kube-system}
data: {a: global, b: global, c: global}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: adamant-global-options, namespace: lab}
data: {b: namespace, c: namespace}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: adamant-global-options, namespace: elsewhere}
data: {a: elsewhere}
",
        "eve.lfedge.org/config-items: 'c=device'",
    );
    let items: Vec<(String, String)> = compose_for(&objects, "dev1")
        .config
        .config_items
        .into_iter()
        .map(|i| (i.key, i.value))
        .collect();
    let expected = [("a", "global"), ("b", "namespace"), ("c", "device")];
    assert_eq!(items, expected.map(|(k, v)| (k.to_string(), v.to_string())));
}

#[test]
fn a_device_model_gives_the_io_list_and_applications_their_adapters() {
    let objects = with_device(
        "apiVersion: v1
kind: ConfigMap
metadata: {name: adamant-device-models, namespace: lab}
data:
  nuc: |
    - {ptype: PhyIoNetEth, phylabel: eth0, logicallabel: eth0, assigngrp: eth0, phyaddrs: {Ifname: eth0}, usage: PhyIoUsageMgmtAndApps}
    - {ptype: PhyIoUSB, phylabel: USB1, logicallabel: usb1, assigngrp: USB, phyaddrs: {UsbAddr: '1:1'}, usage: PhyIoUsageDedicated}
    - {ptype: PhyIoCOM, phylabel: COM1, logicallabel: com1, assigngrp: COM1, phyaddrs: {Serial: /dev/ttyS0}, usage: PhyIoUsageDedicated}
---
apiVersion: eve.lfedge.org/v1beta1
kind: Application
metadata:
  name: reader
  namespace: lab
  annotations: {eve.lfedge.org/adapters: 'USB, COM1, GPU'}
spec:
  nodeName: dev1
  containers: [{name: main, image: none}]
",
        "eve.lfedge.org/model: nuc",
    );
    let composed = compose_for(&objects, "dev1");
    // The model's IO, eth0 once (the model defines it).
    let labels: Vec<&str> = composed
        .config
        .device_io_list
        .iter()
        .map(|io| io.logicallabel.as_str())
        .collect();
    assert_eq!(labels, ["eth0", "usb1", "com1"]);
    check(
        &objects,
        &["apps"],
        expect![[r#"
        {
          "apps": [
            {
              "activate": true,
              "adapters": [
                {
                  "name": "USB",
                  "type": "PhyIoUSB"
                },
                {
                  "name": "COM1",
                  "type": "PhyIoCOM"
                }
              ],
              "displayname": "reader",
              "fixedresources": {
                "vcpus": 1,
                "virtualizationMode": "HVM"
              },
              "uuidandversion": {
                "uuid": "application-reader",
                "version": "1"
              }
            }
          ]
        }
    "#]],
    );
    expect![[r#"
        [
            "Application reader: annotation eve.lfedge.org/adapters: the device's model has no assignment group GPU; it is not given to the application",
        ]
    "#]].assert_debug_eq(&composed.problems);
}

#[test]
fn read_only_and_blank_claims_and_the_restart_and_purge_counters() {
    let mut objects = Objects::default();
    objects.add_yaml(include_str!("testdata/everything.yaml"));
    let composed = compose_for(&objects, "dev1");
    let app = &composed.config.apps[0];
    assert_eq!(
        (
            app.restart.as_ref().map(|r| r.counter),
            app.purge.as_ref().map(|p| p.counter)
        ),
        (Some(1), Some(1))
    );
    check(
        &objects,
        &["volumes"],
        expect![[r#"
        {
          "volumes": [
            {
              "displayName": "app-tmp",
              "maxsizebytes": "104857600",
              "origin": {
                "type": "VCOT_BLANK"
              },
              "uuid": "3a1f1e5e-e27d-5f56-09a6-80012ac3de5a"
            },
            {
              "displayName": "app-boot",
              "maxsizebytes": "4294967296",
              "origin": {
                "downloadContentTreeID": "image-app-image",
                "type": "VCOT_DOWNLOAD"
              },
              "uuid": "ad632654-2267-53fe-defb-e3f2be2f8f5a"
            },
            {
              "displayName": "data",
              "maxsizebytes": "2147483648",
              "origin": {
                "downloadContentTreeID": "image-data-disk",
                "type": "VCOT_DOWNLOAD"
              },
              "readonly": true,
              "uuid": "persistentvolumeclaim-data"
            },
            {
              "displayName": "scratch",
              "maxsizebytes": "1073741824",
              "origin": {
                "type": "VCOT_BLANK"
              },
              "uuid": "persistentvolumeclaim-scratch"
            }
          ]
        }
    "#]],
    );
}
