//! Events and Leases in process: one stored Event served as `core/v1` and `events.k8s.io/v1`
//! (written through either, read and watched through both, converted field by field), the
//! field selectors kubectl uses, kube-apiserver's rules with errors naming the fields in each
//! view's terms, kube-apiserver's table columns, expiry after the time to live, and Leases.

use crate::common;

use std::time::Duration;

use common::{Harness, admin};
use http_body_util::BodyExt;
use serde_json::{Value, json};

const CORE: &str = "/api/v1/namespaces/ns/events";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

async fn harness() -> Harness {
    let h = common::harness().await;
    h.namespace("ns").await;
    h
}

/// A `core/v1` Event as `kubectl` era clients write it: no eventTime, a source, counts.
fn legacy(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "ns"},
        "involvedObject": {
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "Device", "name": "dev1",
            "namespace": "ns", "uid": "u-1", "resourceVersion": "7", "fieldPath": "spec.x",
        },
        "reason": "Onboarded", "message": "registered", "type": "Normal",
        "source": {"component": "device-api", "host": "h1"},
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:05:00Z",
        "count": 4,
    })
}

/// An `events.k8s.io/v1` Event as kube-rs's Recorder writes it.
fn new_style(name: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "ns"},
        "regarding": {"apiVersion": "eve.lfedge.org/v1beta1", "kind": "Application", "name": "app1", "namespace": "ns", "uid": "u-2"},
        "reason": "Unschedulable", "note": "no device matches", "type": "Warning",
        "action": "Schedule", "eventTime": "2025-01-01T00:00:00.123456Z",
        "reportingController": "eve.lfedge.org/controllers", "reportingInstance": "host-1",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stored_event_two_views_converted_both_ways() {
    let h = harness().await;
    // Written as core/v1, read as events.k8s.io/v1.
    let (code, body) = h.send_json("POST", CORE, legacy("old")).await;
    assert_eq!(code, 201, "{body}");
    let seen = h.get(&format!("{EVENTS}/old")).await;
    assert_eq!(seen["apiVersion"], "events.k8s.io/v1");
    assert_eq!(seen["regarding"]["name"], "dev1");
    assert_eq!(seen["regarding"]["uid"], "u-1");
    assert_eq!(seen["note"], "registered");
    assert_eq!(seen["deprecatedSource"]["component"], "device-api");
    assert_eq!(seen["deprecatedFirstTimestamp"], "2025-01-01T00:00:00Z");
    assert_eq!(seen["deprecatedLastTimestamp"], "2025-01-01T00:05:00Z");
    assert_eq!(seen["deprecatedCount"], 4);
    for core_only in [
        "involvedObject",
        "message",
        "source",
        "count",
        "firstTimestamp",
    ] {
        assert!(seen.get(core_only).is_none(), "{core_only} in {seen}");
    }
    assert_eq!(seen["metadata"]["uid"], body["metadata"]["uid"]);
    assert_eq!(
        seen["metadata"]["resourceVersion"],
        body["metadata"]["resourceVersion"]
    );

    // Written as events.k8s.io/v1, read as core/v1.
    let (code, body) = h.send_json("POST", EVENTS, new_style("new")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(body["note"], "no device matches");
    let core = h.get(&format!("{CORE}/new")).await;
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["kind"], "Application");
    assert_eq!(core["message"], "no device matches");
    assert_eq!(core["reportingComponent"], "eve.lfedge.org/controllers");
    assert_eq!(core["reportingInstance"], "host-1");
    assert_eq!(core["eventTime"], "2025-01-01T00:00:00.123456Z");
    assert_eq!(core["action"], "Schedule");
    for events_only in ["regarding", "note", "reportingController"] {
        assert!(core.get(events_only).is_none(), "{events_only} in {core}");
    }

    // Both views list both objects.
    assert_eq!(h.names(CORE).await, ["new", "old"]);
    assert_eq!(h.names(EVENTS).await, ["new", "old"]);
    assert_eq!(
        h.names("/apis/events.k8s.io/v1/events").await,
        ["new", "old"]
    );

    // A series, patched as kube-rs's Recorder does (the whole event, merged), shows in core/v1.
    let mut again = new_style("new");
    again["series"] = json!({"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"});
    let (code, body) = h
        .call(
            "PATCH",
            &format!("{EVENTS}/new"),
            "application/merge-patch+json",
            "application/json",
            again,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let core = h.get(&format!("{CORE}/new")).await;
    assert_eq!(core["series"]["count"], 2);
    assert_eq!(core["message"], "no device matches");

    // An update through core/v1 shows in events.k8s.io/v1.
    let mut updated = h.get(&format!("{CORE}/old")).await;
    updated["count"] = json!(5);
    updated["message"] = json!("registered again");
    let (code, body) = h.send_json("PUT", &format!("{CORE}/old"), updated).await;
    assert_eq!(code, 200, "{body}");
    let seen = h.get(&format!("{EVENTS}/old")).await;
    assert_eq!(seen["deprecatedCount"], 5);
    assert_eq!(seen["note"], "registered again");

    // Deleted through one view, gone from both.
    let (code, _) = h
        .send_json("DELETE", &format!("{EVENTS}/old"), Value::Null)
        .await;
    assert_eq!(code, 200);
    let (code, _) = h
        .send_json("GET", &format!("{CORE}/old"), Value::Null)
        .await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_of_one_view_sees_writes_through_the_other() {
    let h = harness().await;
    let (code, body) = h.send_json("POST", CORE, legacy("first")).await;
    assert_eq!(code, 201, "{body}");
    let request = http::Request::builder()
        .uri(format!(
            "{EVENTS}?watch=1&resourceVersion=0&timeoutSeconds=2"
        ))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let watch = tokio::spawn({
        let server = h.server.clone();
        let stop = h.stop.clone();
        async move {
            let response = server.call(admin(), request, stop).await;
            response.into_body().collect().await.unwrap().to_bytes()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = h.send_json("POST", CORE, legacy("second")).await;
    assert_eq!(code, 201, "{body}");
    let stream = watch.await.unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&stream)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let added: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| {
            (
                e["object"]["metadata"]["name"].as_str().unwrap(),
                e["object"]["note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(added, [("first", "registered"), ("second", "registered")]);
    assert!(
        events
            .iter()
            .filter(|e| e["type"] == "ADDED")
            .all(|e| e["object"]["apiVersion"] == "events.k8s.io/v1"
                && e["object"]["regarding"]["name"] == "dev1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_as_kubectl_uses_them() {
    let h = harness().await;
    let (code, body) = h.send_json("POST", CORE, legacy("old")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h.send_json("POST", EVENTS, new_style("new")).await;
    assert_eq!(code, 201, "{body}");
    let select = |path: &str, selector: &str| {
        format!(
            "{path}?fieldSelector={}",
            selector
                .replace('=', "%3D")
                .replace(',', "%2C")
                .replace('/', "%2F")
        )
    };
    for (selector, expected) in [
        // kubectl describe's selector.
        (
            "involvedObject.name=dev1,involvedObject.namespace=ns,involvedObject.kind=Device,involvedObject.uid=u-1",
            &["old"][..],
        ),
        // kubectl events --for.
        (
            "involvedObject.kind=Application,involvedObject.name=app1",
            &["new"],
        ),
        (
            "involvedObject.apiVersion=eve.lfedge.org/v1beta1",
            &["new", "old"],
        ),
        ("involvedObject.resourceVersion=7", &["old"]),
        ("involvedObject.fieldPath=spec.x", &["old"]),
        ("reason=Unschedulable", &["new"]),
        ("type=Normal", &["old"]),
        ("type!=Normal", &["new"]),
        ("source=device-api", &["old"]),
        // A new-style Event's source is its reporter.
        ("source=eve.lfedge.org/controllers", &["new"]),
        ("reportingComponent=eve.lfedge.org/controllers", &["new"]),
        ("metadata.name=old", &["old"]),
    ] {
        assert_eq!(
            h.names(&select(CORE, selector)).await,
            expected,
            "{selector}"
        );
    }
    for (selector, expected) in [
        ("regarding.kind=Device,regarding.name=dev1", &["old"][..]),
        ("regarding.uid=u-2", &["new"]),
        ("regarding.namespace=ns", &["new", "old"]),
        ("reportingController=eve.lfedge.org/controllers", &["new"]),
        ("reason=Onboarded,type=Normal", &["old"]),
    ] {
        assert_eq!(
            h.names(&select(EVENTS, selector)).await,
            expected,
            "{selector}"
        );
    }
    // Each view offers its own names only.
    let (code, body) = h
        .send_json(
            "GET",
            &select(EVENTS, "involvedObject.name=dev1"),
            Value::Null,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("\"involvedObject.name\" is not a known field selector"),
        "{body}"
    );
    let (code, _) = h
        .send_json("GET", &select(CORE, "regarding.name=dev1"), Value::Null)
        .await;
    assert_eq!(code, 400);
}

/// The fields a 422 names.
fn causes(body: &Value) -> Vec<String> {
    body["details"]["causes"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| c["field"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_fields() {
    let h = harness().await;
    // core/v1: the involved object's namespace must be the Event's.
    let mut elsewhere = legacy("elsewhere");
    elsewhere["involvedObject"]["namespace"] = json!("other");
    let (code, body) = h.send_json("POST", CORE, elsewhere).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(causes(&body), ["involvedObject.namespace"]);
    assert!(
        body["message"].as_str().unwrap().contains(
            "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
        ),
        "{body}"
    );
    // core/v1 with an eventTime: the reporter, action and reason are required.
    let mut bare = legacy("bare");
    bare["eventTime"] = json!("2025-01-01T00:00:00.000000Z");
    bare["reason"] = json!("");
    let (code, body) = h.send_json("POST", CORE, bare).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        causes(&body),
        [
            "reportingComponent",
            "reportingInstance",
            "action",
            "reason"
        ]
    );

    // events.k8s.io/v1: the reporter is required on create, named as this view names it.
    let mut unreported = new_style("unreported");
    for field in ["reportingController", "reportingInstance"] {
        unreported.as_object_mut().unwrap().remove(field);
    }
    let (code, body) = h.send_json("POST", EVENTS, unreported).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(causes(&body), ["reportingController", "reportingInstance"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Event.events.k8s.io \"unreported\" is invalid: "),
        "{body}"
    );
    // ... as are an eventTime and a known type; deprecated fields must be unset; the regarded
    // object's namespace must be the Event's; a series counts at least 2.
    let mut bad = new_style("bad");
    bad.as_object_mut().unwrap().remove("eventTime");
    bad["type"] = json!("Fatal");
    bad["deprecatedCount"] = json!(3);
    bad["regarding"]["namespace"] = json!("other");
    bad["series"] = json!({"count": 1});
    let (code, body) = h.send_json("POST", EVENTS, bad).await;
    assert_eq!(code, 422, "{body}");
    let mut fields = causes(&body);
    fields.sort();
    assert_eq!(
        fields,
        [
            "deprecatedCount",
            "eventTime",
            "regarding.namespace",
            "series.count",
            "series.lastObservedTime",
            "type"
        ]
    );
    // A too long note.
    let mut long = new_style("long");
    long["note"] = json!("x".repeat(1025));
    let (code, body) = h.send_json("POST", EVENTS, long).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(causes(&body), ["note"]);

    // An events.k8s.io/v1 update may not change what happened.
    let (code, body) = h.send_json("POST", EVENTS, new_style("fixed")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h
        .call(
            "PATCH",
            &format!("{EVENTS}/fixed"),
            "application/merge-patch+json",
            "application/json",
            json!({"note": "rewritten", "regarding": {"name": "app2"}}),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    let mut fields = causes(&body);
    fields.sort();
    assert_eq!(fields, ["note", "regarding"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("field is immutable"),
        "{body}"
    );
    // ... which core/v1 allows, as kube-apiserver does.
    let (code, body) = h
        .call(
            "PATCH",
            &format!("{CORE}/fixed"),
            "application/merge-patch+json",
            "application/json",
            json!({"message": "rewritten"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["message"], "rewritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_time_to_live() {
    let h = harness().await;
    apiserver::events::set_ttl(&h.server, Duration::from_secs(1));
    let (code, body) = h.send_json("POST", CORE, legacy("short")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h.send_json("POST", EVENTS, new_style("lived")).await;
    assert_eq!(code, 201, "{body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !h.names(CORE).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.names(EVENTS).await.is_empty());
    // Other kinds do not expire.
    let (code, _) = h
        .send_json("GET", "/api/v1/namespaces/ns", Value::Null)
        .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_renewed_by_a_write_outlives_one_that_is_not() {
    let h = harness().await;
    apiserver::events::set_ttl(&h.server, Duration::from_secs(3));
    for name in ["kept", "left"] {
        let (code, body) = h.send_json("POST", CORE, legacy(name)).await;
        assert_eq!(code, 201, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, body) = h
        .call(
            "PATCH",
            &format!("{CORE}/kept"),
            "application/merge-patch+json",
            "application/json",
            json!({"count": 9}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    // "left" expires about a second later; "kept" lives three seconds from its write.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names = h.names(CORE).await;
        if !names.contains(&"left".to_string()) {
            assert_eq!(names, ["kept"]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_have_kube_apiserver_s_columns() {
    let h = harness().await;
    let (code, body) = h.send_json("POST", EVENTS, new_style("new")).await;
    assert_eq!(code, 201, "{body}");
    for path in [CORE, EVENTS] {
        let (code, table) = h.call("GET", path, "", TABLE, Value::Null).await;
        assert_eq!(code, 200, "{table}");
        let columns: Vec<(&str, i64)> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ],
            "{path}"
        );
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[1], "Warning");
        assert_eq!(cells[2], "Unschedulable");
        assert_eq!(cells[3], "application/app1");
        assert_eq!(cells[5], "eve.lfedge.org/controllers, host-1");
        assert_eq!(cells[6], "no device matches");
        assert_eq!(cells[8], 1);
        assert_eq!(cells[9], "new");
    }
    // Other kinds keep their leading name.
    let (code, table) = h
        .call("GET", "/api/v1/namespaces", "", TABLE, Value::Null)
        .await;
    assert_eq!(code, 200);
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_served_validated_and_printed() {
    let h = harness().await;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {
            "holderIdentity": "adamant-1", "leaseDurationSeconds": 15,
            "acquireTime": "2025-01-01T00:00:00.000000Z", "renewTime": "2025-01-01T00:00:10.000000Z",
            "leaseTransitions": 1,
        },
    });
    let (code, body) = h.send_json("POST", leases, lease).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["renewTime"], "2025-01-01T00:00:10.000000Z");
    // Renewed by its holder.
    let (code, body) = h
        .call(
            "PATCH",
            &format!("{leases}/leader"),
            "application/merge-patch+json",
            "application/json",
            json!({"spec": {"renewTime": "2025-01-01T00:00:20.000000Z"}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["holderIdentity"], "adamant-1");
    let (code, table) = h.call("GET", leases, "", TABLE, Value::Null).await;
    assert_eq!(code, 200);
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Holder", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "leader");
    assert_eq!(table["rows"][0]["cells"][1], "adamant-1");
    // kube-apiserver's rules.
    let bad = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "bad"},
        "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1, "preferredHolder": "x"},
    });
    let (code, body) = h.send_json("POST", leases, bad).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        causes(&body),
        [
            "spec.leaseDurationSeconds",
            "spec.leaseTransitions",
            "spec.preferredHolder"
        ]
    );
    assert_eq!(
        h.get("/apis/coordination.k8s.io/v1/leases").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
