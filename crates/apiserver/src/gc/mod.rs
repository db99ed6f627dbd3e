//! The garbage collector: `metadata.ownerReferences` honoured for every kind the server serves,
//! as kube-controller-manager's garbage collector does (`pkg/controller/garbagecollector`).
//!
//! - **Graph.** One monitor per stored resource (the catalog's kinds at their storage version,
//!   and those of CRDs still in the store, terminating ones included, so their objects' deletions
//!   are seen) lists it page by page, then watches it; each object becomes a [`Node`] holding its
//!   coordinates, flags and owner references only, never the object. An index maps each owner
//!   UID to the UIDs of its dependents. An owner referenced before it is seen is a *virtual*
//!   node, verified by a live read.
//! - **Attempt to delete** (a queue of UIDs, several workers): an object whose owners are all
//!   absent (not found, or found with another UID: *dangling*) is deleted, with the propagation
//!   its own finalizers ask; owners that are absent or waiting in foreground are dropped from an
//!   object that still has a live owner. Every owner is read live before anything is deleted, so
//!   an object is never deleted because its owner has not been seen yet; the deletion carries
//!   the object's UID and resourceVersion as preconditions, so a newer object of that name, or
//!   an object adopted meanwhile, is left alone.
//! - **Foreground**: an owner marked with the `foregroundDeletion` finalizer has its dependents
//!   deleted; it loses the finalizer (and goes) once no dependent with `blockOwnerDeletion:
//!   true` is left.
//! - **Orphan**: an owner marked with the `orphan` finalizer is removed from its dependents'
//!   `ownerReferences`, then loses the finalizer.
//! - A cluster-scoped object naming a namespaced owner is never collected; the collector logs
//!   a warning (`OwnerRefInvalidNamespace`), as kube records an Event. A namespaced owner is
//!   looked for in its dependent's namespace only.
//!
//! Nothing acts before every monitor has listed its resource once, so orphaning and foreground
//! deletion never miss a dependent of a kind not yet seen.

mod collector;
mod decide;
mod graph;
mod kinds;
mod monitor;
mod owners;
mod writes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use registry::{ApiError, Deletion};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::server::ApiServer;
use collector::{Collector, Work};
use graph::{Graph, Queues};
use kinds::{Kinds, Watched};

/// The finalizer of an owner whose dependents are orphaned before it goes.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer of an owner whose dependents are deleted before it goes.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// How a deletion treats the deleted object's dependents (`DeleteOptions.propagationPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// The object goes now; the collector deletes its dependents afterwards.
    Background,
    /// The object waits (`foregroundDeletion`) until its blocking dependents are gone.
    Foreground,
    /// The object waits (`orphan`) until its dependents no longer name it as owner.
    Orphan,
}

impl Propagation {
    /// The policy named `value` (`Background`, `Foreground`, `Orphan`).
    pub fn parse(value: &str) -> Option<Propagation> {
        match value {
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            "Orphan" => Some(Propagation::Orphan),
            _ => None,
        }
    }

    /// The finalizers a deletion with this policy takes off and puts on the object (kube's
    /// `deletionFinalizersForGarbageCollection`): both collector finalizers off, then the
    /// policy's on.
    pub fn apply(self, deletion: &mut Deletion) {
        deletion.remove_finalizers = vec![ORPHAN_FINALIZER.into(), FOREGROUND_FINALIZER.into()];
        deletion.add_finalizers = match self {
            Propagation::Background => Vec::new(),
            Propagation::Foreground => vec![FOREGROUND_FINALIZER.into()],
            Propagation::Orphan => vec![ORPHAN_FINALIZER.into()],
        };
    }
}

/// Why the collector could not decide about an object (it tries again later).
#[derive(Debug, thiserror::Error)]
enum GcError {
    /// The API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An owner reference names a kind the server does not serve (yet).
    #[error("no served kind {kind} in {api_version}")]
    UnknownKind {
        /// The reference's apiVersion.
        api_version: String,
        /// The reference's kind.
        kind: String,
    },
    /// A cluster-scoped object names a namespaced owner: never collected.
    #[error("the cluster-scoped object names a namespaced owner {kind} {name:?}")]
    NamespacedOwnerOfClusterScoped {
        /// The owner's kind.
        kind: String,
        /// The owner's name.
        name: String,
    },
    /// The object changed (its owners) while the collector decided: decide again.
    #[error("the object's owners changed")]
    Changed,
}

/// How many workers delete and orphan, each on its own queue.
const DELETE_WORKERS: usize = 8;
const ORPHAN_WORKERS: usize = 2;

type Uid = Arc<str>;

/// Runs the garbage collector of `server` until `shutdown` turns true.
pub(crate) async fn run(server: Arc<ApiServer>, mut shutdown: watch::Receiver<bool>) {
    let (found, found_rx) = mpsc::unbounded_channel();
    let (changes, changes_rx) = mpsc::channel(1024);
    let collector = Arc::new(Collector {
        server,
        graph: Mutex::new(Graph::default()),
        kinds: RwLock::new(Arc::new(Kinds::default())),
        queues: Queues {
            delete: Arc::default(),
            orphan: Arc::default(),
        },
        found,
    });
    let builder = collector.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move { builder.build(changes_rx, found_rx, stop).await });
    for _ in 0..DELETE_WORKERS {
        let worker = collector.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { worker.work(Work::Delete, stop).await });
    }
    for _ in 0..ORPHAN_WORKERS {
        let worker = collector.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { worker.work(Work::Orphan, stop).await });
    }
    let mut monitors: BTreeMap<String, (Arc<Watched>, AbortHandle)> = BTreeMap::new();
    let mut seen_catalog = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut since_full = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        let catalog = collector.server.catalog();
        since_full += 1;
        let changed = seen_catalog
            .as_ref()
            .is_none_or(|seen| !Arc::ptr_eq(seen, &catalog));
        // The catalog changes with every CRD change; look at the CRDs at least every minute.
        if !changed && since_full < 240 {
            continue;
        }
        match collector.kinds_of(&catalog).await {
            Ok(kinds) => {
                collector.resync(&kinds, &mut monitors, &changes);
                *collector.kinds.write().expect("not poisoned") = Arc::new(kinds);
                seen_catalog = Some(catalog);
                since_full = 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the garbage collector cannot list CRDs; retrying")
            }
        }
    }
    for (_, (_, monitor)) in monitors {
        monitor.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_sets_the_collector_finalizers() {
        let mut deletion = Deletion::default();
        Propagation::Orphan.apply(&mut deletion);
        assert_eq!(deletion.add_finalizers, vec!["orphan".to_string()]);
        Propagation::Foreground.apply(&mut deletion);
        assert_eq!(
            deletion.add_finalizers,
            vec!["foregroundDeletion".to_string()]
        );
        Propagation::Background.apply(&mut deletion);
        assert!(deletion.add_finalizers.is_empty());
        assert_eq!(deletion.remove_finalizers.len(), 2);
        assert_eq!(Propagation::parse("Orphan"), Some(Propagation::Orphan));
        assert_eq!(Propagation::parse("orphan"), None);
    }
}
