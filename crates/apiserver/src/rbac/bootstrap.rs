//! The bootstrap policy, reconciled at every start as kube-apiserver's `rbac/bootstrap-roles`
//! hook does: `cluster-admin`, `admin`, `edit`, `view` (aggregated, from
//! `system:aggregate-to-*` holding kube's base rules for the kinds Adamant serves),
//! `system:discovery`, `system:basic-user`, `system:public-info-viewer`, and their
//! ClusterRoleBindings. Missing objects are created; those annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` (or without the annotation) get the
//! rules, selectors, subjects, labels and annotations they lack; `"false"` leaves them alone.
//! Aggregated roles are then brought up to date once.

use std::collections::BTreeMap;
use std::sync::Arc;

use registry::{ApiError, ListOptions, Registry, WriteOptions};
use serde_json::{Map, Value, json};

use super::aggregate;
use super::cache::ClusterRole;
use super::kinds::{GROUP, Which};
use super::rules::{PolicyRule, covers, rules_of};

/// The annotation that lets reconciliation update an object.
pub(crate) const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn aggregate_label(to: &str) -> String {
    format!("rbac.authorization.k8s.io/aggregate-to-{to}")
}

fn cluster_role(name: &str, aggregate_to: Option<&str>, rules: Vec<PolicyRule>) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let Some(to) = aggregate_to {
        labels[aggregate_label(to)] = "true".into();
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels, "annotations": {AUTOUPDATE: "true"}},
        "rules": rules.iter().map(PolicyRule::to_json).collect::<Vec<_>>(),
    })
}

fn aggregated(name: &str, aggregate_to: Option<&str>, selects: &str) -> Value {
    let mut role = cluster_role(name, aggregate_to, Vec::new());
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {aggregate_label(selects): "true"}}]});
    role
}

/// The bootstrap ClusterRoles.
pub(crate) fn cluster_roles() -> Vec<Value> {
    let core = |verbs: &[&str], resources: &[&str]| PolicyRule::resource(verbs, &[""], resources);
    vec![
        cluster_role(
            "cluster-admin",
            None,
            vec![
                PolicyRule::resource(&["*"], &["*"], &["*"]),
                PolicyRule::urls(&["*"], &["*"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            None,
            vec![PolicyRule::urls(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            None,
            vec![
                PolicyRule::resource(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                PolicyRule::resource(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:auth-delegator",
            None,
            vec![
                PolicyRule::resource(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                PolicyRule::resource(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            None,
            vec![PolicyRule::urls(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        aggregated("admin", None, "admin"),
        aggregated("edit", Some("admin"), "edit"),
        aggregated("view", Some("edit"), "view"),
        cluster_role(
            "system:aggregate-to-admin",
            Some("admin"),
            vec![
                PolicyRule::resource(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                PolicyRule::resource(READ_WRITE, &[GROUP], &["roles", "rolebindings"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            Some("edit"),
            vec![
                core(READ, &["secrets"]),
                core(&["impersonate"], &["serviceaccounts"]),
                core(
                    WRITE,
                    &[
                        "serviceaccounts",
                        "persistentvolumeclaims",
                        "configmaps",
                        "secrets",
                    ],
                ),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            Some("view"),
            vec![
                core(
                    READ,
                    &[
                        "serviceaccounts",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "configmaps",
                    ],
                ),
                core(READ, &["events", "namespaces/status"]),
                core(READ, &["namespaces"]),
            ],
        ),
    ]
}

/// The bootstrap ClusterRoleBindings.
pub(crate) fn cluster_role_bindings() -> Vec<Value> {
    let binding = |role: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g}))
            .collect();
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": role,
                "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                "annotations": {AUTOUPDATE: "true"},
            },
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        })
    };
    vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:discovery", &["system:authenticated"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

/// Adds the keys of `metadata.FIELD` of `expected` that `existing` lacks.
fn merge_map(existing: &mut Value, expected: &Value, field: &str) {
    let Some(wanted) = expected["metadata"][field].as_object() else {
        return;
    };
    let meta = registry::object::meta_mut(existing);
    let map = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    if let Some(map) = map.as_object_mut() {
        for (key, value) in wanted {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}

/// What `existing` becomes: with the labels, annotations, rules or selectors, and subjects of
/// `expected` it lacks.
fn reconciled(which: Which, existing: &Value, expected: &Value) -> Value {
    let mut next = existing.clone();
    merge_map(&mut next, expected, "labels");
    merge_map(&mut next, expected, "annotations");
    match which {
        Which::ClusterRole if expected.get("aggregationRule").is_some() => {
            let wanted = expected["aggregationRule"]["clusterRoleSelectors"].clone();
            let mut selectors = next["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for selector in wanted.as_array().into_iter().flatten() {
                if !selectors.contains(selector) {
                    selectors.push(selector.clone());
                }
            }
            next["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
        }
        Which::ClusterRole => {
            // Each expected rule the existing ones do not cover is added whole.
            let held = rules_of(existing);
            let missing: Vec<Value> = rules_of(expected)
                .into_iter()
                .filter(|rule| !covers(&held, std::slice::from_ref(rule)).0)
                .map(|rule| rule.to_json())
                .collect();
            match next["rules"].as_array_mut() {
                Some(rules) => rules.extend(missing),
                None => next["rules"] = Value::Array(missing),
            }
        }
        _ => {
            let mut subjects = next["subjects"].as_array().cloned().unwrap_or_default();
            for subject in expected["subjects"].as_array().into_iter().flatten() {
                if !subjects.contains(subject) {
                    subjects.push(subject.clone());
                }
            }
            next["subjects"] = Value::Array(subjects);
        }
    }
    registry::object::meta_mut(&mut next).remove("resourceVersion");
    next
}

async fn reconcile_one(registry: &Registry, which: Which, expected: Value) -> Result<(), ApiError> {
    let resource = which.resource();
    let name = registry::object::name(&expected).to_string();
    let options = WriteOptions::default();
    let existing = match registry.get(&resource, "", &name).await {
        Err(ApiError::NotFound { .. }) => {
            return match registry.create(&resource, "", expected, &options).await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            };
        }
        other => other?,
    };
    let annotations = registry::object::meta_map(&existing, "annotations");
    if annotations.get(AUTOUPDATE).map(String::as_str) == Some("false") {
        return Ok(());
    }
    if which == Which::ClusterRoleBinding && existing["roleRef"] != expected["roleRef"] {
        // `roleRef` cannot change: the binding is made again.
        registry
            .delete(&resource, "", &name, None, &options)
            .await?;
        registry.create(&resource, "", expected, &options).await?;
        return Ok(());
    }
    registry
        .update_with(&resource, "", &name, &options, |current| {
            Ok(reconciled(which, current, &expected))
        })
        .await?;
    Ok(())
}

/// Reconciles the bootstrap policy, then brings the aggregated ClusterRoles up to date.
pub(crate) async fn reconcile(registry: &Registry) -> Result<(), ApiError> {
    for role in cluster_roles() {
        reconcile_one(registry, Which::ClusterRole, role).await?;
    }
    for binding in cluster_role_bindings() {
        reconcile_one(registry, Which::ClusterRoleBinding, binding).await?;
    }
    // A few rounds: an aggregated role may select another one (`edit` selects `view`).
    for _ in 0..8 {
        let listed = registry
            .list(
                &Which::ClusterRole.resource(),
                None,
                &ListOptions::default(),
            )
            .await?;
        let roles: BTreeMap<String, Arc<ClusterRole>> = listed
            .items
            .iter()
            .map(|o| {
                (
                    registry::object::name(o).to_string(),
                    Arc::new(ClusterRole::from_object(o)),
                )
            })
            .collect();
        let changes = aggregate::plan(&roles);
        if changes.is_empty() {
            break;
        }
        for (name, rules) in changes {
            aggregate::write(registry, &name, &rules).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bootstrap_creates_then_tops_up_and_respects_autoupdate_false() {
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        reconcile(&registry).await.unwrap();
        let resource = Which::ClusterRole.resource();
        let get = |name: &'static str| {
            let registry = registry.clone();
            let resource = resource.clone();
            async move { registry.get(&resource, "", name).await.unwrap() }
        };
        let admin = get("admin").await;
        let admin_rules = rules_of(&admin);
        // admin holds the base rules of edit and view through aggregation.
        for wanted in ["roles", "secrets", "configmaps", "namespaces"] {
            assert!(
                admin_rules
                    .iter()
                    .any(|r| r.resources.iter().any(|x| x == wanted)),
                "{wanted}"
            );
        }
        assert!(
            !rules_of(&get("view").await)
                .iter()
                .any(|r| r.resources.iter().any(|x| x == "secrets"))
        );
        // A rule removed from a bootstrap role comes back; an opted-out role is left alone.
        let options = WriteOptions::default();
        for (name, autoupdate) in [
            ("system:discovery", "true"),
            ("system:public-info-viewer", "false"),
        ] {
            registry
                .update_with(&resource, "", name, &options, |current| {
                    let mut next = current.clone();
                    next["rules"] = json!([]);
                    next["metadata"]["annotations"][AUTOUPDATE] = autoupdate.into();
                    registry::object::meta_mut(&mut next).remove("resourceVersion");
                    Ok(next)
                })
                .await
                .unwrap();
        }
        reconcile(&registry).await.unwrap();
        assert_eq!(rules_of(&get("system:discovery").await).len(), 1);
        assert!(rules_of(&get("system:public-info-viewer").await).is_empty());
    }
}
