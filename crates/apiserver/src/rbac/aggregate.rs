//! Aggregated ClusterRoles, as kube-controller-manager's `clusterrole-aggregation` controller
//! keeps them: a ClusterRole with an `aggregationRule` has as `rules` the union of the rules of
//! the ClusterRoles its selectors select (by name, each rule once, itself left out). The
//! controller recomputes them on every change of ClusterRoles seen by the cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use registry::{ApiError, Registry, WriteOptions};
use serde_json::Value;
use tokio::sync::watch;

use super::cache::{Cache, ClusterRole};
use super::kinds::Which;
use super::rules::PolicyRule;
use crate::workqueue::backoff;

/// The first retry after a failed aggregation (then 2×, 4×... with each failure in a row) ...
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// ... at most this long.
const RETRY_CAP: Duration = Duration::from_secs(30);

/// The aggregated roles whose rules are not what their selectors make them: (name, rules).
pub(crate) fn plan(roles: &BTreeMap<String, Arc<ClusterRole>>) -> Vec<(String, Vec<PolicyRule>)> {
    let mut changes = Vec::new();
    for (name, role) in roles {
        let Some(selectors) = &role.selectors else {
            continue;
        };
        let mut rules: Vec<PolicyRule> = Vec::new();
        for selector in selectors {
            for (other, selected) in roles {
                if other == name || !selector.matches(&selected.labels) {
                    continue;
                }
                for rule in selected.rules.iter() {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
        }
        if rules != *role.rules {
            changes.push((name.clone(), rules));
        }
    }
    changes
}

/// Writes the `rules` of one aggregated ClusterRole.
pub(crate) async fn write(
    registry: &Registry,
    name: &str,
    rules: &[PolicyRule],
) -> Result<(), ApiError> {
    let rules: Vec<Value> = rules.iter().map(PolicyRule::to_json).collect();
    let result = registry
        .update_with(
            &Which::ClusterRole.resource(),
            "",
            name,
            &WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                next["rules"] = Value::Array(rules.clone());
                registry::object::meta_mut(&mut next).remove("resourceVersion");
                Ok(next)
            },
        )
        .await;
    match result {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps the aggregated ClusterRoles up to date until `shutdown` turns true.
pub(crate) async fn run(
    cache: Arc<Cache>,
    registry: Registry,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = cache.cluster_role_changes();
    let mut failures = 0u32;
    loop {
        changes.borrow_and_update();
        let roles: BTreeMap<String, Arc<ClusterRole>> = cache.read(|state| {
            state
                .cluster_roles
                .iter()
                .map(|(name, role)| (name.clone(), role.clone()))
                .collect()
        });
        let mut failed = false;
        for (name, rules) in plan(&roles) {
            if let Err(e) = write(&registry, &name, &rules).await {
                tracing::warn!(clusterrole = %name, error = %e, "aggregating a ClusterRole failed");
                failed = true;
            }
        }
        failures = if failed { failures + 1 } else { 0 };
        let retry = async {
            if failed {
                tokio::time::sleep(backoff(RETRY_FIRST, failures, RETRY_CAP)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = retry => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(labels: Value, selectors: Option<Value>, rules: Value) -> Arc<ClusterRole> {
        let mut object = json!({"metadata": {"name": "x", "labels": labels}, "rules": rules});
        if let Some(selectors) = selectors {
            object["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
        }
        Arc::new(ClusterRole::from_object(&object))
    }

    #[test]
    fn aggregation_is_the_union_of_the_selected_roles() {
        let get = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]});
        let write = json!({"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"]});
        let devices =
            json!({"verbs": ["get"], "apiGroups": ["eve.lfedge.org"], "resources": ["devices"]});
        let to =
            |what: &str| json!({format!("rbac.authorization.k8s.io/aggregate-to-{what}"): "true"});
        let select = |what: &str| json!([{"matchLabels": to(what)}]);
        let mut roles: BTreeMap<String, Arc<ClusterRole>> = [
            ("edit", role(to("admin"), Some(select("edit")), json!([]))),
            ("view", role(to("edit"), Some(select("view")), json!([]))),
            (
                "system:aggregate-to-view",
                role(to("view"), None, json!([get])),
            ),
            (
                "system:aggregate-to-edit",
                role(to("edit"), None, json!([write])),
            ),
            ("eve-view", role(to("view"), None, json!([devices, get]))),
        ]
        .into_iter()
        .map(|(n, r)| (n.to_string(), r))
        .collect();
        let first = plan(&roles);
        let view: Vec<PolicyRule> = [&devices, &get]
            .iter()
            .map(|r| PolicyRule::from_json(r))
            .collect();
        assert_eq!(
            first,
            [
                ("edit".to_string(), vec![PolicyRule::from_json(&write)]),
                ("view".to_string(), view.clone())
            ]
        );
        // Applied, the next round brings view's rules into edit (view is labelled for edit).
        for (name, rules) in first {
            let old = roles[&name].clone();
            roles.insert(
                name,
                Arc::new(ClusterRole {
                    rules: Arc::new(rules),
                    ..(*old).clone()
                }),
            );
        }
        let second = plan(&roles);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].0, "edit");
        assert_eq!(second[0].1.len(), 3);
    }
}
