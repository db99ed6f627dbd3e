//! Binding standalone applications (no controller, no device yet) to devices, reported in their
//! `Scheduled` condition and as events.

use std::sync::Arc;
use std::time::Instant;

use eve_model::{Application, ApplicationStatus, Device, conditions};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::{Ctx, Error, Owner, controller_of, now};
use super::expectations::Expected;
use super::owned::WRITES_IN_FLIGHT;
use crate::events::{Record, reference};
use crate::scheduling::{self, Load};

/// Binds those of `apps` that are standalone and unbound (in name order), each to the device
/// [`scheduling::Spread`] chooses.
pub(super) async fn reconcile(
    ctx: &Ctx,
    owner: &Owner,
    ns: &str,
    apps: &[Arc<Application>],
) -> Result<(), Error> {
    let mut pending: Vec<Arc<Application>> = apps.iter().filter(|a| waits(a)).cloned().collect();
    if pending.is_empty() {
        return Ok(());
    }
    pending.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let devices = ctx.devices_in(ns);
    let refs: Vec<&Device> = devices.iter().map(AsRef::as_ref).collect();
    let networks = ctx.networks_in(ns);
    let context = ctx.context(ns, &networks);
    let load = Load {
        total: ctx.load_in(ns),
        ..Load::default()
    };
    let mut spread = scheduling::Spread::new(&refs, load, false);
    // Chosen one after another (each counted on its device), then written concurrently.
    let choices: Vec<(Arc<Application>, Result<String, String>)> = pending
        .into_iter()
        .map(|app| {
            let choice = spread.choose(&app.spec, app.annotations(), &context);
            if let Ok(device) = &choice {
                spread.add(device);
            }
            (app, choice)
        })
        .collect();
    let api: Api<Application> = Api::namespaced(ctx.client.clone(), ns);
    let results: Vec<Result<(), Error>> = futures::stream::iter(choices)
        .map(|(app, choice)| bind(ctx, &api, owner, app, choice))
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Whether `app` waits for a device: standalone (no controller), not bound yet, not being
/// deleted.
pub(super) fn waits(app: &Application) -> bool {
    app.spec.node_name.as_deref().is_none_or(str::is_empty)
        && app.metadata.deletion_timestamp.is_none()
        && controller_of(app).is_none()
}

/// Binds `app` to the device chosen for it, or says why none was; records it in its
/// `Scheduled` condition and an event.
async fn bind(
    ctx: &Ctx,
    api: &Api<Application>,
    owner: &Owner,
    app: Arc<Application>,
    choice: Result<String, String>,
) -> Result<(), Error> {
    let name = app.name_any();
    let ns = app.namespace().unwrap_or_default();
    let (scheduled, reason, message) = match choice {
        Ok(device) => {
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"nodeName": device}})),
            )
            .await?;
            ctx.expectations
                .expect(owner, &name, Expected::Bound, Instant::now());
            ctx.expectations.settle(owner, |n| ctx.observed(&ns, n));
            (true, "Scheduled", format!("bound to Device {device}"))
        }
        Err(why) => (false, "Unschedulable", why),
    };
    let Some(status) = scheduled_status(&app, scheduled, reason, &message) else {
        return Ok(());
    };
    let record = if scheduled {
        Record::normal
    } else {
        Record::warning
    };
    ctx.events
        .record(record(reference(app.as_ref()), reason, "Schedule", message));
    ctx.write_status::<Application, _>(&ns, &name, &status)
        .await
}

/// The status to write on `app` for the outcome of binding it (its conditions, and `PENDING`
/// for an unbound application without a state); `None` if its `Scheduled` condition already
/// says so.
fn scheduled_status(
    app: &Application,
    scheduled: bool,
    reason: &str,
    message: &str,
) -> Option<ApplicationStatus> {
    let old = app.status.clone().unwrap_or_default();
    if conditions::find(&old.conditions, "Scheduled")
        .is_some_and(|p| p.message == message && p.reason == reason)
    {
        return None;
    }
    let mut conditions = old.conditions;
    conditions::set(
        &mut conditions,
        "Scheduled",
        scheduled,
        reason,
        message,
        now(),
    );
    let state = (!scheduled && old.state.is_none()).then(|| "PENDING".to_string());
    Some(ApplicationStatus {
        state,
        conditions,
        ..ApplicationStatus::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_model::ApplicationSpec;

    #[test]
    fn an_unschedulable_application_is_pending_once() {
        let mut app = Application::new("a", ApplicationSpec::default());
        let status = scheduled_status(&app, false, "Unschedulable", "0/0 devices").unwrap();
        assert_eq!(status.state.as_deref(), Some("PENDING"));
        let json = serde_json::to_value(&status).unwrap();
        // Only what binding owns is in the patch.
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["conditions", "state"]);
        app.status = Some(status);
        assert!(scheduled_status(&app, false, "Unschedulable", "0/0 devices").is_none());
        let bound = scheduled_status(&app, true, "Scheduled", "bound to Device d").unwrap();
        assert_eq!(bound.state, None);
        assert_eq!(bound.conditions.len(), 1);
        assert_eq!(bound.conditions[0].status, "True");
    }
}
