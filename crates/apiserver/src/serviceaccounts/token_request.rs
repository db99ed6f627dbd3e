//! `POST .../serviceaccounts/NAME/token`: a TokenRequest (`authentication.k8s.io/v1`) answered
//! with a token for the ServiceAccount, as kube-apiserver answers it: `spec.audiences` (the
//! API's audiences when empty), `spec.expirationSeconds` (default an hour, at least ten minutes,
//! shortened to the server's maximum), `spec.boundObjectRef` (a Secret here; the token dies with
//! it); `status.token` and `status.expirationTimestamp`.

use apimachinery::FieldError;
use registry::ApiError;
use serde_json::{Value, json};

use super::{Bindings, Claims, MIN_EXPIRATION, Reference};
use crate::ApiServer;
use crate::auth::User;
use crate::catalog::CreateSubresource;
use crate::native;

/// The `token` subresource of ServiceAccounts.
pub struct TokenRequests;

fn invalid(name: &str, causes: Vec<FieldError>) -> ApiError {
    ApiError::Invalid {
        kind: "TokenRequest.authentication.k8s.io".into(),
        name: name.into(),
        causes,
    }
}

fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl CreateSubresource for TokenRequests {
    fn kind(&self) -> (&'static str, &'static str, &'static str) {
        ("authentication.k8s.io", "v1", "TokenRequest")
    }

    async fn create(
        &self,
        server: &ApiServer,
        _user: &User,
        namespace: &str,
        name: &str,
        object: Value,
    ) -> Result<Value, ApiError> {
        let accounts = server.service_accounts();
        let options = accounts.options();
        let spec = &object["spec"];
        let mut causes = Vec::new();
        let audiences: Vec<String> = match &spec["audiences"] {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
            other => {
                causes.push(FieldError::invalid(
                    "spec.audiences",
                    other.to_string(),
                    "must be a list of strings",
                ));
                Vec::new()
            }
        };
        let audiences = if audiences.is_empty() {
            options.api_audiences.clone()
        } else {
            audiences
        };
        let requested = match &spec["expirationSeconds"] {
            Value::Null => 3600,
            value => value.as_i64().unwrap_or(-1),
        };
        if requested < MIN_EXPIRATION {
            causes.push(FieldError::invalid(
                "spec.expirationSeconds",
                requested.to_string(),
                "may not specify a duration less than 10 minutes",
            ));
        }
        if requested > i64::from(u32::MAX) {
            causes.push(FieldError::invalid(
                "spec.expirationSeconds",
                requested.to_string(),
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        let bound = &spec["boundObjectRef"];
        let bound_kind = bound["kind"].as_str().unwrap_or("");
        if !bound.is_null() && bound_kind != "Secret" {
            causes.push(FieldError::not_supported(
                "spec.boundObjectRef.kind",
                bound_kind,
                &["Secret"],
            ));
        }
        if !causes.is_empty() {
            return Err(invalid(name, causes));
        }
        let account = server
            .registry
            .get(&native::service_account_resource(), namespace, name)
            .await?;
        let secret = if bound.is_null() {
            None
        } else {
            let secret_name = bound["name"].as_str().unwrap_or("");
            let secret = server
                .registry
                .get(&native::secret_resource(), namespace, secret_name)
                .await?;
            let uid = registry::object::meta_str(&secret, "uid").to_string();
            if let Some(wanted) = bound["uid"].as_str().filter(|u| !u.is_empty())
                && wanted != uid
            {
                return Err(ApiError::Conflict {
                    resource: "secrets".into(),
                    name: secret_name.into(),
                    reason: format!(
                        "the UID in the bound object reference ({wanted}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
                    ),
                });
            }
            Some(Reference {
                name: secret_name.into(),
                uid,
            })
        };
        let lifetime = requested.min(options.max_expiration.as_secs() as i64);
        let now = jiff::Timestamp::now().as_second();
        let claims = Claims {
            iss: options.issuer.clone(),
            sub: format!("system:serviceaccount:{namespace}:{name}"),
            aud: audiences.clone(),
            exp: now + lifetime,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: Bindings {
                namespace: namespace.into(),
                serviceaccount: Reference {
                    name: name.into(),
                    uid: registry::object::meta_str(&account, "uid").into(),
                },
                secret,
            },
        };
        let token = accounts.sign(&claims)?;
        let mut spec = json!({"audiences": audiences, "expirationSeconds": lifetime});
        if !bound.is_null() {
            spec["boundObjectRef"] = bound.clone();
        }
        Ok(json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": timestamp(now),
            },
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": timestamp(now + lifetime)},
        }))
    }
}
