//! The owner → dependents graph: one small [`Node`] per object (or virtual owner), the index
//! of dependents by owner UID, the owners found absent, and the transitions that queue work
//! as monitors report changes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::Uid;
use super::kinds::Watched;
use super::owners::{Identity, Meta, OwnerRef, group_of};
use crate::workqueue::WorkQueue;

/// Owners the collector has found absent, remembered to spare live reads.
const ABSENT_CAPACITY: usize = 1024;

/// One object (or a virtual owner) in the graph.
pub(super) struct Node {
    pub(super) identity: Identity,
    /// The resource it was seen in; `None` while virtual (only named by dependents).
    pub(super) watched: Option<Arc<Watched>>,
    pub(super) owners: Vec<OwnerRef>,
    pub(super) being_deleted: bool,
    pub(super) deleting_dependents: bool,
    /// The collector finalizers as last seen (for transitions).
    pub(super) orphan: bool,
    pub(super) foreground: bool,
}

impl Node {
    pub(super) fn observed(&self) -> bool {
        self.watched.is_some()
    }
}

/// Owners found absent, by coordinates (the namespace is empty for cluster-scoped owners).
#[derive(Default)]
pub(super) struct Absent {
    pub(super) order: VecDeque<Identity>,
    pub(super) set: HashSet<Identity>,
}

impl Absent {
    /// The key of coordinates: by group, not version (a reference may name another version).
    fn key(identity: &Identity) -> Identity {
        Identity {
            api_version: group_of(&identity.api_version).into(),
            ..identity.clone()
        }
    }

    pub(super) fn add(&mut self, identity: Identity) {
        let identity = Absent::key(&identity);
        if self.set.insert(identity.clone()) {
            self.order.push_back(identity);
            if self.order.len() > ABSENT_CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    pub(super) fn has(&self, identity: &Identity) -> bool {
        self.set.contains(&Absent::key(identity))
    }
}

/// A change for the graph.
pub(super) enum Change {
    /// A resource listed (first or again): every object in it.
    Listed(Arc<Watched>, Vec<Meta>),
    /// An object added or changed.
    Upsert(Arc<Watched>, Meta),
    /// An object deleted (its UID).
    Deleted(Uid),
    /// A resource no longer watched (its kind is gone): its objects are gone too.
    Unwatched(Arc<Watched>),
    /// A live read found nothing at these coordinates.
    Absent(Identity),
}

/// The owner → dependents graph.
#[derive(Default)]
pub(super) struct Graph {
    pub(super) nodes: HashMap<Uid, Node>,
    /// Owner UID → UIDs of the objects naming it.
    pub(super) dependents: HashMap<Uid, HashSet<Uid>>,
    pub(super) absent: Absent,
    /// Every namespace seen, shared by the nodes.
    pub(super) namespaces: HashSet<Arc<str>>,
    /// The resources watched (by prefix), and whether each has been listed yet.
    pub(super) watching: HashMap<String, (Arc<Watched>, bool)>,
}

/// The collector's two work queues.
pub(super) struct Queues {
    pub(super) delete: Arc<WorkQueue<Uid>>,
    pub(super) orphan: Arc<WorkQueue<Uid>>,
}

impl Graph {
    /// The shared copy of a namespace's name.
    fn intern(&mut self, namespace: &Arc<str>) -> Arc<str> {
        match self.namespaces.get(namespace) {
            Some(shared) => shared.clone(),
            None => {
                self.namespaces.insert(namespace.clone());
                namespace.clone()
            }
        }
    }

    /// Whether `watched` is the resource a monitor currently watches.
    fn watches(&self, watched: &Arc<Watched>) -> bool {
        self.watching
            .get(&watched.prefix)
            .is_some_and(|(w, _)| Arc::ptr_eq(w, watched))
    }

    /// The UIDs of the nodes last seen in the resource at `prefix`.
    fn seen_in<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Uid> {
        self.nodes
            .iter()
            .filter(move |(_, n)| n.watched.as_ref().is_some_and(|w| w.prefix == prefix))
            .map(|(uid, _)| uid)
    }

    /// Whether every watched resource has been listed once.
    pub(super) fn synced(&self) -> bool {
        self.watching.values().all(|(_, listed)| *listed)
    }

    pub(super) fn apply(&mut self, change: Change, queues: &Queues) {
        match change {
            // Changes of a monitor stopped meanwhile are stale.
            Change::Listed(watched, _) | Change::Upsert(watched, _) if !self.watches(&watched) => {}
            Change::Listed(watched, metas) => {
                if let Some((_, listed)) = self.watching.get_mut(&watched.prefix) {
                    *listed = true;
                }
                let seen: HashSet<Uid> = metas.iter().map(|m| m.uid.clone()).collect();
                for meta in metas {
                    self.upsert(&watched, meta, queues);
                }
                let gone: Vec<Uid> = self
                    .seen_in(&watched.prefix)
                    .filter(|uid| !seen.contains(*uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    self.remove(&uid, queues);
                }
            }
            Change::Upsert(watched, meta) => self.upsert(&watched, meta, queues),
            Change::Deleted(uid) => self.remove(&uid, queues),
            Change::Unwatched(watched) => {
                self.watching.remove(&watched.prefix);
                let gone: Vec<Uid> = self.seen_in(&watched.prefix).cloned().collect();
                for uid in gone {
                    self.remove(&uid, queues);
                }
            }
            Change::Absent(identity) => self.absent_at(identity, queues),
        }
    }

    fn upsert(&mut self, watched: &Arc<Watched>, mut meta: Meta, queues: &Queues) {
        meta.namespace = self.intern(&meta.namespace);
        let identity = Identity {
            api_version: watched.api_version.clone(),
            kind: watched.kind_name.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
        };
        let uid = meta.uid.clone();
        let (old_deleting, old_orphan, old_foreground) = match self.nodes.get_mut(&uid) {
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity,
                        watched: Some(watched.clone()),
                        owners: meta.owners.clone(),
                        being_deleted: meta.deleting,
                        deleting_dependents: meta.deleting && meta.foreground,
                        orphan: meta.orphan,
                        foreground: meta.foreground,
                    },
                );
                self.add_dependent(&uid, &meta.namespace, &meta.owners, queues);
                (false, false, false)
            }
            Some(node) => {
                let was_virtual = !node.observed();
                let old = (
                    node.being_deleted && !was_virtual,
                    node.orphan,
                    node.foreground,
                );
                node.watched = Some(watched.clone());
                if node.identity != identity {
                    node.identity = identity.clone();
                    if was_virtual {
                        self.check_dependents_of(&identity, queues);
                    }
                }
                let node = self.nodes.get_mut(&uid).expect("just seen");
                let old_owners = std::mem::replace(&mut node.owners, meta.owners.clone());
                node.being_deleted |= meta.deleting;
                node.orphan = meta.orphan;
                node.foreground = meta.foreground;
                if old_owners != meta.owners {
                    self.owners_changed(&uid, &meta.namespace, &old_owners, &meta.owners, queues);
                }
                old
            }
        };
        // Transitions (kube's processTransitions).
        if meta.deleting && meta.orphan && !(old_deleting && old_orphan) {
            queues.orphan.add(uid);
            return;
        }
        if meta.deleting && meta.foreground && !(old_deleting && old_foreground) {
            if let Some(node) = self.nodes.get_mut(&uid) {
                node.deleting_dependents = true;
            }
            for dependent in self.dependents.get(&uid).into_iter().flatten() {
                queues.delete.add(dependent.clone());
            }
            queues.delete.add(uid);
        }
    }

    /// The owners of `uid` changed: the index follows, and owners that stop being blocked by
    /// it are looked at again.
    fn owners_changed(
        &mut self,
        uid: &Uid,
        namespace: &Arc<str>,
        old: &[OwnerRef],
        new: &[OwnerRef],
        queues: &Queues,
    ) {
        let added: Vec<OwnerRef> = new
            .iter()
            .filter(|r| !old.iter().any(|o| o.uid == r.uid))
            .cloned()
            .collect();
        for o in old {
            match new.iter().find(|r| r.uid == o.uid) {
                None => {
                    self.unlink(&o.uid, uid);
                    if o.block && self.nodes.contains_key(&o.uid) {
                        queues.delete.add(o.uid.clone());
                    }
                }
                Some(r) if o.block && !r.block && self.nodes.contains_key(&o.uid) => {
                    queues.delete.add(o.uid.clone());
                }
                Some(_) => {}
            }
        }
        self.add_dependent(uid, namespace, &added, queues);
    }

    fn unlink(&mut self, owner: &Uid, dependent: &Uid) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// Records `uid` as a dependent of `owners`; an owner not in the graph becomes a virtual
    /// node to verify, and a reference that does not match its seen owner makes the dependent
    /// be looked at.
    fn add_dependent(
        &mut self,
        uid: &Uid,
        namespace: &Arc<str>,
        owners: &[OwnerRef],
        queues: &Queues,
    ) {
        let mut check = false;
        for owner in owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
            match self.nodes.get(&owner.uid) {
                None => {
                    self.nodes.insert(
                        owner.uid.clone(),
                        Node {
                            identity: owner.identity(namespace),
                            watched: None,
                            owners: Vec::new(),
                            being_deleted: false,
                            deleting_dependents: false,
                            orphan: false,
                            foreground: false,
                        },
                    );
                    queues.delete.add(owner.uid.clone());
                }
                Some(node) if node.observed() => {
                    let owner_namespaced = !node.identity.namespace.is_empty();
                    if owner_namespaced && node.identity.namespace != *namespace {
                        tracing::warn!(
                            reason = "OwnerRefInvalidNamespace",
                            dependent = %uid,
                            owner = %owner.name,
                            kind = %owner.kind,
                            namespace = %namespace,
                            "ownerRef does not exist in the dependent's namespace"
                        );
                        check = true;
                    } else if !node.identity.named_by(owner) {
                        check = true;
                    }
                }
                Some(_) => {}
            }
        }
        if check {
            queues.delete.add(uid.clone());
        }
    }

    /// A virtual node was seen as `identity`: dependents naming it otherwise are looked at.
    fn check_dependents_of(&self, identity: &Identity, queues: &Queues) {
        for dependent in self.dependents.get(&identity.uid).into_iter().flatten() {
            let Some(node) = self.nodes.get(dependent) else {
                continue;
            };
            let namespace_mismatch =
                !identity.namespace.is_empty() && node.identity.namespace != identity.namespace;
            if namespace_mismatch {
                tracing::warn!(
                    reason = "OwnerRefInvalidNamespace",
                    dependent = %node.identity.name,
                    namespace = %node.identity.namespace,
                    owner = %identity.name,
                    kind = %identity.kind,
                    "ownerRef does not exist in the dependent's namespace"
                );
            }
            let matches = node
                .owners
                .iter()
                .filter(|r| r.uid == identity.uid)
                .all(|r| identity.named_by(r));
            if namespace_mismatch || !matches {
                queues.delete.add(dependent.clone());
            }
        }
    }

    /// An object is gone: its dependents are looked at, and owners waiting for it too.
    fn remove(&mut self, uid: &Uid, queues: &Queues) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        for owner in &node.owners {
            self.unlink(&owner.uid, uid);
            if self
                .nodes
                .get(&owner.uid)
                .is_some_and(|o| o.deleting_dependents)
            {
                queues.delete.add(owner.uid.clone());
            }
        }
        let dependents = self.dependents.get(uid);
        if dependents.is_some_and(|d| !d.is_empty()) {
            let mut identity = node.identity.clone();
            if node.watched.as_ref().is_some_and(|w| !w.kind.namespaced) {
                identity.namespace = "".into();
            }
            self.absent.add(identity);
        }
        for dependent in dependents.into_iter().flatten() {
            queues.delete.add(dependent.clone());
        }
    }

    /// A live read found nothing at `identity` (kube's virtual delete event).
    fn absent_at(&mut self, identity: Identity, queues: &Queues) {
        let Some(node) = self.nodes.get(&identity.uid) else {
            return;
        };
        if !node.observed() || node.identity == identity {
            let uid = identity.uid.clone();
            self.absent.add(identity);
            self.remove(&uid, queues);
            return;
        }
        // Seen elsewhere: only the dependents naming these coordinates are dangling.
        for dependent in self.dependents.get(&identity.uid).into_iter().flatten() {
            if self
                .nodes
                .get(dependent)
                .is_some_and(|d| d.owners.iter().any(|r| identity.named_by(r)))
            {
                queues.delete.add(dependent.clone());
            }
        }
        self.absent.add(identity);
    }
}
