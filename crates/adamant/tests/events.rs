//! Events with kubectl: the example device onboards with `device-sim` and its Events (onboarded
//! and under which policy, a refused registration, its configuration delivered) show in
//! `kubectl describe device` and `kubectl events --for`, as do the Onboarded Events of devices
//! admitted by each onboarding policy object; scheduling's Events (an unschedulable
//! Application, a bound claim, a daemon set creating applications, a deployment scaled up and
//! rolled out to a new template) in `kubectl describe`; both Event APIs and Leases in
//! `kubectl get`.

use crate::common;

use common::{Server, apply_examples, eventually, example_identity, get_json};
use device_sim::{Device, Identity};
use eve_api::info::ZSwState;
use eve_controllers::events;
use http::StatusCode;
use serde_json::Value;

/// The output of `kubectl ARGS` once it contains every one of `wanted`.
fn shows(server: &Server, args: &[&str], wanted: &[&str]) -> String {
    eventually(
        &format!("kubectl {} to show {wanted:?}", args.join(" ")),
        || {
            let out = server.ok(args);
            wanted.iter().all(|w| out.contains(w)).then_some(out)
        },
    )
}

#[test]
fn a_device_s_events_show_in_describe_and_kubectl_events() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ctl = server.device_controller();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();

    // kubectl describe finds the Device's Events by involvedObject (core/v1, protobuf).
    let describe = ["-n", "enterprise1", "describe", "device", "eve-device.lab1"];
    let described = shows(&server, &describe, &["Onboarded"]);
    let events = &described[described.find("Events:").expect("an Events section")..];
    assert!(
        events.contains("Normal")
            && events.contains("eve.lfedge.org/device-api")
            && events.contains("the device registered, admitted by its device certificate"),
        "{events}"
    );

    // kubectl events --for lists them too.
    let listed = shows(
        &server,
        &[
            "events",
            "--for",
            "device/eve-device.lab1",
            "-n",
            "enterprise1",
        ],
        &["Onboarded"],
    );
    assert!(listed.contains("Device/eve-device.lab1"), "{listed}");

    // A configuration delivered, with its hash (once the examples' application is in it, so
    // that it stays the same from here on).
    let hash = eventually("app-ubuntu in the device's configuration", || {
        runtime.block_on(device.poll_config()).unwrap();
        let config = device.config.as_ref()?;
        config
            .apps
            .iter()
            .any(|a| a.displayname == "app-ubuntu")
            .then(|| device.config_hash.clone())
    });
    assert!(!hash.is_empty());
    shows(&server, &describe, &["ConfigDelivered", &hash]);
    // Polls that change nothing record nothing: one with the hash (304), and one without it
    // (as after a reboot), answered with the same configuration again.
    assert!(runtime.block_on(device.poll_config()).unwrap().is_none());
    device.config_hash.clear();
    assert!(runtime.block_on(device.poll_config()).unwrap().is_some());
    assert_eq!(device.config_hash, hash);
    let polled = std::time::Instant::now();

    // A refused registration: the same onboarding certificate and serial with another device
    // certificate, on the Device (twice: one Event, its series counting 2); one no policy
    // admits, on the Device it would have made.
    runtime.block_on(async {
        let mut impostor = Device::new(
            ctl.clone(),
            Identity::generate("impostor").unwrap(),
            Some(example_identity("onboard")),
            "6654abbcc44",
        )
        .unwrap();
        impostor.certs().await.unwrap();
        assert!(impostor.register().await.is_err());
        assert!(impostor.register().await.is_err());
        let mut nobody = Device::new(
            ctl.clone(),
            Identity::generate("nobody").unwrap(),
            Some(Identity::generate("nobody-onboard").unwrap()),
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
    });
    let described = shows(&server, &describe, &["RegistrationRefused"]);
    assert!(
        described.contains("registered with another device certificate"),
        "{described}"
    );
    // The second refusal is paced (one Event per object and reason every five seconds), then
    // counted in the first one's series.
    let events_of = |reason: &str| {
        get_json(
            &server,
            &[
                "-n",
                "enterprise1",
                "get",
                "events.events.k8s.io",
                "--field-selector",
                &format!("reason={reason},regarding.name=eve-device.lab1"),
            ],
        )["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let refusals = eventually("the repeated refusal counted", || {
        let refusals = events_of("RegistrationRefused");
        (refusals.len() == 1 && refusals[0]["series"]["count"] == 2).then_some(refusals)
    });
    assert!(
        refusals[0]["note"]
            .as_str()
            .unwrap()
            .contains("registered with another device certificate"),
        "{refusals:?}"
    );
    let core = get_json(
        &server,
        &[
            "-n",
            "enterprise1",
            "get",
            "events",
            "--field-selector",
            "reason=RegistrationRefused,involvedObject.name=eve-device.lab1",
        ],
    );
    assert_eq!(core["items"].as_array().unwrap().len(), 1, "{core}");
    assert_eq!(core["items"][0]["series"]["count"], 2, "{core}");
    // The configuration was delivered once: no second Event, no series, for as long as a
    // paced repeat would take to show (the interval and the publisher's tick, with a margin).
    let hold = events::MIN_INTERVAL + std::time::Duration::from_secs(2);
    while polled.elapsed() < hold {
        let delivered: Vec<Value> = events_of("ConfigDelivered")
            .into_iter()
            .filter(|e| e["note"].as_str().unwrap_or("").contains(&hash))
            .collect();
        assert_eq!(delivered.len(), 1, "{delivered:?}");
        assert!(delivered[0]["series"].is_null(), "{delivered:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let refused = eventually("the stranger's refusal", || {
        let list = get_json(
            &server,
            &[
                "-n",
                "default",
                "get",
                "events",
                "--field-selector",
                "reason=RegistrationRefused",
            ],
        );
        list["items"].as_array().and_then(|i| i.first().cloned())
    });
    assert_eq!(refused["type"], "Warning");
    assert_eq!(refused["involvedObject"]["kind"], "Device");
    assert_eq!(refused["involvedObject"]["name"], "nobody-1");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no Device or onboarding policy admits this device"),
        "{refused}"
    );

    // kubectl get events: kube-apiserver's columns, no leading name.
    let table = server.ok(&["-n", "enterprise1", "get", "events"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{table}"
    );
    assert!(table.contains("device/eve-device.lab1"), "{table}");
    // The same Events as events.k8s.io/v1, written by kube-rs's Recorder.
    let new_style = get_json(
        &server,
        &[
            "-n",
            "enterprise1",
            "get",
            "events.events.k8s.io",
            "--field-selector",
            "reason=Onboarded,regarding.name=eve-device.lab1",
        ],
    );
    let onboarded = &new_style["items"][0];
    assert_eq!(
        onboarded["reportingController"],
        "eve.lfedge.org/device-api"
    );
    assert_eq!(onboarded["regarding"]["kind"], "Device");
    assert_eq!(onboarded["action"], "Register");
    assert!(
        onboarded["note"]
            .as_str()
            .unwrap()
            .starts_with("the device registered"),
        "{onboarded}"
    );
}

/// The note of the Onboarded Event of the Device `name` in enterprise1, once there is one.
fn onboarded_note(server: &Server, name: &str) -> String {
    eventually(&format!("{name}'s Onboarded Event"), || {
        let list = get_json(
            server,
            &[
                "-n",
                "enterprise1",
                "get",
                "events.events.k8s.io",
                "--field-selector",
                &format!("reason=Onboarded,regarding.name={name}"),
            ],
        );
        list["items"][0]["note"].as_str().map(str::to_string)
    })
}

#[test]
fn onboarded_events_name_the_policy_object_that_admitted_the_device() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ctl = server.device_controller();
    let onboard_ca = example_identity("onboard-ca");
    let device_ca = example_identity("device-ca");
    runtime.block_on(async {
        // The examples' onboarding certificate with a serial no Device names: the
        // OnboardCertificate holding it admits the device (the onboarding CA signed it too, and
        // the certificate object is the one named, as it is checked first).
        let mut by_certificate = Device::new(
            ctl.clone(),
            Identity::generate("by-certificate").unwrap(),
            Some(example_identity("onboard")),
            "by-certificate",
        )
        .unwrap();
        by_certificate.onboard().await.unwrap();
        // An onboarding certificate the examples' onboarding CA signed, held by no object.
        let mut by_authority = Device::new(
            ctl.clone(),
            Identity::generate("by-authority").unwrap(),
            Some(Identity::issued_by(&onboard_ca, "onboard-by-authority").unwrap()),
            "by-authority",
        )
        .unwrap();
        by_authority.onboard().await.unwrap();
        // A device certificate the examples' device CA signed, with an onboarding certificate
        // no policy admits.
        let mut by_device_ca = Device::new(
            ctl.clone(),
            Identity::issued_by(&device_ca, "by-device-ca").unwrap(),
            Some(Identity::generate("onboard-by-device-ca").unwrap()),
            "by-device-ca",
        )
        .unwrap();
        by_device_ca.onboard().await.unwrap();
    });

    let cases = [
        ("by-certificate", "OnboardCertificate onboard-cert-25"),
        (
            "by-authority",
            "OnboardCertificateAuthority onboard-certificate-authority-13",
        ),
        (
            "by-device-ca",
            "DeviceCertificateAuthority device-certificate-authority-16",
        ),
    ];
    for (name, policy) in cases {
        assert_eq!(
            onboarded_note(&server, name),
            format!("the device registered, admitted by {policy}"),
            "{name}"
        );
        // kubectl describe shows it on the Device the registration made.
        let described = shows(
            &server,
            &["-n", "enterprise1", "describe", "device", name],
            &["Onboarded"],
        );
        let events = &described[described.find("Events:").expect("an Events section")..];
        assert!(
            events.contains(&format!("admitted by {policy}")),
            "{events}"
        );
    }
    // kubectl events --for lists the one of the OnboardCertificateAuthority's device.
    shows(
        &server,
        &[
            "events",
            "-n",
            "enterprise1",
            "--for",
            "device/by-authority",
        ],
        &[
            "Onboarded",
            "admitted by OnboardCertificateAuthority onboard-certificate-authority-13",
        ],
    );
}

const NOWHERE: &str = r#"
apiVersion: eve.lfedge.org/v1beta1
kind: Application
metadata:
  name: app-nowhere
  namespace: enterprise1
spec:
  nodeSelector:
    site: mars
  containers:
    - name: main
      image: golden-ubuntu-2004
"#;

const LEASE: &str = r#"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: leader
  namespace: enterprise1
spec:
  holderIdentity: adamant-1
  leaseDurationSeconds: 15
  renewTime: "2025-01-01T00:00:00.000000Z"
"#;

#[test]
fn scheduling_events_show_in_describe() {
    let server = Server::start();
    apply_examples(&server);
    server.ok_stdin(&["apply", "-f", "-"], NOWHERE);

    // An Application no device fits, and why.
    let described = shows(
        &server,
        &[
            "-n",
            "enterprise1",
            "describe",
            "application",
            "app-nowhere",
        ],
        &["Unschedulable"],
    );
    let events = &described[described.find("Events:").expect("an Events section")..];
    assert!(
        events.contains("Warning") && events.contains("eve.lfedge.org/controllers"),
        "{events}"
    );
    let condition = get_json(
        &server,
        &["-n", "enterprise1", "get", "application", "app-nowhere"],
    )["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Scheduled")
        .cloned()
        .unwrap();
    let why = condition["message"].as_str().unwrap();
    assert!(events.contains(why), "{why:?} in {events}");

    // The example application bound to the device, its claims bound, the daemon set's
    // application created.
    shows(
        &server,
        &["-n", "enterprise1", "describe", "application", "app-ubuntu"],
        &["Scheduled", "bound to Device eve-device.lab1"],
    );
    // (kubectl describe pvc lists the Pods using it, which Adamant does not serve.)
    shows(
        &server,
        &["-n", "enterprise1", "events", "--for", "pvc/fsclaim"],
        &[
            "Bound",
            "bound to Device eve-device.lab1, for Application app-ubuntu",
        ],
    );
    shows(
        &server,
        &[
            "-n",
            "enterprise1",
            "describe",
            "applicationdaemonset",
            "node-agent",
        ],
        &[
            "ScalingApplications",
            "created 1 application(s) of template",
        ],
    );

    // kubectl events --for an Application, warnings only.
    let listed = shows(
        &server,
        &[
            "events",
            "-n",
            "enterprise1",
            "--for",
            "application/app-nowhere",
            "--types",
            "Warning",
        ],
        &["Unschedulable"],
    );
    assert!(!listed.contains("Normal"), "{listed}");

    // Leases with kubectl.
    server.ok_stdin(&["apply", "-f", "-"], LEASE);
    let leases = server.ok(&["-n", "enterprise1", "get", "leases"]);
    let header: Vec<&str> = leases.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "HOLDER", "AGE"], "{leases}");
    assert!(
        leases.contains("leader") && leases.contains("adamant-1"),
        "{leases}"
    );
    let refused = server.fails(
        &["apply", "-f", "-"],
        Some(&LEASE.replace("leaseDurationSeconds: 15", "leaseDurationSeconds: 0")),
    );
    assert!(
        refused.contains("spec.leaseDurationSeconds: Invalid value: \"0\": must be greater than 0"),
        "{refused}"
    );
}

/// The live Applications of the examples' ApplicationDeployment `web`.
fn web_apps(server: &Server) -> Vec<Value> {
    get_json(server, &["-n", "enterprise1", "get", "applications"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| {
            a["metadata"]["ownerReferences"][0]["name"] == "web"
                && a["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

/// The template hash of the live Applications of `web`, once there are `replicas` of them
/// and all of one template.
fn web_template(server: &Server, replicas: usize) -> String {
    eventually(&format!("{replicas} applications of web"), || {
        let apps = web_apps(server);
        let mut hashes: Vec<&str> = apps
            .iter()
            .filter_map(|a| a["metadata"]["labels"]["eve.lfedge.org/template-hash"].as_str())
            .collect();
        hashes.dedup();
        (apps.len() == replicas && hashes.len() == 1).then(|| hashes[0].to_string())
    })
}

#[test]
fn rollout_events_show_in_describe_applicationdeployment() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    // The device reports every application of web it runs as running (as EVE would once it
    // has started them), until `done` sees what it waits for.
    let run_until = |what: &str, done: &dyn Fn(&str) -> bool| {
        eventually(what, || {
            for app in web_apps(&server) {
                if app["status"]["state"] != "RUNNING" {
                    let uid = app["metadata"]["uid"].as_str().unwrap();
                    let name = app["metadata"]["name"].as_str().unwrap();
                    runtime
                        .block_on(device.report_app(uid, name, ZSwState::Running))
                        .unwrap();
                }
            }
            let described = server.ok(&[
                "-n",
                "enterprise1",
                "describe",
                "applicationdeployment",
                "web",
            ]);
            done(&described).then_some(described)
        })
    };
    let describe = [
        "-n",
        "enterprise1",
        "describe",
        "applicationdeployment",
        "web",
    ];

    // Made with two replicas.
    let first = web_template(&server, 2);
    let described = shows(
        &server,
        &describe,
        &[&format!("created 2 application(s) of template {first}")],
    );
    let events = &described[described.find("Events:").expect("an Events section")..];
    assert!(
        events.contains("ScalingApplications")
            && events.contains("Normal")
            && events.contains("eve.lfedge.org/controllers"),
        "{events}"
    );

    // Scaled up: one more, of the same template.
    server.ok(&[
        "-n",
        "enterprise1",
        "scale",
        "applicationdeployment",
        "web",
        "--replicas=3",
    ]);
    assert_eq!(web_template(&server, 3), first);
    shows(
        &server,
        &describe,
        &[&format!("created 1 application(s) of template {first}")],
    );
    // All three running on the device: the rollout of revision 1 is complete.
    let complete = format!("all 3 applications run template {first} (revision 1)");
    let described = run_until("web's first rollout to complete", &|d| {
        d.contains(&complete)
    });
    assert!(described.contains("RolloutComplete"), "{described}");

    // A template change rolls out: applications of the new template made and the old ones
    // deleted, then, once the new ones run, the rollout of revision 2 complete; kubectl events
    // --for lists the same.
    server.ok(&[
        "-n",
        "enterprise1",
        "patch",
        "applicationdeployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"metadata":{"annotations":{"example.com/revision":"two"}}}}}"#,
    ]);
    let second = eventually("an application of web's new template", || {
        web_apps(&server)
            .iter()
            .filter_map(|a| a["metadata"]["labels"]["eve.lfedge.org/template-hash"].as_str())
            .find(|h| *h != first)
            .map(str::to_string)
    });
    let complete = format!("all 3 applications run template {second} (revision 2)");
    let described = run_until("web's second rollout to complete", &|d| {
        d.contains(&complete)
    });
    assert_eq!(web_template(&server, 3), second);
    let events = &described[described.find("Events:").expect("an Events section")..];
    let scaled = format!("of template {second}; deleted ");
    assert!(events.contains(&scaled), "{scaled:?} in {events}");
    shows(
        &server,
        &[
            "events",
            "-n",
            "enterprise1",
            "--for",
            "applicationdeployment/web",
        ],
        &["ScalingApplications", "RolloutComplete", &complete, &scaled],
    );
}

const EVENT: &str = r#"
apiVersion: v1
kind: Event
metadata:
  name: hello
  namespace: default
involvedObject:
  kind: Namespace
  name: default
reason: Hello
message: short-lived
type: Normal
"#;

#[test]
fn events_expire_after_event_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--event-ttl", "2s"],
    );
    server.ok_stdin(&["create", "-f", "-"], EVENT);
    let listed = server.ok(&["get", "events", "--field-selector", "reason=Hello"]);
    assert!(listed.contains("namespace/default"), "{listed}");
    eventually("the event to expire", || {
        let events = get_json(
            &server,
            &["get", "events", "--field-selector", "reason=Hello"],
        );
        events["items"].as_array().unwrap().is_empty().then_some(())
    });
    // Other objects stay.
    server.ok(&["get", "namespace", "default"]);
}
