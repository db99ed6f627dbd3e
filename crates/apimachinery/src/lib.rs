//! The parts of Kubernetes' API machinery that are rules rather than wire format: what names,
//! label keys and values may look like ([`validation`]), label and field selectors
//! ([`labels`], [`fields`]), quantities ([`quantity`]), and field errors with their paths
//! ([`FieldError`]).
//!
//! Pure: no I/O, no async, no serialization. Messages are kube-apiserver's own, so clients
//! (and people) see the errors they know.

pub mod fields;
pub mod labels;
pub mod meta;
pub mod quantity;
pub mod validation;

use std::fmt;

/// Why a label or field selector could not be parsed; the message is kube-apiserver's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// What is wrong with one field, as kube-apiserver's `field.Error` says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path (`metadata.labels`, `values[0][app]`); empty when there is none.
    pub path: String,
    /// The kind of error.
    pub kind: FieldErrorKind,
    /// What is wrong, and how to mend it.
    pub detail: String,
}

/// The kinds of field error (kube-apiserver's `field.ErrorType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The value is not valid (`FieldValueInvalid`); holds the value as shown to users.
    Invalid(String),
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// The value is too long (`FieldValueTooLong`).
    TooLong,
    /// The value is not one of the supported ones (`FieldValueNotSupported`).
    NotSupported(String),
    /// The value may not be changed (`FieldValueForbidden`).
    Forbidden,
    /// The value is a duplicate (`FieldValueDuplicate`).
    Duplicate(String),
    /// The value has the wrong type (`FieldValueTypeInvalid`); holds the value as shown.
    TypeInvalid(String),
    /// The list has too many items (`FieldValueTooMany`).
    TooMany,
    /// The value names an object that does not exist (`FieldValueNotFound`).
    NotFound(String),
}

impl FieldError {
    /// An invalid value.
    pub fn invalid(
        path: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Invalid(value.into()),
            detail: detail.into(),
        }
    }

    /// A missing value.
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Required,
            detail: detail.into(),
        }
    }

    /// A value that may not be set or changed.
    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    /// A value that is not one of `supported`.
    pub fn not_supported(
        path: impl Into<String>,
        value: impl Into<String>,
        supported: &[&str],
    ) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::NotSupported(value.into()),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }

    /// A value that is too long.
    pub fn too_long(path: impl Into<String>, max: usize) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::TooLong,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// A value naming an object that does not exist.
    pub fn not_found(
        path: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::NotFound(value.into()),
            detail: detail.into(),
        }
    }

    /// A value seen twice.
    pub fn duplicate(path: impl Into<String>, value: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            kind: FieldErrorKind::Duplicate(value.into()),
            detail: String::new(),
        }
    }

    /// The reason kube-apiserver gives for this kind (`StatusCause.reason`).
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::NotSupported(_) => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::TypeInvalid(_) => "FieldValueTypeInvalid",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::NotFound(_) => "FieldValueNotFound",
        }
    }

    /// The message without the path (`field.Error.ErrorBody`).
    pub fn body(&self) -> String {
        let (kind, value) = match &self.kind {
            FieldErrorKind::Invalid(v) => ("Invalid value", Some(v)),
            FieldErrorKind::Required => ("Required value", None),
            FieldErrorKind::TooLong => ("Too long", None),
            FieldErrorKind::NotSupported(v) => ("Unsupported value", Some(v)),
            FieldErrorKind::Forbidden => ("Forbidden", None),
            FieldErrorKind::Duplicate(v) => ("Duplicate value", Some(v)),
            FieldErrorKind::TypeInvalid(v) => ("Invalid value", Some(v)),
            FieldErrorKind::TooMany => ("Too many", None),
            FieldErrorKind::NotFound(v) => ("Not found", Some(v)),
        };
        let mut body = kind.to_string();
        if let Some(value) = value {
            body.push_str(&format!(": {value:?}"));
        }
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "<nil>"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.body())
    }
}

impl std::error::Error for FieldError {}

/// Several field errors shown as one, as kube-apiserver's aggregate does: one alone as itself,
/// more as `[a, b]`.
pub fn aggregate(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}
