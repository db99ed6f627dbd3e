//! The EVE runtime under the bad input of issue 16: a device flapping between Ready and not, a
//! burst of changes, a controller whose watch falls behind and must list again. Nothing is
//! lost, and devices see no duplicate work: a configuration's hash changes only when the
//! configuration does, and a DeviceConfig is written only for a change.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    Server, configured, eventually, eventually_within, get_json, metric_value, poll_unless_busy,
};
use device_sim::{Device, Identity};
use futures::StreamExt;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const NAMESPACE: &str = "default";

fn object<T: k8s_openapi::serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// A data store, an Image named `image` of `reference`, and an Application of it on `device`.
async fn application_on(client: &kube::Client, device: &str, image: &str, reference: &str) {
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
    if classes.get_opt("hub").await.unwrap().is_none() {
        classes
            .create(
                &PostParams::default(),
                &object(json!({
                    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": "hub"}, "provisioner": "eve",
                    "parameters": {"type": "container", "URL": "https://hub.example.com"},
                })),
            )
            .await
            .unwrap();
    }
    let images: Api<eve_model::Image> = Api::namespaced(client.clone(), NAMESPACE);
    images
        .create(
            &PostParams::default(),
            &object(json!({
                "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Image",
                "metadata": {"name": image}, "spec": {"ref": reference, "storageClass": "hub"},
            })),
        )
        .await
        .unwrap();
    let apps: Api<eve_model::Application> = Api::namespaced(client.clone(), NAMESPACE);
    apps.create(
        &PostParams::default(),
        &object(json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Application",
            "metadata": {"name": format!("{image}-on-{device}")},
            "spec": {"nodeName": device, "containers": [{"name": "main", "image": image}]},
        })),
    )
    .await
    .unwrap();
}

/// Whether `config` downloads `reference` (an Image's `ref`, quoted whole).
fn carries(config: &eve_api::config::EdgeDevConfig, reference: &str) -> bool {
    format!("{config:?}").contains(&format!("{reference:?}"))
}

/// The resourceVersion of the DeviceConfig of `device`, once it holds what the device was
/// last sent, the device having asked again (so neither lags the objects).
fn settled(
    server: &Server,
    runtime: &tokio::runtime::Runtime,
    device: &mut Device,
    name: &str,
) -> String {
    eventually(
        "the DeviceConfig to hold the device's configuration",
        || {
            if let Some(Err(e)) = poll_unless_busy(runtime, device) {
                panic!("polling {name}: {e}");
            }
            let config = get_json(server, &["-n", NAMESPACE, "get", "deviceconfig", name]);
            (config["status"]["configHash"] == device.config_hash.as_str())
                .then(|| {
                    config["metadata"]["resourceVersion"]
                        .as_str()
                        .map(String::from)
                })
                .flatten()
        },
    )
}

/// A device onboarded by open registration, reporting, its first configuration fetched.
fn onboarded(
    runtime: &tokio::runtime::Runtime,
    controller: device_sim::Controller,
    name: &str,
) -> Device {
    let mut device = Device::new(
        controller,
        Identity::generate(name).unwrap(),
        Some(Identity::generate(&format!("{name}-onboarding")).unwrap()),
        name,
    )
    .unwrap();
    runtime.block_on(async {
        device.onboard().await.unwrap();
        device.report_device("14.5.0", "10.1.0.7").await.unwrap();
    });
    configured(runtime, &mut device, "a first configuration", Some);
    device
}

/// The device polls and is told its configuration is unchanged (304).
fn unchanged(runtime: &tokio::runtime::Runtime, device: &mut Device, after: &str) {
    let hash = device.config_hash.clone();
    let answer = eventually("an answer within the request budget", || {
        poll_unless_busy(runtime, device)
    });
    let answer = answer.unwrap_or_else(|e| panic!("polling after {after}: {e}"));
    assert!(
        answer.is_none(),
        "after {after}, the configuration was sent again: {answer:?}"
    );
    assert_eq!(device.config_hash, hash, "after {after}");
}

fn ready(server: &Server, device: &str) -> Option<String> {
    get_json(server, &["-n", NAMESPACE, "get", "device", device])["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str().map(String::from))
}

/// A server registering devices into [`NAMESPACE`] with its data in `dir`, a runtime, and a
/// client of its API.
fn open_registration(dir: &std::path::Path) -> (Server, tokio::runtime::Runtime, kube::Client) {
    let server = Server::start_in(
        &dir.join("data"),
        "127.0.0.1:0",
        &["--open-registration", NAMESPACE],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(common::kube_client(&server.kubeconfig()));
    (server, runtime, client)
}

#[test]
fn a_flapping_device_changes_neither_its_configuration_nor_its_device_config() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[
            "--open-registration",
            NAMESPACE,
            "--device-grace-seconds",
            "3",
        ],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = onboarded(&runtime, server.device_controller(), "flapping-1");
    let written = settled(&server, &runtime, &mut device, "flapping-1");
    let mut transitions = std::collections::BTreeSet::new();
    for flap in 0..3 {
        // Silent past the grace period: Unknown. Calling again: Ready.
        eventually("Ready to turn Unknown", || {
            (ready(&server, "flapping-1")? == "Unknown").then_some(())
        });
        runtime.block_on(device.metrics()).unwrap();
        eventually("Ready again", || {
            (ready(&server, "flapping-1")? == "True").then_some(())
        });
        let device_object = get_json(&server, &["-n", NAMESPACE, "get", "device", "flapping-1"]);
        transitions
            .insert(device_object["status"]["conditions"][0]["lastTransitionTime"].to_string());
        unchanged(&runtime, &mut device, &format!("flap {flap}"));
    }
    assert!(
        transitions.len() >= 2,
        "each flap is a transition: {transitions:?}"
    );
    assert_eq!(
        settled(&server, &runtime, &mut device, "flapping-1"),
        written,
        "the DeviceConfig is not written again for a flapping device"
    );
}

#[test]
fn a_burst_of_changes_reaches_the_device_with_the_last_and_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (server, runtime, client) = open_registration(dir.path());
    let mut first = onboarded(&runtime, server.device_controller(), "burst-1");
    let mut second = onboarded(&runtime, server.device_controller(), "burst-2");
    runtime.block_on(async {
        application_on(&client, "burst-1", "agent", "agent:v0").await;
        application_on(&client, "burst-2", "sentinel", "sentinel:v0").await;
    });
    configured(&runtime, &mut first, "the agent", |c| {
        carries(&c, "agent:v0").then_some(())
    });
    configured(&runtime, &mut second, "the sentinel", |c| {
        carries(&c, "sentinel:v0").then_some(())
    });
    let written = settled(&server, &runtime, &mut first, "burst-1");
    let images: Api<eve_model::Image> = Api::namespaced(client.clone(), NAMESPACE);

    // 300 changes the configuration does not read (an annotation of the Image): the
    // configuration made from the Image is composed again, to the same bytes and hash.
    runtime.block_on(async {
        for i in 0..300 {
            let patch = json!({"metadata": {"annotations": {"note": format!("edit {i}")}}});
            images
                .patch("agent", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        // Image events arrive in order: once the sentinel's change shows, the burst is in.
        let patch = json!({"spec": {"ref": "sentinel:v1"}});
        images
            .patch("sentinel", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    });
    configured(&runtime, &mut second, "the sentinel's change", |c| {
        carries(&c, "sentinel:v1").then_some(())
    });
    unchanged(&runtime, &mut first, "300 changes it does not read");
    assert_eq!(
        settled(&server, &runtime, &mut first, "burst-1"),
        written,
        "no DeviceConfig write for changes the configuration does not read"
    );

    // 200 changes it does read, as fast as the API takes them: the device ends with the last,
    // and every configuration it is sent differs from the one before; the DeviceConfig is
    // written at most once per change.
    let configs: Api<eve_model::DeviceConfig> = Api::namespaced(client.clone(), NAMESPACE);
    let writes = runtime.spawn(async move {
        let mut count = 0usize;
        let params = kube::api::WatchParams::default().fields("metadata.name=burst-1");
        let mut events = configs.watch(&params, &written).await.unwrap().boxed();
        let deadline = tokio::time::sleep(Duration::from_secs(120));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(kube::api::WatchEvent::Modified(config))) => {
                        count += 1;
                        // The configuration, then its status: done when both show the last.
                        let last = config
                            .spec
                            .config
                            .as_ref()
                            .is_some_and(|c| c.to_string().contains("agent:v200"));
                        let status = config.status.unwrap_or_default();
                        if last && status.observed_generation == config.metadata.generation {
                            return (count, status.config_hash.unwrap_or_default());
                        }
                    }
                    Some(_) => {}
                    None => return (count, String::new()),
                },
                _ = &mut deadline => return (count, String::new()),
            }
        }
    });
    let changes = runtime.block_on(async {
        let images = images.clone();
        let burst = tokio::spawn(async move {
            for i in 1..=200 {
                let patch = json!({"spec": {"ref": format!("agent:v{i}")}});
                images
                    .patch("agent", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
            }
        });
        // The device polls throughout: each configuration sent differs from the one before.
        let mut seen: Vec<String> = Vec::new();
        let started = Instant::now();
        loop {
            match first.poll_config().await {
                Ok(Some(config)) => {
                    let text = format!("{config:?}");
                    assert!(
                        seen.last() != Some(&text),
                        "a configuration was sent twice under a new hash"
                    );
                    let last = carries(config, "agent:v200");
                    seen.push(text);
                    if last {
                        break;
                    }
                }
                Ok(None) => {}
                Err(device_sim::SimError::Status {
                    status: http::StatusCode::TOO_MANY_REQUESTS,
                    ..
                }) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("polling during the burst: {e}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the last change never reached the device"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        burst.await.unwrap();
        seen.len()
    });
    let (count, hash) = runtime.block_on(writes).unwrap();
    assert!(!hash.is_empty(), "the DeviceConfig shows the last change");
    assert_eq!(
        hash, first.config_hash,
        "the device has what the DeviceConfig shows"
    );
    assert!(
        (1..=400).contains(&count),
        "{count} DeviceConfig writes (a configuration and its status) for 200 changes"
    );
    assert!(
        (1..=200).contains(&changes),
        "{changes} configurations sent for 200 changes"
    );
    // And once settled, nothing more is sent.
    unchanged(&runtime, &mut first, "the burst");
}

/// A change of an object devices share (an Image) composes again only the configurations made
/// from it: one device's of six. The others are not composed again, not written, not sent.
#[test]
fn a_shared_object_s_change_composes_again_only_the_configurations_made_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, runtime, client) = open_registration(dir.path());
    let mut devices: Vec<Device> = (0..6)
        .map(|i| onboarded(&runtime, server.device_controller(), &format!("shared-{i}")))
        .collect();
    runtime.block_on(application_on(&client, "shared-0", "agent", "agent:v0"));
    configured(&runtime, &mut devices[0], "the agent", |c| {
        carries(&c, "agent:v0").then_some(())
    });
    let written: Vec<String> = (1..6)
        .map(|i| settled(&server, &runtime, &mut devices[i], &format!("shared-{i}")))
        .collect();
    let compositions = || counter(&server, "eve_device_api_config_compositions_total");
    let before = steady("the compositions to settle", compositions);
    let images: Api<eve_model::Image> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = json!({"spec": {"ref": "agent:v1"}});
    runtime
        .block_on(images.patch("agent", &PatchParams::default(), &Patch::Merge(&patch)))
        .unwrap();
    configured(&runtime, &mut devices[0], "the agent's change", |c| {
        carries(&c, "agent:v1").then_some(())
    });
    let after = steady("the compositions to settle", compositions);
    assert!(
        (1..=2).contains(&(after - before)),
        "{} compositions for a change that one device's configuration of six reads",
        after - before
    );
    for (i, device) in devices.iter_mut().enumerate().skip(1) {
        unchanged(&runtime, device, "a change of an Image it does not use");
        assert_eq!(
            settled(&server, &runtime, device, &format!("shared-{i}")),
            written[i - 1],
            "shared-{i}'s DeviceConfig is not written again"
        );
    }
}

/// `adamant controller` (the device API and the controllers) stopped while more happens than
/// its watches may queue: the server ends its watch of Devices, compaction removes where it
/// was, and once it runs again it lists again. What changed meanwhile reaches the device; a
/// device whose configuration did not change is not sent it again.
#[test]
fn a_controller_whose_watch_fell_behind_lists_again_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[
            "--eve-controllers=false",
            "--device-api=false",
            "--history-revisions",
            "5",
            "--compact-interval-seconds",
            "1",
            "--watch-backlog",
            "4",
            // The store's page cache at its least: what it keeps is a matter of speed only.
            "--store-cache-mib",
            "1",
        ],
    );
    let (controller, ready) = common::Controller::start_with(
        &server.kubeconfig(),
        &[
            "--device-api=true".as_ref(),
            "--device-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--open-registration".as_ref(),
            NAMESPACE.as_ref(),
        ],
    );
    let address: std::net::SocketAddr = common::device_address_in(&ready).parse().unwrap();
    let devices =
        device_sim::Controller::new(address, "localhost", &common::cluster_root(&server)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(common::kube_client(&server.kubeconfig()));
    let mut changed = onboarded(&runtime, devices.clone(), "behind-1");
    let mut untouched = onboarded(&runtime, devices.clone(), "behind-2");
    let mut deleted = onboarded(&runtime, devices, "behind-3");
    // The untouched device runs an application from before: a configuration composed while
    // the controller lists again must still carry it.
    runtime.block_on(application_on(&client, "behind-2", "steady", "steady:v1"));
    configured(&runtime, &mut untouched, "the steady application", |c| {
        carries(&c, "steady:v1").then_some(())
    });
    let written = settled(&server, &runtime, &mut untouched, "behind-2");

    let signal = |signal: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, &controller.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    };
    signal("-STOP");
    runtime.block_on(async {
        // Far more Device events than the stopped controller's watch and socket can hold: an
        // annotation of 200 KiB, which no configuration reads, changed 200 times on the
        // untouched device (40 MiB of events).
        let devices: Api<eve_model::Device> = Api::namespaced(client.clone(), NAMESPACE);
        for i in 0..200 {
            let note = format!("{i:04}").repeat(200 << 10 >> 2);
            let patch = json!({"metadata": {"annotations": {"note": note}}});
            devices
                .patch("behind-2", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        // Meanwhile, a Device deleted (no watch event reaches the controller) ...
        devices
            .delete("behind-3", &Default::default())
            .await
            .unwrap();
        // ... and an application for another.
        application_on(&client, "behind-1", "late", "late:v1").await;
    });
    // Compaction (every second) removes the revision the controller's watch was at.
    std::thread::sleep(Duration::from_secs(3));
    signal("-CONT");

    // Devices stay known while it lists again, and their configurations whole: polling
    // throughout, the untouched device is neither refused nor sent another configuration.
    eventually_within(
        "the controller to list Devices again",
        Duration::from_secs(60),
        || {
            match poll_unless_busy(&runtime, &mut untouched) {
                Some(Err(e)) => panic!("a device polling while the controller lists again: {e}"),
                Some(Ok(Some(config))) => panic!(
                    "a device's configuration changed while the controller listed again: {config:?}"
                ),
                _ => {}
            }
            controller
                .log()
                .lines()
                .any(|l| l.contains("listing again") && l.contains("Device"))
                .then_some(())
        },
    );
    configured(
        &runtime,
        &mut changed,
        "the application made while it was stopped",
        |c| carries(&c, "late:v1").then_some(()),
    );
    unchanged(&runtime, &mut untouched, "a re-list");
    // The Device deleted while it was stopped is in no list: its device is no longer known.
    eventually(
        "the deleted Device's device to be refused",
        || match runtime.block_on(deleted.poll_config()) {
            Err(device_sim::SimError::Status {
                status: http::StatusCode::UNAUTHORIZED,
                ..
            }) => Some(()),
            _ => None,
        },
    );
    // Nor is the untouched device's DeviceConfig written again. (`adamant serve` runs without
    // a device API here: with one, two roots rewrote each other's DeviceConfigs, found by this
    // test.)
    assert_eq!(
        settled(&server, &runtime, &mut untouched, "behind-2"),
        written,
        "the DeviceConfig of a device whose configuration did not change is not written again"
    );
}

/// The counter `series` on `/metrics` (0 before its first count).
fn counter(server: &Server, series: &str) -> u64 {
    let text = server.ok(&["get", "--raw", "/metrics"]);
    metric_value(&text, series).map_or(0, |v| v as u64)
}

/// The namespace reconciler's count of applications looked at.
fn examined(server: &Server) -> u64 {
    counter(
        server,
        "eve_controller_namespace_applications_examined_total",
    )
}

/// `read` once it no longer changes: the same over a pause longer than the controllers' pace
/// (200 ms), so that what was queued has run.
fn steady(what: &str, read: impl Fn() -> u64) -> u64 {
    let mut last = read();
    eventually(what, || {
        std::thread::sleep(Duration::from_millis(300));
        let now = read();
        let done = now == last;
        last = now;
        done.then_some(now)
    })
}

/// A standalone Application named `name` in namespace `burst`.
fn standalone(name: &str) -> String {
    format!(
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: burst\nspec:\n  containers: [{{name: agent, image: agent}}]\n---\n"
    )
}

/// The applications of namespace `burst` by device, once every one of them is bound.
fn bound_by_device(
    server: &Server,
    count: usize,
) -> Option<std::collections::BTreeMap<String, usize>> {
    let apps = get_json(server, &["-n", "burst", "get", "applications"]);
    let apps = apps["items"].as_array()?;
    let mut by_device = std::collections::BTreeMap::new();
    for app in apps {
        *by_device
            .entry(app["spec"]["nodeName"].as_str()?.to_string())
            .or_insert(0) += 1;
    }
    (apps.len() == count).then_some(by_device)
}

#[test]
fn a_burst_of_standalone_applications_is_bound_once_each_looking_only_at_what_changed() {
    const DEVICES: usize = 8;
    const BURST: usize = 160;
    let server = Server::start();
    let mut objects = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: burst\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: burst-hub\nprovisioner: eve\nparameters:\n  type: container\n  URL: https://hub.example.com\n---\napiVersion: eve.lfedge.org/v1beta1\nkind: Image\nmetadata:\n  name: agent\n  namespace: burst\nspec:\n  ref: agent:1\n  storageClass: burst-hub\n---\n".to_string();
    for i in 0..DEVICES {
        objects += &format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: Device\nmetadata:\n  name: dev-{i}\n  namespace: burst\nspec:\n  serial: burst-{i}\n---\n"
        );
    }
    server.ok_stdin(&["apply", "-f", "-"], &objects);
    let burst: String = (0..BURST)
        .map(|i| standalone(&format!("app-{i:03}")))
        .collect();
    server.ok_stdin(&["apply", "-f", "-"], &burst);
    // Spread evenly: each device chosen by its load, one application after another.
    let by_device = eventually("every application of the burst bound", || {
        bound_by_device(&server, BURST)
    });
    assert_eq!(by_device.len(), DEVICES, "{by_device:?}");
    assert!(
        by_device.values().all(|n| *n == BURST / DEVICES),
        "{by_device:?}"
    );
    // Bound once each: created (generation 1), bound (2), and said so once.
    let apps = get_json(&server, &["-n", "burst", "get", "applications"]);
    for app in apps["items"].as_array().unwrap() {
        assert_eq!(app["metadata"]["generation"], 2, "{app}");
        let scheduled: Vec<&serde_json::Value> = app["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "Scheduled")
            .collect();
        assert_eq!(scheduled.len(), 1, "{app}");
        assert_eq!(scheduled[0]["status"], "True", "{app}");
    }
    // Once the reconciler has settled, one more application is one more to look at (and its
    // binding's event one more), not the whole namespace again.
    let before = steady("the namespace reconciler to settle", || examined(&server));
    assert!(before >= BURST as u64, "each was looked at: {before}");
    server.ok_stdin(&["apply", "-f", "-"], &standalone("app-late"));
    eventually("the late application bound", || {
        bound_by_device(&server, BURST + 1)
    });
    let after = steady("the namespace reconciler to settle again", || {
        examined(&server)
    });
    assert!(
        after - before <= 4,
        "one application changed, {} looked at",
        after - before
    );
    // An application no device fits waits, and is looked at again when a Device changes.
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Application\nmetadata:\n  name: app-waiting\n  namespace: burst\nspec:\n  nodeSelector: {tier: later}\n  containers: [{name: agent, image: agent}]\n",
    );
    let node = || {
        let app = get_json(&server, &["-n", "burst", "get", "app", "app-waiting"]);
        let scheduled = app["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Scheduled")
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string());
        (
            app["spec"]["nodeName"].as_str().map(String::from),
            scheduled,
        )
    };
    eventually("the application to be Unschedulable", || {
        (node() == (None, Some("Unschedulable".into()))).then_some(())
    });
    // Nothing left that would look at it again, but the Device's change; which looks at the
    // one application waiting for a device, not at the whole namespace.
    let before = steady("the namespace reconciler to settle once more", || {
        examined(&server)
    });
    server.ok(&["-n", "burst", "label", "device", "dev-3", "tier=later"]);
    eventually("the application bound to the relabelled device", || {
        (node().0.as_deref() == Some("dev-3")).then_some(())
    });
    let after = steady("the namespace reconciler to settle after the label", || {
        examined(&server)
    });
    assert!(
        after - before <= 4,
        "a Device changed, {} applications looked at",
        after - before
    );
}

/// The daemon sets' plans so far.
fn daemon_set_plans(server: &Server) -> u64 {
    counter(server, "eve_controller_plans_total{kind=\"daemon_set\"}")
}

#[test]
fn a_device_s_status_writes_do_not_make_daemon_sets_plan_again() {
    let server = Server::start();
    let mut objects = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plans\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: plans-hub\nprovisioner: eve\nparameters:\n  type: container\n  URL: https://hub.example.com\n---\napiVersion: eve.lfedge.org/v1beta1\nkind: Image\nmetadata:\n  name: agent\n  namespace: plans\nspec:\n  ref: agent:1\n  storageClass: plans-hub\n---\napiVersion: eve.lfedge.org/v1beta1\nkind: ApplicationDaemonSet\nmetadata:\n  name: agent\n  namespace: plans\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      nodeSelector: {tier: edge}\n      containers: [{name: agent, image: agent}]\n---\n".to_string();
    for i in 0..3 {
        objects += &format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: Device\nmetadata:\n  name: dev-{i}\n  namespace: plans\n  labels: {{tier: edge}}\nspec:\n  serial: plans-{i}\n---\n"
        );
    }
    server.ok_stdin(&["apply", "-f", "-"], &objects);
    eventually("an agent on each device", || {
        let apps = get_json(&server, &["-n", "plans", "get", "applications"]);
        (apps["items"].as_array().map(Vec::len) == Some(3)).then_some(())
    });
    let before = steady("the daemon set to settle", || daemon_set_plans(&server));
    // Status writes as a device and the controllers make them (its version, its UUID), each
    // given more than the controllers' pace (200 ms) to make a plan if it were going to.
    for i in 0..4 {
        server.ok(&[
            "-n",
            "plans",
            "patch",
            "device",
            "dev-0",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{{"eve-os-version":"13.{i}.0","uuid":"uuid-{i}"}}}}"#),
        ]);
        std::thread::sleep(Duration::from_millis(300));
    }
    // An annotation of another domain is carried and ignored: no plan, no configuration
    // composed again.
    let compositions = || counter(&server, "eve_device_api_config_compositions_total");
    let composed = steady("the compositions to settle", compositions);
    let planned = daemon_set_plans(&server);
    server.ok(&[
        "-n",
        "plans",
        "annotate",
        "device",
        "dev-2",
        "gitops.example.com/tracking-id=plans:dev-2",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        steady("the compositions to settle", compositions),
        composed,
        "an annotation of another domain composed a configuration again"
    );
    assert_eq!(
        daemon_set_plans(&server),
        planned,
        "an annotation of another domain made the daemon set plan"
    );
    // A label is what placement reads: the plan it makes shows that the Device events before
    // it were handled too.
    server.ok(&["-n", "plans", "label", "device", "dev-1", "site=a"]);
    let after = eventually("a plan for the label", || {
        let now = daemon_set_plans(&server);
        (now > before).then_some(now)
    });
    assert!(
        after - before <= 2,
        "status writes made the daemon set plan: {} plans",
        after - before
    );
}
