//! The `rbac.authorization.k8s.io/v1` kinds: Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding, with their rules ([`super::validation`]), kube's printers (`CREATED AT`;
//! `ROLE`, `AGE`, wide `USERS`, `GROUPS`, `SERVICEACCOUNTS`) and component schemas.

use std::sync::Arc;

use registry::{Resource, Strategy};
use serde_json::{Value, json};

use super::validation::{BindingStrategy, RoleStrategy};
use crate::catalog::{Column, Kind};
use crate::native::{age, kind, native_schema_name, plain, str_at};
use crate::schema::Components;

/// The API group.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

/// One of the four kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Which {
    /// Role (namespaced).
    Role,
    /// ClusterRole.
    ClusterRole,
    /// RoleBinding (namespaced).
    RoleBinding,
    /// ClusterRoleBinding.
    ClusterRoleBinding,
}

impl Which {
    /// The four, in the order the cache lists them.
    pub(crate) const ALL: [Which; 4] = [
        Which::Role,
        Which::ClusterRole,
        Which::RoleBinding,
        Which::ClusterRoleBinding,
    ];

    /// The kind's name.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Which::Role => "Role",
            Which::ClusterRole => "ClusterRole",
            Which::RoleBinding => "RoleBinding",
            Which::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    /// The plural resource.
    pub(crate) fn resource_name(self) -> &'static str {
        match self {
            Which::Role => "roles",
            Which::ClusterRole => "clusterroles",
            Which::RoleBinding => "rolebindings",
            Which::ClusterRoleBinding => "clusterrolebindings",
        }
    }

    /// The kind of a resource of the group.
    pub(crate) fn of_resource(resource: &str) -> Option<Which> {
        Which::ALL
            .into_iter()
            .find(|w| w.resource_name() == resource)
    }

    /// Whether objects live in namespaces.
    pub(crate) fn namespaced(self) -> bool {
        matches!(self, Which::Role | Which::RoleBinding)
    }

    /// The kind's rules.
    pub(crate) fn strategy(self) -> Arc<dyn Strategy> {
        match self {
            Which::Role | Which::ClusterRole => Arc::new(RoleStrategy::new(self)),
            _ => Arc::new(BindingStrategy::new(self)),
        }
    }

    /// The registry resource.
    pub(crate) fn resource(self) -> Resource {
        plain(
            GROUP,
            self.resource_name(),
            self.kind(),
            self.namespaced(),
            self.strategy(),
        )
    }
}

/// The subjects of a binding as kube's wide columns show them: users, groups, service
/// accounts (`namespace/name`).
fn subject_columns(binding: &Value) -> [String; 3] {
    let mut columns: [Vec<String>; 3] = Default::default();
    for subject in binding["subjects"].as_array().into_iter().flatten() {
        let name = str_at(subject, &["name"]).to_string();
        match str_at(subject, &["kind"]) {
            "User" => columns[0].push(name),
            "Group" => columns[1].push(name),
            "ServiceAccount" => {
                columns[2].push(format!("{}/{name}", str_at(subject, &["namespace"])));
            }
            _ => {}
        }
    }
    columns.map(|c| c.join(", "))
}

fn role_cells(role: &Value) -> Vec<Value> {
    vec![role["metadata"]["creationTimestamp"].clone()]
}

fn binding_cells(binding: &Value) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(binding, &["roleRef", "kind"]),
        str_at(binding, &["roleRef", "name"])
    );
    let [users, groups, accounts] = subject_columns(binding);
    vec![
        json!(role),
        age(binding),
        json!(users),
        json!(groups),
        json!(accounts),
    ]
}

/// A printer's cells of one object.
type Cells = fn(&Value) -> Vec<Value>;

/// The four kinds for the catalog, over `components` (which must hold [`add_components`]'s).
pub(crate) fn kinds(components: &Arc<Components>) -> Vec<Kind> {
    let created = || {
        vec![Column::new(
            "Created At",
            "string",
            0,
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        )]
    };
    let bound = || {
        vec![
            Column::new(
                "Role",
                "string",
                0,
                "RoleRef can only reference a Role in the current namespace or a ClusterRole in the global namespace.",
            ),
            Column::new(
                "Age",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
            Column::new("Users", "string", 1, "Users in the roleBinding"),
            Column::new("Groups", "string", 1, "Groups in the roleBinding"),
            Column::new(
                "ServiceAccounts",
                "string",
                1,
                "ServiceAccounts in the roleBinding",
            ),
        ]
    };
    Which::ALL
        .into_iter()
        .map(|which| {
            let (columns, cells): (Vec<Column>, Cells) = match which {
                Which::Role | Which::ClusterRole => (created(), role_cells),
                _ => (bound(), binding_cells),
            };
            kind(
                components,
                GROUP,
                which.resource_name(),
                which.kind(),
                &[],
                which.namespaced(),
                which.strategy(),
                None,
                columns,
                cells,
                &[],
            )
        })
        .collect()
}

/// Adds the component schemas of the RBAC kinds and of the review kinds (from `k8s-openapi`).
pub(crate) fn add_components(components: &mut Components) {
    use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenReview};
    use k8s_openapi::api::authorization::v1::{
        LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview,
        SubjectAccessReview,
    };
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<Role>();
    generator.subschema_for::<ClusterRole>();
    generator.subschema_for::<RoleBinding>();
    generator.subschema_for::<ClusterRoleBinding>();
    generator.subschema_for::<SubjectAccessReview>();
    generator.subschema_for::<SelfSubjectAccessReview>();
    generator.subschema_for::<LocalSubjectAccessReview>();
    generator.subschema_for::<SelfSubjectRulesReview>();
    generator.subschema_for::<SelfSubjectReview>();
    generator.subschema_for::<TokenReview>();
    for (name, schema) in generator.take_definitions(true) {
        components.entry(name).or_insert(schema);
    }
    let kinds = Which::ALL
        .map(|w| (GROUP, w.kind()))
        .into_iter()
        .chain(super::reviews::KINDS.iter().map(|(g, _, k)| (*g, *k)));
    for (group, kind) in kinds {
        let name = native_schema_name(group, "v1", kind);
        if let Some(Value::Object(schema)) = components.get_mut(&name) {
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": "v1", "kind": kind}]),
            );
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_rows_are_kube_s() {
        let binding = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}, {"kind": "Group", "name": "g"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]});
        let cells = binding_cells(&binding);
        assert_eq!(cells[0], "ClusterRole/view");
        assert_eq!(&cells[2..], [json!("a, b"), json!("g"), json!("n/s")]);
    }
}
