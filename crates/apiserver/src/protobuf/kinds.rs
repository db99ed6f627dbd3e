//! Which kinds have a protobuf form here, and the full name of each one's message.

const STATUS: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions";

/// Every kind with a protobuf form: apiVersion, kind, and the full name of its message.
pub(super) const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "k8s.io.api.core.v1.Namespace"),
    ("v1", "NamespaceList", "k8s.io.api.core.v1.NamespaceList"),
    ("v1", "ConfigMap", "k8s.io.api.core.v1.ConfigMap"),
    ("v1", "ConfigMapList", "k8s.io.api.core.v1.ConfigMapList"),
    ("v1", "Secret", "k8s.io.api.core.v1.Secret"),
    ("v1", "SecretList", "k8s.io.api.core.v1.SecretList"),
    ("v1", "ServiceAccount", "k8s.io.api.core.v1.ServiceAccount"),
    (
        "v1",
        "ServiceAccountList",
        "k8s.io.api.core.v1.ServiceAccountList",
    ),
    (
        "v1",
        "PersistentVolumeClaim",
        "k8s.io.api.core.v1.PersistentVolumeClaim",
    ),
    (
        "v1",
        "PersistentVolumeClaimList",
        "k8s.io.api.core.v1.PersistentVolumeClaimList",
    ),
    ("v1", "Event", "k8s.io.api.core.v1.Event"),
    ("v1", "EventList", "k8s.io.api.core.v1.EventList"),
    ("v1", "Status", STATUS),
    ("v1", "DeleteOptions", DELETE_OPTIONS),
    ("meta.k8s.io/v1", "Status", STATUS),
    ("meta.k8s.io/v1", "DeleteOptions", DELETE_OPTIONS),
    ("events.k8s.io/v1", "Event", "k8s.io.api.events.v1.Event"),
    (
        "events.k8s.io/v1",
        "EventList",
        "k8s.io.api.events.v1.EventList",
    ),
    (
        "coordination.k8s.io/v1",
        "Lease",
        "k8s.io.api.coordination.v1.Lease",
    ),
    (
        "coordination.k8s.io/v1",
        "LeaseList",
        "k8s.io.api.coordination.v1.LeaseList",
    ),
    (
        "storage.k8s.io/v1",
        "StorageClass",
        "k8s.io.api.storage.v1.StorageClass",
    ),
    (
        "storage.k8s.io/v1",
        "StorageClassList",
        "k8s.io.api.storage.v1.StorageClassList",
    ),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    (
        "rbac.authorization.k8s.io/v1",
        "Role",
        "k8s.io.api.rbac.v1.Role",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleList",
        "k8s.io.api.rbac.v1.RoleList",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "k8s.io.api.rbac.v1.ClusterRole",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleList",
        "k8s.io.api.rbac.v1.ClusterRoleList",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "k8s.io.api.rbac.v1.RoleBinding",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBindingList",
        "k8s.io.api.rbac.v1.RoleBindingList",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "k8s.io.api.rbac.v1.ClusterRoleBinding",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBindingList",
        "k8s.io.api.rbac.v1.ClusterRoleBindingList",
    ),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        "k8s.io.api.authentication.v1.TokenRequest",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfigurationList",
        "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfigurationList",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfigurationList",
        "k8s.io.api.admissionregistration.v1.MutatingWebhookConfigurationList",
    ),
];

/// The message full name of a kind, if it has a protobuf form. `Status` and `DeleteOptions`
/// (meta.k8s.io/v1 messages registered in every group version) resolve for `meta.k8s.io/v1`
/// and every group version listed here.
pub fn message_for(api_version: &str, kind: &str) -> Option<&'static str> {
    if let Some(&(_, _, message)) = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    {
        return Some(message);
    }
    let message = match kind {
        "Status" => STATUS,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    };
    KINDS
        .iter()
        .any(|(v, _, _)| *v == api_version)
        .then_some(message)
}

/// Whether objects of this apiVersion and kind have a protobuf form here.
pub fn supports(api_version: &str, kind: &str) -> bool {
    message_for(api_version, kind).is_some()
}

/// Every (apiVersion, kind) with a protobuf form (besides `Status` and `DeleteOptions` in the
/// other group versions, see [`message_for`]).
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|&(v, k, _)| (v, k))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protobuf::fixtures::{every_kind, round_trip, typed};

    #[test]
    fn every_kind_round_trips() {
        let all = every_kind();
        assert_eq!(all.len(), KINDS.len());
        for object in &all {
            round_trip(object);
        }
    }

    /// The kinds Adamant serves natively without a protobuf form, each with why; kube-apiserver
    /// serves every one of them as protobuf too. A native kind added later must get a protobuf
    /// form (a row in [`KINDS`]) or a row here.
    const JSON_ONLY: &[(&str, &str)] = &[
        // CustomResourceDefinition: its schema (`JSONSchemaProps`, recursive, with fields
        // holding any JSON) has no message in our proto files yet.
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinitionList"),
        // The review kinds (create only, nothing stored) answer in JSON; their requests are
        // read as protobuf by `rbac::reviews_proto`.
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SubjectAccessReview"),
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
        ("authentication.k8s.io/v1", "TokenReview"),
    ];

    /// Every (apiVersion, kind) the native catalog (as `ApiServer` builds it before any
    /// CustomResourceDefinition) reads and writes: each kind, its list when it can be listed,
    /// and the kinds of its create-only subresources; with whether the HTTP layer would offer
    /// protobuf for it (only for kinds marked native).
    fn served_native_kinds() -> Vec<(String, String, bool)> {
        let components = std::sync::Arc::new(crate::native::components());
        let mut kinds = crate::native::kinds(&components);
        kinds.push(crate::server::crd_kind(&components));
        let mut served = Vec::new();
        for kind in &kinds {
            let version = kind.api_version();
            served.push((version.clone(), kind.kind.clone(), kind.native));
            if kind.verbs().contains(&"list") {
                served.push((version.clone(), format!("{}List", kind.kind), kind.native));
            }
            for (_, sub) in &kind.create_subresources {
                let (group, version, kind_name) = sub.kind();
                let version = crate::catalog::group_version(group, version);
                served.push((version, kind_name.to_string(), kind.native));
            }
        }
        served
    }

    #[test]
    fn every_served_native_kind_has_a_protobuf_form_or_is_listed_json_only() {
        let served = served_native_kinds();
        for (version, kind) in [("v1", "ConfigMap"), ("coordination.k8s.io/v1", "LeaseList")] {
            assert!(
                served.iter().any(|(v, k, _)| v == version && k == kind),
                "{version} {kind} in {served:?}"
            );
        }
        let mut missing = Vec::new();
        for (version, kind, native) in &served {
            // The HTTP layer offers protobuf only for kinds marked native.
            let protobuf = *native && supports(version, kind);
            if JSON_ONLY.contains(&(version.as_str(), kind.as_str())) {
                assert!(!protobuf, "{version} {kind} is in both lists");
            } else if !protobuf {
                missing.push(format!("{version} {kind}"));
            }
        }
        assert!(
            missing.is_empty(),
            "served without a protobuf form and not listed as JSON-only: {missing:?}"
        );
        // The list names only kinds served, so it does not outlive them.
        for (version, kind) in JSON_ONLY {
            assert!(
                served.iter().any(|(v, k, _)| v == version && k == kind),
                "{version} {kind} is listed JSON-only but not served"
            );
        }
    }

    #[test]
    fn supports_names_the_table() {
        assert!(supports("v1", "ConfigMap"));
        assert!(supports("v1", "SecretList"));
        assert!(supports(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding"
        ));
        assert!(supports("rbac.authorization.k8s.io/v1", "Status"));
        assert!(supports("coordination.k8s.io/v1", "DeleteOptions"));
        assert!(supports("meta.k8s.io/v1", "Status"));
        assert!(!supports("v1", "Pod"));
        assert!(!supports("v2", "ConfigMap"));
        assert!(!supports("example.com/v1", "Status"));
        assert_eq!(
            message_for("v1", "ConfigMap"),
            Some("k8s.io.api.core.v1.ConfigMap")
        );
        assert_eq!(
            message_for("events.k8s.io/v1", "Event"),
            Some("k8s.io.api.events.v1.Event")
        );
    }

    #[test]
    fn status_decodes_for_any_served_group_version() {
        let status = typed(
            "rbac.authorization.k8s.io/v1",
            "Status",
            json!({"status": "Success", "code": 200}),
        );
        round_trip(&status);
    }
}
