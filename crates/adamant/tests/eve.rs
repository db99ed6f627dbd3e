//! The EVE resource model through real kubectl: the specification's examples, admission rules,
//! and scheduling of deployments and daemon sets over devices, in `adamant serve` and with
//! `adamant controller` against a separate server.

use crate::common;

use common::{
    Controller, Server, eventually, example, example_manifests, examples, get_json,
    wait_for_vendor_crd,
};
use serde_json::Value;

#[test]
fn the_specification_examples_apply_and_show_back() {
    let server = Server::start();
    let files = example_manifests();
    assert_eq!(files.len(), 11, "{files:?}");
    for file in &files {
        if file == "vendor/02-object.yaml" {
            wait_for_vendor_crd(&server);
        }
        // Strict validation, stated (kubectl's default since 1.25): an unknown or duplicate
        // field fails the apply. No example draws a warning but the one intended: the
        // specification's golden filesystem image is "stored on FTP site", and admission warns
        // that EVE devices cannot fetch over FTP.
        let (out, stderr) =
            server.ok_with_stderr(&["apply", "--validate=strict", "-f", &example(file)]);
        assert!(out.contains("created"), "{file}: {out}");
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("Warning:")).collect();
        let expected: &[&str] = match file.as_str() {
            "04-storage.yaml" => &[
                "Warning: parameters.type: EVE devices cannot fetch over FTP (their data stores are HTTP(S), SFTP, S3, Azure Blob and container registries); images in this store download only once it is also served over one of those",
            ],
            _ => &[],
        };
        assert_eq!(warnings, expected, "{file}: {stderr}");
        // Every object of the file is shown back.
        let shown = server.ok(&["get", "-f", &example(file), "-o", "name"]);
        let count = std::fs::read_to_string(examples().join(file))
            .unwrap()
            .matches("\nkind:")
            .count();
        assert_eq!(shown.lines().count(), count.max(1), "{file}: {shown}");
    }
    // The device's status, through the status subresource.
    server.ok(&[
        "-n",
        "enterprise1",
        "patch",
        "device",
        "eve-device.lab1",
        "--subresource=status",
        "--type=merge",
        "--patch-file",
        &example("status/eve-device.lab1.yaml"),
    ]);
    let table = server.ok(&["-n", "enterprise1", "get", "devices"]);
    let row = table.lines().nth(1).unwrap();
    for cell in [
        "eve-device.lab1",
        "EC232B65-602A-F2A9-287B-5D95721116E6",
        "True",
        "6.12.2",
    ] {
        assert!(row.contains(cell), "{table}");
    }
    let device = get_json(
        &server,
        &["-n", "enterprise1", "get", "device", "eve-device.lab1"],
    );
    assert_eq!(device["status"]["capacity"]["memory"], "16235544Ki");
    assert_eq!(device["status"]["nodeInfo"]["kernelVersion"], "5.10.1");
    // Quantities as numbers are stored as Kubernetes writes them.
    let app = get_json(
        &server,
        &["-n", "enterprise1", "get", "application", "app-ubuntu"],
    );
    assert_eq!(
        app["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "1"
    );
    assert_eq!(
        app["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "256M"
    );
    // Scheduled onto the only device matching its nodeSelector and networks; its claims bind.
    assert_eq!(app["spec"]["nodeName"], "eve-device.lab1");
    let claim = eventually("fsclaim bound", || {
        let c = get_json(&server, &["-n", "enterprise1", "get", "pvc", "fsclaim"]);
        (c["status"]["phase"] == "Bound").then_some(c)
    });
    assert_eq!(
        claim["metadata"]["annotations"]["eve.lfedge.org/bound-device"],
        "eve-device.lab1"
    );
    // The fleet example: two replicas and one daemon application.
    eventually("the deployment's replicas", || {
        let d = get_json(&server, &["-n", "enterprise1", "get", "appdeploy", "web"]);
        (d["status"]["replicas"] == 2).then_some(())
    });
    server.ok(&[
        "-n",
        "enterprise1",
        "get",
        "app",
        "node-agent-eve-device.lab1",
    ]);
    // `kubectl get eve` lists the kinds; every kind is in the category.
    let eve = server.ok(&["-n", "enterprise1", "get", "eve"]);
    for kind in [
        "onboardcertificate.eve.lfedge.org/onboard-cert-25",
        "device.eve.lfedge.org/eve-device.lab1",
        "image.eve.lfedge.org/golden-ubuntu-2004",
        "applicationdaemonset.eve.lfedge.org/node-agent",
    ] {
        assert!(eve.contains(kind), "{eve}");
    }
    let resources = server.ok(&["api-resources", "--categories=eve", "-o", "name"]);
    assert_eq!(resources.lines().count(), 11, "{resources}");
    // explain shows the descriptions.
    for (what, text) in [
        (
            "devices.spec.eve-os-version",
            "EVE-OS version the device should run",
        ),
        ("devices.status.lastSeen", "last called the controller"),
        ("onboardcertificates.spec.certificate", "base64"),
        ("onboardcertificateauthorities", "certificate authority"),
        ("devicecertificateauthorities", "device certificates"),
        ("networkconfigs.spec.ip", "How addresses are assigned"),
        ("devicenetworks.spec.networkConfig", "NetworkConfig"),
        ("images.spec.storageClass", "data store"),
        ("applications.spec.nodeName", "bound to"),
        ("applicationdeployments.spec.strategy", "RollingUpdate"),
        (
            "applicationdaemonsets.spec.template",
            "Application made for each device",
        ),
        ("deviceconfigs.spec.config", "EdgeDevConfig"),
    ] {
        let out = server.ok(&["explain", what]);
        assert!(out.contains(text), "kubectl explain {what}:\n{out}");
    }
}

/// Copies a directory tree (the examples, to change a copy).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the examples with `edit` made to `file` (which must change it).
fn rotted_examples(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&examples(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit of {file} changed nothing");
    std::fs::write(&path, edited).unwrap();
    dir
}

#[test]
fn examples_that_no_longer_apply_fail_loudly() {
    let server = Server::start();
    // A renamed field (the Device's `serial`, as if the schema had moved on): strict validation
    // refuses the Device, naming the field, and the apply fails.
    let renamed = rotted_examples("02-device.yaml", |t| {
        t.replacen("\n  serial:", "\n  serialNumber:", 1)
    });
    let dir = renamed.path().display().to_string();
    let stderr = server.fails(&["apply", "--validate=strict", "-f", &dir], None);
    assert!(stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("spec.serialNumber"), "{stderr}");
    let missing = server.fails(
        &["-n", "enterprise1", "get", "device", "eve-device.lab1"],
        None,
    );
    assert!(missing.contains("NotFound"), "{missing}");

    // A kind that does not exist (as if removed): the apply fails, naming it.
    let removed = rotted_examples("07-application.yaml", |t| {
        t.replacen("\nkind: Application\n", "\nkind: Applikation\n", 1)
    });
    let dir = removed.path().display().to_string();
    let stderr = server.fails(&["apply", "--validate=strict", "-f", &dir], None);
    assert!(
        stderr.contains("no matches for kind \"Applikation\""),
        "{stderr}"
    );
}

const CERT_OF: &str = "01-onboarding.yaml";

fn certificate_in(file: &str, index: usize) -> String {
    let text = std::fs::read_to_string(examples().join(file)).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("certificate: "))
        .nth(index)
        .unwrap()
        .to_string()
}

/// A claim on `class` whose `dataSourceRef` is `source` (YAML flow), in enterprise1.
fn claim_from(name: &str, class: &str, source: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n  namespace: enterprise1\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n  storageClassName: {class}\n  dataSourceRef: {source}\n"
    )
}

/// The specification's forms of a claim's Image (`kind: image`, `group: eve.lfedge.org/v1beta1`)
/// are read as the Image with a warning giving the canonical form, or refused saying what to
/// write; a source that is not an Image is refused on an eve claim, never made a blank disk.
#[test]
fn claims_in_the_specification_s_forms_are_read_warned_or_refused() {
    let server = Server::start();
    for file in ["00-namespace.yaml", "04-storage.yaml", "05-images.yaml"] {
        server.ok(&["apply", "-f", &example(file)]);
    }
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // kind: image (the specification's spelling): the Image, with a warning.
    let out = server.kubectl_stdin(
        &["apply", "-f", "-"],
        &claim_from(
            "spec-form",
            "eve-image",
            "{apiGroup: eve.lfedge.org, kind: image, name: golden-ubuntu-2004-vm}",
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = stderr(&out);
    assert!(
        warning.contains("Warning: spec.dataSourceRef: read as the Image golden-ubuntu-2004-vm")
            && warning.contains("kind: image is written kind: Image")
            && warning
                .contains("{apiGroup: eve.lfedge.org, kind: Image, name: golden-ubuntu-2004-vm}"),
        "{warning}"
    );
    // It is an Image claim: the Image's data store is required, as for the canonical form.
    let error = server.fails(
        &["apply", "-f", "-"],
        Some(&claim_from(
            "wrong-store",
            "eve-blank",
            "{apiGroup: eve.lfedge.org, kind: image, name: golden-ubuntu-2004-vm}",
        )),
    );
    assert!(
        error.contains("spec.storageClassName") && error.contains("must be \"eve-image\""),
        "{error}"
    );
    // An Image that does not exist: refused, not made blank.
    let error = server.fails(
        &["apply", "-f", "-"],
        Some(&claim_from(
            "no-image",
            "eve-image",
            "{apiGroup: eve.lfedge.org, kind: image, name: nosuch}",
        )),
    );
    assert!(
        error.contains("spec.dataSourceRef.name")
            && error.contains("Image enterprise1/nosuch does not exist"),
        "{error}"
    );
    // Sources that are not Images, on eve claims: refused, naming the field and the fix.
    for (class, source) in [
        (
            "eve-blank",
            "{apiGroup: eve.lfedge.org, kind: Snapshot, name: golden-ubuntu-2004-vm}",
        ),
        (
            "eve-image",
            "{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}",
        ),
        ("eve-image", "{kind: PersistentVolumeClaim, name: other}"),
    ] {
        let error = server.fails(
            &["apply", "-f", "-"],
            Some(&claim_from("other-source", class, source)),
        );
        assert!(
            error.contains("spec.dataSourceRef.kind")
                && error.contains("an EVE volume is made from an Image (spec.dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: <image>})"),
            "{source}: {error}"
        );
    }
    // Another provisioner's claim names its own sources.
    server.ok_stdin(
        &["apply", "-f", "-"],
        &claim_from(
            "csi-clone",
            "standard",
            "{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}",
        ),
    );
    // The specification's group: field: strict decoding refuses it, saying what to write.
    let grouped = claim_from(
        "grouped",
        "eve-image",
        "{group: eve.lfedge.org/v1beta1, kind: image, name: golden-ubuntu-2004-vm}",
    );
    let error = server.fails(&["apply", "-f", "-"], Some(&grouped));
    assert!(
        error.contains("unknown field \"spec.dataSourceRef.group\"")
            && error.contains("write apiGroup: eve.lfedge.org"),
        "{error}"
    );
    // --validate=false drops the field; the Image is still read, checked and warned about.
    let out = server.kubectl_stdin(&["apply", "--validate=false", "-f", "-"], &grouped);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = stderr(&out);
    assert!(
        warning.contains("Warning: spec.dataSourceRef: read as the Image golden-ubuntu-2004-vm")
            && warning.contains("apiGroup: eve.lfedge.org is missing"),
        "{warning}"
    );
    let error = server.fails(
        &["apply", "--validate=false", "-f", "-"],
        Some(&claim_from(
            "grouped-missing",
            "eve-image",
            "{group: eve.lfedge.org/v1beta1, kind: image, name: nosuch}",
        )),
    );
    assert!(
        error.contains("Image enterprise1/nosuch does not exist"),
        "{error}"
    );
    let error = server.fails(
        &["apply", "--validate=false", "-f", "-"],
        Some(&claim_from(
            "grouped-wrong-store",
            "eve-blank",
            "{group: eve.lfedge.org/v1beta1, kind: image, name: golden-ubuntu-2004-vm}",
        )),
    );
    assert!(error.contains("must be \"eve-image\""), "{error}");
}

#[test]
fn admission_refuses_bad_objects_naming_what_is_wrong() {
    let server = Server::start();
    for file in [
        "00-namespace.yaml",
        "01-onboarding.yaml",
        "02-device.yaml",
        "03-networks.yaml",
        "04-storage.yaml",
        "05-images.yaml",
        "06-volumes.yaml",
    ] {
        server.ok(&["apply", "-f", &example(file)]);
    }
    let leaf = certificate_in(CERT_OF, 0);
    let ca = certificate_in(CERT_OF, 1);
    let device_cert = std::fs::read_to_string(examples().join("02-device.yaml"))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate: ").map(str::to_owned))
        .unwrap();
    let header = |kind: &str, name: &str| {
        format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: enterprise1\n"
        )
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            header("OnboardCertificate", "bad") + "spec:\n  certificate: not-base64!\n",
            vec!["spec.certificate", "base64"],
        ),
        (
            header("OnboardCertificate", "bad") + "spec:\n  certificate: aGVsbG8=\n",
            vec!["spec.certificate", "BEGIN CERTIFICATE"],
        ),
        (
            header("OnboardCertificateAuthority", "bad") + &format!("spec:\n  certificate: {leaf}\n"),
            vec!["spec.certificate", "must be a CA certificate", "CN=onboard-25"],
        ),
        (
            header("DeviceCertificateAuthority", "bad") + "spec: {}\n",
            vec!["spec.certificate", "Required value"],
        ),
        (
            header("Device", "twin") + &format!("spec:\n  certificate: {device_cert}\n"),
            vec!["spec.certificate", "Duplicate value", "already Device eve-device.lab1's"],
        ),
        (
            header("Device", "twin") + &format!("spec:\n  serial: \"6654abbcc44\"\n  onboard: {leaf}\n"),
            vec!["spec.serial", "serial and onboarding certificate"],
        ),
        (
            header("Device", "selfsigned") + &format!("spec:\n  certificate: {ca}\n"),
            vec![], // a device certificate may be self-signed: accepted
        ),
        (
            header("Image", "bad") + "spec:\n  ref: x\n  storageClass: nowhere\n",
            vec!["spec.storageClass", "StorageClass nowhere does not exist"],
        ),
        (
            header("DeviceNetwork", "bad") + "spec:\n  networkConfig: missing\n  type: bridge\n",
            vec!["spec.type", "Unsupported value"],
        ),
        (
            header("DeviceNetwork", "bad") + "spec:\n  networkConfig: missing\n",
            vec!["spec.networkConfig", "NetworkConfig enterprise1/missing does not exist"],
        ),
        (
            header("NetworkConfig", "bad") + "spec:\n  ip: static\n  subnet: 10.0.0.0/99\n  proxies: [\"10.1.1.1:80\"]\n",
            vec!["spec.subnet", "CIDR", "spec.proxies[0]"],
        ),
        (
            header("Application", "bad")
                + "  annotations:\n    k8s.v1.cni.cncf.io/networks: wlan-local,nonet\nspec:\n  containers:\n  - name: a\n    image: noimage\n    resources:\n      requests:\n        cpu: lots\n",
            vec!["spec.containers[0].resources.requests[cpu]", "quantities must match"],
        ),
        (
            header("Application", "bad")
                + "  annotations:\n    k8s.v1.cni.cncf.io/networks: wlan-local,nonet\nspec:\n  containers:\n  - name: a\n    image: noimage\n    volumeMounts:\n    - name: v\n      mountPath: /x\n  volumes:\n  - name: v\n    persistentVolumeClaim:\n      claimName: noclaim\n",
            vec![
                "DeviceNetwork enterprise1/nonet does not exist",
                "Image enterprise1/noimage does not exist",
                "PersistentVolumeClaim enterprise1/noclaim does not exist",
            ],
        ),
        (
            header("Application", "bad") + "spec:\n  containers: []\n",
            vec!["spec.containers"],
        ),
        (
            header("Application", "bad") + "spec:\n  virtualization: xen\n  containers:\n  - name: a\n    image: golden-ubuntu-2004\n",
            vec!["spec.virtualization", "Unsupported value: \"xen\""],
        ),
        (
            header("ApplicationDeployment", "bad") + "spec:\n  replicas: two\n  selector: {matchLabels: {app: x}}\n  template:\n    spec:\n      containers: [{name: a, image: golden-ubuntu-2004}]\n",
            vec!["spec.replicas", "integer"],
        ),
        (
            header("ApplicationDeployment", "bad") + "spec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: other}}\n    spec:\n      containers: [{name: a, image: golden-ubuntu-2004}]\n",
            vec!["selector` does not match template `labels`"],
        ),
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: bad\n  namespace: enterprise1\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n  storageClassName: eve-blank\n  dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: golden-ubuntu-2004-vm}\n".to_string(),
            vec!["spec.storageClassName", "must be \"eve-image\""],
        ),
        (
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.eve.lfedge.org\nspec:\n  group: eve.lfedge.org\n  scope: Namespaced\n  names: {plural: gadgets, kind: Gadget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object}}\n".to_string(),
            vec!["reserved", "own domain"],
        ),
    ];
    for (manifest, wanted) in cases {
        if wanted.is_empty() {
            server.ok_stdin(&["apply", "-f", "-"], &manifest);
            continue;
        }
        let error = server.fails(&["apply", "-f", "-"], Some(&manifest));
        for w in wanted {
            assert!(
                error.contains(w),
                "want {w:?} in:\n{error}\nfor:\n{manifest}"
            );
        }
    }
    // Nothing of the refused objects was stored.
    server.fails(&["-n", "enterprise1", "get", "application", "bad"], None);
    // An unknown eve.lfedge.org/ annotation is accepted with a warning.
    let out = server.kubectl_stdin(
        &["apply", "-f", "-"],
        &(header("NetworkConfig", "annotated")
            + "  annotations:\n    eve.lfedge.org/colour: blue\nspec:\n  ip: dhcp\n"),
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("eve.lfedge.org/colour") && stderr.contains("unknown"),
        "{stderr}"
    );
    // The binding of an application does not change.
    server.ok_stdin(
        &["apply", "-f", "-"],
        &(header("Application", "pinned") + "spec:\n  nodeName: eve-device.lab1\n  containers: [{name: a, image: golden-ubuntu-2004}]\n"),
    );
    let error = server.fails(
        &[
            "-n",
            "enterprise1",
            "patch",
            "app",
            "pinned",
            "--type=merge",
            "-p",
            r#"{"spec":{"nodeName":"selfsigned"}}"#,
        ],
        None,
    );
    assert!(
        error.contains("spec.nodeName") && error.contains("cannot change"),
        "{error}"
    );
    // Warning mode, by namespace annotation: missing references are accepted with warnings and
    // a condition.
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: gitops\n  annotations:\n    eve.lfedge.org/reference-checks: warn\n",
    );
    let out = server.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Application\nmetadata:\n  name: early\n  namespace: gitops\nspec:\n  containers: [{name: a, image: later}]\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Image gitops/later does not exist") && stderr.contains("accepted"),
        "{stderr}"
    );
    eventually("a ReferencesResolved=False condition", || {
        let app = get_json(&server, &["-n", "gitops", "get", "app", "early"]);
        let conditions = app["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions
            .iter()
            .any(|c| {
                c["type"] == "ReferencesResolved"
                    && c["status"] == "False"
                    && c["message"].as_str().is_some_and(|m| m.contains("later"))
            })
            .then_some(())
    });
    // The Image appearing clears it: an Image's change has its namespace's applications looked
    // at again, the unchanged ones too.
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Image\nmetadata:\n  name: later\n  namespace: gitops\nspec:\n  ref: later:1\n  storageClass: eve-hub\n",
    );
    eventually("ReferencesResolved=True once the Image exists", || {
        let app = get_json(&server, &["-n", "gitops", "get", "app", "early"]);
        app["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "ReferencesResolved" && c["status"] == "True")
            .then_some(())
    });
}

fn device(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    format!(
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Device\nmetadata:\n  name: {name}\n  namespace: fleet\n  labels:\n{labels}spec:\n  serial: \"{name}\"\n---\n"
    )
}

const FLEET_BASE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fleet\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: eve-hub\nprovisioner: eve\nparameters:\n  type: container\n  URL: https://hub.example.com\n---\napiVersion: eve.lfedge.org/v1beta1\nkind: Image\nmetadata:\n  name: web\n  namespace: fleet\nspec:\n  ref: web:1\n  storageClass: eve-hub\n---\napiVersion: eve.lfedge.org/v1beta1\nkind: Image\nmetadata:\n  name: web2\n  namespace: fleet\nspec:\n  ref: web:2\n  storageClass: eve-hub\n";

fn apps(server: &Server) -> Vec<Value> {
    get_json(server, &["-n", "fleet", "get", "applications"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn owned_by<'a>(apps: &'a [Value], owner: &str) -> Vec<&'a Value> {
    apps.iter()
        .filter(|a| a["metadata"]["ownerReferences"][0]["name"] == owner)
        .collect()
}

fn device_of(app: &Value) -> String {
    app["spec"]["nodeName"].as_str().unwrap_or("").to_string()
}

/// Marks every application of the namespace as running, as its device would report.
fn run_all(server: &Server) {
    for app in apps(server) {
        if app["status"]["state"] != "RUNNING" && app["metadata"]["deletionTimestamp"].is_null() {
            let name = app["metadata"]["name"].as_str().unwrap();
            let _ = server.kubectl(&[
                "-n",
                "fleet",
                "patch",
                "app",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"state":"RUNNING"}}"#,
            ]);
        }
    }
}

fn schedule_over_ten_devices(server: &Server) {
    let mut fleet = FLEET_BASE.to_string() + "---\n";
    for i in 0..10 {
        let site = if i < 4 { "a" } else { "b" };
        let tier = if i % 2 == 0 { "edge" } else { "core" };
        fleet += &device(&format!("dev-{i}"), &[("site", site), ("tier", tier)]);
    }
    server.ok_stdin(&["apply", "-f", "-"], &fleet);
    let deployment = "apiVersion: eve.lfedge.org/v1beta1\nkind: ApplicationDeployment\nmetadata:\n  name: web\n  namespace: fleet\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      nodeSelector: {site: a}\n      containers: [{name: web, image: web}]\n";
    server.ok_stdin(&["apply", "-f", "-"], deployment);
    let site_a = |d: &str| ["dev-0", "dev-1", "dev-2", "dev-3"].contains(&d);
    let placed = eventually("3 replicas on site a", || {
        let all = apps(server);
        let web = owned_by(&all, "web");
        (web.len() == 3).then(|| web.iter().map(|a| device_of(a)).collect::<Vec<_>>())
    });
    assert!(placed.iter().all(|d| site_a(d)), "{placed:?}");
    let mut distinct = placed.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "spread over devices: {placed:?}");
    assert!(apps(server)[0]["metadata"]["labels"]["app"] == "web");
    // Deleting a device moves its application to another eligible one.
    let victim = placed[0].clone();
    server.ok(&["-n", "fleet", "delete", "device", &victim]);
    eventually("the application to move", || {
        let all = apps(server);
        let web = owned_by(&all, "web");
        let devices: Vec<String> = web.iter().map(|a| device_of(a)).collect();
        (web.len() == 3 && !devices.contains(&victim) && devices.iter().all(|d| site_a(d)))
            .then_some(())
    });
    // Relabelling a device moves its application; with too few devices one stays pending.
    let now: Vec<String> = owned_by(&apps(server), "web")
        .iter()
        .map(|a| device_of(a))
        .collect();
    server.ok(&[
        "-n",
        "fleet",
        "label",
        "device",
        &now[0],
        "site=b",
        "--overwrite",
    ]);
    eventually("the relabelled device's application to go", || {
        let all = apps(server);
        let devices: Vec<String> = owned_by(&all, "web").iter().map(|a| device_of(a)).collect();
        (!devices.contains(&now[0]) && devices.iter().all(|d| site_a(d))).then_some(())
    });
    // kubectl scale.
    server.ok(&[
        "-n",
        "fleet",
        "scale",
        "applicationdeployment",
        "web",
        "--replicas=2",
    ]);
    eventually("2 replicas", || {
        (owned_by(&apps(server), "web").len() == 2).then_some(())
    });
    // A template change rolls out within maxUnavailable (devices report RUNNING).
    run_all(server);
    eventually("2 available", || {
        let d = get_json(server, &["-n", "fleet", "get", "appdeploy", "web"]);
        (d["status"]["availableReplicas"] == 2).then_some(())
    });
    server.ok(&[
        "-n",
        "fleet",
        "patch",
        "appdeploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"web2"}]"#,
    ]);
    eventually("the rollout to finish within its limits", || {
        run_all(server);
        let all = apps(server);
        let web = owned_by(&all, "web");
        let live: Vec<&&Value> = web
            .iter()
            .filter(|a| a["metadata"]["deletionTimestamp"].is_null())
            .collect();
        assert!(
            live.len() <= 2,
            "maxSurge 0: at most 2 applications, saw {}",
            live.len()
        );
        let running = live
            .iter()
            .filter(|a| a["status"]["state"] == "RUNNING")
            .count();
        assert!(
            running >= 1,
            "maxUnavailable 1 of 2: at least 1 application running at all times"
        );
        let done = live.len() == 2
            && live.iter().all(|a| {
                a["spec"]["containers"][0]["image"] == "web2" && a["status"]["state"] == "RUNNING"
            });
        done.then_some(())
    });
    let d = get_json(server, &["-n", "fleet", "get", "appdeploy", "web"]);
    assert_eq!(
        d["status"]["history"].as_array().map(Vec::len),
        Some(2),
        "{d}"
    );
    // The deployment's status follows its applications' (written by its reconcile, paced).
    eventually("the deployment to show 2/2 ready", || {
        server
            .ok(&["-n", "fleet", "get", "appdeploy"])
            .contains("2/2")
            .then_some(())
    });
    // A daemon set follows label changes: one application per tier=edge device.
    let ds = "apiVersion: eve.lfedge.org/v1beta1\nkind: ApplicationDaemonSet\nmetadata:\n  name: agent\n  namespace: fleet\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      nodeSelector: {tier: edge}\n      containers: [{name: agent, image: web}]\n";
    server.ok_stdin(&["apply", "-f", "-"], ds);
    let edge = |server: &Server| {
        let all = apps(server);
        let mut devices: Vec<String> = owned_by(&all, "agent")
            .iter()
            .map(|a| device_of(a))
            .collect();
        devices.sort();
        devices
    };
    let expected: Vec<String> = (0..10)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("dev-{i}"))
        .filter(|d| *d != victim)
        .collect();
    eventually("one agent per edge device", || {
        (edge(server) == expected).then_some(())
    });
    server.ok(&[
        "-n",
        "fleet",
        "label",
        "device",
        "dev-5",
        "tier=edge",
        "--overwrite",
    ]);
    server.ok(&[
        "-n",
        "fleet",
        "label",
        "device",
        "dev-4",
        "tier=core",
        "--overwrite",
    ]);
    eventually("the daemon set to follow labels", || {
        let devices = edge(server);
        (devices.contains(&"dev-5".to_string()) && !devices.contains(&"dev-4".to_string()))
            .then_some(())
    });
    server.ok_stdin(
        &["apply", "-f", "-"],
        &device("dev-new", &[("tier", "edge")]),
    );
    eventually("a new device to get its agent", || {
        edge(server).contains(&"dev-new".to_string()).then_some(())
    });
    // Deleting the owners deletes their applications.
    server.ok(&[
        "-n",
        "fleet",
        "delete",
        "applicationdaemonset,applicationdeployment",
        "--all",
    ]);
    eventually("owned applications to be collected", || {
        apps(server).is_empty().then_some(())
    });
}

#[test]
fn scheduling_over_ten_devices_in_serve() {
    let server = Server::start();
    schedule_over_ten_devices(&server);
}

#[test]
fn adamant_controller_schedules_against_a_separate_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false"],
    );
    let _controller = Controller::start(&server.kubeconfig());
    schedule_over_ten_devices(&server);
}

/// An `AdmissionReview` of `operation` on `object` of `kind` (`group/version/Kind/resource`).
fn review(kind: &str, operation: &str, object: Value) -> Value {
    let parts: Vec<&str> = kind.split('/').collect();
    let (group, version, kind, resource) = (parts[0], parts[1], parts[2], parts[3]);
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7f1c0a52-1c4b-4d4e-9d8c-2a4b8e1f0c11",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
}

#[test]
fn admission_webhook_answers_reviews() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false"],
    );
    let authority = pki::Authority::generate("webhook-test-ca").unwrap();
    let issued = authority
        .issue_server("webhook", &["127.0.0.1".to_string()])
        .unwrap();
    let files = [
        ("ca.pem", authority.certificate_pem.clone()),
        ("tls.crt", issued.certificate_pem),
        ("tls.key", issued.key_pem),
    ];
    for (name, contents) in &files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let path = |name: &str| dir.path().join(name).into_os_string();
    let (_controller, ready) = Controller::start_with(
        &server.kubeconfig(),
        &[
            "--webhook-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--webhook-cert-file".as_ref(),
            &path("tls.crt"),
            "--webhook-key-file".as_ref(),
            &path("tls.key"),
            "--webhook-ca-file".as_ref(),
            &path("ca.pem"),
        ],
    );
    let url = ready
        .split_whitespace()
        .find_map(|field| field.strip_prefix("webhook="))
        .unwrap_or_else(|| panic!("no webhook address in {ready:?}"))
        .to_string();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let post = |path: &str, body: Vec<u8>| -> (u16, Vec<u8>) {
        runtime.block_on(async {
            let mut config = kube::Config::new(url.parse().unwrap());
            let root = rustls::pki_types::pem::PemObject::from_pem_slice(
                authority.certificate_pem.as_bytes(),
            )
            .map(|der: rustls::pki_types::CertificateDer| der.to_vec())
            .unwrap();
            config.root_cert = Some(vec![root]);
            let client = kube::Client::try_from(config).unwrap();
            let request = http::Request::post(path)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(body))
                .unwrap();
            let response = client.send(request).await.unwrap();
            let status = response.status().as_u16();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes()
                .to_vec();
            (status, body)
        })
    };
    let answer = |path: &str, review: Value| -> Value {
        let (status, body) = post(path, serde_json::to_vec(&review).unwrap());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        let response = answer["response"].clone();
        assert_eq!(response["uid"], "7f1c0a52-1c4b-4d4e-9d8c-2a4b8e1f0c11");
        response
    };

    // A malformed certificate is refused as the in-process rules refuse it: 422, field named.
    let bad_certificate = review(
        "eve.lfedge.org/v1beta1/OnboardCertificate/onboardcertificates",
        "CREATE",
        serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1",
            "kind": "OnboardCertificate",
            "metadata": {"name": "bad", "namespace": "default"},
            "spec": {"certificate": "bm90IGEgY2VydGlmaWNhdGU="},
        }),
    );
    let refused = answer("/validate", bad_certificate.clone());
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["status"]["code"], 422, "{refused}");
    assert_eq!(refused["status"]["reason"], "Invalid");
    let message = refused["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "OnboardCertificate.eve.lfedge.org \"bad\" is invalid: spec.certificate: Invalid value"
        ),
        "{message}"
    );
    assert_eq!(
        refused["status"]["details"]["causes"][0]["field"],
        "spec.certificate"
    );
    // Deletes are not the webhook's business.
    let mut deletion = bad_certificate.clone();
    deletion["request"]["operation"] = "DELETE".into();
    assert_eq!(answer("/validate", deletion)["allowed"], true);

    // A missing reference names the missing object; an unknown annotation is a warning.
    let network = |annotations: Value| {
        review(
            "eve.lfedge.org/v1beta1/DeviceNetwork/devicenetworks",
            "CREATE",
            serde_json::json!({
                "apiVersion": "eve.lfedge.org/v1beta1",
                "kind": "DeviceNetwork",
                "metadata": {"name": "net", "namespace": "default", "annotations": annotations},
                "spec": {"networkConfig": "nowhere"},
            }),
        )
    };
    let refused = answer("/validate", network(serde_json::json!({})));
    assert_eq!(refused["allowed"], false);
    let message = refused["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.networkConfig") && message.contains("nowhere"),
        "{message}"
    );
    let warned = answer(
        "/validate",
        network(serde_json::json!({
            "eve.lfedge.org/reference-checks": "warn",
            "eve.lfedge.org/no-such-option": "1",
        })),
    );
    assert_eq!(warned["allowed"], true, "{warned}");
    let warnings = warned["warnings"].to_string();
    assert!(
        warnings.contains("eve.lfedge.org/no-such-option"),
        "{warnings}"
    );
    assert!(warnings.contains("nowhere"), "{warnings}");

    // The mutating webhook answers with a JSON patch that writes quantities canonically.
    let application = review(
        "eve.lfedge.org/v1beta1/Application/applications",
        "CREATE",
        serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"containers": [{"name": "a", "image": "i", "resources": {"requests": {"cpu": 1.0, "memory": "256M"}}}]},
        }),
    );
    let mutated = answer("/mutate", application);
    assert_eq!(mutated["allowed"], true, "{mutated}");
    assert_eq!(mutated["patchType"], "JSONPatch");
    use base64::Engine;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(mutated["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        patch,
        serde_json::json!([{"op": "replace", "path": "/spec/containers/0/resources/requests/cpu", "value": "1"}])
    );

    // A dry run claims nothing (the webhook declares sideEffects: None): the certificate a
    // dry-run review saw is free for the Device really created, which claims it.
    let certificate = authority.certificate_pem.clone();
    let device = |name: &str, dry_run: bool| {
        let mut review = review(
            "eve.lfedge.org/v1beta1/Device/devices",
            "CREATE",
            serde_yaml::from_str(&device_with_certificate(name, &certificate)).unwrap(),
        );
        review["request"]["dryRun"] = dry_run.into();
        review
    };
    assert_eq!(answer("/validate", device("dry", true))["allowed"], true);
    let real = answer("/validate", device("real", false));
    assert_eq!(real["allowed"], true, "{real}");
    for dry_run in [true, false] {
        let twin = answer("/validate", device("twin", dry_run));
        assert_eq!(twin["allowed"], false, "{twin}");
        let message = twin["status"]["message"].as_str().unwrap();
        assert!(message.contains("already Device real's"), "{message}");
    }

    // What is not a review gets 400 and says what this endpoint is.
    let (status, body) = post("/validate", b"{\"kind\":".to_vec());
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("AdmissionReview"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = post("/elsewhere", Vec::new());
    assert_eq!(status, 404);
}

/// A Device whose spec.certificate is `pem` (base64 of the PEM, as the CRD has it).
fn device_with_certificate(name: &str, pem: &str) -> String {
    use base64::Engine;
    let certificate = base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: eve.lfedge.org/v1beta1\nkind: Device\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  certificate: {certificate}\n"
    )
}

/// The uniqueness of a device certificate is kept for a moment after admission (until the
/// device cache sees the new Device): a dry run is checked like a write but claims nothing,
/// so it cannot hold a certificate away from the Device then really created with it.
#[test]
fn a_dry_run_claims_no_device_certificate() {
    let server = Server::start();
    let certificate = pki::Authority::generate("dry-run-device")
        .unwrap()
        .certificate_pem;
    let dry = server.ok_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        &device_with_certificate("dry", &certificate),
    );
    assert!(dry.contains("created (server dry run)"), "{dry}");
    server.ok_stdin(
        &["create", "-f", "-"],
        &device_with_certificate("real", &certificate),
    );
    // The real create claimed it, at once (before the device cache may have seen it): a twin,
    // even as a dry run, is refused naming it.
    for dry_run in ["--dry-run=server", "--dry-run=none"] {
        let refused = server.fails(
            &["create", dry_run, "-f", "-"],
            Some(&device_with_certificate("twin", &certificate)),
        );
        assert!(
            refused.contains("spec.certificate") && refused.contains("already Device real's"),
            "{dry_run}: {refused}"
        );
    }
    server.fails(&["-n", "default", "get", "device", "dry"], None);
}

/// Posts `body` to `path` of the HTTPS server at `address` (trusting `ca_pem`), presenting
/// `client` (a certificate and key) if given, over HTTP/1.1; returns the response's text, or
/// why the exchange failed.
fn post_over_tls(
    address: &str,
    ca_pem: &str,
    client: Option<&pki::Issued>,
    path: &str,
    body: &[u8],
) -> Result<String, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some(client) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(client.certificate_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect(address).await?;
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            tls.write_all(&request).await?;
            tls.flush().await?;
            let mut response = Vec::new();
            match tls.read_to_end(&mut response).await {
                Ok(_) => {}
                // A close without close_notify after a whole response is still an answer.
                Err(_) if response.starts_with(b"HTTP/1.1 ") => {}
                Err(e) => return Err(e),
            }
            if response.is_empty() {
                return Err(std::io::Error::other("closed without an answer"));
            }
            Ok(String::from_utf8_lossy(&response).into_owned())
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
            .await
            .map_err(|_| "no answer within 30 s".to_string())?
            .map_err(|e: std::io::Error| e.to_string())
    })
}

/// `--webhook-client-ca`: the webhook answers only callers with a client certificate from the
/// authorities given, here the API server's client CA (`adamant serve` presents a certificate
/// it issued for `system:apiserver`); any other caller is refused at the TLS handshake.
#[test]
fn the_webhook_answers_only_callers_with_a_certificate_of_its_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, "127.0.0.1:0", &["--eve-controllers=false"]);
    let authority = pki::Authority::generate("webhook-test-ca").unwrap();
    let issued = authority
        .issue_server("webhook", &["127.0.0.1".to_string()])
        .unwrap();
    for (name, contents) in [
        ("ca.pem", &authority.certificate_pem),
        ("tls.crt", &issued.certificate_pem),
        ("tls.key", &issued.key_pem),
    ] {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let path = |name: &str| dir.path().join(name).into_os_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let endpoint = format!("https://127.0.0.1:{port}");
    let stranger_ca = pki::Authority::generate("stranger-ca").unwrap();
    std::fs::write(
        dir.path().join("stranger.pem"),
        &stranger_ca.certificate_pem,
    )
    .unwrap();
    let start = |client_ca: &std::ffi::OsStr| {
        Controller::start_with(
            &server.kubeconfig(),
            &[
                "--webhook-listen".as_ref(),
                listen.as_ref(),
                "--webhook-endpoint".as_ref(),
                endpoint.as_ref(),
                "--webhook-cert-file".as_ref(),
                &path("tls.crt"),
                "--webhook-key-file".as_ref(),
                &path("tls.key"),
                "--webhook-ca-file".as_ref(),
                &path("ca.pem"),
                "--webhook-client-ca".as_ref(),
                client_ca,
            ],
        )
        .0
    };
    let onboard = |name: &str, certificate: &str| {
        format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: OnboardCertificate\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  certificate: {certificate}\n"
        )
    };
    let good = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(&pki::Authority::generate("onboard").unwrap().certificate_pem)
    };

    // A webhook trusting another authority refuses the API server at the handshake; with
    // failurePolicy: Fail, no EVE object can then be written (tried as dry runs, which the
    // rules in process accept).
    let controller = start(path("stranger.pem").as_ref());
    let failed = eventually("the API server calling the webhook", || {
        let output = server.kubectl_stdin(
            &["create", "--dry-run=server", "-f", "-"],
            &onboard("good", &good),
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (!output.status.success() && stderr.contains("failed calling webhook")).then_some(stderr)
    });
    assert!(failed.contains("quantities.eve.lfedge.org"), "{failed}");
    drop(controller);

    // Trusting the API server's client CA, the webhook answers it: the object is written.
    let client_ca = data.join("pki").join("client-ca.crt");
    let _controller = start(client_ca.as_ref());
    eventually("the webhook admitting the API server", || {
        server
            .kubectl_stdin(&["create", "-f", "-"], &onboard("good", &good))
            .status
            .success()
            .then_some(())
    });

    // Directly: without a certificate, or with one of another authority, the handshake is
    // refused; one the client CA issued is answered.
    let body = serde_json::to_vec(&review(
        "eve.lfedge.org/v1beta1/OnboardCertificate/onboardcertificates",
        "CREATE",
        serde_yaml::from_str(&onboard("bad", "bm90IGEgY2VydGlmaWNhdGU=")).unwrap(),
    ))
    .unwrap();
    let post = |client: Option<&pki::Issued>| {
        post_over_tls(
            &listen,
            &authority.certificate_pem,
            client,
            "/validate",
            &body,
        )
    };
    let anonymous = post(None);
    assert!(anonymous.is_err(), "{anonymous:?}");
    let stranger = stranger_ca
        .issue_client(
            "system:apiserver",
            &[],
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let stranger = post(Some(&stranger));
    assert!(stranger.is_err(), "{stranger:?}");
    let read = |name: &str| std::fs::read_to_string(data.join("pki").join(name)).unwrap();
    let issuer = pki::Authority::from_pem(&read("client-ca.crt"), &read("client-ca.key")).unwrap();
    let trusted = issuer
        .issue_client(
            "system:apiserver",
            &[],
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let answered = post(Some(&trusted)).unwrap();
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains("\"allowed\":false"), "{answered}");
}

/// Tenant isolation: an onboarding certificate, an onboarding or device CA and a device
/// certificate belong to one namespace; another tenant copying them is refused, without being
/// told whose they are.
#[test]
fn another_tenant_cannot_claim_a_tenant_s_certificates() {
    let server = Server::start();
    for file in ["00-namespace.yaml", "01-onboarding.yaml", "02-device.yaml"] {
        server.ok(&["apply", "-f", &example(file)]);
    }
    server.ok(&["create", "namespace", "tenant-b"]);
    let device_cert = std::fs::read_to_string(examples().join("02-device.yaml"))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate: ").map(str::to_owned))
        .unwrap();
    let policy = |kind: &str, certificate: &str| {
        format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: {kind}\nmetadata:\n  name: copied\n  namespace: tenant-b\nspec:\n  certificate: {certificate}\n"
        )
    };
    let cases = [
        policy("OnboardCertificate", &certificate_in(CERT_OF, 0)),
        policy("OnboardCertificateAuthority", &certificate_in(CERT_OF, 1)),
        policy("DeviceCertificateAuthority", &certificate_in(CERT_OF, 2)),
        format!(
            "apiVersion: eve.lfedge.org/v1beta1\nkind: Device\nmetadata:\n  name: copied\n  namespace: tenant-b\nspec:\n  certificate: {device_cert}\n"
        ),
    ];
    for manifest in &cases {
        let error = server.fails(&["apply", "-f", "-"], Some(manifest));
        assert!(
            error.contains("already claimed in another namespace"),
            "{manifest}\n{error}"
        );
        assert!(
            !error.contains("enterprise1"),
            "the owner is not named: {error}"
        );
    }
    // In its own namespace a second policy with the same certificate is fine.
    server.ok_stdin(
        &["apply", "-f", "-"],
        &policy("OnboardCertificate", &certificate_in(CERT_OF, 0))
            .replace("tenant-b", "enterprise1"),
    );
}

/// The rules of `kind/name` as the admin reads them, normalised (`apiGroups`, `resources`,
/// `resourceNames`, `verbs`, each sorted).
fn rules_of(server: &Server, args: &[&str]) -> Vec<Value> {
    let object = get_json(server, args);
    object["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(normalised_rule)
        .collect()
}

fn normalised_rule(rule: &Value) -> Value {
    let sorted = |key: &str| {
        let mut values: Vec<String> = rule[key]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        values.sort();
        values
    };
    serde_json::json!({
        "apiGroups": sorted("apiGroups"),
        "resources": sorted("resources"),
        "resourceNames": sorted("resourceNames"),
        "verbs": sorted("verbs"),
    })
}

/// The resource rules the controller's own token holds in `namespace`, by a
/// SelfSubjectRulesReview it makes.
fn rules_held(controller: &Controller, home: &std::path::Path, namespace: &str) -> Vec<Value> {
    let review = format!(
        r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{{"namespace":"{namespace}"}}}}"#
    );
    let args = ["create", "-f", "-", "-o", "json"];
    let output = common::kubectl_as(&controller.kubeconfig(), home, &args, Some(&review));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["status"]["resourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(normalised_rule)
        .collect()
}

#[test]
fn the_controller_runs_with_least_privilege() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false", "--device-api=false"],
    );
    // The webhook is registered too (server-side apply of both configurations): a port chosen
    // here, as the endpoint must be named before the controller listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let endpoint = format!("https://127.0.0.1:{port}");
    let (controller, _) = Controller::start_with(
        &server.kubeconfig(),
        &[
            "--device-api=true".as_ref(),
            "--device-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--webhook-listen".as_ref(),
            listen.as_ref(),
            "--webhook-endpoint".as_ref(),
            endpoint.as_ref(),
        ],
    );
    // It registered its webhook, made its keys, and the API server calls the webhook: an
    // invalid OnboardCertificate is refused by it.
    server.ok(&["get", "validatingwebhookconfiguration", "adamant-eve"]);
    server.ok(&["get", "mutatingwebhookconfiguration", "adamant-eve"]);
    server.ok(&["-n", "kube-system", "get", "secret", "adamant-root-ca"]);
    let refused = server.fails(
        &["apply", "-f", "-"],
        Some("apiVersion: eve.lfedge.org/v1beta1\nkind: OnboardCertificate\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  certificate: bm90IGEgY2VydGlmaWNhdGU=\n"),
    );
    assert!(refused.contains("spec.certificate"), "{refused}");

    // What its token holds is the printed roles and what every authenticated user holds
    // (the reviews of its own access), nothing more.
    let home = tempfile::tempdir().unwrap();
    let cluster_role = rules_of(&server, &["get", "clusterrole", "adamant:controller"]);
    let keys_role = rules_of(
        &server,
        &[
            "-n",
            "kube-system",
            "get",
            "role",
            "adamant:controller-keys",
        ],
    );
    assert!(!cluster_role.is_empty() && !keys_role.is_empty());
    let everyone = |rule: &Value| {
        rule["apiGroups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g == "authorization.k8s.io" || g == "authentication.k8s.io")
            && rule["verbs"] == serde_json::json!(["create"])
    };
    for (namespace, expected) in [
        ("default", cluster_role.clone()),
        (
            "kube-system",
            [cluster_role.clone(), keys_role.clone()].concat(),
        ),
    ] {
        let held = rules_held(&controller, home.path(), namespace);
        for rule in &expected {
            assert!(
                held.contains(rule),
                "{namespace}: {rule} not held: {held:#?}"
            );
        }
        for rule in &held {
            assert!(
                expected.contains(rule) || everyone(rule),
                "{namespace}: {rule} held beyond the printed roles"
            );
        }
    }
    // No wildcard anywhere.
    for rule in cluster_role.iter().chain(&keys_role) {
        for key in ["apiGroups", "resources", "verbs"] {
            assert!(
                !rule[key].as_array().unwrap().iter().any(|v| v == "*"),
                "{rule}"
            );
        }
    }

    // Asked one by one, as the controller itself.
    let can = |args: &[&str]| -> bool {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        let output = common::kubectl_as(&controller.kubeconfig(), home.path(), &all, None);
        let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(answer == "yes" || answer == "no", "{args:?}: {answer}");
        answer == "yes"
    };
    for allowed in [
        &["watch", "devices.eve.lfedge.org", "-A"][..],
        &["create", "deviceconfigs.eve.lfedge.org", "-n", "default"],
        &[
            "patch",
            "applications.eve.lfedge.org",
            "--subresource=status",
            "-n",
            "default",
        ],
        &["get", "secret/adamant-root-ca", "-n", "kube-system"],
        &["create", "secrets", "-n", "kube-system"],
        &["update", "customresourcedefinitions/devices.eve.lfedge.org"],
        &["patch", "validatingwebhookconfigurations/adamant-eve"],
        &["create", "events.events.k8s.io", "-n", "default"],
    ] {
        assert!(can(allowed), "the controller may {allowed:?}");
    }
    for refused in [
        &["create", "clusterrolebindings"][..],
        &["escalate", "clusterroles"],
        &["impersonate", "users"],
        &["delete", "namespaces"],
        &["create", "namespaces"],
        &["list", "secrets", "-A"],
        &["watch", "secrets", "-n", "kube-system"],
        &["delete", "secrets", "-n", "kube-system"],
        &["get", "configmaps", "-n", "default"],
        &["list", "configmaps", "-A"],
        &["create", "pods", "-n", "default"],
        &[
            "create",
            "serviceaccounts",
            "--subresource=token",
            "-n",
            "adamant-system",
        ],
        &["delete", "devices.eve.lfedge.org", "-n", "default"],
        &["update", "devices.eve.lfedge.org", "-n", "default"],
        &["delete", "customresourcedefinitions/devices.eve.lfedge.org"],
        &["update", "customresourcedefinitions/widgets.example.com"],
        &["patch", "validatingwebhookconfigurations/another"],
        &["delete", "validatingwebhookconfigurations/adamant-eve"],
        &["create", "events", "-n", "default"],
    ] {
        assert!(!can(refused), "the controller may not {refused:?}");
    }
}

#[test]
fn a_rule_taken_from_the_controller_role_stops_it_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false"],
    );
    let token = common::controller_kubeconfig(&server.kubeconfig(), dir.path());
    // The first rule reads the EVE CRDs (`--install-crds`).
    let rules = rules_of(&server, &["get", "clusterrole", "adamant:controller"]);
    assert_eq!(
        rules[0]["resources"],
        serde_json::json!(["customresourcedefinitions"])
    );
    server.ok(&[
        "patch",
        "clusterrole",
        "adamant:controller",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/rules/0"}]"#,
    ]);
    let log = match Controller::spawn(&token, dir.path(), &[]) {
        Ok((mut child, ready)) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the controller started without the right to read CRDs: {ready}");
        }
        Err(log) => log,
    };
    assert!(log.contains("cannot read CRD"), "{log}");
    assert!(
        log.contains(&format!(
            "forbidden: User \"{}\" cannot get resource \"customresourcedefinitions\"",
            common::CONTROLLER_USER
        )),
        "{log}"
    );
}
