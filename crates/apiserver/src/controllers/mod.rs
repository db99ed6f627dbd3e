//! The API server's own controllers, on the pattern of kube-controller-manager's: a watch feeds
//! a de-duplicating [`WorkQueue`] of names, and a worker reconciles one name at a time from the
//! object as it is now, answering whether it is done, failed (retried with a back-off per
//! name) or not done yet (looked at again after a while). `crd`: CRDs established, deleted ones
//! emptied; `namespace`: terminating namespaces emptied.

mod crd;
mod namespace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use registry::{ApiError, Resource};
use serde_json::Value;
use tokio::sync::watch;

use crate::follow::{Followed, follow};
use crate::server::ApiServer;
use crate::workqueue::{Outcome, WorkQueue};

/// Runs the CRD controller until `shutdown`.
pub(crate) fn spawn_crds(server: Arc<ApiServer>, shutdown: watch::Receiver<bool>) {
    let resource = server.crd_kind.main.clone();
    spawn(server, resource, crd::all, 1, shutdown, |server, name| {
        server.reconcile_crd_named(name)
    });
}

/// Runs the namespace controller until `shutdown`.
pub(crate) fn spawn_namespaces(server: Arc<ApiServer>, shutdown: watch::Receiver<bool>) {
    let resource = crate::native::namespace_resource();
    spawn(
        server,
        resource,
        namespace::terminating,
        2,
        shutdown,
        |server, name| server.reconcile_namespace_named(name),
    );
}

/// Feeds a queue with the names of `resource`'s objects that `pick` selects (and of those
/// deleted), and runs `workers` workers of `reconcile` on it.
fn spawn<R, F>(
    server: Arc<ApiServer>,
    resource: Resource,
    pick: fn(&Value) -> bool,
    workers: usize,
    shutdown: watch::Receiver<bool>,
    reconcile: R,
) where
    R: Fn(Arc<ApiServer>, String) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send,
{
    let queue = Arc::new(WorkQueue::<String>::default());
    tokio::spawn(feed(
        server.clone(),
        resource,
        pick,
        queue.clone(),
        shutdown.clone(),
    ));
    for _ in 0..workers {
        let (server, queue, reconcile) = (server.clone(), queue.clone(), reconcile.clone());
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    name = queue.next() => name,
                    _ = shutdown.changed() => return,
                };
                let outcome = reconcile(server.clone(), name.clone()).await;
                queue.done(name, outcome);
            }
        });
    }
}

/// Follows `resource` and queues the names `pick` selects, and those deleted.
async fn feed(
    server: Arc<ApiServer>,
    resource: Resource,
    pick: fn(&Value) -> bool,
    queue: Arc<WorkQueue<String>>,
    shutdown: watch::Receiver<bool>,
) {
    let name = |object: &Value| registry::object::name(object).to_string();
    follow(
        &server.registry,
        &resource,
        shutdown,
        |followed| match followed {
            Followed::Listed { objects, .. } => {
                for object in objects.iter().filter(|o| pick(o)) {
                    queue.add(name(object));
                }
            }
            Followed::Applied(object) if pick(&object) => queue.add(name(&object)),
            Followed::Applied(_) | Followed::Progress(_) => {}
            Followed::Deleted(object) => queue.add(name(&object)),
        },
    )
    .await;
}

/// What a reconcile's result means for its queue.
trait Reconciled {
    /// Done (`Ok(true)`), not yet (`Ok(false)`: again after `later`), or failed (logged,
    /// retried with a back-off).
    fn reconciled(self, what: &str, name: &str, later: Duration) -> Outcome;
}

impl Reconciled for Result<bool, ApiError> {
    fn reconciled(self, what: &str, name: &str, later: Duration) -> Outcome {
        match self {
            Ok(true) => Outcome::Forget,
            Ok(false) => Outcome::After(later),
            Err(e) => {
                tracing::warn!(%name, error = %e, "reconciling a {what} failed; retrying");
                Outcome::Retry
            }
        }
    }
}
