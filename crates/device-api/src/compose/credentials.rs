//! Credentials from Secrets, sealed for the device ([`crate::cipher`]): a data store's key and
//! password, a Wi-Fi network's identity and password. A device that has not uploaded its ECDH
//! certificate yet cannot decrypt; it gets them in the clear fields, as EVE reads them when a
//! message has no cipher block.

use std::collections::BTreeMap;

use eve_api::common::{CipherBlock, EncryptionBlock};
use eve_model::EcdhCertificate;

use super::Builder;
use crate::cipher::DeviceKey;

/// A Secret's data as text, by key.
pub(super) type Fields = BTreeMap<String, String>;

impl Builder<'_> {
    /// The device's ECDH key (from its status), once it uploaded it; read once per composition.
    pub(super) fn device_key(&mut self) -> Option<DeviceKey> {
        if let Some(known) = &self.device_key {
            return known.clone();
        }
        let status: Option<&EcdhCertificate> = self
            .device
            .status
            .as_ref()
            .and_then(|s| s.ecdh_certificate.as_ref());
        let key = match status.map(DeviceKey::from_status) {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(e)) => {
                self.problems.push(format!(
                    "status.ecdhCertificate: {e}; credentials go in the clear until the device uploads its ECDH certificate again"
                ));
                None
            }
        };
        self.device_key = Some(key.clone());
        key
    }

    /// `block` sealed for the device; `None` when it cannot decrypt (the caller fills in the
    /// clear fields).
    pub(super) fn seal(&mut self, block: &EncryptionBlock) -> Option<CipherBlock> {
        let key = self.device_key()?;
        self.sealed = true;
        Some(self.sealer.seal(&key, block))
    }

    /// The data of the Secret `namespace/name` as text, for `user` (what names it, e.g.
    /// `StorageClass eve-quay`); `None`, with a problem, when it is missing.
    pub(super) fn secret(&mut self, user: &str, namespace: &str, name: &str) -> Option<Fields> {
        let Some(secret) = self.snapshot.secret(namespace, name) else {
            self.problems.push(format!(
                "{user}: Secret {namespace}/{name} does not exist: create it; its credentials are not sent"
            ));
            return None;
        };
        Some(
            secret
                .data
                .iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
                .collect(),
        )
    }
}
