//! Certificate authorities and what they issue: serving certificates for names and addresses,
//! client certificates carrying a Kubernetes user and groups, each valid for a bounded time
//! ([`validity`]). Keys are ECDSA P-256. What must outlive a process is kept in a [`Vault`],
//! which callers implement over their store.

pub mod secret;
mod subject;
mod vault;

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

pub use vault::{Vault, VaultError, load_or_make, names};

/// How long what is issued stays valid (kubeadm's choices: ten years for authorities, one for
/// the rest). A certificate is valid from five minutes before it is made, for clocks that lag.
pub mod validity {
    use std::time::Duration;

    const DAY: u64 = 24 * 60 * 60;
    /// Certificate authorities, and the device API's signing and ECDH certificates (kept, and
    /// trusted by devices for as long as the root).
    pub const AUTHORITY: Duration = Duration::from_secs(3650 * DAY);
    /// Serving certificates (made anew at every start).
    pub const SERVING: Duration = Duration::from_secs(365 * DAY);
    /// Client certificates, unless asked otherwise (the admin's is made anew at every start).
    pub const CLIENT: Duration = Duration::from_secs(365 * DAY);
}

/// Sets `params` valid from five minutes ago for `valid_for`.
fn valid_for(params: &mut CertificateParams, valid_for: Duration) -> Result<(), Error> {
    let now = time::OffsetDateTime::now_utc();
    let lifetime = time::Duration::try_from(valid_for)
        .map_err(|_| Error::Damaged(format!("a validity of {valid_for:?} is too long")))?;
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now
        .checked_add(lifetime)
        .ok_or_else(|| Error::Damaged(format!("a validity of {valid_for:?} is too long")))?;
    Ok(())
}

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
        valid_for(&mut params, validity::AUTHORITY)?;
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
    /// encipherment unless `params` sets others; validity as `params` says, so callers set it).
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
        valid_for(&mut params, validity::SERVING)?;
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
        valid_for(&mut params, validity::AUTHORITY)?;
        self.issue(params)
    }

    /// A client certificate for `user` in `groups` (CN and one O per group, as Kubernetes
    /// reads them), with the clientAuth extended key usage, valid for `lifetime`.
    pub fn issue_client(
        &self,
        user: &str,
        groups: &[&str],
        lifetime: Duration,
    ) -> Result<Issued, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        valid_for(&mut params, lifetime)?;
        let issued = self.issue(params)?;
        let der =
            ::pem::parse(&issued.certificate_pem).map_err(|e| Error::Damaged(e.to_string()))?;
        let mut attributes = vec![(subject::COMMON_NAME, user)];
        attributes.extend(groups.iter().map(|g| (subject::ORGANIZATION, *g)));
        let der = subject::with_subject(der.contents(), &attributes, &self.key.serialize_der())?;
        Ok(Issued {
            certificate_pem: ::pem::encode(&::pem::Pem::new("CERTIFICATE", der)),
            key_pem: issued.key_pem,
        })
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

    fn lifetime(pem: &str) -> i64 {
        let der = ::pem::parse(pem).unwrap();
        let (_, certificate) = x509_parser::parse_x509_certificate(der.contents()).unwrap();
        let validity = certificate.validity();
        validity.not_after.timestamp() - validity.not_before.timestamp()
    }

    #[test]
    fn what_is_issued_expires() {
        let day = 24 * 3600;
        let five_minutes = 300;
        let root = Authority::generate("test-root").unwrap();
        assert_eq!(lifetime(&root.certificate_pem), 3650 * day + five_minutes);
        let server = root.issue_server("s", &["localhost".into()]).unwrap();
        assert_eq!(lifetime(&server.certificate_pem), 365 * day + five_minutes);
        let client = root
            .issue_client("alice", &["devs"], Duration::from_secs(3600))
            .unwrap();
        assert_eq!(lifetime(&client.certificate_pem), 3600 + five_minutes);
        let leaf = root.issue_leaf("signing", Leaf::Signing).unwrap();
        assert_eq!(lifetime(&leaf.certificate_pem), 3650 * day + five_minutes);
        assert!(
            root.issue_client("alice", &[], Duration::MAX).is_err(),
            "an endless validity is refused"
        );
    }

    #[test]
    fn a_client_certificate_names_every_group_and_verifies() {
        let root = Authority::generate("test-root").unwrap();
        let client = root
            .issue_client("alice", &["devs", "eve:operators", "ops"], validity::CLIENT)
            .unwrap();
        let der = ::pem::parse(&client.certificate_pem).unwrap();
        let (_, certificate) = x509_parser::parse_x509_certificate(der.contents()).unwrap();
        assert_eq!(
            certificate.subject().to_string(),
            "CN=alice, O=devs, O=eve:operators, O=ops"
        );
        let groups: Vec<&str> = certificate
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(groups, ["devs", "eve:operators", "ops"]);
        let root_der = ::pem::parse(&root.certificate_pem).unwrap();
        let (_, issuer) = x509_parser::parse_x509_certificate(root_der.contents()).unwrap();
        certificate
            .verify_signature(Some(issuer.public_key()))
            .expect("signed by the root");
        let usage = certificate.extended_key_usage().unwrap().unwrap();
        assert!(usage.value.client_auth);
        let other = Authority::generate("another").unwrap();
        let other_der = ::pem::parse(&other.certificate_pem).unwrap();
        let (_, other) = x509_parser::parse_x509_certificate(other_der.contents()).unwrap();
        assert!(
            certificate
                .verify_signature(Some(other.public_key()))
                .is_err()
        );
    }
}
