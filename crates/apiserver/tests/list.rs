//! Unpaged lists are streamed a page at a time from one pinned revision: the body is the same
//! list a client would get at once, sent in several chunks, and writes made while it streams do
//! not appear in it.

use crate::common;

use common::{admin, harness};
use http_body_util::BodyExt;
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaged_list_streams_one_snapshot_in_chunks() {
    let h = harness().await;
    for i in 0..1_234 {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:04}")}, "data": {"i": i.to_string()}});
        let (code, _, _) = h
            .send(
                "POST",
                CM,
                "application/json",
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(code, 201);
    }
    let request = http::Request::builder()
        .uri(CM)
        .header("accept", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = h
        .server
        .clone()
        .call(admin(), request, h.stop.clone())
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut chunks = 0;
    let mut bytes = Vec::new();
    let mut wrote_during = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        chunks += 1;
        bytes.extend_from_slice(frame.data_ref().unwrap());
        if !wrote_during {
            // A write after the list began is not part of it.
            wrote_during = true;
            let late =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}});
            let (code, _, _) = h
                .send(
                    "POST",
                    CM,
                    "application/json",
                    "application/json",
                    serde_json::to_vec(&late).unwrap(),
                )
                .await;
            assert_eq!(code, 201);
        }
    }
    assert!(chunks >= 3, "{chunks} chunks");
    let list: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["apiVersion"], "v1");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1_234);
    assert_eq!(items[0]["metadata"]["name"], "cm-0000");
    assert_eq!(items[1_233]["data"]["i"], "1233");
    assert_eq!(items[5]["kind"], "ConfigMap");
    assert!(list["metadata"].get("continue").is_none());
    // The list's version is the snapshot's: the late write is newer.
    let (_, _, late) = h
        .send(
            "GET",
            &format!("{CM}/late"),
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    let late: Value = serde_json::from_slice(&late).unwrap();
    let version = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    assert!(
        version(&late["metadata"]["resourceVersion"])
            > version(&list["metadata"]["resourceVersion"])
    );
    // A small list is one answer as before.
    let (code, _, body) = h
        .send(
            "GET",
            "/api/v1/namespaces",
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 200);
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["items"].is_array());
}
