//! The collector's writes: owner references removed or unblocked, finalizers removed, and
//! deletions guarded by UID, resourceVersion and the owners they were judged on.

use registry::{ApiError, Deletion, WriteOptions};
use serde_json::Value;

use super::collector::Collector;
use super::kinds::Watched;
use super::owners::{Identity, OwnerRef, owner_refs};
use super::{GcError, Propagation, Uid};

impl Collector {
    /// Changes the object at `identity` (if it is still that object) with `change`.
    async fn update(
        &self,
        identity: &Identity,
        watched: &Watched,
        change: impl Fn(&mut serde_json::Map<String, Value>),
    ) -> Result<(), GcError> {
        let namespace = watched.namespace_of(identity);
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
    pub(super) async fn remove_owners(
        &self,
        identity: &Identity,
        watched: &Watched,
        owners: &[Uid],
    ) -> Result<(), GcError> {
        self.update(identity, watched, |meta| {
            retain(meta, "ownerReferences", |r| {
                !owners.iter().any(|o| r["uid"].as_str() == Some(&**o))
            });
        })
        .await
    }

    /// Makes every owner reference of the object at `identity` non-blocking (breaking a
    /// foreground cycle).
    pub(super) async fn unblock_owners(
        &self,
        identity: &Identity,
        watched: &Watched,
    ) -> Result<(), GcError> {
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
    pub(super) async fn remove_finalizer(
        &self,
        identity: &Identity,
        watched: &Watched,
        finalizer: &str,
    ) -> Result<(), GcError> {
        self.update(identity, watched, |meta| {
            retain(meta, "finalizers", |f| f != finalizer);
        })
        .await
    }

    /// Deletes the object at `identity` with `policy`, only if it still is that object with
    /// the owners it was judged on (kube's `deleteObject`).
    pub(super) async fn delete(
        &self,
        identity: &Identity,
        watched: &Watched,
        revision: Option<i64>,
        owners: &[OwnerRef],
        policy: Propagation,
    ) -> Result<(), GcError> {
        let namespace = watched.namespace_of(identity);
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

/// Keeps the items of the list `field` of `meta` that `keep` accepts; an emptied list goes.
fn retain(
    meta: &mut serde_json::Map<String, Value>,
    field: &str,
    keep: impl FnMut(&Value) -> bool,
) {
    if let Some(Value::Array(list)) = meta.get_mut(field) {
        list.retain(keep);
        if list.is_empty() {
            meta.remove(field);
        }
    }
}
