//! Subjects with repeated attributes. Kubernetes reads each O (organization) of a client
//! certificate's subject as a group, so a user in two groups needs two O attributes; rcgen's
//! `DistinguishedName` keeps one value per attribute type. So a client certificate is issued by
//! rcgen with its CN alone, then its subject is replaced with the full one and the certificate
//! signed again with the issuer's key (ECDSA P-256 with SHA-256, the only kind of key this crate
//! makes).

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use yasna::models::ObjectIdentifier;

use crate::Error;

/// `id-at-commonName`.
pub(crate) const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
/// `id-at-organizationName`.
pub(crate) const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
/// `ecdsa-with-SHA256`.
const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
/// The place of `subject` among a TBSCertificate's fields (version, serialNumber, signature,
/// issuer, validity, subject, ...).
const SUBJECT_FIELD: usize = 5;

fn damaged(what: &str) -> Error {
    Error::Damaged(format!("re-signing a certificate: {what}"))
}

/// A Name of one attribute per RDN, in order, each a UTF8String.
fn name(attributes: &[(&[u64], &str)]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (oid, value) in attributes {
                w.next().write_set(|w| {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
                        w.next().write_utf8_string(value);
                    });
                });
            }
        });
    })
}

/// `certificate_der` with its subject replaced by `attributes`, signed again with
/// `issuer_pkcs8` (the issuer's PKCS#8 key, ECDSA P-256).
pub(crate) fn with_subject(
    certificate_der: &[u8],
    attributes: &[(&[u64], &str)],
    issuer_pkcs8: &[u8],
) -> Result<Vec<u8>, Error> {
    let tbs = yasna::parse_der(certificate_der, |r| {
        r.read_sequence(|r| {
            let tbs = r.next().read_der()?;
            r.next().read_der()?;
            r.next().read_der()?;
            Ok(tbs)
        })
    })
    .map_err(|_| damaged("not a certificate"))?;
    let mut fields = Vec::new();
    yasna::parse_der(&tbs, |r| {
        r.read_sequence_of(|r| {
            fields.push(r.read_der()?);
            Ok(())
        })
    })
    .map_err(|_| damaged("not a TBSCertificate"))?;
    let subject = fields
        .get_mut(SUBJECT_FIELD)
        .ok_or_else(|| damaged("no subject"))?;
    *subject = name(attributes);
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for field in &fields {
                w.next().write_der(field);
            }
        });
    });
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        issuer_pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| damaged("the issuer's key is not ECDSA P-256"))?;
    let signature = key
        .sign(&SystemRandom::new(), &tbs)
        .map_err(|_| damaged("signing failed"))?;
    let signature = signature.as_ref();
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_sequence(|w| {
                w.next()
                    .write_oid(&ObjectIdentifier::from_slice(ECDSA_WITH_SHA256));
            });
            w.next().write_bitvec_bytes(signature, signature.len() * 8);
        });
    }))
}
