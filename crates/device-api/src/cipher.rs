//! Object-level encryption, as EVE decrypts it: credentials (data store keys, Wi-Fi passwords)
//! travel in a `CipherBlock` that only the device can open, so they are neither in the clear in
//! the configuration the device checkpoints nor in the DeviceConfig object.
//!
//! The scheme (EVE's `SA_AES_256_CFB` with `KEA_ECDH`): a P-256 ECDH between the controller's
//! ECDH key (its certificate is served on `GET certs`) and the device's ECDH certificate (which
//! the device uploads on `attest`); the AES-256 key is SHA-256 of the shared point's X and Y
//! coordinates (32 bytes each); the plaintext, a marshalled `EncryptionBlock`, is encrypted
//! with AES-256-CFB (128-bit segments, no padding) under a 16-byte IV; `clearTextSha256` is
//! SHA-256 of the plaintext. A `CipherContext` names the pair of certificates by their hashes:
//! the controller certificate's as `certs` serves it, the device's as it uploaded it.
//!
//! The IV is derived from the key and the plaintext, not drawn at random: the same objects give
//! the same configuration, so the same hash, across recompositions and replicas (a random IV
//! would make every device fetch its configuration again whenever anything changed). Equal
//! credentials for one device give equal blocks; nothing else is revealed.

use std::collections::HashMap;
use std::sync::Mutex;

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use base64::Engine;
use eve_api::Message;
use eve_api::common::{
    CipherBlock, CipherContext, EncryptionBlock, EncryptionScheme, HashAlgorithm, KeyExchangeScheme,
};
use eve_api::envelope::sha256;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePrivateKey;

type Encryptor = cfb_mode::Encryptor<aes::Aes256>;
type Decryptor = cfb_mode::Decryptor<aes::Aes256>;

/// Derived keys kept, by device public key; past this many the cache starts over.
const KEYS_KEPT: usize = 200_000;

/// Why encryption for a device, or decryption on one, cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    /// The controller's ECDH key does not load.
    #[error("the controller's ECDH key is not a P-256 PKCS#8 PEM key: {0}")]
    ControllerKey(String),
    /// A device's ECDH public key is not a P-256 point.
    #[error("the device's ECDH key is not a P-256 public key: {0}")]
    DeviceKey(String),
    /// A cipher block cannot be opened.
    #[error("the cipher block does not decrypt: {0}")]
    Open(&'static str),
}

/// A device's ECDH key, as encryption for it needs it.
#[derive(Clone, Debug)]
pub struct DeviceKey {
    public: p256::PublicKey,
    /// The device's certificate hash (its `certHash`).
    hash: Vec<u8>,
}

impl DeviceKey {
    /// From a Device's `status.ecdhCertificate`.
    pub fn from_status(certificate: &eve_model::EcdhCertificate) -> Result<DeviceKey, CipherError> {
        let point = base64::engine::general_purpose::STANDARD
            .decode(&certificate.public_key)
            .map_err(|e| CipherError::DeviceKey(e.to_string()))?;
        let hash = crate::hex::decode(&certificate.hash)
            .ok_or_else(|| CipherError::DeviceKey("its hash is not hex".into()))?;
        DeviceKey::new(&point, hash)
    }

    /// From a SEC1 public key and the certificate's hash.
    pub fn new(sec1: &[u8], hash: Vec<u8>) -> Result<DeviceKey, CipherError> {
        let public = p256::PublicKey::from_sec1_bytes(sec1)
            .map_err(|e| CipherError::DeviceKey(e.to_string()))?;
        Ok(DeviceKey { public, hash })
    }
}

/// Encrypts for devices with the controller's ECDH key.
pub struct Sealer {
    key: p256::SecretKey,
    /// The controller certificate's hash exactly as `certs` serves it.
    controller_hash: Vec<u8>,
    keys: Mutex<HashMap<Vec<u8>, [u8; 32]>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

/// The AES key of a pair: SHA-256 of the shared point's coordinates, 32 bytes each.
fn session_key(secret: &p256::SecretKey, public: &p256::PublicKey) -> [u8; 32] {
    let point = (public.to_projective() * *secret.to_nonzero_scalar()).to_affine();
    let encoded = point.to_encoded_point(false);
    // Uncompressed SEC1: 0x04, X (32 bytes), Y (32 bytes).
    sha256(&encoded.as_bytes()[1..])
}

impl Sealer {
    /// A sealer with the controller's ECDH key (PKCS#8 PEM) and its certificate's hash as
    /// `certs` serves it.
    pub fn new(key_pem: &str, controller_hash: Vec<u8>) -> Result<Sealer, CipherError> {
        let key = p256::SecretKey::from_pkcs8_pem(key_pem)
            .map_err(|e| CipherError::ControllerKey(e.to_string()))?;
        Ok(Sealer {
            key,
            controller_hash,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// The controller's ECDH public key (what a device agrees with).
    pub fn public_key(&self) -> p256::PublicKey {
        self.key.public_key()
    }

    fn key_for(&self, device: &DeviceKey) -> [u8; 32] {
        let id = device.public.to_encoded_point(false).as_bytes().to_vec();
        let mut keys = self.keys.lock().expect("not poisoned");
        if let Some(key) = keys.get(&id) {
            return *key;
        }
        let key = session_key(&self.key, &device.public);
        if keys.len() >= KEYS_KEPT {
            keys.clear();
        }
        keys.insert(id, key);
        key
    }

    /// The cipher context for `device`; its id names the pair of certificates.
    pub fn context(&self, device: &DeviceKey) -> CipherContext {
        CipherContext {
            context_id: self.context_id(device),
            hash_scheme: HashAlgorithm::Sha25616bytes as i32,
            key_exchange_scheme: KeyExchangeScheme::KeaEcdh as i32,
            encryption_scheme: EncryptionScheme::SaAes256Cfb as i32,
            device_cert_hash: device.hash.clone(),
            controller_cert_hash: self.controller_hash.clone(),
        }
    }

    fn context_id(&self, device: &DeviceKey) -> String {
        let digest = sha256(&[self.controller_hash.as_slice(), &device.hash].concat());
        crate::compose::derived_uuid(&[&crate::hex::encode(&digest)])
    }

    /// `block` encrypted for `device`, under the context [`Sealer::context`] gives.
    pub fn seal(&self, device: &DeviceKey, block: &EncryptionBlock) -> CipherBlock {
        let key = self.key_for(device);
        let plain = block.encode_to_vec();
        let iv_seed = sha256(&[b"adamant/cipher-iv/".as_slice(), &key, &plain].concat());
        let iv: [u8; 16] = iv_seed[..16].try_into().expect("16 bytes");
        let mut data = plain.clone();
        Encryptor::new(&key.into(), &iv.into()).encrypt(&mut data);
        CipherBlock {
            cipher_context_id: self.context_id(device),
            initial_value: iv.to_vec(),
            cipher_data: data,
            clear_text_sha256: sha256(&plain).to_vec(),
        }
    }
}

/// Opens `block` as a device does: with its ECDH key and the controller's public key. For the
/// simulator and tests; the controller itself never decrypts.
pub fn open(
    device_key: &p256::SecretKey,
    controller: &p256::PublicKey,
    block: &CipherBlock,
) -> Result<EncryptionBlock, CipherError> {
    let key = session_key(device_key, controller);
    let iv: [u8; 16] = block
        .initial_value
        .as_slice()
        .try_into()
        .map_err(|_| CipherError::Open("the IV is not 16 bytes"))?;
    let mut data = block.cipher_data.clone();
    Decryptor::new(&key.into(), &iv.into()).decrypt(&mut data);
    if sha256(&data).as_slice() != block.clear_text_sha256.as_slice() {
        return Err(CipherError::Open(
            "its SHA-256 differs from clearTextSha256: another key",
        ));
    }
    EncryptionBlock::decode(data.as_slice())
        .map_err(|_| CipherError::Open("not an EncryptionBlock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePrivateKey;

    fn keys() -> (p256::SecretKey, p256::SecretKey) {
        let controller = p256::SecretKey::from_slice(&[7u8; 32]).expect("a scalar");
        let device = p256::SecretKey::from_slice(&[9u8; 32]).expect("a scalar");
        (controller, device)
    }

    fn sealer(controller: &p256::SecretKey) -> Sealer {
        let pem = controller
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .expect("PEM");
        Sealer::new(&pem, vec![1; 32]).expect("a sealer")
    }

    #[test]
    fn a_device_opens_what_the_controller_seals() {
        let (controller, device) = keys();
        let sealer = sealer(&controller);
        let point = device.public_key().to_encoded_point(false);
        let target = DeviceKey::new(point.as_bytes(), vec![2; 16]).expect("a key");
        let block = EncryptionBlock {
            ds_api_key: "robot".into(),
            ds_password: "example-password".into(),
            ..EncryptionBlock::default()
        };
        let sealed = sealer.seal(&target, &block);
        assert_eq!(sealed.initial_value.len(), 16);
        assert!(!sealed.cipher_data.windows(8).any(|w| w == b"password"));
        assert_eq!(
            open(&device, &controller.public_key(), &sealed).expect("opens"),
            block
        );
        // The context names both certificates and the scheme EVE expects.
        let context = sealer.context(&target);
        assert_eq!(context.context_id, sealed.cipher_context_id);
        assert_eq!(context.device_cert_hash, vec![2; 16]);
        assert_eq!(context.controller_cert_hash, vec![1; 32]);
        assert_eq!(
            context.key_exchange_scheme,
            KeyExchangeScheme::KeaEcdh as i32
        );
        assert_eq!(
            context.encryption_scheme,
            EncryptionScheme::SaAes256Cfb as i32
        );
        // Sealing again gives the same bytes (the configuration's hash is stable).
        assert_eq!(sealer.seal(&target, &block), sealed);
        // Another device's key opens nothing.
        let other = p256::SecretKey::from_slice(&[11u8; 32]).expect("a scalar");
        assert!(open(&other, &controller.public_key(), &sealed).is_err());
    }

    #[test]
    fn the_key_is_sha256_of_both_coordinates() {
        // The shared point, computed from the other side, hashed as EVE does (X ‖ Y, 32 bytes
        // each): both sides must agree.
        let (controller, device) = keys();
        let a = session_key(&controller, &device.public_key());
        let b = session_key(&device, &controller.public_key());
        assert_eq!(a, b);
        let shared = p256::ecdh::diffie_hellman(
            controller.to_nonzero_scalar(),
            device.public_key().as_affine(),
        );
        assert_ne!(
            a,
            sha256(shared.raw_secret_bytes()),
            "X alone is not the key"
        );
    }

    #[test]
    fn status_fields_round_trip() {
        let (_, device) = keys();
        let point = device.public_key().to_encoded_point(false);
        let status = eve_model::EcdhCertificate {
            hash: crate::hex::encode(&[0xab, 0x01]),
            public_key: base64::engine::general_purpose::STANDARD.encode(point.as_bytes()),
        };
        let key = DeviceKey::from_status(&status).expect("a key");
        assert_eq!(key.hash, vec![0xab, 0x01]);
        for bad in [
            eve_model::EcdhCertificate {
                hash: "xyz".into(),
                ..status.clone()
            },
            eve_model::EcdhCertificate {
                public_key: "AAAA".into(),
                ..status.clone()
            },
        ] {
            assert!(DeviceKey::from_status(&bad).is_err());
        }
    }
}
