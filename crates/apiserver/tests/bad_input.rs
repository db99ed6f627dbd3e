//! Hostile paths and references at the API: names and namespaces that are not one path segment
//! (`..`, `.`, an encoded `/` or `%`) are 400 whatever the verb; a binding to a role that does
//! not exist is 404 for whoever may not bind it; none of it changes anything.

mod common;

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
