//! The CustomResourceDefinitions generated from the types, and the aggregated ClusterRoles that
//! give Kubernetes' `admin`, `edit` and `view` roles the EVE kinds.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schemars::{Schema, SchemaGenerator, json_schema};

use crate::{GROUP, KINDS};

/// The revision of the CRDs this binary defines. Raise it whenever a type changes: `adamant
/// serve` replaces installed CRDs of a lower revision and leaves those of a higher one (a newer
/// binary installed them).
pub const CRD_REVISION: u32 = 4;
/// The annotation on each CRD that holds its [`CRD_REVISION`].
pub const CRD_REVISION_ANNOTATION: &str = "eve.lfedge.org/crd-revision";

/// The CustomResourceDefinitions of every kind, each annotated with [`CRD_REVISION`].
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = crate::kinds::definitions();
    for crd in &mut crds {
        crd.metadata
            .annotations
            .get_or_insert_default()
            .insert(CRD_REVISION_ANNOTATION.into(), CRD_REVISION.to_string());
        crd.metadata
            .labels
            .get_or_insert_default()
            .insert("app.kubernetes.io/part-of".into(), "adamant".into());
    }
    crds
}

/// The subresources whose `get` reads a Device's telemetry: logs (device, application and flow
/// logs), info (and uploaded certificates), metrics.
pub const TELEMETRY_SUBRESOURCES: [&str; 3] = ["devices/log", "devices/info", "devices/metrics"];

/// ClusterRoles aggregated into Kubernetes' `admin` and `edit` (every verb on the EVE kinds) and
/// `view` (get, list, watch), for clusters with RBAC.
pub fn cluster_roles() -> Vec<ClusterRole> {
    let resources: Vec<String> = KINDS.iter().map(|k| k.plural.to_string()).collect();
    // The telemetry of a Device (`/edgenode/...`) is read as `get` on these subresources.
    let with_subresources: Vec<String> = resources
        .iter()
        .flat_map(|r| [r.clone(), format!("{r}/status"), format!("{r}/scale")])
        .chain(TELEMETRY_SUBRESOURCES.iter().map(|s| s.to_string()))
        .collect();
    let role = |name: &str, aggregate: &[&str], verbs: &[&str], resources: &[String]| {
        let mut role = ClusterRole {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![GROUP.into()]),
                resources: Some(resources.to_vec()),
                verbs: verbs.iter().map(|v| v.to_string()).collect(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let labels = role.metadata.labels.get_or_insert_default();
        labels.insert("app.kubernetes.io/part-of".into(), "adamant".into());
        for to in aggregate {
            labels.insert(
                format!("rbac.authorization.k8s.io/aggregate-to-{to}"),
                "true".into(),
            );
        }
        role
    };
    vec![
        role(
            "adamant-eve-edit",
            &["admin", "edit"],
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            &with_subresources,
        ),
        role(
            "adamant-eve-view",
            &["view"],
            &["get", "list", "watch"],
            &with_subresources,
        ),
    ]
}

/// The schema of a field that takes any JSON object, owned whole: managed fields and
/// server-side apply treat it as one value (`x-kubernetes-map-type: atomic`), as its writer
/// writes it whole. (Granular, a DeviceConfig's managed fields listed every field of its
/// configuration, about doubling what each write stores and compares.)
pub(crate) fn whole_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-map-type": "atomic",
    })
}

/// The CRDs as JSON values (for printing and installing).
pub fn crds_yaml() -> Vec<serde_json::Value> {
    crds()
        .into_iter()
        .map(|crd| serde_json::to_value(crd).expect("a CRD serializes"))
        .chain(
            cluster_roles()
                .into_iter()
                .map(|r| serde_json::to_value(r).expect("a ClusterRole serializes")),
        )
        .collect()
}
