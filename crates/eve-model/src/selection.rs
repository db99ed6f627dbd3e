//! Which devices an object may be on: node selectors and node affinity over Device labels, as
//! the Kubernetes scheduler reads them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm};

/// What selection sees of a device.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The Device's name.
    pub name: &'a str,
    /// The Device's labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// Whether every label of `selector` is on the device.
pub fn matches_selector(selector: &BTreeMap<String, String>, target: Target<'_>) -> bool {
    selector
        .iter()
        .all(|(k, v)| target.labels.get(k).is_some_and(|have| have == v))
}

/// Whether the device meets the required terms of `affinity` (any term; all of a term's
/// requirements). No required terms: every device.
pub fn matches_affinity(affinity: Option<&NodeAffinity>, target: Target<'_>) -> bool {
    let Some(required) = affinity.and_then(|a| {
        a.required_during_scheduling_ignored_during_execution
            .as_ref()
    }) else {
        return true;
    };
    required
        .node_selector_terms
        .iter()
        .any(|term| matches_term(term, target))
}

/// The sum of the weights of the preferred terms the device meets.
pub fn preference(affinity: Option<&NodeAffinity>, target: Target<'_>) -> i64 {
    affinity
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|p| matches_term(&p.preference, target))
        .map(|p| i64::from(p.weight))
        .sum()
}

fn matches_term(term: &NodeSelectorTerm, target: Target<'_>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false; // an empty term matches nothing, as in Kubernetes
    }
    expressions
        .iter()
        .all(|r| requirement(r, target.labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(target.name);
            requirement(r, value)
        })
}

fn requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |v: &str| v.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

/// What is wrong with a node affinity, as (field path below it, message) pairs; Kubernetes'
/// rules for node selector requirements.
pub fn affinity_errors(affinity: &NodeAffinity, path: &str) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut term_errors = |term: &NodeSelectorTerm, path: String| {
        for (list, items, fields) in [
            ("matchExpressions", term.match_expressions.as_deref(), false),
            ("matchFields", term.match_fields.as_deref(), true),
        ] {
            for (i, r) in items.unwrap_or_default().iter().enumerate() {
                let at = format!("{path}.{list}[{i}]");
                let n = r.values.as_deref().map_or(0, <[String]>::len);
                match r.operator.as_str() {
                    "In" | "NotIn" if n == 0 => errors.push((
                        format!("{at}.values"),
                        "Required value: must be specified when `operator` is 'In' or 'NotIn'"
                            .into(),
                    )),
                    "Exists" | "DoesNotExist" if n > 0 => errors.push((
                        format!("{at}.values"),
                        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                            .into(),
                    )),
                    "Gt" | "Lt"
                        if n != 1 || r.values.as_ref().is_some_and(|v| v[0].parse::<i64>().is_err()) =>
                    {
                        errors.push((
                            format!("{at}.values"),
                            "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"
                                .into(),
                        ))
                    }
                    "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                    other => errors.push((
                        format!("{at}.operator"),
                        format!(
                            "Unsupported value: \"{other}\": supported values: \"DoesNotExist\", \"Exists\", \"Gt\", \"In\", \"Lt\", \"NotIn\""
                        ),
                    )),
                }
                if fields && r.key != "metadata.name" {
                    errors.push((
                        format!("{at}.key"),
                        format!("Invalid value: \"{}\": not a valid field selector key; supported: \"metadata.name\"", r.key),
                    ));
                }
            }
        }
    };
    if let Some(required) = &affinity.required_during_scheduling_ignored_during_execution {
        let at = format!("{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
        for (i, term) in required.node_selector_terms.iter().enumerate() {
            term_errors(term, format!("{at}[{i}]"));
        }
    }
    for (i, preferred) in affinity
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .enumerate()
    {
        term_errors(
            &preferred.preference,
            format!("{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}].preference"),
        );
    }
    errors
}
