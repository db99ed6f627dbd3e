//! Kubernetes protobuf on the wire, in process: bodies decoded into the same objects as JSON,
//! responses negotiated as kube-apiserver does (protobuf for native kinds when asked, JSON as
//! the fallback, 406 when nothing fits), length-framed watch events, and bad bodies refused
//! with a Status naming the cause.

use crate::common;

use apiserver::protobuf;
use common::{admin, harness, json};
use http_body_util::BodyExt;
use serde_json::json;

const PB: &str = "application/vnd.kubernetes.protobuf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_bodies_and_responses_for_native_kinds() {
    let h = harness().await;
    // A namespace and a ConfigMap created from protobuf bodies, answered in protobuf.
    let ns = protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb"}}),
    )
    .unwrap();
    let (code, content_type, body) = h.send("POST", "/api/v1/namespaces", PB, PB, ns).await;
    assert_eq!(
        (code, content_type.as_str()),
        (201, PB),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let created = protobuf::decode(&body).unwrap();
    assert_eq!(created["status"]["phase"], "Active");
    let cm = protobuf::encode(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "b"}},
        "data": {"k": "v"}, "binaryData": {"bin": "AAEC"},
    }))
    .unwrap();
    let (code, _, body) = h
        .send(
            "POST",
            "/api/v1/namespaces/pb/configmaps",
            PB,
            &format!("{PB}, application/json"),
            cm,
        )
        .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    // The same object as JSON.
    let (code, content_type, body) = h
        .send(
            "GET",
            "/api/v1/namespaces/pb/configmaps/c",
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    let object = json(&body);
    assert_eq!(object["data"]["k"], "v");
    assert_eq!(object["binaryData"]["bin"], "AAEC");
    assert_eq!(object["metadata"]["labels"]["a"], "b");
    assert_eq!(object["metadata"]["namespace"], "pb");
    // A list in protobuf.
    let (code, content_type, body) = h
        .send(
            "GET",
            "/api/v1/namespaces/pb/configmaps",
            "",
            PB,
            Vec::new(),
        )
        .await;
    assert_eq!((code, content_type.as_str()), (200, PB));
    let list = protobuf::decode(&body).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["data"]["k"], "v");
    // An update from protobuf.
    let mut changed = object.clone();
    changed["data"]["k"] = "w".into();
    let (code, _, body) = h
        .send(
            "PUT",
            "/api/v1/namespaces/pb/configmaps/c",
            PB,
            PB,
            protobuf::encode(&changed).unwrap(),
        )
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(protobuf::decode(&body).unwrap()["data"]["k"], "w");
    // Errors are Status objects, in protobuf when asked.
    let (code, content_type, body) = h
        .send(
            "GET",
            "/api/v1/namespaces/pb/configmaps/missing",
            "",
            PB,
            Vec::new(),
        )
        .await;
    assert_eq!(
        (code, content_type.as_str()),
        (404, "application/json"),
        "errors stay JSON"
    );
    assert_eq!(json(&body)["reason"], "NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_falls_back_to_json_and_refuses_what_it_cannot_produce() {
    let h = harness().await;
    // No protobuf form for custom resources, CRDs or Tables: JSON when the client takes it.
    let (code, content_type, _) = h
        .send(
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "",
            &format!("{PB}, application/json"),
            Vec::new(),
        )
        .await;
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    let (code, _, body) = h
        .send(
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "",
            PB,
            Vec::new(),
        )
        .await;
    assert_eq!(code, 406, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["reason"], "NotAcceptable");
    let (code, _, body) = h
        .send("GET", "/api/v1/namespaces", "", "text/html", Vec::new())
        .await;
    assert_eq!(code, 406, "{}", String::from_utf8_lossy(&body));
    // A protobuf body for a kind without a protobuf form: 415.
    let body = protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .unwrap();
    let (code, _, body) = h
        .send(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            PB,
            "application/json",
            body,
        )
        .await;
    assert_eq!(code, 415, "{}", String::from_utf8_lossy(&body));
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_protobuf_bodies_are_refused_naming_the_cause() {
    let h = harness().await;
    let good = protobuf::encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})).unwrap();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "truncated",
            good[..good.len() - 3].to_vec(),
            400,
            "cannot be handled",
        ),
        (
            "not protobuf",
            b"{\"kind\": \"ConfigMap\"}".to_vec(),
            400,
            "protobuf",
        ),
        ("empty", Vec::new(), 400, "protobuf"),
        (
            "another kind",
            protobuf::encode(
                &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}),
            )
            .unwrap(),
            400,
            "does not match the expected kind",
        ),
    ];
    for (what, body, expected, words) in cases {
        let (code, _, answer) = h
            .send(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                PB,
                "application/json",
                body,
            )
            .await;
        let status = json(&answer);
        assert_eq!(code, expected, "{what}: {status}");
        assert!(
            status["message"].as_str().unwrap_or("").contains(words),
            "{what}: {status}"
        );
    }
    // Nothing was created.
    let (_, _, body) = h
        .send(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            "",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(json(&body)["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stream_length_framed_protobuf_events() {
    let h = harness().await;
    let watch = {
        let request = http::Request::builder()
            .uri("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5")
            .header("accept", PB)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        h.server
            .clone()
            .call(admin(), request, h.stop.clone())
            .await
    };
    assert_eq!(
        watch.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let cm = protobuf::encode(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}}),
    )
    .unwrap();
    let (code, _, _) = h
        .send("POST", "/api/v1/namespaces/default/configmaps", PB, PB, cm)
        .await;
    assert_eq!(code, 201);
    let mut body = watch.into_body();
    let mut buffer = Vec::new();
    let event = loop {
        if buffer.len() >= 4 {
            let length = u32::from_be_bytes(buffer[..4].try_into().unwrap()) as usize;
            if buffer.len() >= 4 + length {
                break protobuf::decode_watch_event(&buffer[..4 + length]).unwrap();
            }
        }
        let frame = body.frame().await.unwrap().unwrap();
        buffer.extend_from_slice(frame.data_ref().unwrap());
    };
    assert_eq!(event.0, "ADDED");
    assert_eq!(event.1["metadata"]["name"], "w");
    assert_eq!(event.1["kind"], "ConfigMap");
}
