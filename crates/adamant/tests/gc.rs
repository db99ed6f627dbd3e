//! Garbage collection through unmodified kubectl against `adamant serve`: `kubectl delete
//! --cascade=background|foreground|orphan` on a ConfigMap owning ConfigMaps, and on the
//! examples' ApplicationDeployment and ApplicationDaemonSet, whose Applications the EVE
//! controllers make with `ownerReferences` and leave to the collector.

use crate::common;

use std::time::{Duration, Instant};

use common::{Server, apply_examples, eventually, example, get_json};
use device_sim::Device;
use serde_json::{Value, json};

/// A ConfigMap owned by the ConfigMap `owner` (blocking its deletion in foreground).
fn child(name: &str, owner: &Value) -> String {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": true,
        }]},
        "data": {"k": "v"},
    })
    .to_string()
}

/// A parent ConfigMap `name` with the children `name-0` and `name-1`; returns the parent.
fn family(server: &Server, name: &str) -> Value {
    server.ok(&["create", "configmap", name, "--from-literal=role=parent"]);
    let parent = get_json(server, &["get", "configmap", name]);
    for i in 0..2 {
        server.ok_stdin(
            &["create", "-f", "-"],
            &child(&format!("{name}-{i}"), &parent),
        );
    }
    parent
}

/// The names of the ConfigMaps among `names` that exist.
fn existing(server: &Server, names: &[&str]) -> Vec<String> {
    let mut args = vec!["get", "configmap", "--ignore-not-found", "-o", "name"];
    args.extend(names);
    server
        .ok(&args)
        .lines()
        .map(|l| l.trim_start_matches("configmap/").to_string())
        .collect()
}

#[test]
fn kubectl_delete_cascades_on_configmaps() {
    let server = Server::start();

    // Orphan: the parent goes, the children stay without it.
    family(&server, "orphan");
    server.ok(&["delete", "configmap", "orphan", "--cascade=orphan"]);
    assert_eq!(existing(&server, &["orphan"]), Vec::<String>::new());
    for name in ["orphan-0", "orphan-1"] {
        let child = get_json(&server, &["get", "configmap", name]);
        assert!(
            child["metadata"].get("ownerReferences").is_none(),
            "{child}"
        );
    }

    // Foreground: kubectl waits for the parent, which waits for its blocking children.
    family(&server, "fg");
    server.ok(&["delete", "configmap", "fg", "--cascade=foreground"]);
    assert_eq!(
        existing(&server, &["fg", "fg-0", "fg-1"]),
        Vec::<String>::new()
    );

    // Background, explicit and by default: the parent goes, then its children.
    for (name, cascade) in [("bg", Some("--cascade=background")), ("default", None)] {
        family(&server, name);
        let mut args = vec!["delete", "configmap", name];
        args.extend(cascade);
        server.ok(&args);
        let children = [format!("{name}-0"), format!("{name}-1")];
        eventually("the children collected", || {
            let names: Vec<&str> = children.iter().map(String::as_str).collect();
            existing(&server, &names).is_empty().then_some(())
        });
    }
    // The orphans are still there.
    assert_eq!(
        existing(&server, &["orphan-0", "orphan-1"]),
        vec!["orphan-0".to_string(), "orphan-1".to_string()]
    );
}

/// The Applications of enterprise1 controlled by an owner of `kind`, by name.
fn apps_of(server: &Server, kind: &str) -> Vec<String> {
    let apps = get_json(server, &["-n", "enterprise1", "get", "applications"]);
    apps["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["metadata"]["ownerReferences"][0]["kind"] == kind)
        .map(|a| a["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn app_exists(server: &Server, name: &str) -> Option<Value> {
    let out = server.ok(&[
        "-n",
        "enterprise1",
        "get",
        "application",
        name,
        "--ignore-not-found",
        "-o",
        "json",
    ]);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).expect("kubectl prints JSON"))
}

/// Checks `check` every 100 ms for `period`; panics with `what` the first time it fails.
fn holds(what: &str, period: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < period {
        assert!(
            check(),
            "{what} no longer holds after {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The names of the applications in the device's configuration, polled afresh.
fn configured_apps(runtime: &tokio::runtime::Runtime, device: &mut Device) -> Vec<String> {
    runtime.block_on(device.poll_config()).unwrap();
    device
        .config
        .as_ref()
        .map(|c| c.apps.iter().map(|a| a.displayname.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn application_deployments_orphan_or_collect_their_applications() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    let web = eventually("the deployment's two applications", || {
        let apps = apps_of(&server, "ApplicationDeployment");
        (apps.len() == 2).then_some(apps)
    });
    // Both run on the device: they are in its configuration.
    eventually("the deployment's applications on the device", || {
        let configured = configured_apps(&runtime, &mut device);
        web.iter().all(|a| configured.contains(a)).then_some(())
    });
    for name in &web {
        let app = app_exists(&server, name).unwrap();
        let owner = &app["metadata"]["ownerReferences"][0];
        assert_eq!(owner["controller"], true, "{app}");
        assert_eq!(owner["blockOwnerDeletion"], true, "{app}");
    }

    // --cascade=orphan: the deployment goes, its applications stay, owned by nobody.
    server.ok(&[
        "-n",
        "enterprise1",
        "delete",
        "applicationdeployment",
        "web",
        "--cascade=orphan",
    ]);
    // kubectl waited for the deployment to go, so the collector has orphaned them by now;
    // they stay, owned by nobody and on the device, while the collector and the controllers
    // would have had ample time to delete them.
    holds(
        "the orphaned applications staying, unowned, in the device's configuration",
        Duration::from_secs(3),
        || {
            let configured = configured_apps(&runtime, &mut device);
            web.iter().all(|name| {
                configured.contains(name)
                    && app_exists(&server, name)
                        .is_some_and(|app| app["metadata"].get("ownerReferences").is_none())
            })
        },
    );

    // Made again, the deployment makes two new applications; deleted by default, they go
    // with it and the orphans stay.
    server.ok(&["apply", "-f", &example("08-fleet.yaml")]);
    let again = eventually("the new deployment's applications", || {
        let apps = apps_of(&server, "ApplicationDeployment");
        (apps.len() == 2).then_some(apps)
    });
    assert!(again.iter().all(|a| !web.contains(a)), "{again:?} {web:?}");
    server.ok(&[
        "-n",
        "enterprise1",
        "delete",
        "applicationdeployment",
        "web",
    ]);
    eventually("the deployment's applications collected", || {
        again
            .iter()
            .all(|a| app_exists(&server, a).is_none())
            .then_some(())
    });
    for name in &web {
        assert!(app_exists(&server, name).is_some(), "{name} stays");
    }

    // --cascade=foreground on the daemon set: kubectl returns once its application is gone.
    let agents = eventually("the daemon set's application", || {
        let apps = apps_of(&server, "ApplicationDaemonSet");
        (!apps.is_empty()).then_some(apps)
    });
    server.ok(&[
        "-n",
        "enterprise1",
        "delete",
        "applicationdaemonset",
        "node-agent",
        "--cascade=foreground",
    ]);
    for name in &agents {
        assert!(app_exists(&server, name).is_none(), "{name} is gone");
    }
}
