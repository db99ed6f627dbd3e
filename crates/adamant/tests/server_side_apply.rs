//! Server-side apply with unmodified kubectl (every minor version from 1.27 to 1.33) and
//! kube-rs: field ownership in `managedFields`, conflicts between managers (409 naming field
//! and manager) and `--force-conflicts`, fields dropped when their only manager stops applying
//! them, server-side dry run, the migration from client-side apply, no-op applies that write
//! nothing, and a GitOps-style sync of 200 manifests with `--prune`.

use crate::common;

use std::process::Output;

use common::{Server, get_json, kubectl_versions};

fn config_map(name: &str, data: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: ssa\n  labels:\n    sync: gitops\n"
    );
    text.push_str(if data.is_empty() {
        "data: {}\n"
    } else {
        "data:\n"
    });
    for (k, v) in data {
        text.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    text
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn rv(server: &Server, what: &str) -> String {
    get_json(server, &["-n", "ssa", "get", what])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_managers_conflict_force_and_share_with_every_kubectl() {
    let server = Server::start();
    server.ok(&["create", "namespace", "ssa"]);
    for (version, kubectl) in kubectl_versions() {
        let name = format!("cm-{}", version.replace('.', "-"));
        let run = |args: &[&str], stdin: &str| -> Output {
            use std::io::Write;
            let mut child = server
                .kubectl_program(&kubectl, args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        };
        let ok = |args: &[&str], stdin: &str| {
            let output = run(args, stdin);
            assert!(
                output.status.success(),
                "kubectl {version} {args:?}: {}",
                stderr(&output)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let out = ok(
            &["apply", "--server-side", "-f", "-"],
            &config_map(&name, &[("x", "1"), ("z", "2")]),
        );
        assert!(out.contains("serverside-applied"), "{version}: {out}");
        // Another manager changing x: a conflict naming the field and the manager.
        let output = run(
            &["apply", "--server-side", "--field-manager=other", "-f", "-"],
            &config_map(&name, &[("x", "changed")]),
        );
        assert!(!output.status.success(), "kubectl {version}: no conflict");
        let message = stderr(&output);
        assert!(
            message.contains("conflict")
                && message.contains("\"kubectl\"")
                && message.contains(".data.x"),
            "kubectl {version}: {message}"
        );
        // Forced: other takes x.
        ok(
            &[
                "apply",
                "--server-side",
                "--field-manager=other",
                "--force-conflicts",
                "-f",
                "-",
            ],
            &config_map(&name, &[("x", "changed")]),
        );
        let cm = get_json(
            &server,
            &["-n", "ssa", "get", "cm", &name, "--show-managed-fields"],
        );
        assert_eq!(cm["data"]["x"], "changed");
        assert_eq!(cm["data"]["z"], "2");
        let managers: Vec<&str> = cm["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["kubectl", "other"], "kubectl {version}: {cm}");
        // kubectl stops applying z: its only owner, so it goes; x stays (other owns it).
        ok(
            &["apply", "--server-side", "-f", "-"],
            &config_map(&name, &[]),
        );
        let cm = get_json(&server, &["-n", "ssa", "get", "cm", &name]);
        assert_eq!(
            cm["data"],
            serde_json::json!({"x": "changed"}),
            "kubectl {version}"
        );
        // Applying again writes nothing.
        let before = rv(&server, &format!("cm/{name}"));
        ok(
            &["apply", "--server-side", "-f", "-"],
            &config_map(&name, &[]),
        );
        assert_eq!(
            rv(&server, &format!("cm/{name}")),
            before,
            "kubectl {version}"
        );
    }
}

#[test]
fn managed_fields_dry_run_and_the_migration_from_client_side_apply() {
    let server = Server::start();
    server.ok(&["create", "namespace", "ssa"]);
    // --show-managed-fields shows the entries; plain output hides them.
    server.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map("shown", &[("a", "1")]),
    );
    let shown = server.ok(&[
        "-n",
        "ssa",
        "get",
        "cm",
        "shown",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    for words in [
        "managedFields:",
        "manager: kubectl",
        "operation: Apply",
        "f:a: {}",
    ] {
        assert!(shown.contains(words), "{shown}");
    }
    let hidden = server.ok(&["-n", "ssa", "get", "cm", "shown", "-o", "yaml"]);
    assert!(!hidden.contains("managedFields"), "{hidden}");
    // Server-side dry run creates nothing.
    let out = server.ok_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &config_map("dry", &[("a", "1")]),
    );
    assert!(out.contains("(server dry run)"), "{out}");
    let output = server.kubectl(&["-n", "ssa", "get", "cm", "dry"]);
    assert!(!output.status.success());
    // Client-side apply, then server-side apply: no field lost, and the fields the client-side
    // manifest set are now owned by the server-side manager, so dropping one removes it.
    server.ok_stdin(
        &["apply", "-f", "-"],
        &config_map("migrated", &[("a", "1"), ("b", "2")]),
    );
    server.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map("migrated", &[("a", "1"), ("b", "2")]),
    );
    let cm = get_json(&server, &["-n", "ssa", "get", "cm", "migrated"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "b": "2"}));
    server.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &config_map("migrated", &[("a", "1")]),
    );
    let cm = get_json(&server, &["-n", "ssa", "get", "cm", "migrated"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "1"}), "{cm}");
}

#[test]
fn a_gitops_sync_of_two_hundred_manifests() {
    let server = Server::start();
    server.ok(&["create", "namespace", "ssa"]);
    let dir = tempfile::tempdir().unwrap();
    let write_all = |count: usize| {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for i in 0..count {
            std::fs::write(
                dir.path().join(format!("cm-{i:03}.yaml")),
                config_map(&format!("cm-{i:03}"), &[("index", &i.to_string())]),
            )
            .unwrap();
        }
    };
    let path = dir.path().display().to_string();
    let count = || {
        server
            .ok(&["-n", "ssa", "get", "cm", "-l", "sync=gitops", "-o", "name"])
            .lines()
            .count()
    };
    write_all(200);
    let out = server.ok(&["apply", "--server-side", "--dry-run=server", "-f", &path]);
    assert_eq!(out.lines().count(), 200, "{out}");
    assert_eq!(count(), 0, "a dry run creates nothing");
    let applyset = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "--server-side",
            "--prune",
            "--applyset=configmap/gitops-set",
            "-n",
            "ssa",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-f", &path]);
        let output = server
            .kubectl_command(&args)
            .env("KUBECTL_APPLYSET", "true")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    applyset(&[]);
    assert_eq!(count(), 200);
    let versions = server.ok(&[
        "-n",
        "ssa",
        "get",
        "cm",
        "-l",
        "sync=gitops",
        "-o",
        "jsonpath={.items[*].metadata.resourceVersion}",
    ]);
    applyset(&[]);
    let again = server.ok(&[
        "-n",
        "ssa",
        "get",
        "cm",
        "-l",
        "sync=gitops",
        "-o",
        "jsonpath={.items[*].metadata.resourceVersion}",
    ]);
    assert_eq!(versions, again, "a second sync writes nothing");
    // One manifest removed: --prune deletes its object.
    write_all(199);
    // (kubectl prunes server-side applied objects through an ApplySet.)
    let out = applyset(&[]);
    assert!(out.contains("cm-199 pruned"), "{out}");
    assert_eq!(count(), 199);
}
