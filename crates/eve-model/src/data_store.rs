//! What an EVE data store's StorageClass parameters name besides its location: the Secret of
//! its credentials (`credentialsSecret` with `credentialsSecretNamespace`, or the
//! specification's `credentialsRef: NAMESPACE/NAME`) and the keys read from it. Read here once
//! for admission, the composer and the Secrets reader.

use std::collections::BTreeMap;

/// The keys of a credentials Secret: `username` (or `apiKey`) and `password`.
pub const CREDENTIAL_KEYS: &[&str] = &["username", "apiKey", "password"];

/// The Secret a StorageClass's parameters name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsSecret {
    /// The parameter that names it, as a field path (`parameters.credentialsRef`).
    pub path: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Why the parameters do not name a Secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// `credentialsRef` is not `NAMESPACE/NAME`.
    #[error(
        "write NAMESPACE/NAME: a StorageClass has no namespace, so the credentials Secret's must be named"
    )]
    Malformed(String),
    /// `credentialsSecret` without `credentialsSecretNamespace`.
    #[error("a StorageClass has no namespace: name the credentials Secret's namespace too")]
    NoNamespace,
}

/// The credentials Secret `parameters` name, if any.
pub fn credentials_secret(
    parameters: &BTreeMap<String, String>,
) -> Result<Option<CredentialsSecret>, CredentialsError> {
    if let Some(reference) = parameters.get("credentialsRef") {
        return match reference.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                Ok(Some(CredentialsSecret {
                    path: "parameters.credentialsRef",
                    namespace: namespace.into(),
                    name: name.into(),
                }))
            }
            _ => Err(CredentialsError::Malformed(reference.clone())),
        };
    }
    let Some(name) = parameters.get("credentialsSecret") else {
        return Ok(None);
    };
    match parameters
        .get("credentialsSecretNamespace")
        .filter(|n| !n.is_empty())
    {
        Some(namespace) => Ok(Some(CredentialsSecret {
            path: "parameters.credentialsSecret",
            namespace: namespace.clone(),
            name: name.clone(),
        })),
        None => Err(CredentialsError::NoNamespace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_name_the_secret_and_bad_ones_say_why() {
        let of = |pairs: &[(&str, &str)]| {
            credentials_secret(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let named = |path, namespace: &str, name: &str| {
            Ok(Some(CredentialsSecret {
                path,
                namespace: namespace.into(),
                name: name.into(),
            }))
        };
        assert_eq!(of(&[]), Ok(None));
        assert_eq!(
            of(&[("credentialsRef", "stores/quay")]),
            named("parameters.credentialsRef", "stores", "quay")
        );
        assert_eq!(
            of(&[
                ("credentialsSecret", "quay"),
                ("credentialsSecretNamespace", "stores")
            ]),
            named("parameters.credentialsSecret", "stores", "quay")
        );
        assert_eq!(
            of(&[("credentialsRef", "quay")]),
            Err(CredentialsError::Malformed("quay".into()))
        );
        assert_eq!(
            of(&[("credentialsSecret", "quay")]),
            Err(CredentialsError::NoNamespace)
        );
    }
}
