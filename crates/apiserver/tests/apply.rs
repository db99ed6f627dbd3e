//! Server-side apply in process: field managers recorded for every write, conflicts as 409
//! with `FieldManagerConflict` causes naming field and manager, and bad apply requests refused
//! with a Status naming the cause while nothing is written.

use crate::common;

use common::{harness, json};
use serde_json::{Value, json};

const APPLY: &str = "application/apply-patch+yaml";
const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_conflict_and_every_write_records_its_manager() {
    let h = harness().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: one\n  b: two\n";
    let (code, _, body) = h
        .send(
            "PATCH",
            &format!("{CM}/c?fieldManager=deployer"),
            APPLY,
            "application/json",
            yaml.into(),
        )
        .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let created = json(&body);
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "deployer"
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
    // An update through PUT by another manager takes the field it changes.
    let mut changed = created.clone();
    changed["data"]["a"] = "edited".into();
    let (code, _, body) = h
        .send(
            "PUT",
            &format!("{CM}/c?fieldManager=editor"),
            "application/json",
            "application/json",
            serde_json::to_vec(&changed).unwrap(),
        )
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let updated = json(&body);
    let entries = updated["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries[1]["manager"], "editor");
    assert_eq!(entries[1]["operation"], "Update");
    assert_eq!(entries[1]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
    // A merge patch without fieldManager is recorded under the client's name.
    let request = http::Request::builder()
        .method("PATCH")
        .uri(format!("{CM}/c"))
        .header("content-type", "application/merge-patch+json")
        .header("user-agent", "helm/v3.16.0 (linux/amd64)")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"data":{"c":"three"}}"#,
        )))
        .unwrap();
    let response = h
        .server
        .clone()
        .call(common::admin(), request, h.stop.clone())
        .await;
    assert_eq!(response.status(), 200);
    let (_, _, body) = h
        .send(
            "GET",
            &format!("{CM}/c"),
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    let managers: Vec<String> = json(&body)["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(managers, ["deployer", "editor", "helm"]);
    // The deployer applying a to its old value conflicts with the editor.
    let (code, _, body) = h
        .send(
            "PATCH",
            &format!("{CM}/c?fieldManager=deployer"),
            APPLY,
            "application/json",
            yaml.into(),
        )
        .await;
    assert_eq!(code, 409);
    let status = json(&body);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"editor\"", "field": ".data.a"}])
    );
    expect_test::expect![[
        r#"Apply failed with 1 conflict: conflict with "editor" using v1: .data.a"#
    ]]
    .assert_eq(status["message"].as_str().unwrap());
    // Forced, it wins; the editor no longer owns a.
    let (code, _, body) = h
        .send(
            "PATCH",
            &format!("{CM}/c?fieldManager=deployer&force=true"),
            APPLY,
            "application/json",
            yaml.into(),
        )
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let forced = json(&body);
    assert_eq!(forced["data"]["a"], "one");
    let managers: Vec<&str> = forced["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["deployer", "helm"], "{forced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_apply_requests_are_refused_naming_the_cause() {
    let h = harness().await;
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: one\n";
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\nmetadata2: {}{}\n",
        "[".repeat(120),
        "]".repeat(120)
    );
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "no field manager",
            good.into(),
            "",
            400,
            "fieldManager: Required value",
        ),
        (
            "not YAML",
            "a: [unclosed".into(),
            "?fieldManager=m",
            400,
            "error decoding the apply configuration",
        ),
        (
            "not an object",
            "- 1\n- 2\n".into(),
            "?fieldManager=m",
            400,
            "must be an object",
        ),
        (
            "no kind",
            "apiVersion: v1\nmetadata:\n  name: c\n".into(),
            "?fieldManager=m",
            400,
            "kind must be set",
        ),
        (
            "another kind",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n".into(),
            "?fieldManager=m",
            400,
            "does not match the expected kind",
        ),
        (
            "another name",
            good.replace("name: c", "name: d"),
            "?fieldManager=m",
            400,
            "does not match the name on the URL",
        ),
        (
            "unknown field, strict",
            format!("{good}colour: red\n"),
            "?fieldManager=m&fieldValidation=Strict",
            400,
            "unknown field \"colour\"",
        ),
        ("too deep", deep, "?fieldManager=m", 400, "deeper"),
        (
            "a manager name too long",
            good.into(),
            &*Box::leak(format!("?fieldManager={}", "m".repeat(129)).into_boxed_str()),
            400,
            "no more than 128",
        ),
    ];
    for (what, body, query, expected, words) in cases {
        let (code, _, answer) = h
            .send(
                "PATCH",
                &format!("{CM}/c{query}"),
                APPLY,
                "application/json",
                body.into_bytes(),
            )
            .await;
        let status: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        assert_eq!(code, expected, "{what}: {status}");
        assert!(
            status["message"].as_str().unwrap_or("").contains(words),
            "{what}: {status}"
        );
    }
    let (_, _, body) = h.send("GET", CM, "", "application/json", Vec::new()).await;
    assert_eq!(json(&body)["items"], json!([]), "nothing was written");
    // A dry-run apply writes nothing either.
    let (code, _, _) = h
        .send(
            "PATCH",
            &format!("{CM}/c?fieldManager=m&dryRun=All"),
            APPLY,
            "application/json",
            good.into(),
        )
        .await;
    assert_eq!(code, 201);
    let (_, _, body) = h.send("GET", CM, "", "application/json", Vec::new()).await;
    assert_eq!(json(&body)["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_are_recorded_under_their_subresource() {
    let h = harness().await;
    let path = "/api/v1/namespaces/default/persistentvolumeclaims";
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "disk"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    let (code, _, body) = h
        .send(
            "POST",
            &format!("{path}?fieldManager=maker"),
            "application/json",
            "application/json",
            serde_json::to_vec(&claim).unwrap(),
        )
        .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let patch = json!({"metadata": {"labels": {"ignored": "yes"}}, "status": {"phase": "Bound"}});
    let (code, _, body) = h
        .send(
            "PATCH",
            &format!("{path}/disk/status?fieldManager=binder"),
            "application/merge-patch+json",
            "application/json",
            serde_json::to_vec(&patch).unwrap(),
        )
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let claim = json(&body);
    assert_eq!(claim["status"]["phase"], "Bound");
    assert!(
        claim["metadata"]["labels"].get("ignored").is_none(),
        "{claim}"
    );
    let entries = claim["metadata"]["managedFields"].as_array().unwrap();
    let binder = entries
        .iter()
        .find(|e| e["manager"] == "binder")
        .expect("the status write is recorded");
    assert_eq!(binder["subresource"], "status");
    assert_eq!(binder["operation"], "Update");
    assert_eq!(binder["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
    let maker = entries.iter().find(|e| e["manager"] == "maker").unwrap();
    assert!(maker["fieldsV1"].get("f:status").is_none(), "{maker}");
    assert!(maker["fieldsV1"]["f:spec"].is_object(), "{maker}");
}
