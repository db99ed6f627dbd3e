//! Where the installation's keys live: a [`Vault`] of named certificate-and-key pairs. The
//! callers choose where: `adamant serve` keeps them in its store under a key no API resource
//! maps to (so no API request can read them, and replicas on one store share them); cluster
//! mode keeps the device API's as Secrets, under the cluster's RBAC.

use crate::Issued;

/// The names of the installation's keys.
pub mod names {
    /// The root certificate authority: devices trust it (`/config/root-certificate.pem`); it
    /// issues the API's and the device API's serving certificates and the device API's
    /// signing and ECDH certificates.
    pub const ROOT: &str = "adamant-root-ca";
    /// The authority of client certificates (users of the Kubernetes API); nothing else.
    pub const CLIENT_CA: &str = "adamant-client-ca";
    /// The key that signs ServiceAccount tokens (the certificate field holds its public key).
    pub const SERVICE_ACCOUNT: &str = "adamant-service-account-key";
    /// The device API's signing certificate.
    pub const DEVICE_SIGNING: &str = "adamant-device-signing";
    /// The device API's ECDH certificate.
    pub const DEVICE_ECDH: &str = "adamant-device-ecdh";
}

/// What can go wrong keeping keys.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The vault's store failed.
    #[error("the key {name} could not be read or stored: {source}")]
    Store {
        /// The key's name.
        name: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// What is stored is not a certificate and key.
    #[error(
        "the stored key {name} is damaged ({why}); `adamant keys rotate` makes a new one (see docs/access.md)"
    )]
    Damaged {
        /// The key's name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A new certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] crate::Error),
}

/// A store of named certificate-and-key pairs that replicas share.
#[async_trait::async_trait]
pub trait Vault: Send + Sync {
    /// The pair stored as `name`, if any.
    async fn get(&self, name: &str) -> Result<Option<Issued>, VaultError>;

    /// Stores `pair` as `name` if nothing is stored as `name` yet; `false` if something was
    /// (another replica was first).
    async fn put_new(&self, name: &str, pair: &Issued) -> Result<bool, VaultError>;
}

/// The pair stored as `name`, made by `make` and stored first if there is none. Replicas
/// starting together agree on one: the vault's create-if-absent decides.
pub async fn load_or_make(
    vault: &dyn Vault,
    name: &str,
    make: impl Fn() -> Result<Issued, crate::Error>,
) -> Result<Issued, VaultError> {
    loop {
        if let Some(pair) = vault.get(name).await? {
            return Ok(pair);
        }
        let pair = make()?;
        if vault.put_new(name, &pair).await? {
            return Ok(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Memory(Mutex<HashMap<String, Issued>>);

    #[async_trait::async_trait]
    impl Vault for Memory {
        async fn get(&self, name: &str) -> Result<Option<Issued>, VaultError> {
            Ok(self.0.lock().unwrap().get(name).cloned())
        }

        async fn put_new(&self, name: &str, pair: &Issued) -> Result<bool, VaultError> {
            let mut map = self.0.lock().unwrap();
            if map.contains_key(name) {
                return Ok(false);
            }
            map.insert(name.into(), pair.clone());
            Ok(true)
        }
    }

    #[tokio::test]
    async fn the_first_pair_stored_is_the_one_kept() {
        let vault = Memory::default();
        let make = |tag: &'static str| {
            move || {
                Ok(Issued {
                    certificate_pem: tag.into(),
                    key_pem: tag.into(),
                })
            }
        };
        let first = load_or_make(&vault, "k", make("first")).await.unwrap();
        let second = load_or_make(&vault, "k", make("second")).await.unwrap();
        assert_eq!(first.certificate_pem, "first");
        assert_eq!(second.certificate_pem, "first", "the stored one wins");
    }
}
