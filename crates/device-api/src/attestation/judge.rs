//! How a quote is judged: verified ([`crate::quote`]), matched against the namespace's PCR
//! templates, and let through or not by the attestation policy. Pure: the handler gathers what
//! it reads (the nonce's validity, the attestation certificate, the templates) and writes what
//! this decides.

use std::collections::BTreeMap;

use eve_api::attest::{ZAttestQuote, ZAttestResponseCode};

use crate::quote::{self, PcrTemplate, QuoteError, Verified};

/// The name of the ConfigMap of a namespace's PCR templates: each key a template, its value
/// YAML (`eveVersion`, `firmwareVersion`, `pcrs: {INDEX: HEX or "*"}`).
pub const TEMPLATES: &str = "adamant-pcr-templates";

/// How quotes are judged (the annotation `eve.lfedge.org/attestation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Every device is let through; the outcome is recorded.
    Record,
    /// A device with a TPM must send a quote that verifies and matches a PCR template; one
    /// without a TPM is let through.
    Enforce,
    /// As `Enforce`, and a device without a TPM is refused.
    RequireTpm,
}

impl Policy {
    /// The policy an annotation value names; `None` for an unknown value.
    pub fn parse(value: &str) -> Option<Policy> {
        match value.trim() {
            "record" => Some(Policy::Record),
            "enforce" => Some(Policy::Enforce),
            "require-tpm" => Some(Policy::RequireTpm),
            _ => None,
        }
    }

    /// Its name, as the annotation spells it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Record => "record",
            Policy::Enforce => "enforce",
            Policy::RequireTpm => "require-tpm",
        }
    }

    /// Whether a device with `outcome` is let through.
    pub fn admits(self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Policy::Record, _) => true,
            (_, Outcome::Verified { template, .. }) => template.is_some(),
            (Policy::Enforce, Outcome::NoTpm) => true,
            _ => false,
        }
    }
}

/// What a quote turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It verifies; `template` is the PCR template its PCRs match, if any.
    Verified {
        /// What it vouches for.
        verified: Verified,
        /// The matching template's name.
        template: Option<String>,
        /// Why none matches.
        mismatch: Option<String>,
    },
    /// The device has no TPM: nothing to verify.
    NoTpm,
    /// It does not verify.
    Failed {
        /// What the device is answered (it asks for a new nonce on `NONCE_MISMATCH`,
        /// `NO_CERT_FOUND` and `QUOTE_FAILED`).
        code: ZAttestResponseCode,
        /// Why, for people.
        message: String,
    },
}

impl Outcome {
    /// `Verified`, `NoTPM` or `Failed`, as `status.attestation.outcome` says it.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Verified { .. } => "Verified",
            Outcome::NoTpm => "NoTPM",
            Outcome::Failed { .. } => "Failed",
        }
    }
}

/// The templates of a `adamant-pcr-templates` ConfigMap's data, by name; a template that does
/// not read is reported, not used.
pub fn templates(data: &BTreeMap<String, String>) -> (Vec<(String, PcrTemplate)>, Vec<String>) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Written {
        #[serde(default)]
        eve_version: Option<String>,
        #[serde(default)]
        firmware_version: Option<String>,
        pcrs: BTreeMap<u32, String>,
    }
    let mut read = Vec::new();
    let mut broken = Vec::new();
    for (name, text) in data {
        match serde_yaml::from_str::<Written>(text) {
            Ok(w) => read.push((
                name.clone(),
                PcrTemplate {
                    eve_version: w.eve_version,
                    firmware_version: w.firmware_version,
                    pcrs: w.pcrs,
                },
            )),
            Err(e) => broken.push(format!("template {name} does not read: {e}")),
        }
    }
    (read, broken)
}

/// The outcome of `quote`: `nonce` is its `extraData` when the integrity keeper found it a
/// nonce issued to the device and not answered before (`Err` with why otherwise), `key` the
/// attestation key's certificate the device uploaded, `tpm` whether its uploaded certificates
/// say it has a TPM, `templates` the namespace's.
pub fn judge(
    quote: &ZAttestQuote,
    nonce: Result<&[u8], String>,
    key: Result<&[u8], &str>,
    tpm: bool,
    templates: &[(String, PcrTemplate)],
) -> Outcome {
    if quote::is_empty(quote) {
        if let Err(why) = nonce {
            return Outcome::Failed {
                code: ZAttestResponseCode::NonceMismatch,
                message: format!(
                    "the device sent its quote without asking for a nonce first ({why}): it asks for one"
                ),
            };
        }
        if tpm {
            return Outcome::Failed {
                code: ZAttestResponseCode::QuoteFailed,
                message: "the device has a TPM (its attestation key is in one) but sent no quote: its TPM failed to quote; see the device's tpmmgr logs".into(),
            };
        }
        return Outcome::NoTpm;
    }
    let nonce = match nonce {
        Ok(nonce) => nonce,
        Err(why) => {
            return Outcome::Failed {
                code: ZAttestResponseCode::NonceMismatch,
                message: format!(
                    "the quote answers no nonce issued to the device ({why}): the device asks for a new one"
                ),
            };
        }
    };
    let key = match key {
        Ok(key) => key,
        Err(why) => {
            return Outcome::Failed {
                code: ZAttestResponseCode::NoCertFound,
                message: format!("no attestation key's certificate to check the quote with: {why}"),
            };
        }
    };
    let verified = match quote::verify(quote, nonce, key) {
        Ok(verified) => verified,
        Err(e) => {
            let code = match e {
                QuoteError::Nonce => ZAttestResponseCode::NonceMismatch,
                QuoteError::Certificate(_) | QuoteError::UnsupportedKey(_) => {
                    ZAttestResponseCode::NoCertFound
                }
                _ => ZAttestResponseCode::QuoteFailed,
            };
            return Outcome::Failed {
                code,
                message: e.to_string(),
            };
        }
    };
    let found: Vec<PcrTemplate> = templates.iter().map(|(_, t)| t.clone()).collect();
    match quote::matching(&found, &verified) {
        Ok(matched) => {
            let name = templates
                .iter()
                .find(|(_, t)| t == matched)
                .map(|(n, _)| n.clone());
            Outcome::Verified {
                verified,
                template: name,
                mismatch: None,
            }
        }
        Err(mismatch) => Outcome::Verified {
            verified,
            template: None,
            mismatch: Some(if templates.is_empty() {
                format!(
                    "no PCR template: approve the PCRs in status.attestation.pcrs by adding them to the ConfigMap {TEMPLATES}"
                )
            } else {
                mismatch.to_string()
            }),
        },
    }
}

/// The response code for a device not let through with `outcome`.
pub fn refusal_code(outcome: &Outcome) -> ZAttestResponseCode {
    match outcome {
        Outcome::Failed { code, .. } => *code,
        // A missing template or no TPM: the device retries with a new nonce, and is let
        // through once an operator approves its PCRs or changes the policy.
        _ => ZAttestResponseCode::QuoteFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(template: Option<&str>) -> Outcome {
        Outcome::Verified {
            verified: Verified {
                pcrs: BTreeMap::new(),
                eve_version: None,
                firmware_version: None,
                tpm_firmware_version: 0,
            },
            template: template.map(str::to_owned),
            mismatch: None,
        }
    }

    #[test]
    fn each_policy_lets_through_what_it_says() {
        let failed = Outcome::Failed {
            code: ZAttestResponseCode::NonceMismatch,
            message: String::new(),
        };
        let table = [
            // (policy, outcome, let through)
            (Policy::Record, &failed, true),
            (Policy::Record, &Outcome::NoTpm, true),
            (Policy::Enforce, &failed, false),
            (Policy::Enforce, &Outcome::NoTpm, true),
            (Policy::Enforce, &verified(None), false),
            (Policy::Enforce, &verified(Some("eve-14")), true),
            (Policy::RequireTpm, &Outcome::NoTpm, false),
            (Policy::RequireTpm, &verified(Some("eve-14")), true),
            (Policy::RequireTpm, &failed, false),
        ];
        for (policy, outcome, expected) in table {
            assert_eq!(policy.admits(outcome), expected, "{policy:?} {outcome:?}");
        }
    }

    #[test]
    fn an_empty_quote_is_no_tpm_only_for_a_device_without_one() {
        let empty = ZAttestQuote::default();
        assert_eq!(
            judge(&empty, Ok(b""), Err("none"), false, &[]),
            Outcome::NoTpm
        );
        assert_eq!(
            judge(&empty, Err("x".into()), Err("none"), false, &[]).name(),
            "Failed"
        );
        assert!(matches!(
            judge(&empty, Ok(b"n"), Err("none"), true, &[]),
            Outcome::Failed {
                code: ZAttestResponseCode::QuoteFailed,
                ..
            }
        ));
    }

    #[test]
    fn a_quote_that_answers_no_nonce_is_a_nonce_mismatch() {
        let quote = ZAttestQuote {
            attest_data: vec![1, 2, 3],
            signature: vec![4],
            ..ZAttestQuote::default()
        };
        let outcome = judge(&quote, Err("forged".into()), Err("none"), true, &[]);
        assert!(matches!(
            outcome,
            Outcome::Failed {
                code: ZAttestResponseCode::NonceMismatch,
                ..
            }
        ));
        assert_eq!(
            judge(&quote, Ok(b"n"), Err("none"), true, &[]).name(),
            "Failed",
            "no attestation certificate"
        );
    }

    #[test]
    fn templates_read_from_yaml_and_broken_ones_are_named() {
        let data: BTreeMap<String, String> = [
            (
                "eve-14".to_string(),
                "eveVersion: 14.5.0-kvm-amd64\npcrs: {0: 'ab', 7: '*'}\n".to_string(),
            ),
            ("typo".to_string(), "pcr: {0: ab}\n".to_string()),
        ]
        .into();
        let (read, broken) = templates(&data);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.pcrs.get(&7).map(String::as_str), Some("*"));
        assert_eq!(broken.len(), 1);
        assert!(
            broken[0].starts_with("template typo does not read"),
            "{broken:?}"
        );
    }
}
