//! The issuer's signing keys: OIDC discovery (`{issuer}/.well-known/openid-configuration`,
//! whose `issuer` must equal the configured one exactly), then its `jwks_uri`'s JWKS, over the
//! webhooks' HTTPS client. Keys are cached by `kid` and replaced whole by each successful fetch,
//! so a key the issuer drops stops working at the next one. Fetches happen in the background
//! (until the first succeeds, then every [`REFRESH_EVERY`]) and when a token names a `kid` not
//! cached, at most once every [`MIN_REFRESH`]. Everything read is bounded: [`MAX_DOCUMENT`]
//! bytes a response, [`FETCH_TIMEOUT`] a fetch, [`MAX_KEYS`] keys kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::webhooks::client::{HttpClient, build, chain};

/// The largest discovery document or JWKS read.
pub(crate) const MAX_DOCUMENT: usize = 1024 * 1024;
/// How long one fetch (discovery and JWKS together) may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest time between two fetches a token asks for.
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(5);
/// How often the keys are fetched again once they have been fetched.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(10 * 60);
/// The most keys kept from a JWKS.
pub(crate) const MAX_KEYS: usize = 64;

/// A key's family, which decides the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// RSA: RS* and PS*.
    Rsa,
    /// ECDSA: ES*.
    Ec,
}

impl Family {
    /// The family that verifies `alg`, if one of ours does.
    pub(crate) fn of(alg: Algorithm) -> Option<Family> {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Some(Family::Rsa),
            Algorithm::ES256 | Algorithm::ES384 => Some(Family::Ec),
            _ => None,
        }
    }
}

/// One verification key of the issuer.
#[derive(Clone)]
pub(crate) struct Key {
    /// The key.
    pub(crate) decoding: DecodingKey,
    /// Its family.
    pub(crate) family: Family,
    /// The algorithm the JWK restricts it to, if it does.
    pub(crate) alg: Option<Algorithm>,
}

impl Key {
    /// Whether this key may verify a signature made with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        Family::of(alg) == Some(self.family) && self.alg.is_none_or(|a| a == alg)
    }
}

/// The keys of one JWKS.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    /// The keys that have a `kid`, by it.
    pub(crate) by_kid: HashMap<String, Key>,
    /// Every key (those without a `kid` too), in the JWKS's order.
    pub(crate) all: Vec<Key>,
}

/// The key of a JWK, or why it is not one we verify with.
fn key(jwk: &Value) -> Result<(Option<String>, Key), String> {
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("its use is not sig".into());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(ec)
            if matches!(ec.curve, EllipticCurve::P256 | EllipticCurve::P384) =>
        {
            Family::Ec
        }
        _ => return Err("not an RSA or EC P-256/P-384 key".into()),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(
            alg.to_string()
                .parse::<Algorithm>()
                .map_err(|_| format!("its alg {alg:?} is not a signature algorithm"))?,
        ),
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok((
        jwk.common.key_id.clone(),
        Key {
            decoding,
            family,
            alg,
        },
    ))
}

/// The usable keys of a JWKS document (keys we cannot use are skipped, and logged).
pub(crate) fn parse_jwks(document: &[u8]) -> Result<KeySet, String> {
    let document: Value =
        serde_json::from_slice(document).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let Some(keys) = document.get("keys").and_then(Value::as_array) else {
        return Err("the JWKS has no \"keys\" array".into());
    };
    let mut set = KeySet::default();
    for (index, jwk) in keys.iter().enumerate() {
        if set.all.len() == MAX_KEYS {
            tracing::warn!(
                keys = keys.len(),
                "the issuer's JWKS has more than {MAX_KEYS} usable keys; the rest are ignored"
            );
            break;
        }
        match key(jwk) {
            Ok((kid, key)) => {
                if let Some(kid) = kid {
                    if set.by_kid.contains_key(&kid) {
                        tracing::debug!(%kid, "a JWK repeats a kid; the first is kept");
                        continue;
                    }
                    set.by_kid.insert(kid, key.clone());
                }
                set.all.push(key);
            }
            Err(why) => tracing::debug!(index, %why, "a JWK of the issuer is skipped"),
        }
    }
    Ok(set)
}

/// The issuer's keys, fetched and cached.
pub(crate) struct Keys {
    issuer: String,
    /// `None` only for fixed keys (tests).
    client: Option<HttpClient>,
    set: RwLock<Arc<KeySet>>,
    /// When the last fetch started; held through a fetch so that concurrent ones coalesce.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
    /// Why the last fetch failed, while the keys have not been fetched since.
    last_error: Mutex<Option<String>>,
}

impl Keys {
    /// Keys of `issuer`, fetched with a client trusting `ca_pem` (the system's roots when
    /// empty). Nothing is fetched until [`Keys::refresh`] or [`Keys::spawn_refresher`].
    pub(crate) fn new(issuer: &str, ca_pem: &[u8]) -> Result<Keys, String> {
        Ok(Keys {
            issuer: issuer.to_string(),
            client: Some(build(ca_pem)?),
            set: RwLock::default(),
            last_attempt: tokio::sync::Mutex::new(None),
            last_error: Mutex::new(None),
        })
    }

    /// Keys that are never fetched.
    #[cfg(test)]
    pub(crate) fn fixed(issuer: &str, set: KeySet) -> Keys {
        Keys {
            issuer: issuer.to_string(),
            client: None,
            set: RwLock::new(Arc::new(set)),
            last_attempt: tokio::sync::Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// The keys as last fetched.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Why the keys could not be fetched the last time, if the last fetch failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the keys again, unless a fetch started less than [`MIN_REFRESH`] ago (when one
    /// is under way, waits for it instead). Says whether the keys were fetched by this call.
    pub(crate) async fn refresh_soon(&self) -> bool {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH) {
            return false;
        }
        *last = Some(Instant::now());
        self.fetch_and_store().await
    }

    /// Fetches the keys now, and says whether that worked.
    pub(crate) async fn refresh(&self) -> bool {
        let mut last = self.last_attempt.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        let outcome = match tokio::time::timeout(FETCH_TIMEOUT, self.fetch(client)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "fetching the issuer's keys took longer than {}s",
                FETCH_TIMEOUT.as_secs()
            )),
        };
        let mut last_error = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok(set) => {
                if set.all.is_empty() {
                    tracing::warn!(issuer = %self.issuer, "the OIDC issuer's JWKS holds no usable signing key (RSA, or EC P-256/P-384); its tokens are refused");
                } else {
                    tracing::info!(issuer = %self.issuer, keys = set.all.len(), "fetched the OIDC issuer's keys");
                }
                *self
                    .set
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
                *last_error = None;
                true
            }
            Err(why) => {
                tracing::warn!(issuer = %self.issuer, %why, "cannot fetch the OIDC issuer's keys; its tokens whose key is not cached are refused until it is reachable");
                *last_error = Some(why);
                false
            }
        }
    }

    async fn fetch(&self, client: &HttpClient) -> Result<KeySet, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let discovery: Value = serde_json::from_slice(&get(client, &url).await?)
            .map_err(|e| format!("the discovery document at {url} is not JSON: {e}"))?;
        let issuer = discovery.get("issuer").and_then(Value::as_str);
        if issuer != Some(self.issuer.as_str()) {
            return Err(format!(
                "the discovery document at {url} names the issuer {}, not {:?}: --oidc-issuer-url must equal the issuer's own URL exactly",
                issuer.map_or_else(|| "nothing".to_string(), |i| format!("{i:?}")),
                self.issuer
            ));
        }
        let Some(jwks_uri) = discovery.get("jwks_uri").and_then(Value::as_str) else {
            return Err(format!("the discovery document at {url} has no jwks_uri"));
        };
        if !jwks_uri.starts_with("https://") {
            return Err(format!(
                "the discovery document at {url} gives the jwks_uri {jwks_uri:?}, which is not https://"
            ));
        }
        parse_jwks(&get(client, jwks_uri).await?).map_err(|why| format!("{jwks_uri}: {why}"))
    }

    /// Fetches now and then: until the first fetch works (retrying after 1 s, 2 s, 4 s, ... up
    /// to a minute), then every [`REFRESH_EVERY`]. Runs on the current Tokio runtime until the
    /// keys are dropped.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) {
        let keys: Weak<Keys> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(strong) = keys.upgrade() else {
                    return;
                };
                let wait = if strong.refresh().await {
                    backoff = Duration::from_secs(1);
                    REFRESH_EVERY
                } else {
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    wait
                };
                drop(strong);
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// GETs `url`: a 200 whose body is at most [`MAX_DOCUMENT`] bytes.
async fn get(client: &HttpClient, url: &str) -> Result<Bytes, String> {
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::default())
        .map_err(|e| format!("GET {url}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("GET {url}: {}", chain(&e)))?;
    let status = response.status();
    if status != http::StatusCode::OK {
        return Err(format!("GET {url}: the issuer answered {status}"));
    }
    Limited::new(response.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map(|body| body.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("GET {url}: the response is larger than {MAX_DOCUMENT} bytes")
            } else {
                format!("GET {url}: {e}")
            }
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn oidc_jwks_keeps_the_signing_keys_it_can_use() {
        // An EC P-256 public key (the generator point is as good as any for parsing).
        let x = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
        let y = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
        let document = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "one", "use": "sig", "alg": "ES256"},
            {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "enc", "use": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "x": x, "y": y},
            {"kty": "what", "kid": "unknown"},
        ]});
        let set = parse_jwks(document.to_string().as_bytes()).unwrap();
        assert_eq!(set.all.len(), 2);
        assert_eq!(set.by_kid.keys().collect::<Vec<_>>(), ["one"]);
        let one = &set.by_kid["one"];
        assert!(one.fits(Algorithm::ES256));
        assert!(!one.fits(Algorithm::ES384), "the JWK says ES256");
        assert!(!one.fits(Algorithm::RS256));
        assert!(set.all[1].fits(Algorithm::ES384));
        let many: Vec<Value> = (0..MAX_KEYS + 5)
            .map(|i| json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": i.to_string()}))
            .collect();
        let set = parse_jwks(json!({ "keys": many }).to_string().as_bytes()).unwrap();
        assert_eq!(set.all.len(), MAX_KEYS);
        for (document, words) in [("[]", "no \"keys\" array"), ("{", "not JSON")] {
            let error = parse_jwks(document.as_bytes()).err().unwrap();
            assert!(error.contains(words), "{document}: {error}");
        }
    }
}
