//! Certificates in the model: base64-encoded PEM X.509, as the specification writes them.

use base64::Engine;

/// Why a certificate field is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not base64.
    #[error(
        "must be a base64-encoded PEM certificate (encode the PEM file with `base64 -w0`): {0}"
    )]
    Base64(String),
    /// Base64 of something that is not PEM.
    #[error(
        "must be a base64-encoded PEM certificate: the decoded text has no -----BEGIN CERTIFICATE----- block"
    )]
    NotPem,
    /// PEM but not a parsable X.509 certificate.
    #[error("is not a valid X.509 certificate: {0}")]
    NotX509(String),
    /// A leaf where a CA is needed.
    #[error("must be a CA certificate (basic constraints CA:TRUE); {0} is not a CA")]
    NotCa(String),
}

/// The facts of a certificate the controllers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The DER bytes (identity for uniqueness).
    pub der: Vec<u8>,
    /// The subject, `CN=onboard-25`.
    pub subject: String,
    /// Whether it is a CA.
    pub is_ca: bool,
}

/// The DER of a base64 PEM certificate field (white space anywhere in it ignored), not parsed
/// as X.509.
pub fn der(field: &str) -> Result<Vec<u8>, CertError> {
    let compact: String = field.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| CertError::Base64(e.to_string()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|_| CertError::NotPem)?;
    if pem.label != "CERTIFICATE" {
        return Err(CertError::NotPem);
    }
    Ok(pem.contents)
}

/// Decodes a base64 PEM certificate field.
pub fn decode(field: &str) -> Result<Certificate, CertError> {
    let der = der(field)?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| CertError::NotX509(e.to_string()))?;
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    Ok(Certificate {
        subject: cert.subject().to_string(),
        is_ca,
        der,
    })
}

/// Decodes a CA certificate field.
pub fn decode_ca(field: &str) -> Result<Certificate, CertError> {
    let cert = decode(field)?;
    if !cert.is_ca {
        return Err(CertError::NotCa(cert.subject));
    }
    Ok(cert)
}
