//! Kubernetes' rules for names, label keys and label values, with kube-apiserver's messages.
//!
//! Each `is_*` function returns the list of what is wrong (empty when the value is valid), as
//! `k8s.io/apimachinery/pkg/util/validation` does.

/// The longest DNS-1123 label.
pub const DNS1123_LABEL_MAX: usize = 63;
/// The longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The longest name part of a qualified name (a label key).
pub const QUALIFIED_NAME_MAX: usize = 63;
/// The longest label value.
pub const LABEL_VALUE_MAX: usize = 63;
/// The most bytes all of an object's annotations may take together.
pub const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// "must be no more than N characters"
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// "must be non-empty"
pub fn empty_error() -> String {
    "must be non-empty".into()
}

/// A message naming the pattern a value must follow, with examples, as kube-apiserver words it.
pub fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    let mut out = message.to_string();
    if examples.is_empty() {
        out.push_str(&format!(" (regex used for validation is '{pattern}')"));
        return out;
    }
    out.push_str(" (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{example}', "));
    }
    out.push_str(&format!("regex used for validation is '{pattern}')"));
    out
}

fn alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && alnum_lower(b[0])
        && alnum_lower(b[b.len() - 1])
        && b.iter().all(|&c| alnum_lower(c) || c == b'-')
}

/// `[A-Za-z0-9]` at both ends, `[-A-Za-z0-9_.]` between.
fn is_qualified_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let end = |c: u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && end(b[0])
        && end(b[b.len() - 1])
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// What is wrong with `value` as a DNS-1123 label (namespace names, among others).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !is_label_shape(value) {
        errs.push(regex_error(
            DNS1123_LABEL_MSG,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// What is wrong with `value` as a DNS-1123 subdomain (most object names).
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !value.split('.').all(is_label_shape) {
        let pattern = format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*");
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            &pattern,
            &["example.com"],
        ));
    }
    errs
}

/// What is wrong with `value` as a qualified name (a label or annotation key: an optional
/// DNS subdomain prefix and `/`, then a name of up to 63 characters).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec![format!("prefix part {}", empty_error())];
            }
            let errs = is_dns1123_subdomain(prefix);
            if !errs.is_empty() {
                return errs
                    .into_iter()
                    .map(|e| format!("prefix part {e}"))
                    .collect();
            }
            name
        }
        _ => {
            let detail = regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            );
            return vec![format!(
                "a qualified name {detail} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_shape(name) {
        let detail = regex_error(
            QUALIFIED_NAME_MSG,
            QUALIFIED_NAME_FMT,
            &["MyName", "my.name", "123-abc"],
        );
        errs.push(format!("name part {detail}"));
    }
    errs
}

/// What is wrong with `value` as a label value (empty, or a qualified name's name part).
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !is_qualified_shape(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    #[track_caller]
    fn check(f: fn(&str) -> Vec<String>, value: &str, expected: Expect) {
        expected.assert_eq(&f(value).join("\n"));
    }

    #[test]
    fn dns1123_labels() {
        check(is_dns1123_label, "kube-system", expect![[""]]);
        check(is_dns1123_label, "0a", expect![[""]]);
        check(
            is_dns1123_label,
            "Kube",
            expect![[
                r#"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#
            ]],
        );
        check(
            is_dns1123_label,
            "a.b",
            expect![[
                r#"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#
            ]],
        );
        check(
            is_dns1123_label,
            &"a".repeat(64),
            expect![[r#"must be no more than 63 characters"#]],
        );
    }

    #[test]
    fn dns1123_subdomains() {
        check(is_dns1123_subdomain, "eve.lfedge.org", expect![[""]]);
        check(
            is_dns1123_subdomain,
            "a..b",
            expect![[
                r#"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]],
        );
        check(
            is_dns1123_subdomain,
            "-a",
            expect![[
                r#"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]],
        );
        check(
            is_dns1123_subdomain,
            "",
            expect![[
                r#"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]],
        );
    }

    #[test]
    fn qualified_names() {
        check(is_qualified_name, "app", expect![[""]]);
        check(is_qualified_name, "eve.lfedge.org/activate", expect![[""]]);
        check(is_qualified_name, "My_Name.1", expect![[""]]);
        check(
            is_qualified_name,
            "/a",
            expect![[r#"prefix part must be non-empty"#]],
        );
        check(
            is_qualified_name,
            "Eve.org/a",
            expect![[
                r#"prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]],
        );
        check(
            is_qualified_name,
            "a/",
            expect![[r#"
            name part must be non-empty
            name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#]],
        );
        check(
            is_qualified_name,
            "a/b/c",
            expect![[
                r#"a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"#
            ]],
        );
        check(
            is_qualified_name,
            &"a".repeat(64),
            expect![[r#"name part must be no more than 63 characters"#]],
        );
    }

    #[test]
    fn label_values() {
        check(is_valid_label_value, "", expect![[""]]);
        check(is_valid_label_value, "v1.2_3-x", expect![[""]]);
        check(
            is_valid_label_value,
            "a b",
            expect![[
                r#"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#
            ]],
        );
        check(
            is_valid_label_value,
            &"a".repeat(64),
            expect![[r#"must be no more than 63 characters"#]],
        );
    }
}
