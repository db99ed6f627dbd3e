//! The collector itself: what it holds, the kinds it watches and the monitors it keeps
//! running for them, the loop applying changes to the graph, the workers, and live reads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use registry::{ApiError, ListOptions};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::GcError;
use super::graph::{Change, Graph, Queues};
use super::kinds::{Kinds, Watched};
use super::monitor::monitor;
use super::owners::Identity;
use crate::catalog::Kind;
use crate::crd;
use crate::server::ApiServer;

/// The collector: the graph, the kinds, the queues and the server it works on.
pub(super) struct Collector {
    pub(super) server: Arc<ApiServer>,
    pub(super) graph: Mutex<Graph>,
    pub(super) kinds: RwLock<Arc<Kinds>>,
    pub(super) queues: Queues,
    /// Changes found by the workers (absent owners), for the graph.
    pub(super) found: mpsc::UnboundedSender<Change>,
}

/// The two kinds of work, each with its queue.
#[derive(Clone, Copy)]
pub(super) enum Work {
    Delete,
    Orphan,
}

impl Collector {
    /// The kinds to watch: the catalog's, and those of every CRD in the store, whatever its
    /// state (a terminating CRD's kind stays in the catalog until the CRD goes).
    pub(super) async fn kinds_of(
        &self,
        catalog: &crate::catalog::Catalog,
    ) -> Result<Kinds, ApiError> {
        let mut kinds = Kinds::default();
        let storage = |k: &Arc<Kind>| k.version == k.storage_version;
        for kind in catalog.kinds.iter().filter(|k| storage(k)) {
            kinds.add(kind.clone());
        }
        let crds = self
            .server
            .registry
            .list(&self.server.crd_kind.main, None, &ListOptions::default())
            .await?;
        for crd in &crds.items {
            let defined: Vec<Arc<Kind>> = crd::kinds(crd, &catalog.components)
                .into_iter()
                .map(Arc::new)
                .collect();
            if let Some(kind) = defined.iter().find(|k| storage(k)).or(defined.first()) {
                kinds.add(kind.clone());
            }
        }
        Ok(kinds)
    }

    /// Starts monitors of new resources, stops those of resources gone.
    pub(super) fn resync(
        self: &Arc<Self>,
        kinds: &Kinds,
        monitors: &mut BTreeMap<String, (Arc<Watched>, AbortHandle)>,
        changes: &mpsc::Sender<Change>,
    ) {
        let stale: Vec<String> = monitors
            .iter()
            .filter(|(prefix, (watched, _))| {
                kinds
                    .watched
                    .get(*prefix)
                    .is_none_or(|now| !now.same(watched))
            })
            .map(|(prefix, _)| prefix.clone())
            .collect();
        for prefix in stale {
            if let Some((watched, monitor)) = monitors.remove(&prefix) {
                monitor.abort();
                tracing::debug!(resource = %watched.kind.main.qualified(), "garbage collector stops watching");
                self.graph
                    .lock()
                    .expect("not poisoned")
                    .apply(Change::Unwatched(watched), &self.queues);
            }
        }
        for (prefix, watched) in &kinds.watched {
            if monitors.contains_key(prefix) {
                continue;
            }
            self.graph
                .lock()
                .expect("not poisoned")
                .watching
                .insert(prefix.clone(), (watched.clone(), false));
            let monitor = tokio::spawn(monitor(
                self.server.clone(),
                watched.clone(),
                changes.clone(),
            ));
            monitors.insert(prefix.clone(), (watched.clone(), monitor.abort_handle()));
        }
    }

    /// Applies the monitors' changes and the workers' findings to the graph.
    pub(super) async fn build(
        &self,
        mut changes: mpsc::Receiver<Change>,
        mut found: mpsc::UnboundedReceiver<Change>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let change = tokio::select! {
                Some(change) = changes.recv() => change,
                Some(change) = found.recv() => change,
                _ = shutdown.changed() => return,
            };
            self.graph
                .lock()
                .expect("not poisoned")
                .apply(change, &self.queues);
        }
    }

    /// One worker: takes items from the queue of `work` until `shutdown`.
    pub(super) async fn work(self: Arc<Self>, work: Work, mut shutdown: watch::Receiver<bool>) {
        let queue = match work {
            Work::Delete => self.queues.delete.clone(),
            Work::Orphan => self.queues.orphan.clone(),
        };
        loop {
            let uid = tokio::select! {
                uid = queue.next() => uid,
                _ = shutdown.changed() => return,
            };
            let outcome = match work {
                Work::Delete => self.attempt_to_delete(uid.clone()).await,
                Work::Orphan => self.attempt_to_orphan(uid.clone()).await,
            };
            queue.done(uid, outcome);
        }
    }

    pub(super) fn kinds(&self) -> Arc<Kinds> {
        self.kinds.read().expect("not poisoned").clone()
    }

    /// The object at `identity` now, if it is there with that UID.
    pub(super) async fn live(
        &self,
        identity: &Identity,
    ) -> Result<Option<(Arc<Watched>, Value)>, GcError> {
        let watched = self
            .kinds()
            .resolve(&identity.api_version, &identity.kind)?;
        let namespaced = watched.kind.namespaced;
        if namespaced && identity.namespace.is_empty() {
            // A namespaced owner named by a cluster-scoped object: not absent, unresolvable.
            return Err(GcError::NamespacedOwnerOfClusterScoped {
                kind: identity.kind.to_string(),
                name: identity.name.to_string(),
            });
        }
        let namespace = watched.namespace_of(identity);
        match self
            .server
            .registry
            .get(&watched.kind.main, namespace, &identity.name)
            .await
        {
            Ok(object) if registry::object::meta_str(&object, "uid") == &*identity.uid => {
                Ok(Some((watched, object)))
            }
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn report_absent(&self, identity: &Identity) {
        let _ = self.found.send(Change::Absent(identity.clone()));
    }
}
