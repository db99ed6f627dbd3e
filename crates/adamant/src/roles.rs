//! The EVE roles (`docs/access.md`): the ClusterRoles that add the EVE kinds to Kubernetes'
//! `admin`, `edit` and `view` (`adamant-eve-edit`, `adamant-eve-view`, as `adamant crds`
//! prints them), and three roles to bind: `eve:fleet-admin` (everything EVE: onboarding
//! policies, Devices, DeviceConfigs; aggregated into `admin`), `eve:operator` (networks,
//! images, volumes, applications and their scheduling; reads Devices; aggregated into `edit`)
//! and `eve:viewer` (reads every EVE kind; aggregated into `view`). `adamant serve` installs
//! them as the API server reconciles its bootstrap roles: created when missing, the rules they
//! lack added, unless annotated `rbac.authorization.kubernetes.io/autoupdate: "false"`.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};

/// The annotation that lets Adamant update a role it installed.
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

const READ: &[&str] = &["get", "list", "watch"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

fn role(name: &str, aggregate_to: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    let labels: BTreeMap<String, String> = [
        (
            "app.kubernetes.io/part-of".to_string(),
            "adamant".to_string(),
        ),
        (
            format!("rbac.authorization.k8s.io/aggregate-to-{aggregate_to}"),
            "true".to_string(),
        ),
    ]
    .into();
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        rules: Some(rules),
        ..Default::default()
    }
}

/// Reading events, core and `events.k8s.io`.
fn events() -> Vec<PolicyRule> {
    vec![
        rule(READ, "", &["events"]),
        rule(READ, "events.k8s.io", &["events"]),
    ]
}

/// `eve:fleet-admin`, `eve:operator` and `eve:viewer`.
pub(crate) fn eve_roles() -> Vec<ClusterRole> {
    let eve = eve_model::GROUP;
    let mut fleet_admin = vec![
        rule(&["*"], eve, &["*"]),
        rule(READ_WRITE, "", &["persistentvolumeclaims"]),
        rule(READ, "", &["persistentvolumeclaims/status"]),
    ];
    fleet_admin.extend(events());
    let mut operator = vec![
        rule(
            READ_WRITE,
            eve,
            &[
                "networkconfigs",
                "devicenetworks",
                "images",
                "applications",
                "applicationdeployments",
                "applicationdeployments/scale",
                "applicationdaemonsets",
            ],
        ),
        rule(
            READ,
            eve,
            &[
                "devicenetworks/status",
                "images/status",
                "applications/status",
                "applicationdeployments/status",
                "applicationdaemonsets/status",
                "devices",
                "devices/status",
            ],
        ),
        rule(&["get"], eve, &eve_model::TELEMETRY_SUBRESOURCES),
        rule(READ_WRITE, "", &["persistentvolumeclaims"]),
        rule(READ, "", &["persistentvolumeclaims/status"]),
    ];
    operator.extend(events());
    let mut viewer = vec![
        rule(READ, eve, &["*"]),
        rule(
            READ,
            "",
            &["persistentvolumeclaims", "persistentvolumeclaims/status"],
        ),
    ];
    viewer.extend(events());
    vec![
        role("eve:fleet-admin", "admin", fleet_admin),
        role("eve:operator", "edit", operator),
        role("eve:viewer", "view", viewer),
    ]
}

/// Every ClusterRole Adamant installs: the aggregation of the EVE kinds into `admin`, `edit`
/// and `view`, and the EVE roles.
pub(crate) fn all() -> Vec<ClusterRole> {
    let mut roles = eve_model::cluster_roles();
    roles.extend(eve_roles());
    for role in &mut roles {
        role.metadata
            .annotations
            .get_or_insert_default()
            .insert(AUTOUPDATE.into(), "true".into());
    }
    roles
}

/// Creates the roles that are missing; adds the rules they lack to those installed before,
/// unless they opted out of updates.
pub(crate) async fn install(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<ClusterRole> = Api::all(client.clone());
    for role in all() {
        let name = role.name_any();
        let installed = api
            .get_opt(&name)
            .await
            .with_context(|| format!("cannot read ClusterRole {name}"))?;
        let Some(mut installed) = installed else {
            api.create(&PostParams::default(), &role)
                .await
                .with_context(|| format!("cannot install ClusterRole {name}"))?;
            tracing::info!(clusterrole = %name, "installed");
            continue;
        };
        if installed.annotations().get(AUTOUPDATE).map(String::as_str) == Some("false") {
            continue;
        }
        let rules = installed.rules.get_or_insert_default();
        let missing: Vec<PolicyRule> = role
            .rules
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !rules.contains(r))
            .collect();
        let labels = installed.metadata.labels.get_or_insert_default();
        let unlabelled = role
            .metadata
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !labels.contains_key(k))
            .collect::<Vec<_>>();
        if missing.is_empty() && unlabelled.is_empty() {
            continue;
        }
        rules.extend(missing);
        labels.extend(unlabelled);
        api.replace(&name, &PostParams::default(), &installed)
            .await
            .with_context(|| format!("cannot update ClusterRole {name}"))?;
        tracing::info!(clusterrole = %name, "updated");
    }
    Ok(())
}

/// The namespace of the controller's ServiceAccount in cluster mode.
pub(crate) const CONTROLLER_NAMESPACE: &str = "adamant-system";
/// The ServiceAccount `adamant controller` runs as in cluster mode.
pub(crate) const CONTROLLER_SERVICE_ACCOUNT: &str = "adamant-controller";
/// The ClusterRole (and its ClusterRoleBinding) of the controller.
pub(crate) const CONTROLLER_ROLE: &str = "adamant:controller";
/// The Role (and its RoleBinding) in `kube-system` for the device API's keys.
pub(crate) const CONTROLLER_KEYS_ROLE: &str = "adamant:controller-keys";
/// The ClusterRoleBinding of `system:auth-delegator` to the controller (the telemetry service's
/// TokenReviews and SubjectAccessReviews).
pub(crate) const CONTROLLER_AUTH_DELEGATOR: &str = "adamant:controller:auth-delegator";

fn named(verbs: &[&str], group: &str, resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: Some(names.iter().map(|n| n.to_string()).collect()),
        ..rule(verbs, group, resources)
    }
}

/// The rules of `adamant:controller`: what `adamant controller` does through the API in
/// cluster mode, each rule for a code path (`docs/access.md`, "Cluster mode: least privilege").
pub(crate) fn controller_rules() -> Vec<PolicyRule> {
    let eve = eve_model::GROUP;
    let crds: Vec<String> = eve_model::crds()
        .iter()
        .map(kube::ResourceExt::name_any)
        .collect();
    let crds: Vec<&str> = crds.iter().map(String::as_str).collect();
    vec![
        // `--install-crds`: read, upgrade and wait for the EVE CRDs (`eve::install_crds`)...
        named(
            &["get", "update"],
            "apiextensions.k8s.io",
            &["customresourcedefinitions"],
            &crds,
        ),
        // ... and create them where missing (RBAC cannot restrict create by name).
        rule(
            &["create"],
            "apiextensions.k8s.io",
            &["customresourcedefinitions"],
        ),
        // `--webhook-endpoint`: the webhook configurations, registered by server-side apply.
        named(
            &["patch"],
            "admissionregistration.k8s.io",
            &[
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
            ],
            &[eve_controllers::webhook::CONFIGURATION_NAME],
        ),
        // The controllers' and the device API's caches, admission's look-ups: every EVE kind.
        PolicyRule {
            api_groups: Some(vec![eve.to_string()]),
            resources: Some(
                eve_model::KINDS
                    .iter()
                    .map(|k| k.plural.to_string())
                    .collect(),
            ),
            verbs: READ.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        },
        // The device API: Devices of registering devices; a waiting Device's certificate.
        rule(&["create", "patch"], eve, &["devices"]),
        // The device API's DeviceConfig writer.
        rule(&["create", "update"], eve, &["deviceconfigs"]),
        // Deployments and daemon sets make and remove Applications; scheduling binds them.
        rule(&["create", "patch", "delete"], eve, &["applications"]),
        // Status: UUIDs and reports of Devices, DeviceConfigs' validity, Applications'
        // conditions and reports, the replicas of deployments and daemon sets.
        rule(
            &["patch"],
            eve,
            &[
                "devices/status",
                "deviceconfigs/status",
                "applications/status",
                "applicationdeployments/status",
                "applicationdaemonsets/status",
            ],
        ),
        // Owner references with blockOwnerDeletion (Applications to their deployment or daemon
        // set, DeviceConfigs to their Device), which OwnerReferencesPermissionEnforcement
        // checks.
        rule(
            &["update"],
            eve,
            &[
                "devices/finalizers",
                "applicationdeployments/finalizers",
                "applicationdaemonsets/finalizers",
            ],
        ),
        // Claims: cached, checked by admission, bound to a device (annotation, phase).
        rule(
            &["get", "list", "watch", "patch"],
            "",
            &["persistentvolumeclaims"],
        ),
        rule(&["patch"], "", &["persistentvolumeclaims/status"]),
        // Storage classes: the device API's data stores, checked by admission.
        rule(READ, "storage.k8s.io", &["storageclasses"]),
        // ConfigMaps of fixed names: the global options and device models (watched by name in
        // every namespace, models read by admission too), PCR templates (read on attestation).
        named(
            &["get", "list", "watch"],
            "",
            &["configmaps"],
            &[
                device_api::fleet::GLOBAL_OPTIONS,
                eve_model::device_model::MODELS,
                device_api::attestation::judge::TEMPLATES,
            ],
        ),
        // Admission: a namespace's reference-checks annotation.
        rule(&["get"], "", &["namespaces"]),
        // Escrowed keys, `eve-escrow-UUID` in each device's namespace (names RBAC cannot
        // list in advance), and the credentials Secret a StorageClass names (admission).
        // Never list or watch: a Secret is read only by its name.
        rule(&["get", "create", "update"], "", &["secrets"]),
        // Events (kube-runtime's recorder writes events.k8s.io/v1).
        rule(&["create", "patch"], "events.k8s.io", &["events"]),
    ]
}

/// The rules of `adamant:controller-keys` in `kube-system`: the device API's keys
/// (`device_api::pki::SecretVault`), read by name, created when missing; and the shared device
/// liveness records (`device_api::liveness`), ConfigMaps named by each replica.
pub(crate) fn controller_key_rules() -> Vec<PolicyRule> {
    vec![
        named(
            &["get"],
            "",
            &["secrets"],
            &[
                pki::names::ROOT,
                pki::names::DEVICE_SIGNING,
                pki::names::DEVICE_ECDH,
            ],
        ),
        rule(&["create"], "", &["secrets"]),
        rule(
            &["get", "list", "create", "patch", "delete"],
            "",
            &["configmaps"],
        ),
    ]
}

/// What `adamant controller` runs as in cluster mode, least privilege: the Namespace
/// `adamant-system`, the ServiceAccount `adamant-controller` in it, the ClusterRole
/// `adamant:controller` bound to it, and the Role `adamant:controller-keys` in `kube-system`
/// bound to it. As YAML documents, in the order they apply.
pub(crate) fn controller_access() -> anyhow::Result<Vec<serde_json::Value>> {
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject};
    let labels = || {
        Some(BTreeMap::from([(
            "app.kubernetes.io/part-of".to_string(),
            "adamant".to_string(),
        )]))
    };
    let meta = |name: &str, namespace: Option<&str>| ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: labels(),
        ..Default::default()
    };
    let subjects = || {
        Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: CONTROLLER_SERVICE_ACCOUNT.into(),
            namespace: Some(CONTROLLER_NAMESPACE.into()),
            ..Default::default()
        }])
    };
    let role_ref = |kind: &str, name: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    };
    let keys = device_api::pki::NAMESPACE;
    Ok(vec![
        serde_json::to_value(Namespace {
            metadata: meta(CONTROLLER_NAMESPACE, None),
            ..Default::default()
        })?,
        serde_json::to_value(ServiceAccount {
            metadata: meta(CONTROLLER_SERVICE_ACCOUNT, Some(CONTROLLER_NAMESPACE)),
            ..Default::default()
        })?,
        serde_json::to_value(ClusterRole {
            metadata: meta(CONTROLLER_ROLE, None),
            rules: Some(controller_rules()),
            ..Default::default()
        })?,
        serde_json::to_value(ClusterRoleBinding {
            metadata: meta(CONTROLLER_ROLE, None),
            role_ref: role_ref("ClusterRole", CONTROLLER_ROLE),
            subjects: subjects(),
        })?,
        // The telemetry service asks the cluster who a caller is and what they may read.
        serde_json::to_value(ClusterRoleBinding {
            metadata: meta(CONTROLLER_AUTH_DELEGATOR, None),
            role_ref: role_ref("ClusterRole", "system:auth-delegator"),
            subjects: subjects(),
        })?,
        serde_json::to_value(Role {
            metadata: meta(CONTROLLER_KEYS_ROLE, Some(keys)),
            rules: Some(controller_key_rules()),
        })?,
        serde_json::to_value(RoleBinding {
            metadata: meta(CONTROLLER_KEYS_ROLE, Some(keys)),
            role_ref: role_ref("Role", CONTROLLER_KEYS_ROLE),
            subjects: subjects(),
        })?,
    ])
}
