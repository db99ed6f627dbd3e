//! The OIDC [`TokenAuthenticator`]: a bearer token that is a JWT whose (unverified) `iss` is the
//! configured issuer is ours; anything else (not a JWT, another issuer's, a ServiceAccount
//! token, larger than [`MAX_TOKEN`]) is left to the other authenticators. Ours must then be
//! signed with an allowed algorithm by a key of the issuer's JWKS, be for the client id, be
//! within its `nbf`..`exp` (give or take [`LEEWAY`] seconds), carry the required claims, and name
//! a user by the claim mapping; each failure is refused with the reason.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::config::Config;
use super::keys::{Key, Keys};
use crate::auth::{TokenAuthenticator, User};

/// The longest bearer token looked at.
pub const MAX_TOKEN: usize = 16 * 1024;

/// How many seconds of clock skew `exp` and `nbf` tolerate.
pub const LEEWAY: u64 = 30;

/// Why an OIDC authenticator could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTPS client for the issuer could not be built from `--oidc-ca-file`.
    #[error("cannot make the HTTPS client for the OIDC issuer (check --oidc-ca-file): {0}")]
    Client(String),
}

/// Authenticates ID tokens of one OIDC issuer.
pub struct OidcAuthenticator {
    config: Config,
    keys: Arc<Keys>,
}

/// A JSON object from a base64url JWT segment.
fn segment(text: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// The header and claims of a JWT, unverified; `None` for what is not a compact JWS.
fn unverified(token: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut parts = token.split('.');
    let (header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((segment(header)?, segment(payload)?))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl OidcAuthenticator {
    /// An authenticator for `config`, whose issuer's keys are fetched in the background from
    /// now on (on the current Tokio runtime): it serves at once, refusing the issuer's tokens
    /// until the keys are fetched.
    pub fn start(config: Config) -> Result<Arc<OidcAuthenticator>, StartError> {
        let keys = Arc::new(Keys::new(&config.issuer, &config.ca_pem).map_err(StartError::Client)?);
        tracing::info!(issuer = %config.issuer, client_id = %config.client_id, "ID tokens of this OIDC issuer authenticate");
        keys.spawn_refresher();
        Ok(Arc::new(OidcAuthenticator { config, keys }))
    }

    /// An authenticator over keys that are never fetched.
    #[cfg(test)]
    pub(crate) fn with_keys(config: Config, keys: Keys) -> OidcAuthenticator {
        OidcAuthenticator {
            config,
            keys: Arc::new(keys),
        }
    }

    /// The algorithm of a header, if it is one allowed.
    fn algorithm(&self, header: &Map<String, Value>) -> Result<Algorithm, String> {
        let name = match header.get("alg") {
            Some(Value::String(name)) => name.as_str(),
            _ => return Err("its header has no alg".into()),
        };
        let allowed = || {
            self.config
                .algorithms
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        if name.eq_ignore_ascii_case("none") {
            return Err("it is not signed (alg none)".into());
        }
        match name.parse::<Algorithm>() {
            Ok(alg) if self.config.algorithms.contains(&alg) => Ok(alg),
            _ => Err(format!(
                "it is signed with {name:?}, not one of --oidc-signing-algs {}",
                allowed()
            )),
        }
    }

    /// The keys that may have signed a token with `kid` and `alg`, fetching the issuer's keys
    /// again (at most every few seconds) when none is cached.
    async fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<Key>, String> {
        let find = || -> Vec<Key> {
            let set = self.keys.current();
            match kid {
                Some(kid) => set.by_kid.get(kid).cloned().into_iter().collect(),
                None => set.all.iter().filter(|k| k.fits(alg)).cloned().collect(),
            }
        };
        let mut keys = find();
        if keys.is_empty() {
            self.keys.refresh_soon().await;
            keys = find();
        }
        if keys.is_empty() {
            let why = match kid {
                Some(kid) => format!("no key of the issuer has the kid {kid:?}"),
                None => format!("it names no kid, and no key of the issuer verifies {alg:?}"),
            };
            return Err(match self.keys.last_error() {
                Some(error) => format!("{why} (the issuer's keys cannot be fetched: {error})"),
                None => why,
            });
        }
        if let (Some(kid), Some(key)) = (kid, keys.first())
            && !key.fits(alg)
        {
            return Err(format!(
                "the issuer's key {kid:?} cannot verify {alg:?} (the token's alg)"
            ));
        }
        Ok(keys)
    }

    /// Whether the verified claims fit: issuer, audience, times.
    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), String> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err("its iss is not the issuer".into());
        }
        let client_id = self.config.client_id.as_str();
        let audience_fits = match claims.get("aud") {
            Some(Value::String(aud)) => aud == client_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
            _ => false,
        };
        if !audience_fits {
            return Err(format!(
                "its audience {} does not include the client id {client_id:?} (--oidc-client-id)",
                claims.get("aud").map_or("(none)".into(), Value::to_string)
            ));
        }
        let now = now();
        let leeway = LEEWAY as f64;
        match claims.get("exp").and_then(Value::as_f64) {
            None => return Err("it has no numeric exp claim".into()),
            Some(exp) if now > exp + leeway => {
                return Err(format!("it expired {}s ago", (now - exp) as u64));
            }
            Some(_) => {}
        }
        match claims.get("nbf") {
            None => {}
            Some(nbf) => match nbf.as_f64() {
                None => return Err(format!("its nbf is {nbf}, not a number")),
                Some(nbf) if nbf > now + leeway => {
                    return Err(format!(
                        "it is not valid for another {}s (nbf)",
                        (nbf - now) as u64
                    ));
                }
                Some(_) => {}
            },
        }
        Ok(())
    }

    /// The user of one of our tokens, or why it is refused.
    async fn verify(&self, token: &str, header: &Map<String, Value>) -> Result<User, String> {
        if header.contains_key("crit") {
            return Err("its header has crit extensions, none of which is understood here".into());
        }
        let alg = self.algorithm(header)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(other) => return Err(format!("its kid is {other}, not a string")),
        };
        let keys = self.candidates(kid, alg).await?;
        let mut validation = Validation::new(alg);
        // Only the signature here; the claims are checked below, with our own messages.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let mut failure = None;
        for key in keys.iter().filter(|k| k.fits(alg)) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
                Ok(data) => {
                    self.check_claims(&data.claims)?;
                    return self.config.mapping.user(&data.claims);
                }
                Err(error) => failure = Some(error),
            }
        }
        Err(match failure {
            Some(error) if *error.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                "its signature does not verify with the issuer's key".into()
            }
            Some(error) => format!("its signature cannot be verified: {error}"),
            None => format!("no key of the issuer verifies {alg:?}"),
        })
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for OidcAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<User>, String> {
        if token.len() > MAX_TOKEN {
            return Ok(None);
        }
        let Some((header, claims)) = unverified(token) else {
            return Ok(None);
        };
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Ok(None);
        }
        self.verify(token, &header).await.map(Some).map_err(|why| {
            format!(
                "an ID token of the OIDC issuer {} is refused: {why}",
                self.config.issuer
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::super::claims::ClaimMapping;
    use super::super::keys::{Family, KeySet};
    use super::*;

    const ISSUER: &str = "https://issuer.example";

    struct Signer {
        encoding: EncodingKey,
        key: Key,
    }

    fn signer() -> Signer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        let (x, y) = raw[1..].split_at(32);
        Signer {
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            key: Key {
                decoding: jsonwebtoken::DecodingKey::from_ec_components(
                    &URL_SAFE_NO_PAD.encode(x),
                    &URL_SAFE_NO_PAD.encode(y),
                )
                .unwrap(),
                family: Family::Ec,
                alg: None,
            },
        }
    }

    fn sign(signer: &Signer, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &signer.encoding).unwrap()
    }

    fn claims() -> Value {
        let now = now() as u64;
        json!({"iss": ISSUER, "aud": "adamant", "sub": "alice", "groups": ["ops"], "iat": now, "exp": now + 600})
    }

    fn with(mut claims: Value, more: Value) -> Value {
        for (key, value) in more.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    }

    fn authenticator(signer: &Signer) -> OidcAuthenticator {
        let mut set = KeySet::default();
        set.by_kid.insert("k1".into(), signer.key.clone());
        set.all.push(signer.key.clone());
        OidcAuthenticator::with_keys(
            Config {
                issuer: ISSUER.into(),
                client_id: "adamant".into(),
                mapping: ClaimMapping {
                    username_claim: "sub".into(),
                    username_prefix: format!("{ISSUER}#"),
                    groups_claim: Some("groups".into()),
                    groups_prefix: "oidc:".into(),
                    required_claims: Vec::new(),
                },
                ca_pem: Vec::new(),
                algorithms: vec![Algorithm::ES256],
            },
            Keys::fixed(ISSUER, set),
        )
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[tokio::test]
    async fn oidc_tokens_of_the_issuer_authenticate() {
        let signer = signer();
        let oidc = authenticator(&signer);
        for kid in [Some("k1"), None] {
            let user = oidc
                .authenticate(&sign(&signer, kid, &claims()))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(user.name, "https://issuer.example#alice");
            assert_eq!(user.groups, ["oidc:ops", "system:authenticated"]);
        }
        // An audience array that includes the client id; an nbf just past.
        let now = now() as u64;
        let token = sign(
            &signer,
            Some("k1"),
            &with(
                claims(),
                json!({"aud": ["other", "adamant"], "nbf": now - 1}),
            ),
        );
        assert!(oidc.authenticate(&token).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn oidc_leaves_tokens_that_are_not_its_own_to_others() {
        let signer = signer();
        let oidc = authenticator(&signer);
        let other_issuer = sign(
            &signer,
            Some("k1"),
            &with(claims(), json!({"iss": "https://elsewhere"})),
        );
        let oversized = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "ES256"})),
            b64(&with(claims(), json!({"pad": "x".repeat(MAX_TOKEN)}))),
            "sig"
        );
        for token in [
            "s3cr3t",
            "a.b",
            "a.b.c",
            "!!.??.**",
            &format!("{}.{}", b64(&json!({"alg": "none"})), b64(&claims())),
            &format!("{}.{}.x.y", b64(&json!({"alg": "ES256"})), b64(&claims())),
            &other_issuer,
            &oversized,
        ] {
            assert_eq!(oidc.authenticate(token).await, Ok(None), "{token:.60}");
        }
    }

    #[tokio::test]
    async fn oidc_refuses_its_tokens_that_do_not_hold() {
        let signer = signer();
        let stranger = signer_other();
        let oidc = authenticator(&signer);
        let now = now() as u64;
        let good = sign(&signer, Some("k1"), &claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered_payload = b64(&with(claims(), json!({"sub": "admin"})));
        parts[1] = &tampered_payload;
        let tampered = parts.join(".");
        let unsigned = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims()));
        let hmac = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        let crit = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]})),
            b64(&claims()),
            good.rsplit('.').next().unwrap()
        );
        for (token, words) in [
            (
                sign(
                    &signer,
                    Some("k1"),
                    &with(claims(), json!({"exp": now - 600})),
                ),
                "expired",
            ),
            (
                sign(&signer, Some("k1"), &with(claims(), json!({"exp": null}))),
                "no numeric exp",
            ),
            (
                sign(
                    &signer,
                    Some("k1"),
                    &with(claims(), json!({"nbf": now + 600})),
                ),
                "not valid for another",
            ),
            (
                sign(
                    &signer,
                    Some("k1"),
                    &with(claims(), json!({"aud": "other"})),
                ),
                "audience \"other\" does not include the client id \"adamant\"",
            ),
            (
                sign(&signer, Some("k1"), &with(claims(), json!({"aud": null}))),
                "audience (none)",
            ),
            (
                sign(&signer, Some("k1"), &with(claims(), json!({"sub": null}))),
                "\"sub\" (--oidc-username-claim) is missing",
            ),
            (
                sign(&stranger, Some("k1"), &claims()),
                "signature does not verify",
            ),
            (
                sign(&stranger, Some("k9"), &claims()),
                "no key of the issuer has the kid \"k9\"",
            ),
            (tampered, "signature does not verify"),
            (unsigned, "not signed (alg none)"),
            (
                hmac,
                "signed with \"HS256\", not one of --oidc-signing-algs ES256",
            ),
            (crit, "crit"),
        ] {
            let error = oidc.authenticate(&token).await.unwrap_err();
            assert!(error.contains(words), "{words}: {error}");
            assert!(
                error.contains("OIDC issuer https://issuer.example"),
                "{error}"
            );
        }
    }

    fn signer_other() -> Signer {
        signer()
    }
}
