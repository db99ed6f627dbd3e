//! Strategic merge patches through the API, in process: merge keys and directives on native
//! kinds, 415 for custom resources (as kube-apiserver answers), and bad patches — an unknown
//! directive, a result of the wrong type, an object grown past the store's limit — refused
//! with a Status naming the cause, nothing half-applied. Every resource advertised with
//! `watch` really watches.

use crate::common;

use common::{harness, json};
use serde_json::json;

const SMP: &str = "application/strategic-merge-patch+json";
const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_patches_of_native_kinds() {
    let h = harness().await;
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "c", "finalizers": ["a.example/one", "a.example/two"],
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "p1", "uid": "u1"},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "p2", "uid": "u2"},
            ],
        },
        "data": {"keep": "k", "drop": "d"},
    });
    let (code, _, _) = h
        .send(
            "POST",
            CM,
            "application/json",
            "application/json",
            serde_json::to_vec(&cm).unwrap(),
        )
        .await;
    assert_eq!(code, 201);
    let patch = json!({
        "metadata": {
            "ownerReferences": [
                {"uid": "u1", "name": "renamed"},
                {"uid": "u2", "$patch": "delete"},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "p3", "uid": "u3"},
            ],
            "$deleteFromPrimitiveList/finalizers": ["a.example/one"],
        },
        "data": {"drop": null, "new": "n"},
    });
    let (code, _, body) = h
        .send(
            "PATCH",
            &format!("{CM}/c"),
            SMP,
            "application/json",
            serde_json::to_vec(&patch).unwrap(),
        )
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let patched = json(&body);
    assert_eq!(patched["data"], json!({"keep": "k", "new": "n"}));
    assert_eq!(patched["metadata"]["finalizers"], json!(["a.example/two"]));
    let owners: Vec<(&str, &str)> = patched["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["uid"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(owners.len(), 2, "{owners:?}");
    assert!(
        owners.contains(&("u1", "renamed")) && owners.contains(&("u3", "p3")),
        "{owners:?}"
    );
    // The patch is recorded as the client's update.
    assert!(patched["metadata"]["managedFields"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_patches_are_refused_and_nothing_is_half_applied() {
    let h = harness().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}});
    h.send(
        "POST",
        CM,
        "application/json",
        "application/json",
        serde_json::to_vec(&cm).unwrap(),
    )
    .await;
    let (_, _, body) = h
        .send(
            "GET",
            &format!("{CM}/c"),
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    let before = json(&body)["metadata"]["resourceVersion"].clone();
    let big = "x".repeat(1024 * 1024);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "unknown directive",
            SMP,
            r#"{"data": {"$nonsense": "x"}}"#.into(),
            422,
            "$nonsense",
        ),
        (
            "bad $patch",
            SMP,
            r#"{"data": {"$patch": "explode"}}"#.into(),
            422,
            "explode",
        ),
        (
            "not JSON",
            SMP,
            "{".into(),
            400,
            "strategic merge patch is not valid",
        ),
        (
            "a value of the wrong type",
            SMP,
            r#"{"data": {"a": 5}}"#.into(),
            400,
            "cannot unmarshal",
        ),
        (
            "a list for a map",
            SMP,
            r#"{"data": ["a"]}"#.into(),
            422,
            "data must be of type object",
        ),
        (
            "grown past the store's limit",
            "application/merge-patch+json",
            format!(r#"{{"binaryData": {{"one": "{big}", "two": "{big}"}}}}"#),
            422,
            "may not be more than 1048576 bytes",
        ),
        (
            "40 copies doubling the object each time",
            "application/json-patch+json",
            {
                let mut operations =
                    vec![json!({"op": "add", "path": "/data/grow", "value": "x".repeat(64)})];
                operations.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
                for i in 0..40 {
                    operations.push(json!({"op": "copy", "from": "/data", "path": format!("/metadata/annotations/c{i}")}));
                    operations.push(json!({"op": "copy", "from": "/metadata/annotations", "path": "/data/more"}));
                }
                serde_json::to_string(&operations).unwrap()
            },
            413,
            "copy operations would copy more than",
        ),
        (
            "more operations than kube-apiserver allows",
            "application/json-patch+json",
            serde_json::to_string(&vec![
                json!({"op": "test", "path": "/data/a", "value": "b"});
                10_001
            ])
            .unwrap(),
            413,
            "maximum operations in a JSON patch is 10000, got 10001",
        ),
        (
            "nested deeper than can be read back",
            "application/json-patch+json",
            {
                let mut deep = json!("bottom");
                for _ in 0..110 {
                    deep = json!([deep]);
                }
                serde_json::to_string(&json!([
                    {"op": "add", "path": "/metadata/annotations", "value": {}},
                    {"op": "add", "path": "/x", "value": deep},
                ]))
                .unwrap()
            },
            400,
            "nests deeper than 100 levels",
        ),
        (
            "an unknown patch type",
            "application/x-yaml-patch",
            "{}".into(),
            415,
            "strategic-merge-patch",
        ),
    ];
    for (what, content_type, body, expected, words) in cases {
        let (code, _, answer) = h
            .send(
                "PATCH",
                &format!("{CM}/c"),
                content_type,
                "application/json",
                body.into_bytes(),
            )
            .await;
        let status = json(&answer);
        assert_eq!(code, expected, "{what}: {status}");
        assert!(
            status["message"].as_str().unwrap_or("").contains(words),
            "{what}: {status}"
        );
    }
    let (_, _, body) = h
        .send(
            "GET",
            &format!("{CM}/c"),
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    let after = json(&body);
    assert_eq!(
        after["metadata"]["resourceVersion"], before,
        "nothing was written"
    );
    assert_eq!(after["data"], json!({"a": "b"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_naming_a_stale_resource_version_conflict_and_write_nothing() {
    let h = harness().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "one"}});
    let (code, created) = h.send_json("POST", CM, cm).await;
    assert_eq!(code, 201, "{created}");
    let stale = created["metadata"]["resourceVersion"].clone();
    // Another writer moves the object on.
    let (code, moved) = h
        .call(
            "PATCH",
            &format!("{CM}/c"),
            "application/merge-patch+json",
            "application/json",
            json!({"data": {"a": "two"}}),
        )
        .await;
    assert_eq!(code, 200, "{moved}");
    let current = moved["metadata"]["resourceVersion"].clone();
    assert_ne!(current, stale);
    // A patch made from the old object, naming its resourceVersion, is refused.
    for content_type in ["application/merge-patch+json", SMP] {
        let (code, status) = h
            .call(
                "PATCH",
                &format!("{CM}/c"),
                content_type,
                "application/json",
                json!({"metadata": {"resourceVersion": stale}, "data": {"a": "three", "b": "new"}}),
            )
            .await;
        assert_eq!(code, 409, "{content_type}: {status}");
        assert_eq!(status["kind"], "Status", "{content_type}: {status}");
        assert_eq!(status["reason"], "Conflict", "{content_type}: {status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap_or("")
                .contains("the object has been modified"),
            "{content_type}: {status}"
        );
    }
    let after = h.get(&format!("{CM}/c")).await;
    assert_eq!(
        after["metadata"]["resourceVersion"], current,
        "nothing was written"
    );
    assert_eq!(after["data"], json!({"a": "two"}));
    // Naming the current resourceVersion, the same patch applies.
    let (code, patched) = h
        .call(
            "PATCH",
            &format!("{CM}/c"),
            SMP,
            "application/json",
            json!({"metadata": {"resourceVersion": current}, "data": {"a": "three"}}),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["data"], json!({"a": "three"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_refuse_strategic_merge_patches() {
    let h = harness().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]},
    });
    let (code, _, body) = h
        .send(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "application/json",
            "application/json",
            serde_json::to_vec(&crd).unwrap(),
        )
        .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let (code, _, _) = h
        .send(
            "POST",
            path,
            "application/json",
            "application/json",
            serde_json::to_vec(&widget).unwrap(),
        )
        .await;
    assert_eq!(code, 201);
    let (code, _, body) = h
        .send(
            "PATCH",
            &format!("{path}/w"),
            SMP,
            "application/json",
            br#"{"spec": {"size": 2}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 415);
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("application/merge-patch+json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_advertised_with_watch_watches() {
    let h = harness().await;
    let mut paths = Vec::new();
    let (_, _, body) = h
        .send("GET", "/api/v1", "", "application/json", Vec::new())
        .await;
    let core = json(&body);
    for r in core["resources"].as_array().unwrap() {
        paths.push(("/api/v1".to_string(), r.clone()));
    }
    let (_, _, body) = h
        .send("GET", "/apis", "", "application/json", Vec::new())
        .await;
    for group in json(&body)["groups"].as_array().unwrap() {
        let version = group["preferredVersion"]["groupVersion"].as_str().unwrap();
        let (_, _, body) = h
            .send(
                "GET",
                &format!("/apis/{version}"),
                "",
                "application/json",
                Vec::new(),
            )
            .await;
        for r in json(&body)["resources"].as_array().unwrap() {
            paths.push((format!("/apis/{version}"), r.clone()));
        }
    }
    let watchable: Vec<String> = paths
        .into_iter()
        .filter_map(|(prefix, resource)| {
            let name = resource["name"].as_str()?.to_string();
            let watch = resource["verbs"].as_array()?.iter().any(|v| v == "watch");
            (!name.contains('/') && watch).then(|| format!("{prefix}/{name}"))
        })
        .collect();
    // All at once: each watch lasts its one second.
    let urls: Vec<String> = watchable
        .iter()
        .map(|path| format!("{path}?watch=true&timeoutSeconds=1"))
        .collect();
    let answers = futures::future::join_all(
        urls.iter()
            .map(|url| h.send("GET", url, "", "application/json", Vec::new())),
    )
    .await;
    let mut added = 0;
    for (path, (code, content_type, body)) in watchable.iter().zip(answers) {
        assert_eq!(
            (code, content_type.as_str()),
            (200, "application/json"),
            "{path}"
        );
        // A stream of watch events (initial ADDED events, nothing else here), not a list.
        for line in String::from_utf8_lossy(&body).lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["type"], "ADDED", "{path}: {line}");
            assert!(
                event["object"]["metadata"]["name"].is_string(),
                "{path}: {line}"
            );
            added += 1;
        }
    }
    assert!(
        added >= 4,
        "the default namespaces come as ADDED events ({added})"
    );
    let watched = watchable.len();
    assert!(watched >= 7, "{watched} resources watched");
}
