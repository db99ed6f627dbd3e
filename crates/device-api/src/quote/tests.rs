//! The quote verifier against quotes made here: a P-256 attestation key signing TPMS_ATTEST
//! structures built as a TPM builds them, then mutated, truncated and re-signed.

use std::collections::BTreeMap;

use eve_api::attest::{
    AttestVersionInfo, AttestVersionType, TpmHashAlgo, TpmPcrValue, ZAttestQuote,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair,
};

use super::*;
use crate::hex::encode as hex;

const NONCE: &[u8] = b"a nonce the controller issued...";
const EVE: &str = "14.5.0-kvm-amd64";
const FIRMWARE: &str = "1.2.3";

/// A P-256 key (PKCS#8) and a self-signed certificate for it (PEM).
fn p256() -> (Vec<u8>, String) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .expect("a key");
    let key = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen takes it");
    (pkcs8.as_ref().to_vec(), certificate(&key))
}

fn certificate(key: &rcgen::KeyPair) -> String {
    rcgen::CertificateParams::new(vec!["attestation".to_string()])
        .expect("params")
        .self_signed(key)
        .expect("a certificate")
        .pem()
}

/// The value of PCR `index` in the tests.
fn pcr(index: u32) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, &index.to_be_bytes())
        .as_ref()
        .to_vec()
}

/// A `TPMS_ATTEST` of type quote with settable fields, for tests to encode.
#[derive(Clone)]
struct Encoded {
    magic: u32,
    kind: u16,
    signer: Vec<u8>,
    nonce: Vec<u8>,
    firmware: u64,
    /// (declared count, selections (hash algorithm, bitmap)).
    count: Option<u32>,
    selections: Vec<(u16, Vec<u8>)>,
    digest: Vec<u8>,
    trailing: Vec<u8>,
}

impl Encoded {
    /// Selects PCRs 0-15 of the SHA-256 bank, as EVE does.
    fn good() -> Encoded {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &(0..16).flat_map(pcr).collect::<Vec<_>>(),
        );
        Encoded {
            magic: 0xff54_4347,
            kind: 0x8018,
            signer: vec![0x00, 0x0b, 1, 2, 3],
            nonce: NONCE.to_vec(),
            firmware: 0x0001_0002_0003_0004,
            count: None,
            selections: vec![(0x000b, vec![0xff, 0xff, 0x00])],
            digest: digest.as_ref().to_vec(),
            trailing: vec![],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let sized = |b: &mut Vec<u8>, data: &[u8]| {
            b.extend_from_slice(&(data.len() as u16).to_be_bytes());
            b.extend_from_slice(data);
        };
        b.extend_from_slice(&self.magic.to_be_bytes());
        b.extend_from_slice(&self.kind.to_be_bytes());
        sized(&mut b, &self.signer);
        sized(&mut b, &self.nonce);
        b.extend_from_slice(&[7; 17]);
        b.extend_from_slice(&self.firmware.to_be_bytes());
        let count = self.count.unwrap_or(self.selections.len() as u32);
        b.extend_from_slice(&count.to_be_bytes());
        for (alg, bitmap) in &self.selections {
            b.extend_from_slice(&alg.to_be_bytes());
            b.push(bitmap.len() as u8);
            b.extend_from_slice(bitmap);
        }
        sized(&mut b, &self.digest);
        b.extend_from_slice(&self.trailing);
        b
    }
}

/// How a quote is made: its signed data, who signs and how, the PCR values sent.
struct Case {
    attest: Encoded,
    /// PKCS#8 of the signing key.
    signer: Vec<u8>,
    /// PKCS#8 of a key that is not the device's.
    other_key: Vec<u8>,
    raw_signature: bool,
    tamper_signature: bool,
    pcr_values: Vec<TpmPcrValue>,
}

/// A change made to a [`Case`].
type Mutate = fn(&mut Case);

struct Fixture {
    key: Vec<u8>,
    cert: String,
    other_key: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let (key, cert) = p256();
        let (other_key, _) = p256();
        Fixture {
            key,
            cert,
            other_key,
        }
    }

    fn case(&self) -> Case {
        Case {
            attest: Encoded::good(),
            signer: self.key.clone(),
            other_key: self.other_key.clone(),
            raw_signature: false,
            tamper_signature: false,
            pcr_values: (0..24)
                .map(|index| TpmPcrValue {
                    index,
                    hash_algo: TpmHashAlgo::Sha256 as i32,
                    value: pcr(index),
                })
                .collect(),
        }
    }

    fn verify(&self, case: &Case) -> Result<Verified, QuoteError> {
        verify(&quote(case), NONCE, self.cert.as_bytes())
    }
}

fn sign(pkcs8: &[u8], raw: bool, data: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    let alg = if raw {
        &ECDSA_P256_SHA256_FIXED_SIGNING
    } else {
        &ECDSA_P256_SHA256_ASN1_SIGNING
    };
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng).expect("the key");
    key.sign(&rng, data).expect("signed").as_ref().to_vec()
}

fn quote(case: &Case) -> ZAttestQuote {
    let attest_data = case.attest.encode();
    let mut signature = sign(&case.signer, case.raw_signature, &attest_data);
    if case.tamper_signature {
        let last = signature.len() - 1;
        signature[last] ^= 1;
    }
    ZAttestQuote {
        attest_data,
        signature,
        pcr_values: case.pcr_values.clone(),
        versions: vec![
            AttestVersionInfo {
                version_type: AttestVersionType::Eve as i32,
                version: EVE.into(),
            },
            AttestVersionInfo {
                version_type: AttestVersionType::Firmware as i32,
                version: FIRMWARE.into(),
            },
        ],
        tpm_binary_event_log: vec![],
    }
}

fn selected(range: std::ops::Range<u32>) -> BTreeMap<u32, Vec<u8>> {
    range.map(|i| (i, pcr(i))).collect()
}

#[test]
fn a_good_quote_verifies_and_vouches_for_the_selected_pcrs_only() {
    let f = Fixture::new();
    let verified = f.verify(&f.case()).expect("verifies");
    assert_eq!(
        verified,
        Verified {
            pcrs: selected(0..16),
            eve_version: Some(EVE.into()),
            firmware_version: Some(FIRMWARE.into()),
            tpm_firmware_version: 0x0001_0002_0003_0004,
        }
    );
}

#[test]
fn good_variants_verify() {
    let f = Fixture::new();
    let cases: &[(&str, Mutate)] = &[
        ("a raw r||s signature", |c| c.raw_signature = true),
        ("an unselected PCR altered", |c| {
            c.pcr_values[20].value[0] ^= 1
        }),
        ("a SHA-1 value beside", |c| {
            c.pcr_values.push(TpmPcrValue {
                index: 3,
                hash_algo: TpmHashAlgo::Sha1 as i32,
                value: vec![0; 20],
            })
        }),
        ("the values sent in another order", |c| {
            c.pcr_values.reverse()
        }),
    ];
    for (name, mutate) in cases {
        let mut case = f.case();
        mutate(&mut case);
        let verified = f.verify(&case).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.pcrs, selected(0..16), "{name}");
    }
}

#[test]
fn bad_quotes_are_refused_with_what_is_wrong() {
    let f = Fixture::new();
    #[rustfmt::skip]
    let cases: &[(&str, Mutate, QuoteError)] = &[
        ("another nonce", |c| c.attest.nonce = b"another".to_vec(), QuoteError::Nonce),
        ("a PCR value flipped", |c| c.pcr_values[3].value[0] ^= 1, QuoteError::PcrDigest),
        ("the signed digest altered", |c| c.attest.digest[0] ^= 1, QuoteError::PcrDigest),
        ("a PCR missing", |c| drop(c.pcr_values.remove(5)), QuoteError::PcrMissing(5)),
        ("a PCR only in SHA-1", |c| c.pcr_values[4].hash_algo = TpmHashAlgo::Sha1 as i32, QuoteError::PcrMissing(4)),
        ("a PCR twice", |c| c.pcr_values.push(c.pcr_values[2].clone()), QuoteError::PcrDuplicate(2)),
        ("a PCR short", |c| c.pcr_values[7].value.truncate(31), QuoteError::PcrLength { index: 7, len: 31 }),
        ("a bad signature", |c| c.tamper_signature = true, QuoteError::Signature),
        ("a bad raw signature", |c| (c.raw_signature, c.tamper_signature) = (true, true), QuoteError::Signature),
        ("another key's signature", |c| c.signer = c.other_key.clone(), QuoteError::Signature),
        ("trailing bytes", |c| c.attest.trailing = vec![0, 0], QuoteError::TrailingBytes(2)),
        ("another magic", |c| c.attest.magic = 0xff54_4348, QuoteError::Magic(0xff54_4348)),
        ("a certify, not a quote", |c| c.attest.kind = 0x8017, QuoteError::NotQuote(0x8017)),
        ("the SHA-1 bank", |c| c.attest.selections[0].0 = 0x0004, QuoteError::UnsupportedBank(0x0004)),
        ("a 9-byte bitmap", |c| c.attest.selections[0].1 = vec![0xff; 9], QuoteError::SelectSize(9)),
        ("9 selections", |c| c.attest.selections = vec![(0x000b, vec![0xff]); 9], QuoteError::TooManySelections(9)),
        ("a huge selection count", |c| c.attest.count = Some(u32::MAX), QuoteError::TooManySelections(u32::MAX)),
        ("SHA-256 twice", |c| c.attest.selections.push((0x000b, vec![0xff])), QuoteError::DuplicateBank),
        ("no PCR selected", |c| c.attest.selections[0].1 = vec![0, 0, 0], QuoteError::NoPcrs),
        ("no selection", |c| c.attest.selections.clear(), QuoteError::NoPcrs),
        ("PCR 40 selected, not sent", |c| c.attest.selections[0].1 = vec![0xff, 0xff, 0, 0, 0, 1], QuoteError::PcrMissing(40)),
        ("a selection declared, absent", |c| c.attest.count = Some(2), QuoteError::UnsupportedBank(0x0020)),
    ];
    for (name, mutate, expected) in cases {
        let mut case = f.case();
        mutate(&mut case);
        assert_eq!(f.verify(&case).as_ref(), Err(expected), "{name}");
    }
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let f = Fixture::new();
    let full = Encoded::good().encode();
    for len in 0..full.len() {
        let data = &full[..len];
        let mut q = quote(&f.case());
        q.attest_data = data.to_vec();
        q.signature = sign(&f.key, false, data);
        let result = verify(&q, NONCE, f.cert.as_bytes());
        assert!(
            matches!(result, Err(QuoteError::Truncated(_))),
            "length {len}: {result:?}"
        );
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_parser() {
    let full = Encoded::good().encode();
    for at in 0..full.len() {
        for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut data = full.clone();
            data[at] = byte;
            let _ = super::Attest::parse(&data);
        }
    }
}

#[test]
fn the_empty_form_is_recognised_and_not_verified() {
    let f = Fixture::new();
    let empty = ZAttestQuote {
        versions: quote(&f.case()).versions,
        ..ZAttestQuote::default()
    };
    assert!(is_empty(&empty));
    assert!(!is_empty(&quote(&f.case())));
    assert_eq!(
        verify(&empty, NONCE, f.cert.as_bytes()),
        Err(QuoteError::NoTpm)
    );
}

#[test]
fn only_p256_attestation_keys_are_accepted() {
    let f = Fixture::new();
    let q = quote(&f.case());
    let ed25519 = certificate(&rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key"));
    let p384 =
        certificate(&rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key"));
    assert_eq!(
        verify(&q, NONCE, ed25519.as_bytes()),
        Err(QuoteError::UnsupportedKey("Ed25519".into()))
    );
    assert_eq!(
        verify(&q, NONCE, p384.as_bytes()),
        Err(QuoteError::UnsupportedKey("ECDSA P-384".into()))
    );
    for garbage in [
        &b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"[..],
        b"",
        b"\x30\x03\x02\x01\x00",
    ] {
        assert!(
            matches!(verify(&q, NONCE, garbage), Err(QuoteError::Certificate(_))),
            "{garbage:?}"
        );
    }
    let der = x509_parser::pem::parse_x509_pem(f.cert.as_bytes())
        .expect("PEM")
        .1
        .contents;
    assert!(verify(&q, NONCE, &der).is_ok(), "DER is taken too");
}

#[test]
fn messages_say_what_to_do() {
    assert_eq!(
        QuoteError::Nonce.to_string(),
        "the quote answers another nonce: ask for a new one"
    );
    assert!(
        QuoteError::UnsupportedKey("Ed25519".into())
            .to_string()
            .contains("is Ed25519, not ECDSA P-256")
    );
}

fn template(eve: Option<&str>, pcrs: &[(u32, &str)]) -> PcrTemplate {
    PcrTemplate {
        eve_version: eve.map(String::from),
        firmware_version: None,
        pcrs: pcrs.iter().map(|(i, v)| (*i, v.to_string())).collect(),
    }
}

fn verified() -> Verified {
    Verified {
        pcrs: selected(0..16),
        eve_version: Some(EVE.into()),
        firmware_version: Some(FIRMWARE.into()),
        tpm_firmware_version: 0,
    }
}

#[test]
fn templates_match_as_adam_does() {
    let v = verified();
    let pcr0 = hex(&pcr(0));
    let upper = pcr0.to_uppercase();
    let cases: Vec<(&str, Vec<PcrTemplate>, Result<usize, TemplateMismatch>)> = vec![
        ("a match", vec![template(Some(EVE), &[(0, &pcr0)])], Ok(0)),
        (
            "upper-case hex",
            vec![template(Some(EVE), &[(0, &upper)])],
            Ok(0),
        ),
        (
            "a wildcard, also for an unquoted PCR",
            vec![template(None, &[(1, "*"), (20, "*")])],
            Ok(0),
        ),
        (
            "the first agreeing among those applying",
            vec![
                template(Some("13.0"), &[(0, &pcr0)]),
                template(Some(EVE), &[(0, "00")]),
                template(Some(EVE), &[(0, &pcr0)]),
            ],
            Ok(2),
        ),
        (
            "another firmware does not apply",
            vec![PcrTemplate {
                firmware_version: Some("9".into()),
                ..template(Some(EVE), &[])
            }],
            Err(TemplateMismatch::NoneApplies {
                eve_version: Some(EVE.into()),
                firmware_version: Some(FIRMWARE.into()),
            }),
        ),
        (
            "no template",
            vec![],
            Err(TemplateMismatch::NoneApplies {
                eve_version: Some(EVE.into()),
                firmware_version: Some(FIRMWARE.into()),
            }),
        ),
        (
            "the closest's lowest differing PCR",
            vec![
                template(Some(EVE), &[(1, "aa"), (2, "bb"), (3, "cc")]),
                template(None, &[(0, &pcr0), (4, "dd"), (5, "ee")]),
            ],
            Err(TemplateMismatch::Pcr {
                index: 4,
                wanted: "dd".into(),
                got: Some(hex(&pcr(4))),
                others: 1,
            }),
        ),
        (
            "a named PCR the quote does not cover",
            vec![template(Some(EVE), &[(20, &hex(&pcr(20)))])],
            Err(TemplateMismatch::Pcr {
                index: 20,
                wanted: hex(&pcr(20)),
                got: None,
                others: 0,
            }),
        ),
    ];
    for (name, templates, expected) in cases {
        let got = matching(&templates, &v).map(|t| {
            templates
                .iter()
                .position(|x| std::ptr::eq(x, t))
                .expect("one of them")
        });
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn template_mismatches_name_what_differs() {
    let v = verified();
    let templates = [template(Some(EVE), &[(3, "AB")])];
    let message = matching(&templates, &v).expect_err("differs").to_string();
    assert!(
        message.starts_with(&format!(
            "PCR 3 is {}, but the closest PCR template wants AB",
            hex(&pcr(3))
        )),
        "{message}"
    );
    let other = Verified {
        eve_version: Some("15.0".into()),
        firmware_version: None,
        ..v
    };
    let message = matching(&templates, &other)
        .expect_err("none applies")
        .to_string();
    assert_eq!(
        message,
        "no PCR template applies to EVE version 15.0: add a template for this version"
    );
}
