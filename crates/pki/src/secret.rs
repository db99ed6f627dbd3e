//! The layout of a key kept as a Kubernetes Secret: cluster mode keeps the device API's keys so
//! (`device_api::pki::SecretVault`), and earlier versions of `adamant serve` kept all of them so
//! (`apiserver::keys` adopts those). One Secret per key, named as the key (`names`).

use crate::{Issued, VaultError};

/// The namespace of the Secrets.
pub const NAMESPACE: &str = "kube-system";
/// Their type.
pub const TYPE: &str = "kubernetes.io/tls";
/// The data key of the certificate (PEM).
pub const CERTIFICATE: &str = "tls.crt";
/// The data key of the private key (PEM).
pub const KEY: &str = "tls.key";

/// The pair the Secret `name` holds, each data key's text read by `field`; `Damaged` naming the
/// Secret and the missing key when one is absent.
pub fn pair(name: &str, field: impl Fn(&str) -> Option<String>) -> Result<Issued, VaultError> {
    let read = |key: &str| {
        field(key).ok_or_else(|| VaultError::Damaged {
            name: format!("Secret {NAMESPACE}/{name}"),
            why: format!("no {key}"),
        })
    };
    Ok(Issued {
        certificate_pem: read(CERTIFICATE)?,
        key_pem: read(KEY)?,
    })
}
