//! Hostile paths and references at the API: names and namespaces that are not one path segment
//! (`..`, `.`, an encoded `/` or `%`) are 400 whatever the verb; a binding to a role that does
//! not exist is 404 for whoever may not bind it; none of it changes anything.

use crate::common;

use apiserver::auth::User;
use serde_json::{Value, json};

#[tokio::test]
async fn names_that_are_not_one_path_segment_are_bad_requests() {
    let h = common::harness().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ".."}});
    for (method, path, body, message) in [
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/..",
            Value::Null,
            r#"Name parameter invalid: "..": may not be '..'"#,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/%2E%2E",
            Value::Null,
            r#"Name parameter invalid: "..": may not be '..'"#,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/.",
            Value::Null,
            r#"Name parameter invalid: ".": may not be '.'"#,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/a%2Fb",
            Value::Null,
            r#"Name parameter invalid: "a/b": may not contain '/'"#,
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/configmaps/a%252Fb",
            Value::Null,
            r#"Name parameter invalid: "a%2Fb": may not contain '%'"#,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps/..",
            cm.clone(),
            r#"Name parameter invalid: "..": may not be '..'"#,
        ),
        (
            "GET",
            "/api/v1/namespaces/%2E%2E/configmaps",
            Value::Null,
            r#"Namespace parameter invalid: "..": may not be '..'"#,
        ),
        (
            "POST",
            "/api/v1/namespaces/kube-system%2F..%2Fdefault/configmaps",
            cm.clone(),
            r#"Namespace parameter invalid: "kube-system/../default": may not contain '/'"#,
        ),
        (
            "GET",
            "/api/v1/namespaces/..",
            Value::Null,
            r#"Name parameter invalid: "..": may not be '..'"#,
        ),
    ] {
        let (status, answer) = h.send_json(method, path, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_eq!(answer["reason"], "BadRequest", "{answer}");
        assert_eq!(answer["message"], message, "{method} {path}");
    }
    let all = h.get("/api/v1/configmaps").await;
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .filter(|n| *n != "kube-root-ca.crt")
        .collect();
    assert!(names.is_empty(), "nothing was stored: {names:?}");
}

#[tokio::test]
async fn a_binding_to_a_role_that_does_not_exist_is_refused_to_who_may_not_bind_it() {
    let h = common::harness().await;
    // Ada administers the namespace (admin may create RoleBindings there, and bind what it holds).
    let (status, _) = h
        .send_json(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "ada-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ada"}],
            }),
        )
        .await;
    assert_eq!(status, 201);
    let ada = User {
        name: "ada".into(),
        groups: vec!["system:authenticated".into()],
        ..User::default()
    };
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "to-nothing"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "nope"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}],
    });
    let (status, answer) = h
        .send_json_as(
            &ada,
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            binding,
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        answer["message"],
        r#"role.rbac.authorization.k8s.io "nope" not found"#
    );
    let (status, _) = h
        .send_json(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/to-nothing",
            Value::Null,
        )
        .await;
    assert_eq!(status, 404, "nothing was stored");
}

/// A request beyond its class's places in flight is 429 with `Retry-After`, as kube-apiserver
/// answers; `system:masters` are never held back; a watch holds its place until it ends.
#[tokio::test]
async fn requests_beyond_the_places_in_flight_are_told_to_retry() {
    let h = common::harness().await;
    let (code, _) = h
        .call(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            "application/json",
            "application/json",
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "alice-views"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
            }),
        )
        .await;
    assert_eq!(code, 201);
    h.server
        .set_inflight_limits(apiserver::inflight::InflightLimits {
            read_only: 0,
            mutating: 0,
            long_running: 1,
        });
    let alice = User {
        name: "alice".into(),
        groups: vec!["system:authenticated".into()],
        ..User::default()
    };
    let request = |path: &str| {
        http::Request::builder()
            .uri(path)
            .header("accept", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let send = |user: User, path: &str| h.server.clone().call(user, request(path), h.stop.clone());
    // No place for reads or writes: 429, retry in a second.
    let refused = send(alice.clone(), "/api/v1/namespaces/default/configmaps").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let (code, answer) = h
        .call_as(
            alice.clone(),
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "application/json",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .await;
    assert_eq!(code, 429);
    assert_eq!(answer["reason"], "TooManyRequests");
    assert_eq!(answer["details"]["retryAfterSeconds"], 1);
    // The admin is never held back; health checks neither.
    let served = send(common::admin(), "/api/v1/namespaces/default/configmaps").await;
    assert_eq!(served.status(), 200);
    assert_eq!(send(alice.clone(), "/readyz").await.status(), 200);
    // One place for watches: the second waits its turn until the first ends.
    let path = "/api/v1/namespaces/default/configmaps?watch=true";
    let first = send(alice.clone(), path).await;
    assert_eq!(first.status(), 200);
    assert_eq!(send(alice.clone(), path).await.status(), 429);
    drop(first);
    assert_eq!(send(alice.clone(), path).await.status(), 200);
}
