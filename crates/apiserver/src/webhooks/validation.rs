//! kube-apiserver's validation of the two kinds (v1): each webhook's name, rules, policies,
//! selectors, review versions and client config (URL or service), and unique names.

use std::collections::BTreeSet;

use apimachinery::FieldError;
use apimachinery::validation::{is_dns1123_subdomain, max_len_error, regex_error};
use base64::Engine;
use registry::object::strings;
use serde_json::Value;

use super::config::Flavor;
use super::matching::LabelSelector;

/// A list as messages show it (`["*","CREATE"]`).
fn shown(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_default()
}

/// kube-apiserver's `IsFullyQualifiedName`: a DNS subdomain with at least three segments.
fn fully_qualified_name(path: &str, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errors = is_dns1123_subdomain(name);
    if !errors.is_empty() {
        return vec![FieldError::invalid(path, name, errors.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// What is wrong with `value` as a DNS-1035 label.
fn dns1035_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    let b = value.as_bytes();
    let shaped = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !shaped {
        errors.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errors
}

fn validate_rule(rule: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let operations = strings(&rule["operations"]);
    if operations.is_empty() {
        errors.push(FieldError::required(format!("{path}.operations"), ""));
    }
    if operations.len() > 1 && operations.iter().any(|o| o == "*") {
        errors.push(FieldError::invalid(
            format!("{path}.operations"),
            shown(&operations),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, operation) in operations.iter().enumerate() {
        const SUPPORTED: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
        if !SUPPORTED.contains(&operation.as_str()) {
            errors.push(FieldError::not_supported(
                format!("{path}.operations[{i}]"),
                operation,
                SUPPORTED,
            ));
        }
    }
    let groups = strings(&rule["apiGroups"]);
    if groups.is_empty() {
        errors.push(FieldError::required(format!("{path}.apiGroups"), ""));
    }
    if groups.len() > 1 && groups.iter().any(|g| g == "*") {
        errors.push(FieldError::invalid(
            format!("{path}.apiGroups"),
            shown(&groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = strings(&rule["apiVersions"]);
    if versions.is_empty() {
        errors.push(FieldError::required(format!("{path}.apiVersions"), ""));
    }
    if versions.len() > 1 && versions.iter().any(|v| v == "*") {
        errors.push(FieldError::invalid(
            format!("{path}.apiVersions"),
            shown(&versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if version.is_empty() {
            errors.push(FieldError::required(format!("{path}.apiVersions[{i}]"), ""));
        }
    }
    errors.extend(validate_resources(
        &strings(&rule["resources"]),
        &format!("{path}.resources"),
    ));
    if let Some(scope) = rule["scope"].as_str() {
        const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
        if !SCOPES.contains(&scope) {
            errors.push(FieldError::not_supported(
                format!("{path}.scope"),
                scope,
                SCOPES,
            ));
        }
    }
    errors
}

/// kube-apiserver's `validateResources`: wildcards may not be combined with what they cover.
fn validate_resources(resources: &[String], path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if resources.is_empty() {
        errors.push(FieldError::required(path, ""));
    }
    let mut with_any_sub = BTreeSet::new();
    let mut any_with_sub = BTreeSet::new();
    let mut double_wildcard = false;
    let mut single_wildcard = false;
    let mut without_sub = false;
    for (i, entry) in resources.iter().enumerate() {
        if entry.is_empty() {
            errors.push(FieldError::required(format!("{path}[{i}]"), ""));
            continue;
        }
        double_wildcard |= entry == "*/*";
        single_wildcard |= entry == "*";
        let Some((resource, sub)) = entry.split_once('/') else {
            without_sub = entry != "*";
            continue;
        };
        if with_any_sub.contains(resource) {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                entry,
                format!("if '{resource}/*' is present, must not specify {entry}"),
            ));
        }
        if any_with_sub.contains(sub) {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                entry,
                format!("if '*/{sub}' is present, must not specify {entry}"),
            ));
        }
        if sub == "*" {
            with_any_sub.insert(resource.to_string());
        }
        if resource == "*" {
            any_with_sub.insert(sub.to_string());
        }
    }
    if resources.len() > 1 && double_wildcard {
        errors.push(FieldError::invalid(
            path,
            shown(resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single_wildcard && without_sub {
        errors.push(FieldError::invalid(
            path,
            shown(resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errors
}

/// The parts of a URL that kube-apiserver's webhook URL rules look at.
struct UrlParts<'a> {
    scheme: &'a str,
    user: &'a str,
    host: &'a str,
    query: &'a str,
    fragment: &'a str,
}

fn url_parts(url: &str) -> UrlParts<'_> {
    let (rest, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (scheme, rest) = rest.split_once("://").unwrap_or(("", rest));
    let authority = rest.split('/').next().unwrap_or("");
    let (user, host) = authority.rsplit_once('@').unwrap_or(("", authority));
    UrlParts {
        scheme,
        user,
        host,
        query,
        fragment,
    }
}

/// kube-apiserver's `ValidateWebhookURL` (HTTPS forced).
fn validate_url(path: &str, url: &str) -> Vec<FieldError> {
    const FORM: &str = "; desired format: https://host[/path]";
    let mut errors = Vec::new();
    let parts = url_parts(url);
    if parts.scheme != "https" {
        errors.push(FieldError::invalid(
            path,
            parts.scheme,
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if parts.host.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.host,
            format!("host must be specified{FORM}"),
        ));
    }
    if !parts.user.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.user,
            "user information is not permitted in the URL",
        ));
    }
    if !parts.fragment.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !parts.query.is_empty() {
        errors.push(FieldError::invalid(
            path,
            parts.query,
            "query parameters are not permitted in the URL",
        ));
    }
    if errors.is_empty()
        && let Err(e) = url.parse::<http::Uri>()
    {
        errors.push(FieldError::required(
            path,
            format!("url must be a valid URL: {e}{FORM}"),
        ));
    }
    errors
}

/// kube-apiserver's `ValidateWebhookService`.
fn validate_service(path: &str, service: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if service["name"].as_str().unwrap_or("").is_empty() {
        errors.push(FieldError::required(
            format!("{path}.name"),
            "service name is required",
        ));
    }
    if service["namespace"].as_str().unwrap_or("").is_empty() {
        errors.push(FieldError::required(
            format!("{path}.namespace"),
            "service namespace is required",
        ));
    }
    let port = service["port"].as_i64().unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errors.push(FieldError::invalid(
            format!("{path}.port"),
            port.to_string(),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let url_path = service["path"].as_str().unwrap_or("");
    if url_path.is_empty() || url_path == "/" {
        return errors;
    }
    let at = format!("{path}.path");
    if url_path == "//" {
        errors.push(FieldError::invalid(
            &at,
            url_path,
            "segment[0] may not be empty",
        ));
        return errors;
    }
    if !url_path.starts_with('/') {
        errors.push(FieldError::invalid(&at, url_path, "must start with a '/'"));
    }
    let trimmed = url_path.strip_prefix('/').unwrap_or(url_path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    for (i, step) in trimmed.split('/').enumerate() {
        if step.is_empty() {
            errors.push(FieldError::invalid(
                &at,
                url_path,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for failure in is_dns1123_subdomain(step) {
            errors.push(FieldError::invalid(
                &at,
                url_path,
                format!("segment[{i}]: {failure}"),
            ));
        }
    }
    errors
}

fn validate_client_config(config: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let url = config["url"].as_str();
    let service = config.get("service").filter(|s| s.is_object());
    match (url, service) {
        (Some(url), None) => errors.extend(validate_url(&format!("{path}.url"), url)),
        (None, Some(service)) => {
            errors.extend(validate_service(&format!("{path}.service"), service));
        }
        _ => errors.push(FieldError::required(
            path,
            "exactly one of url or service is required",
        )),
    }
    if let Some(bundle) = config["caBundle"].as_str()
        && let Err(e) = base64::engine::general_purpose::STANDARD.decode(bundle)
    {
        errors.push(FieldError::invalid(
            format!("{path}.caBundle"),
            "<bytes>",
            format!("must be base64-encoded PEM certificates: {e}"),
        ));
    }
    errors
}

/// The review versions this server speaks.
const REVIEW_VERSIONS: &[&str] = &["v1"];

fn validate_review_versions(versions: &[String], path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if versions.is_empty() {
        errors.push(FieldError::required(
            path,
            format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        ));
        return errors;
    }
    let mut seen = BTreeSet::new();
    for (i, version) in versions.iter().enumerate() {
        if !seen.insert(version) {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                version,
                "duplicate version",
            ));
            continue;
        }
        for message in dns1035_label(version) {
            errors.push(FieldError::invalid(
                format!("{path}[{i}]"),
                version,
                message,
            ));
        }
    }
    if !versions
        .iter()
        .any(|v| REVIEW_VERSIONS.contains(&v.as_str()))
    {
        errors.push(FieldError::invalid(
            path,
            shown(versions),
            format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errors
}

fn validate_hook(flavor: Flavor, hook: &Value, path: &str) -> Vec<FieldError> {
    let mut errors =
        fully_qualified_name(&format!("{path}.name"), hook["name"].as_str().unwrap_or(""));
    for (i, rule) in hook["rules"].as_array().into_iter().flatten().enumerate() {
        errors.extend(validate_rule(rule, &format!("{path}.rules[{i}]")));
    }
    let choice = |errors: &mut Vec<FieldError>, field: &str, supported: &[&str]| {
        if let Some(value) = hook[field].as_str()
            && !supported.contains(&value)
        {
            errors.push(FieldError::not_supported(
                format!("{path}.{field}"),
                value,
                supported,
            ));
        }
    };
    choice(&mut errors, "failurePolicy", &["Fail", "Ignore"]);
    choice(&mut errors, "matchPolicy", &["Equivalent", "Exact"]);
    const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
    match hook["sideEffects"].as_str() {
        None => errors.push(FieldError::required(
            format!("{path}.sideEffects"),
            format!("must specify one of {}", NO_SIDE_EFFECTS.join(", ")),
        )),
        Some(effects) if !NO_SIDE_EFFECTS.contains(&effects) => {
            errors.push(FieldError::not_supported(
                format!("{path}.sideEffects"),
                effects,
                NO_SIDE_EFFECTS,
            ));
        }
        Some(_) => {}
    }
    if let Some(timeout) = hook["timeoutSeconds"].as_i64()
        && !(1..=30).contains(&timeout)
    {
        errors.push(FieldError::invalid(
            format!("{path}.timeoutSeconds"),
            timeout.to_string(),
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    for selector in ["namespaceSelector", "objectSelector"] {
        if let Err(more) = LabelSelector::parse(&hook[selector], &format!("{path}.{selector}")) {
            errors.extend(more);
        }
    }
    errors.extend(validate_review_versions(
        &strings(&hook["admissionReviewVersions"]),
        &format!("{path}.admissionReviewVersions"),
    ));
    errors.extend(validate_client_config(
        &hook["clientConfig"],
        &format!("{path}.clientConfig"),
    ));
    if flavor == Flavor::Mutating {
        choice(&mut errors, "reinvocationPolicy", &["IfNeeded", "Never"]);
    }
    if hook["matchConditions"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        errors.push(FieldError::forbidden(
            format!("{path}.matchConditions"),
            "matchConditions are not supported by this server (they are CEL expressions, which it does not evaluate): choose requests with rules, namespaceSelector and objectSelector",
        ));
    }
    errors
}

/// kube-apiserver's validation of a webhook configuration (v1): every webhook, and unique names.
pub(crate) fn validate(flavor: Flavor, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut names = BTreeSet::new();
    for (i, hook) in object["webhooks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("webhooks[{i}]");
        errors.extend(validate_hook(flavor, hook, &path));
        let name = hook["name"].as_str().unwrap_or("");
        if !name.is_empty() && !names.insert(name) {
            errors.push(FieldError::duplicate(format!("{path}.name"), name));
        }
    }
    errors
}

#[cfg(test)]
mod tests;
