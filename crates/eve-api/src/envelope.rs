//! The signed envelope (`AuthContainer`) around every device API body, and EVE's two hash
//! rules: a device is known by SHA-256 of its certificate's DER; the controller's signing
//! certificate by SHA-256 of its PEM bytes exactly as shipped in `ZCert.cert`. Signatures are
//! ECDSA P-256 over SHA-256 of the payload, encoded as raw r‖s (64 bytes).

use base64::Engine;
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};

use crate::auth::{AuthBody, AuthContainer};
use crate::common::HashAlgorithm;

/// The largest body the device API reads: EVE's biggest requests (an attestation quote with its
/// event log) stay under 62 KB, gzip log files under 64 KiB; this leaves room.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why an envelope is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not an `AuthContainer`.
    #[error("the body is not a protobuf AuthContainer: {0}")]
    Malformed(String),
    /// No sender hash, or one of the wrong size.
    #[error("the envelope's senderCertHash must be 16 or 32 bytes, not {0}")]
    SenderHash(usize),
    /// Encrypted envelopes are not accepted from devices.
    #[error("encrypted envelopes (cipherData) are not accepted on this path")]
    Encrypted,
    /// The signature does not verify with the sender's certificate.
    #[error("the signature does not verify with the sender's certificate")]
    BadSignature,
    /// A certificate could not be read.
    #[error("certificate: {0}")]
    Certificate(String),
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The first certificate of a PEM text, as DER.
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| EnvelopeError::Certificate(format!("not a PEM certificate: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(EnvelopeError::Certificate(format!(
            "the PEM block is a {:?}, not a CERTIFICATE",
            block.label
        )));
    }
    Ok(block.contents)
}

/// The uncompressed public key of a DER certificate (P-256 only).
pub fn public_key(der: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| EnvelopeError::Certificate(format!("not an X.509 certificate: {e}")))?;
    let key = &certificate.tbs_certificate.subject_pki;
    let oid = key.algorithm.algorithm.to_id_string();
    let curve = key
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if oid != "1.2.840.10045.2.1" || curve.as_deref() != Some("1.2.840.10045.3.1.7") {
        return Err(EnvelopeError::Certificate(
            "only ECDSA P-256 certificates are supported".into(),
        ));
    }
    Ok(key.subject_public_key.data.to_vec())
}

/// Verifies a raw r‖s signature of `payload` with an uncompressed P-256 public key.
pub fn verify(public_key: &[u8], payload: &[u8], signature: &[u8]) -> Result<(), EnvelopeError> {
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public_key)
        .verify(payload, signature)
        .map_err(|_| EnvelopeError::BadSignature)
}

/// A received envelope, not yet verified.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The payload bytes exactly as received (what the signature covers).
    pub payload: Vec<u8>,
    /// The sender's certificate hash (16 or 32 bytes).
    pub sender_hash: Vec<u8>,
    /// The signature (raw r‖s).
    pub signature: Vec<u8>,
    /// The sender's certificate, PEM, when sent (`register`).
    pub sender_cert_pem: Option<Vec<u8>>,
}

impl Opened {
    /// Decodes an `AuthContainer`; nothing is trusted yet.
    pub fn decode(body: &[u8]) -> Result<Opened, EnvelopeError> {
        let container =
            AuthContainer::decode(body).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if container.cipher_data.is_some() {
            return Err(EnvelopeError::Encrypted);
        }
        let hash_len = container.sender_cert_hash.len();
        if hash_len != 16 && hash_len != 32 {
            return Err(EnvelopeError::SenderHash(hash_len));
        }
        let sender_cert_pem = if container.sender_cert.is_empty() {
            None
        } else {
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(&container.sender_cert)
                    .map_err(|e| {
                        EnvelopeError::Certificate(format!("senderCert is not base64: {e}"))
                    })?,
            )
        };
        Ok(Opened {
            payload: container
                .protected_payload
                .map(|p| p.payload)
                .unwrap_or_default(),
            sender_hash: container.sender_cert_hash,
            signature: container.signature_hash,
            sender_cert_pem,
        })
    }

    /// Whether the sender hash names the certificate whose DER hashes to `der_hash`.
    pub fn names(&self, der_hash: &[u8; 32]) -> bool {
        der_hash.starts_with(&self.sender_hash)
    }

    /// Verifies the signature with `public_key`.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), EnvelopeError> {
        verify(public_key, &self.payload, &self.signature)
    }
}

/// A key that signs envelopes: the controller's signing key, or a device's (in the simulator).
pub struct Signer {
    key: EcdsaKeyPair,
    sender_hash: [u8; 32],
    sender_cert: Option<Vec<u8>>,
    rng: SystemRandom,
}

impl Signer {
    /// A signer from a PKCS#8 PEM private key, named by `sender_hash`.
    pub fn new(key_pem: &[u8], sender_hash: [u8; 32]) -> Result<Signer, EnvelopeError> {
        let (_, block) = x509_parser::pem::parse_x509_pem(key_pem)
            .map_err(|e| EnvelopeError::Certificate(format!("not a PEM key: {e}")))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &block.contents,
            &rng,
        )
        .map_err(|e| EnvelopeError::Certificate(format!("not a PKCS#8 P-256 key: {e}")))?;
        Ok(Signer {
            key,
            sender_hash,
            sender_cert: None,
            rng,
        })
    }

    /// The controller's signer: named by SHA-256 of the PEM bytes shipped in `ZCert.cert`.
    pub fn controller(key_pem: &[u8], certificate_pem: &[u8]) -> Result<Signer, EnvelopeError> {
        Signer::new(key_pem, sha256(certificate_pem))
    }

    /// A device's signer: named by SHA-256 of its certificate's DER.
    pub fn device(key_pem: &[u8], certificate_pem: &[u8]) -> Result<Signer, EnvelopeError> {
        Signer::new(key_pem, sha256(&pem_to_der(certificate_pem)?))
    }

    /// Also sends the certificate in the envelope (as `register` does), base64 of its PEM.
    pub fn with_certificate(mut self, certificate_pem: &[u8]) -> Signer {
        self.sender_cert = Some(
            base64::engine::general_purpose::STANDARD
                .encode(certificate_pem)
                .into_bytes(),
        );
        self
    }

    /// The public key (uncompressed point).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The signature of `payload`, raw r‖s.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        self.key
            .sign(&self.rng, payload)
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default()
    }

    /// `payload` in a signed `AuthContainer`, encoded.
    pub fn seal(&self, payload: Vec<u8>) -> Vec<u8> {
        let signature = self.sign(&payload);
        AuthContainer {
            protected_payload: Some(AuthBody { payload }),
            algo: HashAlgorithm::Sha25632bytes as i32,
            sender_cert_hash: self.sender_hash.to_vec(),
            signature_hash: signature,
            sender_cert: self.sender_cert.clone().unwrap_or_default(),
            cipher_context: None,
            cipher_data: None,
        }
        .encode_to_vec()
    }
}
