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
