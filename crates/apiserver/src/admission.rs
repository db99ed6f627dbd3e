//! The admission chain: in-process plug-ins that change (mutating) and then accept or refuse
//! (validating) every write, after the kind's own rules. The EVE half registers its checks here.
//! Plug-ins' warnings reach the client as `Warning` headers.

use std::sync::{Arc, Mutex};

use registry::{Admit, ApiError};
use serde_json::Value;

use crate::auth::User;

/// What a write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A changed object (update, patch, or a subresource write).
    Update,
    /// A deleted object: plug-ins validate it (the object is `null`, the old one the object
    /// deleted); nothing is mutated.
    Delete,
}

/// What a plug-in knows of the request.
#[derive(Clone, Debug)]
pub struct Request {
    /// Create or update.
    pub operation: Operation,
    /// The API group.
    pub group: String,
    /// The version the client used.
    pub version: String,
    /// The plural resource.
    pub resource: String,
    /// The subresource (`status`, `scale`), or empty.
    pub subresource: String,
    /// The kind.
    pub kind: String,
    /// The namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object's name (may be empty on create with `generateName`).
    pub name: String,
    /// Who asks.
    pub user: User,
    /// Whether nothing will be stored.
    pub dry_run: bool,
}

/// An admission plug-in. Both hooks may return warnings for the client.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync {
    /// The plug-in's name (for logs).
    fn name(&self) -> &str;

    /// Changes the object before the kind's rules prepare and validate it.
    async fn mutate(
        &self,
        _request: &Request,
        _object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }

    /// Accepts or refuses the object the write would store.
    async fn validate(
        &self,
        _request: &Request,
        _object: &Value,
        _old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }
}

/// The plug-ins of one write, with the warnings they gave.
pub struct Chain {
    plugins: Arc<Vec<Arc<dyn Plugin>>>,
    request: Request,
    warnings: Mutex<Vec<String>>,
}

impl Chain {
    /// The chain of `plugins` for `request`.
    pub fn new(plugins: Arc<Vec<Arc<dyn Plugin>>>, request: Request) -> Chain {
        Chain {
            plugins,
            request,
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The warnings of the last attempt of the write.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().expect("not poisoned").clone()
    }

    fn warn(&self, more: Vec<String>) {
        self.warnings.lock().expect("not poisoned").extend(more);
    }
}

#[async_trait::async_trait]
impl Admit for Chain {
    async fn mutate(&self, new: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        // A retried write starts over: only the last attempt's warnings count.
        self.warnings.lock().expect("not poisoned").clear();
        for plugin in self.plugins.iter() {
            let warnings = plugin.mutate(&self.request, new, old).await?;
            self.warn(warnings);
        }
        Ok(())
    }

    async fn validate(&self, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        for plugin in self.plugins.iter() {
            let warnings = plugin.validate(&self.request, new, old).await?;
            self.warn(warnings);
        }
        Ok(())
    }
}
