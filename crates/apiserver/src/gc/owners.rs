//! What the collector reads of an object: where it is ([`Identity`]), its owner references
//! and the metadata the graph keeps ([`Meta`]), never the object itself.

use std::sync::Arc;

use serde_json::Value;

use super::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Uid};

/// Where an object is: its type, namespace, name and UID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Identity {
    pub(super) api_version: Arc<str>,
    pub(super) kind: Arc<str>,
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) uid: Uid,
}

impl Identity {
    /// Whether an owner reference names this object (group, kind, name and UID; the version
    /// may differ).
    pub(super) fn named_by(&self, reference: &OwnerRef) -> bool {
        reference.uid == self.uid
            && reference.name == self.name
            && reference.kind == self.kind
            && group_of(&reference.api_version) == group_of(&self.api_version)
    }
}

pub(super) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// One owner reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OwnerRef {
    pub(super) api_version: Arc<str>,
    pub(super) kind: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) uid: Uid,
    pub(super) block: bool,
}

impl OwnerRef {
    /// The owner's identity as the reference names it, for a dependent in `namespace`.
    pub(super) fn identity(&self, namespace: &Arc<str>) -> Identity {
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
pub(super) fn owner_refs(object: &Value) -> Vec<OwnerRef> {
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
pub(super) struct Meta {
    pub(super) uid: Uid,
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) owners: Vec<OwnerRef>,
    pub(super) deleting: bool,
    pub(super) orphan: bool,
    pub(super) foreground: bool,
}

impl Meta {
    pub(super) fn of(object: &Value) -> Option<Meta> {
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
