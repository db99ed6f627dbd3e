//! Escalation prevention, as kube-apiserver's RBAC storage does it, as an admission plug-in
//! (it sees every create and update, patches and applies included): a Role or ClusterRole may
//! only hold rules its writer holds, unless the writer may `escalate` it (an `aggregationRule`
//! needs either `system:masters` or `escalate`); a binding may only grant a role whose rules
//! its writer holds, unless the writer may `bind` that role. `system:masters` may do all of it.
//! Refusals name the rules missing, in kube's words.

use std::sync::Arc;

use registry::ApiError;
use serde_json::Value;

use super::Rbac;
use super::kinds::{GROUP, Which};
use super::resolve::is_master;
use super::rules::{PolicyRule, compact_rules, covers, go_quote, go_strings, rules_of};
use crate::admission::{Operation, Plugin, Request};
use crate::auth::{Attributes, User};

/// The plug-in.
pub(crate) struct Escalation {
    rbac: Arc<Rbac>,
}

impl Escalation {
    /// The plug-in deciding with `rbac`.
    pub(crate) fn new(rbac: Arc<Rbac>) -> Escalation {
        Escalation { rbac }
    }

    fn allowed(
        &self,
        user: &User,
        verb: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let attributes = Attributes {
            verb: verb.into(),
            resource_request: true,
            group: GROUP.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Attributes::default()
        };
        self.rbac.decide(user, &attributes).allowed
    }

    /// kube's `ConfirmNoEscalation`: the user must hold every rule of `rules` in `namespace`.
    fn confirm_no_escalation(
        &self,
        request: &Request,
        rules: &[PolicyRule],
        which: Which,
        name: &str,
    ) -> Result<(), ApiError> {
        let user = &request.user;
        let (owned, errors) = self.rbac.rules_for(user, &request.namespace);
        let (covered, missing) = covers(&owned, rules);
        if covered {
            return Ok(());
        }
        let mut lines: Vec<String> = compact_rules(missing)
            .iter()
            .map(PolicyRule::compact)
            .collect();
        lines.sort();
        lines.dedup();
        let mut message = format!(
            "{}.{GROUP} \"{name}\" is forbidden: user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            which.resource_name(),
            go_quote(&user.name),
            go_strings(&user.groups),
            lines.join("\n")
        );
        if !errors.is_empty() {
            message.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(ApiError::Forbidden(message))
    }

    fn check_role(
        &self,
        request: &Request,
        which: Which,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let name = registry::object::name(object);
        // As kube-apiserver, the name of a create is not known to the authorizer.
        let asked = if request.operation == Operation::Create {
            ""
        } else {
            name
        };
        if self.allowed(
            &request.user,
            "escalate",
            which.resource_name(),
            &request.namespace,
            asked,
        ) {
            return Ok(());
        }
        let aggregates = |o: &Value| o.get("aggregationRule").is_some_and(|a| !a.is_null());
        if which == Which::ClusterRole && (aggregates(object) || old.is_some_and(aggregates)) {
            return Err(ApiError::Forbidden(format!(
                "clusterroles.{GROUP} \"{name}\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
            )));
        }
        self.confirm_no_escalation(request, &rules_of(object), which, name)
    }

    fn check_binding(
        &self,
        request: &Request,
        which: Which,
        object: &Value,
    ) -> Result<(), ApiError> {
        let text = |field: &str| object["roleRef"][field].as_str().unwrap_or("");
        let (kind, role) = (text("kind"), text("name"));
        let role_resource = match kind {
            "Role" => "roles",
            "ClusterRole" => "clusterroles",
            // Not a valid binding: its validation refuses it.
            _ => return Ok(()),
        };
        let bind = Attributes {
            verb: "bind".into(),
            resource_request: true,
            group: text("apiGroup").into(),
            resource: role_resource.into(),
            namespace: request.namespace.clone(),
            name: role.into(),
            ..Attributes::default()
        };
        if self.rbac.decide(&request.user, &bind).allowed {
            return Ok(());
        }
        let rules = self
            .rbac
            .cache
            .read(|state| state.reference_rules(kind, role, &request.namespace))
            .map_err(|_| ApiError::NotFound {
                resource: format!("{}.{GROUP}", kind.to_lowercase()),
                name: role.into(),
            })?;
        self.confirm_no_escalation(request, &rules, which, registry::object::name(object))
    }
}

/// Whether an update changes nothing but what the garbage collector changes (owner
/// references and finalizers) and the server's own bookkeeping.
fn only_gc_fields_change(new: &Value, old: &Value) -> bool {
    let strip = |object: &Value| {
        let mut object = object.clone();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "ownerReferences",
                "finalizers",
                "managedFields",
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                meta.remove(field);
            }
        }
        object
    };
    strip(new) == strip(old)
}

#[async_trait::async_trait]
impl Plugin for Escalation {
    fn name(&self) -> &str {
        "RBACEscalation"
    }

    async fn validate(
        &self,
        request: &Request,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if request.group != GROUP
            || request.operation == crate::admission::Operation::Delete
            || !request.subresource.is_empty()
            || is_master(&request.user)
        {
            return Ok(Vec::new());
        }
        let Some(which) = Which::of_resource(&request.resource) else {
            return Ok(Vec::new());
        };
        if old.is_some_and(|old| only_gc_fields_change(object, old)) {
            return Ok(Vec::new());
        }
        match which {
            Which::Role | Which::ClusterRole => self.check_role(request, which, object, old)?,
            _ => self.check_binding(request, which, object)?,
        }
        Ok(Vec::new())
    }
}
