//! The two kinds, `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration`
//! (`admissionregistration.k8s.io/v1`, cluster-scoped): registry resources and a strategy that
//! writes the v1 defaults and checks kube-apiserver's validation essentials (see
//! [`validation`](super::validation)); printers and schemas; and [`Hook`], one stored webhook as
//! the plug-in calls it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::FieldError;
use base64::Engine;
use registry::{Resource, Strategy};
use serde_json::{Map, Value, json};

use super::matching::{LabelSelector, Rule};
use super::validation::validate;
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
pub(super) mod tests {
    use super::*;

    /// A valid validating webhook, with `changes` merged in (a JSON merge patch).
    pub(crate) fn hook(changes: Value) -> Value {
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

    /// The validation messages of a configuration of `hooks`, defaulted first as on create.
    pub(crate) fn messages(flavor: Flavor, hooks: Vec<Value>) -> Vec<String> {
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
}
