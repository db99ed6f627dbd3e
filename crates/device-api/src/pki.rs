//! The controller's certificates for devices: the root (shared with the Kubernetes API in
//! `adamant serve`), a signing certificate and an ECDH certificate under it, kept in a
//! [`Vault`] so that replicas share them (`adamant serve`: its store, out of the API's reach;
//! cluster mode: [`SecretVault`], Secrets in `kube-system`); and the device API's serving
//! certificate.

use std::sync::Arc;

use base64::Engine;
use eve_api::Message;
use eve_api::certs::{ZCert, ZCertAttr, ZCertType, ZControllerCert};
use eve_api::common::HashAlgorithm;
use eve_api::envelope::{Signer, sha256};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
pub use pki::Issued as Pair;
use pki::{Vault, VaultError, load_or_make, names, secret};

/// Where cluster mode keeps the certificates.
pub use pki::secret::NAMESPACE;

/// What can go wrong with the device PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The ECDH key does not serve for encryption.
    #[error("the device API's ECDH key: {0}")]
    Cipher(#[from] crate::cipher::CipherError),
    /// The vault refused or failed.
    #[error("the device certificates: {0}")]
    Vault(#[from] VaultError),
    /// A certificate could not be made or read.
    #[error(transparent)]
    Certificate(#[from] pki::Error),
    /// The device API's TLS configuration cannot be made.
    #[error("the device API's TLS: {0}")]
    Tls(#[from] https::TlsError),
    /// The signing key does not load.
    #[error("the signing key: {0}")]
    Envelope(#[from] eve_api::envelope::EnvelopeError),
}

/// The controller's certificates, ready to serve.
pub struct ControllerCerts {
    /// The root certificate (what devices hold as `/config/root-certificate.pem`).
    pub root_pem: String,
    /// The signing certificate and key.
    pub signing: Pair,
    /// The ECDH certificate and key.
    pub ecdh: Pair,
    /// Encrypts for devices with the ECDH key.
    pub sealer: crate::cipher::Sealer,
    /// Signs responses.
    pub signer: Arc<Signer>,
    /// The body of `GET /certs`: a signed `ZControllerCert`.
    pub certs_body: bytes::Bytes,
    /// Changes whenever the certificates do (`EdgeDevConfig.controllercert_confighash`).
    pub confighash: String,
    root: Pair,
}

/// A vault of Secrets (`pki::secret`'s layout: `kubernetes.io/tls`, `tls.crt` and `tls.key`,
/// in `kube-system`), for cluster mode: who may read them is the cluster's RBAC's to say.
pub struct SecretVault {
    api: Api<Secret>,
}

impl SecretVault {
    /// A vault in `kube-system` of the cluster `client` reaches.
    pub fn new(client: kube::Client) -> SecretVault {
        SecretVault {
            api: Api::namespaced(client, NAMESPACE),
        }
    }
}

fn api_failed(name: &str, e: kube::Error) -> VaultError {
    VaultError::Store {
        name: format!("Secret {NAMESPACE}/{name}"),
        source: Box::new(e),
    }
}

#[async_trait::async_trait]
impl Vault for SecretVault {
    async fn get(&self, name: &str) -> Result<Option<Pair>, VaultError> {
        let Some(secret) = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| api_failed(name, e))?
        else {
            return Ok(None);
        };
        let data = secret.data.unwrap_or_default();
        let pair = secret::pair(name, |key| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        })?;
        Ok(Some(pair))
    }

    async fn put_new(&self, name: &str, pair: &Pair) -> Result<bool, VaultError> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            type_: Some(secret::TYPE.into()),
            data: Some(
                [
                    (
                        secret::CERTIFICATE.to_string(),
                        ByteString(pair.certificate_pem.clone().into_bytes()),
                    ),
                    (
                        secret::KEY.to_string(),
                        ByteString(pair.key_pem.clone().into_bytes()),
                    ),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(api_failed(name, e)),
        }
    }
}

fn zcert(pem: &str, kind: ZCertType) -> ZCert {
    ZCert {
        hash_algo: HashAlgorithm::Sha25632bytes as i32,
        cert_hash: sha256(pem.as_bytes()).to_vec(),
        r#type: kind as i32,
        cert: pem.as_bytes().to_vec(),
        attributes: Some(ZCertAttr {
            is_mutable: true,
            is_tpm: false,
        }),
        meta_data_items: Vec::new(),
    }
}

impl ControllerCerts {
    /// Loads the certificates from `vault`, making and storing those that do not exist.
    pub async fn load_or_create(vault: &dyn Vault) -> Result<ControllerCerts, PkiError> {
        let root = load_or_make(vault, names::ROOT, || {
            let root = pki::Authority::generate(names::ROOT)?;
            Ok(Pair {
                key_pem: root.key_pem(),
                certificate_pem: root.certificate_pem,
            })
        })
        .await?;
        let authority = pki::Authority::from_pem(&root.certificate_pem, &root.key_pem)?;
        let signing = load_or_make(vault, names::DEVICE_SIGNING, || {
            authority.issue_leaf(names::DEVICE_SIGNING, pki::Leaf::Signing)
        })
        .await?;
        let ecdh = load_or_make(vault, names::DEVICE_ECDH, || {
            authority.issue_leaf(names::DEVICE_ECDH, pki::Leaf::KeyAgreement)
        })
        .await?;
        let signer = Arc::new(Signer::controller(
            signing.key_pem.as_bytes(),
            signing.certificate_pem.as_bytes(),
        )?);
        let chain = ZControllerCert {
            certs: vec![
                zcert(
                    &signing.certificate_pem,
                    ZCertType::CertTypeControllerSigning,
                ),
                zcert(
                    &ecdh.certificate_pem,
                    ZCertType::CertTypeControllerEcdhExchange,
                ),
            ],
        };
        let certs_body = signer.seal(chain.encode_to_vec()).into();
        let confighash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(
            format!("{}{}", signing.certificate_pem, ecdh.certificate_pem).as_bytes(),
        ));
        // Devices name the certificate by the hash `certs` serves.
        let sealer = crate::cipher::Sealer::new(
            &ecdh.key_pem,
            sha256(ecdh.certificate_pem.as_bytes()).to_vec(),
        )?;
        Ok(ControllerCerts {
            root_pem: root.certificate_pem.clone(),
            signing,
            ecdh,
            sealer,
            signer,
            certs_body,
            confighash,
            root,
        })
    }

    /// The secret integrity tokens are derived from: the root key's, so that a rotation of the
    /// signing certificate leaves devices' tokens valid.
    pub fn integrity_secret(&self) -> &[u8] {
        self.root.key_pem.as_bytes()
    }

    /// The device API's TLS configuration: a serving certificate for `hosts` from the root,
    /// HTTP/1.1, session resumption by ID and by ticket (devices reconnect for every request).
    pub fn tls(&self, hosts: &[String]) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let authority = pki::Authority::from_pem(&self.root.certificate_pem, &self.root.key_pem)?;
        let issued = authority.issue_server("adamant-device-api", hosts)?;
        let mut config =
            https::server_config(&issued.certificate_pem, &issued.key_pem, &[b"http/1.1"])?;
        https::resume_sessions(&mut config)?;
        Ok(Arc::new(config))
    }
}
