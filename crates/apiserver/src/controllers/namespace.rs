//! The namespace controller: empties a terminating namespace (every namespaced kind), then
//! drops its `kubernetes` finalizer so that it goes.

use std::sync::Arc;
use std::time::Duration;

use registry::{ApiError, ListOptions, Resource, WriteOptions};
use serde_json::Value;

use super::Reconciled;
use crate::catalog::Kind;
use crate::native;
use crate::server::ApiServer;
use crate::workqueue::Outcome;

/// How soon a terminating namespace that is not empty yet (finalizers) is looked at again.
const EMPTYING: Duration = Duration::from_secs(2);

impl ApiServer {
    /// Reconciles the namespace `name` as it is now: emptied and let go if it is terminating.
    pub(super) async fn reconcile_namespace_named(self: Arc<Self>, name: String) -> Outcome {
        let namespaces = native::namespace_resource();
        let result = match self.registry.get(&namespaces, "", &name).await {
            Ok(namespace) if terminating(&namespace) => self.finalize_namespace(&name).await,
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(true),
            Err(e) => Err(e),
        };
        result.reconciled("namespace", &name, EMPTYING)
    }

    /// Deletes what is in a terminating namespace; once it is empty, removes the namespace.
    /// Returns whether the namespace is gone.
    pub(super) async fn finalize_namespace(&self, name: &str) -> Result<bool, ApiError> {
        let mut left = 0;
        for kind in self.catalog().namespaced_storage() {
            left += self.delete_all(&kind, Some(name)).await?;
        }
        if left > 0 {
            // Looked at again soon; finalizers may hold some objects for a while.
            return Ok(false);
        }
        // Done: dropping the `kubernetes` finalizer lets the namespace go.
        let result = self
            .drop_finalizer(
                &native::namespace_finalize_resource(),
                name,
                "spec",
                "kubernetes",
            )
            .await;
        match result {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Deletes every object of `kind` (in one namespace, or all), returning how many are still
    /// there afterwards (held by finalizers, or written meanwhile).
    pub(super) async fn delete_all(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
    ) -> Result<usize, ApiError> {
        let objects = self
            .registry
            .list(&kind.main, namespace, &ListOptions::default())
            .await?;
        for object in &objects.items {
            if !registry::object::meta_str(object, "deletionTimestamp").is_empty() {
                continue;
            }
            let result = self
                .registry
                .delete(
                    &kind.main,
                    registry::object::namespace(object),
                    registry::object::name(object),
                    None,
                    &WriteOptions::default(),
                )
                .await;
            match result {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if objects.items.is_empty() {
            return Ok(0);
        }
        let left = self
            .registry
            .list(&kind.main, namespace, &ListOptions::default())
            .await?;
        Ok(left.items.len())
    }

    /// Removes `finalizer` from the `finalizers` list under `field` (`metadata` or `spec`) of a
    /// cluster-scoped object.
    pub(super) async fn drop_finalizer(
        &self,
        resource: &Resource,
        name: &str,
        field: &str,
        finalizer: &str,
    ) -> Result<Value, ApiError> {
        self.registry
            .update_with(resource, "", name, &WriteOptions::default(), |current| {
                let mut next = current.clone();
                if let Some(list) = next[field]["finalizers"].as_array_mut() {
                    list.retain(|f| f != finalizer);
                }
                next["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("resourceVersion"));
                Ok(next)
            })
            .await
    }
}

/// Whether a namespace is being deleted.
pub(super) fn terminating(namespace: &Value) -> bool {
    !registry::object::meta_str(namespace, "deletionTimestamp").is_empty()
}
