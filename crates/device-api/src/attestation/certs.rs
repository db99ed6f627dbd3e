//! What the certificates a device uploads (`attest` with `ATTEST_REQ_CERT`) tell: its ECDH
//! certificate (what credentials are encrypted for, [`crate::cipher`]), its attestation key's
//! certificate (what quotes are verified with), and whether those keys live in a TPM.

use base64::Engine;
use eve_api::certs::{ZCert, ZCertType};
use eve_model::EcdhCertificate;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

/// What a device's uploaded certificates say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Uploaded {
    /// The ECDH certificate, when it is a P-256 one signed by the device's key.
    pub ecdh: Option<EcdhCertificate>,
    /// Why the ECDH certificate that came is not used.
    pub ecdh_refused: Option<String>,
    /// The attestation key's certificate (PEM), when the device's key signed it.
    pub attestation_key: Option<Vec<u8>>,
    /// Why the attestation key's certificate that came is not used.
    pub attestation_key_refused: Option<String>,
    /// Whether the device's keys are in a TPM (a TPM attestation key or an endorsement key).
    pub tpm: bool,
}

/// Whether `pem` is a certificate signed by the key `signer` (an uncompressed P-256 point).
fn signed_by(pem: &[u8], signer: &[u8]) -> Result<Vec<u8>, String> {
    let der = eve_api::envelope::pem_to_der(pem).map_err(|e| e.to_string())?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, signer)
        .verify(
            certificate.tbs_certificate.as_ref(),
            &certificate.signature_value.data,
        )
        .map_err(|_| "it is not signed by the device's certificate key".to_string())?;
    eve_api::envelope::public_key(&der).map_err(|e| e.to_string())
}

/// Reads `certs`, uploaded by the device whose certificate key is `device_key`.
pub fn read(certs: &[ZCert], device_key: &[u8]) -> Uploaded {
    let mut uploaded = Uploaded::default();
    let of = |kind: ZCertType| certs.iter().find(|c| c.r#type == kind as i32);
    let in_tpm = |c: &ZCert| c.attributes.as_ref().is_some_and(|a| a.is_tpm);
    if let Some(ecdh) = of(ZCertType::CertTypeDeviceEcdhExchange) {
        match signed_by(&ecdh.cert, device_key) {
            Ok(point) if !ecdh.cert_hash.is_empty() => {
                uploaded.ecdh = Some(EcdhCertificate {
                    hash: crate::hex::encode(&ecdh.cert_hash),
                    public_key: base64::engine::general_purpose::STANDARD.encode(point),
                });
            }
            Ok(_) => uploaded.ecdh_refused = Some("it comes without its certHash".into()),
            Err(why) => uploaded.ecdh_refused = Some(why),
        }
    }
    if let Some(key) = of(ZCertType::CertTypeDeviceRestrictedSigning) {
        // Whatever the certificate says, a TPM key was announced.
        uploaded.tpm |= in_tpm(key);
        match signed_by(&key.cert, device_key) {
            Ok(_) => uploaded.attestation_key = Some(key.cert.clone()),
            Err(why) => uploaded.attestation_key_refused = Some(why),
        }
    }
    uploaded.tpm |= of(ZCertType::CertTypeDeviceEndorsementRsa).is_some();
    uploaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_api::certs::ZCertAttr;

    /// A certificate of `subject`'s key, signed by the key `device`.
    fn issued(device: &rcgen::KeyPair, subject: &rcgen::KeyPair) -> String {
        let issuer_params = rcgen::CertificateParams::new(vec!["device".into()]).expect("params");
        rcgen::CertificateParams::new(vec!["ecdh".into()])
            .expect("params")
            .signed_by(subject, &rcgen::Issuer::from_params(&issuer_params, device))
            .expect("signed")
            .pem()
    }

    fn zcert(kind: ZCertType, pem: &str, tpm: bool) -> ZCert {
        ZCert {
            cert_hash: vec![5; 16],
            r#type: kind as i32,
            cert: pem.as_bytes().to_vec(),
            attributes: Some(ZCertAttr {
                is_mutable: false,
                is_tpm: tpm,
            }),
            ..ZCert::default()
        }
    }

    #[test]
    fn the_ecdh_certificate_counts_only_when_the_device_signed_it() {
        let device = rcgen::KeyPair::generate().expect("a key");
        let stranger = rcgen::KeyPair::generate().expect("a key");
        let ecdh = rcgen::KeyPair::generate().expect("a key");
        let device_point = device.public_key_raw().to_vec();
        let good = issued(&device, &ecdh);
        let uploaded = read(
            &[
                zcert(ZCertType::CertTypeDeviceEcdhExchange, &good, false),
                zcert(ZCertType::CertTypeDeviceRestrictedSigning, &good, true),
            ],
            &device_point,
        );
        let recorded = uploaded.ecdh.expect("recorded");
        assert_eq!(recorded.hash, "05".repeat(16));
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(recorded.public_key)
                .expect("base64"),
            ecdh.public_key_raw()
        );
        assert!(uploaded.tpm && uploaded.attestation_key.is_some());
        // An attestation key certified by another key is not used (a quote signed with it
        // would prove nothing of this device).
        let uploaded = read(
            &[zcert(
                ZCertType::CertTypeDeviceRestrictedSigning,
                &issued(&stranger, &ecdh),
                true,
            )],
            &device_point,
        );
        assert!(uploaded.tpm && uploaded.attestation_key.is_none());
        assert_eq!(
            uploaded.attestation_key_refused.as_deref(),
            Some("it is not signed by the device's certificate key")
        );
        // Signed by another key: refused, named.
        let forged = issued(&stranger, &ecdh);
        let uploaded = read(
            &[zcert(ZCertType::CertTypeDeviceEcdhExchange, &forged, false)],
            &device_point,
        );
        assert_eq!(uploaded.ecdh, None);
        assert_eq!(
            uploaded.ecdh_refused.as_deref(),
            Some("it is not signed by the device's certificate key")
        );
        assert!(!uploaded.tpm);
    }
}
