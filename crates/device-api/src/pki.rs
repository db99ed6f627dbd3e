//! The controller's certificates for devices: the root (shared with the Kubernetes API in
//! `adamant serve`), a signing certificate and an ECDH certificate under it, kept as Secrets in
//! `kube-system` so that replicas share them; and the device API's serving certificate.

use std::sync::Arc;

use base64::Engine;
use eve_api::Message;
use eve_api::certs::{ZCert, ZCertAttr, ZCertType, ZControllerCert};
use eve_api::common::HashAlgorithm;
use eve_api::envelope::{Signer, sha256};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

/// Where the certificates live.
pub const NAMESPACE: &str = "kube-system";
/// The root certificate authority (the same Secret the API server keeps its root in).
pub const ROOT_SECRET: &str = "adamant-root-ca";
/// The signing certificate devices verify every response with.
pub const SIGNING_SECRET: &str = "adamant-device-signing";
/// The ECDH certificate (EVE requires one even when nothing is encrypted).
pub const ECDH_SECRET: &str = "adamant-device-ecdh";

/// What can go wrong with the device PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The API refused or failed.
    #[error("the device certificates could not be read or stored: {0}")]
    Api(#[from] kube::Error),
    /// A certificate could not be made or read.
    #[error(transparent)]
    Certificate(#[from] pki::Error),
    /// A stored Secret is damaged.
    #[error(
        "Secret {NAMESPACE}/{0} is damaged ({1}); delete it to make a new one (devices then fetch /certs again)"
    )]
    Damaged(String, String),
    /// The device API's TLS configuration cannot be made.
    #[error("the device API's TLS: {0}")]
    Tls(#[from] https::TlsError),
    /// The signing key does not load.
    #[error("the signing key: {0}")]
    Envelope(#[from] eve_api::envelope::EnvelopeError),
}

/// A certificate and key as stored.
#[derive(Clone)]
pub struct Pair {
    /// Certificate, PEM.
    pub certificate_pem: String,
    /// Key, PEM.
    pub key_pem: String,
}

/// The controller's certificates, ready to serve.
pub struct ControllerCerts {
    /// The root certificate (what devices hold as `/config/root-certificate.pem`).
    pub root_pem: String,
    /// The signing certificate and key.
    pub signing: Pair,
    /// The ECDH certificate and key.
    pub ecdh: Pair,
    /// Signs responses.
    pub signer: Arc<Signer>,
    /// The body of `GET /certs`: a signed `ZControllerCert`.
    pub certs_body: bytes::Bytes,
    /// Changes whenever the certificates do (`EdgeDevConfig.controllercert_confighash`).
    pub confighash: String,
    root: Pair,
}

async fn load(api: &Api<Secret>, name: &str) -> Result<Option<Pair>, PkiError> {
    let Some(secret) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let data = secret.data.unwrap_or_default();
    let field = |key: &str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .ok_or_else(|| PkiError::Damaged(name.into(), format!("no {key}")))
    };
    Ok(Some(Pair {
        certificate_pem: field("tls.crt")?,
        key_pem: field("tls.key")?,
    }))
}

/// Reads the Secret `name`, or stores what `make` makes; concurrent starts agree on one.
async fn load_or_store(
    api: &Api<Secret>,
    name: &str,
    make: impl Fn() -> Result<Pair, PkiError>,
) -> Result<Pair, PkiError> {
    loop {
        if let Some(pair) = load(api, name).await? {
            return Ok(pair);
        }
        let pair = make()?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(
                [
                    (
                        "tls.crt".to_string(),
                        ByteString(pair.certificate_pem.clone().into_bytes()),
                    ),
                    (
                        "tls.key".to_string(),
                        ByteString(pair.key_pem.clone().into_bytes()),
                    ),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
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
    /// Loads the certificates from the API, making and storing those that do not exist.
    pub async fn load_or_create(client: &kube::Client) -> Result<ControllerCerts, PkiError> {
        let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
        let root = load_or_store(&api, ROOT_SECRET, || {
            let root = pki::Authority::generate("adamant-root-ca")?;
            Ok(Pair {
                key_pem: root.key_pem(),
                certificate_pem: root.certificate_pem,
            })
        })
        .await?;
        let authority = pki::Authority::from_pem(&root.certificate_pem, &root.key_pem)?;
        let issue = |cn: &str, leaf: pki::Leaf| -> Result<Pair, PkiError> {
            let issued = authority.issue_leaf(cn, leaf)?;
            Ok(Pair {
                certificate_pem: issued.certificate_pem,
                key_pem: issued.key_pem,
            })
        };
        let signing = load_or_store(&api, SIGNING_SECRET, || {
            issue("adamant-device-signing", pki::Leaf::Signing)
        })
        .await?;
        let ecdh = load_or_store(&api, ECDH_SECRET, || {
            issue("adamant-device-ecdh", pki::Leaf::KeyAgreement)
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
        Ok(ControllerCerts {
            root_pem: root.certificate_pem.clone(),
            signing,
            ecdh,
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
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(1 << 16);
        config.ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| https::TlsError::Config(e.to_string()))?;
        Ok(Arc::new(config))
    }
}
