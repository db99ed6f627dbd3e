//! Claims' binding: records which device each claim an Application uses is bound to (the
//! `eve.lfedge.org/bound-device` annotation, phase `Bound`).

use std::collections::HashMap;
use std::sync::Arc;

use eve_model::{Application, annotations};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimStatus};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::{Ctx, Error};
use crate::events::{Record, reference};

/// Marks the claims `apps` use bound to their devices.
pub(super) async fn reconcile(ctx: &Ctx, ns: &str, apps: &[Arc<Application>]) -> Result<(), Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let claims: HashMap<String, Arc<PersistentVolumeClaim>> = ctx
        .caches
        .claims
        .state_filter(|c| c.metadata.namespace.as_deref() == Some(ns))
        .into_iter()
        .map(|c| (c.name_any(), c))
        .collect();
    for app in apps {
        let Some(device) = app.spec.node_name.as_deref().filter(|d| !d.is_empty()) else {
            continue;
        };
        for volume in &app.spec.volumes {
            let Some(claim) = volume.persistent_volume_claim.as_ref() else {
                continue;
            };
            let Some(pvc) = claims.get(&claim.claim_name) else {
                continue;
            };
            if pvc.annotations().contains_key(annotations::BOUND_DEVICE) {
                continue;
            }
            api.patch(
                &claim.claim_name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"annotations": {annotations::BOUND_DEVICE: device}}}),
                ),
            )
            .await?;
            let status = PersistentVolumeClaimStatus {
                phase: Some("Bound".into()),
                ..PersistentVolumeClaimStatus::default()
            };
            ctx.write_status::<PersistentVolumeClaim, _>(ns, &claim.claim_name, &status)
                .await?;
            ctx.events.record(Record::normal(
                reference(pvc.as_ref()),
                "Bound",
                "Bind",
                format!(
                    "bound to Device {device}, for Application {}",
                    app.name_any()
                ),
            ));
        }
    }
    Ok(())
}
