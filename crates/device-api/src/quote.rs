//! TPM 2.0 quotes as EVE sends them (`ZAttestQuote`), verified: the TPM's signed `TPMS_ATTEST`
//! (TPM 2.0 part 2, 10.12) read strictly, its signature checked with the attestation key's
//! certificate (ECDSA P-256), its `extraData` compared with the nonce issued, and the PCR values
//! sent recomputed into the digest the TPM signed; then [`matching`] finds the PCR template the
//! verified values agree with. Pure: no I/O, no clock, and no panic on any input.

use std::collections::BTreeMap;

use eve_api::attest::{AttestVersionType, TpmHashAlgo, ZAttestQuote};
use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

#[cfg(test)]
mod tests;

/// `TPM_GENERATED_VALUE`: the first four bytes of whatever a TPM signs.
const MAGIC: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
const ST_ATTEST_QUOTE: u16 = 0x8018;
/// `TPM_ALG_SHA256`.
const ALG_SHA256: u16 = 0x000b;
/// Banks (and bytes of a bank's bitmap) accepted in a PCR selection.
const MAX_SELECTIONS: u32 = 8;
const MAX_SELECT_SIZE: u8 = 8;
/// Bytes of a SHA-256 PCR value.
const PCR_LEN: usize = 32;

/// What a verified quote vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The SHA-256 PCR values the TPM signed, by index: the selected ones only (values sent but
    /// not selected are not vouched for and are left out).
    pub pcrs: BTreeMap<u32, Vec<u8>>,
    /// The EVE version the device says it runs (`ATTEST_VERSION_TYPE_EVE`; not signed by the
    /// TPM, but measured into the PCRs the templates check).
    pub eve_version: Option<String>,
    /// The firmware version the device says it runs (`ATTEST_VERSION_TYPE_FIRMWARE`; not
    /// signed by the TPM).
    pub firmware_version: Option<String>,
    /// The TPM's own firmware version (`TPMS_ATTEST.firmwareVersion`, signed).
    pub tpm_firmware_version: u64,
}

/// Why a quote does not verify. The messages end up in a Device's status and in Events, so each
/// says what is wrong and, where there is something to do, what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The quote of a device without a TPM: no signed data at all.
    #[error("the quote carries no TPM data (the device has no TPM): there is nothing to verify")]
    NoTpm,
    /// The attestation certificate cannot be read.
    #[error(
        "the device's attestation certificate cannot be read ({0}): the device must upload its \
         attestation certificate again"
    )]
    Certificate(String),
    /// The attestation certificate's key is not ECDSA P-256.
    #[error(
        "the attestation certificate's key is {0}, not ECDSA P-256 as an EVE TPM's attestation \
         key is: the certificate on record is not the TPM's attestation key"
    )]
    UnsupportedKey(String),
    /// The signature does not verify with the attestation key.
    #[error(
        "the quote's signature does not verify with the device's attestation key: the quote was \
         not made by this device's TPM, or the attestation certificate on record is stale"
    )]
    Signature,
    /// The signed data ends before a field does.
    #[error("the quote's signed data ends inside its {0}: the quote is malformed")]
    Truncated(&'static str),
    /// Bytes follow the signed data's last field.
    #[error("the quote's signed data has {0} bytes after its end: the quote is malformed")]
    TrailingBytes(usize),
    /// The signed data does not start with `TPM_GENERATED_VALUE`.
    #[error(
        "the quote's signed data starts with {0:#010x}, not TPM_GENERATED_VALUE (0xff544347): \
         it was not made by a TPM"
    )]
    Magic(u32),
    /// The signed data is an attestation of another kind than a quote.
    #[error(
        "the quote's signed data is of type {0:#06x}, not a quote (TPM_ST_ATTEST_QUOTE, 0x8018)"
    )]
    NotQuote(u16),
    /// More PCR banks are selected than accepted.
    #[error("the quote selects PCRs in {0} banks; at most 8 are accepted")]
    TooManySelections(u32),
    /// A PCR bank other than SHA-256 is selected.
    #[error(
        "the quote selects PCRs of hash algorithm {0:#06x}; only the SHA-256 bank (0x000b) is \
         verified: the device must quote its SHA-256 bank"
    )]
    UnsupportedBank(u16),
    /// A PCR selection's bitmap is longer than accepted.
    #[error("the quote's PCR selection is {0} bytes long; at most 8 are accepted")]
    SelectSize(u8),
    /// The SHA-256 bank is selected more than once.
    #[error("the quote selects the SHA-256 PCR bank more than once: the quote is malformed")]
    DuplicateBank,
    /// No PCR is selected: the quote vouches for nothing.
    #[error("the quote selects no PCRs, so it vouches for nothing: the device must quote its PCRs")]
    NoPcrs,
    /// `extraData` is not the nonce issued.
    #[error("the quote answers another nonce: ask for a new one")]
    Nonce,
    /// A selected PCR's SHA-256 value is not among the values sent.
    #[error(
        "PCR {0} is covered by the quote but its SHA-256 value was not sent: the device must \
         send every PCR it quotes"
    )]
    PcrMissing(u32),
    /// A selected PCR's SHA-256 value is sent more than once.
    #[error("PCR {0}'s SHA-256 value was sent more than once: the quote is malformed")]
    PcrDuplicate(u32),
    /// A selected PCR's SHA-256 value is not 32 bytes.
    #[error("PCR {index}'s SHA-256 value is {len} bytes, not 32: the quote is malformed")]
    PcrLength {
        /// The PCR.
        index: u32,
        /// The bytes sent.
        len: usize,
    },
    /// The PCR values sent do not hash to the digest the TPM signed.
    #[error(
        "the PCR values sent do not match the digest the TPM signed: they were altered, or read \
         at another time than the quote was made; the device should attest again"
    )]
    PcrDigest,
}

/// Whether `quote` is the form a device without a TPM sends: no signed data, no signature, no
/// PCR values (only versions).
pub fn is_empty(quote: &ZAttestQuote) -> bool {
    quote.attest_data.is_empty() && quote.signature.is_empty() && quote.pcr_values.is_empty()
}

/// Verifies `quote` as the answer to `nonce`, signed by the key of `attestation_cert_pem` (the
/// certificate the device uploaded as `CERT_TYPE_DEVICE_RESTRICTED_SIGNING`, PEM; DER is taken
/// too): the signature first, then the signed data (read strictly), the nonce, and the PCR
/// values sent against the digest the TPM signed.
pub fn verify(
    quote: &ZAttestQuote,
    nonce: &[u8],
    attestation_cert_pem: &[u8],
) -> Result<Verified, QuoteError> {
    if is_empty(quote) {
        return Err(QuoteError::NoTpm);
    }
    let key = p256_key(attestation_cert_pem)?;
    let key_asn1 = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key);
    let key_fixed = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key);
    let signed = key_asn1
        .verify(&quote.attest_data, &quote.signature)
        .is_ok()
        || (quote.signature.len() == 64
            && key_fixed
                .verify(&quote.attest_data, &quote.signature)
                .is_ok());
    if !signed {
        return Err(QuoteError::Signature);
    }
    let attest = Attest::parse(&quote.attest_data)?;
    if attest.extra_data != nonce {
        return Err(QuoteError::Nonce);
    }
    let pcrs = selected_values(quote, &attest.selected)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for value in pcrs.values() {
        digest.update(value);
    }
    if digest.finish().as_ref() != attest.pcr_digest {
        return Err(QuoteError::PcrDigest);
    }
    let version = |kind: AttestVersionType| {
        quote
            .versions
            .iter()
            .find(|v| v.version_type == kind as i32 && !v.version.is_empty())
            .map(|v| v.version.clone())
    };
    Ok(Verified {
        pcrs,
        eve_version: version(AttestVersionType::Eve),
        firmware_version: version(AttestVersionType::Firmware),
        tpm_firmware_version: attest.firmware_version,
    })
}

/// The SHA-256 values sent for the `selected` PCRs (ascending), each exactly once and 32 bytes.
fn selected_values(
    quote: &ZAttestQuote,
    selected: &[u32],
) -> Result<BTreeMap<u32, Vec<u8>>, QuoteError> {
    let mut values = BTreeMap::new();
    for &index in selected {
        let mut sent = quote
            .pcr_values
            .iter()
            .filter(|p| p.index == index && p.hash_algo == TpmHashAlgo::Sha256 as i32);
        let value = sent.next().ok_or(QuoteError::PcrMissing(index))?;
        if sent.next().is_some() {
            return Err(QuoteError::PcrDuplicate(index));
        }
        if value.value.len() != PCR_LEN {
            let len = value.value.len();
            return Err(QuoteError::PcrLength { index, len });
        }
        values.insert(index, value.value.clone());
    }
    Ok(values)
}

/// The uncompressed P-256 point of the certificate's key.
fn p256_key(cert: &[u8]) -> Result<Vec<u8>, QuoteError> {
    let unreadable = |e: &dyn std::fmt::Display| QuoteError::Certificate(e.to_string());
    let der = match x509_parser::pem::parse_x509_pem(cert) {
        Ok((_, pem)) => pem.contents,
        Err(_) if !cert.starts_with(b"-----") => cert.to_vec(),
        Err(e) => return Err(unreadable(&e)),
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| unreadable(&e))?;
    let info = cert.public_key();
    let algorithm = info.algorithm.algorithm.to_id_string();
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    match (algorithm.as_str(), curve.as_deref()) {
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => {
            Ok(info.subject_public_key.data.to_vec())
        }
        ("1.2.840.10045.2.1", curve) => Err(QuoteError::UnsupportedKey(match curve {
            Some("1.3.132.0.34") => "ECDSA P-384".to_string(),
            Some("1.3.132.0.35") => "ECDSA P-521".to_string(),
            Some(other) => format!("ECDSA on curve {other}"),
            None => "ECDSA on an unnamed curve".to_string(),
        })),
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10", _) => {
            Err(QuoteError::UnsupportedKey("RSA".to_string()))
        }
        ("1.3.101.112", _) => Err(QuoteError::UnsupportedKey("Ed25519".to_string())),
        ("1.3.101.113", _) => Err(QuoteError::UnsupportedKey("Ed448".to_string())),
        (other, _) => Err(QuoteError::UnsupportedKey(format!("of algorithm {other}"))),
    }
}

/// What is read of a `TPMS_ATTEST` of type quote.
#[derive(Debug)]
struct Attest<'a> {
    extra_data: &'a [u8],
    firmware_version: u64,
    /// The SHA-256 PCRs selected, ascending.
    selected: Vec<u32>,
    pcr_digest: &'a [u8],
}

/// Big-endian fields read off a byte string, each bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], QuoteError> {
        if n > self.bytes.len() {
            return Err(QuoteError::Truncated(field));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], QuoteError> {
        self.take(N, field)?
            .try_into()
            .map_err(|_| QuoteError::Truncated(field))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, QuoteError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, QuoteError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, QuoteError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, QuoteError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A `TPM2B_*`: a 2-byte size and that many bytes.
    fn sized(&mut self, field: &'static str) -> Result<&'a [u8], QuoteError> {
        let size = self.u16(field)?;
        self.take(usize::from(size), field)
    }
}

impl<'a> Attest<'a> {
    /// Reads `bytes` as a `TPMS_ATTEST` of type quote, to its last byte.
    fn parse(bytes: &'a [u8]) -> Result<Attest<'a>, QuoteError> {
        let mut r = Reader { bytes };
        let magic = r.u32("magic")?;
        if magic != MAGIC {
            return Err(QuoteError::Magic(magic));
        }
        let kind = r.u16("type")?;
        if kind != ST_ATTEST_QUOTE {
            return Err(QuoteError::NotQuote(kind));
        }
        r.sized("qualified signer")?;
        let extra_data = r.sized("extra data")?;
        r.take(17, "clock info")?;
        let firmware_version = r.u64("firmware version")?;
        let count = r.u32("PCR selection count")?;
        if count > MAX_SELECTIONS {
            return Err(QuoteError::TooManySelections(count));
        }
        let mut sha256: Option<&[u8]> = None;
        for _ in 0..count {
            let bank = r.u16("PCR selection hash algorithm")?;
            if bank != ALG_SHA256 {
                return Err(QuoteError::UnsupportedBank(bank));
            }
            let size = r.u8("PCR selection size")?;
            if size > MAX_SELECT_SIZE {
                return Err(QuoteError::SelectSize(size));
            }
            let bitmap = r.take(usize::from(size), "PCR selection bitmap")?;
            if sha256.replace(bitmap).is_some() {
                return Err(QuoteError::DuplicateBank);
            }
        }
        let pcr_digest = r.sized("PCR digest")?;
        if !r.bytes.is_empty() {
            return Err(QuoteError::TrailingBytes(r.bytes.len()));
        }
        let selected: Vec<u32> = (0u32..)
            .zip(sha256.unwrap_or_default().iter())
            .flat_map(|(byte, bits)| {
                (0..8u32)
                    .filter(move |bit| bits & (1 << bit) != 0)
                    .map(move |bit| byte * 8 + bit)
            })
            .collect();
        if selected.is_empty() {
            return Err(QuoteError::NoPcrs);
        }
        Ok(Attest {
            extra_data,
            firmware_version,
            selected,
            pcr_digest,
        })
    }
}

/// The PCR values expected of devices running some EVE (and firmware) version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PcrTemplate {
    /// The EVE version this template is for; `None`: any.
    pub eve_version: Option<String>,
    /// The firmware version this template is for; `None`: any.
    pub firmware_version: Option<String>,
    /// The expected values by PCR index: hex (any case), or `"*"` for any value (or none).
    pub pcrs: BTreeMap<u32, String>,
}

/// Why no PCR template accepts a verified quote.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateMismatch {
    /// No template is for the quote's EVE and firmware versions.
    #[error(
        "no PCR template applies to EVE version {}{}: add a template for this version",
        or_unsaid(.eve_version),
        .firmware_version.as_ref().map(|f| format!(" with firmware {f}")).unwrap_or_default()
    )]
    NoneApplies {
        /// The quote's EVE version.
        eve_version: Option<String>,
        /// The quote's firmware version.
        firmware_version: Option<String>,
    },
    /// The closest template (the fewest PCRs differing) disagrees on a PCR.
    #[error(
        "PCR {index} is {}, but the closest PCR template wants {wanted}{}: if the device's software \
         changed on purpose, add or update a template for it",
        .got.as_deref().unwrap_or("not covered by the quote"),
        if *.others > 0 { format!(" (and {others} other PCRs differ)") } else { String::new() }
    )]
    Pcr {
        /// The PCR (the lowest-numbered one that differs).
        index: u32,
        /// What the template wants (hex).
        wanted: String,
        /// What the quote vouches for (hex), `None` when the PCR is not among its PCRs.
        got: Option<String>,
        /// How many more PCRs differ in that template.
        others: usize,
    },
}

fn or_unsaid(version: &Option<String>) -> &str {
    version.as_deref().unwrap_or("(not said by the device)")
}

/// The first template, among those applying to `verified`'s EVE and firmware versions (a
/// template's unset version applies to any), that agrees with `verified` on every PCR it names.
pub fn matching<'a>(
    templates: &'a [PcrTemplate],
    verified: &Verified,
) -> Result<&'a PcrTemplate, TemplateMismatch> {
    let applies = |wanted: &Option<String>, got: &Option<String>| {
        wanted.is_none() || wanted.as_deref() == got.as_deref()
    };
    let mut closest: Option<Vec<(u32, &String, Option<String>)>> = None;
    for template in templates.iter().filter(|t| {
        applies(&t.eve_version, &verified.eve_version)
            && applies(&t.firmware_version, &verified.firmware_version)
    }) {
        let differ: Vec<_> = template
            .pcrs
            .iter()
            .filter(|(_, wanted)| wanted.as_str() != "*")
            .filter_map(|(index, wanted)| {
                let got = verified.pcrs.get(index).map(|v| crate::hex::encode(v));
                match &got {
                    Some(got) if got.eq_ignore_ascii_case(wanted.trim()) => None,
                    _ => Some((*index, wanted, got)),
                }
            })
            .collect();
        if differ.is_empty() {
            return Ok(template);
        }
        if closest.as_ref().is_none_or(|c| differ.len() < c.len()) {
            closest = Some(differ);
        }
    }
    match closest.and_then(|c| {
        let others = c.len().saturating_sub(1);
        c.into_iter().next().map(|first| (first, others))
    }) {
        Some(((index, wanted, got), others)) => Err(TemplateMismatch::Pcr {
            index,
            wanted: wanted.clone(),
            got,
            others,
        }),
        None => Err(TemplateMismatch::NoneApplies {
            eve_version: verified.eve_version.clone(),
            firmware_version: verified.firmware_version.clone(),
        }),
    }
}
