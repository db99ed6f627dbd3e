//! ServiceAccount tokens, as kube-apiserver makes and checks bound tokens: the TokenRequest API
//! (`serviceaccounts/token`, what `kubectl create token` calls) issues ES256 JWTs signed with the
//! installation's service-account key (kept in the vault); a request bearing one is the
//! ServiceAccount's user while the ServiceAccount (and the Secret the token is bound to, if any)
//! still exists with the uid the token names. `controller` keeps the `default` ServiceAccount and
//! the `kube-root-ca.crt` ConfigMap in every namespace.

mod controller;
mod token_request;

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use registry::{ApiError, Registry};
use serde::{Deserialize, Serialize};

use crate::auth::{TokenAuthenticator, User};
use crate::native;

pub use controller::ROOT_CA_CONFIG_MAP;
pub use token_request::TokenRequests;

/// kubeadm's issuer, what clients of in-cluster tokens expect by default.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The longest token lifetime unless `--service-account-max-token-expiration` says otherwise.
pub const DEFAULT_MAX_EXPIRATION: Duration = Duration::from_secs(48 * 3600);

/// The shortest lifetime a TokenRequest may ask for (kube-apiserver's).
const MIN_EXPIRATION: i64 = 600;

/// The longest bearer token looked at (longer ones are left to other authenticators).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How tokens are issued and accepted.
#[derive(Clone, Debug)]
pub struct Options {
    /// `iss` of the tokens issued; only tokens of this issuer are looked at.
    pub issuer: String,
    /// The audiences a token must name one of to authenticate to this server (the issuer by
    /// default, as kube-apiserver's `--api-audiences`); also the audiences of a TokenRequest
    /// that names none.
    pub api_audiences: Vec<String>,
    /// The longest lifetime a token is issued for (longer requests are shortened to it).
    pub max_expiration: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            issuer: DEFAULT_ISSUER.into(),
            api_audiences: vec![DEFAULT_ISSUER.into()],
            max_expiration: DEFAULT_MAX_EXPIRATION,
        }
    }
}

/// The `kubernetes.io` claim: what the token is bound to.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Bindings {
    namespace: String,
    serviceaccount: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<Reference>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Reference {
    name: String,
    uid: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Bindings,
}

/// Issues and checks ServiceAccount tokens.
pub struct ServiceAccounts {
    registry: Registry,
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
    options: RwLock<Options>,
}

/// Why the service-account key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "the service-account signing key ({0}); `adamant keys rotate service-account-key` makes a new one"
)]
pub struct KeyError(String);

impl ServiceAccounts {
    /// Tokens signed with `pair` (an ECDSA P-256 key, PKCS#8), checked against `registry`.
    pub fn new(registry: Registry, pair: &pki::Issued) -> Result<ServiceAccounts, KeyError> {
        let encoding = EncodingKey::from_ec_pem(pair.key_pem.as_bytes())
            .map_err(|e| KeyError(e.to_string()))?;
        let key = rcgen::KeyPair::from_pem(&pair.key_pem).map_err(|e| KeyError(e.to_string()))?;
        let point = key.public_key_raw();
        if point.len() != 65 || point[0] != 4 {
            return Err(KeyError("not an uncompressed P-256 point".into()));
        }
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let decoding = DecodingKey::from_ec_components(&b64(&point[1..33]), &b64(&point[33..]))
            .map_err(|e| KeyError(e.to_string()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, point);
        Ok(ServiceAccounts {
            registry,
            encoding,
            decoding,
            key_id: b64(&digest.as_ref()[..16]),
            options: RwLock::new(Options::default()),
        })
    }

    /// Sets how tokens are issued and accepted (before serving).
    pub fn set_options(&self, options: Options) {
        *self
            .options
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = options;
    }

    /// The audiences tokens must name one of to authenticate here (`--api-audiences`).
    pub fn api_audiences(&self) -> Vec<String> {
        self.options().api_audiences
    }

    fn options(&self) -> Options {
        self.options
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a token failed: {e}")))
    }

    /// The ServiceAccount (or bound object) a token names, if it still exists with that uid.
    async fn still_there(
        &self,
        resource: &registry::Resource,
        namespace: &str,
        reference: &Reference,
        what: &str,
    ) -> Result<(), String> {
        match self
            .registry
            .get(resource, namespace, &reference.name)
            .await
        {
            Ok(object) if registry::object::meta_str(&object, "uid") == reference.uid => Ok(()),
            Ok(_) => Err(format!(
                "the {what} {namespace}/{} was recreated since the token was issued",
                reference.name
            )),
            Err(ApiError::NotFound { .. }) => Err(format!(
                "the {what} {namespace}/{} no longer exists",
                reference.name
            )),
            Err(e) => Err(format!("the {what} cannot be read: {e}")),
        }
    }
}

/// The unverified `iss` of a JWT, if `token` is one.
fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(str::to_string)
}

#[async_trait::async_trait]
impl TokenAuthenticator for ServiceAccounts {
    async fn authenticate(&self, token: &str) -> Result<Option<User>, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        let options = self.options();
        if unverified_issuer(token).as_deref() != Some(options.issuer.as_str()) {
            return Ok(None);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&options.issuer]);
        validation.set_audience(&options.api_audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| format!("service account token: {e}"))?
            .claims;
        let bindings = &claims.kubernetes;
        let namespace = &bindings.namespace;
        let expected = format!(
            "system:serviceaccount:{namespace}:{}",
            bindings.serviceaccount.name
        );
        if claims.sub != expected {
            return Err(format!(
                "service account token: sub {:?} is not {expected:?}",
                claims.sub
            ));
        }
        self.still_there(
            &native::service_account_resource(),
            namespace,
            &bindings.serviceaccount,
            "service account",
        )
        .await?;
        if let Some(secret) = &bindings.secret {
            self.still_there(&native::secret_resource(), namespace, secret, "secret")
                .await?;
        }
        let mut extra = BTreeMap::new();
        extra.insert(
            "authentication.kubernetes.io/credential-id".to_string(),
            vec![format!("JTI={}", claims.jti)],
        );
        Ok(Some(User {
            name: expected,
            uid: bindings.serviceaccount.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            extra,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jwts_of_the_issuer_are_looked_at() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = |payload: &str| format!("{}.{}.sig", b64("{}"), b64(payload));
        assert_eq!(
            unverified_issuer(&token(r#"{"iss":"https://a"}"#)).as_deref(),
            Some("https://a")
        );
        for not_ours in [
            "plain-token".to_string(),
            token("{}"),
            token("not json"),
            format!("{}.{}", b64("{}"), b64(r#"{"iss":"x"}"#)),
            format!("{}.extra", token(r#"{"iss":"x"}"#)),
            "a.%%%.c".to_string(),
        ] {
            assert_eq!(unverified_issuer(&not_ours), None, "{not_ours}");
        }
    }
}
