//! The OIDC flags, as kube-apiserver's `--oidc-*`, and their checks: what is given
//! ([`Options`]) becomes what the authenticator runs on ([`Config`]), or a [`ConfigError`]
//! naming the flag at fault.

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::claims::ClaimMapping;

/// The signing algorithms `--oidc-signing-algs` may name.
pub const SUPPORTED_ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"];

/// The `--oidc-*` flags as given (unset ones `None` or empty).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--oidc-issuer-url`: the issuer, `https://` only; tokens' `iss` must equal it.
    pub issuer_url: Option<String>,
    /// `--oidc-client-id`: the audience tokens must be issued for.
    pub client_id: Option<String>,
    /// `--oidc-username-claim` (`sub` when unset).
    pub username_claim: Option<String>,
    /// `--oidc-username-prefix`: unset means `ISSUER#` unless the claim is `email`; `-` means
    /// none.
    pub username_prefix: Option<String>,
    /// `--oidc-groups-claim`: where groups are read (none when unset).
    pub groups_claim: Option<String>,
    /// `--oidc-groups-prefix`: what goes before each group.
    pub groups_prefix: Option<String>,
    /// `--oidc-ca-file`: PEM roots for the issuer's TLS (the system's roots when unset).
    pub ca_file: Option<PathBuf>,
    /// `--oidc-required-claim key=value`, repeatable.
    pub required_claims: Vec<String>,
    /// `--oidc-signing-algs` (`RS256` when empty).
    pub signing_algs: Vec<String>,
}

/// Checked OIDC settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The issuer URL, exactly as given.
    pub issuer: String,
    /// The client id tokens' `aud` must contain.
    pub client_id: String,
    /// How claims become a user.
    pub mapping: ClaimMapping,
    /// PEM roots for the issuer; empty for the system's roots.
    pub ca_pem: Vec<u8>,
    /// The signing algorithms accepted.
    pub algorithms: Vec<Algorithm>,
}

/// Why the `--oidc-*` flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An OIDC flag without `--oidc-issuer-url`.
    #[error("{flag} is set but --oidc-issuer-url is not: give the issuer's https:// URL too")]
    WithoutIssuer {
        /// The flag given.
        flag: &'static str,
    },
    /// `--oidc-issuer-url` without `--oidc-client-id`.
    #[error(
        "--oidc-issuer-url is set but --oidc-client-id is not: give the client id the issuer writes into the tokens' aud"
    )]
    WithoutClientId,
    /// The issuer URL is not usable.
    #[error("--oidc-issuer-url {url:?} {why}")]
    Issuer {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A flag that must not be empty is.
    #[error("{flag} must not be empty")]
    Empty {
        /// The flag.
        flag: &'static str,
    },
    /// `--oidc-signing-algs` names an algorithm not supported.
    #[error("--oidc-signing-algs: {alg:?} is not supported; choose among {}", SUPPORTED_ALGORITHMS.join(", "))]
    Algorithm {
        /// The algorithm named.
        alg: String,
    },
    /// `--oidc-required-claim` is not `key=value`.
    #[error("--oidc-required-claim {value:?} is not key=value (a claim name, then its value)")]
    RequiredClaim {
        /// The value given.
        value: String,
    },
    /// `--oidc-ca-file` cannot be read or holds no certificate.
    #[error("--oidc-ca-file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

fn check_issuer(url: &str) -> Result<(), ConfigError> {
    let refuse = |why| {
        Err(ConfigError::Issuer {
            url: url.to_string(),
            why,
        })
    };
    let Some(rest) = url.strip_prefix("https://") else {
        return refuse("is not an https:// URL: the issuer's keys are fetched over HTTPS only");
    };
    if url.contains(['?', '#']) {
        return refuse("has a query or fragment: an issuer URL has neither");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return refuse("has no host (or has user information): write https://HOST[:PORT][/PATH]");
    }
    if url.parse::<http::Uri>().is_err() {
        return refuse("is not a valid URL");
    }
    Ok(())
}

fn algorithm(name: &str) -> Result<Algorithm, ConfigError> {
    let refuse = || ConfigError::Algorithm {
        alg: name.to_string(),
    };
    if !SUPPORTED_ALGORITHMS.contains(&name) {
        return Err(refuse());
    }
    name.parse().map_err(|_| refuse())
}

impl Options {
    /// The checked settings: `Ok(None)` when no OIDC flag is given.
    pub fn config(&self) -> Result<Option<Config>, ConfigError> {
        let Some(issuer) = &self.issuer_url else {
            let given = [
                ("--oidc-client-id", self.client_id.is_some()),
                ("--oidc-username-claim", self.username_claim.is_some()),
                ("--oidc-username-prefix", self.username_prefix.is_some()),
                ("--oidc-groups-claim", self.groups_claim.is_some()),
                ("--oidc-groups-prefix", self.groups_prefix.is_some()),
                ("--oidc-ca-file", self.ca_file.is_some()),
                ("--oidc-required-claim", !self.required_claims.is_empty()),
                ("--oidc-signing-algs", !self.signing_algs.is_empty()),
            ];
            return match given.into_iter().find(|(_, set)| *set) {
                Some((flag, _)) => Err(ConfigError::WithoutIssuer { flag }),
                None => Ok(None),
            };
        };
        check_issuer(issuer)?;
        let client_id = self.client_id.clone().ok_or(ConfigError::WithoutClientId)?;
        if client_id.is_empty() {
            return Err(ConfigError::Empty {
                flag: "--oidc-client-id",
            });
        }
        let username_claim = self.username_claim.clone().unwrap_or_else(|| "sub".into());
        if username_claim.is_empty() {
            return Err(ConfigError::Empty {
                flag: "--oidc-username-claim",
            });
        }
        let username_prefix = match self.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(prefix) => prefix.to_string(),
            None if username_claim == "email" => String::new(),
            None => format!("{issuer}#"),
        };
        let groups_claim = match self.groups_claim.as_deref() {
            Some("") => {
                return Err(ConfigError::Empty {
                    flag: "--oidc-groups-claim",
                });
            }
            other => other.map(str::to_string),
        };
        let required_claims = self
            .required_claims
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
                _ => Err(ConfigError::RequiredClaim {
                    value: pair.clone(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let algorithms = if self.signing_algs.is_empty() {
            vec![Algorithm::RS256]
        } else {
            self.signing_algs
                .iter()
                .map(|name| algorithm(name.trim()))
                .collect::<Result<Vec<_>, _>>()?
        };
        let ca_pem = match &self.ca_file {
            None => Vec::new(),
            Some(path) => {
                let refuse = |why: String| ConfigError::CaFile {
                    path: path.display().to_string(),
                    why,
                };
                let pem =
                    std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
                let certificates = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| refuse(format!("not PEM certificates: {e}")))?;
                if certificates.is_empty() {
                    return Err(refuse(
                        "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                    ));
                }
                pem
            }
        };
        Ok(Some(Config {
            issuer: issuer.clone(),
            client_id,
            mapping: ClaimMapping {
                username_claim,
                username_prefix,
                groups_claim,
                groups_prefix: self.groups_prefix.clone().unwrap_or_default(),
                required_claims,
            },
            ca_pem,
            algorithms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            issuer_url: Some("https://issuer.example".into()),
            client_id: Some("adamant".into()),
            ..Options::default()
        }
    }

    #[test]
    fn oidc_flags_resolve_as_kube_apiserver_resolves_them() {
        assert!(Options::default().config().unwrap().is_none());
        let config = options().config().unwrap().unwrap();
        assert_eq!(config.mapping.username_claim, "sub");
        assert_eq!(config.mapping.username_prefix, "https://issuer.example#");
        assert_eq!(config.mapping.groups_claim, None);
        assert_eq!(config.algorithms, [Algorithm::RS256]);
        assert!(config.ca_pem.is_empty());
        let email = Options {
            username_claim: Some("email".into()),
            ..options()
        };
        assert_eq!(email.config().unwrap().unwrap().mapping.username_prefix, "");
        let dash = Options {
            username_prefix: Some("-".into()),
            ..options()
        };
        assert_eq!(dash.config().unwrap().unwrap().mapping.username_prefix, "");
        let given = Options {
            username_prefix: Some("oidc:".into()),
            groups_claim: Some("groups".into()),
            groups_prefix: Some("oidc:".into()),
            required_claims: vec!["tenant=a=b".into()],
            signing_algs: vec!["ES256".into(), "PS256".into()],
            ..options()
        };
        let config = given.config().unwrap().unwrap();
        assert_eq!(config.mapping.username_prefix, "oidc:");
        assert_eq!(config.mapping.groups_claim.as_deref(), Some("groups"));
        assert_eq!(config.mapping.groups_prefix, "oidc:");
        assert_eq!(
            config.mapping.required_claims,
            [("tenant".to_string(), "a=b".to_string())]
        );
        assert_eq!(config.algorithms, [Algorithm::ES256, Algorithm::PS256]);
    }

    #[test]
    fn oidc_flags_that_cannot_work_are_refused_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        for (options, words) in [
            (
                Options {
                    client_id: Some("x".into()),
                    ..Options::default()
                },
                "--oidc-client-id is set but --oidc-issuer-url is not",
            ),
            (
                Options {
                    groups_claim: Some("groups".into()),
                    ..Options::default()
                },
                "--oidc-groups-claim is set but --oidc-issuer-url is not",
            ),
            (
                Options {
                    issuer_url: Some("http://issuer.example".into()),
                    ..options()
                },
                "--oidc-issuer-url \"http://issuer.example\" is not an https:// URL",
            ),
            (
                Options {
                    issuer_url: Some("https://issuer.example/?a=b".into()),
                    ..options()
                },
                "has a query or fragment",
            ),
            (
                Options {
                    issuer_url: Some("https:///path".into()),
                    ..options()
                },
                "has no host",
            ),
            (
                Options {
                    client_id: None,
                    ..options()
                },
                "--oidc-client-id is not",
            ),
            (
                Options {
                    signing_algs: vec!["HS256".into()],
                    ..options()
                },
                "--oidc-signing-algs: \"HS256\" is not supported",
            ),
            (
                Options {
                    signing_algs: vec!["none".into()],
                    ..options()
                },
                "\"none\" is not supported",
            ),
            (
                Options {
                    required_claims: vec!["tenant".into()],
                    ..options()
                },
                "--oidc-required-claim \"tenant\" is not key=value",
            ),
            (
                Options {
                    ca_file: Some(dir.path().join("missing.pem")),
                    ..options()
                },
                "missing.pem: cannot read it",
            ),
            (
                Options {
                    ca_file: Some(empty),
                    ..options()
                },
                "holds no PEM certificate",
            ),
        ] {
            let error = options.config().unwrap_err().to_string();
            assert!(error.contains(words), "{options:?}: {error}");
        }
    }
}
