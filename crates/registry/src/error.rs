//! The registry's errors: what the API answers, with kube-apiserver's messages.

use apimachinery::{FieldError, aggregate};
use storage::StorageError;

/// An API error. Each variant is one HTTP status and `Status.reason`; the messages are
/// kube-apiserver's, naming the resource (`configmaps "x" not found`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404 NotFound.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// The group-qualified resource (`configmaps`, `widgets.example.com`).
        resource: String,
        /// The object's name.
        name: String,
    },
    /// 409 AlreadyExists.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// The group-qualified resource.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// 409 Conflict.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {reason}")]
    Conflict {
        /// The group-qualified resource.
        resource: String,
        /// The object's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// 409 Conflict of server-side apply: fields another manager owns would change.
    #[error("{message}")]
    FieldManagerConflict {
        /// The whole message (`Apply failed with 1 conflict: ...`).
        message: String,
        /// Each conflict: the field (`.data.key`) and the manager it conflicts with.
        conflicts: Vec<(String, String)>,
    },
    /// 422 Invalid, with a cause per field.
    #[error("{kind} \"{name}\" is invalid: {}", aggregate(.causes))]
    Invalid {
        /// The group-qualified kind (`ConfigMap`, `Widget.example.com`).
        kind: String,
        /// The object's name.
        name: String,
        /// What is wrong, field by field.
        causes: Vec<FieldError>,
    },
    /// 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// 403 Forbidden.
    #[error("{0}")]
    Forbidden(String),
    /// 410 Expired/Gone: a resource version or continue token too old to serve.
    #[error("{0}")]
    Gone(String),
    /// 413 RequestEntityTooLarge.
    #[error("{0}")]
    TooLarge(String),
    /// 503 ServiceUnavailable: the store failed.
    #[error("{0}")]
    Unavailable(String),
    /// 500 InternalError: stored data could not be read.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

/// The conflict reason of a stale write.
pub(crate) const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl ApiError {
    /// The error for a storage failure on `name` of `resource`.
    pub(crate) fn from_storage(error: StorageError, resource: &str, name: &str) -> ApiError {
        let resource = resource.to_string();
        let name = name.to_string();
        match error {
            StorageError::NotFound { .. } => ApiError::NotFound { resource, name },
            StorageError::AlreadyExists { .. } => ApiError::AlreadyExists { resource, name },
            StorageError::Conflict { .. } => ApiError::Conflict {
                resource,
                name,
                reason: MODIFIED.into(),
            },
            StorageError::Compacted { requested, .. } => {
                ApiError::Gone(format!("too old resource version: {requested}"))
            }
            StorageError::FutureRevision { requested, current } => ApiError::Gone(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StorageError::TooLarge { .. } => {
                ApiError::TooLarge(format!("the object is too large to store: {error}"))
            }
            e @ (StorageError::WatcherTooSlow { .. } | StorageError::Unavailable(_)) => {
                ApiError::Unavailable(e.to_string())
            }
            e @ (StorageError::EmptyKey | StorageError::Corrupt(_)) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}
