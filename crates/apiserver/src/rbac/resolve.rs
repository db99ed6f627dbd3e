//! Decisions over the cache, as kube-apiserver's RBAC authorizer makes them: the bindings that
//! apply to a user (ClusterRoleBindings everywhere, RoleBindings in their namespace, found
//! through the subject index), their roles' rules, the first rule that allows the request and
//! the binding that granted it; the rules a user holds in a namespace.

use std::sync::Arc;

use super::cache::{Binding, State, Subject};
use super::kinds::GROUP;
use super::rules::PolicyRule;
use crate::auth::{Attributes, User};

/// The group whose members may do anything.
pub(crate) const MASTERS: &str = "system:masters";

/// What the authorizer decided, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Whether the request is allowed.
    pub(crate) allowed: bool,
    /// The binding that allowed it, or the errors met while looking (kube's reason).
    pub(crate) reason: String,
}

/// Whether the user is a member of `system:masters`.
pub(crate) fn is_master(user: &User) -> bool {
    user.groups.iter().any(|g| g == MASTERS)
}

fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let namespace = match subject.namespace.as_str() {
                "" => binding_namespace,
                ns => ns,
            };
            format!("ServiceAccount \"{}/{namespace}\"", subject.name)
        }
        kind => format!("{kind} \"{}\"", subject.name),
    }
}

fn describe(binding: &Binding, user: &User) -> String {
    let subject = binding
        .subjects
        .iter()
        .find(|s| match binding.subject_key(s) {
            Some((true, name)) => name == user.name,
            Some((false, group)) => user.groups.contains(&group),
            None => false,
        })
        .map(|s| describe_subject(s, &binding.namespace))
        .unwrap_or_default();
    if binding.namespace.is_empty() {
        format!(
            "ClusterRoleBinding \"{}\" of {} \"{}\" to {subject}",
            binding.name, binding.role_kind, binding.role_name
        )
    } else {
        format!(
            "RoleBinding \"{}/{}\" of {} \"{}\" to {subject}",
            binding.name, binding.namespace, binding.role_kind, binding.role_name
        )
    }
}

impl State {
    /// The bindings that apply to `user` in `namespace` (ClusterRoleBindings first, then the
    /// namespace's RoleBindings, each by name).
    pub(crate) fn bindings_for(&self, user: &User, namespace: &str) -> Vec<&Arc<Binding>> {
        let mut found: Vec<&Arc<Binding>> = Vec::new();
        let indexed = std::iter::once(self.by_user.get(&user.name))
            .chain(user.groups.iter().map(|g| self.by_group.get(g)))
            .flatten();
        for by_namespace in indexed {
            let here = (!namespace.is_empty()).then(|| by_namespace.get(namespace));
            for names in [by_namespace.get("")].into_iter().chain(here).flatten() {
                found.extend(names.values());
            }
        }
        found.sort_unstable_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        found.dedup_by(|a, b| Arc::ptr_eq(a, b));
        found
    }

    /// The rules of a binding's role, or why there are none.
    pub(crate) fn role_rules(&self, binding: &Binding) -> Result<Arc<Vec<PolicyRule>>, String> {
        self.reference_rules(&binding.role_kind, &binding.role_name, &binding.namespace)
    }

    /// The rules of the role a `roleRef` names (a Role in `namespace`, or a ClusterRole).
    pub(crate) fn reference_rules(
        &self,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Result<Arc<Vec<PolicyRule>>, String> {
        let found = match kind {
            "ClusterRole" => self.cluster_roles.get(name).map(|r| r.rules.clone()),
            "Role" if !namespace.is_empty() => self
                .roles
                .get(&(namespace.to_string(), name.to_string()))
                .cloned(),
            _ => return Err(format!("unsupported role reference kind: {kind:?}")),
        };
        found.ok_or_else(|| format!("{}.{GROUP} \"{name}\" not found", kind.to_lowercase()))
    }

    /// Decides a request (`system:masters` aside).
    pub(crate) fn decide(&self, user: &User, request: &Attributes) -> Decision {
        let mut errors = Vec::new();
        for binding in self.bindings_for(user, &request.namespace) {
            match self.role_rules(binding) {
                Ok(rules) => {
                    if rules.iter().any(|rule| rule.allows(request)) {
                        return Decision {
                            allowed: true,
                            reason: format!("RBAC: allowed by {}", describe(binding, user)),
                        };
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        let reason = match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        };
        Decision {
            allowed: false,
            reason,
        }
    }

    /// Every rule `user` holds in `namespace` (cluster-wide ones included), and the errors met.
    pub(crate) fn rules_for(&self, user: &User, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for binding in self.bindings_for(user, namespace) {
            match self.role_rules(binding) {
                Ok(more) => rules.extend(more.iter().cloned()),
                Err(error) => errors.push(error),
            }
        }
        (rules, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::kinds::Which;
    use serde_json::{Value, json};

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        }
    }

    fn request(verb: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Attributes::default()
        }
    }

    fn binding(
        kind: &str,
        namespace: &str,
        name: &str,
        role: (&str, &str),
        subjects: Value,
    ) -> Value {
        json!({"kind": kind, "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": GROUP, "kind": role.0, "name": role.1}, "subjects": subjects})
    }

    fn state() -> State {
        let mut state = State::default();
        let read =
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}]);
        state.put(
            Which::ClusterRole,
            &json!({"metadata": {"name": "reader"}, "rules": read}),
        );
        state.put(Which::Role, &json!({"metadata": {"name": "one", "namespace": "a"}, "rules": [
            {"verbs": ["delete"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"]}]}));
        let group = json!([{"kind": "Group", "name": "readers"}]);
        state.put(
            Which::ClusterRoleBinding,
            &binding(
                "ClusterRoleBinding",
                "",
                "readers",
                ("ClusterRole", "reader"),
                group,
            ),
        );
        state.put(
            Which::RoleBinding,
            &binding(
                "RoleBinding",
                "a",
                "sa",
                ("ClusterRole", "reader"),
                json!([{"kind": "ServiceAccount", "name": "robot"}]),
            ),
        );
        state.put(
            Which::RoleBinding,
            &binding(
                "RoleBinding",
                "a",
                "one",
                ("Role", "one"),
                json!([{"kind": "User", "name": "u"}]),
            ),
        );
        state.put(
            Which::RoleBinding,
            &binding(
                "RoleBinding",
                "b",
                "gone",
                ("ClusterRole", "missing"),
                json!([{"kind": "User", "name": "u"}]),
            ),
        );
        state
    }

    #[test]
    fn decisions_follow_bindings_namespaces_and_names() {
        let state = state();
        let robot = user("system:serviceaccount:a:robot", &["system:serviceaccounts"]);
        let u = user("u", &["system:authenticated"]);
        let reader = user("r", &["readers"]);
        // (user, request, allowed)
        let cases = [
            (&reader, request("list", "configmaps", "", ""), true),
            (&reader, request("get", "configmaps", "z", "c"), true),
            (&reader, request("delete", "configmaps", "z", "c"), false),
            (&robot, request("get", "configmaps", "a", "c"), true),
            (&robot, request("get", "configmaps", "b", "c"), false),
            (&robot, request("list", "configmaps", "", ""), false),
            (&u, request("delete", "configmaps", "a", "x"), true),
            (&u, request("delete", "configmaps", "a", "y"), false),
            (&u, request("delete", "configmaps", "b", "x"), false),
        ];
        for (i, (who, attributes, allowed)) in cases.iter().enumerate() {
            assert_eq!(state.decide(who, attributes).allowed, *allowed, "case {i}");
        }
        assert_eq!(
            state
                .decide(&robot, &request("get", "configmaps", "a", "c"))
                .reason,
            "RBAC: allowed by RoleBinding \"sa/a\" of ClusterRole \"reader\" to ServiceAccount \"robot/a\""
        );
        assert_eq!(
            state
                .decide(&reader, &request("get", "configmaps", "z", "c"))
                .reason,
            "RBAC: allowed by ClusterRoleBinding \"readers\" of ClusterRole \"reader\" to Group \"readers\""
        );
        // A binding to a missing role is the reason of a refusal.
        assert_eq!(
            state
                .decide(&u, &request("get", "configmaps", "b", "c"))
                .reason,
            "RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found"
        );
        let (rules, errors) = state.rules_for(&u, "a");
        assert_eq!(rules.len(), 1);
        assert!(errors.is_empty());
    }
}
