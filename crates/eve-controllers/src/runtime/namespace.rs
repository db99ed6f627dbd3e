//! The namespace reconciler: what concerns the standalone applications and the claims of a
//! namespace: their references ([`references`](super::references)), their binding to devices
//! ([`binding`](super::binding)), and the claims' binding ([`claims`](super::claims)).

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::context::{Ctx, Error, Owner};
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
    references::reconcile(&ctx, &ns).await?;
    binding::reconcile(&ctx, &owner, &ns).await?;
    claims::reconcile(&ctx, &ns).await?;
    Ok(Action::await_change())
}
