//! What the rules of one write collect (errors, missing references, warnings), and the checks
//! of single fields that several kinds share: certificates and node affinity.

use apimachinery::FieldError;
use eve_model::{Affinity, certs};

use super::{Admission, Review};

/// The rules' view of one write and what they found.
pub(super) struct Check<'a> {
    /// The rules and their client.
    pub(super) admission: &'a Admission,
    /// The write.
    pub(super) review: &'a Review,
    /// Wrong fields.
    pub(super) errors: Vec<FieldError>,
    /// References to objects that do not exist (refused, or warned of in warning mode).
    pub(super) missing: Vec<FieldError>,
    /// Warnings for the client.
    pub(super) warnings: Vec<String>,
}

impl<'a> Check<'a> {
    pub(super) fn new(admission: &'a Admission, review: &'a Review) -> Check<'a> {
        Check {
            admission,
            review,
            errors: Vec::new(),
            missing: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The namespace of the written object (empty for cluster-scoped ones).
    pub(super) fn namespace(&self) -> &'a str {
        &self.review.namespace
    }

    /// A base64 PEM certificate at `path` (a CA certificate if `ca`).
    pub(super) fn certificate(&mut self, path: &str, text: &str, ca: bool) {
        let result = if ca {
            certs::decode_ca(text)
        } else {
            certs::decode(text)
        };
        if let Err(e) = result {
            self.errors
                .push(FieldError::invalid(path, abbreviate(text), e.to_string()));
        }
    }

    /// The node affinity of `affinity` at `path`.
    pub(super) fn affinity(&mut self, affinity: Option<&Affinity>, path: &str) {
        let Some(node) = affinity.and_then(|a| a.node_affinity.as_ref()) else {
            return;
        };
        for (at, message) in
            eve_model::selection::affinity_errors(node, &format!("{path}.nodeAffinity"))
        {
            self.errors.push(FieldError::invalid(at, "", message));
        }
    }
}

/// The first 20 characters of a long value, for an error message.
fn abbreviate(text: &str) -> String {
    if text.len() > 24 {
        format!(
            "{}...",
            &text[..text.char_indices().nth(20).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text.to_owned()
    }
}
