//! The rules of the RBAC kinds: kube-apiserver's defaults (the API group of `roleRef` and of
//! User and Group subjects) and validation (rules need verbs, and resources with API groups or
//! non-resource URLs, the latter only in ClusterRoles; aggregation selectors; `roleRef`
//! immutable, of kind Role or ClusterRole; subjects User, Group or ServiceAccount with their
//! API group rules; names path segments).

use apimachinery::FieldError;
use apimachinery::meta::NameRule;
use apimachinery::validation::is_dns1123_subdomain;
use registry::Strategy;
use serde_json::Value;

use super::kinds::{GROUP, Which};
use super::selector::LabelSelector;
use crate::native::str_at;

/// The rules of Roles and ClusterRoles.
pub(crate) struct RoleStrategy {
    which: Which,
}

impl RoleStrategy {
    /// The strategy of Roles or ClusterRoles.
    pub(crate) fn new(which: Which) -> RoleStrategy {
        RoleStrategy { which }
    }
}

impl Strategy for RoleStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let namespaced = self.which == Which::Role;
        let mut errors = Vec::new();
        for (i, rule) in object["rules"].as_array().into_iter().flatten().enumerate() {
            errors.extend(validate_rule(rule, namespaced, &format!("rules[{i}]")));
        }
        if self.which == Which::ClusterRole
            && let Some(aggregation) = object.get("aggregationRule").filter(|a| !a.is_null())
        {
            let selectors = aggregation["clusterRoleSelectors"].as_array();
            if selectors.is_none_or(Vec::is_empty) {
                errors.push(FieldError::required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, selector) in selectors.into_iter().flatten().enumerate() {
                let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
                if let Err(more) = LabelSelector::parse(selector, &path) {
                    errors.extend(more);
                }
            }
        }
        errors
    }
}

fn list(rule: &Value, field: &str) -> Vec<String> {
    rule[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// kube's `ValidatePolicyRule`.
fn validate_rule(rule: &Value, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if list(rule, "verbs").is_empty() {
        errors.push(FieldError::required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = list(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let shown = urls.join(", ");
        if namespaced {
            errors.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                &shown,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|f| !list(rule, f).is_empty())
        {
            errors.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                &shown,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errors;
    }
    if list(rule, "apiGroups").is_empty() {
        errors.push(FieldError::required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if list(rule, "resources").is_empty() {
        errors.push(FieldError::required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errors
}

/// The rules of RoleBindings and ClusterRoleBindings.
pub(crate) struct BindingStrategy {
    which: Which,
}

impl BindingStrategy {
    /// The strategy of RoleBindings or ClusterRoleBindings.
    pub(crate) fn new(which: Which) -> BindingStrategy {
        BindingStrategy { which }
    }
}

/// kube's v1 defaults: the RBAC group for `roleRef` and for User and Group subjects.
fn default_binding(object: &mut Value) {
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut)
        && role_ref
            .get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        role_ref.insert("apiGroup".into(), GROUP.into());
    }
    for subject in object["subjects"].as_array_mut().into_iter().flatten() {
        let kind = subject["kind"].as_str().unwrap_or("");
        let group = subject["apiGroup"].as_str().unwrap_or("");
        if group.is_empty()
            && matches!(kind, "User" | "Group")
            && let Some(map) = subject.as_object_mut()
        {
            map.insert("apiGroup".into(), GROUP.into());
        }
    }
}

impl Strategy for BindingStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn prepare_for_create(&self, object: &mut Value) {
        default_binding(object);
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        default_binding(new);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let namespaced = self.which == Which::RoleBinding;
        let mut errors = Vec::new();
        let role_ref = &object["roleRef"];
        let group = role_ref["apiGroup"].as_str().unwrap_or("");
        if group != GROUP {
            errors.push(FieldError::not_supported(
                "roleRef.apiGroup",
                group,
                &[GROUP],
            ));
        }
        let kind = role_ref["kind"].as_str().unwrap_or("");
        let kinds: &[&str] = if namespaced {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        if !kinds.contains(&kind) {
            errors.push(FieldError::not_supported("roleRef.kind", kind, kinds));
        }
        let name = role_ref["name"].as_str().unwrap_or("");
        if name.is_empty() {
            errors.push(FieldError::required("roleRef.name", ""));
        } else {
            for message in NameRule::PathSegment.check(name, false) {
                errors.push(FieldError::invalid("roleRef.name", name, message));
            }
        }
        let subjects = object["subjects"].as_array();
        for (i, subject) in subjects.into_iter().flatten().enumerate() {
            errors.extend(validate_subject(
                subject,
                namespaced,
                &format!("subjects[{i}]"),
            ));
        }
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let role_ref = |o: &Value| {
            ["apiGroup", "kind", "name"].map(|f| o["roleRef"][f].as_str().unwrap_or("").to_string())
        };
        if role_ref(new) == role_ref(old) {
            return Vec::new();
        }
        let [_, kind, name] = role_ref(new);
        vec![FieldError::invalid(
            "roleRef",
            format!("{kind}/{name}"),
            "cannot change roleRef",
        )]
    }
}

/// kube's `ValidateRoleBindingSubject`.
fn validate_subject(subject: &Value, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = subject["name"].as_str().unwrap_or("");
    let group = subject["apiGroup"].as_str().unwrap_or("");
    if name.is_empty() {
        errors.push(FieldError::required(format!("{path}.name"), ""));
    }
    match subject["kind"].as_str().unwrap_or("") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for message in is_dns1123_subdomain(name) {
                    errors.push(FieldError::invalid(format!("{path}.name"), name, message));
                }
            }
            if !group.is_empty() {
                errors.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    group,
                    &[""],
                ));
            }
            if !namespaced && str_at(subject, &["namespace"]).is_empty() {
                errors.push(FieldError::required(format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errors.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    group,
                    &[GROUP],
                ));
            }
        }
        other => errors.push(FieldError::not_supported(
            format!("{path}.kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn causes(which: Which, object: Value) -> Vec<String> {
        let mut object = object;
        which.strategy().prepare_for_create(&mut object);
        which
            .strategy()
            .validate(&object)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn rules_are_validated_as_kube_does() {
        assert!(causes(Which::Role, json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]})).is_empty());
        assert_eq!(
            causes(
                Which::Role,
                json!({"rules": [{"apiGroups": [""]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]})
            ),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
                "rules[1].nonResourceURLs: Invalid value: \"/healthz\": namespaced rules cannot apply to non-resource URLs",
            ]
        );
        assert_eq!(
            causes(
                Which::ClusterRole,
                json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["x"]}], "aggregationRule": {}})
            ),
            [
                "rules[0].nonResourceURLs: Invalid value: \"/healthz\": rules cannot apply to both regular resources and non-resource URLs",
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil",
            ]
        );
    }

    #[test]
    fn bindings_are_defaulted_and_validated_as_kube_does() {
        let mut binding = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]});
        Which::RoleBinding
            .strategy()
            .prepare_for_create(&mut binding);
        assert_eq!(binding["roleRef"]["apiGroup"], GROUP);
        assert_eq!(binding["subjects"][0]["apiGroup"], GROUP);
        assert!(binding["subjects"][1].get("apiGroup").is_none());
        assert!(causes(Which::RoleBinding, binding.clone()).is_empty());
        assert_eq!(
            causes(Which::ClusterRoleBinding, binding.clone()),
            ["subjects[1].namespace: Required value"]
        );
        assert_eq!(
            causes(
                Which::ClusterRoleBinding,
                json!({"roleRef": {"apiGroup": "x", "kind": "Role", "name": "a/b"}, "subjects": [{"kind": "Robot", "name": "r"}, {"kind": "Group", "apiGroup": "other", "name": ""}]})
            ),
            [
                "roleRef.apiGroup: Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Invalid value: \"a/b\": may not contain '/'",
                "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                "subjects[1].name: Required value",
                "subjects[1].apiGroup: Unsupported value: \"other\": supported values: \"rbac.authorization.k8s.io\"",
            ]
        );
        let changed =
            json!({"roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "edit"}});
        let errors = Which::RoleBinding
            .strategy()
            .validate_update(&changed, &binding);
        assert_eq!(
            errors[0].to_string(),
            "roleRef: Invalid value: \"ClusterRole/edit\": cannot change roleRef"
        );
    }
}
