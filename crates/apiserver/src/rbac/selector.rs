//! The label selectors of `aggregationRule.clusterRoleSelectors` (`metav1.LabelSelector`:
//! `matchLabels` and `matchExpressions`), checked as kube-apiserver's `ValidateLabelSelector`
//! checks them, and matched against a ClusterRole's labels.

use serde_json::Value;

pub(crate) use crate::selector::LabelSelector;

/// The selectors of a ClusterRole's `aggregationRule` (`None` without one); an invalid
/// selector selects nothing.
pub(crate) fn aggregation_selectors(role: &Value) -> Option<Vec<LabelSelector>> {
    let rule = role.get("aggregationRule").filter(|r| !r.is_null())?;
    Some(
        rule["clusterRoleSelectors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| LabelSelector::parse(s, "").ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_labels() {
        let labels: BTreeMap<String, String> = [
            (
                "rbac.authorization.k8s.io/aggregate-to-view".to_string(),
                "true".to_string(),
            ),
            ("tier".to_string(), "a".to_string()),
        ]
        .into();
        let selector = |value: Value| LabelSelector::parse(&value, "s").unwrap();
        assert!(
            selector(
                json!({"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}})
            )
            .matches(&labels)
        );
        assert!(
            !selector(
                json!({"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}})
            )
            .matches(&labels)
        );
        assert!(selector(json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]})).matches(&labels));
        assert!(
            !selector(json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}))
                .matches(&labels)
        );
        assert!(selector(json!({})).matches(&labels));
        let errors = LabelSelector::parse(
            &json!({"matchExpressions": [{"key": "tier", "operator": "In"}]}),
            "aggregationRule.clusterRoleSelectors[0]",
        )
        .unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert_eq!(aggregation_selectors(&json!({"rules": []})), None);
        assert_eq!(
            aggregation_selectors(&json!({"aggregationRule": {"clusterRoleSelectors": [{}]}}))
                .map(|s| s.len()),
            Some(1)
        );
    }
}
