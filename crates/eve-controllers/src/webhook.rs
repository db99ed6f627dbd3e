//! The admission rules as a Kubernetes admission webhook (cluster mode): `AdmissionReview` in,
//! `AdmissionReview` out, and the webhook configurations that register it. The HTTPS listener is
//! the caller's; this module only speaks the review's JSON.

use std::collections::BTreeMap;

use apimachinery::{FieldError, aggregate};
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status, response::StatusCause, response::StatusDetails};
use serde_json::Value;

use crate::admission::{self, Admission, Refusal, Review};

/// The path of the mutating webhook (quantities normalised).
pub const MUTATE_PATH: &str = "/mutate";
/// The path of the validating webhook (every other rule).
pub const VALIDATE_PATH: &str = "/validate";
/// The name of both webhook configurations.
pub const CONFIGURATION_NAME: &str = "adamant-eve";

/// Which of the two webhooks a review is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Normalise quantities (answers with a JSON patch).
    Mutate,
    /// Accept or refuse.
    Validate,
}

impl Stage {
    /// The stage served at `path`, if any.
    pub fn from_path(path: &str) -> Option<Stage> {
        match path {
            MUTATE_PATH => Some(Stage::Mutate),
            VALIDATE_PATH => Some(Stage::Validate),
            _ => None,
        }
    }
}

/// A body that is not an `AdmissionReview` with a request.
#[derive(Debug, thiserror::Error)]
#[error(
    "the body is not an admission.k8s.io/v1 AdmissionReview with a request: {0}; this endpoint is called by the Kubernetes API server"
)]
pub struct BadReview(String);

/// Answers one `AdmissionReview` (JSON) with another.
pub async fn answer(
    admission: &Admission,
    stage: Stage,
    body: &[u8],
) -> Result<Vec<u8>, BadReview> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| BadReview(e.to_string()))?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| BadReview("it has no request".into()))?;
    let response = respond(admission, stage, &request).await;
    let mut review =
        serde_json::to_value(response.into_review()).map_err(|e| BadReview(e.to_string()))?;
    // The API server reads the patch as Go's []byte: a base64 string.
    let patch = &mut review["response"]["patch"];
    if let Some(bytes) = patch.as_array() {
        let bytes: Vec<u8> = bytes
            .iter()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
        *patch = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    serde_json::to_vec(&review).map_err(|e| BadReview(e.to_string()))
}

async fn respond(
    admission: &Admission,
    stage: Stage,
    request: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    let allowed = AdmissionResponse::from(request);
    let operation = match request.operation {
        Operation::Create => admission::Operation::Create,
        Operation::Update => admission::Operation::Update,
        Operation::Delete | Operation::Connect => return allowed,
    };
    let Some(object) = &request.object else {
        return allowed;
    };
    let review = Review {
        operation,
        group: request.kind.group.clone(),
        resource: request.resource.resource.clone(),
        subresource: request.sub_resource.clone().unwrap_or_default(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone().unwrap_or_default(),
        name: request.name.clone(),
        dry_run: request.dry_run,
    };
    let original = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(e) => return allowed.deny(format!("the object cannot be read: {e}")),
    };
    let old = request
        .old_object
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok());
    let mut object = original.clone();
    let mut warnings = match admission.mutate(&review, &mut object) {
        Ok(warnings) => warnings,
        Err(refusal) => return deny(allowed, &review, &original, refusal),
    };
    let response = match stage {
        Stage::Mutate => {
            let patch = json_patch::diff(&original, &object);
            if patch.0.is_empty() {
                allowed
            } else {
                match allowed.clone().with_patch(patch) {
                    Ok(response) => response,
                    Err(e) => return allowed.deny(format!("the patch cannot be written: {e}")),
                }
            }
        }
        Stage::Validate => match admission.validate(&review, &object, old.as_ref()).await {
            Ok(mut more) => {
                warnings.append(&mut more);
                allowed
            }
            Err(refusal) => return deny(allowed, &review, &object, refusal),
        },
    };
    let mut response = response;
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

/// A refusal as the Status the API server passes on to the client.
fn deny(
    response: AdmissionResponse,
    review: &Review,
    object: &Value,
    refusal: Refusal,
) -> AdmissionResponse {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or(&review.name)
        .to_string();
    let (code, reason, message, causes) = match refusal {
        Refusal::Invalid(causes) => {
            let kind = if review.group.is_empty() {
                review.kind.clone()
            } else {
                format!("{}.{}", review.kind, review.group)
            };
            let message = format!("{kind} {name:?} is invalid: {}", aggregate(&causes));
            (422, "Invalid", message, causes)
        }
        Refusal::Forbidden(message) => (403, "Forbidden", message, Vec::new()),
        Refusal::Unavailable(message) => (503, "ServiceUnavailable", message, Vec::new()),
    };
    let mut response = response.deny(&message);
    response.result = Status {
        status: Some(kube::core::response::StatusSummary::Failure),
        code,
        message,
        metadata: None,
        reason: reason.into(),
        details: Some(StatusDetails {
            name,
            group: review.group.clone(),
            kind: review.resource.clone(),
            uid: String::new(),
            causes: causes.iter().map(cause).collect(),
            retry_after_seconds: 0,
        }),
    };
    response
}

fn cause(error: &FieldError) -> StatusCause {
    StatusCause {
        reason: error.reason().into(),
        message: error.body(),
        field: error.path.clone(),
    }
}

/// Where the API server reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A URL (`https://host:port`), for a webhook outside the cluster.
    Url(String),
    /// A Service in the cluster.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port (443 when not given).
        port: Option<i32>,
    },
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Endpoint, String> {
        if s.starts_with("https://") {
            return Ok(Endpoint::Url(s.trim_end_matches('/').to_string()));
        }
        let (path, port) = match s.rsplit_once(':') {
            Some((path, port)) => (
                path,
                Some(
                    port.parse::<i32>()
                        .map_err(|_| format!("{s:?}: the port after ':' must be a number"))?,
                ),
            ),
            None => (s, None),
        };
        match path.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                Ok(Endpoint::Service {
                    namespace: namespace.into(),
                    name: name.into(),
                    port,
                })
            }
            _ => Err(format!(
                "{s:?} is neither an https:// URL nor a Service as NAMESPACE/NAME[:PORT]"
            )),
        }
    }
}

fn client_config(endpoint: &Endpoint, path: &str, ca_bundle: &str) -> WebhookClientConfig {
    let mut config = WebhookClientConfig {
        ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
        ..WebhookClientConfig::default()
    };
    match endpoint {
        Endpoint::Url(url) => config.url = Some(format!("{url}{path}")),
        Endpoint::Service {
            namespace,
            name,
            port,
        } => {
            config.service = Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path.into()),
                port: *port,
            })
        }
    }
    config
}

fn rule(group: &str, resources: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["*".into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        scope: Some("*".into()),
    }
}

fn metadata() -> ObjectMeta {
    ObjectMeta {
        name: Some(CONFIGURATION_NAME.into()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/part-of".to_string(),
            "adamant".to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

/// The mutating and validating webhook configurations that send the EVE kinds (and the native
/// kinds the rules look at) to the webhook at `endpoint`, whose serving certificate chains to
/// `ca_bundle` (PEM).
pub fn configurations(
    endpoint: &Endpoint,
    ca_bundle: &str,
) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    let eve = rule(eve_model::GROUP, &["*"]);
    let mutating = MutatingWebhookConfiguration {
        metadata: metadata(),
        webhooks: Some(vec![MutatingWebhook {
            name: "quantities.eve.lfedge.org".into(),
            admission_review_versions: vec!["v1".into()],
            client_config: client_config(endpoint, MUTATE_PATH, ca_bundle),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            reinvocation_policy: Some("IfNeeded".into()),
            rules: Some(vec![eve.clone()]),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            ..MutatingWebhook::default()
        }]),
    };
    let validating = ValidatingWebhookConfiguration {
        metadata: metadata(),
        webhooks: Some(vec![
            ValidatingWebhook {
                name: "rules.eve.lfedge.org".into(),
                admission_review_versions: vec!["v1".into()],
                client_config: client_config(endpoint, VALIDATE_PATH, ca_bundle),
                failure_policy: Some("Fail".into()),
                match_policy: Some("Equivalent".into()),
                rules: Some(vec![eve]),
                side_effects: "None".into(),
                timeout_seconds: Some(10),
                ..ValidatingWebhook::default()
            },
            // The native kinds belong to the whole cluster: while the controller is down (or
            // starting, and upgrading its own CRDs) their writes go on unchecked.
            ValidatingWebhook {
                name: "native.eve.lfedge.org".into(),
                admission_review_versions: vec!["v1".into()],
                client_config: client_config(endpoint, VALIDATE_PATH, ca_bundle),
                failure_policy: Some("Ignore".into()),
                match_policy: Some("Equivalent".into()),
                rules: Some(
                    admission::native_resources()
                        .iter()
                        .map(|(group, resource)| rule(group, &[resource.as_str()]))
                        .collect(),
                ),
                side_effects: "None".into(),
                timeout_seconds: Some(5),
                ..ValidatingWebhook::default()
            },
        ]),
    };
    (mutating, validating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn endpoints_parse() {
        let parse = |s: &str| format!("{:?}", s.parse::<Endpoint>());
        expect![[r#"Ok(Url("https://adamant.example.com:8443"))"#]]
            .assert_eq(&parse("https://adamant.example.com:8443/"));
        expect![[
            r#"Ok(Service { namespace: "adamant-system", name: "adamant-webhook", port: None })"#
        ]]
        .assert_eq(&parse("adamant-system/adamant-webhook"));
        expect![[r#"Ok(Service { namespace: "adamant-system", name: "adamant-webhook", port: Some(8443) })"#]].assert_eq(&parse("adamant-system/adamant-webhook:8443"));
        expect![[r#"Err("\"adamant-webhook\" is neither an https:// URL nor a Service as NAMESPACE/NAME[:PORT]")"#]].assert_eq(&parse("adamant-webhook"));
        expect![[r#"Err("\"ns/name:https\": the port after ':' must be a number")"#]]
            .assert_eq(&parse("ns/name:https"));
    }

    #[test]
    fn configurations_send_the_eve_kinds_and_the_native_kinds_checked() {
        let endpoint = Endpoint::Service {
            namespace: "adamant-system".into(),
            name: "adamant-webhook".into(),
            port: Some(8443),
        };
        let (mutating, validating) = configurations(&endpoint, "CA");
        let text = serde_json::to_string_pretty(&(mutating, validating)).unwrap();
        expect![[r#"
            [
              {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {
                  "labels": {
                    "app.kubernetes.io/part-of": "adamant"
                  },
                  "name": "adamant-eve"
                },
                "webhooks": [
                  {
                    "admissionReviewVersions": [
                      "v1"
                    ],
                    "clientConfig": {
                      "caBundle": "Q0E=",
                      "service": {
                        "name": "adamant-webhook",
                        "namespace": "adamant-system",
                        "path": "/mutate",
                        "port": 8443
                      }
                    },
                    "failurePolicy": "Fail",
                    "matchPolicy": "Equivalent",
                    "name": "quantities.eve.lfedge.org",
                    "reinvocationPolicy": "IfNeeded",
                    "rules": [
                      {
                        "apiGroups": [
                          "eve.lfedge.org"
                        ],
                        "apiVersions": [
                          "*"
                        ],
                        "operations": [
                          "CREATE",
                          "UPDATE"
                        ],
                        "resources": [
                          "*"
                        ],
                        "scope": "*"
                      }
                    ],
                    "sideEffects": "None",
                    "timeoutSeconds": 10
                  }
                ]
              },
              {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {
                  "labels": {
                    "app.kubernetes.io/part-of": "adamant"
                  },
                  "name": "adamant-eve"
                },
                "webhooks": [
                  {
                    "admissionReviewVersions": [
                      "v1"
                    ],
                    "clientConfig": {
                      "caBundle": "Q0E=",
                      "service": {
                        "name": "adamant-webhook",
                        "namespace": "adamant-system",
                        "path": "/validate",
                        "port": 8443
                      }
                    },
                    "failurePolicy": "Fail",
                    "matchPolicy": "Equivalent",
                    "name": "rules.eve.lfedge.org",
                    "rules": [
                      {
                        "apiGroups": [
                          "eve.lfedge.org"
                        ],
                        "apiVersions": [
                          "*"
                        ],
                        "operations": [
                          "CREATE",
                          "UPDATE"
                        ],
                        "resources": [
                          "*"
                        ],
                        "scope": "*"
                      }
                    ],
                    "sideEffects": "None",
                    "timeoutSeconds": 10
                  },
                  {
                    "admissionReviewVersions": [
                      "v1"
                    ],
                    "clientConfig": {
                      "caBundle": "Q0E=",
                      "service": {
                        "name": "adamant-webhook",
                        "namespace": "adamant-system",
                        "path": "/validate",
                        "port": 8443
                      }
                    },
                    "failurePolicy": "Ignore",
                    "matchPolicy": "Equivalent",
                    "name": "native.eve.lfedge.org",
                    "rules": [
                      {
                        "apiGroups": [
                          ""
                        ],
                        "apiVersions": [
                          "*"
                        ],
                        "operations": [
                          "CREATE",
                          "UPDATE"
                        ],
                        "resources": [
                          "persistentvolumeclaims"
                        ],
                        "scope": "*"
                      },
                      {
                        "apiGroups": [
                          "storage.k8s.io"
                        ],
                        "apiVersions": [
                          "*"
                        ],
                        "operations": [
                          "CREATE",
                          "UPDATE"
                        ],
                        "resources": [
                          "storageclasses"
                        ],
                        "scope": "*"
                      },
                      {
                        "apiGroups": [
                          "apiextensions.k8s.io"
                        ],
                        "apiVersions": [
                          "*"
                        ],
                        "operations": [
                          "CREATE",
                          "UPDATE"
                        ],
                        "resources": [
                          "customresourcedefinitions"
                        ],
                        "scope": "*"
                      }
                    ],
                    "sideEffects": "None",
                    "timeoutSeconds": 5
                  }
                ]
              }
            ]"#]]
        .assert_eq(&text);
    }
}
