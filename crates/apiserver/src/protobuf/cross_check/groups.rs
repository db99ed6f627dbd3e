//! Cross-checks of the kinds of the named API groups: storage, events, coordination, RBAC,
//! admission registration and authentication.

use k8s_pb::api::admissionregistration::v1 as admission;
use k8s_pb::api::authentication::v1 as authentication;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::events::v1 as events;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::api::storage::v1 as storage;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::json;

use super::{
    ELEVEN_SECONDS, TEN_SECONDS, check, expected, expected_without, label_selector, map, micro,
    object_meta, object_reference, s, strings, time,
};

#[test]
fn storage_class() {
    let message = storage::StorageClass {
        metadata: object_meta("local", None),
        provisioner: s("example.com/local"),
        parameters: map(&[("fsType", "ext4".to_owned())]),
        reclaim_policy: s("Retain"),
        mount_options: strings(&["noatime"]),
        allow_volume_expansion: Some(true),
        volume_binding_mode: s("WaitForFirstConsumer"),
        allowed_topologies: vec![core::TopologySelectorTerm {
            match_label_expressions: vec![core::TopologySelectorLabelRequirement {
                key: s("topology.kubernetes.io/zone"),
                values: strings(&["a", "b"]),
            }],
        }],
    };
    check(
        &message,
        expected("storage.k8s.io/v1", "StorageClass", "StorageClass"),
    );
}

#[test]
fn events_event() {
    let message = events::Event {
        metadata: object_meta("web-0.2", Some("default")),
        event_time: micro(TEN_SECONDS, 0),
        series: Some(events::EventSeries {
            count: Some(5),
            last_observed_time: micro(TEN_SECONDS + 1_800, 500_000_000),
        }),
        reporting_controller: s("example.com/controller"),
        reporting_instance: s("controller-0"),
        action: s("Reconcile"),
        reason: s("Synced"),
        regarding: object_reference(),
        related: object_reference(),
        note: s("synced"),
        r#type: s("Normal"),
        deprecated_source: Some(core::EventSource {
            component: s("c"),
            host: s("h"),
        }),
        deprecated_first_timestamp: time(TEN_SECONDS),
        deprecated_last_timestamp: time(ELEVEN_SECONDS),
        deprecated_count: Some(9),
    };
    check(
        &message,
        expected("events.k8s.io/v1", "Event", "events.k8s.io/Event"),
    );
}

#[test]
fn lease() {
    let message = coordination::Lease {
        metadata: object_meta("leader", Some("kube-system")),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(0),
            acquire_time: micro(TEN_SECONDS, 250_000_000),
            renew_time: micro(TEN_SECONDS + 15, 7_000),
            lease_transitions: Some(4),
            strategy: s("OldestEmulationVersion"),
            preferred_holder: s("node-2"),
        }),
    };
    check(
        &message,
        expected("coordination.k8s.io/v1", "Lease", "Lease"),
    );
}

#[test]
fn role_and_bindings() {
    const RBAC: &str = "rbac.authorization.k8s.io/v1";
    let role = rbac::Role {
        metadata: object_meta("reader", Some("default")),
        rules: vec![rbac::PolicyRule {
            verbs: strings(&["get", "list"]),
            api_groups: strings(&[""]),
            resources: strings(&["configmaps"]),
            resource_names: strings(&["settings"]),
            non_resource_ur_ls: Vec::new(),
        }],
    };
    check(&role, expected(RBAC, "Role", "Role"));
    let cluster_role = rbac::ClusterRole {
        metadata: object_meta("aggregate", None),
        rules: vec![rbac::PolicyRule {
            verbs: strings(&["get"]),
            non_resource_ur_ls: strings(&["/healthz"]),
            ..Default::default()
        }],
        aggregation_rule: Some(rbac::AggregationRule {
            cluster_role_selectors: vec![label_selector().unwrap()],
        }),
    };
    check(&cluster_role, expected(RBAC, "ClusterRole", "ClusterRole"));
    let binding = rbac::RoleBinding {
        metadata: object_meta("bind", Some("default")),
        subjects: vec![
            rbac::Subject {
                kind: s("ServiceAccount"),
                api_group: None,
                name: s("robot"),
                namespace: s("default"),
            },
            rbac::Subject {
                kind: s("User"),
                api_group: s("rbac.authorization.k8s.io"),
                name: s("jane"),
                namespace: None,
            },
        ],
        role_ref: Some(rbac::RoleRef {
            api_group: s("rbac.authorization.k8s.io"),
            kind: s("ClusterRole"),
            name: s("view"),
        }),
    };
    check(&binding, expected(RBAC, "RoleBinding", "RoleBinding"));
}

#[test]
fn validating_webhook_configuration() {
    let message = admission::ValidatingWebhookConfiguration {
        metadata: object_meta("checks", None),
        webhooks: vec![admission::ValidatingWebhook {
            name: s("check.example.com"),
            client_config: Some(admission::WebhookClientConfig {
                url: None,
                service: Some(admission::ServiceReference {
                    namespace: s("system"),
                    name: s("hook"),
                    path: s("/check"),
                    port: Some(8443),
                }),
                ca_bundle: Some(b"-----BEGIN CERTIFICATE-----\n".to_vec()),
            }),
            rules: vec![admission::RuleWithOperations {
                operations: strings(&["CREATE", "UPDATE"]),
                rule: Some(admission::Rule {
                    api_groups: strings(&[""]),
                    api_versions: strings(&["v1"]),
                    resources: strings(&["configmaps"]),
                    scope: s("Namespaced"),
                }),
            }],
            failure_policy: s("Fail"),
            match_policy: s("Equivalent"),
            namespace_selector: label_selector(),
            object_selector: Some(meta::LabelSelector {
                match_labels: map(&[("checked", "true".to_owned())]),
                match_expressions: Vec::new(),
            }),
            side_effects: s("None"),
            timeout_seconds: Some(0),
            admission_review_versions: strings(&["v1"]),
            match_conditions: vec![admission::MatchCondition {
                name: s("not-system"),
                expression: s("request.userInfo.username != 'system'"),
            }],
        }],
    };
    check(
        &message,
        expected(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ),
    );
}

#[test]
fn mutating_webhook_configuration() {
    let message = admission::MutatingWebhookConfiguration {
        metadata: Some(meta::ObjectMeta {
            name: s("defaults"),
            ..Default::default()
        }),
        webhooks: vec![admission::MutatingWebhook {
            name: s("default.example.com"),
            client_config: Some(admission::WebhookClientConfig {
                url: s("https://hook.example.com/mutate"),
                ..Default::default()
            }),
            reinvocation_policy: s("IfNeeded"),
            side_effects: s("NoneOnDryRun"),
            object_selector: Some(meta::LabelSelector::default()),
            ..Default::default()
        }],
    };
    check(
        &message,
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "defaults"},
            "webhooks": [{
                "name": "default.example.com",
                "clientConfig": {"url": "https://hook.example.com/mutate"},
                "reinvocationPolicy": "IfNeeded",
                "sideEffects": "NoneOnDryRun",
                "objectSelector": {},
            }],
        }),
    );
}

#[test]
fn token_request() {
    let message = authentication::TokenRequest {
        metadata: object_meta("robot", Some("default")),
        spec: Some(authentication::TokenRequestSpec {
            audiences: strings(&["https://kubernetes.default.svc"]),
            expiration_seconds: Some(3600),
            bound_object_ref: Some(authentication::BoundObjectReference {
                kind: s("Pod"),
                api_version: s("v1"),
                name: s("web-0"),
                u_id: s("u-3"),
            }),
        }),
        status: Some(authentication::TokenRequestStatus {
            token: s("eyJhbGciOi.x.y"),
            expiration_timestamp: time(ELEVEN_SECONDS),
        }),
    };
    check(
        &message,
        expected_without(
            "authentication.k8s.io/v1",
            "TokenRequest",
            "/spec/attestations",
        ),
    );
}
