//! Device telemetry end to end: what a device posts is read back through `/edgenode/...` on the
//! API port with kubectl's credentials (time ranges, filters, limit and tail, by UUID or by
//! namespace and name, application logs by name), followed with no gap and no duplicate while
//! the device goes on posting, and refused to whom the Device's subresources are not granted.

use crate::common;

use common::{Server, apply_examples};
use http_body_util::BodyExt;
use serde_json::{Value, json};

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn entry(second: u64, severity: &str, source: &str, content: &str) -> Value {
    json!({
        "severity": severity, "source": source, "content": content, "msgid": second,
        "timestamp": {"seconds": 1_700_000_000 + second, "nanos": 0},
    })
}

fn contents(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn what_a_device_posts_is_read_back_with_ranges_and_filters() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    runtime.block_on(async {
        device
            .log_entries(&[
                entry(1, "info", "zedagent", "starting"),
                entry(2, "error", "zedagent", "disk failing"),
                entry(3, "warning", "nim", "no route"),
                entry(4, "debug", "nim", "probe"),
                entry(5, "info", "zedagent", "ready"),
            ])
            .await
            .unwrap();
        device.metrics().await.unwrap();
        device.flowlog().await.unwrap();
        device.report_device("14.5.0", "10.1.0.7").await.unwrap();
    });
    let raw = |query: &str| server.ok(&["get", "--raw", &format!("/edgenode/{uuid}/{query}")]);

    let all = lines(&raw("log"));
    assert_eq!(
        contents(&all),
        ["starting", "disk failing", "no route", "probe", "ready"]
    );
    assert_eq!(all[0]["time"], "2023-11-14T22:13:21Z");
    assert_eq!(all[0]["id"], "1700000001000-0");
    assert_eq!(all[1]["severity"], "error");
    let query = |q: &str| contents(&lines(&raw(q)));
    assert_eq!(query("log?severity=warning"), ["disk failing", "no route"]);
    assert_eq!(query("log?source=nim"), ["no route", "probe"]);
    assert_eq!(query("log?text=ing"), ["starting", "disk failing"]);
    assert_eq!(query("log?limit=2"), ["starting", "disk failing"]);
    assert_eq!(query("log?tail=2"), ["probe", "ready"]);
    assert_eq!(query("log?tail=1&severity=warning"), ["no route"]);
    assert_eq!(
        query("log?since=2023-11-14T22:13:22Z&until=2023-11-14T22:13:24Z"),
        ["disk failing", "no route", "probe"]
    );
    assert!(query("log?since=1h").is_empty(), "nothing in the last hour");
    // By namespace and name, the same stream.
    let by_name = server.ok(&[
        "get",
        "--raw",
        "/edgenode/namespaces/enterprise1/devices/eve-device.lab1/log?tail=1",
    ]);
    assert_eq!(contents(&lines(&by_name)), ["ready"]);
    // Info as JSON; metrics and flow logs read into JSON, or as sent with raw=true.
    let info = lines(&raw("info"));
    assert!(!info.is_empty());
    assert!(info[0]["info"].is_object(), "{}", info[0]);
    let metrics = lines(&raw("metrics"));
    assert_eq!(metrics.len(), 1);
    let device_metrics = &metrics[0]["metrics"]["dm"];
    assert_eq!(device_metrics["cpuMetric"]["totalNs"], "12500000000");
    assert_eq!(device_metrics["disk"][0]["mountPath"], "/persist");
    assert_eq!(device_metrics["network"][1]["iName"], "eth1");
    assert!(metrics[0].get("protobuf").is_none(), "{}", metrics[0]);
    let sent = lines(&raw("metrics?raw=true"));
    assert!(sent[0]["protobuf"].is_string() && sent[0].get("metrics").is_none());
    let flows = lines(&raw("flowlog"));
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["flowlog"]["flows"][0]["flow"]["destPort"], 443);
    assert_eq!(flows[0]["flowlog"]["flows"][0]["action"], "ActionAccept");
    assert_eq!(
        flows[0]["flowlog"]["dnsReqs"][0]["hostName"],
        "one.one.one.one"
    );
    // Certificates from attestation.
    let certs = lines(&raw("certs"));
    assert!(!certs.is_empty(), "the upload of attestation is kept");
    assert!(certs.iter().all(|c| c["certs"].is_array()), "{certs:?}");

    // Bad input: a Status that says what is wrong.
    for (query, words) in [
        (
            "log?since=yesterday",
            "is neither an RFC 3339 time nor a duration",
        ),
        ("log?severity=loud", "unknown severity \"loud\""),
        ("log?limit=0", "limit must be 1 to 10000"),
        ("log?colour=red", "unknown parameter \"colour\""),
        ("log?since=1m&until=2h", "since is after until"),
        ("logs", "no telemetry \"logs\""),
    ] {
        let refused = server.fails(
            &["get", "--raw", &format!("/edgenode/{uuid}/{query}")],
            None,
        );
        assert!(refused.contains(words), "{query}: {refused}");
    }
    let posted = server.fails(
        &[
            "create",
            "--raw",
            &format!("/edgenode/{uuid}/log"),
            "-f",
            "-",
        ],
        Some("{}"),
    );
    assert!(posted.contains("telemetry is read with GET"), "{posted}");

    // Server-sent events when asked; following by the header as by follow=true.
    let curl = |headers: &[&str], path: &str| {
        let mut command = std::process::Command::new("curl");
        command.args(["-s", "--max-time", "3", "--cacert"]);
        command.arg(server.data.join("pki/root-certificate.pem"));
        command.arg("--cert").arg(server.data.join("pki/admin.crt"));
        command.arg("--key").arg(server.data.join("pki/admin.key"));
        for header in headers {
            command.args(["-H", header]);
        }
        let output = command
            .arg(format!("https://{}{path}", server.address))
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, events) = curl(
        &["Accept: text/event-stream"],
        &format!("/edgenode/{uuid}/log?tail=1"),
    );
    assert_eq!(code, Some(0));
    assert!(
        events.starts_with("id: 1700000005000-0\ndata: {\"id\":\"1700000005000-0\"")
            && events.ends_with("\n\n"),
        "{events:?}"
    );
    let (code, followed) = curl(
        &["X-Adamant-Follow: true"],
        &format!("/edgenode/{uuid}/log?tail=1"),
    );
    assert_eq!(code, Some(28), "still open when curl gave up: {followed:?}");
    assert_eq!(contents(&lines(&followed)), ["ready"]);
    let unknown = server.fails(
        &[
            "get",
            "--raw",
            "/edgenode/00000000-0000-0000-0000-000000000000/log",
        ],
        None,
    );
    assert!(unknown.contains("no Device has the UUID"), "{unknown}");
}

#[test]
fn telemetry_is_read_only_with_the_devices_subresources() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    runtime
        .block_on(device.log_entries(&[entry(1, "info", "zedagent", "hello")]))
        .unwrap();
    let log = format!("/edgenode/{uuid}/log");
    let info = format!("/edgenode/{uuid}/info");
    // Logs of this one Device, nothing else.
    server.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: lab1-logs, namespace: enterprise1}
rules:
- apiGroups: [eve.lfedge.org]
  resources: [devices/log]
  resourceNames: [eve-device.lab1]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-lab1-logs, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: lab1-logs}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: reader}]
"#,
    );
    let as_reader = |path: &str| server.kubectl(&["--as", "reader", "get", "--raw", path]);
    let allowed = as_reader(&log);
    assert!(allowed.status.success(), "{allowed:?}");
    assert_eq!(
        contents(&lines(&String::from_utf8_lossy(&allowed.stdout))),
        ["hello"]
    );
    let refused = as_reader(&info);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(r#"User "reader" cannot get resource "devices/info" in API group "eve.lfedge.org" in the namespace "enterprise1""#),
        "{stderr}"
    );
    let stranger = server.kubectl(&["--as", "stranger", "get", "--raw", &log]);
    assert!(
        String::from_utf8_lossy(&stranger.stderr).contains("cannot get resource \"devices/log\""),
        "{stranger:?}"
    );
    // Anonymous: 401.
    let anonymous = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(server.data.join("pki/root-certificate.pem"))
        .arg(format!("https://{}{log}", server.address))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");
}

#[test]
fn following_goes_on_from_history_with_no_gap_and_no_duplicate() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let batch = |n: u64| -> Vec<Value> {
            (0..5)
                .map(|i| entry(n * 5 + i, "info", "sim", &format!("line {}", n * 5 + i)))
                .collect()
        };
        // Some history, then a follower, while the device goes on posting.
        for n in 0..4 {
            device.log_entries(&batch(n)).await.unwrap();
        }
        let request = http::Request::get(format!("/edgenode/{uuid}/log?follow=true"))
            .body(Vec::new())
            .unwrap();
        let response = client
            .send(request.map(kube::client::Body::from))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/jsonl; charset=utf-8"
        );
        let mut body = response.into_body();
        let posting = async {
            for n in 4..20 {
                device.log_entries(&batch(n)).await.unwrap();
            }
        };
        let reading = async {
            let mut text: Vec<u8> = Vec::new();
            let mut seen = Vec::new();
            while seen.len() < 100 {
                let frame = tokio::time::timeout(std::time::Duration::from_secs(20), body.frame())
                    .await
                    .expect("a line within 20 s")
                    .expect("the stream goes on")
                    .unwrap();
                if let Ok(data) = frame.into_data() {
                    text.extend_from_slice(&data);
                }
                while let Some(end) = text.iter().position(|b| *b == b'\n') {
                    let line: Value = serde_json::from_slice(&text[..end]).unwrap();
                    seen.push(line["msgid"].as_u64().unwrap());
                    text.drain(..=end);
                }
            }
            seen
        };
        let ((), seen) = tokio::join!(posting, reading);
        assert_eq!(
            seen,
            (0..100).collect::<Vec<u64>>(),
            "every line once, in order"
        );
    });
}

#[test]
fn kubectl_eve_reads_a_devices_and_an_applications_logs() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    // The application's UUID, as the device knows it from its configuration.
    let app_uuid = common::eventually("app-ubuntu in the configuration", || {
        runtime.block_on(device.poll_config()).unwrap();
        let config = device.config.clone()?;
        config
            .apps
            .iter()
            .find(|a| a.displayname == "app-ubuntu")
            .map(|a| a.uuidandversion.as_ref().unwrap().uuid.clone())
    });
    runtime.block_on(async {
        device
            .log_entries(&[
                entry(1, "info", "zedagent", "starting"),
                entry(2, "error", "nim", "no route"),
            ])
            .await
            .unwrap();
        device
            .app_logs(&app_uuid, "app-ubuntu", &["console line"])
            .await
            .unwrap();
    });
    // The plugin is this binary named kubectl-eve on the PATH.
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_adamant"),
        bin.path().join("kubectl-eve"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let eve = |args: &[&str]| {
        let output = server
            .kubectl_command(&[&["eve"], args].concat())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let ns = ["-n", "enterprise1"];
    assert_eq!(
        eve(&[&["logs", "eve-device.lab1"][..], &ns].concat()),
        "2023-11-14T22:13:21Z            info     zedagent          starting\n\
         2023-11-14T22:13:22Z            error    nim               no route\n"
    );
    assert_eq!(
        eve(&[
            &[
                "logs",
                "device/eve-device.lab1",
                "--severity",
                "error",
                "--tail",
                "5"
            ][..],
            &ns
        ]
        .concat())
        .lines()
        .count(),
        1
    );
    let json = eve(&[
        &["logs", "eve-device.lab1", "-o", "json", "--tail", "1"][..],
        &ns,
    ]
    .concat());
    assert_eq!(lines(&json)[0]["content"], "no route");
    let app = eve(&[&["logs", "application/app-ubuntu"][..], &ns].concat());
    assert!(app.contains("console line"), "{app}");
    assert_eq!(app.lines().count(), 1, "{app}");
    // What it refuses, and says why.
    let refused = server
        .kubectl_command(&["eve", "info", "application/app-ubuntu", "-n", "enterprise1"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("an application has logs only"),
        "{refused:?}"
    );
    let missing = server
        .kubectl_command(&["eve", "logs", "nowhere", "-n", "enterprise1"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("devices.eve.lfedge.org \"nowhere\" not found"),
        "{missing:?}"
    );
}

/// Onboards the example device on `server`, posts two log lines of now (older ones would be
/// past the retention) and returns its UUID.
fn post_two_lines(server: &Server, runtime: &tokio::runtime::Runtime) -> String {
    let mut device = server.example_device();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let recent = |offset: u64, content: &str| {
        json!({"severity": "info", "source": "zedagent", "content": content,
               "timestamp": {"seconds": now - 10 + offset, "nanos": 0}})
    };
    runtime
        .block_on(device.log_entries(&[recent(1, "before"), recent(2, "the restart")]))
        .unwrap();
    uuid
}

#[test]
fn telemetry_outlives_a_restart_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, "127.0.0.1:0", &[]);
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let uuid = post_two_lines(&server, &runtime);
    server.stop();
    let server = Server::start_in(&data, "127.0.0.1:0", &[]);
    let kept = server.ok(&["get", "--raw", &format!("/edgenode/{uuid}/log")]);
    assert_eq!(contents(&lines(&kept)), ["before", "the restart"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("telemetry.redb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the telemetry file is the owner's alone"
    );
}

#[test]
fn a_deleted_devices_telemetry_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, "127.0.0.1:0", &[]);
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let uuid = post_two_lines(&server, &runtime);
    server.ok(&[
        "-n",
        "enterprise1",
        "delete",
        "device",
        "eve-device.lab1",
        "--wait=false",
    ]);
    common::eventually("the deleted Device's telemetry to be forgotten", || {
        let metrics = server.ok(&["get", "--raw", "/metrics"]);
        metrics
            .lines()
            .any(|l| l == "eve_telemetry_devices_forgotten_total 1")
            .then_some(())
    });
    server.stop();
    let store = telemetry_embedded::EmbeddedTelemetry::open(
        data.join("telemetry.redb"),
        Default::default(),
    )
    .unwrap();
    use telemetry::TelemetryStore;
    for kind in [
        telemetry::Kind::Log,
        telemetry::Kind::Info,
        telemetry::Kind::Certs,
    ] {
        let kept = runtime
            .block_on(store.read(
                &telemetry::StreamKey::new(uuid.clone(), kind),
                &telemetry::Range {
                    limit: 10,
                    ..Default::default()
                },
            ))
            .unwrap();
        assert!(kept.is_empty(), "{kind}: {kept:?}");
    }
}

#[test]
fn telemetry_on_redis_is_read_back_the_same() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = runtime
        .block_on(telemetry_redis::server::RedisServer::start())
        .expect("redis-server (scripts/test --deps-only installs it)");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--telemetry-store", &redis.url()],
    );
    apply_examples(&server);
    let uuid = post_two_lines(&server, &runtime);
    let kept = server.ok(&["get", "--raw", &format!("/edgenode/{uuid}/log?tail=1")]);
    assert_eq!(contents(&lines(&kept)), ["the restart"]);
    assert!(
        !dir.path().join("data/telemetry.redb").exists(),
        "nothing kept on disk"
    );
}

/// Cluster mode: `adamant controller --telemetry-listen` serves the same endpoints to callers
/// with a bearer token the cluster accepts (TokenReview), each read decided by the cluster
/// (SubjectAccessReview), running as its least-privilege ServiceAccount.
#[test]
fn cluster_mode_serves_telemetry_to_tokens_the_cluster_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--eve-controllers=false", "--device-api=false"],
    );
    let (_controller, ready) = common::Controller::start_with(
        &server.kubeconfig(),
        &[
            "--device-api=true".as_ref(),
            "--device-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--open-registration".as_ref(),
            "default".as_ref(),
            "--telemetry-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
    );
    let devices: std::net::SocketAddr = common::device_address_in(&ready).parse().unwrap();
    let telemetry = common::address_in(&ready, "telemetry");
    let root = common::cluster_root(&server);
    let root_file = dir.path().join("root.pem");
    std::fs::write(&root_file, &root).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for name in ["cluster-1", "cluster-2"] {
        let ctl = device_sim::Controller::new(devices, "localhost", &root).unwrap();
        let mut device = device_sim::Device::new(
            ctl,
            device_sim::Identity::generate(name).unwrap(),
            Some(device_sim::Identity::generate(&format!("{name}-onboard")).unwrap()),
            name,
        )
        .unwrap();
        runtime.block_on(async {
            device.onboard().await.unwrap();
            device
                .log_entries(&[entry(1, "info", "zedagent", &format!("{name} is up"))])
                .await
                .unwrap();
        });
    }

    // A reader of cluster-1's logs only, and a ServiceAccount with no grant.
    server.ok(&["create", "serviceaccount", "reader"]);
    server.ok(&["create", "serviceaccount", "nobody"]);
    server.ok(&[
        "create",
        "role",
        "cluster-1-logs",
        "--verb=get",
        "--resource=devices.eve.lfedge.org/log",
        "--resource-name=cluster-1",
    ]);
    server.ok(&[
        "create",
        "rolebinding",
        "reader-logs",
        "--role=cluster-1-logs",
        "--serviceaccount=default:reader",
    ]);
    let reader = server.ok(&["create", "token", "reader"]);
    let nobody = server.ok(&["create", "token", "nobody"]);
    let get = |token: Option<&str>, path: &str| {
        let mut command = std::process::Command::new("curl");
        command
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", "--cacert"])
            .arg(&root_file);
        if let Some(token) = token {
            command.args(["-H", &format!("Authorization: Bearer {}", token.trim())]);
        }
        let output = command
            .arg(format!(
                "https://{telemetry}/edgenode/namespaces/default/devices/{path}"
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse::<u16>().unwrap(), body.to_string())
    };
    let (code, body) = get(Some(&reader), "cluster-1/log");
    assert_eq!(code, 200, "{body}");
    assert_eq!(contents(&lines(&body)), ["cluster-1 is up"]);
    let (code, body) = get(Some(&reader), "cluster-2/log");
    assert_eq!(code, 403, "another Device: {body}");
    assert!(
        body.contains("cannot get resource \\\"devices/log\\\"") && body.contains("cluster-2"),
        "{body}"
    );
    let (code, body) = get(Some(&reader), "cluster-1/info");
    assert_eq!(code, 403, "another subresource: {body}");
    let (code, body) = get(Some(&nobody), "cluster-1/log");
    assert_eq!(code, 403, "{body}");
    let (code, body) = get(None, "cluster-1/log");
    assert_eq!(code, 401, "{body}");
    let (code, body) = get(Some("forged.token.here"), "cluster-1/log");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("does not accept this token"), "{body}");
    // kubectl eve through the telemetry service, with a kubeconfig holding the reader's token.
    let kubeconfig = dir.path().join("reader.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{}\n    certificate-authority: {}\nusers:\n- name: reader\n  user:\n    token: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: reader\n    namespace: default\ncurrent-context: c\n",
            server.address,
            server.data.join("pki/root-certificate.pem").display(),
            reader.trim()
        ),
    )
    .unwrap();
    let bin = tempfile::tempdir().unwrap();
    let plugin = bin.path().join("kubectl-eve");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_adamant"), &plugin).unwrap();
    let eve = |args: &[&str]| {
        std::process::Command::new(&plugin)
            .args(args)
            .arg("--telemetry-url")
            .arg(format!("https://{telemetry}"))
            .arg("--telemetry-ca")
            .arg(&root_file)
            .env("KUBECONFIG", &kubeconfig)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let read = eve(&["logs", "cluster-1", "-o", "json"]);
    assert!(read.status.success(), "{read:?}");
    let read = String::from_utf8_lossy(&read.stdout).into_owned();
    assert_eq!(contents(&lines(&read)), ["cluster-1 is up"]);
    let refused = eve(&["info", "cluster-1"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot get resource \"devices/info\""),
        "{refused:?}"
    );

    // Granted on both through the cluster's RBAC, the reader reads cluster-2 too.
    server.ok(&[
        "create",
        "rolebinding",
        "reader-all-logs",
        "--clusterrole=eve:operator",
        "--serviceaccount=default:reader",
    ]);
    let body = common::eventually("the new binding to reach the authorizer", || {
        let (code, body) = get(Some(&reader), "cluster-2/log");
        (code == 200).then_some(body)
    });
    assert_eq!(contents(&lines(&body)), ["cluster-2 is up"]);
}
