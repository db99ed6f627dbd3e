//! Policy rules: what one allows (kube-apiserver's `RuleAllows`: verbs, API groups, resources
//! with `*`, `resource/subresource` and `*/subresource`, resource names, non-resource URLs with
//! a trailing `*`), whether some rules cover others (the escalation check's `Covers`, on rules
//! broken down to one verb, group, resource and name each), and their compact form in messages.

use registry::object::strings;
use serde_json::{Map, Value};

use crate::auth::Attributes;

/// `*`: every verb, API group, resource or path.
pub(crate) const ALL: &str = "*";

/// A `rbac.authorization.k8s.io/v1` PolicyRule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PolicyRule {
    /// `get`, `list`, ... or `*`.
    pub(crate) verbs: Vec<String>,
    /// API groups (`""` for core) or `*`.
    pub(crate) api_groups: Vec<String>,
    /// Resources (`configmaps`, `devices/status`, `*/scale`, `*`).
    pub(crate) resources: Vec<String>,
    /// Object names; empty for every object.
    pub(crate) resource_names: Vec<String>,
    /// Non-resource paths (`/healthz`, `/apis/*`, `*`).
    pub(crate) non_resource_urls: Vec<String>,
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

impl PolicyRule {
    /// A rule from its JSON form (missing lists are empty).
    pub(crate) fn from_json(rule: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(&rule["verbs"]),
            api_groups: strings(&rule["apiGroups"]),
            resources: strings(&rule["resources"]),
            resource_names: strings(&rule["resourceNames"]),
            non_resource_urls: strings(&rule["nonResourceURLs"]),
        }
    }

    /// The JSON form (empty lists left out, `verbs` always there).
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (field, values) in [
            ("apiGroups", &self.api_groups),
            ("nonResourceURLs", &self.non_resource_urls),
            ("resourceNames", &self.resource_names),
            ("resources", &self.resources),
        ] {
            if !values.is_empty() {
                map.insert(field.into(), values.clone().into());
            }
        }
        map.insert("verbs".into(), self.verbs.clone().into());
        Value::Object(map)
    }

    /// A rule of `verbs` on `resources` in `groups`.
    pub(crate) fn resource(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        let own = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: own(verbs),
            api_groups: own(groups),
            resources: own(resources),
            ..PolicyRule::default()
        }
    }

    /// A rule of `verbs` on non-resource `paths`.
    pub(crate) fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
        let own = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: own(verbs),
            non_resource_urls: own(paths),
            ..PolicyRule::default()
        }
    }

    /// Whether the rule allows the request.
    pub(crate) fn allows(&self, request: &Attributes) -> bool {
        if !(has(&self.verbs, ALL) || has(&self.verbs, &request.verb)) {
            return false;
        }
        if !request.resource_request {
            return self.non_resource_urls.iter().any(|url| {
                url == ALL
                    || *url == request.path
                    || url.strip_suffix('*').is_some_and(|prefix| {
                        request.path.starts_with(prefix.trim_end_matches('*'))
                    })
            });
        }
        let group = has(&self.api_groups, ALL) || has(&self.api_groups, &request.group);
        group
            && self.resource_matches(&request.resource, &request.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, &request.name))
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|rule| {
            if rule == ALL {
                return true;
            }
            if subresource.is_empty() {
                return rule == resource;
            }
            match rule.split_once('/') {
                Some((r, s)) => (r == resource || r == ALL) && s == subresource,
                None => false,
            }
        })
    }

    /// kube's `CompactString`: `{APIGroups:["a"], Resources:["b"], Verbs:["get"]}`.
    pub(crate) fn compact(&self) -> String {
        let mut parts = Vec::new();
        for (label, values) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !values.is_empty() {
                parts.push(format!("{label}:{}", go_strings(values)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// The rule as rules of one verb, group, resource and name (or one verb and path) each.
    fn breakdown(&self) -> Vec<PolicyRule> {
        let mut atoms = Vec::new();
        let one = |s: &String| vec![s.clone()];
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let base = PolicyRule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        ..PolicyRule::default()
                    };
                    if self.resource_names.is_empty() {
                        atoms.push(base);
                    } else {
                        for name in &self.resource_names {
                            atoms.push(PolicyRule {
                                resource_names: one(name),
                                ..base.clone()
                            });
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                atoms.push(PolicyRule {
                    verbs: one(verb),
                    non_resource_urls: one(url),
                    ..PolicyRule::default()
                });
            }
        }
        atoms
    }
}

/// Go's `%q` of a string.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(crate) fn go_strings(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[{}]", quoted.join(" "))
}

fn resource_covers_all(owned: &[String], requested: &[String]) -> bool {
    if has(owned, ALL) || has_all(owned, requested) {
        return true;
    }
    requested.iter().all(|path| {
        has(owned, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owned, &format!("*/{sub}")))
    })
}

fn url_covers(owner: &str, path: &str) -> bool {
    owner == path
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = sub
        .non_resource_urls
        .iter()
        .all(|path| owner.non_resource_urls.iter().any(|o| url_covers(o, path)));
    let names = owner.resource_names.is_empty()
        || (!sub.resource_names.is_empty() && has_all(&owner.resource_names, &sub.resource_names));
    verbs && groups && resources && urls && names
}

/// Whether `owned` covers every rule of `requested` (kube's `Covers`), and the atomic rules it
/// does not cover.
pub(crate) fn covers(owned: &[PolicyRule], requested: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let mut missing = Vec::new();
    for rule in requested {
        for atom in rule.breakdown() {
            if !owned.iter().any(|o| rule_covers(o, &atom)) {
                missing.push(atom);
            }
        }
    }
    (missing.is_empty(), missing)
}

/// kube's `CompactRules`: rules of one group, one resource, at most one name and nothing else
/// that differ only by verb, merged into one (verbs in order of appearance).
pub(crate) fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut compacted: Vec<PolicyRule> = Vec::with_capacity(rules.len());
    let simple = |rule: &PolicyRule| {
        rule.api_groups.len() == 1
            && rule.resources.len() == 1
            && rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
    };
    for rule in rules {
        if simple(&rule)
            && let Some(existing) = compacted.iter_mut().find(|c| {
                simple(c)
                    && c.api_groups == rule.api_groups
                    && c.resources == rule.resources
                    && c.resource_names == rule.resource_names
            })
        {
            for verb in rule.verbs {
                if !existing.verbs.contains(&verb) {
                    existing.verbs.push(verb);
                }
            }
            continue;
        }
        compacted.push(rule);
    }
    compacted
}

/// The `rules` of a Role or ClusterRole.
pub(crate) fn rules_of(object: &Value) -> Vec<PolicyRule> {
    object["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(PolicyRule::from_json)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(value: Value) -> PolicyRule {
        PolicyRule::from_json(&value)
    }

    fn request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ns".into(),
            name: name.into(),
            path: String::new(),
        }
    }

    fn path(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn rules_match_as_kube_s_rule_allows() {
        // (rule, request, allowed)
        let cases = [
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}),
                request("get", "", "configmaps", "", "a"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}),
                request("list", "", "configmaps", "", ""),
                false,
            ),
            (
                json!({"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}),
                request("deletecollection", "", "configmaps", "", ""),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["devices"]}),
                request("get", "eve.lfedge.org", "devices", "", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["devices"]}),
                request("get", "eve.lfedge.org", "devices", "", "d"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}),
                request("get", "", "secrets", "", "s"),
                true,
            ),
            // `*` covers subresources; a plain resource does not.
            (
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["*"]}),
                request("get", "x", "devices", "status", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices"]}),
                request("get", "x", "devices", "status", "d"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices/status"]}),
                request("get", "x", "devices", "status", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices/status"]}),
                request("get", "x", "devices", "", "d"),
                false,
            ),
            (
                json!({"verbs": ["update"], "apiGroups": ["x"], "resources": ["*/scale"]}),
                request("update", "x", "deployments", "scale", "d"),
                true,
            ),
            (
                json!({"verbs": ["update"], "apiGroups": ["x"], "resources": ["*/scale"]}),
                request("update", "x", "deployments", "status", "d"),
                false,
            ),
            (
                json!({"verbs": ["update"], "apiGroups": ["x"], "resources": ["*/scale"]}),
                request("update", "x", "deployments", "", "d"),
                false,
            ),
            // Names restrict; a collection request has none.
            (
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices"], "resourceNames": ["a", "b"]}),
                request("get", "x", "devices", "", "b"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices"], "resourceNames": ["a"]}),
                request("get", "x", "devices", "", "c"),
                false,
            ),
            (
                json!({"verbs": ["list"], "apiGroups": ["x"], "resources": ["devices"], "resourceNames": ["a"]}),
                request("list", "x", "devices", "", ""),
                false,
            ),
            // Non-resource rules never match resources, and the other way round.
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["*"]}),
                request("get", "", "configmaps", "", ""),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]}),
                path("get", "/healthz"),
                false,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
                path("get", "/healthz"),
                true,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
                path("get", "/healthz/etcd"),
                false,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
                path("get", "/apis/eve.lfedge.org"),
                true,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
                path("get", "/apis"),
                false,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["*"]}),
                path("get", "/anything"),
                true,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/version"]}),
                path("post", "/version"),
                false,
            ),
        ];
        for (i, (rule_json, attributes, allowed)) in cases.into_iter().enumerate() {
            assert_eq!(
                rule(rule_json.clone()).allows(&attributes),
                allowed,
                "case {i}: {rule_json} {attributes:?}"
            );
        }
    }

    #[test]
    fn covering_is_kube_s() {
        let owned = vec![
            rule(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]})),
            rule(json!({"verbs": ["*"], "apiGroups": ["x"], "resources": ["*/scale"]})),
            rule(
                json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices"], "resourceNames": ["a"]}),
            ),
            rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]})),
        ];
        let check = |requested: Value| covers(&owned, &[rule(requested)]);
        assert!(check(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]})).0);
        assert!(
            check(
                json!({"verbs": ["update"], "apiGroups": ["x"], "resources": ["deployments/scale"]})
            )
            .0
        );
        assert!(check(json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices"], "resourceNames": ["a"]})).0);
        assert!(check(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/x/v1"]})).0);
        // A name-restricted grant does not cover every name.
        assert!(!check(json!({"verbs": ["get"], "apiGroups": ["x"], "resources": ["devices"]})).0);
        let (ok, missing) = check(
            json!({"verbs": ["get", "delete"], "apiGroups": ["", "x"], "resources": ["configmaps"]}),
        );
        assert!(!ok);
        let missing: Vec<String> = compact_rules(missing)
            .iter()
            .map(PolicyRule::compact)
            .collect();
        assert_eq!(
            missing,
            [
                r#"{APIGroups:[""], Resources:["configmaps"], Verbs:["delete"]}"#,
                r#"{APIGroups:["x"], Resources:["configmaps"], Verbs:["get" "delete"]}"#,
            ]
        );
        let all = vec![rule(
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
        )];
        assert!(covers(&all, &owned[..3]).0);
        assert!(!covers(&all, &owned[3..]).0);
    }

    #[test]
    fn json_round_trips() {
        let value = json!({"apiGroups": ["x"], "resourceNames": ["a"], "resources": ["devices"], "verbs": ["get"]});
        assert_eq!(rule(value.clone()).to_json(), value);
        assert_eq!(go_quote("a\"b"), r#""a\"b""#);
        assert_eq!(
            go_strings(&["g".into(), "system:authenticated".into()]),
            r#"["g" "system:authenticated"]"#
        );
    }
}
