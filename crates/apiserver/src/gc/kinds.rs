//! The resources the collector watches, and the resolution of an owner reference's
//! `apiVersion` and `kind` to one of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::GcError;
use super::owners::{Identity, group_of};
use crate::catalog::Kind;

/// Resources the collector leaves alone, as kube's does.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// A stored resource as the collector watches it.
#[derive(Clone)]
pub(super) struct Watched {
    /// The storage key prefix of its objects: what one monitor watches.
    pub(super) prefix: String,
    /// The kind (storage version), for reads and writes.
    pub(super) kind: Arc<Kind>,
    /// `group/version` at the storage version.
    pub(super) api_version: Arc<str>,
    /// The kind name.
    pub(super) kind_name: Arc<str>,
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

    pub(super) fn same(&self, other: &Watched) -> bool {
        self.prefix == other.prefix
            && self.kind_name == other.kind_name
            && self.kind.namespaced == other.kind.namespaced
    }

    /// The namespace of the object at `identity` in this resource (none if cluster-scoped).
    pub(super) fn namespace_of<'a>(&self, identity: &'a Identity) -> &'a str {
        if self.kind.namespaced {
            &identity.namespace
        } else {
            ""
        }
    }
}

/// The kinds the collector knows, to read, write and resolve owner references.
#[derive(Default)]
pub(super) struct Kinds {
    /// By storage prefix.
    pub(super) watched: BTreeMap<String, Arc<Watched>>,
    /// By (group, kind).
    pub(super) by_kind: HashMap<(String, String), Arc<Watched>>,
}

impl Kinds {
    pub(super) fn add(&mut self, kind: Arc<Kind>) {
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
    pub(super) fn resolve(&self, api_version: &str, kind: &str) -> Result<Arc<Watched>, GcError> {
        self.by_kind
            .get(&(group_of(api_version).to_string(), kind.to_string()))
            .cloned()
            .ok_or_else(|| GcError::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            })
    }
}
