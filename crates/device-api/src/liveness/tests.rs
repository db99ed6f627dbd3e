//! The liveness rules: when a heartbeat is due, the queues, and the shared records.

use super::*;

fn device(name: &str, ready: Option<(&str, &str)>) -> Device {
    let mut device: Device = serde_json::from_value(json!({
        "apiVersion": "eve.lfedge.org/v1alpha1",
        "kind": "Device",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {},
    }))
    .unwrap();
    if let Some((status, beat)) = ready {
        device.status = serde_json::from_value(json!({"conditions": [{
            "type": "Ready", "status": status, "lastHeartbeatTime": beat,
            "lastTransitionTime": beat,
        }]}))
        .unwrap();
    }
    device
}

#[test]
fn a_heartbeat_is_written_at_once_on_turning_ready_and_refreshed_every_half_grace() {
    let interval = heartbeat_interval(GRACE);
    assert_eq!(interval, Duration::from_secs(150));
    let t0 = Instant::now();
    let wall: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
    let ago = |s: i64| Some(wall - jiff::SignedDuration::from_secs(s));
    // Not Ready, or never heard of: now (at most once per MIN_WRITE_INTERVAL).
    assert_eq!(heartbeat_due(None, wall, None, t0, interval), Due::Now);
    let not_ready = Some((false, ago(10)));
    assert_eq!(heartbeat_due(not_ready, wall, None, t0, interval), Due::Now);
    let second = t0 + Duration::from_secs(1);
    assert_eq!(
        heartbeat_due(not_ready, wall, Some(t0), second, interval),
        Due::No,
        "written a second ago, the cache not caught up"
    );
    // Ready with a fresh heartbeat: every request in between costs no write.
    for s in [0, 30, 60, 149] {
        let shown = Some((true, ago(s)));
        assert_eq!(
            heartbeat_due(shown, wall, None, t0, interval),
            Due::No,
            "{s} s old"
        );
    }
    // Half the grace old: refreshed, unless this process just wrote it.
    let stale = Some((true, ago(150)));
    assert_eq!(heartbeat_due(stale, wall, None, t0, interval), Due::Refresh);
    let soon = t0 + Duration::from_secs(5);
    assert_eq!(
        heartbeat_due(stale, wall, Some(t0), soon, interval),
        Due::No
    );
    let older = Some((true, ago(300)));
    assert_eq!(
        heartbeat_due(older, wall, Some(t0), t0 + interval, interval),
        Due::Refresh
    );
}

#[test]
fn liveness_is_kept_in_memory_for_the_grace() {
    let liveness = Liveness::new("r".into(), GRACE);
    let t0 = Instant::now();
    liveness.heard(&device("d", None), t0);
    assert!(liveness.alive("ns/d", t0 + Duration::from_secs(299), GRACE));
    assert!(!liveness.alive("ns/d", t0 + GRACE, GRACE));
    assert!(!liveness.alive("ns/other", t0, GRACE));
    liveness.forget("ns/d");
    assert!(!liveness.alive("ns/d", t0, GRACE));
}

#[test]
fn requests_queue_each_device_once_transitions_before_refreshes() {
    let liveness = Liveness::new("r".into(), GRACE);
    let now = jiff::Timestamp::now();
    let beat = |s: i64| (now - jiff::SignedDuration::from_secs(s)).to_string();
    let t0 = Instant::now();
    let stale = device("stale", Some(("True", &beat(200))));
    let fresh = device("fresh", Some(("True", &beat(10))));
    let unknown = device("unknown", Some(("Unknown", &beat(400))));
    for _ in 0..3 {
        liveness.heard(&stale, t0);
        liveness.heard(&fresh, t0);
        liveness.heard(&unknown, t0);
    }
    assert_eq!(
        liveness.next(false).as_deref(),
        Some("ns/unknown"),
        "a transition goes first"
    );
    assert_eq!(liveness.next(false), None, "refreshes wait for the budget");
    // A poll keeps a device alive but turns nothing Ready.
    let polled = device("polled", Some(("Unknown", &beat(400))));
    liveness.polled(&polled, t0);
    assert!(liveness.alive("ns/polled", t0, GRACE));
    assert_eq!(liveness.next(false), None);
    assert_eq!(liveness.next(true).as_deref(), Some("ns/stale"));
    assert_eq!(
        liveness.next(true),
        None,
        "each device once; a fresh one never"
    );
    // Written: not queued again within the interval, whatever the cache shows.
    liveness.written("ns/stale", t0);
    liveness.heard(&stale, t0 + Duration::from_secs(1));
    assert_eq!(liveness.next(true), None);
    // A forgotten device's queued key comes out, to be skipped by its writer (no Device).
    liveness.heard(&unknown, t0 + Duration::from_secs(5));
    liveness.forget("ns/unknown");
    assert!(!liveness.alive("ns/unknown", t0 + Duration::from_secs(5), GRACE));
}

#[test]
fn shared_records_list_the_devices_heard_within_the_grace_and_read_back() {
    let liveness = Liveness::new("r".into(), GRACE);
    let t0 = Instant::now();
    let wall: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
    liveness.heard(&device("b", None), t0);
    liveness.heard(&device("a", None), t0);
    let later = t0 + Duration::from_secs(100);
    liveness.heard(&device("c", None), later);
    let heard = liveness.heard_within(later, wall);
    let records = records(&heard);
    expect_test::expect![[r#"
        [
            "ns/a 1796039900\nns/b 1796039900\nns/c 1796040000\n",
        ]
    "#]]
    .assert_debug_eq(&records);
    let read: Vec<_> = parse_record(&records[0]).collect();
    assert_eq!(
        read,
        [
            ("ns/a", 1796039900),
            ("ns/b", 1796039900),
            ("ns/c", 1796040000)
        ]
    );
    // Past the grace, a device is no longer listed.
    let after = t0 + GRACE + Duration::from_secs(1);
    let heard = liveness.heard_within(after, wall);
    assert_eq!(
        heard.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["ns/c"]
    );
    // Lines a reader cannot read are skipped.
    let read: Vec<_> = parse_record("ns/a 12\ngarbage\nns/b x\n\nns/c 13 \n").collect();
    assert_eq!(read, [("ns/a", 12), ("ns/c", 13)]);
}

#[test]
fn a_record_holds_at_most_per_record_devices() {
    let heard: Vec<(String, i64)> = (0..PER_RECORD * 2 + 1)
        .map(|i| (format!("ns/device-{i:06}"), 1_764_504_000))
        .collect();
    let records = records(&heard);
    assert_eq!(records.len(), 3);
    assert_eq!(parse_record(&records[0]).count(), PER_RECORD);
    assert_eq!(parse_record(&records[2]).count(), 1);
    // Well under a ConfigMap's 1 MiB, with the longest names a Device may have.
    let longest: Vec<(String, i64)> = (0..PER_RECORD)
        .map(|i| (format!("{}/{i:0>253}", "n".repeat(63)), 1_764_504_000))
        .collect();
    assert!(records_len(&longest) < 1024 * 1024);
}

fn records_len(heard: &[(String, i64)]) -> usize {
    records(heard)[0].len()
}

#[test]
fn a_device_waiting_for_a_refresh_turns_ready_at_once_when_it_reports() {
    let liveness = Liveness::new("r".into(), GRACE);
    let now = jiff::Timestamp::now();
    let beat = |s: i64| (now - jiff::SignedDuration::from_secs(s)).to_string();
    let t0 = Instant::now();
    // Ready with an old heartbeat: it waits for the refresh budget ...
    liveness.heard(&device("d", Some(("True", &beat(200)))), t0);
    assert_eq!(liveness.next(false), None);
    // ... when its Device turns Unknown (another replica, an outage): a report does not wait.
    liveness.heard(&device("d", Some(("Unknown", &beat(400)))), t0);
    assert_eq!(liveness.next(false).as_deref(), Some("ns/d"));
    // A poll meanwhile would not have: only reports turn a Device Ready.
    liveness.polled(&device("e", Some(("True", &beat(200)))), t0);
    liveness.polled(&device("e", Some(("Unknown", &beat(400)))), t0);
    assert_eq!(liveness.next(false), None);
    // The refreshes queued before come out in turn (their writer finds what is still due).
    assert_eq!(liveness.next(true).as_deref(), Some("ns/d"));
    assert_eq!(liveness.next(true).as_deref(), Some("ns/e"));
    assert_eq!(liveness.next(true), None);
}

#[test]
fn when_a_device_was_heard_is_told_on_the_wall_clock() {
    let liveness = Liveness::new("r".into(), GRACE);
    let t0 = Instant::now();
    liveness.heard(&device("d", None), t0);
    let wall: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
    let heard = liveness.heard_at("ns/d", t0 + Duration::from_secs(90), wall);
    assert_eq!(heard, Some("2026-11-30T11:58:30Z".parse().unwrap()));
    assert_eq!(liveness.heard_at("ns/other", t0, wall), None);
}

#[tokio::test(start_paused = true)]
async fn refreshes_are_written_twenty_a_second_and_a_transition_at_once() {
    let liveness = std::sync::Arc::new(Liveness::new("r".into(), GRACE));
    let old = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(200)).to_string();
    let t0 = Instant::now();
    for i in 0..100 {
        liveness.heard(&device(&format!("d{i}"), Some(("True", &old))), t0);
    }
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let log = written.clone();
    let writer = tokio::spawn(write_heartbeats(
        liveness.clone(),
        move |key| {
            let log = log.clone();
            async move { log.lock().unwrap().push(key) }
        },
        stopped,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let count = written.lock().unwrap().len();
    assert!((20..=21).contains(&count), "{count} refreshes in a second");
    // A device turning Ready does not wait behind the refreshes.
    liveness.heard(&device("late", Some(("Unknown", &old))), Instant::now());
    tokio::time::sleep(Duration::from_millis(1)).await;
    let log = written.lock().unwrap().clone();
    assert!(log.iter().any(|k| k == "ns/late"), "{log:?}");
    assert!(log.len() <= 23, "the refreshes kept their pace: {log:?}");
    stop.send(true).unwrap();
    writer.await.unwrap();
}

/// A Kubernetes API in a function: the liveness ConfigMaps listed (an empty list) or refused
/// (403) as `readable` says; each patch of a Device's status noted.
fn api(
    readable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    lists: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    patched: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> Client {
    use std::sync::atomic::Ordering;
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let path = request.uri().path().to_string();
        let (status, body) = if path.ends_with("/configmaps") {
            lists.fetch_add(1, Ordering::SeqCst);
            if readable.load(Ordering::SeqCst) {
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": []}),
                )
            } else {
                (
                    403,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                    "reason": "Forbidden", "code": 403, "message": "configmaps is forbidden"}),
                )
            }
        } else if path.ends_with("/status") && request.method() == http::Method::PATCH {
            patched.lock().unwrap().push(path);
            (200, serde_json::to_value(device("d", None)).unwrap())
        } else {
            (
                404,
                json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404}),
            )
        };
        let response = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        async move { Ok::<_, std::convert::Infallible>(response) }
    });
    Client::new(service, "default")
}

/// Devices heard by other replicas show old heartbeats on their Device: while the records that
/// say so cannot be read, marking every device this process has not heard would flap them all.
#[tokio::test(start_paused = true)]
async fn no_device_is_marked_silent_while_the_shared_records_cannot_be_read() {
    use std::sync::atomic::Ordering;
    let readable = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lists = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let patched = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = api(readable.clone(), lists.clone(), patched.clone());
    let (devices, mut writer) = kube::runtime::reflector::store::<Device>();
    let hour_ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600)).to_string();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(device(
        "d",
        Some(("True", &hour_ago)),
    )));
    let liveness = std::sync::Arc::new(Liveness::new("r".into(), GRACE));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watch = tokio::spawn(watch_silence(client, devices, liveness, stopped));
    // Two checks (every fifth of the grace period), each failing to read the records.
    tokio::time::sleep(GRACE / 5 * 2 + Duration::from_secs(1)).await;
    assert_eq!(
        lists.load(Ordering::SeqCst),
        2,
        "the records were asked for"
    );
    assert!(
        patched.lock().unwrap().is_empty(),
        "no device is marked silent"
    );
    // Readable again (and no other replica heard the device): it is marked at the next check.
    readable.store(true, Ordering::SeqCst);
    tokio::time::sleep(GRACE / 5).await;
    assert_eq!(
        *patched.lock().unwrap(),
        ["/apis/eve.lfedge.org/v1beta1/namespaces/ns/devices/d/status"]
    );
    stop.send(true).unwrap();
    watch.await.unwrap();
}
