//! The CRD controller: establishes each CRD (its names accepted, its resource in the catalog)
//! and, when one is deleted, deletes its objects and lets it go.

use std::sync::Arc;
use std::time::Duration;

use registry::ApiError;
use serde_json::Value;

use super::Reconciled;
use crate::crd::{self, CLEANUP_FINALIZER};
use crate::server::{ApiServer, is_established};
use crate::workqueue::Outcome;

/// How soon a deleted CRD whose objects are not all gone yet (finalizers) is looked at again.
const EMPTYING: Duration = Duration::from_secs(1);

impl ApiServer {
    /// Reconciles the CRD `name` as it is now: gone (the catalog refreshed), or brought about.
    pub(super) async fn reconcile_crd_named(self: Arc<Self>, name: String) -> Outcome {
        let current = self.registry.get(&self.crd_kind.main, "", &name).await;
        let result = match current {
            Ok(crd) => self.reconcile_crd(&crd).await,
            Err(ApiError::NotFound { .. }) => self.refresh_catalog().await.map(|()| true),
            Err(e) => Err(e),
        };
        result.reconciled("CRD", &name, EMPTYING)
    }

    /// Brings `crd` about: established (its names accepted, its resource served), or, being
    /// deleted, emptied and let go. Whether it is done (a deleted CRD whose objects are not all
    /// gone yet is not).
    async fn reconcile_crd(&self, crd: &Value) -> Result<bool, ApiError> {
        let name = registry::object::name(crd).to_string();
        if !registry::object::meta_str(crd, "deletionTimestamp").is_empty() {
            self.refresh_catalog().await?;
            // Delete every object of the resource, then let the CRD go.
            let kinds = crd::kinds(crd, &self.base_components);
            if let Some(kind) = kinds.first()
                && self.delete_all(kind, None).await? > 0
            {
                return Ok(false);
            }
            let result = self
                .drop_finalizer(&self.crd_kind.main, &name, "metadata", CLEANUP_FINALIZER)
                .await;
            return match result {
                Ok(_) | Err(ApiError::NotFound { .. }) => {
                    self.refresh_catalog().await.map(|()| true)
                }
                Err(e) => Err(e),
            };
        }
        let status = crd::established_status(crd, "");
        let established = is_established(crd)
            && crd["status"]["acceptedNames"] == status["acceptedNames"]
            && crd["status"]["storedVersions"] == status["storedVersions"];
        if established {
            self.refresh_catalog().await?;
        } else {
            self.establish(crd).await?;
        }
        Ok(true)
    }

    /// Brings the catalog up to date after a write of a CRD through the API, so that its
    /// resource is served when the write returns.
    pub(crate) async fn reconcile_written_crd(&self, crd: &Value) -> Result<(), ApiError> {
        let name = registry::object::name(crd);
        match self.registry.get(&self.crd_kind.main, "", name).await {
            Ok(current) => self.reconcile_crd(&current).await.map(|_| ()),
            Err(ApiError::NotFound { .. }) => self.refresh_catalog().await,
            Err(e) => Err(e),
        }
    }
}

/// The CRDs of a watch event: every one (a deleted one, to refresh the catalog).
pub(super) fn all(_: &Value) -> bool {
    true
}
