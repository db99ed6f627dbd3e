//! A simulated device's own keys beyond its identity, as EVE makes them: an ECDH key whose
//! certificate the device key signs (credentials are encrypted for it), and, for a device with
//! a TPM, an attestation key that signs quotes of simulated PCRs. The device's side of
//! object-level encryption (opening a `CipherBlock`) is here too.

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use eve_api::Message;
use eve_api::attest::{
    AttestVersionInfo, AttestVersionType, TpmHashAlgo, TpmPcrValue, ZAttestQuote,
};
use eve_api::certs::{ZCert, ZCertAttr, ZCertType};
use eve_api::common::{CipherBlock, EncryptionBlock, HashAlgorithm};
use eve_api::envelope::{Signer, sha256};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePrivateKey;

use crate::{Identity, SimError};

/// The PCRs a simulated TPM quotes (EVE quotes 0 to 15).
pub const QUOTED_PCRS: u32 = 16;

/// The value of PCR `index` on a simulated TPM.
pub fn pcr(index: u32) -> [u8; 32] {
    sha256(format!("simulated PCR {index}").as_bytes())
}

/// The EVE version a simulated device reports with its quotes.
pub const EVE_VERSION: &str = "0.0.0-sim-kvm-amd64";

/// A device's ECDH key and, with a TPM, its attestation key.
pub struct Keys {
    ecdh: p256::SecretKey,
    ecdh_certificate: String,
    attestation: Option<(Signer, String)>,
}

fn identity_error(e: impl std::fmt::Display) -> SimError {
    SimError::Identity(e.to_string())
}

impl Keys {
    /// Keys certified by `identity` (the device's key signs their certificates); an
    /// attestation key too when `tpm`.
    pub fn new(identity: &Identity, tpm: bool) -> Result<Keys, SimError> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let device =
            pki::Authority::from_pem(&text(&identity.certificate_pem), &text(&identity.key_pem))
                .map_err(identity_error)?;
        let ecdh = device
            .issue_leaf("ecdh", pki::Leaf::KeyAgreement)
            .map_err(identity_error)?;
        let attestation = if tpm {
            let key = device
                .issue_leaf("attestation", pki::Leaf::Signing)
                .map_err(identity_error)?;
            let signer = Signer::device(key.key_pem.as_bytes(), key.certificate_pem.as_bytes())
                .map_err(identity_error)?;
            Some((signer, key.certificate_pem))
        } else {
            None
        };
        Ok(Keys {
            ecdh: p256::SecretKey::from_pkcs8_pem(&ecdh.key_pem).map_err(identity_error)?,
            ecdh_certificate: ecdh.certificate_pem,
            attestation,
        })
    }

    /// The certificates the device uploads (`ATTEST_REQ_CERT`), each named by the first 16
    /// bytes of SHA-256 of its PEM, as EVE names them.
    pub fn certificates(&self) -> Vec<ZCert> {
        let zcert = |kind: ZCertType, pem: &str, tpm: bool| ZCert {
            hash_algo: HashAlgorithm::Sha25616bytes as i32,
            cert_hash: sha256(pem.as_bytes())[..16].to_vec(),
            r#type: kind as i32,
            cert: pem.as_bytes().to_vec(),
            attributes: Some(ZCertAttr {
                is_mutable: false,
                is_tpm: tpm,
            }),
            meta_data_items: Vec::new(),
        };
        let mut certs = vec![zcert(
            ZCertType::CertTypeDeviceEcdhExchange,
            &self.ecdh_certificate,
            false,
        )];
        if let Some((_, pem)) = &self.attestation {
            certs.push(zcert(ZCertType::CertTypeDeviceRestrictedSigning, pem, true));
        }
        certs
    }

    /// Whether the device has a TPM.
    pub fn tpm(&self) -> bool {
        self.attestation.is_some()
    }

    /// A quote of PCRs 0 to 15 answering `nonce`, signed by the attestation key (an empty
    /// quote without a TPM); `pcrs` replaces values before quoting.
    pub fn quote(&self, nonce: &[u8], pcrs: &[(u32, [u8; 32])]) -> ZAttestQuote {
        let versions = vec![AttestVersionInfo {
            version_type: AttestVersionType::Eve as i32,
            version: EVE_VERSION.into(),
        }];
        let Some((signer, _)) = &self.attestation else {
            return ZAttestQuote {
                versions,
                ..ZAttestQuote::default()
            };
        };
        let values: Vec<[u8; 32]> = (0..QUOTED_PCRS)
            .map(|i| {
                pcrs.iter()
                    .find(|(index, _)| *index == i)
                    .map_or_else(|| pcr(i), |(_, v)| *v)
            })
            .collect();
        // TPMS_ATTEST of a quote (TPM 2.0 part 2, 10.12.12), big-endian.
        let mut attest = Vec::new();
        attest.extend_from_slice(&0xff54_4347u32.to_be_bytes());
        attest.extend_from_slice(&0x8018u16.to_be_bytes());
        let signer_name = [0u8; 34];
        attest.extend_from_slice(&(signer_name.len() as u16).to_be_bytes());
        attest.extend_from_slice(&signer_name);
        attest.extend_from_slice(&(nonce.len() as u16).to_be_bytes());
        attest.extend_from_slice(nonce);
        attest.extend_from_slice(&[0; 17]);
        attest.extend_from_slice(&0u64.to_be_bytes());
        // One selection: SHA-256, PCRs 0 to 15.
        attest.extend_from_slice(&1u32.to_be_bytes());
        attest.extend_from_slice(&0x000bu16.to_be_bytes());
        attest.extend_from_slice(&[3, 0xff, 0xff, 0x00]);
        let digest = sha256(&values.concat());
        attest.extend_from_slice(&(digest.len() as u16).to_be_bytes());
        attest.extend_from_slice(&digest);
        ZAttestQuote {
            signature: signer.sign(&attest),
            attest_data: attest,
            pcr_values: values
                .iter()
                .enumerate()
                .map(|(i, v)| TpmPcrValue {
                    index: i as u32,
                    hash_algo: TpmHashAlgo::Sha256 as i32,
                    value: v.to_vec(),
                })
                .collect(),
            versions,
            tpm_binary_event_log: Vec::new(),
        }
    }

    /// Opens `block` as EVE does: ECDH of the device's ECDH key with the controller's
    /// (`controller`, SEC1), SHA-256 of the shared point's X and Y as the AES-256 key, CFB.
    pub fn open(
        &self,
        controller: &[u8],
        block: &CipherBlock,
    ) -> Result<EncryptionBlock, SimError> {
        let bad = |why: &str| SimError::Response(format!("a cipher block does not open: {why}"));
        let public =
            p256::PublicKey::from_sec1_bytes(controller).map_err(|_| bad("not a P-256 key"))?;
        let shared = (public.to_projective() * *self.ecdh.to_nonzero_scalar()).to_affine();
        let key = sha256(&shared.to_encoded_point(false).as_bytes()[1..]);
        let iv: [u8; 16] = block
            .initial_value
            .as_slice()
            .try_into()
            .map_err(|_| bad("its IV is not 16 bytes"))?;
        let mut data = block.cipher_data.clone();
        cfb_mode::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into()).decrypt(&mut data);
        if sha256(&data).as_slice() != block.clear_text_sha256.as_slice() {
            return Err(bad("clearTextSha256 differs"));
        }
        EncryptionBlock::decode(data.as_slice()).map_err(|_| bad("not an EncryptionBlock"))
    }
}
