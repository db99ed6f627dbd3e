//! Prometheus metrics end to end: `/metrics` (the server's requests, watches, process; the
//! device API's requests, telemetry and devices) and `/metrics/fleet` (per Device and
//! Application) read with kubectl, checked by `promtool check metrics` (Debian's `prometheus`
//! package, which `scripts/test` installs), with the series a few requests and the example
//! device make; authorized as kube-apiserver's `/metrics` (non-resource `get`).

use crate::common;

use common::{Server, apply_examples, eventually, metric_value as value};

const DEVICE: &str = "namespace=\"enterprise1\",name=\"eve-device.lab1\"";

/// The sum of the samples whose line starts with `prefix` (name and some leading labels).
fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `promtool check metrics` on `text`: panics with its findings unless it passes.
#[track_caller]
fn promtool_passes(what: &str, text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package: scripts/test --deps-only)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics on {what}: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn metrics_and_the_fleet_exporter_pass_promtool_with_the_series_requests_make() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(async {
        device.onboard().await.unwrap();
        device.report_device("14.5.0", "10.1.0.7").await.unwrap();
        device.metrics().await.unwrap();
        device.logs(&["one", "two", "three"]).await.unwrap();
    });
    let metrics = || server.ok(&["get", "--raw", "/metrics"]);
    let list = "apiserver_request_total{verb=\"list\",group=\"\",resource=\"configmaps\",subresource=\"\",code=\"200\"}";
    let before = value(&metrics(), list).unwrap_or(0.0);
    server.ok(&["get", "configmaps", "-n", "default"]);
    server.ok(&["get", "configmaps", "-n", "enterprise1"]);
    let text = metrics();
    promtool_passes("/metrics", &text);
    let after = value(&text, list).expect("list configmaps counted");
    assert!(after >= before + 2.0, "{before} then {after}");
    // Timed too: as many observations as requests, each under the last bucket.
    let timed = "apiserver_request_duration_seconds_count{verb=\"list\",group=\"\",resource=\"configmaps\",subresource=\"\"}";
    assert!(value(&text, timed).unwrap() >= 2.0, "{text}");
    // A resource the catalog does not have is `other`, whatever the path says.
    server.fails(
        &["get", "--raw", "/apis/nonsense.example.com/v1/things"],
        None,
    );
    let other = "apiserver_request_total{verb=\"list\",group=\"other\",resource=\"other\",subresource=\"\",code=\"404\"}";
    assert_eq!(value(&metrics(), other), Some(1.0));

    // A watch is counted while it is open.
    let watch = "apiserver_longrunning_requests{verb=\"watch\",group=\"\",resource=\"configmaps\"}";
    let idle = value(&metrics(), watch).unwrap_or(0.0);
    let mut watching = server
        .kubectl_command(&["get", "configmaps", "-n", "default", "--watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the watch to be counted", || {
        (value(&metrics(), watch).unwrap_or(0.0) >= idle + 1.0).then_some(())
    });
    watching.kill().unwrap();
    watching.wait().unwrap();
    eventually("the watch to end", || {
        (value(&metrics(), watch).unwrap_or(0.0) <= idle).then_some(())
    });

    // The device API's half: requests by endpoint, telemetry, devices.
    let text = eventually("the device to be ready", || {
        let text = metrics();
        (value(&text, "eve_devices{state=\"ready\"}") >= Some(1.0)).then_some(text)
    });
    promtool_passes("/metrics", &text);
    assert!(
        value(&text, "eve_devices{state=\"known\"}") >= Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "eve_devices{state=\"onboarded\"}") >= Some(1.0),
        "{text}"
    );
    for endpoint in ["certs", "uuid", "attest", "info", "metrics", "newlogs"] {
        let served = sum(
            &text,
            &format!("eve_device_api_requests_total{{endpoint=\"{endpoint}\",code=\"2"),
        );
        assert!(served >= 1.0, "{endpoint}: {text}");
    }
    assert!(
        value(&text, "eve_telemetry_records_total{kind=\"log\"}") >= Some(3.0),
        "{text}"
    );
    assert!(
        value(&text, "eve_telemetry_records_total{kind=\"info\"}") >= Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "eve_telemetry_bytes_total{kind=\"metrics\"}") > Some(0.0),
        "{text}"
    );
    assert!(
        value(&text, "process_resident_memory_bytes") > Some(0.0),
        "{text}"
    );
    // The stores: their files' sizes, and how long commits take.
    for store in ["objects", "telemetry"] {
        let size = value(
            &text,
            &format!("adamant_store_size_bytes{{store=\"{store}\"}}"),
        );
        assert!(size > Some(0.0), "{store}: {text}");
    }
    for operation in ["create", "update", "get", "list"] {
        let count = format!(
            "apiserver_storage_request_duration_seconds_count{{operation=\"{operation}\"}}"
        );
        assert!(value(&text, &count) >= Some(1.0), "{operation}: {text}");
    }
    for kind in ["log", "info", "metrics"] {
        let count = format!("eve_telemetry_append_duration_seconds_count{{kind=\"{kind}\"}}");
        assert!(value(&text, &count) >= Some(1.0), "{kind}: {text}");
    }

    // The fleet exporter.
    let fleet = eventually("the fleet exporter to see the device ready", || {
        let fleet = server.ok(&["get", "--raw", "/metrics/fleet"]);
        (value(&fleet, &format!("eve_device_ready{{{DEVICE}}}")) == Some(1.0)).then_some(fleet)
    });
    promtool_passes("/metrics/fleet", &fleet);
    let device_value = |name: &str| value(&fleet, &format!("{name}{{{DEVICE}}}"));
    assert_eq!(device_value("eve_device_onboarded"), Some(1.0), "{fleet}");
    assert_eq!(device_value("eve_device_cpu_cores"), Some(4.0), "{fleet}");
    assert_eq!(
        device_value("eve_device_memory_bytes"),
        Some(8192.0 * 1024.0 * 1024.0),
        "{fleet}"
    );
    assert_eq!(
        device_value("eve_device_storage_bytes"),
        Some(65536.0 * 1024.0 * 1024.0),
        "{fleet}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let seen = device_value("eve_device_last_seen_timestamp_seconds").expect("last seen");
    assert!(
        (now - 600.0..=now + 60.0).contains(&seen),
        "{seen} vs {now}"
    );
    assert_eq!(
        value(
            &fleet,
            &format!("eve_device_eve_os_info{{{DEVICE},version=\"14.5.0\"}}")
        ),
        Some(1.0),
        "{fleet}"
    );
    assert!(
        fleet.contains(
            "eve_application_state{namespace=\"enterprise1\",name=\"app-ubuntu\",device=\"eve-device.lab1\",state=\""
        ),
        "{fleet}"
    );
    // Usage from the device's metrics post (device-sim's figures).
    const MB: f64 = 1024.0 * 1024.0;
    for (name, expected) in [
        ("eve_device_cpu_seconds_total", 12.5),
        ("eve_device_memory_used_bytes", 512.0 * MB),
        ("eve_device_persist_size_bytes", 1000.0 * MB),
        ("eve_device_persist_used_bytes", 250.0 * MB),
        ("eve_device_network_receive_bytes_total", 101.0),
        ("eve_device_network_transmit_bytes_total", 12.0),
    ] {
        assert_eq!(device_value(name), Some(expected), "{name}: {fleet}");
    }
    let taken = device_value("eve_device_metrics_timestamp_seconds").expect("metrics time");
    assert!(
        (now - 600.0..=now + 60.0).contains(&taken),
        "{taken} vs {now}"
    );
}

#[test]
fn metrics_are_read_only_with_the_non_resource_permission() {
    let server = Server::start();
    // Anonymous: 401.
    for path in ["/metrics", "/metrics/fleet"] {
        let anonymous = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(server.data.join("pki/root-certificate.pem"))
            .arg(format!("https://{}{path}", server.address))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401", "{path}");
    }
    // A user without the permission: 403.
    for path in ["/metrics", "/metrics/fleet"] {
        let refused = server.fails(&["--as", "stranger", "get", "--raw", path], None);
        assert!(
            refused.contains(&format!("cannot get path \"{path}\"")),
            "{path}: {refused}"
        );
    }
    // Granted `get` on the non-resource URLs, as a monitoring system is.
    server.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader}
rules:
- nonResourceURLs: ["/metrics", "/metrics/fleet"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: metrics-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: prometheus}]
"#,
    );
    let text = server.ok(&["--as", "prometheus", "get", "--raw", "/metrics"]);
    assert!(
        text.contains("# TYPE apiserver_request_total counter"),
        "{text}"
    );
    server.ok(&["--as", "prometheus", "get", "--raw", "/metrics/fleet"]);
    // Still nothing else.
    let refused = server.fails(&["--as", "prometheus", "get", "configmaps"], None);
    assert!(refused.contains("forbidden"), "{refused}");
    // A page that does not exist.
    let missing = server.fails(&["get", "--raw", "/metrics/nothing"], None);
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );
}

/// The boundary issue 16 drew: in `adamant serve`, the controllers and the device API share
/// one watch and one cache per kind (`eve_controllers::informers`). Counted from the server's
/// own gauge of open watches: every kind either half watches has exactly one, none two.
#[test]
fn serve_keeps_one_watch_per_kind_for_the_controllers_and_the_device_api() {
    let server = Server::start();
    let watched = |text: &str, group: &str, resource: &str| {
        value(
            text,
            &format!("apiserver_longrunning_requests{{verb=\"watch\",group=\"{group}\",resource=\"{resource}\"}}"),
        )
        .unwrap_or(0.0)
    };
    // Both halves: the controllers' and the device API's kinds.
    let both = [
        ("eve.lfedge.org", "devices"),
        ("eve.lfedge.org", "applications"),
        ("eve.lfedge.org", "images"),
        ("eve.lfedge.org", "devicenetworks"),
        ("", "persistentvolumeclaims"),
    ];
    let one_side = [
        ("eve.lfedge.org", "applicationdeployments"),
        ("eve.lfedge.org", "applicationdaemonsets"),
        ("eve.lfedge.org", "networkconfigs"),
        ("eve.lfedge.org", "deviceconfigs"),
        ("storage.k8s.io", "storageclasses"),
    ];
    let text = eventually("every informer watching", || {
        let text = server.ok(&["get", "--raw", "/metrics"]);
        both.iter()
            .chain(&one_side)
            .all(|(g, r)| watched(&text, g, r) >= 1.0)
            .then_some(text)
    });
    let mut counts = String::new();
    for (group, resource) in both.iter().chain(&one_side) {
        counts += &format!("{group}/{resource}: {}\n", watched(&text, group, resource));
    }
    let wrong: Vec<&str> = counts.lines().filter(|l| !l.ends_with(": 1")).collect();
    assert!(wrong.is_empty(), "each kind watched once, not:\n{counts}");
    // Nothing else of the EVE group is watched twice either.
    for line in text.lines().filter(|l| {
        l.starts_with("apiserver_longrunning_requests{") && l.contains("group=\"eve.lfedge.org\"")
    }) {
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count <= 1.0, "watched more than once: {line}");
    }
}
