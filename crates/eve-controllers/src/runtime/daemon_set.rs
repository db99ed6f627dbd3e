//! The ApplicationDaemonSet reconciler: one Application on every eligible device of the
//! namespace, updated by the daemon set's strategy (`scheduling::plan_daemon_set`), and its
//! status.

use std::sync::Arc;
use std::time::Instant;

use eve_model::{ApplicationDaemonSet, ApplicationDaemonSetStatus};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::{Ctx, Error, Owner};
use super::owned::{daemon_app_name, history, made_from, members};
use crate::scheduling::{self, Member};

const KIND: &str = "ApplicationDaemonSet";

pub(super) async fn reconcile(
    ds: Arc<ApplicationDaemonSet>,
    ctx: Arc<Ctx>,
) -> Result<Action, Error> {
    let owner = Owner::DaemonSet(ObjectRef::from_obj(ds.as_ref()));
    if let Some(wait) = ctx.expectations.pending(&owner, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    if let Some(wait) = ctx.paced(&owner, started) {
        return Ok(Action::requeue(wait));
    }
    // Being deleted: left alone, as a deployment is.
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    ctx.metrics.planned("daemon_set");
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let spec = &ds.spec;
    let hash = scheduling::template_hash(&spec.template);
    let devices = ctx.devices_in(&ns);
    let networks = ctx.networks_in(&ns);
    let context = ctx.context(&ns, &networks);
    let template_annotations = spec
        .template
        .metadata
        .as_ref()
        .map(|m| m.annotations.clone())
        .unwrap_or_default();
    let eligible: Vec<String> = devices
        .iter()
        .filter(|d| {
            scheduling::fits(&spec.template.spec, &template_annotations, d, &context).is_ok()
        })
        .map(|d| d.name_any())
        .collect();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mine = ctx.controlled(KIND, ds.as_ref());
    let before = members(&mine, &devices, &context, min_ready);
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let on_delete = strategy.type_.as_deref() == Some("OnDelete");
    let max_unavailable = scheduling::resolve(
        strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.max_unavailable.as_ref()),
        "1",
        eligible.len() as i32,
        false,
    );
    let plan = scheduling::plan_daemon_set(&eligible, &hash, &before, max_unavailable, on_delete);
    ctx.planned(&owner, started);
    if !plan.delete.is_empty() {
        ctx.delete_apps(&owner, &ns, &plan.delete).await?;
    }
    if !plan.create_on.is_empty() {
        let made = plan
            .create_on
            .iter()
            .map(|device| {
                made_from(
                    ds.as_ref(),
                    &spec.template,
                    &hash,
                    Some(daemon_app_name(&name, device)),
                    device.clone(),
                )
            })
            .collect();
        ctx.create_apps(&owner, &ns, made).await?;
    }
    ctx.record_scaling(ds.as_ref(), plan.create_on.len(), &plan.delete, &hash);
    // The status is written from a cache that shows this reconcile's writes; until it does,
    // their observation triggers the next reconcile.
    if let Some(wait) = ctx.expectations.pending(&owner, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let mine = ctx.controlled(KIND, ds.as_ref());
    let after = members(&mine, &devices, &context, min_ready);
    let status = status(&ds, &after, &eligible, &hash);
    if ds.status.as_ref() != Some(&status) {
        ctx.write_status::<ApplicationDaemonSet, _>(&ns, &name, &status)
            .await?;
    }
    Ok(Action::await_change())
}

/// `ds`'s status with `members` its applications (not being deleted), `eligible` the devices
/// that should run one, `hash` its template's.
fn status(
    ds: &ApplicationDaemonSet,
    members: &[Member],
    eligible: &[String],
    hash: &str,
) -> ApplicationDaemonSetStatus {
    let old = ds.status.clone().unwrap_or_default();
    let eligible: std::collections::HashSet<&str> = eligible.iter().map(String::as_str).collect();
    let on_eligible =
        |m: &Member| m.device.as_deref().is_some_and(|d| eligible.contains(d)) && m.placed;
    let count = |f: &dyn Fn(&Member) -> bool| members.iter().filter(|m| f(m)).count() as i32;
    let current = count(&on_eligible);
    let updated = count(&|m| on_eligible(m) && m.hash == hash);
    let available = count(&|m| on_eligible(m) && m.available);
    let history = history(
        old.history.clone(),
        hash,
        ds.annotations().get("kubernetes.io/change-cause"),
        ds.spec.revision_history_limit.unwrap_or(10),
    );
    let desired = eligible.len() as i32;
    ApplicationDaemonSetStatus {
        observed_generation: ds.metadata.generation,
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        updated_number_scheduled: updated,
        number_available: available,
        number_unavailable: (desired - available).max(0),
        number_misscheduled: members.len() as i32 - current,
        revision: history.last().map(|r| r.revision),
        history,
        ..old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_model::ApplicationDaemonSetSpec;

    fn member(device: &str, hash: &str, available: bool) -> Member {
        Member {
            name: format!("agent-{device}"),
            hash: hash.into(),
            device: Some(device.into()),
            placed: true,
            available,
        }
    }

    #[test]
    fn counts_by_eligible_device() {
        let ds = ApplicationDaemonSet::new("agent", ApplicationDaemonSetSpec::default());
        let eligible = ["a".to_string(), "b".to_string(), "c".to_string()];
        let members = [
            member("a", "h1", true),
            member("b", "h0", false),
            member("x", "h1", true),
        ];
        let s = status(&ds, &members, &eligible, "h1");
        assert_eq!(s.desired_number_scheduled, 3);
        assert_eq!(s.current_number_scheduled, 2);
        assert_eq!(s.updated_number_scheduled, 1);
        assert_eq!(s.number_available, 1);
        assert_eq!(s.number_unavailable, 2);
        assert_eq!(s.number_misscheduled, 1);
        assert_eq!(s.revision, Some(1));
    }
}
