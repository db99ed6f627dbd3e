//! The label selectors of `aggregationRule.clusterRoleSelectors` (`metav1.LabelSelector`:
//! `matchLabels` and `matchExpressions`), checked as kube-apiserver's `ValidateLabelSelector`
//! checks them, and matched against a ClusterRole's labels.

use std::collections::BTreeMap;

use apimachinery::FieldError;
use apimachinery::labels::{Operator, Requirement};
use apimachinery::meta::validate_labels;
use apimachinery::validation::{is_qualified_name, is_valid_label_value};
use registry::object::strings;
use serde_json::Value;

/// A parsed `metav1.LabelSelector`; an empty one selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a selector, with the errors of its fields under `path`.
    pub(crate) fn parse(selector: &Value, path: &str) -> Result<LabelSelector, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut requirements = Vec::new();
        let labels: BTreeMap<String, String> = selector["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        errors.extend(validate_labels(&labels, &format!("{path}.matchLabels")));
        for (key, value) in &labels {
            if let Ok(requirement) = Requirement::new(key, Operator::Equals, vec![value.clone()]) {
                requirements.push(requirement);
            }
        }
        let expressions = selector["matchExpressions"].as_array();
        for (i, expression) in expressions.into_iter().flatten().enumerate() {
            let at = format!("{path}.matchExpressions[{i}]");
            let key = expression["key"].as_str().unwrap_or("");
            let values = strings(&expression["values"]);
            let operator = match expression["operator"].as_str().unwrap_or("") {
                "In" | "NotIn" if values.is_empty() => {
                    errors.push(FieldError::required(
                        format!("{at}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                    None
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    errors.push(FieldError::forbidden(
                        format!("{at}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                    None
                }
                "In" => Some(Operator::In),
                "NotIn" => Some(Operator::NotIn),
                "Exists" => Some(Operator::Exists),
                "DoesNotExist" => Some(Operator::DoesNotExist),
                other => {
                    errors.push(FieldError::invalid(
                        format!("{at}.operator"),
                        other,
                        "not a valid selector operator",
                    ));
                    None
                }
            };
            for message in is_qualified_name(key) {
                errors.push(FieldError::invalid(format!("{at}.key"), key, message));
            }
            for (j, value) in values.iter().enumerate() {
                for message in is_valid_label_value(value) {
                    errors.push(FieldError::invalid(
                        format!("{at}.values[{j}]"),
                        value,
                        message,
                    ));
                }
            }
            if let Some(operator) = operator
                && let Ok(requirement) = Requirement::new(key, operator, values)
            {
                requirements.push(requirement);
            }
        }
        if errors.is_empty() {
            Ok(LabelSelector { requirements })
        } else {
            Err(errors)
        }
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(|k| labels.get(k).map(String::as_str)))
    }
}

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
