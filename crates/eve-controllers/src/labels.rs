//! Label selectors of the `LabelSelector` shape (matchLabels and matchExpressions), read and
//! matched by kube's [`Selector`]. A selector kube cannot read (an unknown operator, `In` or
//! `NotIn` without values) selects nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

/// kube's form of `selector`, `None` when it is not one.
fn read(selector: &LabelSelector) -> Option<Selector> {
    Selector::try_from(selector.clone()).ok()
}

/// Whether a selector selects nothing in particular (no labels, no expressions).
pub fn is_empty(selector: &LabelSelector) -> bool {
    read(selector).is_some_and(|s| s.selects_all())
}

/// Whether `labels` are selected.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    read(selector).is_some_and(|s| s.matches(labels))
}

/// The selector in the string form of `kubectl get -l` (for the scale subresource); empty for
/// one kube cannot read.
pub fn to_string(selector: &LabelSelector) -> String {
    read(selector).map(|s| s.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn selector(json: serde_json::Value) -> LabelSelector {
        serde_json::from_value(json).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_print_and_refuse_as_kube_reads_them() {
        let s = selector(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "site", "operator": "Exists"},
                {"key": "old", "operator": "DoesNotExist"},
            ],
        }));
        expect!["app=web,tier in (edge,front),zone notin (x),site,!old"].assert_eq(&to_string(&s));
        assert!(!is_empty(&s));
        assert!(matches(
            &s,
            &labels(&[("app", "web"), ("tier", "edge"), ("site", "lab")])
        ));
        assert!(!matches(
            &s,
            &labels(&[
                ("app", "web"),
                ("tier", "edge"),
                ("site", "lab"),
                ("old", "1")
            ])
        ));
        assert!(!matches(&s, &labels(&[("app", "web"), ("tier", "back")])));
        assert!(is_empty(&LabelSelector::default()));
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        for unreadable in [
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "NotIn"}]}),
        ] {
            let s = selector(unreadable);
            assert!(!is_empty(&s) && !matches(&s, &labels(&[])) && to_string(&s).is_empty());
        }
    }
}
