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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use registry::{ApiError, Deletion, ListOptions, Start, WatchEvent, WriteOptions};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;

use crate::catalog::Kind;
use crate::crd;
use crate::server::ApiServer;

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
/// Owners the collector has found absent, remembered to spare live reads.
const ABSENT_CAPACITY: usize = 1024;
/// How many objects a monitor lists per page.
const PAGE: usize = 500;
/// Resources the collector leaves alone, as kube's does.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

type Uid = Arc<str>;

/// A stored resource as the collector watches it.
#[derive(Clone)]
struct Watched {
    /// The storage key prefix of its objects: what one monitor watches.
    prefix: String,
    /// The kind (storage version), for reads and writes.
    kind: Arc<Kind>,
    /// `group/version` at the storage version.
    api_version: Arc<str>,
    /// The kind name.
    kind_name: Arc<str>,
}

impl Watched {
    fn new(kind: Arc<Kind>) -> Watched {
        Watched {
            prefix: kind.main.prefix(None),
            api_version: crate::catalog::group_version(&kind.group, &kind.storage_version).into(),
            kind_name: kind.kind.as_str().into(),
            kind,
        }
    }

    fn same(&self, other: &Watched) -> bool {
        self.prefix == other.prefix
            && self.kind_name == other.kind_name
            && self.kind.namespaced == other.kind.namespaced
    }
}

/// The kinds the collector knows, to read, write and resolve owner references.
#[derive(Default)]
struct Kinds {
    /// By storage prefix.
    watched: BTreeMap<String, Arc<Watched>>,
    /// By (group, kind).
    by_kind: HashMap<(String, String), Arc<Watched>>,
}

impl Kinds {
    fn add(&mut self, kind: Arc<Kind>) {
        if IGNORED.contains(&(kind.group.as_str(), kind.resource.as_str())) {
            return;
        }
        let watched = Arc::new(Watched::new(kind));
        if self.watched.contains_key(&watched.prefix) {
            return;
        }
        self.by_kind
            .entry((watched.kind.group.clone(), watched.kind.kind.clone()))
            .or_insert_with(|| watched.clone());
        self.watched.insert(watched.prefix.clone(), watched);
    }

    /// The resource of an `apiVersion` and `kind` (any served version of the group).
    fn resolve(&self, api_version: &str, kind: &str) -> Result<Arc<Watched>, GcError> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.by_kind
            .get(&(group.to_string(), kind.to_string()))
            .cloned()
            .ok_or_else(|| GcError::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            })
    }
}

/// Where an object is: its type, namespace, name and UID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Identity {
    api_version: Arc<str>,
    kind: Arc<str>,
    namespace: Arc<str>,
    name: Arc<str>,
    uid: Uid,
}

impl Identity {
    /// Whether an owner reference names this object (group, kind, name and UID; the version
    /// may differ).
    fn named_by(&self, reference: &OwnerRef) -> bool {
        reference.uid == self.uid
            && reference.name == self.name
            && reference.kind == self.kind
            && group_of(&reference.api_version) == group_of(&self.api_version)
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// One owner reference.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnerRef {
    api_version: Arc<str>,
    kind: Arc<str>,
    name: Arc<str>,
    uid: Uid,
    block: bool,
}

impl OwnerRef {
    /// The owner's identity as the reference names it, for a dependent in `namespace`.
    fn identity(&self, namespace: &Arc<str>) -> Identity {
        Identity {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }
}

/// The owner references of an object (those with a UID).
fn owner_refs(object: &Value) -> Vec<OwnerRef> {
    let text = |r: &Value, f: &str| -> Arc<str> { r[f].as_str().unwrap_or("").into() };
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["uid"].as_str().is_some_and(|u| !u.is_empty()))
        .map(|r| OwnerRef {
            api_version: text(r, "apiVersion"),
            kind: text(r, "kind"),
            name: text(r, "name"),
            uid: text(r, "uid"),
            block: r["blockOwnerDeletion"] == Value::Bool(true),
        })
        .collect()
}

/// What the collector keeps of an object's state.
#[derive(Clone, Debug)]
struct Meta {
    uid: Uid,
    namespace: Arc<str>,
    name: Arc<str>,
    owners: Vec<OwnerRef>,
    deleting: bool,
    orphan: bool,
    foreground: bool,
}

impl Meta {
    fn of(object: &Value) -> Option<Meta> {
        let uid = registry::object::meta_str(object, "uid");
        if uid.is_empty() {
            return None;
        }
        let finalizers = registry::object::finalizers(object);
        Some(Meta {
            uid: uid.into(),
            namespace: registry::object::namespace(object).into(),
            name: registry::object::name(object).into(),
            owners: owner_refs(object),
            deleting: !registry::object::meta_str(object, "deletionTimestamp").is_empty(),
            orphan: finalizers.iter().any(|f| f == ORPHAN_FINALIZER),
            foreground: finalizers.iter().any(|f| f == FOREGROUND_FINALIZER),
        })
    }
}

/// One object (or a virtual owner) in the graph.
struct Node {
    identity: Identity,
    /// The resource it was seen in; `None` while virtual (only named by dependents).
    watched: Option<Arc<Watched>>,
    owners: Vec<OwnerRef>,
    being_deleted: bool,
    deleting_dependents: bool,
    /// The collector finalizers as last seen (for transitions).
    orphan: bool,
    foreground: bool,
}

impl Node {
    fn observed(&self) -> bool {
        self.watched.is_some()
    }
}

/// Owners found absent, by coordinates (the namespace is empty for cluster-scoped owners).
#[derive(Default)]
struct Absent {
    order: VecDeque<Identity>,
    set: HashSet<Identity>,
}

impl Absent {
    /// The key of coordinates: by group, not version (a reference may name another version).
    fn key(identity: &Identity) -> Identity {
        Identity {
            api_version: group_of(&identity.api_version).into(),
            ..identity.clone()
        }
    }

    fn add(&mut self, identity: Identity) {
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

    fn has(&self, identity: &Identity) -> bool {
        self.set.contains(&Absent::key(identity))
    }
}

/// A change for the graph.
enum Change {
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
struct Graph {
    nodes: HashMap<Uid, Node>,
    /// Owner UID → UIDs of the objects naming it.
    dependents: HashMap<Uid, HashSet<Uid>>,
    absent: Absent,
    /// Every namespace seen, shared by the nodes.
    namespaces: HashSet<Arc<str>>,
    /// The resources watched (by prefix), and whether each has been listed yet.
    watching: HashMap<String, (Arc<Watched>, bool)>,
}

/// The collector's two work queues.
struct Queues {
    delete: Arc<WorkQueue>,
    orphan: Arc<WorkQueue>,
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

    fn synced(&self) -> bool {
        self.watching.values().all(|(_, listed)| *listed)
    }

    fn apply(&mut self, change: Change, queues: &Queues) {
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
                    .nodes
                    .iter()
                    .filter(|(uid, n)| {
                        n.watched
                            .as_ref()
                            .is_some_and(|w| w.prefix == watched.prefix)
                            && !seen.contains(*uid)
                    })
                    .map(|(uid, _)| uid.clone())
                    .collect();
                for uid in gone {
                    self.remove(&uid, queues);
                }
            }
            Change::Upsert(watched, meta) => self.upsert(&watched, meta, queues),
            Change::Deleted(uid) => self.remove(&uid, queues),
            Change::Unwatched(watched) => {
                self.watching.remove(&watched.prefix);
                let gone: Vec<Uid> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| {
                        n.watched
                            .as_ref()
                            .is_some_and(|w| w.prefix == watched.prefix)
                    })
                    .map(|(uid, _)| uid.clone())
                    .collect();
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

/// What a worker does with an item after processing it.
enum Outcome {
    /// Done.
    Forget,
    /// Failed: again later, backing off.
    Retry,
    /// Not yet: again after this long.
    After(Duration),
}

/// A de-duplicating work queue of UIDs: an item queued twice is processed once, never by two
/// workers at once, and again if it was queued while being processed.
#[derive(Default)]
struct WorkQueue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    order: VecDeque<Uid>,
    queued: HashSet<Uid>,
    active: HashSet<Uid>,
    again: HashSet<Uid>,
    failures: HashMap<Uid, u32>,
}

impl WorkQueue {
    fn add(&self, uid: Uid) {
        let mut state = self.state.lock().expect("not poisoned");
        if state.active.contains(&uid) {
            state.again.insert(uid);
            return;
        }
        if state.queued.insert(uid.clone()) {
            state.order.push_back(uid);
            drop(state);
            self.ready.notify_one();
        }
    }

    async fn next(&self) -> Uid {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("not poisoned");
                if let Some(uid) = state.order.pop_front() {
                    state.queued.remove(&uid);
                    state.active.insert(uid.clone());
                    let more = !state.order.is_empty();
                    drop(state);
                    if more {
                        self.ready.notify_one();
                    }
                    return uid;
                }
            }
            notified.await;
        }
    }

    fn done(self: &Arc<Self>, uid: Uid, outcome: Outcome) {
        let mut state = self.state.lock().expect("not poisoned");
        state.active.remove(&uid);
        let again = state.again.remove(&uid);
        let delay = match outcome {
            Outcome::Forget => {
                state.failures.remove(&uid);
                None
            }
            Outcome::Retry => {
                let failures = state.failures.entry(uid.clone()).or_default();
                *failures = failures.saturating_add(1);
                let exponent = (*failures).min(14);
                Some(Duration::from_millis(5 << exponent).min(Duration::from_secs(60)))
            }
            Outcome::After(delay) => Some(delay),
        };
        drop(state);
        if again {
            self.add(uid);
        } else if let Some(delay) = delay {
            let queue = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue.add(uid);
            });
        }
    }
}

/// The collector: the graph, the kinds, the queues and the server it works on.
struct Collector {
    server: Arc<ApiServer>,
    graph: Mutex<Graph>,
    kinds: RwLock<Arc<Kinds>>,
    queues: Queues,
    /// Changes found by the workers (absent owners), for the graph.
    found: mpsc::UnboundedSender<Change>,
}

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

/// The two kinds of work, each with its queue.
#[derive(Clone, Copy)]
enum Work {
    Delete,
    Orphan,
}

impl Collector {
    /// The kinds to watch: the catalog's, and those of every CRD in the store (a terminating
    /// CRD's kind has left the catalog, but its objects are still being deleted).
    async fn kinds_of(&self, catalog: &crate::catalog::Catalog) -> Result<Kinds, ApiError> {
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
    fn resync(
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
    async fn build(
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
    async fn work(self: Arc<Self>, work: Work, mut shutdown: watch::Receiver<bool>) {
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

    fn kinds(&self) -> Arc<Kinds> {
        self.kinds.read().expect("not poisoned").clone()
    }

    /// The object at `identity` now, if it is there with that UID.
    async fn live(&self, identity: &Identity) -> Result<Option<(Arc<Watched>, Value)>, GcError> {
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
        let namespace = if namespaced { &*identity.namespace } else { "" };
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

    fn report_absent(&self, identity: &Identity) {
        let _ = self.found.send(Change::Absent(identity.clone()));
    }

    /// kube's `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, uid: Uid) -> Outcome {
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
    async fn attempt_to_orphan(&self, uid: Uid) -> Outcome {
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

    /// Changes the object at `identity` (if it is still that object) with `change`.
    async fn update(
        &self,
        identity: &Identity,
        watched: &Watched,
        change: impl Fn(&mut serde_json::Map<String, Value>),
    ) -> Result<(), GcError> {
        let namespace = if watched.kind.namespaced {
            &*identity.namespace
        } else {
            ""
        };
        self.server
            .registry
            .update_with(
                &watched.kind.main,
                namespace,
                &identity.name,
                &WriteOptions::default(),
                |current| {
                    if registry::object::meta_str(current, "uid") != &*identity.uid {
                        return Err(ApiError::NotFound {
                            resource: watched.kind.main.qualified(),
                            name: identity.name.to_string(),
                        });
                    }
                    let mut next = current.clone();
                    let meta = registry::object::meta_mut(&mut next);
                    meta.remove("resourceVersion");
                    change(meta);
                    Ok(next)
                },
            )
            .await?;
        Ok(())
    }

    /// Removes the owner references of `owners` (by UID) from the object at `identity`.
    async fn remove_owners(
        &self,
        identity: &Identity,
        watched: &Watched,
        owners: &[Uid],
    ) -> Result<(), GcError> {
        self.update(identity, watched, |meta| {
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                refs.retain(|r| !owners.iter().any(|o| r["uid"].as_str() == Some(&**o)));
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                }
            }
        })
        .await
    }

    /// Makes every owner reference of the object at `identity` non-blocking (breaking a
    /// foreground cycle).
    async fn unblock_owners(&self, identity: &Identity, watched: &Watched) -> Result<(), GcError> {
        self.update(identity, watched, |meta| {
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                for r in refs.iter_mut() {
                    if let Some(r) = r.as_object_mut() {
                        r.insert("blockOwnerDeletion".into(), Value::Bool(false));
                    }
                }
            }
        })
        .await
    }

    /// Removes `finalizer` from the object at `identity`; the last finalizer of an object
    /// being deleted lets it go.
    async fn remove_finalizer(
        &self,
        identity: &Identity,
        watched: &Watched,
        finalizer: &str,
    ) -> Result<(), GcError> {
        self.update(identity, watched, |meta| {
            if let Some(Value::Array(list)) = meta.get_mut("finalizers") {
                list.retain(|f| f != finalizer);
                if list.is_empty() {
                    meta.remove("finalizers");
                }
            }
        })
        .await
    }

    /// Deletes the object at `identity` with `policy`, only if it still is that object with
    /// the owners it was judged on (kube's `deleteObject`).
    async fn delete(
        &self,
        identity: &Identity,
        watched: &Watched,
        revision: Option<i64>,
        owners: &[OwnerRef],
        policy: Propagation,
    ) -> Result<(), GcError> {
        let namespace = if watched.kind.namespaced {
            &*identity.namespace
        } else {
            ""
        };
        let mut deletion = Deletion {
            resource_version: revision,
            uid: Some(identity.uid.to_string()),
            ..Deletion::default()
        };
        policy.apply(&mut deletion);
        let registry = &self.server.registry;
        let resource = &watched.kind.main;
        let options = WriteOptions::default();
        match registry
            .delete_with(resource, namespace, &identity.name, &deletion, &options)
            .await
        {
            Ok(_) => return Ok(()),
            Err(ApiError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // Changed since it was read: delete it only if its owners are the same.
        let Some((_, latest)) = self.live(identity).await? else {
            return Err(GcError::Api(ApiError::NotFound {
                resource: resource.qualified(),
                name: identity.name.to_string(),
            }));
        };
        if owner_refs(&latest) != owners {
            return Err(GcError::Changed);
        }
        deletion.resource_version = None;
        registry
            .delete_with(resource, namespace, &identity.name, &deletion, &options)
            .await?;
        Ok(())
    }
}

/// What an owner is to a dependent.
enum OwnerState {
    /// It exists.
    Solid,
    /// It exists and waits in foreground deletion for its dependents.
    Waiting,
    /// It does not exist (or another object has its name).
    Absent,
}

/// Lists `watched` (page by page, keeping only what the collector needs), then watches it from
/// there, sending the changes; lists again whenever the watch ends.
async fn monitor(server: Arc<ApiServer>, watched: Arc<Watched>, changes: mpsc::Sender<Change>) {
    let resource = &watched.kind.main;
    loop {
        let mut metas = Vec::new();
        let mut options = ListOptions {
            limit: PAGE,
            ..ListOptions::default()
        };
        let listed = loop {
            match server.registry.list(resource, None, &options).await {
                Ok(page) => {
                    metas.extend(page.items.iter().filter_map(Meta::of));
                    match page.continue_token {
                        Some(token) => options.continue_token = Some(token),
                        None => break Ok(page.resource_version),
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let revision = match listed {
            Ok(revision) => revision,
            Err(e) => {
                tracing::debug!(resource = %resource.qualified(), error = %e, "garbage collector list failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if changes
            .send(Change::Listed(watched.clone(), metas))
            .await
            .is_err()
        {
            return;
        }
        let events = match server
            .registry
            .watch(
                resource,
                None,
                &ListOptions::default(),
                Start::After(revision),
            )
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(resource = %resource.qualified(), error = %e, "garbage collector watch failed; listing again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut events = Box::pin(events);
        while let Some(event) = events.next().await {
            let change = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    Meta::of(&o).map(|m| Change::Upsert(watched.clone(), m))
                }
                WatchEvent::Deleted(o) => Meta::of(&o).map(|m| Change::Deleted(m.uid)),
                WatchEvent::Bookmark(_) => None,
                WatchEvent::Error(e) => {
                    tracing::debug!(resource = %resource.qualified(), error = %e, "garbage collector watch ended; listing again");
                    break;
                }
            };
            if let Some(change) = change
                && changes.send(change).await.is_err()
            {
                return;
            }
        }
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

    #[tokio::test]
    async fn the_queue_runs_an_item_once_at_a_time() {
        let queue = Arc::new(WorkQueue::default());
        queue.add("a".into());
        queue.add("a".into());
        queue.add("b".into());
        let first = queue.next().await;
        assert_eq!(&*first, "a");
        // Queued again while active: comes back once it is done.
        queue.add("a".into());
        let second = queue.next().await;
        assert_eq!(&*second, "b");
        queue.done(first, Outcome::Forget);
        let again = queue.next().await;
        assert_eq!(&*again, "a");
    }
}
