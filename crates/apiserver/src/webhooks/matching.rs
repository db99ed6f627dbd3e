//! Which requests a webhook sees: its `rules` (operations, groups, versions, resources with
//! `*`, `resource/subresource` and `*/sub`, scope) and its label selectors (`namespaceSelector`,
//! `objectSelector`), with kube-apiserver's semantics (`rules.Matcher`,
//! `metav1.LabelSelector`). Pure: the plug-in gathers the labels.

use std::collections::BTreeMap;

use registry::object::strings;
use serde_json::Value;

/// What a rule looks at in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attributes {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub(crate) operation: String,
    /// The API group ("" for core).
    pub(crate) group: String,
    /// The version.
    pub(crate) version: String,
    /// The plural resource.
    pub(crate) resource: String,
    /// The subresource, or "".
    pub(crate) subresource: String,
    /// The request's namespace ("" for cluster-scoped objects).
    pub(crate) namespace: String,
}

impl Attributes {
    /// Whether the request is about a Namespace itself (cluster-scoped, but namespace rules
    /// treat it specially).
    pub(crate) fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.resource == "namespaces"
    }
}

/// One `rules[]` entry of a webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rule {
    /// Operations (`*` for all).
    pub(crate) operations: Vec<String>,
    /// API groups (`*` for all).
    pub(crate) groups: Vec<String>,
    /// API versions (`*` for all).
    pub(crate) versions: Vec<String>,
    /// Resources: `*`, `name`, `name/sub`, `*/sub`, `name/*`, `*/*`.
    pub(crate) resources: Vec<String>,
    /// `*`, `Cluster` or `Namespaced`.
    pub(crate) scope: String,
}

fn exact_or_wildcard(items: &[String], requested: &str) -> bool {
    items.iter().any(|item| item == "*" || item == requested)
}

impl Rule {
    /// A rule from its JSON (`operations`, `apiGroups`, `apiVersions`, `resources`, `scope`).
    pub(crate) fn from_json(rule: &Value) -> Rule {
        Rule {
            operations: strings(&rule["operations"]),
            groups: strings(&rule["apiGroups"]),
            versions: strings(&rule["apiVersions"]),
            resources: strings(&rule["resources"]),
            scope: rule["scope"].as_str().unwrap_or("*").to_string(),
        }
    }

    /// Whether the rule covers a request.
    pub(crate) fn matches(&self, request: &Attributes) -> bool {
        self.scope_matches(request)
            && exact_or_wildcard(&self.operations, &request.operation)
            && exact_or_wildcard(&self.groups, &request.group)
            && exact_or_wildcard(&self.versions, &request.version)
            && self.resource_matches(request)
    }

    fn scope_matches(&self, request: &Attributes) -> bool {
        match self.scope.as_str() {
            "" | "*" => true,
            // A Namespace is cluster-scoped, whatever namespace its request names.
            "Namespaced" => !request.is_namespace() && !request.namespace.is_empty(),
            "Cluster" => request.is_namespace() || request.namespace.is_empty(),
            _ => false,
        }
    }

    fn resource_matches(&self, request: &Attributes) -> bool {
        self.resources.iter().any(|entry| {
            let (resource, sub) = entry.split_once('/').unwrap_or((entry, ""));
            (resource == "*" || resource == request.resource)
                && (sub == "*" || sub == request.subresource)
        })
    }
}

pub(crate) use crate::selector::LabelSelector;

/// The labels of an object (empty for none, or for `None`).
pub(crate) fn labels_of(object: Option<&Value>) -> BTreeMap<String, String> {
    object
        .and_then(|o| o["metadata"]["labels"].as_object())
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// Whether an `objectSelector` selects a request: the new object's labels or the old one's.
pub(crate) fn object_selected(
    selector: &LabelSelector,
    object: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    selector.is_empty()
        || object.is_some_and(|o| selector.matches(&labels_of(Some(o))))
        || old.is_some_and(|o| selector.matches(&labels_of(Some(o))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attributes(spec: &str) -> Attributes {
        // "OPERATION group/version resource[/sub] [namespace]"
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let (group, version) = parts[1].rsplit_once('/').unwrap_or(("", parts[1]));
        let (resource, subresource) = parts[2].split_once('/').unwrap_or((parts[2], ""));
        Attributes {
            operation: parts[0].into(),
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: parts.get(3).copied().unwrap_or("").into(),
        }
    }

    #[test]
    fn rules_match_as_kube_apiserver_matches_them() {
        let all = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        let configmaps = json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]});
        let status = json!({"operations": ["UPDATE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/status"]});
        let widgets_any_sub = json!({"operations": ["*"], "apiGroups": ["example.com"], "apiVersions": ["*"], "resources": ["widgets/*"]});
        let everything = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]});
        let namespaced = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Namespaced"});
        let cluster = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"});
        let two_ops = json!({"operations": ["CREATE", "DELETE"], "apiGroups": ["", "apps"], "apiVersions": ["v1", "v2"], "resources": ["configmaps", "secrets"]});
        let cases: &[(&Value, &str, bool)] = &[
            (&all, "CREATE /v1 configmaps default", true),
            (&all, "UPDATE example.com/v1 widgets default", true),
            // `*` alone covers no subresource.
            (&all, "UPDATE /v1 configmaps/status default", false),
            (&configmaps, "CREATE /v1 configmaps default", true),
            (&configmaps, "UPDATE /v1 configmaps default", false),
            (&configmaps, "CREATE /v1 secrets default", false),
            (&configmaps, "CREATE /v2 configmaps default", false),
            (&configmaps, "CREATE apps/v1 configmaps default", false),
            (&configmaps, "CREATE /v1 configmaps/status default", false),
            (&status, "UPDATE /v1 namespaces/status", true),
            (
                &status,
                "UPDATE example.com/v1 widgets/status default",
                true,
            ),
            (&status, "UPDATE example.com/v1 widgets default", false),
            (
                &status,
                "UPDATE example.com/v1 widgets/scale default",
                false,
            ),
            (
                &widgets_any_sub,
                "UPDATE example.com/v1 widgets/scale default",
                true,
            ),
            (
                &widgets_any_sub,
                "UPDATE example.com/v1 widgets/status default",
                true,
            ),
            // `widgets/*` is the resource and any of its subresources.
            (
                &widgets_any_sub,
                "CREATE example.com/v1 widgets default",
                true,
            ),
            (
                &widgets_any_sub,
                "CREATE example.com/v1 gadgets default",
                false,
            ),
            (&everything, "CREATE /v1 configmaps default", true),
            (&everything, "UPDATE /v1 namespaces/finalize", true),
            (&namespaced, "CREATE /v1 configmaps default", true),
            (&namespaced, "CREATE /v1 namespaces", false),
            // A Namespace request is cluster-scoped even when it names a namespace.
            (&namespaced, "CREATE /v1 namespaces default", false),
            (
                &namespaced,
                "CREATE storage.k8s.io/v1 storageclasses",
                false,
            ),
            (&cluster, "CREATE /v1 namespaces", true),
            (&cluster, "CREATE /v1 namespaces default", true),
            (&cluster, "CREATE storage.k8s.io/v1 storageclasses", true),
            (&cluster, "CREATE /v1 configmaps default", false),
            (&two_ops, "DELETE apps/v2 secrets default", true),
            (&two_ops, "UPDATE apps/v2 secrets default", false),
            (&two_ops, "CONNECT /v1 configmaps default", false),
        ];
        for (rule, request, expected) in cases {
            let rule = Rule::from_json(rule);
            assert_eq!(
                rule.matches(&attributes(request)),
                *expected,
                "{rule:?} on {request}"
            );
        }
        // An unknown scope matches nothing.
        let odd = Rule {
            scope: "Elsewhere".into(),
            ..Rule::from_json(&all)
        };
        assert!(!odd.matches(&attributes("CREATE /v1 configmaps default")));
    }

    #[test]
    fn selectors_match_labels() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        type Case = (Value, &'static [(&'static str, &'static str)], bool);
        let cases: &[Case] = &[
            (json!(null), &[], true),
            (json!({}), &[("a", "b")], true),
            (
                json!({"matchLabels": {"env": "prod"}}),
                &[("env", "prod")],
                true,
            ),
            (
                json!({"matchLabels": {"env": "prod"}}),
                &[("env", "dev")],
                false,
            ),
            (json!({"matchLabels": {"env": "prod"}}), &[], false),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]}),
                &[("env", "b")],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["a"]}]}),
                &[],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["a"]}]}),
                &[("env", "a")],
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}),
                &[("skip", "")],
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "Exists"}], "matchLabels": {"y": "1"}}),
                &[("x", "0"), ("y", "1")],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "Exists"}], "matchLabels": {"y": "1"}}),
                &[("x", "0")],
                false,
            ),
        ];
        for (selector, given, expected) in cases {
            let parsed = LabelSelector::parse(selector, "s").unwrap();
            assert_eq!(
                parsed.matches(&labels(given)),
                *expected,
                "{selector} on {given:?}"
            );
        }
    }

    #[test]
    fn selectors_are_checked_with_kube_messages() {
        let messages = |selector: Value| -> Vec<String> {
            LabelSelector::parse(&selector, "webhooks[0].namespaceSelector")
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            messages(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            [
                "webhooks[0].namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            ]
        );
        assert_eq!(
            messages(
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
            ),
            [
                "webhooks[0].namespaceSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            ]
        );
        assert_eq!(
            messages(
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
            ),
            [
                "webhooks[0].namespaceSelector.matchExpressions[0].operator: Invalid value: \"Gt\": not a valid selector operator"
            ]
        );
        let bad_key = messages(json!({"matchLabels": {"-bad": "x"}}));
        assert!(
            bad_key[0]
                .starts_with("webhooks[0].namespaceSelector.matchLabels: Invalid value: \"-bad\""),
            "{bad_key:?}"
        );
    }

    #[test]
    fn object_selectors_look_at_both_objects() {
        let selector =
            LabelSelector::parse(&json!({"matchLabels": {"checked": "yes"}}), "s").unwrap();
        let with = json!({"metadata": {"labels": {"checked": "yes"}}});
        let without = json!({"metadata": {}});
        assert!(object_selected(&selector, Some(&with), None));
        assert!(!object_selected(&selector, Some(&without), None));
        assert!(object_selected(&selector, Some(&without), Some(&with)));
        assert!(object_selected(
            &LabelSelector::default(),
            Some(&without),
            None
        ));
        assert!(!object_selected(&selector, None, None));
    }
}
