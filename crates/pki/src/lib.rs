//! Certificate authorities and what they issue: serving certificates for names and addresses,
//! client certificates carrying a Kubernetes user and groups. Kept nowhere: the API server
//! stores its root as a Secret, the webhook keeps one in memory, the device API shares the API
//! server's. Keys are ECDSA P-256.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// What can go wrong making or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate could not be made.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A stored certificate or key cannot be read.
    #[error("{0}")]
    Damaged(String),
}

/// What a certificate without extended key usage is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// Signing (digital signature).
    Signing,
    /// Key agreement (ECDH).
    KeyAgreement,
}

/// A certificate authority: its certificate and key.
pub struct Authority {
    /// The certificate, PEM.
    pub certificate_pem: String,
    key: KeyPair,
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate (leaf first), PEM.
    pub certificate_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl Authority {
    /// A new self-signed authority named `common_name`.
    pub fn generate(common_name: &str) -> Result<Authority, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key)?;
        Ok(Authority {
            certificate_pem: certificate.pem(),
            key,
        })
    }

    /// An authority read back from its certificate and key (PEM).
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Authority, Error> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Damaged(e.to_string()))?;
        Issuer::from_ca_cert_pem(certificate_pem, &key)
            .map_err(|e| Error::Damaged(e.to_string()))?;
        Ok(Authority {
            certificate_pem: certificate_pem.to_string(),
            key,
        })
    }

    /// The authority's private key, PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate from `params`, for a new key (usages: digital signature and key
    /// encipherment unless `params` sets others).
    pub fn issue(&self, mut params: CertificateParams) -> Result<Issued, Error> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_ca_cert_pem(&self.certificate_pem, &self.key)?;
        if params.key_usages.is_empty() {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        }
        params.use_authority_key_identifier_extension = true;
        let certificate = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving certificate named `common_name` for `hosts` (DNS names or addresses).
    pub fn issue_server(&self, common_name: &str, hosts: &[String]) -> Result<Issued, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        for host in hosts {
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.clone().try_into()?),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A certificate without extended key usage (EVE requires none, or one with serverAuth, on
    /// the controller's signing and ECDH certificates) for `usage`.
    pub fn issue_leaf(&self, common_name: &str, usage: Leaf) -> Result<Issued, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = match usage {
            Leaf::Signing => vec![KeyUsagePurpose::DigitalSignature],
            Leaf::KeyAgreement => vec![KeyUsagePurpose::KeyAgreement],
        };
        self.issue(params)
    }

    /// A client certificate for `user` in `groups` (CN and O, as Kubernetes reads them).
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<Issued, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_survives_its_pem() {
        let root = Authority::generate("test-root").unwrap();
        let again = Authority::from_pem(&root.certificate_pem, &root.key_pem()).unwrap();
        let server = again
            .issue_server("server", &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        assert!(
            server
                .certificate_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(Authority::from_pem("garbage", &root.key_pem()).is_err());
    }
}
