//! The namespace reconciler: what concerns the standalone applications and the claims of a
//! namespace: their references ([`references`](super::references)), their binding to devices
//! ([`binding`](super::binding)), and the claims' binding ([`claims`](super::claims)), for the
//! applications its [`Work`] names: those that changed since it last ran, every unbound one
//! when a Device changed, all of them after a re-list or a change to what they name.

use std::sync::Arc;
use std::time::Instant;

use eve_model::Application;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::{Ctx, Error, Owner};
use super::work::Work;
use super::{binding, claims, references};

pub(super) async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let owner = Owner::Namespace(ObjectRef::from_obj(namespace.as_ref()));
    // Bindings not yet in the cache: binding again would bind twice.
    if let Some(wait) = ctx.expectations.pending(&owner, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    if let Some(wait) = ctx.paced(&owner, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let ns = namespace.name_any();
    let work = ctx.work.take(&ns);
    match run(&ctx, &owner, &ns, &work).await {
        Ok(()) => Ok(Action::await_change()),
        Err(e) => {
            ctx.work.restore(&ns, work);
            Err(e)
        }
    }
}

/// Looks at the applications `work` names (all of `ns`'s, or those that changed, and the
/// unbound ones).
async fn run(ctx: &Ctx, owner: &Owner, ns: &str, work: &Work) -> Result<(), Error> {
    // The applications waiting for a device are kept from what the cache shows here: all of
    // them when all were looked at, else those that changed (each change is noted for this
    // reconcile, so the names kept are up to date before the Device's change reads them).
    let apps: Vec<Arc<Application>> = if work.all {
        let apps = ctx.apps_in(ns);
        let waiting = apps.iter().filter(|a| binding::waits(a));
        ctx.work
            .all_waiting(ns, waiting.map(|a| a.name_any()).collect());
        apps
    } else {
        let mut names: Vec<&String> = work.apps.iter().collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|name| {
                let app = ctx.app(ns, name);
                let waits = app.as_ref().is_some_and(|a| binding::waits(a));
                ctx.work.waits(ns, name, waits);
                app
            })
            .collect()
    };
    ctx.metrics.namespace_reconciles.inc();
    ctx.metrics.applications_examined.inc_by(apps.len() as u64);
    references::reconcile(ctx, ns, &apps).await?;
    if work.unbound && !work.all {
        // A Device changed: those waiting for one may fit now.
        let waiting: Vec<Arc<Application>> = ctx
            .work
            .waiting(ns)
            .iter()
            .filter_map(|name| ctx.app(ns, name))
            .collect();
        ctx.metrics
            .applications_examined
            .inc_by(waiting.len() as u64);
        binding::reconcile(ctx, owner, ns, &waiting).await?;
    } else {
        binding::reconcile(ctx, owner, ns, &apps).await?;
    }
    claims::reconcile(ctx, ns, &apps).await
}
