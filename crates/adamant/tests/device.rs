//! The EVE device API end to end: the specification's examples applied with kubectl, simulated
//! devices (`device-sim`) onboarding under every policy, fetching their composed and signed
//! configuration, reporting status that kubectl then shows; bad requests refused with the codes
//! EVE acts on while the server keeps serving.

use crate::common;

use base64::Engine;
use std::net::SocketAddr;

use common::{
    Server, apply_examples, configured, eventually, example_identity, example_key, examples,
    get_json,
};
use device_sim::{Controller, Device, Identity};
use eve_api::info::ZSwState;
use http::StatusCode;

/// A fresh self-signed P-256 identity (as EVE makes its device certificate).
fn fresh(name: &str) -> Identity {
    Identity::generate(name).unwrap()
}

/// An identity issued by the examples' CA `ca`.
fn issued_by(ca: &str, name: &str) -> Identity {
    let authority = pki::Authority::from_pem(
        &String::from_utf8(example_key(&format!("{ca}.pem"))).unwrap(),
        &String::from_utf8(example_key(&format!("{ca}.key"))).unwrap(),
    )
    .unwrap();
    let issued = authority.issue_leaf(name, pki::Leaf::Signing).unwrap();
    Identity {
        certificate_pem: issued.certificate_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    }
}

#[test]
fn a_simulated_device_onboards_runs_its_application_and_reports() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ctl = server.device_controller();
    let mut device = server.example_device();

    // Onboarding as eve-device.lab1: its Device already holds the certificate, so register is
    // an idempotent 200, and uuid answers the Device's UUID.
    let uuid = runtime.block_on(device.onboard()).unwrap();
    let lab1 = get_json(
        &server,
        &["-n", "enterprise1", "get", "device", "eve-device.lab1"],
    );
    assert_eq!(lab1["metadata"]["uid"], uuid.as_str());
    assert_eq!(
        runtime.block_on(device.register()).unwrap(),
        StatusCode::OK,
        "registering again on reboot is idempotent"
    );

    // The composed configuration.
    let config = configured(
        &runtime,
        &mut device,
        "app-ubuntu in the device's configuration",
        |config| {
            config
                .apps
                .iter()
                .any(|a| a.displayname == "app-ubuntu")
                .then_some(config)
        },
    );
    assert_eq!(config.id.as_ref().unwrap().uuid, uuid);
    let app = config
        .apps
        .iter()
        .find(|a| a.displayname == "app-ubuntu")
        .unwrap();
    let claim_uid = |name: &str| {
        get_json(&server, &["-n", "enterprise1", "get", "pvc", name])["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let refs: Vec<&str> = app
        .volume_ref_list
        .iter()
        .map(|r| r.uuid.as_str())
        .collect();
    for claim in ["fsclaim", "ubuntuclaim"] {
        assert!(
            refs.contains(&claim_uid(claim).as_str()),
            "{claim} in {refs:?}"
        );
    }
    assert!(
        app.volume_ref_list
            .iter()
            .any(|r| r.mount_dir == "/var/www/html"),
        "{:?}",
        app.volume_ref_list
    );
    assert_eq!(
        app.volume_ref_list.len(),
        4,
        "the boot volume and the three volumes"
    );
    assert_eq!(app.interfaces.len(), 2, "wlan-local and vpn-corp");
    for reference in &app.volume_ref_list {
        assert!(config.volumes.iter().any(|v| v.uuid == reference.uuid));
    }
    assert!(!config.datastores.is_empty());
    assert!(config.content_info.iter().all(|t| {
        config
            .datastores
            .iter()
            .any(|d| t.ds_ids_list.contains(&d.id))
    }));
    let baseos = config
        .baseos
        .as_ref()
        .expect("the base OS from the eve-os Image");
    assert_eq!(baseos.base_os_version, "8.10.0-kvm-amd64");
    assert!(
        config
            .content_info
            .iter()
            .any(|t| t.uuid == baseos.content_tree_uuid)
    );
    assert!(!config.system_adapter_list.is_empty() && !config.networks.is_empty());

    // Unchanged: 304.
    assert!(runtime.block_on(device.poll_config()).unwrap().is_none());

    // The device runs the application and reports.
    let app_uuid = app.uuidandversion.as_ref().unwrap().uuid.clone();
    runtime.block_on(async {
        device
            .report_device("6.12.2", "192.168.1.20")
            .await
            .unwrap();
        // Its volumes: the boot volume downloading, then every volume created.
        device
            .report_volume(
                &app.volume_ref_list[0].uuid,
                "boot",
                ZSwState::DownloadStarted,
                40,
            )
            .await
            .unwrap();
        for volume in &app.volume_ref_list {
            device
                .report_volume(&volume.uuid, "", ZSwState::CreatedVolume, 100)
                .await
                .unwrap();
        }
        for state in [ZSwState::Downloaded, ZSwState::Booting, ZSwState::Running] {
            device
                .report_app(&app_uuid, "app-ubuntu", state)
                .await
                .unwrap();
        }
        device.metrics().await.unwrap();
    });
    let shown = server.ok(&["-n", "enterprise1", "get", "application", "app-ubuntu"]);
    assert!(shown.contains("RUNNING"), "{shown}");
    let app_json = get_json(
        &server,
        &["-n", "enterprise1", "get", "application", "app-ubuntu"],
    );
    let history: Vec<&str> = app_json["status"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["DOWNLOADED", "BOOTING", "RUNNING"]);
    // Volume states by the application's volume names (boot first, claims with their claim).
    let volumes = app_json["status"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), app.volume_ref_list.len(), "{volumes:?}");
    assert!(
        volumes.iter().all(|v| v["state"] == "CREATED_VOLUME"),
        "{volumes:?}"
    );
    assert_eq!(volumes[0]["name"], "boot");
    assert_eq!(volumes[0]["progress"], 100);
    assert!(
        volumes.iter().any(|v| v["claimName"] == "ubuntuclaim"),
        "{volumes:?}"
    );
    let claims = server.ok(&["-n", "enterprise1", "get", "pvc"]);
    for claim in ["fsclaim", "ubuntuclaim"] {
        let row = claims.lines().find(|l| l.starts_with(claim)).unwrap();
        assert!(row.contains("Bound"), "{claims}");
    }
    let status = &get_json(
        &server,
        &["-n", "enterprise1", "get", "device", "eve-device.lab1"],
    )["status"];
    assert_eq!(status["capacity"]["cpu"], "4");
    assert_eq!(status["allocatable"]["memory"], "8Gi", "in canonical form");
    assert!(
        status["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["address"] == "192.168.1.20"),
        "{status}"
    );
    assert_eq!(status["nodeInfo"]["architecture"], "x86_64");
    let devices = server.ok(&["-n", "enterprise1", "get", "device", "eve-device.lab1"]);
    let row = devices.lines().nth(1).unwrap();
    assert!(row.contains("True") && row.contains("6.12.2"), "{devices}");

    // A change to the application reaches the device with a new hash.
    let before = device.config_hash.clone();
    server.ok(&[
        "-n",
        "enterprise1",
        "patch",
        "application",
        "app-ubuntu",
        "--type=merge",
        "-p",
        r#"{"spec":{"activate":false}}"#,
    ]);
    let changed = eventually("the changed configuration", || {
        runtime.block_on(device.poll_config()).unwrap().cloned()
    });
    assert_ne!(device.config_hash, before);
    assert!(
        !changed
            .apps
            .iter()
            .find(|a| a.displayname == "app-ubuntu")
            .unwrap()
            .activate
    );

    // Bad requests: each gets the status EVE acts on and changes nothing.
    let config_path = device.path("config");
    runtime.block_on(async {
        // Garbage and truncated bodies.
        assert_eq!(
            device.raw(&config_path, b"garbage".to_vec()).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let sealed = device.signer().seal(vec![1, 2, 3]);
        assert_eq!(
            device
                .raw(&config_path, sealed[..sealed.len() / 2].to_vec())
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // Logs: gzip files are taken (both application log paths); a payload that is not
        // gzip is unprocessable; one that would expand beyond the bound is too large.
        device.logs(&["hello from the device"]).await.unwrap();
        device
            .app_logs(&app_uuid, "app-ubuntu", &["console"])
            .await
            .unwrap();
        let short_path = format!("/api/v2/edgedevice/apps/instanceid/{app_uuid}/newlogs");
        let file =
            eve_api::newlogs::write("app-ubuntu", true, &[serde_json::json!({"content": "x"})]);
        assert_eq!(
            device
                .raw(&short_path, device.signer().seal(file))
                .await
                .unwrap(),
            StatusCode::CREATED
        );
        let logs_path = device.path("newlogs");
        assert_eq!(
            device
                .raw(&logs_path, device.signer().seal(b"not gzip".to_vec()))
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let bomb = {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            for _ in 0..16 {
                encoder.write_all(&[b' '; 1 << 20]).unwrap();
            }
            encoder.finish().unwrap()
        };
        assert_eq!(
            device
                .raw(&logs_path, device.signer().seal(bomb))
                .await
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // A bad signature: the payload changed after signing.
        let mut forged = device.signer().seal(vec![1, 2, 3]);
        let at = forged.windows(3).position(|w| w == [1, 2, 3]).unwrap();
        forged[at + 2] = 4;
        assert_eq!(
            device.raw(&config_path, forged).await.unwrap(),
            StatusCode::UNAUTHORIZED
        );
        // An unknown certificate.
        let stranger = Device::new(ctl.clone(), fresh("stranger"), None, "x").unwrap();
        assert_eq!(
            stranger
                .raw(&config_path, stranger.signer().seal(Vec::new()))
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED
        );
        // Another device's UUID in the path.
        let other = "/api/v2/edgedevice/id/00000000-0000-0000-0000-000000000001/config";
        assert_eq!(
            device
                .raw(other, device.signer().seal(Vec::new()))
                .await
                .unwrap(),
            StatusCode::FORBIDDEN
        );
        // A replayed registration of the same onboarding certificate and serial with another
        // device certificate.
        let mut impostor = Device::new(
            ctl.clone(),
            fresh("impostor"),
            Some(example_identity("onboard")),
            "6654abbcc44",
        )
        .unwrap();
        impostor.certs().await.unwrap();
        assert!(matches!(
            impostor.register().await,
            Err(device_sim::SimError::Status {
                status: StatusCode::CONFLICT,
                ..
            })
        ));
        // No policy admits a stranger's onboarding certificate.
        let mut nobody = Device::new(
            ctl.clone(),
            fresh("nobody"),
            Some(fresh("nobody-onboard")),
            "nobody-1",
        )
        .unwrap();
        nobody.certs().await.unwrap();
        assert!(matches!(
            nobody.register().await,
            Err(device_sim::SimError::Status {
                status: StatusCode::FORBIDDEN,
                ..
            })
        ));
        // And the server still serves the device.
        assert!(device.poll_config().await.unwrap().is_none());
    });
    let count = get_json(&server, &["get", "devices", "-A"])["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, 1, "no bad request made a Device");

    // Self-registration under each policy: an OnboardCertificate, an
    // OnboardCertificateAuthority, a DeviceCertificateAuthority.
    let policies = [
        (
            "by-onboard-certificate",
            fresh("d1"),
            example_identity("onboard"),
        ),
        (
            "by-onboard-authority",
            fresh("d2"),
            issued_by("onboard-ca", "onboard-2"),
        ),
        (
            "by-device-authority",
            issued_by("device-ca", "d3"),
            fresh("other-onboard"),
        ),
    ];
    for (serial, device_identity, onboard) in policies {
        let mut newcomer =
            Device::new(ctl.clone(), device_identity, Some(onboard), serial).unwrap();
        let uuid = runtime
            .block_on(newcomer.onboard())
            .unwrap_or_else(|e| panic!("{serial}: {e}"));
        let made = get_json(&server, &["-n", "enterprise1", "get", "device", serial]);
        assert_eq!(made["metadata"]["uid"], uuid.as_str(), "{serial}");
        assert!(
            runtime.block_on(newcomer.poll_config()).unwrap().is_some(),
            "{serial}"
        );
    }
    // A port given the NetworkConfig default-ipv4, which names a proxy: the device gets it as
    // the port network's entProxy.
    server.ok(&[
        "-n",
        "enterprise1",
        "annotate",
        "device",
        "eve-device.lab1",
        "eve.lfedge.org/network-eth0=default-ipv4",
    ]);
    let proxy = configured(
        &runtime,
        &mut device,
        "the port's proxy in the configuration",
        |config| {
            let port = config
                .system_adapter_list
                .iter()
                .find(|a| a.name == "eth0")?;
            config
                .networks
                .iter()
                .find(|n| n.id == port.network_uuid)?
                .ent_proxy
                .clone()
        },
    );
    assert_eq!(
        (
            proxy.proxies[0].proto,
            proxy.proxies[0].server.as_str(),
            proxy.proxies[0].port
        ),
        (
            eve_api::common::ProxyProto::ProxyHttps as i32,
            "10.100.100.1",
            8888
        )
    );
    // A static IPv6 port: its address on the SystemAdapter, a V6 network.
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: NetworkConfig\nmetadata:\n  name: static-port\n  namespace: enterprise1\nspec:\n  ip: static\n  subnet: fd00:1::/64\n  address: fd00:1::5\n  gateway: fd00:1::1\n",
    );
    server.ok(&[
        "-n",
        "enterprise1",
        "annotate",
        "device",
        "eve-device.lab1",
        "eve.lfedge.org/network-eth1=static-port",
    ]);
    let (address, kind) = configured(
        &runtime,
        &mut device,
        "the static port in the configuration",
        |config| {
            let port = config
                .system_adapter_list
                .iter()
                .find(|a| a.name == "eth1")?;
            let network = config.networks.iter().find(|n| n.id == port.network_uuid)?;
            Some((port.addr.clone(), network.r#type))
        },
    );
    assert_eq!(address, "fd00:1::5");
    assert_eq!(kind, eve_api::common::NetworkType::V6 as i32);
    // Raising an Application's restart and purge counters asks the device to do each once.
    server.ok(&[
        "-n",
        "enterprise1",
        "annotate",
        "application",
        "app-ubuntu",
        "eve.lfedge.org/restart=1",
        "eve.lfedge.org/purge=2",
    ]);
    let (restart, purge) = configured(
        &runtime,
        &mut device,
        "the counters in the configuration",
        |config| {
            let app = config.apps.iter().find(|a| a.displayname == "app-ubuntu")?;
            Some((app.restart.as_ref()?.counter, app.purge.as_ref()?.counter))
        },
    );
    assert_eq!((restart, purge), (1, 2));
    // A container's command and arguments reach the device as EVE_ECO_CMD in its user data.
    server.ok(&[
        "-n",
        "enterprise1",
        "patch",
        "application",
        "app-ubuntu",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/spec/containers/0/command","value":["/bin/sh","-c"]},{"op":"add","path":"/spec/containers/0/args","value":["echo hi"]}]"#,
    ]);
    // The user data is sealed for the device (it uploaded its ECDH certificate): it opens it.
    let user_data = eventually("the command in the user data", || {
        let block = configured(&runtime, &mut device, "sealed user data", |config| {
            config
                .apps
                .iter()
                .find(|a| a.displayname == "app-ubuntu")?
                .cipher_data
                .clone()
        });
        let opened = device.open_block(&block).unwrap();
        let text = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&opened.protected_user_data)
                .ok()?,
        )
        .ok()?;
        text.contains("EVE_ECO_CMD").then_some(text)
    });
    assert!(
        user_data
            .lines()
            .any(|l| l == "EVE_ECO_CMD=/bin/sh -c 'echo hi'"),
        "{user_data}"
    );
    // The device's reboot and shutdown counters.
    server.ok(&[
        "-n",
        "enterprise1",
        "annotate",
        "device",
        "eve-device.lab1",
        "eve.lfedge.org/reboot=3",
        "eve.lfedge.org/shutdown=4",
    ]);
    let (reboot, shutdown) = configured(
        &runtime,
        &mut device,
        "the device's counters in the configuration",
        |config| Some((config.reboot?.counter, config.shutdown?.counter)),
    );
    assert_eq!((reboot, shutdown), (3, 4));
}

/// A server with open registration into `default` and a grace period of 2 s.
fn open_with_short_grace(dir: &std::path::Path) -> Server {
    Server::start_in(
        &dir.join("data"),
        "127.0.0.1:0",
        &[
            "--open-registration",
            "default",
            "--device-grace-seconds",
            "2",
        ],
    )
}

/// The `Ready` condition of the Device `name` in `default`, if it has one.
fn ready_condition(server: &Server, name: &str) -> Option<serde_json::Value> {
    get_json(server, &["-n", "default", "get", "device", name])["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
}

#[test]
fn open_registration_and_a_silent_device_turning_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let server = open_with_short_grace(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = Device::new(
        server.device_controller(),
        fresh("open"),
        Some(fresh("any-onboarding")),
        "open-1",
    )
    .unwrap();
    runtime.block_on(async {
        device.onboard().await.unwrap();
        device.report_device("14.5.0", "10.1.0.7").await.unwrap();
    });
    let ready = |server: &Server| ready_condition(server, "open-1");
    let first = ready(&server).unwrap();
    assert_eq!(first["status"], "True");
    // A device that keeps calling stays Ready, well past the grace period, though its
    // heartbeat is written only every half grace period: the process that hears it keeps its
    // liveness in memory. (Were it marked silent in between, Ready's lastTransitionTime would
    // move with each flip.)
    let started = std::time::Instant::now();
    let mut beats = std::collections::BTreeSet::new();
    while started.elapsed() < std::time::Duration::from_secs(6) {
        runtime.block_on(device.metrics()).unwrap();
        let now = ready(&server).unwrap();
        assert_eq!(now["status"], "True", "a calling device stays Ready: {now}");
        assert_eq!(
            now["lastTransitionTime"], first["lastTransitionTime"],
            "{now}"
        );
        beats.insert(now["lastHeartbeatTime"].as_str().unwrap().to_string());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(beats.len() >= 3, "the heartbeat advances: {beats:?}");
    let silent = eventually("Ready to turn Unknown", || {
        ready(&server).filter(|c| c["status"] == "Unknown")
    });
    assert_eq!(silent["reason"], "DeviceStoppedReporting");
    // Reporting again makes it Ready.
    runtime
        .block_on(device.report_device("14.5.0", "10.1.0.7"))
        .unwrap();
    eventually("Ready again", || {
        ready(&server).filter(|c| c["status"] == "True")
    });
}

/// Liveness is shared between replicas through ConfigMaps in kube-system: this process lists
/// the devices it hears, and keeps Ready a device another replica's record says it heard,
/// though this one never does; when that record ages past the grace period, the device turns
/// Unknown. (The other replica is played by kubectl writing its record.)
#[test]
fn liveness_is_shared_through_records_other_replicas_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = open_with_short_grace(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let onboarded = |name: &str| {
        let mut device = Device::new(
            server.device_controller(),
            fresh(name),
            Some(fresh(&format!("{name}-onboarding"))),
            name,
        )
        .unwrap();
        runtime.block_on(async {
            device.onboard().await.unwrap();
            device.report_device("14.5.0", "10.1.0.7").await.unwrap();
        });
        device
    };
    let here = onboarded("here-1");
    let _elsewhere = onboarded("elsewhere-1");
    let records = || {
        get_json(
            &server,
            &[
                "-n",
                "kube-system",
                "get",
                "configmaps",
                "-l",
                "adamant.io/liveness",
            ],
        )["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // This process's record lists the devices it heard, with when.
    let record = eventually("this process's liveness record", || {
        runtime.block_on(here.metrics()).unwrap();
        records().into_iter().find(|r| {
            r["data"]["heard"]
                .as_str()
                .is_some_and(|h| h.contains("default/here-1 "))
        })
    });
    assert!(
        record["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("adamant-liveness-"),
        "{record}"
    );
    let ready = |name: &str| ready_condition(&server, name).unwrap();
    let first = ready("elsewhere-1");
    assert_eq!(first["status"], "True");
    // Another replica hears elsewhere-1: it stays Ready though this process never hears it
    // again, for more than twice the grace period.
    let other = |at: i64| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: adamant-liveness-other-0\n  namespace: kube-system\n  labels:\n    adamant.io/liveness: other\ndata:\n  heard: |\n    default/elsewhere-1 {at}\n"
        )
    };
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        server.ok_stdin(&["apply", "-f", "-"], &other(unix_now()));
        runtime.block_on(here.metrics()).unwrap();
        let now = ready("elsewhere-1");
        assert_eq!(now["status"], "True", "heard by another replica: {now}");
        assert_eq!(now["lastTransitionTime"], first["lastTransitionTime"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // That replica stops hearing it: Unknown, while the device this process hears stays Ready.
    let silent = eventually("Ready to turn Unknown", || {
        runtime.block_on(here.metrics()).unwrap();
        Some(ready("elsewhere-1")).filter(|c| c["status"] == "Unknown")
    });
    assert_eq!(silent["reason"], "DeviceStoppedReporting");
    assert_eq!(ready("here-1")["status"], "True");
    // A replica gone (nothing heard for twice the grace period) has its record deleted.
    server.ok_stdin(&["apply", "-f", "-"], &other(unix_now() - 60));
    eventually("the gone replica's record deleted", || {
        runtime.block_on(here.metrics()).unwrap();
        (!records()
            .iter()
            .any(|r| r["metadata"]["name"] == "adamant-liveness-other-0"))
        .then_some(())
    });
}

#[test]
fn adamant_controller_serves_devices_in_cluster_mode() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false", "--device-api=false"],
    );
    // The server leaves devices to the controller: one device API, one root.
    assert!(server.ready.contains("devices=off"), "{}", server.ready);
    let (_controller, ready) = common::Controller::start_with(
        &server.kubeconfig(),
        &[
            "--device-api=true".as_ref(),
            "--device-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--open-registration".as_ref(),
            "default".as_ref(),
        ],
    );
    let address: SocketAddr = common::device_address_in(&ready).parse().unwrap();
    // In cluster mode the controller keeps its root as a Secret in kube-system; devices trust
    // its tls.crt.
    let root = common::cluster_root(&server);
    let ctl = Controller::new(address, "localhost", &root).unwrap();
    let mut device = Device::new(
        ctl,
        fresh("cluster"),
        Some(fresh("cluster-onboard")),
        "cluster-1",
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    let made = get_json(&server, &["-n", "default", "get", "device", "cluster-1"]);
    assert_eq!(made["metadata"]["uid"], uuid.as_str());
    let config = runtime
        .block_on(device.poll_config())
        .unwrap()
        .cloned()
        .unwrap();
    assert_eq!(config.id.unwrap().uuid, uuid);
}

/// Cluster mode's key escrow with the controller's least-privilege identity: the escrow Secret
/// is created in the device's namespace, replaced on a second escrow, and read back by a new
/// controller process (which also reads its keys back from `kube-system`).
#[test]
fn cluster_mode_escrows_keys_across_controller_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false", "--device-api=false"],
    );
    let args: [&std::ffi::OsStr; 5] = [
        "--device-api=true".as_ref(),
        "--device-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--open-registration".as_ref(),
        "default".as_ref(),
    ];
    let (controller, ready) = common::Controller::start_with(&server.kubeconfig(), &args);
    let ctl = |ready: &str| {
        let address: SocketAddr = common::device_address_in(ready).parse().unwrap();
        Controller::new(address, "localhost", &common::cluster_root(&server)).unwrap()
    };
    let mut device = Device::new(
        ctl(&ready),
        fresh("escrowing"),
        Some(fresh("escrowing-onboard")),
        "escrowing-1",
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let uuid = runtime.block_on(async {
        let uuid = device.onboard().await.unwrap();
        assert!(device.escrow(b"first key").await.unwrap(), "escrowed");
        assert!(
            device.escrow(b"sealed vault key").await.unwrap(),
            "escrowed again"
        );
        uuid
    });
    let escrow = get_json(
        &server,
        &[
            "-n",
            "default",
            "get",
            "secret",
            &format!("eve-escrow-{uuid}"),
        ],
    );
    assert_eq!(escrow["type"], "eve.lfedge.org/key-escrow");

    // A new process knows the keys only from the Secret.
    drop(controller);
    let (_controller, ready) = common::Controller::start_with(&server.kubeconfig(), &args);
    device.reconnect(ctl(&ready));
    runtime.block_on(async {
        device.certs().await.unwrap();
        device.attest().await.unwrap();
    });
    assert_eq!(device.escrowed.len(), 1);
    assert_eq!(device.escrowed[0].key, b"sealed vault key");
}

#[test]
fn a_restart_keeps_uuids_tokens_and_the_configuration_hash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--open-registration", "default"];
    let mut server = Server::start_in(&data, "127.0.0.1:0", &args);
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: NetworkConfig\nmetadata:\n  name: lan\n  namespace: default\nspec:\n  ip: dhcp\n---\napiVersion: eve.lfedge.org/v1beta1\nkind: DeviceNetwork\nmetadata:\n  name: lan\n  namespace: default\nspec:\n  networkConfig: lan\n",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = Device::new(
        server.device_controller(),
        fresh("steady"),
        Some(fresh("steady-onboard")),
        "steady-1",
    )
    .unwrap();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    let config = runtime
        .block_on(device.poll_config())
        .unwrap()
        .cloned()
        .unwrap();
    assert_eq!(
        config.network_instances.len(),
        1,
        "the DeviceNetwork is on the device"
    );
    let hash = device.config_hash.clone();
    let exported = std::fs::read_to_string(data.join("pki/controller-signing.pem")).unwrap();
    assert!(exported.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        runtime
            .block_on(device.escrow(b"sealed vault key"))
            .unwrap(),
        "the key is escrowed"
    );

    server.stop();
    let server = Server::start_in(&data, "127.0.0.1:0", &args);
    device.reconnect(server.device_controller());
    runtime.block_on(async {
        // The same certificates (the device keeps its signing key), the same UUID, a token that
        // still holds, and a recomposition that gives the same hash: 304.
        device.certs().await.unwrap();
        assert_eq!(device.fetch_uuid().await.unwrap(), uuid);
        assert!(
            device.poll_config().await.unwrap().is_none(),
            "unchanged across the restart"
        );
        // The escrowed key comes back with the next quote.
        device.attest().await.unwrap();
        assert_eq!(device.escrowed.len(), 1);
        assert_eq!(device.escrowed[0].key, b"sealed vault key");
    });
    assert_eq!(device.config_hash, hash);

    // Rotation of the controller certificates: the operator stops the server, has them
    // forgotten (`adamant keys rotate`) and starts it; the device learns of it from its next
    // configuration (a new controllercert_confighash, signed by the new certificate, which it
    // fetches from /certs) without registering again, and its integrity token still holds.
    let mut server = server;
    server.stop();
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args([
            "keys",
            "rotate",
            "device-signing",
            "device-ecdh",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    assert_eq!(
        String::from_utf8_lossy(&rotated.stdout),
        "adamant-device-signing: forgotten; the next start makes a new one\nadamant-device-ecdh: forgotten; the next start makes a new one\n"
    );
    let server = Server::start_in(&data, "127.0.0.1:0", &args);
    device.reconnect(server.device_controller());
    let rotated = runtime
        .block_on(device.poll_config())
        .unwrap()
        .cloned()
        .expect("a new configuration");
    assert_ne!(
        rotated.controllercert_confighash, config.controllercert_confighash,
        "the certificates' hash changed"
    );
    assert_ne!(device.config_hash, hash);
    assert_eq!(rotated.id.as_ref().unwrap().uuid, uuid, "the same device");
    assert_ne!(
        std::fs::read_to_string(data.join("pki/controller-signing.pem")).unwrap(),
        exported,
        "the export follows the rotation"
    );
}

#[test]
fn device_configs_are_written_and_a_paused_one_is_served_as_edited() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    let ns = ["-n", "enterprise1"];
    let devcfg = |server: &Server| {
        get_json(
            server,
            &[&ns[..], &["get", "devcfg", "eve-device.lab1"]].concat(),
        )
    };
    let poll = |device: &mut Device| runtime.block_on(device.poll_config()).unwrap().cloned();
    let composed = eventually("app-ubuntu in the configuration", || {
        poll(&mut device);
        let config = device.config.clone()?;
        config
            .apps
            .iter()
            .any(|a| a.displayname == "app-ubuntu")
            .then_some(config)
    });
    let hash = device.config_hash.clone();

    // The composer writes what the device gets, with its hash.
    let written = eventually("the DeviceConfig with the device's hash", || {
        let c = devcfg(&server);
        (c["status"]["configHash"] == hash.as_str()).then_some(c)
    });
    assert_eq!(written["spec"]["device"], "eve-device.lab1");
    assert_eq!(written["spec"]["config"]["deviceName"], "eve-device.lab1");
    assert_eq!(
        written["spec"]["config"]["apps"][0]["displayname"],
        "app-ubuntu"
    );
    assert_eq!(written["metadata"]["ownerReferences"][0]["kind"], "Device");
    assert_eq!(written["status"]["conditions"][0]["reason"], "Composed");
    // The configuration is owned whole (x-kubernetes-map-type: atomic): its writer's managed
    // fields name `spec.config`, not each of its fields.
    let managed = get_json(
        &server,
        &[
            &ns[..],
            &["get", "devcfg", "eve-device.lab1", "--show-managed-fields"],
        ]
        .concat(),
    );
    let spec_fields: Vec<&serde_json::Value> = managed["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["fieldsV1"]["f:spec"].as_object())
        .filter_map(|spec| spec.get("f:config"))
        .collect();
    assert_eq!(spec_fields, [&serde_json::json!({})], "{managed}");
    let table = server.ok(&[&ns[..], &["get", "devcfg"]].concat());
    assert!(table.contains(&hash), "{table}");

    // An edit of an unpaused DeviceConfig is put back; the device's configuration stays.
    let patch = |server: &Server, body: &str| {
        server.ok(&[
            &ns[..],
            &[
                "patch",
                "devcfg",
                "eve-device.lab1",
                "--type=merge",
                "-p",
                body,
            ],
        ]
        .concat());
    };
    patch(&server, r#"{"spec":{"config":{"deviceName":"edited"}}}"#);
    eventually("the edit put back", || {
        (devcfg(&server)["spec"]["config"]["deviceName"] == "eve-device.lab1").then_some(())
    });
    assert!(poll(&mut device).is_none(), "unchanged: 304");

    // Paused, the user's configuration is served as written.
    patch(
        &server,
        r#"{"spec":{"paused":true,"config":{"configItems":[{"key":"timer.config.interval","value":"5"}]}}}"#,
    );
    let edited = eventually("the edited configuration", || poll(&mut device));
    assert_eq!(edited.config_items.len(), 1);
    assert_eq!(edited.config_items[0].key, "timer.config.interval");
    assert_eq!(edited.config_items[0].value, "5");
    assert!(edited.apps.iter().any(|a| a.displayname == "app-ubuntu"));
    let paused_hash = device.config_hash.clone();
    let status = eventually("the paused status", || {
        let c = devcfg(&server);
        (c["status"]["configHash"] == paused_hash.as_str()).then_some(c["status"].clone())
    });
    assert_eq!(status["conditions"][0]["reason"], "Paused");
    // The composer leaves it alone: a change of the objects does not reach the device.
    server.ok(&[
        &ns[..],
        &[
            "annotate",
            "device",
            "eve-device.lab1",
            "eve.lfedge.org/config-items=x=1",
        ],
    ]
    .concat());
    assert!(poll(&mut device).is_none(), "paused: 304");
    assert_eq!(
        devcfg(&server)["spec"]["config"]["configItems"][0]["value"],
        "5"
    );

    // A paused configuration that is not an EdgeDevConfig: the composed one is served and the
    // status says why.
    patch(&server, r#"{"spec":{"config":{"apps":"not a list"}}}"#);
    let status = eventually("the refusal in the status", || {
        let c = devcfg(&server);
        (c["status"]["conditions"][0]["reason"] == "InvalidConfig").then_some(c["status"].clone())
    });
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.config is not an EdgeDevConfig"),
        "{message}"
    );
    let recomposed = eventually("the composed configuration", || poll(&mut device));
    assert!(
        recomposed
            .config_items
            .iter()
            .any(|i| i.key == "x" && i.value == "1")
    );

    // Unpaused, the composer writes its configuration again.
    patch(&server, r#"{"spec":{"paused":false}}"#);
    eventually("the composed configuration written back", || {
        let c = devcfg(&server);
        (c["spec"]["config"]["configItems"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["key"] == "x"))
            && c["status"]["conditions"][0]["reason"] == "Composed")
            .then_some(())
    });
    assert!(
        poll(&mut device).is_none(),
        "the composed configuration it already has: 304"
    );
    assert_ne!(device.config_hash, hash, "the annotation changed it");
    assert_eq!(composed.id, recomposed.id, "the same UUID throughout");

    // The Device deleted, its DeviceConfig goes with it.
    server.ok(&[&ns[..], &["delete", "device", "eve-device.lab1"]].concat());
    eventually("the DeviceConfig deleted", || {
        let out = server.ok(&[
            &ns[..],
            &["get", "devcfg", "--ignore-not-found", "-o", "name"],
        ]
        .concat());
        out.trim().is_empty().then_some(())
    });
}

#[test]
fn adamant_sim_onboards_devices_under_a_chosen_policy() {
    let server = Server::start();
    apply_examples(&server);
    let address = server.device_address();
    let root = server.data.join("pki/root-certificate.pem");
    let keys = examples().join("keys");
    let sim = |keys: &std::path::Path, policy: &[(&str, &str)], prefix: &str| {
        let mut args = vec![
            "sim".to_string(),
            "--server".into(),
            address.clone(),
            "--host".into(),
            "localhost".into(),
            "--root-cert".into(),
            root.display().to_string(),
            "--devices".into(),
            "3".into(),
            "--serial-prefix".into(),
            prefix.into(),
            "--config-interval".into(),
            "1".into(),
            "--metric-interval".into(),
            "1".into(),
            "--duration".into(),
            "3".into(),
        ];
        for (flag, file) in policy {
            args.push(flag.to_string());
            args.push(keys.join(file).display().to_string());
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_adamant"))
            .args(&args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    // An OnboardCertificate admits them.
    let summary = sim(
        &keys,
        &[
            ("--onboard-cert", "onboard.pem"),
            ("--onboard-key", "onboard.key"),
        ],
        "by-onboard-",
    );
    assert!(summary.contains("3 devices onboarded"), "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
    // A DeviceCertificateAuthority admits them.
    let summary = sim(
        &keys,
        &[
            ("--device-ca-cert", "device-ca.pem"),
            ("--device-ca-key", "device-ca.key"),
        ],
        "by-ca-",
    );
    assert!(summary.contains("3 devices onboarded"), "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
    // Keys made by examples/keys/make-keys.sh, their onboarding certificate given as a policy.
    let made = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(examples().join("keys/make-keys.sh"))
        .arg(made.path())
        .status()
        .unwrap();
    assert!(status.success());
    let onboard = std::fs::read(made.path().join("onboard.pem")).unwrap();
    server.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: OnboardCertificate\nmetadata:\n  name: made\n  namespace: enterprise1\nspec:\n  certificate: {}\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, onboard)
        ),
    );
    let summary = sim(
        made.path(),
        &[
            ("--onboard-cert", "onboard.pem"),
            ("--onboard-key", "onboard.key"),
        ],
        "by-made-",
    );
    assert!(summary.contains("3 devices onboarded"), "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
    let devices = get_json(&server, &["-n", "enterprise1", "get", "devices"]);
    let names: Vec<&str> = devices["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    for name in [
        "by-onboard-0",
        "by-onboard-2",
        "by-ca-0",
        "by-ca-2",
        "by-made-1",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}

/// A device is its Device's `metadata.uid`, whatever a user writes into `status.uuid`, and its
/// reports change only the Applications placed on it.
#[test]
fn identities_are_uids_and_reports_reach_only_a_device_s_own_applications() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut lab1 = server.example_device();
    let lab1_uuid = runtime.block_on(lab1.onboard()).unwrap();
    // A second device, admitted by the example onboarding certificate.
    let mut other = Device::new(
        server.device_controller(),
        fresh("intruder"),
        Some(example_identity("onboard")),
        "intruder",
    )
    .unwrap();
    let other_uuid = runtime.block_on(other.onboard()).unwrap();
    assert_ne!(other_uuid, lab1_uuid);
    let app_uid = eventually("app-ubuntu placed on eve-device.lab1", || {
        let app = get_json(&server, &["-n", "enterprise1", "get", "app", "app-ubuntu"]);
        (app["spec"]["nodeName"] == "eve-device.lab1")
            .then(|| app["metadata"]["uid"].as_str().unwrap().to_string())
    });
    // The other device reports lab1's application crashed: nothing changes.
    runtime
        .block_on(other.report_app(&app_uid, "app-ubuntu", ZSwState::Halted))
        .unwrap();
    // lab1 itself reports it running: that is recorded.
    runtime
        .block_on(lab1.report_app(&app_uid, "app-ubuntu", ZSwState::Running))
        .unwrap();
    let app = get_json(&server, &["-n", "enterprise1", "get", "app", "app-ubuntu"]);
    assert_eq!(app["status"]["state"], "RUNNING");
    let states: Vec<&str> = app["status"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert!(!states.contains(&"HALTED"), "{states:?}");
    // A user writing lab1's UUID into the other Device's status changes no identity.
    server.ok(&[
        "-n",
        "enterprise1",
        "patch",
        "device",
        "intruder",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status": {{"uuid": "{lab1_uuid}"}}}}"#),
    ]);
    assert_eq!(runtime.block_on(other.fetch_uuid()).unwrap(), other_uuid);
    assert_eq!(runtime.block_on(lab1.fetch_uuid()).unwrap(), lab1_uuid);
    let config = runtime
        .block_on(other.poll_config())
        .unwrap()
        .cloned()
        .or_else(|| other.config.clone())
        .unwrap();
    assert_eq!(config.id.as_ref().unwrap().uuid, other_uuid);
    assert!(
        !config.apps.iter().any(|a| a.displayname == "app-ubuntu"),
        "the other device never gets lab1's application"
    );
}

/// A registration that policies of two namespaces would both admit is refused (and recorded),
/// so a tenant cannot capture another's devices with a policy that also matches them.
#[test]
fn a_registration_admitted_by_two_tenants_is_refused() {
    let server = Server::start();
    for file in ["00-namespace.yaml", "01-onboarding.yaml"] {
        server.ok(&["apply", "-f", &examples().join(file).display().to_string()]);
    }
    // Tenant B trusts its own device CA; a device carrying enterprise1's onboarding
    // certificate and a certificate from B's CA matches a policy of each.
    server.ok(&["create", "namespace", "tenant-b"]);
    let b_ca = pki::Authority::generate("Tenant B Device CA").unwrap();
    let ca_pem = b_ca.certificate_pem.clone();
    server.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: DeviceCertificateAuthority\nmetadata:\n  name: mine\n  namespace: tenant-b\nspec:\n  certificate: {}\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ca_pem)
        ),
    );
    let issued = b_ca.issue_leaf("contested", pki::Leaf::Signing).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = Device::new(
        server.device_controller(),
        Identity {
            certificate_pem: issued.certificate_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        },
        Some(example_identity("onboard")),
        "contested",
    )
    .unwrap();
    runtime.block_on(device.certs()).unwrap();
    match runtime.block_on(device.register()) {
        Err(device_sim::SimError::Status { status, .. }) => {
            assert_eq!(status, StatusCode::FORBIDDEN)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let devices = server.ok(&["get", "devices", "-A", "-o", "name"]);
    assert!(devices.trim().is_empty(), "no Device made: {devices}");
    eventually("the refusal recorded as an Event", || {
        let events = server.ok(&["-n", "default", "get", "events"]);
        events.contains("more than one namespace").then_some(())
    });
}

/// A claim from an Image in the specification's spelling (`kind: image`) becomes a volume that
/// downloads that Image; one whose Image does not exist (admitted in warning mode) is left out
/// of the configuration, never sent as a blank disk, and the application says what is missing.
#[test]
fn a_claim_in_the_specification_s_form_downloads_its_image() {
    let server = Server::start();
    apply_examples(&server);
    let claim = |name: &str, image: &str, annotations: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n  namespace: enterprise1\n{annotations}spec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n  storageClassName: eve-image\n  dataSourceRef: {{apiGroup: eve.lfedge.org, kind: image, name: {image}}}\n"
        )
    };
    server.ok_stdin(
        &["apply", "-f", "-"],
        &claim("spec-form", "golden-ubuntu-2004-vm", ""),
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        &claim(
            "later-form",
            "later-image",
            "  annotations:\n    eve.lfedge.org/reference-checks: warn\n",
        ),
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Application\nmetadata:\n  name: spec-forms\n  namespace: enterprise1\n  annotations:\n    eve.lfedge.org/reference-checks: warn\nspec:\n  nodeName: eve-device.lab1\n  containers:\n  - name: a\n    image: golden-ubuntu-2004\n    volumeMounts:\n    - {name: disk, mountPath: /disk}\n    - {name: later, mountPath: /later}\n  volumes:\n  - name: disk\n    persistentVolumeClaim: {claimName: spec-form}\n  - name: later\n    persistentVolumeClaim: {claimName: later-form}\n",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    let config = configured(
        &runtime,
        &mut device,
        "spec-forms in the device's configuration",
        |config| {
            config
                .apps
                .iter()
                .any(|a| a.displayname == "spec-forms")
                .then_some(config)
        },
    );
    let uid = |kind: &str, name: &str| {
        get_json(&server, &["-n", "enterprise1", "get", kind, name])["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let volume = config
        .volumes
        .iter()
        .find(|v| v.uuid == uid("pvc", "spec-form"))
        .expect("the claim's volume");
    let origin = volume.origin.as_ref().unwrap();
    assert_eq!(
        origin.r#type,
        eve_api::config::VolumeContentOriginType::VcotDownload as i32
    );
    assert_eq!(
        origin.download_content_tree_id,
        uid("image", "golden-ubuntu-2004-vm")
    );
    assert!(
        config
            .content_info
            .iter()
            .any(|t| t.uuid == origin.download_content_tree_id)
    );
    let later = uid("pvc", "later-form");
    assert!(
        !config.volumes.iter().any(|v| v.uuid == later),
        "no blank disk for a missing Image"
    );
    let app = config
        .apps
        .iter()
        .find(|a| a.displayname == "spec-forms")
        .unwrap();
    assert!(!app.volume_ref_list.iter().any(|r| r.uuid == later));
    eventually("ReferencesResolved=False naming the claim's Image", || {
        let app = get_json(&server, &["-n", "enterprise1", "get", "app", "spec-forms"]);
        app["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| {
                c["type"] == "ReferencesResolved"
                    && c["status"] == "False"
                    && c["message"].as_str().is_some_and(|m| {
                        m.contains("Image later-image (of PersistentVolumeClaim later-form)")
                    })
            })
            .then_some(())
    });
}

/// Content tree states (`ZInfoContentTree`) show per Image in `status.images` of every
/// Application on the device that uses the Image, in `kubectl get -o wide` and by jsonpath; the
/// EVE-OS image and unknown UUIDs change nothing; a long error is cut to 1 KiB.
#[test]
fn content_tree_states_show_on_each_application_using_the_image() {
    let server = Server::start();
    apply_examples(&server);
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Application\nmetadata:\n  name: shares-boot\n  namespace: enterprise1\nspec:\n  nodeName: eve-device.lab1\n  containers:\n  - name: a\n    image: golden-ubuntu-2004\n",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    let config = configured(
        &runtime,
        &mut device,
        "both applications in the device's configuration",
        |config| {
            ["app-ubuntu", "shares-boot"]
                .iter()
                .all(|name| config.apps.iter().any(|a| a.displayname == *name))
                .then_some(config)
        },
    );
    let uid = |name: &str| {
        get_json(&server, &["-n", "enterprise1", "get", "image", name])["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // A content tree is its Image's UID.
    let boot = uid("golden-ubuntu-2004");
    let fs = uid("golden-ubuntu-2004-fs");
    let eve_os = uid("eve-os-8.10.0-kvm-amd64");
    for tree in [&boot, &fs, &eve_os] {
        assert!(
            config.content_info.iter().any(|t| &t.uuid == tree),
            "{tree}"
        );
    }
    let report = |uuid: &str, state: ZSwState, progress: u32, error: Option<&str>| {
        runtime
            .block_on(device.report_content_tree(uuid, "", state, progress, error))
            .unwrap();
    };
    report(
        &boot,
        ZSwState::DownloadStarted,
        40,
        Some("pull failed: 401 Unauthorized"),
    );
    // Neither a UUID never sent nor the EVE-OS image (of no application) changes anything.
    report(
        "00000000-0000-4000-8000-000000000000",
        ZSwState::Error,
        0,
        Some("unknown"),
    );
    report(&eve_os, ZSwState::DownloadStarted, 10, None);
    let jsonpath = |app: &str, path: &str| {
        server.ok(&[
            "-n",
            "enterprise1",
            "get",
            "application",
            app,
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    let first = "{.status.images[0].name} {.status.images[0].state} {.status.images[0].progress} {.status.images[0].message}";
    for app in ["app-ubuntu", "shares-boot"] {
        assert_eq!(
            jsonpath(app, first),
            "golden-ubuntu-2004 DOWNLOAD_STARTED 40 pull failed: 401 Unauthorized",
            "{app}"
        );
        assert_eq!(
            jsonpath(app, "{.status.images[*].name}"),
            "golden-ubuntu-2004"
        );
    }
    let wide = server.ok(&[
        "-n",
        "enterprise1",
        "get",
        "application",
        "app-ubuntu",
        "-o",
        "wide",
    ]);
    let header = wide.lines().next().unwrap();
    for column in ["IMAGES", "PROGRESS", "IMAGE ERRORS"] {
        assert!(header.contains(column), "{wide}");
    }
    let row = wide.lines().nth(1).unwrap();
    assert!(
        row.contains("DOWNLOAD_STARTED")
            && row.contains(" 40 ")
            && row.contains("pull failed: 401 Unauthorized"),
        "{wide}"
    );
    // A long error is cut to 1 KiB; another Image of app-ubuntu (its claim's) follows the
    // boot image, and only app-ubuntu uses it.
    report(&boot, ZSwState::Error, 0, Some(&"x".repeat(5_000)));
    report(&fs, ZSwState::Loaded, 100, None);
    let images = get_json(
        &server,
        &["-n", "enterprise1", "get", "application", "app-ubuntu"],
    )["status"]["images"]
        .clone();
    assert_eq!(images[0]["state"], "ERROR", "{images}");
    assert_eq!(images[0]["message"].as_str().unwrap().len(), 1024);
    assert!(images[0].get("progress").is_none(), "{images}");
    assert_eq!(images[1]["name"], "golden-ubuntu-2004-fs");
    assert_eq!(images[1]["state"], "LOADED");
    assert_eq!(images[1]["progress"], 100);
    assert_eq!(images.as_array().unwrap().len(), 2, "{images}");
    assert_eq!(
        jsonpath("shares-boot", "{.status.images[*].name}"),
        "golden-ubuntu-2004"
    );
    assert_eq!(
        jsonpath("shares-boot", "{.status.images[0].state}"),
        "ERROR"
    );
}

/// `adamant sim` devices report the Images of the applications they run downloading, then
/// loaded; `kubectl get -o wide` shows it.
#[test]
fn adamant_sim_reports_the_images_of_its_applications() {
    let server = Server::start();
    apply_examples(&server);
    eventually("app-ubuntu placed on eve-device.lab1", || {
        let app = get_json(&server, &["-n", "enterprise1", "get", "app", "app-ubuntu"]);
        (app["spec"]["nodeName"] == "eve-device.lab1").then_some(())
    });
    let keys = examples().join("keys");
    let key = |file: &str| keys.join(file).display().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args([
            "sim",
            "--server",
            &server.device_address(),
            "--host",
            "localhost",
            "--root-cert",
            &server
                .data
                .join("pki/root-certificate.pem")
                .display()
                .to_string(),
            "--devices",
            "0",
            "--device-cert",
            &key("device.pem"),
            "--device-key",
            &key("device.key"),
            "--device-serial",
            "6654abbcc44",
            "--onboard-cert",
            &key("onboard.pem"),
            "--onboard-key",
            &key("onboard.key"),
            "--config-interval",
            "1",
            "--metric-interval",
            "1",
            "--duration",
            "3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains(" 0 applications running"), "{stdout}");
    assert!(stdout.contains(" 0 errors"), "{stdout}");
    let names = server.ok(&[
        "-n",
        "enterprise1",
        "get",
        "application",
        "app-ubuntu",
        "-o",
        "jsonpath={.status.images[*].name}={.status.images[*].state}",
    ]);
    assert_eq!(
        names,
        "golden-ubuntu-2004 golden-ubuntu-2004-fs golden-ubuntu-2004-vm=LOADED LOADED LOADED"
    );
    let wide = server.ok(&[
        "-n",
        "enterprise1",
        "get",
        "application",
        "app-ubuntu",
        "-o",
        "wide",
    ]);
    assert!(
        wide.contains("LOADED,LOADED,LOADED") && wide.contains("100,100,100"),
        "{wide}"
    );
    // Every application it runs there (those of the examples' fleet share the boot Image,
    // which the device had already loaded) shows its Images loaded.
    let apps = get_json(&server, &["-n", "enterprise1", "get", "applications"]);
    for app in apps["items"].as_array().unwrap() {
        if app["spec"]["nodeName"] != "eve-device.lab1" || app["status"]["state"] != "RUNNING" {
            continue;
        }
        let images = app["status"]["images"].as_array().unwrap();
        assert!(
            !images.is_empty() && images.iter().all(|i| i["state"] == "LOADED"),
            "{app}"
        );
    }
}

/// A Device created with only an onboarding certificate (no serial) is the device that first
/// presents it; a second device with that certificate is not captured by it.
#[test]
fn a_device_named_by_its_onboarding_certificate_alone_is_claimed_by_it() {
    let server = Server::start();
    server.ok(&["create", "namespace", "lab"]);
    let onboard = fresh("batch onboarding");
    server.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: Device\nmetadata:\n  name: expected\n  namespace: lab\nspec:\n  onboard: {}\n",
            base64::engine::general_purpose::STANDARD.encode(&onboard.certificate_pem)
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let identity = fresh("first");
    let mut first = Device::new(
        server.device_controller(),
        identity.clone(),
        Some(onboard.clone()),
        "SN-0001",
    )
    .unwrap();
    let uuid = runtime.block_on(first.onboard()).unwrap();
    let device = get_json(&server, &["-n", "lab", "get", "device", "expected"]);
    assert_eq!(device["metadata"]["uid"], uuid.as_str());
    assert_eq!(
        device["spec"]["certificate"],
        base64::engine::general_purpose::STANDARD.encode(&identity.certificate_pem)
    );
    eventually("the Onboarded event names the policy", || {
        let events = server.ok(&["-n", "lab", "get", "events"]);
        events
            .contains("onboarding certificate, named by the Device (without a serial)")
            .then_some(())
    });
    // The Device is taken: a second device with the same onboarding certificate is not it, and
    // no policy admits it.
    let mut second = Device::new(
        server.device_controller(),
        fresh("second"),
        Some(onboard),
        "SN-0002",
    )
    .unwrap();
    runtime.block_on(second.certs()).unwrap();
    match runtime.block_on(second.register()) {
        Err(device_sim::SimError::Status { status, .. }) => {
            assert_eq!(status, StatusCode::FORBIDDEN)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let devices = server.ok(&["get", "devices", "-A", "-o", "name"]);
    assert_eq!(
        devices.trim(),
        "device.eve.lfedge.org/expected",
        "{devices}"
    );
}

/// The device port's connection caps hold against one address holding connections open
/// without a word, and devices elsewhere are served meanwhile (the deadlines themselves are
/// the `https` crate's tests).
#[test]
fn idle_connections_from_one_address_neither_pile_up_nor_block_other_devices() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[
            "--device-max-connections-per-address",
            "3",
            "--device-idle-timeout",
            "2s",
        ],
    );
    apply_examples(&server);
    let address: SocketAddr = server.device_address().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let from = |ip: [u8; 4]| {
        runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::from((ip, 0))).unwrap();
            let stream = socket.connect(address).await.unwrap().into_std().unwrap();
            stream.set_nonblocking(false).unwrap();
            stream
        })
    };
    let held: Vec<std::net::TcpStream> = (0..3).map(|_| from([127, 0, 0, 2])).collect();
    let mut fourth = from([127, 0, 0, 2]);
    fourth
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buffer = [0u8; 16];
    // Closed: the read ends (or the connection is reset); a read that merely times out would
    // mean it was left open.
    let read = fourth.read(&mut buffer);
    assert!(
        match &read {
            Ok(n) => *n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        },
        "a fourth connection from the same address is closed at once: {read:?}"
    );
    // The example device, from 127.0.0.1, onboards and gets its configuration meanwhile.
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    assert!(runtime.block_on(device.poll_config()).unwrap().is_some());
    drop(held);
}

/// Attestation cannot be replayed: a quote answers a nonce issued to the device, once; each
/// successful quote earns a fresh integrity token that replaces the last; a deactivated device
/// gets no token and no keys.
#[test]
fn attestation_answers_each_nonce_once_and_tokens_are_fresh() {
    use eve_api::attest::ZAttestResponseCode;
    let server = Server::start();
    apply_examples(&server);
    // Enforced: a quote that answers no nonce is refused (under the default policy, recorded).
    server.ok(&[
        "annotate",
        "namespace",
        "enterprise1",
        "eve.lfedge.org/attestation=enforce",
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    let first = device.token().to_vec();
    assert!(!first.is_empty());
    let code = |answer: &eve_api::attest::ZAttestQuoteResp| answer.response;
    // The nonce of the onboarding was answered: a quote now answers none.
    let replayed = runtime.block_on(device.quote(Vec::new())).unwrap();
    assert_eq!(code(&replayed), ZAttestResponseCode::NonceMismatch as i32);
    assert!(replayed.integrity_token.is_empty() && replayed.keys.is_empty());
    // A new nonce, answered (by a device without a TPM: an empty quote), gives a new token.
    runtime.block_on(device.nonce()).unwrap();
    let answered = runtime.block_on(device.quote(Vec::new())).unwrap();
    assert_eq!(code(&answered), ZAttestResponseCode::Success as i32);
    let second = answered.integrity_token.clone();
    assert_ne!(second, first, "a fresh token each attestation");
    let again = runtime.block_on(device.quote(Vec::new())).unwrap();
    assert_eq!(
        code(&again),
        ZAttestResponseCode::NonceMismatch as i32,
        "the same quote twice"
    );
    // The old token no longer opens the configuration; the new one does.
    device.set_token(first);
    let refused = runtime.block_on(device.poll_config());
    assert!(
        matches!(
            &refused,
            Err(device_sim::SimError::Status {
                status: StatusCode::FORBIDDEN,
                ..
            })
        ),
        "{refused:?}"
    );
    device.set_token(second);
    runtime.block_on(device.poll_config()).unwrap();
    // Deactivated: no token, no keys.
    server.ok(&[
        "-n",
        "enterprise1",
        "annotate",
        "device",
        "eve-device.lab1",
        "--overwrite",
        "eve.lfedge.org/activate=false",
    ]);
    eventually("the deactivation to reach the device API", || {
        runtime.block_on(device.nonce()).unwrap();
        match runtime.block_on(device.quote(Vec::new())) {
            Err(device_sim::SimError::Status {
                status: StatusCode::FORBIDDEN,
                ..
            }) => Some(()),
            _ => None,
        }
    });
}

/// Each device has a request budget and so has each address for requests no known device
/// signed: beyond them 429 (EVE retries later), and the others are served all the same.
#[test]
fn each_device_and_each_stranger_address_has_a_request_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[
            "--device-requests-per-minute",
            "8",
            "--device-stranger-requests-per-minute",
            "3",
            "--open-registration",
            "default",
        ],
    );
    let address: SocketAddr = server.device_address().parse().unwrap();
    let root = std::fs::read(server.data.join("pki/root-certificate.pem")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let device = |name: &str| {
        let ctl = Controller::new(address, "localhost", &root).unwrap();
        Device::new(
            ctl,
            fresh(name),
            Some(fresh(&format!("{name}-onboard"))),
            name,
        )
        .unwrap()
    };
    // Onboarding: one registration (the address's budget), uuid and three attestation steps
    // (the device's); then polls until the device's budget is spent.
    let mut busy = device("busy");
    runtime.block_on(busy.onboard()).unwrap();
    let mut polls = 0;
    let refused = loop {
        polls += 1;
        assert!(polls <= 8, "the budget of 8 a minute holds");
        match runtime.block_on(busy.poll_config()) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            refused,
            device_sim::SimError::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                ..
            }
        ),
        "{refused:?}"
    );
    // Another device is served meanwhile.
    let mut quiet = device("quiet");
    runtime.block_on(quiet.onboard()).unwrap();
    assert!(runtime.block_on(quiet.poll_config()).unwrap().is_some());
    // Requests no device signed spend the address's budget: two registrations so far, one
    // left, then 429.
    let register = || {
        let output = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .arg("--cacert")
            .arg(server.data.join("pki/root-certificate.pem"))
            .args(["-X", "POST", "--data-binary", "garbage"])
            .arg(format!(
                "https://localhost:{}/api/v2/edgedevice/register",
                address.port()
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_ne!(register(), "429");
    assert_eq!(register(), "429");
}

/// A body declared longer than any device message is refused before a byte of it is read (a
/// body is whole before its signer is known, so none is buffered that could not be one).
#[test]
fn a_body_declared_too_long_is_refused_unread() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start();
    let address: SocketAddr = server.device_address().parse().unwrap();
    let root = std::fs::read(server.data.join("pki/root-certificate.pem")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(&root) {
            roots.add(certificate.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        // The headers only: the 2 MiB never come.
        tls.write_all(
            b"POST /api/v2/edgedevice/register HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2097152\r\n\r\n",
        )
        .await
        .unwrap();
        let mut answer = vec![0u8; 64];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tls.read(&mut answer),
        )
        .await
        .expect("answered without waiting for the body")
        .unwrap();
        String::from_utf8_lossy(&answer[..read]).into_owned()
    });
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
