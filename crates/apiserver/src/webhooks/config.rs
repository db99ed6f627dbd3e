//! The two kinds, `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration`
//! (`admissionregistration.k8s.io/v1`, cluster-scoped): registry resources and a strategy that
//! writes the v1 defaults and checks kube-apiserver's validation essentials; printers and
//! schemas; and [`Hook`], one stored webhook as the plug-in calls it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use apimachinery::FieldError;
use apimachinery::validation::{is_dns1123_subdomain, max_len_error, regex_error};
use base64::Engine;
use registry::{Resource, Strategy};
use serde_json::{Map, Value, json};

use super::matching::{LabelSelector, Rule};
use crate::catalog::{Column, Kind};
use crate::native::{age, kind, native_schema_name, plain};
use crate::schema::Components;

/// The API group of the webhook configurations.
pub(crate) const GROUP: &str = "admissionregistration.k8s.io";

/// The timeout of a webhook that gives none.
const DEFAULT_TIMEOUT_SECONDS: i64 = 10;

/// Which of the two kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `ValidatingWebhookConfiguration`.
    Validating,
    /// `MutatingWebhookConfiguration`.
    Mutating,
}

impl Flavor {
    /// The plural resource.
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Flavor::Validating => "validatingwebhookconfigurations",
            Flavor::Mutating => "mutatingwebhookconfigurations",
        }
    }

    /// The kind.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Flavor::Validating => "ValidatingWebhookConfiguration",
            Flavor::Mutating => "MutatingWebhookConfiguration",
        }
    }
}

/// The registry resource of one kind (what the plug-in's cache watches).
pub(crate) fn resource(flavor: Flavor) -> Resource {
    plain(
        GROUP,
        flavor.resource(),
        flavor.kind(),
        false,
        Arc::new(ConfigurationStrategy { flavor }),
    )
}

/// The two kinds for the catalog, over `components` (which must hold [`add_components`]'s).
pub(crate) fn kinds(components: &Arc<Components>) -> Vec<Kind> {
    [Flavor::Validating, Flavor::Mutating]
        .into_iter()
        .map(|flavor| {
            kind(
                components,
                GROUP,
                flavor.resource(),
                flavor.kind(),
                &[],
                false,
                Arc::new(ConfigurationStrategy { flavor }),
                None,
                vec![
                    Column::new("Webhooks", "integer", 0, "The number of webhooks"),
                    Column::new(
                        "Age",
                        "date",
                        0,
                        "CreationTimestamp is a timestamp representing the server time when this object was created.",
                    ),
                ],
                |o| {
                    let webhooks = o["webhooks"].as_array().map_or(0, Vec::len);
                    vec![json!(webhooks), age(o)]
                },
                &[],
            )
        })
        .collect()
}

/// Adds the schemas of the two kinds (from `k8s-openapi`) to the native components.
pub(crate) fn add_components(components: &mut Components) {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<ValidatingWebhookConfiguration>();
    generator.subschema_for::<MutatingWebhookConfiguration>();
    for (name, schema) in generator.take_definitions(true) {
        components.entry(name).or_insert(schema);
    }
    for flavor in [Flavor::Validating, Flavor::Mutating] {
        let name = native_schema_name(GROUP, "v1", flavor.kind());
        if let Some(Value::Object(schema)) = components.get_mut(&name) {
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": GROUP, "version": "v1", "kind": flavor.kind()}]),
            );
        }
    }
}

/// The strategy of both kinds: v1 defaults, then validation.
pub(crate) struct ConfigurationStrategy {
    flavor: Flavor,
}

impl Strategy for ConfigurationStrategy {
    fn prepare_for_create(&self, object: &mut Value) {
        default(self.flavor, object);
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        default(self.flavor, new);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        validate(self.flavor, object)
    }
}

fn set_default(map: &mut Map<String, Value>, field: &str, value: Value) {
    if map.get(field).is_none_or(Value::is_null) {
        map.insert(field.into(), value);
    }
}

/// Writes kube-apiserver's v1 defaults into every webhook: `failurePolicy: Fail`,
/// `matchPolicy: Equivalent`, empty selectors, `timeoutSeconds: 10`, rule `scope: "*"`,
/// service `port: 443`, and (mutating) `reinvocationPolicy: Never`.
pub(crate) fn default(flavor: Flavor, object: &mut Value) {
    let Some(hooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
        set_default(hook, "failurePolicy", json!("Fail"));
        set_default(hook, "matchPolicy", json!("Equivalent"));
        set_default(hook, "namespaceSelector", json!({}));
        set_default(hook, "objectSelector", json!({}));
        set_default(hook, "timeoutSeconds", json!(DEFAULT_TIMEOUT_SECONDS));
        if flavor == Flavor::Mutating {
            set_default(hook, "reinvocationPolicy", json!("Never"));
        }
        if let Some(rules) = hook.get_mut("rules").and_then(Value::as_array_mut) {
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                set_default(rule, "scope", json!("*"));
            }
        }
        if let Some(service) = hook
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            set_default(service, "port", json!(443));
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

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

/// One webhook of a stored configuration, ready to be matched and called.
#[derive(Clone, Debug)]
pub(crate) struct Hook {
    /// The configuration's name.
    pub(crate) configuration: String,
    /// The webhook's name.
    pub(crate) name: String,
    /// Its rules.
    pub(crate) rules: Vec<Rule>,
    /// `failurePolicy: Ignore`: call failures let the request through.
    pub(crate) fail_open: bool,
    /// `matchPolicy: Equivalent`.
    pub(crate) equivalent: bool,
    /// The namespace selector (or why the stored one does not parse).
    pub(crate) namespace_selector: Result<LabelSelector, String>,
    /// The object selector (or why the stored one does not parse).
    pub(crate) object_selector: Result<LabelSelector, String>,
    /// `sideEffects`.
    pub(crate) side_effects: String,
    /// `timeoutSeconds`.
    pub(crate) timeout: Duration,
    /// `reinvocationPolicy: IfNeeded` (mutating only).
    pub(crate) reinvoke: bool,
    /// Where to post reviews: the `url`, or `https://NAME.NAMESPACE.svc:PORT/PATH` for a
    /// `service`.
    pub(crate) url: String,
    /// The decoded `caBundle` (PEM); empty for the system roots.
    pub(crate) ca_bundle: Vec<u8>,
}

impl Hook {
    /// Whether the webhook may be called on a dry run.
    pub(crate) fn dry_run_safe(&self) -> bool {
        matches!(self.side_effects.as_str(), "None" | "NoneOnDryRun")
    }

    fn from_json(configuration: &str, hook: &Value) -> Hook {
        let selector = |field: &str| {
            LabelSelector::parse(&hook[field], field).map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        let client = &hook["clientConfig"];
        let url = match client["url"].as_str() {
            Some(url) => url.to_string(),
            None => {
                let service = &client["service"];
                format!(
                    "https://{}.{}.svc:{}{}",
                    service["name"].as_str().unwrap_or(""),
                    service["namespace"].as_str().unwrap_or(""),
                    service["port"].as_i64().unwrap_or(443),
                    service["path"].as_str().unwrap_or(""),
                )
            }
        };
        let timeout = hook["timeoutSeconds"]
            .as_i64()
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
            .clamp(1, 30);
        Hook {
            configuration: configuration.to_string(),
            name: hook["name"].as_str().unwrap_or("").to_string(),
            rules: hook["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Rule::from_json)
                .collect(),
            fail_open: hook["failurePolicy"] == "Ignore",
            equivalent: hook["matchPolicy"] != "Exact",
            namespace_selector: selector("namespaceSelector"),
            object_selector: selector("objectSelector"),
            side_effects: hook["sideEffects"].as_str().unwrap_or("").to_string(),
            timeout: Duration::from_secs(timeout.unsigned_abs()),
            reinvoke: hook["reinvocationPolicy"] == "IfNeeded",
            url,
            ca_bundle: client["caBundle"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default(),
        }
    }
}

/// The webhooks of the stored configurations (by name), in the order they run: by
/// configuration name, then as listed.
pub(crate) fn hooks(configurations: &BTreeMap<String, Value>) -> Vec<Hook> {
    configurations
        .iter()
        .flat_map(|(name, configuration)| {
            configuration["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |hook| Hook::from_json(name, hook))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(changes: Value) -> Value {
        let mut hook = json!({
            "name": "check.example.com",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "clientConfig": {"url": "https://127.0.0.1:8443/validate"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        });
        json_patch::merge(&mut hook, &changes);
        hook
    }

    fn messages(flavor: Flavor, hooks: Vec<Value>) -> Vec<String> {
        let mut object = json!({"webhooks": hooks});
        default(flavor, &mut object);
        validate(flavor, &object)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults_are_written() {
        let mut object = json!({"webhooks": [hook(json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n"}}}))]});
        default(Flavor::Mutating, &mut object);
        let hook = &object["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["matchPolicy"], "Equivalent");
        assert_eq!(hook["reinvocationPolicy"], "Never");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["namespaceSelector"], json!({}));
        assert_eq!(hook["objectSelector"], json!({}));
        assert_eq!(hook["rules"][0]["scope"], "*");
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
        assert!(messages(Flavor::Mutating, vec![hook.clone()]).is_empty());
        let parsed = hooks(&BTreeMap::from([("c".to_string(), object.clone())]));
        assert_eq!(parsed[0].url, "https://s.n.svc:443");
        // Validating webhooks have no reinvocation policy.
        let mut object = json!({"webhooks": [hook.clone()]});
        object["webhooks"][0]
            .as_object_mut()
            .unwrap()
            .remove("reinvocationPolicy");
        default(Flavor::Validating, &mut object);
        assert!(object["webhooks"][0].get("reinvocationPolicy").is_none());
    }

    #[test]
    fn kube_apiserver_rules_are_checked() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"name": "short.name"}),
                "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots",
            ),
            (json!({"name": ""}), "webhooks[0].name: Required value"),
            (
                json!({"sideEffects": null}),
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            ),
            (
                json!({"sideEffects": "Some"}),
                "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
            ),
            (
                json!({"sideEffects": "Unknown"}),
                "webhooks[0].sideEffects: Unsupported value: \"Unknown\": supported values: \"None\", \"NoneOnDryRun\"",
            ),
            (
                json!({"admissionReviewVersions": []}),
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1",
            ),
            (
                json!({"admissionReviewVersions": ["v1beta1"]}),
                "webhooks[0].admissionReviewVersions: Invalid value: \"[\\\"v1beta1\\\"]\": must include at least one of v1",
            ),
            (
                json!({"admissionReviewVersions": ["v1", "v1"]}),
                "webhooks[0].admissionReviewVersions[1]: Invalid value: \"v1\": duplicate version",
            ),
            (
                json!({"timeoutSeconds": 31}),
                "webhooks[0].timeoutSeconds: Invalid value: \"31\": the timeout value must be between 1 and 30 seconds",
            ),
            (
                json!({"timeoutSeconds": 0}),
                "webhooks[0].timeoutSeconds: Invalid value: \"0\": the timeout value must be between 1 and 30 seconds",
            ),
            (
                json!({"failurePolicy": "Sometimes"}),
                "webhooks[0].failurePolicy: Unsupported value: \"Sometimes\": supported values: \"Fail\", \"Ignore\"",
            ),
            (
                json!({"matchPolicy": "Close"}),
                "webhooks[0].matchPolicy: Unsupported value: \"Close\": supported values: \"Equivalent\", \"Exact\"",
            ),
            (
                json!({"clientConfig": {"url": null}}),
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            ),
            (
                json!({"clientConfig": {"service": {"name": "s", "namespace": "n"}}}),
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            ),
            (
                json!({"clientConfig": {"url": "http://example.com/x"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
            ),
            (
                json!({"clientConfig": {"url": "https://example.com/x#part"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"part\": fragments are not permitted in the URL",
            ),
            (
                json!({"clientConfig": {"url": "https://example.com/x?a=b"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
            ),
            (
                json!({"clientConfig": {"url": "https://me@example.com/x"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"me\": user information is not permitted in the URL",
            ),
            (
                json!({"clientConfig": {"url": "https:///x"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"\": host must be specified; desired format: https://host[/path]",
            ),
            (
                json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n", "port": 70000}}}),
                "webhooks[0].clientConfig.service.port: Invalid value: \"70000\": port is not valid: must be between 1 and 65535, inclusive",
            ),
            (
                json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n", "path": "no-slash"}}}),
                "webhooks[0].clientConfig.service.path: Invalid value: \"no-slash\": must start with a '/'",
            ),
            (
                json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n", "path": "/a//b"}}}),
                "webhooks[0].clientConfig.service.path: Invalid value: \"/a//b\": segment[1] may not be empty",
            ),
            (
                json!({"clientConfig": {"url": null, "service": {"namespace": "n"}}}),
                "webhooks[0].clientConfig.service.name: Required value: service name is required",
            ),
            (
                json!({"clientConfig": {"caBundle": "%%%"}}),
                "webhooks[0].clientConfig.caBundle: Invalid value: \"<bytes>\": must be base64-encoded PEM certificates: Invalid symbol 37, offset 0.",
            ),
            (
                json!({"rules": [{"operations": [], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"]}]}),
                "webhooks[0].rules[0].operations: Required value",
            ),
            (
                json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"]}]}),
                "webhooks[0].rules[0].operations: Invalid value: \"[\\\"*\\\",\\\"CREATE\\\"]\": if '*' is present, must not specify other operations",
            ),
            (
                json!({"rules": [{"operations": ["PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"]}]}),
                "webhooks[0].rules[0].operations[0]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": ["*", "apps"], "apiVersions": ["v1"], "resources": ["x"]}]}),
                "webhooks[0].rules[0].apiGroups: Invalid value: \"[\\\"*\\\",\\\"apps\\\"]\": if '*' is present, must not specify other API groups",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": [], "resources": ["x"]}]}),
                "webhooks[0].rules[0].apiVersions: Required value",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": []}]}),
                "webhooks[0].rules[0].resources: Required value",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*/*", "pods"]}]}),
                "webhooks[0].rules[0].resources: Invalid value: \"[\\\"*/*\\\",\\\"pods\\\"]\": if '*/*' is present, must not specify other resources",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*", "pods"]}]}),
                "webhooks[0].rules[0].resources: Invalid value: \"[\\\"*\\\",\\\"pods\\\"]\": if '*' is present, must not specify other resources without subresources",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"]}]}),
                "webhooks[0].rules[0].resources[1]: Invalid value: \"pods/status\": if 'pods/*' is present, must not specify pods/status",
            ),
            (
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"], "scope": "Galaxy"}]}),
                "webhooks[0].rules[0].scope: Unsupported value: \"Galaxy\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
            ),
            (
                json!({"matchConditions": [{"name": "c", "expression": "true"}]}),
                "webhooks[0].matchConditions: Forbidden: matchConditions are not supported by this server (they are CEL expressions, which it does not evaluate): choose requests with rules, namespaceSelector and objectSelector",
            ),
        ];
        for (changes, expected) in cases {
            let found = messages(Flavor::Validating, vec![hook(changes.clone())]);
            assert_eq!(found, [expected], "{changes}");
        }
        assert_eq!(
            messages(
                Flavor::Mutating,
                vec![hook(json!({"reinvocationPolicy": "Always"}))]
            ),
            [
                "webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\""
            ]
        );
        assert_eq!(
            messages(Flavor::Validating, vec![hook(json!({})), hook(json!({}))]),
            ["webhooks[1].name: Duplicate value: \"check.example.com\""]
        );
        // A trailing dot is allowed; an empty matchConditions list is not a condition.
        assert!(
            messages(
                Flavor::Validating,
                vec![hook(json!({"name": "a.b.c.", "matchConditions": []}))]
            )
            .is_empty()
        );
    }
}
