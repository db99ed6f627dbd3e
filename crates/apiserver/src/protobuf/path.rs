//! Where a value sits in the JSON object ([`Path`]), and the errors that name it.

use std::fmt;

use super::ProtobufError;

/// Where a value sits in the JSON object, rendered only for errors.
#[derive(Clone, Copy)]
pub(super) enum Path<'a> {
    /// The object itself.
    Root,
    /// A field of the value at the parent path.
    Field(&'a Path<'a>, &'a str),
    /// An item of the list at the parent path.
    Index(&'a Path<'a>, usize),
    /// An entry of the map at the parent path.
    Key(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Field(parent, _) | Path::Index(parent, _) | Path::Key(parent, _) => {
                    steps.push(at);
                    at = parent;
                }
            }
        }
        if steps.is_empty() {
            return f.write_str("the object");
        }
        for (i, step) in steps.iter().rev().enumerate() {
            match step {
                Path::Field(_, name) if i == 0 => f.write_str(name)?,
                Path::Field(_, name) => write!(f, ".{name}")?,
                Path::Index(_, index) => write!(f, "[{index}]")?,
                Path::Key(_, key) => write!(f, "[{key}]")?,
                Path::Root => {}
            }
        }
        Ok(())
    }
}

/// Nesting too deep at `path`.
pub(super) fn too_deep(path: &Path<'_>) -> ProtobufError {
    ProtobufError::TooDeep {
        path: path.to_string(),
    }
}

/// A value at `path` that means nothing valid.
pub(super) fn invalid(path: &Path<'_>, reason: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidValue {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A value at `path` of the wrong JSON type.
pub(super) fn wrong(path: &Path<'_>, expected: &'static str) -> ProtobufError {
    ProtobufError::WrongType {
        path: path.to_string(),
        expected,
    }
}
