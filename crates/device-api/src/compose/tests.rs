//! Composition tested without caches: the examples and a few cases composed from objects in
//! memory ([`Objects`]), the configurations compared as proto3 JSON with snapshots
//! (`UPDATE_EXPECT=1` rewrites them).

use std::path::Path;

use expect_test::{Expect, expect, expect_file};

use eve_api::common::ProxyProto;

use super::application::shell_word;
use super::fixture::Objects;
use super::*;

/// What the controller's certificates hash to, in every test.
pub(super) const CONFIGHASH: &str = "controller-certificates";

/// The configuration `objects` give the Device `device`.
pub(super) fn compose_for(objects: &Objects, device: &str) -> Composed {
    let device = objects.device(device);
    let uuid = crate::fleet::uuid_of(&device).expect("a UID");
    compose(
        objects,
        &super::fixture::sealer(),
        &device,
        &uuid,
        CONFIGHASH,
    )
}

/// `config` in proto3 JSON, as DeviceConfig objects hold it, keeping only the fields `keep`
/// (all when empty).
pub(super) fn json(config: &EdgeDevConfig, keep: &[&str]) -> String {
    let mut value = crate::configs::to_json(config);
    if !keep.is_empty() {
        value
            .as_object_mut()
            .expect("an object")
            .retain(|field, _| keep.contains(&field.as_str()));
    }
    serde_json::to_string_pretty(&value).expect("JSON") + "\n"
}

/// The objects of `yaml` plus the Device `dev1` in `lab`, annotated with `annotations`.
pub(super) fn with_device(yaml: &str, annotations: &str) -> Objects {
    let mut objects = Objects::default();
    objects.add_yaml(&format!(
        "apiVersion: eve.lfedge.org/v1beta1
kind: Device
metadata:
  name: dev1
  namespace: lab
  annotations: {{{annotations}}}
spec: {{}}
"
    ));
    objects.add_yaml(yaml);
    objects
}

pub(super) fn check(objects: &Objects, keep: &[&str], expected: Expect) {
    let composed = compose_for(objects, "dev1");
    expected.assert_eq(&json(&composed.config, keep));
}

#[test]
fn the_examples_compose_into_the_example_devices_configuration() {
    let mut objects =
        Objects::from_directory(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples"));
    // The scheduler binds app-ubuntu (nodeSelector name: edge-node-01) to the example device.
    objects.bind("app-ubuntu", "eve-device.lab1");
    let composed = compose_for(&objects, "eve-device.lab1");
    expect_file!["snapshots/examples.json"].assert_eq(&json(&composed.config, &[]));
    assert_eq!(
        compose_for(&objects, "eve-device.lab1").hash,
        composed.hash,
        "the same objects give the same hash"
    );
}

#[test]
fn an_application_with_a_volume_gets_its_image_claim_and_data_stores() {
    let mut objects = with_device(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: eve-docker}
provisioner: eve
parameters: {type: container, URL: https://docker.io}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: eve-http}
provisioner: eve
parameters: {type: http, URL: https://images.example.com/disks}
---
apiVersion: eve.lfedge.org/v1beta1
kind: Image
metadata: {name: nginx, namespace: lab}
spec: {ref: library/nginx:1.27, storageClass: eve-docker}
---
apiVersion: eve.lfedge.org/v1beta1
kind: Image
metadata: {name: data, namespace: lab}
spec: {ref: data.qcow2, storageClass: eve-http, format: qcow2, size: 1048576}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: lab}
spec:
  accessModes: [ReadOnlyMany]
  resources: {requests: {storage: 2Gi}}
  storageClassName: eve-http
  dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: data}
---
apiVersion: eve.lfedge.org/v1beta1
kind: Application
metadata: {name: web, namespace: lab}
spec:
  containers:
    - name: web
      image: nginx
      command: [nginx, -g, daemon off;]
      env: [{name: MODE, value: edge}]
      resources:
        requests: {cpu: 1500m, memory: 128Mi}
        limits: {memory: 256Mi}
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: data}
",
        "",
    );
    objects.bind("web", "dev1");
    check(
        &objects,
        &["apps", "volumes", "contentInfo", "datastores"],
        expect![[r#"
            {
              "apps": [
                {
                  "activate": true,
                  "displayname": "web",
                  "fixedresources": {
                    "maxmem": 262144,
                    "memory": 131072,
                    "vcpus": 2,
                    "virtualizationMode": "HVM"
                  },
                  "userData": "TU9ERT1lZGdlCkVWRV9FQ09fQ01EPW5naW54IC1nICdkYWVtb24gb2ZmOyc=",
                  "uuidandversion": {
                    "uuid": "application-web",
                    "version": "1"
                  },
                  "volumeRefList": [
                    {
                      "uuid": "d79a0326-a776-5477-b942-85ba5e5402e7"
                    },
                    {
                      "mountDir": "/data",
                      "uuid": "persistentvolumeclaim-data"
                    }
                  ]
                }
              ],
              "contentInfo": [
                {
                  "URL": "data.qcow2",
                  "displayName": "data",
                  "dsId": "storageclass-eve-http",
                  "dsIdsList": [
                    "storageclass-eve-http"
                  ],
                  "iformat": "QCOW2",
                  "maxSizeBytes": "1048576",
                  "uuid": "image-data"
                },
                {
                  "URL": "library/nginx:1.27",
                  "displayName": "nginx",
                  "dsId": "storageclass-eve-docker",
                  "dsIdsList": [
                    "storageclass-eve-docker"
                  ],
                  "iformat": "CONTAINER",
                  "uuid": "image-nginx"
                }
              ],
              "datastores": [
                {
                  "dType": "DsContainerRegistry",
                  "fqdn": "docker://docker.io",
                  "id": "storageclass-eve-docker"
                },
                {
                  "dType": "DsHttp",
                  "dpath": "disks",
                  "fqdn": "http://images.example.com",
                  "id": "storageclass-eve-http"
                }
              ],
              "volumes": [
                {
                  "displayName": "web-boot",
                  "origin": {
                    "downloadContentTreeID": "image-nginx",
                    "type": "VCOT_DOWNLOAD"
                  },
                  "uuid": "d79a0326-a776-5477-b942-85ba5e5402e7"
                },
                {
                  "displayName": "data",
                  "maxsizebytes": "2147483648",
                  "origin": {
                    "downloadContentTreeID": "image-data",
                    "type": "VCOT_DOWNLOAD"
                  },
                  "readonly": true,
                  "uuid": "persistentvolumeclaim-data"
                }
              ]
            }
        "#]],
    );
    // What status reports are read against names the same volumes and images.
    let composed = compose_for(&objects, "dev1");
    let app = objects.applications[0].clone();
    let refs: Vec<String> = composed.config.apps[0]
        .volume_ref_list
        .iter()
        .map(|r| r.uuid.clone())
        .collect();
    let named: Vec<String> = volume_names(&objects, &app)
        .into_iter()
        .map(|v| v.uuid)
        .collect();
    assert_eq!(named, refs);
    let trees: Vec<String> = composed
        .config
        .content_info
        .iter()
        .map(|t| t.uuid.clone())
        .collect();
    let mut images: Vec<String> = image_names(&objects, &app)
        .into_iter()
        .map(|i| i.uuid)
        .collect();
    images.sort();
    assert_eq!(images, trees);
}

#[test]
fn a_ports_network_config_with_proxies_becomes_its_ent_proxy() {
    let objects = with_device(
        "apiVersion: eve.lfedge.org/v1beta1
kind: NetworkConfig
metadata: {name: corp, namespace: lab}
spec:
  ip: dhcp
  proxies: [http://proxy.corp.example.com:3128, socks5://10.0.0.1]
  noProxy: [localhost, .corp.example.com]
",
        "eve.lfedge.org/network-eth0: corp",
    );
    check(
        &objects,
        &["systemAdapterList", "networks"],
        expect![[r#"
            {
              "networks": [
                {
                  "entProxy": {
                    "exceptions": "localhost,.corp.example.com",
                    "proxies": [
                      {
                        "port": 3128,
                        "server": "proxy.corp.example.com"
                      },
                      {
                        "port": 1080,
                        "proto": "PROXY_SOCKS",
                        "server": "10.0.0.1"
                      }
                    ]
                  },
                  "id": "networkconfig-corp",
                  "ip": {
                    "dhcp": "Client"
                  },
                  "type": "V4"
                }
              ],
              "systemAdapterList": [
                {
                  "lowerLayerName": "eth0",
                  "name": "eth0",
                  "networkUUID": "networkconfig-corp",
                  "uplink": true
                }
              ]
            }
        "#]],
    );
}

#[test]
fn a_static_port_gets_its_address_gateway_dns_and_ntp() {
    let objects = with_device(
        "apiVersion: eve.lfedge.org/v1beta1
kind: NetworkConfig
metadata: {name: static-lan, namespace: lab}
spec:
  ip: static
  subnet: 192.168.1.0/24
  address: 192.168.1.10
  gateway: 192.168.1.1
  dns: [192.168.1.1, 1.1.1.1]
  domain: lab.example.com
  ntp: [pool.ntp.org, time.example.com]
",
        "eve.lfedge.org/network-eth1: static-lan",
    );
    check(
        &objects,
        &["deviceIoList", "systemAdapterList", "networks"],
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
                  "id": "networkconfig-static-lan",
                  "ip": {
                    "dhcp": "Static",
                    "dns": [
                      "192.168.1.1",
                      "1.1.1.1"
                    ],
                    "domain": "lab.example.com",
                    "gateway": "192.168.1.1",
                    "moreNtp": [
                      "time.example.com"
                    ],
                    "ntp": "pool.ntp.org",
                    "subnet": "192.168.1.0/24"
                  },
                  "type": "V4"
                }
              ],
              "systemAdapterList": [
                {
                  "addr": "192.168.1.10",
                  "lowerLayerName": "eth1",
                  "name": "eth1",
                  "networkUUID": "networkconfig-static-lan",
                  "uplink": true
                }
              ]
            }
        "#]],
    );
}

#[test]
fn proxies_become_ent_proxy_servers_with_exceptions_and_a_pac_url() {
    let spec =
        |proxies: &[&str], no_proxy: &[&str], pac: Option<&str>| eve_model::NetworkConfigSpec {
            proxies: proxies.iter().map(|p| p.to_string()).collect(),
            no_proxy: no_proxy.iter().map(|p| p.to_string()).collect(),
            pac_url: pac.map(str::to_string),
            ..Default::default()
        };
    assert_eq!(
        ent_proxy(&spec(&[], &["x"], None)),
        None,
        "no proxy, no entProxy"
    );
    let proxy = ent_proxy(&spec(
        &[
            "https://10.100.100.1:8888",
            "http://proxy.example.com",
            "socks5://[fd00::1]:1081",
            "ftp://ftp-proxy:2121",
            "gopher://old:70",
        ],
        &["localhost", ".corp.example.com"],
        None,
    ))
    .unwrap();
    let servers: Vec<(i32, &str, u32)> = proxy
        .proxies
        .iter()
        .map(|p| (p.proto, p.server.as_str(), p.port))
        .collect();
    assert_eq!(
        servers,
        [
            (ProxyProto::ProxyHttps as i32, "10.100.100.1", 8888),
            (ProxyProto::ProxyHttp as i32, "proxy.example.com", 80),
            (ProxyProto::ProxySocks as i32, "fd00::1", 1081),
            (ProxyProto::ProxyFtp as i32, "ftp-proxy", 2121),
            (ProxyProto::ProxyOther as i32, "old", 70),
        ]
    );
    assert_eq!(proxy.exceptions, "localhost,.corp.example.com");
    assert!(!proxy.network_proxy_enable);
    let pac = ent_proxy(&spec(&[], &[], Some("http://wpad.corp/proxy.pac"))).unwrap();
    assert!(pac.network_proxy_enable);
    assert_eq!(pac.network_proxy_url, "http://wpad.corp/proxy.pac");
    assert!(pac.proxies.is_empty());
    // A TLS-intercepting proxy's CA certificate goes as its PEM text.
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let with_ca = ent_proxy(&eve_model::NetworkConfigSpec {
        proxy_certificates: vec![base64::engine::general_purpose::STANDARD.encode(pem)],
        ..spec(&["http://proxy:3128"], &[], None)
    })
    .unwrap();
    assert_eq!(with_ca.proxy_cert_pem, vec![pem.as_bytes().to_vec()]);
}

#[test]
fn command_words_are_quoted_as_a_shell_reads_them() {
    assert_eq!(shell_word("/app/run"), "/app/run");
    assert_eq!(shell_word("--port=8080"), "--port=8080");
    assert_eq!(shell_word("two words"), "'two words'");
    assert_eq!(shell_word("it's"), r"'it'\''s'");
    assert_eq!(shell_word(""), "''");
}
