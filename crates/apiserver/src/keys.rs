//! The installation's keys (`pki::names`), kept in the store under `/adamant/keys/NAME`: a key
//! no API resource maps to (every resource lives under `/registry/`), so no request, whoever
//! makes it, can read them, while replicas on one store share them. Earlier versions kept them
//! as Secrets in `kube-system`; such a Secret is moved here, and deleted, the first time its key
//! is asked for.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use pki::{Issued, Vault, VaultError, secret};
use registry::{ApiError, Registry};
use serde::{Deserialize, Serialize};
use storage::{StorageError, Store};

use crate::native;

const PREFIX: &str = "/adamant/keys/";

#[derive(Serialize, Deserialize)]
struct Stored {
    certificate: String,
    key: String,
}

/// The vault over a store.
#[derive(Clone)]
pub struct StoreVault {
    store: Arc<dyn Store>,
    registry: Registry,
}

fn key_of(name: &str) -> Bytes {
    Bytes::from(format!("{PREFIX}{name}"))
}

fn failed(name: &str, e: impl std::error::Error + Send + Sync + 'static) -> VaultError {
    VaultError::Store {
        name: name.into(),
        source: Box::new(e),
    }
}

impl StoreVault {
    /// A vault over `store`, which `registry` serves.
    pub fn new(store: Arc<dyn Store>, registry: &Registry) -> StoreVault {
        StoreVault {
            store,
            registry: registry.clone(),
        }
    }

    /// Forgets the key `name`: the next start makes a new one. What it signed stops being
    /// trusted once every replica has restarted.
    pub async fn forget(store: &dyn Store, name: &str) -> Result<bool, VaultError> {
        match store.delete(key_of(name), None).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(failed(name, e)),
        }
    }

    /// The pair an earlier version kept as the Secret `kube-system/NAME`, moved into the vault.
    async fn adopt_secret(&self, name: &str) -> Result<Option<Issued>, VaultError> {
        let secrets = native::secret_resource();
        let found = match self.registry.get(&secrets, secret::NAMESPACE, name).await {
            Ok(found) => found,
            Err(ApiError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(failed(name, e)),
        };
        let pair = secret::pair(name, |key| {
            let text = found["data"][key].as_str().unwrap_or("");
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        })?;
        self.put_new(name, &pair).await?;
        match self
            .registry
            .delete(
                &secrets,
                secret::NAMESPACE,
                name,
                None,
                &registry::WriteOptions::default(),
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(failed(name, e)),
        }
        tracing::info!(
            key = name,
            "moved the key from Secret kube-system/{name} out of the API's reach"
        );
        // Another replica may have stored one first: the vault's is the truth.
        self.get_stored(name).await
    }

    async fn get_stored(&self, name: &str) -> Result<Option<Issued>, VaultError> {
        let response = self
            .store
            .get(&key_of(name), None)
            .await
            .map_err(|e| failed(name, e))?;
        let Some(kv) = response.kv else {
            return Ok(None);
        };
        let stored: Stored =
            serde_json::from_slice(&kv.value).map_err(|e| VaultError::Damaged {
                name: name.into(),
                why: e.to_string(),
            })?;
        Ok(Some(Issued {
            certificate_pem: stored.certificate,
            key_pem: stored.key,
        }))
    }
}

#[async_trait::async_trait]
impl Vault for StoreVault {
    async fn get(&self, name: &str) -> Result<Option<Issued>, VaultError> {
        match self.get_stored(name).await? {
            Some(pair) => Ok(Some(pair)),
            None => self.adopt_secret(name).await,
        }
    }

    async fn put_new(&self, name: &str, pair: &Issued) -> Result<bool, VaultError> {
        let value = serde_json::to_vec(&Stored {
            certificate: pair.certificate_pem.clone(),
            key: pair.key_pem.clone(),
        })
        .map_err(|e| failed(name, e))?;
        match self
            .store
            .create(key_of(name), value.into(), Default::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(StorageError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(failed(name, e)),
        }
    }
}
