//! `Status`: how errors (and some successes) travel to clients.

use registry::ApiError;
use serde_json::{Value, json};

/// The HTTP code and `Status.reason` of an error.
pub fn code_and_reason(error: &ApiError) -> (u16, &'static str) {
    match error {
        ApiError::NotFound { .. } => (404, "NotFound"),
        ApiError::AlreadyExists { .. } => (409, "AlreadyExists"),
        ApiError::Conflict { .. } | ApiError::FieldManagerConflict { .. } => (409, "Conflict"),
        ApiError::Invalid { .. } => (422, "Invalid"),
        ApiError::BadRequest(_) => (400, "BadRequest"),
        ApiError::Forbidden(_) => (403, "Forbidden"),
        ApiError::Gone(_) => (410, "Expired"),
        ApiError::TooLarge(_) => (413, "RequestEntityTooLarge"),
        ApiError::Unavailable(_) => (503, "ServiceUnavailable"),
        ApiError::Internal(_) => (500, "InternalError"),
    }
}

/// What a `Status` says about the object a request was about.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// The API group.
    pub group: String,
    /// The plural resource (`kind` in `StatusDetails` for most errors).
    pub resource: String,
    /// The kind, used by `Invalid` errors.
    pub kind: String,
    /// The object's name.
    pub name: String,
}

/// The `Status` object of an error.
pub fn status(error: &ApiError, subject: &Subject) -> Value {
    let (code, reason) = code_and_reason(error);
    let mut details = serde_json::Map::new();
    let name = match error {
        ApiError::NotFound { name, .. }
        | ApiError::AlreadyExists { name, .. }
        | ApiError::Conflict { name, .. }
        | ApiError::Invalid { name, .. } => name.clone(),
        _ => subject.name.clone(),
    };
    if !name.is_empty() {
        details.insert("name".into(), name.into());
    }
    if !subject.group.is_empty() {
        details.insert("group".into(), subject.group.clone().into());
    }
    let kind = match error {
        ApiError::Invalid { .. } => &subject.kind,
        _ => &subject.resource,
    };
    if !kind.is_empty() {
        details.insert("kind".into(), kind.clone().into());
    }
    if let ApiError::FieldManagerConflict { conflicts, .. } = error {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(field, manager)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager:?}"), "field": field})
            })
            .collect();
        details.insert("causes".into(), causes.into());
    }
    if let ApiError::Invalid { causes, .. } = error {
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason(), "message": c.body(), "field": c.path}))
            .collect();
        details.insert("causes".into(), causes.into());
    }
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.to_string(),
        "reason": reason,
        "code": code,
    });
    if !details.is_empty() {
        status["details"] = Value::Object(details);
    }
    status
}

/// A plain failure `Status` for errors outside the API's objects (401, 404 on unknown paths).
pub fn failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}
