//! The API server's own controllers, on the pattern of kube-controller-manager's: a watch feeds
//! a de-duplicating [`WorkQueue`] of names, and a worker reconciles one name at a time from the
//! object as it is now, answering whether it is done, failed (retried with a back-off per
//! name) or not done yet (looked at again after a while). `crd`: CRDs established, deleted ones
//! emptied; `namespace`: terminating namespaces emptied; ServiceAccounts
//! (`crate::serviceaccounts`): every namespace's `default` ServiceAccount and
//! `kube-root-ca.crt`.

mod crd;
mod namespace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use registry::{ApiError, ListOptions, Resource};
use serde_json::Value;
use tokio::sync::watch;

use crate::follow::{Followed, follow_from};
use crate::server::ApiServer;
use crate::workqueue::{Outcome, WorkQueue};

/// Runs the CRD controller until `shutdown`.
pub(crate) fn spawn_crds(server: Arc<ApiServer>, shutdown: watch::Receiver<bool>) {
    let crds = Source::all(server.crd_kind.main.clone(), |crd, deleted| {
        (deleted || crd::all(crd)).then(|| name(crd))
    });
    spawn(server, vec![crds], 1, shutdown, |server, name| {
        server.reconcile_crd_named(name)
    });
}

/// Runs the namespace controller until `shutdown`.
pub(crate) fn spawn_namespaces(server: Arc<ApiServer>, shutdown: watch::Receiver<bool>) {
    let namespaces = Source::all(crate::native::namespace_resource(), |ns, deleted| {
        (deleted || namespace::terminating(ns)).then(|| name(ns))
    });
    spawn(server, vec![namespaces], 2, shutdown, |server, name| {
        server.reconcile_namespace_named(name)
    });
}

/// Runs the ServiceAccounts controller (every namespace's `default` ServiceAccount and
/// `kube-root-ca.crt`) until `shutdown`: a namespace is looked at when it appears and when its
/// `kube-root-ca.crt` changes or goes.
pub(crate) fn spawn_service_accounts(server: Arc<ApiServer>, shutdown: watch::Receiver<bool>) {
    use crate::serviceaccounts::ROOT_CA_CONFIG_MAP;
    let namespaces = Source::all(crate::native::namespace_resource(), |ns, deleted| {
        (!deleted).then(|| name(ns))
    });
    let root_ca = Source {
        resource: crate::native::config_map_resource(),
        selected: ListOptions {
            fields: apimachinery::fields::Selector::parse(&format!(
                "metadata.name={ROOT_CA_CONFIG_MAP}"
            ))
            .expect("a field selector"),
            ..ListOptions::default()
        },
        key: |config_map, _| Some(registry::object::meta_str(config_map, "namespace").to_string()),
    };
    let root = Arc::new(tokio::sync::OnceCell::new());
    spawn(
        server,
        vec![namespaces, root_ca],
        1,
        shutdown,
        move |server, name| server.reconcile_service_accounts_named(name, root.clone()),
    );
}

fn name(object: &Value) -> String {
    registry::object::name(object).to_string()
}

/// Where a controller's work comes from: a resource followed (the objects `selected` picks),
/// and the name of the work each of its objects makes, if any, told whether it was deleted.
struct Source {
    resource: Resource,
    selected: ListOptions,
    key: fn(&Value, bool) -> Option<String>,
}

impl Source {
    fn all(resource: Resource, key: fn(&Value, bool) -> Option<String>) -> Source {
        Source {
            resource,
            selected: ListOptions::default(),
            key,
        }
    }
}

/// Feeds one queue from `sources`, and runs `workers` workers of `reconcile` on it.
fn spawn<R, F>(
    server: Arc<ApiServer>,
    sources: Vec<Source>,
    workers: usize,
    shutdown: watch::Receiver<bool>,
    reconcile: R,
) where
    R: Fn(Arc<ApiServer>, String) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send,
{
    let queue = Arc::new(WorkQueue::<String>::default());
    for source in sources {
        tokio::spawn(feed(
            server.clone(),
            source,
            queue.clone(),
            shutdown.clone(),
        ));
    }
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

/// Follows a source and queues the work its objects make.
async fn feed(
    server: Arc<ApiServer>,
    source: Source,
    queue: Arc<WorkQueue<String>>,
    shutdown: watch::Receiver<bool>,
) {
    let Source {
        resource,
        selected,
        key,
    } = source;
    follow_from(
        &server.registry,
        &resource,
        &selected,
        None,
        shutdown,
        |followed| match followed {
            Followed::Listed { objects, .. } => {
                for work in objects.iter().filter_map(|o| key(o, false)) {
                    queue.add(work);
                }
            }
            Followed::Applied(object) => key(&object, false).into_iter().for_each(|w| queue.add(w)),
            Followed::Deleted(object) => key(&object, true).into_iter().for_each(|w| queue.add(w)),
            Followed::Progress(_) => {}
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
