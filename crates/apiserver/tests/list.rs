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

/// On a paused clock (the minutes pass as soon as nothing else is to be done): a watch that
/// asked for bookmarks gets, each minute, one of the store's latest revision though its own
/// resource saw no change; and one more as it ends.
#[tokio::test(start_paused = true)]
async fn a_quiet_watch_is_bookmarked_at_the_store_s_revision_every_minute() {
    let h = harness().await;
    let (_, _, body) = h
        .send(
            "GET",
            "/api/v1/namespaces/default/secrets",
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    let quiet = serde_json::from_slice::<Value>(&body).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut latest = 0i64;
    for i in 0..3 {
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("busy-{i}")}});
        let (code, _, body) = h
            .send(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                "application/json",
                map.to_string().into_bytes(),
            )
            .await;
        assert_eq!(code, 201);
        let created: Value = serde_json::from_slice(&body).unwrap();
        latest = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    }
    // Ends after 90 s: one minute's bookmarks, then the last one.
    let path = format!(
        "/api/v1/namespaces/default/secrets?watch=1&allowWatchBookmarks=true&timeoutSeconds=90&resourceVersion={quiet}"
    );
    let (code, _, body) = h
        .send("GET", &path, "", "application/json", Vec::new())
        .await;
    assert_eq!(code, 200);
    let bookmarks: Vec<i64> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|event| {
            assert_eq!(event["type"], "BOOKMARK", "no Secret changed: {event}");
            event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let at_latest = bookmarks.iter().filter(|rv| **rv >= latest).count();
    assert!(
        at_latest >= 2,
        "bookmarks {bookmarks:?}: the minute's and the last should reach {latest}"
    );
}
