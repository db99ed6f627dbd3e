//! `metav1.LabelSelector` (`matchLabels` and `matchExpressions`), checked as kube-apiserver's
//! `ValidateLabelSelector` checks it and matched against labels: webhooks' namespace and object
//! selectors, ClusterRoles' aggregation rules.

use std::collections::BTreeMap;

use apimachinery::FieldError;
use apimachinery::labels::{Operator, Requirement};
use apimachinery::meta::validate_labels;
use apimachinery::validation::{is_qualified_name, is_valid_label_value};
use registry::object::strings;
use serde_json::Value;

/// A `metav1.LabelSelector` (`matchLabels` and `matchExpressions`); empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses and checks a selector as kube-apiserver's `ValidateLabelSelector` does, with
    /// field paths under `path`. `null` is the empty selector.
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
        let expressions = selector["matchExpressions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, expression) in expressions.iter().enumerate() {
            let at = format!("{path}.matchExpressions[{i}]");
            let key = expression["key"].as_str().unwrap_or("");
            let values = strings(&expression["values"]);
            let operator = expression["operator"].as_str().unwrap_or("");
            let operator = match operator {
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

    /// Whether it selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(|k| labels.get(k).map(String::as_str)))
    }
}
