//! Unmodified `kubectl` (the version matching the server's 1.32, default strict validation)
//! against `adamant serve`: a CRD-defined kind and the native kinds, every everyday command.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Server, WIDGET_CRD, widget};
use expect_test::expect;

/// Waits (polling, bounded) until `kubectl args` prints something containing `wanted`.
#[track_caller]
fn eventually(server: &Server, args: &[&str], wanted: &str) {
    let start = Instant::now();
    loop {
        let output = server.kubectl(args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if stdout.contains(wanted) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "kubectl {} never printed {wanted:?}; last:\n{stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lines of a table without their last column (the age, which changes with time).
fn without_age(text: &str) -> Vec<String> {
    lines(text)
        .into_iter()
        .map(|l| l.rsplit_once(' ').map_or(l.clone(), |(a, _)| a.to_string()))
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn a_crd_defined_kind_with_every_everyday_command() {
    let server = Server::start();
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], WIDGET_CRD)
            .contains("widgets.example.com created")
    );
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);

    // Discovery and OpenAPI.
    let resources = server.ok(&["api-resources"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("widgets"))
        .expect("widgets in api-resources");
    assert_eq!(lines(line), ["widgets wd example.com/v1 true Widget"]);
    let explained = server.ok(&["explain", "widget.spec.size"]);
    assert!(explained.contains("How big the widget is."), "{explained}");
    assert!(
        server
            .ok(&["api-resources", "--categories=gadgets", "-o", "name"])
            .contains("widgets.example.com")
    );

    // create, apply twice.
    assert!(
        server
            .ok_stdin(&["create", "-f", "-"], &widget("w1", 3))
            .contains("widget.example.com/w1 created")
    );
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], &widget("w2", 5))
            .contains("widget.example.com/w2 created")
    );
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], &widget("w2", 5))
            .contains("widget.example.com/w2 unchanged")
    );
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], &widget("w2", 6))
            .contains("widget.example.com/w2 configured")
    );

    // get in every form.
    let table = server.ok(&["get", "widgets"]);
    let table: Vec<String> = without_age(&table);
    assert_eq!(table, ["NAME SIZE READY", "w1 3", "w2 6"]);
    let wide = server.ok(&["get", "wd", "-o", "wide"]);
    assert!(
        lines(&wide)[0].starts_with("NAME SIZE COLOR READY AGE"),
        "{wide}"
    );
    assert!(lines(&wide)[1].starts_with("w1 3 red"), "{wide}");
    let yaml = server.ok(&["get", "widget", "w1", "-o", "yaml"]);
    assert!(
        yaml.contains("color: red") && yaml.contains("generation: 1"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.ok(&["get", "widget", "w1", "-o", "json"])).unwrap();
    assert_eq!(json["spec"]["size"], 3);
    assert_eq!(
        server.ok(&["get", "wd", "-o", "jsonpath={.items[*].spec.size}"]),
        "3 6"
    );
    let columns = server.ok(&[
        "get",
        "wd",
        "-o",
        "custom-columns=N:.metadata.name,C:.spec.color",
    ]);
    assert_eq!(lines(&columns), ["N C", "w1 red", "w2 red"]);
    assert_eq!(
        server.ok(&["get", "gadgets", "-o", "name"]),
        "widget.example.com/w1\nwidget.example.com/w2\n"
    );
    assert_eq!(
        server
            .ok(&["get", "wd", "-l", "app in (demo),!missing", "-o", "name"])
            .lines()
            .count(),
        2
    );
    assert_eq!(
        server.ok(&[
            "get",
            "wd",
            "--field-selector",
            "metadata.name!=w1",
            "-o",
            "name"
        ]),
        "widget.example.com/w2\n"
    );
    assert_eq!(
        server
            .ok(&[
                "get",
                "wd",
                "--field-selector",
                "spec.color=red",
                "-o",
                "name"
            ])
            .lines()
            .count(),
        2
    );

    // label, annotate, patch.
    server.ok(&["label", "wd", "w1", "tier=gold"]);
    server.ok(&["annotate", "wd", "w1", "note=hello"]);
    server.ok(&[
        "patch",
        "wd",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"port":"http"}}"#,
    ]);
    server.ok(&[
        "patch",
        "wd",
        "w1",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/size","value":4}]"#,
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&server.ok(&["get", "wd", "w1", "-o", "json"])).unwrap();
    assert_eq!(json["metadata"]["labels"]["tier"], "gold");
    assert_eq!(json["metadata"]["annotations"]["note"], "hello");
    assert_eq!(json["spec"]["port"], "http");
    assert_eq!(json["spec"]["size"], 4);
    assert_eq!(json["metadata"]["generation"], 3, "spec changed twice");

    // replace of a stale object.
    let stale = server.ok(&["get", "wd", "w1", "-o", "yaml"]);
    server.ok(&["label", "wd", "w1", "again=1"]);
    let conflict = server.fails(&["replace", "-f", "-"], Some(&stale));
    assert!(
        conflict.contains("Error from server (Conflict)")
            && conflict.contains("the object has been modified"),
        "{conflict}"
    );

    // get -w sees a change.
    let mut watch = server
        .kubectl_command(&["get", "wd", "w1", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watched = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = watched.next().unwrap().unwrap();
    assert!(first.contains("EVENT"), "{first}");
    assert!(watched.next().unwrap().unwrap().contains("ADDED"));
    server.ok(&[
        "patch",
        "wd",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":7}}"#,
    ]);
    let changed = watched.next().unwrap().unwrap();
    assert!(lines(&changed)[0].starts_with("MODIFIED w1 7"), "{changed}");
    watch.kill().unwrap();
    watch.wait().unwrap();

    // status, conditions, wait, scale.
    server.ok(&[
        "patch",
        "wd",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    server.ok(&["wait", "--for=condition=Ready", "wd/w1", "--timeout=10s"]);
    server.ok(&[
        "wait",
        "--for=jsonpath={.spec.size}=7",
        "wd/w1",
        "--timeout=10s",
    ]);
    server.ok(&["scale", "wd", "w1", "--replicas=3"]);
    assert_eq!(
        server.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // The main resource ignores status; the status subresource ignores the rest.
    server.ok(&[
        "patch",
        "wd",
        "w1",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[]}}"#,
    ]);
    assert_eq!(
        server.ok(&[
            "get",
            "wd",
            "w1",
            "-o",
            "jsonpath={.status.conditions[0].type}"
        ]),
        "Ready"
    );

    // edit with a scripted editor.
    let edit = server
        .kubectl_command(&["edit", "wd", "w2"])
        .env("KUBE_EDITOR", "sed -i s/size:\\ 6/size:\\ 8/")
        .output()
        .unwrap();
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    assert_eq!(
        server.ok(&["get", "wd", "w2", "-o", "jsonpath={.spec.size}"]),
        "8"
    );

    // dry run stores nothing.
    assert!(
        server
            .ok_stdin(&["create", "--dry-run=server", "-f", "-"], &widget("w3", 1))
            .contains("created (server dry run)")
    );
    assert!(
        server
            .fails(&["get", "wd", "w3"], None)
            .contains("NotFound")
    );

    // Schema validation: strict unknown fields, values, types.
    let unknown = server.fails(
        &["create", "-f", "-"],
        Some(&format!("{}  colour: blue\n", widget("bad", 1))),
    );
    expect![[r#"
        Error from server (BadRequest): error when creating "STDIN": Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.colour"
    "#]]
    .assert_eq(&unknown);
    let invalid = server.fails(&["create", "-f", "-"], Some(&widget("bad", 0)));
    expect![[r#"
        The Widget "bad" is invalid: spec.size: Invalid value: "0": spec.size in body should be greater than or equal to 1
    "#]]
    .assert_eq(&invalid);
    let wrong_type = server.fails(&["create", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: big, color: blue}\n"));
    expect![[r#"
        The Widget "bad" is invalid: 
        * spec.color: Unsupported value: "blue": supported values: "red", "green"
        * spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"
    "#]]
    .assert_eq(&wrong_type);
    let bad_name = server.fails(&["create", "-f", "-"], Some(&widget("Bad_Name", 1)));
    assert!(
        bad_name
            .contains("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{bad_name}"
    );

    // delete waits for the DELETED event; wait --for=delete.
    let mut waiter = server
        .kubectl_command(&["wait", "--for=delete", "wd/w2", "--timeout=20s"])
        .spawn()
        .unwrap();
    server.ok(&["delete", "wd", "w1"]);
    server.ok(&["delete", "wd", "w2", "--wait=false"]);
    assert!(waiter.wait().unwrap().success());
    assert_eq!(server.ok(&["get", "wd", "-o", "name"]), "");

    // Deleting the CRD removes the resource.
    server.ok_stdin(&["apply", "-f", "-"], &widget("w4", 1));
    server.ok(&["delete", "crd", "widgets.example.com"]);
    assert!(
        server
            .fails(&["get", "widgets.example.com"], None)
            .contains("the server doesn't have a resource type")
    );
}

#[test]
fn native_kinds_with_every_everyday_command() {
    let server = Server::start();
    let namespaces = server.ok(&["get", "ns", "-o", "name"]);
    assert_eq!(
        namespaces,
        "namespace/default\nnamespace/kube-public\nnamespace/kube-system\n"
    );
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n";
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team\ndata:\n  mode: fast\n";
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: team\ntype: kubernetes.io/basic-auth\ndata:\n  username: YWRtaW4=\n";
    for (manifest, name) in [
        (ns, "namespace/team"),
        (cm, "configmap/settings"),
        (secret, "secret/creds"),
    ] {
        assert!(
            server
                .ok_stdin(&["apply", "-f", "-"], manifest)
                .contains(&format!("{name} created"))
        );
        assert!(
            server
                .ok_stdin(&["apply", "-f", "-"], manifest)
                .contains(&format!("{name} unchanged"))
        );
    }
    let table = server.ok(&[
        "get",
        "cm,secret",
        "-n",
        "team",
        "--field-selector",
        "metadata.name!=kube-root-ca.crt",
    ]);
    let table: Vec<String> = without_age(&table);
    assert_eq!(
        table,
        [
            "NAME DATA",
            "configmap/settings 1",
            "",
            "NAME TYPE DATA",
            "secret/creds kubernetes.io/basic-auth 1"
        ]
    );
    assert_eq!(
        lines(&server.ok(&["get", "ns", "team"]))[1]
            .rsplit_once(' ')
            .unwrap()
            .0,
        "team Active"
    );
    assert_eq!(
        server.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "fast"
    );
    assert_eq!(
        server.ok(&[
            "get",
            "secret",
            "-n",
            "team",
            "--field-selector",
            "type=kubernetes.io/basic-auth",
            "-o",
            "name"
        ]),
        "secret/creds\n"
    );
    assert_eq!(
        server
            .ok(&[
                "get",
                "ns",
                "--field-selector",
                "status.phase=Active",
                "-o",
                "name"
            ])
            .lines()
            .count(),
        4
    );
    assert!(
        server
            .ok(&["get", "ns", "team", "-o", "yaml"])
            .contains("kubernetes.io/metadata.name: team")
    );

    for kind in ["cm/settings", "secret/creds"] {
        server.ok(&["label", "-n", "team", kind, "a=b"]);
        server.ok(&["annotate", "-n", "team", kind, "c=d"]);
    }
    server.ok(&["label", "ns", "team", "a=b"]);
    server.ok(&[
        "patch",
        "-n",
        "team",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"extra":"1"}}"#,
    ]);
    server.ok(&[
        "patch",
        "-n",
        "team",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/extra"}]"#,
    ]);
    assert_eq!(
        server.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "team",
            "-o",
            "jsonpath={.data}"
        ]),
        r#"{"mode":"fast"}"#
    );
    let stale = server.ok(&["get", "cm", "settings", "-n", "team", "-o", "yaml"]);
    server.ok(&["label", "-n", "team", "cm", "settings", "x=y"]);
    assert!(
        server
            .fails(&["replace", "-f", "-"], Some(&stale))
            .contains("Error from server (Conflict)")
    );

    // Native rules.
    let bad_key = server.fails(&["create", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad, namespace: team}\ndata: {\"a b\": x}\n"));
    assert!(bad_key.contains("data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters"), "{bad_key}");
    let missing = server.fails(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: team}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n"));
    assert!(
        missing.contains("data[tls.key]: Required value"),
        "{missing}"
    );
    server.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen, namespace: team}\nimmutable: true\ndata: {a: b}\n");
    let frozen = server.fails(
        &[
            "patch",
            "-n",
            "team",
            "cm",
            "frozen",
            "--type=merge",
            "-p",
            r#"{"data":{"a":"c"}}"#,
        ],
        None,
    );
    assert!(
        frozen.contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{frozen}"
    );
    let bad_ns = server.fails(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: Not.A.Label}\n"),
    );
    assert!(bad_ns.contains("a lowercase RFC 1123 label"), "{bad_ns}");
    let nowhere = server.fails(
        &["create", "-f", "-", "-n", "nowhere"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
    );
    assert!(
        nowhere.contains("namespaces \"nowhere\" not found"),
        "{nowhere}"
    );
    assert!(
        server
            .fails(&["delete", "ns", "default"], None)
            .contains("this namespace may not be deleted")
    );

    // Dry run, delete, wait.
    assert!(
        server
            .ok_stdin(
                &["create", "--dry-run=server", "-f", "-"],
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, namespace: team}\n"
            )
            .contains("(server dry run)")
    );
    assert!(
        server
            .fails(&["get", "cm", "dry", "-n", "team"], None)
            .contains("NotFound")
    );
    server.ok(&["delete", "-n", "team", "secret", "creds"]);
    assert!(
        server
            .fails(&["get", "secret", "creds", "-n", "team"], None)
            .contains("NotFound")
    );

    // Deleting a namespace empties it, then removes it; kubectl waits for that.
    server.ok(&["delete", "ns", "team", "--timeout=30s"]);
    assert!(
        server
            .fails(&["get", "ns", "team"], None)
            .contains("NotFound")
    );
    // What is left are the other namespaces' kube-root-ca.crt.
    let left = [
        "configmap/kube-root-ca.crt",
        "configmap/kube-root-ca.crt",
        "configmap/kube-root-ca.crt",
        "",
    ]
    .join("\n");
    eventually(&server, &["get", "cm", "-A", "-o", "name"], &left);
    assert_eq!(server.ok(&["get", "cm", "-A", "-o", "name"]), left);
    assert_eq!(
        server.ok(&[
            "get",
            "cm",
            "-A",
            "-o",
            "custom-columns=NS:.metadata.namespace",
            "--no-headers"
        ]),
        "default\nkube-public\nkube-system\n"
    );
}

#[test]
fn bad_input_gets_kube_apiservers_status_errors() {
    let server = Server::start();
    let raw = |body: &str| {
        server.fails(
            &[
                "create",
                "--raw",
                "/api/v1/namespaces/default/configmaps",
                "-f",
                "-",
            ],
            Some(body),
        )
    };
    expect![[r#"
        Error from server (BadRequest): couldn't get version/kind; json parse error: key must be a string at line 1 column 2
    "#]]
    .assert_eq(&raw("{not json"));
    expect![[r#"
        Error from server (BadRequest): the API version in the data (v2) does not match the expected API version (v1)
    "#]]
    .assert_eq(&raw(r#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"x"}}"#));
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"x"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    assert!(
        raw(&big).contains("RequestEntityTooLarge")
            || raw(&big).contains("Request entity too large")
    );
    let oversized = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"x"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    assert!(raw(&oversized).contains("Too long: may not be more than 1048576 bytes"));
    expect![[r#"
        error: the server doesn't have a resource type "gizmos"
    "#]]
    .assert_eq(&server.fails(&["get", "gizmos"], None));
    let selector = server.fails(
        &[
            "get",
            "--raw",
            "/api/v1/configmaps?labelSelector=a%20in%20(b",
        ],
        None,
    );
    assert!(
        selector.contains("BadRequest") || selector.contains("unable to parse requirement"),
        "{selector}"
    );
    let field = server.fails(&["get", "cm", "--field-selector", "data.a=b"], None);
    assert!(
        field.contains("\"data.a\" is not a known field selector"),
        "{field}"
    );
    assert_eq!(
        server.ok(&[
            "get",
            "cm",
            "-A",
            "-o",
            "name",
            "--field-selector",
            "metadata.name!=kube-root-ca.crt"
        ]),
        "",
        "nothing was stored"
    );
    // Anonymous requests get only the public paths.
    let anonymous = |path: &str| {
        let output = std::process::Command::new("curl")
            .args(["-sk", &format!("https://{}{path}", server.address)])
            .output()
            .expect("curl runs");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(anonymous("/version").contains(r#""minor":"32""#));
    assert_eq!(anonymous("/livez"), "ok");
    expect![[r#"{"apiVersion":"v1","code":401,"kind":"Status","message":"Unauthorized","metadata":{},"reason":"Unauthorized","status":"Failure"}"#]]
        .assert_eq(&anonymous("/api/v1/namespaces"));
}

#[test]
fn everything_survives_kill_dash_nine() {
    let mut server = Server::start();
    server.ok_stdin(&["apply", "-f", "-"], WIDGET_CRD);
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    server.ok_stdin(&["apply", "-f", "-"], &widget("w1", 3));
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team}\ndata: {a: b}\n",
    );
    let before = server.ok(&["get", "wd,cm,ns", "-A", "-o", "name"]);
    let root = std::fs::read_to_string(server.data.join("pki/root-certificate.pem")).unwrap();
    server.kill();
    let dir = server.take_dir();
    let data = server.data.clone();
    let server = Server::start_in(&data, "127.0.0.1:0", &[]);
    assert_eq!(server.ok(&["get", "wd,cm,ns", "-A", "-o", "name"]), before);
    assert_eq!(
        std::fs::read_to_string(data.join("pki/root-certificate.pem")).unwrap(),
        root,
        "the same root after a restart"
    );
    assert_eq!(
        server.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"]),
        "3"
    );
    drop(dir);
}

#[test]
fn storage_classes_and_claims_with_their_immutable_fields() {
    let server = Server::start();
    let class = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\n  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}\nprovisioner: example.com/local\nparameters: {store: local}\n";
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], class)
            .contains("storageclass.storage.k8s.io/fast created")
    );
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], class)
            .contains("unchanged")
    );
    let table = server.ok(&["get", "sc"]);
    assert_eq!(
        without_age(&table),
        [
            "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION",
            "fast (default) example.com/local Delete Immediate false"
        ]
    );
    let changed = server.fails(
        &[
            "patch",
            "sc",
            "fast",
            "--type=merge",
            "-p",
            r#"{"provisioner":"other","parameters":{"store":"nfs"}}"#,
        ],
        None,
    );
    assert!(
        changed.contains("provisioner: Forbidden: updates to provisioner are forbidden."),
        "{changed}"
    );
    assert!(
        changed.contains("parameters: Forbidden: updates to parameters are forbidden."),
        "{changed}"
    );
    assert!(
        server
            .fails(
                &["create", "-f", "-"],
                Some("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: none}\n")
            )
            .contains("provisioner: Required value")
    );

    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: fast\n  resources: {requests: {storage: 1Gi}}\n";
    assert!(
        server
            .ok_stdin(&["apply", "-f", "-"], claim)
            .contains("persistentvolumeclaim/data created")
    );
    let wide = server.ok(&["get", "pvc", "-o", "wide"]);
    assert!(lines(&wide)[0].starts_with("NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE VOLUMEMODE"), "{wide}");
    assert!(
        lines(&wide)[1].starts_with("data Pending RWO fast <unset>"),
        "{wide}"
    );
    // Storage requests may change; the rest of the spec may not.
    server.ok(&[
        "patch",
        "pvc",
        "data",
        "--type=merge",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
    ]);
    let frozen = server.fails(
        &[
            "patch",
            "pvc",
            "data",
            "--type=merge",
            "-p",
            r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#,
        ],
        None,
    );
    assert!(
        frozen.contains("spec: Forbidden: spec is immutable after creation"),
        "{frozen}"
    );
    let invalid = server.fails(&["create", "-f", "-"], Some("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: bad}\nspec:\n  accessModes: [Sometimes]\n  resources: {requests: {storage: 0}}\n"));
    assert!(
        invalid.contains("spec.accessModes: Unsupported value: \"Sometimes\""),
        "{invalid}"
    );
    assert!(
        invalid
            .contains("spec.resources[storage]: Invalid value: \"0\": must be greater than zero"),
        "{invalid}"
    );

    // Native kinds in the remaining output forms, and watched to their deletion.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\ndata: {token: c2VjcmV0}\n";
    server.ok_stdin(&["apply", "-f", "-"], secret);
    assert_eq!(
        lines(&server.ok(&[
            "get",
            "secret",
            "token",
            "-o",
            "custom-columns=N:.metadata.name,T:.type"
        ])),
        ["N T", "token Opaque"]
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.ok(&["get", "secret", "token", "-o", "json"])).unwrap();
    assert_eq!(json["data"]["token"], "c2VjcmV0");
    let mut waiter = server
        .kubectl_command(&["wait", "--for=delete", "secret/token", "--timeout=20s"])
        .spawn()
        .unwrap();
    server.ok(&["delete", "secret", "token", "--wait=false"]);
    assert!(waiter.wait().unwrap().success());
}
