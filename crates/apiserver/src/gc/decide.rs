//! The decisions: whether an object whose owners are absent goes (and with which propagation),
//! dangling and waiting owners dropped, foreground owners waiting for their blocking
//! dependents, and orphaning. Every owner is read live before anything is deleted.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use registry::ApiError;

use super::collector::Collector;
use super::kinds::Watched;
use super::owners::{Identity, OwnerRef, owner_refs};
use super::{FOREGROUND_FINALIZER, GcError, ORPHAN_FINALIZER, Propagation, Uid};
use crate::workqueue::Outcome;

impl Collector {
    /// kube's `attemptToDeleteItem`.
    pub(super) async fn attempt_to_delete(&self, uid: Uid) -> Outcome {
        let (identity, observed, deleting_dependents, has_owners) = {
            let graph = self.graph.lock().expect("not poisoned");
            if !graph.synced() {
                return Outcome::After(Duration::from_millis(100));
            }
            let Some(node) = graph.nodes.get(&uid) else {
                return Outcome::Forget;
            };
            if node.being_deleted && !node.deleting_dependents {
                return Outcome::Forget;
            }
            (
                node.identity.clone(),
                node.observed(),
                node.deleting_dependents,
                !node.owners.is_empty(),
            )
        };
        // Nothing to decide about an object seen without owners; its next change says more.
        if observed && !has_owners && !deleting_dependents {
            return Outcome::Forget;
        }
        let result = self.decide(&identity, observed, deleting_dependents).await;
        match result {
            Ok(outcome) => outcome,
            // A virtual owner only cluster-scoped objects name: they are warned about.
            Err(GcError::NamespacedOwnerOfClusterScoped { .. }) if !observed => Outcome::Forget,
            Err(GcError::NamespacedOwnerOfClusterScoped { kind, name }) => {
                tracing::warn!(
                    reason = "OwnerRefInvalidNamespace",
                    object = %identity.name,
                    kind = %identity.kind,
                    owner = %name,
                    owner_kind = %kind,
                    "a cluster-scoped object names a namespaced owner: it is not garbage collected"
                );
                Outcome::Forget
            }
            Err(e) => {
                tracing::debug!(object = %identity.name, kind = %identity.kind, error = %e, "garbage collection will try again");
                Outcome::Retry
            }
        }
    }

    async fn decide(
        &self,
        identity: &Identity,
        observed: bool,
        deleting_dependents: bool,
    ) -> Result<Outcome, GcError> {
        let Some((watched, latest)) = self.live(identity).await? else {
            self.report_absent(identity);
            return Ok(Outcome::Forget);
        };
        if deleting_dependents {
            return self.deleting_dependents(identity, &watched).await;
        }
        let owners = owner_refs(&latest);
        if owners.is_empty() {
            // A virtual node stays until a monitor sees its object.
            return Ok(if observed {
                Outcome::Forget
            } else {
                Outcome::Retry
            });
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for owner in &owners {
            match self.owner_state(identity, owner).await? {
                OwnerState::Absent => dangling.push(owner.uid.clone()),
                OwnerState::Waiting => waiting.push(owner.uid.clone()),
                OwnerState::Solid => solid.push(owner.uid.clone()),
            }
        }
        let revision = registry::object::meta_str(&latest, "resourceVersion")
            .parse::<i64>()
            .ok();
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Outcome::Forget);
            }
            let mut gone = dangling;
            gone.extend(waiting);
            tracing::debug!(object = %identity.name, kind = %identity.kind, "removing absent owners");
            self.remove_owners(identity, &watched, &gone).await?;
            return Ok(Outcome::Forget);
        }
        let has_dependents = {
            let graph = self.graph.lock().expect("not poisoned");
            let dependents = graph.dependents.get(&identity.uid);
            let any = dependents.is_some_and(|d| !d.is_empty());
            let cycle = dependents
                .into_iter()
                .flatten()
                .any(|d| graph.nodes.get(d).is_some_and(|n| n.deleting_dependents));
            any.then_some(cycle)
        };
        let finalizers = registry::object::finalizers(&latest);
        let policy = match has_dependents {
            Some(cycle) if !waiting.is_empty() => {
                if cycle {
                    self.unblock_owners(identity, &watched).await?;
                }
                Propagation::Foreground
            }
            _ if finalizers.iter().any(|f| f == ORPHAN_FINALIZER) => Propagation::Orphan,
            _ if finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) => Propagation::Foreground,
            _ => Propagation::Background,
        };
        tracing::debug!(object = %identity.name, kind = %identity.kind, ?policy, "garbage collecting");
        match self
            .delete(identity, &watched, revision, &owners, policy)
            .await
        {
            Ok(()) => Ok(Outcome::Forget),
            Err(GcError::Api(ApiError::NotFound { .. })) => {
                self.report_absent(identity);
                Ok(Outcome::Forget)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `owner`, named by the object at `identity`, exists, waits for its dependents
    /// (foreground), or is absent (kube's `isDangling` and `classifyReferences`).
    async fn owner_state(
        &self,
        identity: &Identity,
        owner: &OwnerRef,
    ) -> Result<OwnerState, GcError> {
        let as_named = owner.identity(&identity.namespace);
        let cluster = owner.identity(&"".into());
        let resolved = self.kinds().resolve(&owner.api_version, &owner.kind);
        if identity.namespace.is_empty() && resolved.as_ref().is_ok_and(|w| w.kind.namespaced) {
            return Err(GcError::NamespacedOwnerOfClusterScoped {
                kind: owner.kind.to_string(),
                name: owner.name.to_string(),
            });
        }
        {
            let graph = self.graph.lock().expect("not poisoned");
            if graph.absent.has(&cluster) || graph.absent.has(&as_named) {
                return Ok(OwnerState::Absent);
            }
        }
        let watched = resolved?;
        let (namespace, key) = if watched.kind.namespaced {
            (&*identity.namespace, as_named)
        } else {
            ("", cluster)
        };
        let found = match self
            .server
            .registry
            .get(&watched.kind.main, namespace, &owner.name)
            .await
        {
            Ok(object) => Some(object),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(object) = found.filter(|o| registry::object::meta_str(o, "uid") == &*owner.uid)
        else {
            self.graph.lock().expect("not poisoned").absent.add(key);
            return Ok(OwnerState::Absent);
        };
        let deleting = !registry::object::meta_str(&object, "deletionTimestamp").is_empty();
        let foreground = registry::object::finalizers(&object)
            .iter()
            .any(|f| f == FOREGROUND_FINALIZER);
        Ok(if deleting && foreground {
            OwnerState::Waiting
        } else {
            OwnerState::Solid
        })
    }

    /// An owner in foreground deletion: its blocking dependents are deleted; once none is
    /// left, it loses its finalizer (kube's `processDeletingDependentsItem`).
    async fn deleting_dependents(
        &self,
        identity: &Identity,
        watched: &Arc<Watched>,
    ) -> Result<Outcome, GcError> {
        let blocking: Vec<(Uid, bool)> = {
            let graph = self.graph.lock().expect("not poisoned");
            graph
                .dependents
                .get(&identity.uid)
                .into_iter()
                .flatten()
                .filter_map(|d| graph.nodes.get(d).map(|n| (d, n)))
                .filter(|(_, n)| n.owners.iter().any(|r| r.uid == identity.uid && r.block))
                .map(|(d, n)| (d.clone(), n.deleting_dependents))
                .collect()
        };
        if blocking.is_empty() {
            tracing::debug!(object = %identity.name, kind = %identity.kind, "dependents gone; removing the foregroundDeletion finalizer");
            self.remove_finalizer(identity, watched, FOREGROUND_FINALIZER)
                .await?;
            return Ok(Outcome::Forget);
        }
        for (dependent, deleting_dependents) in blocking {
            if !deleting_dependents {
                self.queues.delete.add(dependent);
            }
        }
        Ok(Outcome::Forget)
    }

    /// kube's `attemptToOrphanWorker`: the owner is removed from its dependents' owner
    /// references, then loses its `orphan` finalizer.
    pub(super) async fn attempt_to_orphan(&self, uid: Uid) -> Outcome {
        let (identity, dependents) = {
            let graph = self.graph.lock().expect("not poisoned");
            if !graph.synced() {
                return Outcome::After(Duration::from_millis(100));
            }
            let Some(node) = graph.nodes.get(&uid) else {
                return Outcome::Forget;
            };
            let dependents: Vec<Identity> = graph
                .dependents
                .get(&uid)
                .into_iter()
                .flatten()
                .filter_map(|d| graph.nodes.get(d).map(|n| n.identity.clone()))
                .collect();
            (node.identity.clone(), dependents)
        };
        let kinds = self.kinds();
        let owner = [uid.clone()];
        let results: Vec<Result<(), GcError>> = futures::stream::iter(dependents)
            .map(|dependent| {
                let kinds = kinds.clone();
                let owner = &owner;
                async move {
                    let watched = kinds.resolve(&dependent.api_version, &dependent.kind)?;
                    match self.remove_owners(&dependent, &watched, owner).await {
                        Ok(()) | Err(GcError::Api(ApiError::NotFound { .. })) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            tracing::debug!(object = %identity.name, kind = %identity.kind, error = %e, "orphaning dependents will try again");
            return Outcome::Retry;
        }
        let result = match kinds.resolve(&identity.api_version, &identity.kind) {
            Ok(watched) => {
                self.remove_finalizer(&identity, &watched, ORPHAN_FINALIZER)
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) | Err(GcError::Api(ApiError::NotFound { .. })) => Outcome::Forget,
            Err(e) => {
                tracing::debug!(object = %identity.name, kind = %identity.kind, error = %e, "removing the orphan finalizer will try again");
                Outcome::Retry
            }
        }
    }
}

/// What an owner is to a dependent.
pub(super) enum OwnerState {
    /// It exists.
    Solid,
    /// It exists and waits in foreground deletion for its dependents.
    Waiting,
    /// It does not exist (or another object has its name).
    Absent,
}
