//! The review APIs, answered and never stored: `authorization.k8s.io/v1`
//! SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectRulesReview (`kubectl auth can-i --list`), and
//! `authentication.k8s.io/v1` SelfSubjectReview (`kubectl auth whoami`) and TokenReview (what
//! services behind the API server ask of a caller's bearer token), with kube-apiserver's checks
//! of their specs.

use std::sync::Arc;

use apimachinery::FieldError;
use registry::object::strings;
use registry::{ApiError, DefaultStrategy};
use serde_json::{Value, json};

use super::reviews_proto;
use crate::auth::{Attributes, User};
use crate::catalog::{Computed, Kind};
use crate::native::kind;
use crate::schema::Components;
use crate::server::ApiServer;

/// The review kinds: (group, resource, kind).
pub(crate) const KINDS: &[(&str, &str, &str)] = &[
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
    ("authentication.k8s.io", "tokenreviews", "TokenReview"),
];

/// One review kind's answers.
struct Review {
    group: &'static str,
    kind: &'static str,
}

/// The review kinds for the catalog.
pub(crate) fn kinds(components: &Arc<Components>) -> Vec<Kind> {
    KINDS
        .iter()
        .map(|&(group, resource, name)| {
            let mut review = kind(
                components,
                group,
                resource,
                name,
                &[],
                name == "LocalSubjectAccessReview",
                Arc::new(DefaultStrategy),
                None,
                Vec::new(),
                |_| Vec::new(),
                &[],
            );
            review.computed = Some(Arc::new(Review { group, kind: name }));
            review
        })
        .collect()
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("")
}

impl Review {
    fn invalid(&self, object: &Value, causes: Vec<FieldError>) -> ApiError {
        ApiError::Invalid {
            kind: format!("{}.{}", self.kind, self.group),
            name: registry::object::name(object).to_string(),
            causes,
        }
    }

    /// The request an access review asks about, checked as kube-apiserver checks its spec.
    fn attributes(&self, object: &Value, namespace: &str) -> Result<Attributes, ApiError> {
        let spec = &object["spec"];
        let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
        let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
        let mut causes = Vec::new();
        match (resource, non_resource) {
            (Some(_), Some(_)) => causes.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                "",
                "cannot be specified in combination with resourceAttributes",
            )),
            (None, None) => causes.push(FieldError::invalid(
                "spec.resourceAttributes",
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )),
            _ => {}
        }
        let other = self.kind == "SubjectAccessReview" || self.kind == "LocalSubjectAccessReview";
        if other && text(spec, "user").is_empty() && strings(&spec["groups"]).is_empty() {
            causes.push(FieldError::invalid(
                "spec.user",
                "",
                "at least one of user or group must be specified",
            ));
        }
        if self.kind == "LocalSubjectAccessReview" {
            if non_resource.is_some() {
                causes.push(FieldError::invalid(
                    "spec.nonResourceAttributes",
                    "",
                    "disallowed on this kind of request",
                ));
            }
            if resource.is_some_and(|r| text(r, "namespace") != namespace) {
                return Err(ApiError::BadRequest(format!(
                    "spec.resourceAttributes.namespace must match namespace: {namespace}"
                )));
            }
        }
        if !causes.is_empty() {
            return Err(self.invalid(object, causes));
        }
        Ok(match (resource, non_resource) {
            (Some(r), _) => Attributes {
                verb: text(r, "verb").into(),
                resource_request: true,
                group: text(r, "group").into(),
                resource: text(r, "resource").into(),
                subresource: text(r, "subresource").into(),
                namespace: text(r, "namespace").into(),
                name: text(r, "name").into(),
                path: String::new(),
            },
            (_, Some(n)) => Attributes {
                verb: text(n, "verb").into(),
                path: text(n, "path").into(),
                ..Attributes::default()
            },
            (None, None) => Attributes::default(),
        })
    }
}

/// A TokenReview's status: whether the token authenticates to this server, and as whom. The
/// token is checked for the server's own audiences (`--api-audiences`): a review naming others
/// gets `authenticated: false` unless they include one of the server's.
async fn token_status(server: &ApiServer, spec: &Value) -> Result<Value, ApiError> {
    let token = text(spec, "token");
    if token.is_empty() {
        return Err(ApiError::BadRequest(
            "token is required for TokenReview in authentication".into(),
        ));
    }
    let served = server.api_audiences();
    let asked = strings(&spec["audiences"]);
    let audiences: Vec<String> = if asked.is_empty() {
        served
    } else {
        asked.into_iter().filter(|a| served.contains(a)).collect()
    };
    if audiences.is_empty() {
        return Ok(json!({
            "authenticated": false,
            "error": "the token cannot be checked for these audiences: this server checks tokens for its --api-audiences only",
        }));
    }
    Ok(match server.token_user(token).await {
        Ok(user) => json!({"authenticated": true, "user": user.info(), "audiences": audiences}),
        Err(refusals) => {
            let error = if refusals.is_empty() {
                "invalid bearer token".to_string()
            } else {
                refusals.join("; ")
            };
            json!({"authenticated": false, "user": {}, "error": error})
        }
    })
}

/// A SelfSubjectRulesReview's status: the rules as resource and non-resource rules.
fn rules_status(server: &ApiServer, user: &User, namespace: &str) -> Value {
    let (rules, errors) = server.rbac.rules_for(user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if rule.non_resource_urls.is_empty() {
            let mut entry = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources});
            if !rule.resource_names.is_empty() {
                entry["resourceNames"] = rule.resource_names.into();
            }
            resource_rules.push(entry);
        } else {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = errors.join(", ").into();
    }
    status
}

#[async_trait::async_trait]
impl Computed for Review {
    fn decode_protobuf(&self, body: &[u8]) -> Option<Result<Value, String>> {
        Some(reviews_proto::decode(body))
    }

    async fn create(
        &self,
        server: &ApiServer,
        user: &User,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let status = match self.kind {
            "SelfSubjectReview" => {
                json!({"userInfo": user.info()})
            }
            "TokenReview" => token_status(server, &object["spec"]).await?,
            "SelfSubjectRulesReview" => {
                let namespace = text(&object["spec"], "namespace");
                if namespace.is_empty() {
                    return Err(ApiError::BadRequest("no namespace on request".into()));
                }
                rules_status(server, user, namespace)
            }
            _ => {
                let request = self.attributes(&object, namespace)?;
                let subject = match self.kind {
                    "SelfSubjectAccessReview" => user.clone(),
                    _ => User {
                        name: text(&object["spec"], "user").into(),
                        uid: text(&object["spec"], "uid").into(),
                        groups: strings(&object["spec"]["groups"]),
                        extra: object["spec"]["extra"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, v)| (k.clone(), strings(v)))
                            .collect(),
                    },
                };
                let decision = server.rbac.decide(&subject, &request);
                let mut status = json!({"allowed": decision.allowed});
                if !decision.reason.is_empty() {
                    status["reason"] = decision.reason.into();
                }
                status
            }
        };
        object["status"] = status;
        Ok(object)
    }
}
