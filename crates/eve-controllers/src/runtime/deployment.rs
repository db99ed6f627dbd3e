//! The ApplicationDeployment reconciler: replicas placed over the namespace's devices, rolled
//! out by the deployment's strategy (`scheduling::plan_deployment`), and its status.

use std::sync::Arc;
use std::time::Instant;

use eve_model::{
    Application, ApplicationDeployment, ApplicationDeploymentStatus, Device, conditions,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::{Ctx, Error, Owner, now};
use super::owned::{history, made_from, members};
use crate::events::{Record, reference};
use crate::scheduling::{self, Load, Member, Rollout};

const KIND: &str = "ApplicationDeployment";

pub(super) async fn reconcile(
    deployment: Arc<ApplicationDeployment>,
    ctx: Arc<Ctx>,
) -> Result<Action, Error> {
    let owner = Owner::Deployment(ObjectRef::from_obj(deployment.as_ref()));
    if let Some(wait) = ctx.expectations.pending(&owner, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    if let Some(wait) = ctx.paced(&owner, started) {
        return Ok(Action::requeue(wait));
    }
    // Being deleted: left alone, so that `--cascade=orphan` keeps its applications and
    // `foreground` deletes them first. Applications whose owner is gone (or was another object
    // of the same name) are the garbage collector's.
    if deployment.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    ctx.metrics.planned("deployment");
    let ns = deployment.namespace().unwrap_or_default();
    let spec = &deployment.spec;
    let replicas = spec.replicas.unwrap_or(1);
    let hash = scheduling::template_hash(&spec.template);
    let devices = ctx.devices_in(&ns);
    let networks = ctx.networks_in(&ns);
    let context = ctx.context(&ns, &networks);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mine = ctx.controlled(KIND, deployment.as_ref());
    let before = members(&mine, &devices, &context, min_ready);
    let strategy = spec.strategy.clone().unwrap_or_default();
    let rolling = strategy.rolling_update.unwrap_or_default();
    let rollout = Rollout {
        replicas,
        recreate: strategy.type_.as_deref() == Some("Recreate"),
        max_surge: scheduling::resolve(rolling.max_surge.as_ref(), "25%", replicas, true),
        max_unavailable: scheduling::resolve(
            rolling.max_unavailable.as_ref(),
            "25%",
            replicas,
            false,
        ),
    };
    let paused = spec.paused == Some(true);
    let plan = if paused {
        scheduling::Plan::default()
    } else {
        scheduling::plan_deployment(rollout, &hash, &before)
    };
    ctx.planned(&owner, started);
    if !plan.delete.is_empty() {
        ctx.delete_apps(&owner, &ns, &plan.delete).await?;
    }
    let mut failure = None;
    let mut made = Vec::new();
    if plan.create > 0 {
        let mut load = Load {
            total: ctx.load_in(&ns),
            ..Load::default()
        };
        let deleted: std::collections::HashSet<&String> = plan.delete.iter().collect();
        for m in &before {
            if let (Some(d), false) = (&m.device, deleted.contains(&m.name)) {
                *load.own.entry(d.clone()).or_default() += 1;
            }
        }
        let refs: Vec<&Device> = devices.iter().map(AsRef::as_ref).collect();
        (made, failure) = place(&deployment, plan.create, &hash, &refs, &context, load);
    }
    let created = made.len();
    if !made.is_empty() {
        ctx.create_apps(&owner, &ns, made).await?;
    }
    if let Some(why) = &failure {
        ctx.events.record(Record::warning(
            reference(deployment.as_ref()),
            "FailedPlacement",
            "Schedule",
            format!("cannot place an application: {why}"),
        ));
    }
    ctx.record_scaling(deployment.as_ref(), created, &plan.delete, &hash);
    // The status is written from a cache that shows this reconcile's writes; until it does,
    // their observation triggers the next reconcile.
    if let Some(wait) = ctx.expectations.pending(&owner, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let mine = ctx.controlled(KIND, deployment.as_ref());
    let after = members(&mine, &devices, &context, min_ready);
    let view = View {
        members: &after,
        apps: &mine,
        hash: &hash,
        replicas,
        max_unavailable: rollout.max_unavailable,
        paused,
        failure: failure.as_deref(),
    };
    let (status, complete) = status(&deployment, &view, now());
    let was_complete = deployment.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason == "NewReplicaSetAvailable")
    });
    if complete && !paused && !was_complete {
        ctx.events.record(Record::normal(
            reference(deployment.as_ref()),
            "RolloutComplete",
            "Rollout",
            format!(
                "all {replicas} applications run template {hash} (revision {})",
                status.revision.unwrap_or(0)
            ),
        ));
    }
    if deployment.status.as_ref() != Some(&status) {
        ctx.write_status::<ApplicationDeployment, _>(&ns, &deployment.name_any(), &status)
            .await?;
    }
    Ok(Action::await_change())
}

/// Up to `count` Applications of `deployment` placed over `devices`, each counted in `load`
/// before the next is placed; and why placement stopped short, if it did.
fn place(
    deployment: &ApplicationDeployment,
    count: usize,
    hash: &str,
    devices: &[&Device],
    context: &scheduling::Context<'_>,
    load: Load,
) -> (Vec<Application>, Option<String>) {
    let template = &deployment.spec.template;
    let annotations = template
        .metadata
        .as_ref()
        .map(|m| m.annotations.clone())
        .unwrap_or_default();
    let mut made = Vec::new();
    // Replicas one after another, each counted on its device (of this owner and in all).
    let mut spread = scheduling::Spread::new(devices, load, true);
    for _ in 0..count {
        match spread.choose(&template.spec, &annotations, context) {
            Ok(device) => {
                spread.add(&device);
                made.push(made_from(deployment, template, hash, None, device));
            }
            Err(why) => return (made, Some(why)),
        }
    }
    (made, None)
}

/// What a deployment's status is computed from.
struct View<'a> {
    /// Its applications (not being deleted) as plan members.
    members: &'a [Member],
    /// All its applications.
    apps: &'a [Arc<Application>],
    hash: &'a str,
    replicas: i32,
    max_unavailable: i32,
    paused: bool,
    /// Why an application could not be placed.
    failure: Option<&'a str>,
}

/// `deployment`'s status as `view` shows it, and whether its rollout is complete.
fn status(
    deployment: &ApplicationDeployment,
    view: &View<'_>,
    now: Time,
) -> (ApplicationDeploymentStatus, bool) {
    let old = deployment.status.clone().unwrap_or_default();
    let replicas = view.replicas;
    let count = |f: &dyn Fn(&Member) -> bool| view.members.iter().filter(|m| f(m)).count() as i32;
    let available = count(&|m| m.available);
    let updated = count(&|m| m.hash == view.hash);
    let ready = view
        .apps
        .iter()
        .filter(|a| a.status.as_ref().and_then(|s| s.state.as_deref()) == Some("RUNNING"))
        .count() as i32;
    let complete =
        updated == replicas && view.members.len() as i32 == replicas && available == replicas;
    let mut conditions = old.conditions.clone();
    let enough = available >= replicas - view.max_unavailable;
    conditions::set(
        &mut conditions,
        "Available",
        enough,
        if enough {
            "MinimumReplicasAvailable"
        } else {
            "MinimumReplicasUnavailable"
        },
        &format!("{available} of {replicas} applications are available (running on their device)"),
        now.clone(),
    );
    conditions::set(
        &mut conditions,
        "Progressing",
        view.failure.is_none(),
        if view.paused {
            "DeploymentPaused"
        } else if view.failure.is_some() {
            "ProgressDeadlineExceeded"
        } else if complete {
            "NewReplicaSetAvailable"
        } else {
            "ReplicaSetUpdated"
        },
        &match view.failure {
            Some(why) => format!("cannot place an application: {why}"),
            None if complete => "the deployment has rolled out".to_string(),
            None => format!("{updated} of {replicas} applications are up to date"),
        },
        now.clone(),
    );
    match view.failure {
        Some(why) => {
            conditions::set(
                &mut conditions,
                "ReplicaFailure",
                true,
                "FailedCreate",
                why,
                now,
            );
        }
        None => {
            conditions::remove(&mut conditions, "ReplicaFailure");
        }
    }
    let history = history(
        old.history.clone(),
        view.hash,
        deployment.annotations().get("kubernetes.io/change-cause"),
        deployment.spec.revision_history_limit.unwrap_or(10),
    );
    let status = ApplicationDeploymentStatus {
        observed_generation: deployment.metadata.generation,
        replicas: view.members.len() as i32,
        updated_replicas: updated,
        ready_replicas: ready,
        available_replicas: available,
        unavailable_replicas: (replicas - available).max(0),
        ready_text: Some(format!("{available}/{replicas}")),
        selector: Some(crate::labels::to_string(&deployment.spec.selector)),
        revision: history.last().map(|r| r.revision),
        history,
        conditions,
    };
    (status, complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_model::ApplicationDeploymentSpec;

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).unwrap())
    }

    fn member(name: &str, hash: &str, available: bool) -> Member {
        Member {
            name: name.into(),
            hash: hash.into(),
            device: Some(format!("dev-{name}")),
            placed: true,
            available,
        }
    }

    fn deployment(replicas: i32) -> ApplicationDeployment {
        let mut d = ApplicationDeployment::new(
            "web",
            ApplicationDeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            },
        );
        d.metadata.generation = Some(3);
        d
    }

    fn view<'a>(members: &'a [Member], failure: Option<&'a str>) -> View<'a> {
        View {
            members,
            apps: &[],
            hash: "h1",
            replicas: 2,
            max_unavailable: 0,
            paused: false,
            failure,
        }
    }

    #[test]
    fn a_rolled_out_deployment_is_complete_and_available() {
        let members = [member("a", "h1", true), member("b", "h1", true)];
        let (status, complete) = status(&deployment(2), &view(&members, None), at(10));
        assert!(complete);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(
            (
                status.replicas,
                status.updated_replicas,
                status.available_replicas
            ),
            (2, 2, 2)
        );
        assert_eq!(status.ready_text.as_deref(), Some("2/2"));
        assert_eq!(status.revision, Some(1));
        let found: Vec<(&str, &str, &str)> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("Available", "True", "MinimumReplicasAvailable"),
                ("Progressing", "True", "NewReplicaSetAvailable"),
            ]
        );
    }

    #[test]
    fn a_placement_failure_shows_until_it_clears_and_transition_times_stay() {
        let members = [member("a", "h1", false)];
        let mut d = deployment(2);
        let (failing, complete) = status(&d, &view(&members, Some("0/3 devices")), at(10));
        assert!(!complete);
        let failure = conditions::find(&failing.conditions, "ReplicaFailure").unwrap();
        assert_eq!(failure.message, "0/3 devices");
        assert_eq!(failing.unavailable_replicas, 2);
        d.status = Some(failing);
        // Still unavailable later: its transition time stays; the failure clears.
        let (later, _) = status(&d, &view(&members, None), at(20));
        let available = conditions::find(&later.conditions, "Available").unwrap();
        assert_eq!(available.status, "False");
        assert_eq!(available.last_transition_time, at(10));
        let progressing = conditions::find(&later.conditions, "Progressing").unwrap();
        assert_eq!(progressing.last_transition_time, at(20));
        assert_eq!(progressing.reason, "ReplicaSetUpdated");
        assert!(conditions::find(&later.conditions, "ReplicaFailure").is_none());
        // Computed again from the same view: the same status, so nothing to write.
        d.status = Some(later.clone());
        assert_eq!(status(&d, &view(&members, None), at(30)).0, later);
    }
}
