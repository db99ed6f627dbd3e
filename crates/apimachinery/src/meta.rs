//! Validation of the metadata every object carries: its name (by the rule of its kind), its
//! namespace, labels and annotations, as kube-apiserver's `ValidateObjectMeta` does.

use std::collections::BTreeMap;

use crate::validation::{
    TOTAL_ANNOTATION_SIZE, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value,
};
use crate::{FieldError, FieldErrorKind};

/// What a kind's object names must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (most kinds: ConfigMap, Secret, CRD-defined kinds).
    Dns1123Subdomain,
    /// A DNS-1123 label (Namespace).
    Dns1123Label,
    /// Anything usable as one URL path segment (not `.`, `..`, nor containing `/` or `%`).
    PathSegment,
}

impl NameRule {
    /// What is wrong with `name` under this rule. A `prefix` (a `generateName`) may end in `-`:
    /// as kube-apiserver does, its last two characters are checked as if they were one letter,
    /// since generated characters follow.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = match name.char_indices().rev().nth(1) {
            Some((i, _)) if prefix && name.ends_with('-') => {
                masked = format!("{}a", &name[..i]);
                masked.as_str()
            }
            _ => name,
        };
        match self {
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::PathSegment => path_segment(name, prefix),
        }
    }
}

fn path_segment(name: &str, prefix: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if !prefix && (name == "." || name == "..") {
        errs.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Checks an object's name, or its `generateName` when it has no name. `path` is the metadata's
/// path (`metadata`).
pub fn validate_name(
    name: &str,
    generate_name: &str,
    rule: NameRule,
    path: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errors.push(FieldError::invalid(
                format!("{path}.generateName"),
                generate_name,
                msg,
            ));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in rule.check(name, false) {
            errors.push(FieldError::invalid(format!("{path}.name"), name, msg));
        }
    }
    errors
}

/// Checks an object's namespace: required and a DNS-1123 label for namespaced kinds, absent for
/// cluster-scoped ones.
pub fn validate_namespace(namespace: &str, namespaced: bool, path: &str) -> Vec<FieldError> {
    let field = format!("{path}.namespace");
    match (namespaced, namespace.is_empty()) {
        (true, true) => vec![FieldError::required(field, "")],
        (true, false) => is_dns1123_label(namespace)
            .into_iter()
            .map(|msg| FieldError::invalid(field.clone(), namespace, msg))
            .collect(),
        (false, false) => vec![FieldError {
            path: field,
            kind: FieldErrorKind::Forbidden,
            detail: "not allowed on this type".into(),
        }],
        (false, true) => Vec::new(),
    }
}

/// Checks labels: each key a qualified name, each value a label value.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        for msg in is_qualified_name(key) {
            errors.push(FieldError::invalid(path, key, msg));
        }
        for msg in is_valid_label_value(value) {
            errors.push(FieldError::invalid(path, value, msg));
        }
    }
    errors
}

/// Checks annotations: each key a qualified name (case-insensitively), 256 KiB in all.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut size = 0;
    for (key, value) in annotations {
        for msg in is_qualified_name(&key.to_lowercase()) {
            errors.push(FieldError::invalid(path, key, msg));
        }
        size += key.len() + value.len();
    }
    if size > TOTAL_ANNOTATION_SIZE {
        errors.push(FieldError {
            path: path.into(),
            kind: FieldErrorKind::TooLong,
            detail: format!("may not be more than {TOTAL_ANNOTATION_SIZE} bytes"),
        });
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate;
    use expect_test::{Expect, expect};

    #[track_caller]
    fn check(errors: Vec<FieldError>, expected: Expect) {
        let shown = if errors.is_empty() {
            "ok".to_string()
        } else {
            aggregate(&errors)
        };
        expected.assert_eq(&shown);
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names() {
        let sub = NameRule::Dns1123Subdomain;
        check(validate_name("web.v1", "", sub, "metadata"), expect!["ok"]);
        check(validate_name("", "web-", sub, "metadata"), expect!["ok"]);
        check(validate_name("", "web.-", sub, "metadata"), expect!["ok"]);
        check(
            validate_name("", "Web-", sub, "metadata"),
            expect![[
                r#"metadata.generateName: Invalid value: "Web-": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]],
        );
        check(
            validate_name("", "", sub, "metadata"),
            expect!["metadata.name: Required value: name or generateName is required"],
        );
        check(
            validate_name("Web", "", NameRule::Dns1123Label, "metadata"),
            expect![[
                r#"metadata.name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#
            ]],
        );
        check(
            validate_name("a/b", "", NameRule::PathSegment, "metadata"),
            expect![[r#"metadata.name: Invalid value: "a/b": may not contain '/'"#]],
        );
        check(
            validate_name("..", "", NameRule::PathSegment, "metadata"),
            expect![[r#"metadata.name: Invalid value: "..": may not be '..'"#]],
        );
    }

    #[test]
    fn namespaces() {
        check(
            validate_namespace("default", true, "metadata"),
            expect!["ok"],
        );
        check(
            validate_namespace("", true, "metadata"),
            expect!["metadata.namespace: Required value"],
        );
        check(
            validate_namespace("x", false, "metadata"),
            expect!["metadata.namespace: Forbidden: not allowed on this type"],
        );
    }

    #[test]
    fn labels_and_annotations() {
        check(
            validate_labels(
                &map(&[("app", "web"), ("eve.lfedge.org/x", "")]),
                "metadata.labels",
            ),
            expect!["ok"],
        );
        check(
            validate_labels(&map(&[("a b", "c d")]), "metadata.labels"),
            expect![[
                r#"[metadata.labels: Invalid value: "a b": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), metadata.labels: Invalid value: "c d": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]"#
            ]],
        );
        check(
            validate_annotations(
                &map(&[("Example.COM/Key", "any value at all")]),
                "metadata.annotations",
            ),
            expect!["ok"],
        );
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE);
        check(
            validate_annotations(&map(&[("a", &big)]), "metadata.annotations"),
            expect!["metadata.annotations: Too long: may not be more than 262144 bytes"],
        );
    }
}
