//! kubectl's everyday verbs on native kinds with every minor version of kubectl from 1.27 to
//! 1.33: imperative `create` (protobuf bodies), client-side `apply` (strategic merge patches,
//! three-way with the last-applied annotation), `edit` and `diff`.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{Server, examples, get_json, kubectl_versions};

/// Runs one kubectl binary, expecting success; returns stdout.
#[track_caller]
fn ok(server: &Server, program: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let output = run(server, program, args, stdin);
    assert!(
        output.status.success(),
        "{} {} failed:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn run(server: &Server, program: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = server
        .kubectl_program(program, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        let mut input = input;
        input.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn imperative_create_of_native_kinds_with_every_kubectl() {
    let server = Server::start();
    let keys = examples().join("keys");
    let cert = keys.join("device.pem").display().to_string();
    let key = keys.join("device.key").display().to_string();
    for (version, kubectl) in kubectl_versions() {
        let ns = format!("demo-{}", version.replace('.', "-"));
        let k = |args: &[&str]| ok(&server, &kubectl, args, None);
        k(&["create", "namespace", &ns]);
        k(&["-n", &ns, "create", "configmap", "c", "--from-literal=a=b"]);
        k(&[
            "-n",
            &ns,
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=p=q",
        ]);
        k(&[
            "-n", &ns, "create", "secret", "tls", "t", "--cert", &cert, "--key", &key,
        ]);
        k(&["-n", &ns, "create", "serviceaccount", "robot"]);
        let cm = get_json(&server, &["-n", &ns, "get", "configmap", "c"]);
        assert_eq!(cm["data"]["a"], "b", "kubectl {version}");
        let secret = get_json(&server, &["-n", &ns, "get", "secret", "s"]);
        assert_eq!(secret["data"]["p"], "cQ==", "kubectl {version}");
        let tls = get_json(&server, &["-n", &ns, "get", "secret", "t"]);
        assert_eq!(tls["type"], "kubernetes.io/tls", "kubectl {version}");
        assert!(tls["data"]["tls.crt"].as_str().unwrap().len() > 100);
        let sa = get_json(&server, &["-n", &ns, "get", "serviceaccount", "robot"]);
        assert_eq!(sa["metadata"]["namespace"], ns.as_str());
        let namespace = get_json(&server, &["get", "namespace", &ns]);
        assert_eq!(namespace["status"]["phase"], "Active");
        // Reading back through protobuf-speaking clients works too.
        let listed = k(&["-n", &ns, "get", "cm,secret,sa", "-o", "name"]);
        for name in [
            "configmap/c",
            "secret/s",
            "secret/t",
            "serviceaccount/robot",
        ] {
            assert!(listed.contains(name), "kubectl {version}: {listed}");
        }
    }
}

/// The manifests applied, as (file name, YAML) at three stages: created, a value changed, a
/// field removed.
fn manifests(stage: usize) -> String {
    let value = ["one", "two", "two"][stage];
    let extra = if stage < 2 {
        "  removed-later: here\n"
    } else {
        ""
    };
    // base64 of the same (kubectl re-sends stringData on every apply, so data is used).
    let secret = ["b25l", "dHdv", "dHdv"][stage];
    let secret_extra = if stage < 2 {
        "  removed-later: aGVyZQ==\n"
    } else {
        ""
    };
    let label = if stage < 2 {
        "    removed-later: here\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: apply\n  labels:\n    app: demo\n{label}data:\n  value: {value}\n{extra}\
---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: password\n  namespace: apply\ndata:\n  value: {secret}\n{secret_extra}\
---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\n  labels:\n    tier: {value}\n{label}provisioner: eve\nparameters:\n  type: blank\n\
---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: disk\n  namespace: apply\n  labels:\n    size: {value}\n{label}spec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: fast\n  resources:\n    requests:\n      storage: 1Gi\n\
---\napiVersion: eve.lfedge.org/v1beta1\nkind: NetworkConfig\nmetadata:\n  name: lan\n  namespace: apply\n  labels:\n    stage: {value}\n{label}spec:\n  ip: dhcp\n"
    )
}

fn resource_versions(server: &Server) -> Vec<String> {
    [
        "configmap/settings",
        "secret/password",
        "storageclass/fast",
        "pvc/disk",
        "networkconfig/lan",
    ]
    .iter()
    .map(|what| {
        get_json(server, &["-n", "apply", "get", what])["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect()
}

#[test]
fn client_side_apply_with_every_kubectl() {
    let server = Server::start();
    server.ok(&["create", "namespace", "apply"]);
    for (version, kubectl) in kubectl_versions() {
        let apply = |stage: usize| {
            ok(
                &server,
                &kubectl,
                &["apply", "-f", "-"],
                Some(&manifests(stage)),
            )
        };
        // Every object is new (the previous version's were deleted).
        let out = apply(0);
        for object in [
            "configmap/settings",
            "secret/password",
            "storageclass.storage.k8s.io/fast",
            "persistentvolumeclaim/disk",
            "networkconfig.eve.lfedge.org/lan",
        ] {
            assert!(
                out.lines().any(|l| l == format!("{object} created")),
                "kubectl {version}: {object} created in:\n{out}"
            );
        }
        assert_eq!(out.lines().count(), 5, "kubectl {version}: {out}");
        // A value changed.
        apply(1);
        let cm = get_json(&server, &["-n", "apply", "get", "cm", "settings"]);
        assert_eq!(cm["data"]["value"], "two", "kubectl {version}");
        assert_eq!(cm["data"]["removed-later"], "here", "kubectl {version}");
        let secret = get_json(&server, &["-n", "apply", "get", "secret", "password"]);
        assert_eq!(secret["data"]["value"], "dHdv", "kubectl {version}");
        let pvc = get_json(&server, &["-n", "apply", "get", "pvc", "disk"]);
        assert_eq!(
            pvc["metadata"]["labels"]["size"], "two",
            "kubectl {version}"
        );
        // A field removed from the manifest disappears.
        apply(2);
        let cm = get_json(&server, &["-n", "apply", "get", "cm", "settings"]);
        assert!(cm["data"].get("removed-later").is_none(), "{cm}");
        assert!(
            cm["metadata"]["labels"].get("removed-later").is_none(),
            "{cm}"
        );
        assert_eq!(cm["metadata"]["labels"]["app"], "demo");
        let secret = get_json(&server, &["-n", "apply", "get", "secret", "password"]);
        assert!(
            secret["data"].get("removed-later").is_none(),
            "kubectl {version}: {secret}"
        );
        assert_eq!(secret["data"]["value"], "dHdv", "kubectl {version}");
        let pvc = get_json(&server, &["-n", "apply", "get", "pvc", "disk"]);
        assert!(
            pvc["metadata"]["labels"].get("removed-later").is_none(),
            "kubectl {version}: {pvc}"
        );
        assert_eq!(
            pvc["metadata"]["labels"]["size"], "two",
            "kubectl {version}"
        );
        let class = get_json(&server, &["get", "storageclass", "fast"]);
        assert!(
            class["metadata"]["labels"].get("removed-later").is_none(),
            "kubectl {version}: {class}"
        );
        let network = get_json(&server, &["-n", "apply", "get", "networkconfig", "lan"]);
        assert!(
            network["metadata"]["labels"].get("removed-later").is_none(),
            "{network}"
        );
        // Applying again writes nothing.
        let before = resource_versions(&server);
        let out = apply(2);
        assert_eq!(
            out.matches("unchanged").count(),
            5,
            "kubectl {version}: {out}"
        );
        assert_eq!(resource_versions(&server), before, "kubectl {version}");
        // Back to the first stage for the next version.
        ok(
            &server,
            &kubectl,
            &["delete", "-f", "-", "--wait=false"],
            Some(&manifests(2)),
        );
        common::eventually("the applied objects gone", || {
            let left = server.ok(&[
                "-n",
                "apply",
                "get",
                "cm,secret,pvc,storageclass,networkconfig",
                "-o",
                "name",
            ]);
            (!left.contains("settings")
                && !left.contains("password")
                && !left.contains("disk")
                && !left.contains("/fast")
                && !left.contains("/lan"))
            .then_some(())
        });
    }
}

#[test]
fn edit_and_diff_of_a_config_map() {
    let server = Server::start();
    server.ok(&["create", "namespace", "apply"]);
    server.ok_stdin(&["apply", "-f", "-"], &manifests(0));
    // kubectl edit sends a strategic merge patch for native kinds.
    let output = server
        .kubectl_command(&["-n", "apply", "edit", "configmap", "settings"])
        .env("KUBE_EDITOR", "sed -i s/value:\\ one/value:\\ edited/")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cm = get_json(&server, &["-n", "apply", "get", "cm", "settings"]);
    assert_eq!(cm["data"]["value"], "edited");
    // kubectl diff shows the change and exits 1; nothing is written.
    let before = resource_versions(&server);
    let output = server.kubectl_stdin(&["diff", "-f", "-"], &manifests(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("-  value: edited"), "{stdout}");
    assert!(stdout.contains("+  value: two"), "{stdout}");
    assert_eq!(resource_versions(&server), before);
    // No difference: exit 0.
    server.ok_stdin(&["apply", "-f", "-"], &manifests(1));
    let output = server.kubectl_stdin(&["diff", "-f", "-"], &manifests(1));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
