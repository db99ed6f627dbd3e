//! Attestation's two secrets, made so that neither can be replayed: the nonce a device's quote
//! must answer (32 bytes: when it was issued, 12 random bytes, and a MAC binding both to the
//! device), good for [`NONCE_LIFETIME`] and once; and the integrity token a successful quote
//! earns (fresh random bytes, when, and a MAC binding them to the device), good for
//! [`TOKEN_LIFETIME`] or until the device attests again on this replica. Both are checked
//! with the installation's integrity key (every replica has it, so any replica can check what
//! another issued) in constant time; nothing secret is stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// How long a nonce may be answered.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// How long an integrity token holds; then the device's config requests get 403 and EVE
/// attests again.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Nonces answered, remembered per device (each is good once).
const REMEMBERED: usize = 8;

const NONCE_LEN: usize = 32;
const TOKEN_LEN: usize = 8 + 16 + 32;

/// Why a nonce or token does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not one this installation made for this device.
    #[error("not issued to this device")]
    Forged,
    /// Made too long ago.
    #[error("expired")]
    Expired,
    /// A nonce already answered, or a token a later attestation replaced.
    #[error("already used")]
    Used,
    /// A quote without a TPM's signed data, from a device this process issued no nonce to.
    #[error("no nonce was issued to this device here")]
    Missing,
}

/// What one process remembers of each device's attestations.
#[derive(Debug, Default)]
struct Seen {
    /// Nonces answered, most recent last.
    answered: Vec<[u8; NONCE_LEN]>,
    /// When the newest token this process issued was made (milliseconds) and its MAC: older
    /// ones, and others of the same millisecond, are refused here.
    newest_token: Option<(u64, [u8; 32])>,
    /// The last nonce issued here, for a device without a TPM (its quote does not carry it).
    pending: Option<[u8; NONCE_LEN]>,
}

/// Makes and checks nonces and integrity tokens.
pub struct Integrity {
    key: hmac::Key,
    random: SystemRandom,
    seen: Mutex<HashMap<String, Seen>>,
}

impl std::fmt::Debug for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrity").finish_non_exhaustive()
    }
}

fn tag(key: &hmac::Key, purpose: &[u8], uuid: &str, body: &[u8]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(purpose);
    context.update(uuid.as_bytes());
    context.update(b"\0");
    context.update(body);
    context.sign()
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |differ, (x, y)| differ | (x ^ y))) == 0
}

fn verify(key: &hmac::Key, purpose: &[u8], uuid: &str, body: &[u8], mac: &[u8]) -> bool {
    let mut message = purpose.to_vec();
    message.extend_from_slice(uuid.as_bytes());
    message.push(0);
    message.extend_from_slice(body);
    match mac.len() {
        32 => hmac::verify(key, &message, mac).is_ok(),
        // A nonce carries half the tag: compare that half in constant time.
        16 => {
            let full = hmac::sign(key, &message);
            same(&full.as_ref()[..16], mac)
        }
        _ => false,
    }
}

/// The `extraData` of a `TPMS_ATTEST` (TPM 2.0 part 2, 10.12.12): after the magic (4 bytes),
/// the type (2) and the qualified signer (a 2-byte size and that many bytes), a 2-byte size and
/// the data.
pub(crate) fn extra_data(attest: &[u8]) -> Option<&[u8]> {
    let size = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes(
            attest.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let signer = size(6)?;
    let at = 8 + signer;
    let data = size(at)?;
    attest.get(at + 2..at + 2 + data)
}

impl Integrity {
    /// Keys derived from `secret` (the installation's, shared by replicas).
    pub fn new(secret: &[u8]) -> Integrity {
        let derived = ring::digest::digest(
            &ring::digest::SHA256,
            &[secret, b"/adamant/attestation"].concat(),
        );
        Integrity {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            random: SystemRandom::new(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// A nonce for `uuid`, issued at `now_millis`.
    pub fn nonce(&self, uuid: &str, now_millis: u64) -> Vec<u8> {
        let mut body = [0u8; 16];
        body[..4].copy_from_slice(&((now_millis / 1000) as u32).to_be_bytes());
        let _ = self.random.fill(&mut body[4..]);
        let mac = tag(&self.key, b"nonce/", uuid, &body);
        let nonce = [&body[..], &mac.as_ref()[..16]].concat();
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.entry(uuid.to_string()).or_default().pending = nonce.as_slice().try_into().ok();
        nonce
    }

    /// Takes the nonce a quote answers: the one in the TPM's signed data (`TPMS_ATTEST`'s
    /// `extraData`) when the quote has it, else (a device without a TPM) the last one issued to
    /// `uuid` here.
    pub fn answer_quote(
        &self,
        uuid: &str,
        attest_data: &[u8],
        now_millis: u64,
    ) -> Result<(), Invalid> {
        if !attest_data.is_empty() {
            let nonce = extra_data(attest_data).ok_or(Invalid::Forged)?;
            return self.answer(uuid, nonce, now_millis);
        }
        let pending = self
            .seen
            .lock()
            .expect("not poisoned")
            .get_mut(uuid)
            .and_then(|s| s.pending.take())
            .ok_or(Invalid::Missing)?;
        self.answer(uuid, &pending, now_millis)
    }

    /// Takes `nonce` as answered by `uuid` at `now_millis`: it must be one issued to `uuid`,
    /// within its lifetime, and not answered before (on this process).
    pub fn answer(&self, uuid: &str, nonce: &[u8], now_millis: u64) -> Result<(), Invalid> {
        let now = now_millis / 1000;
        let Ok(nonce): Result<[u8; NONCE_LEN], _> = nonce.try_into() else {
            return Err(Invalid::Forged);
        };
        if !verify(&self.key, b"nonce/", uuid, &nonce[..16], &nonce[16..]) {
            return Err(Invalid::Forged);
        }
        let issued = u64::from(u32::from_be_bytes(nonce[..4].try_into().expect("4 bytes")));
        // Issued in the future (a clock step) or too long ago.
        if issued > now + 60 || now.saturating_sub(issued) > NONCE_LIFETIME.as_secs() {
            return Err(Invalid::Expired);
        }
        let mut seen = self.seen.lock().expect("not poisoned");
        let seen = seen.entry(uuid.to_string()).or_default();
        if seen.answered.contains(&nonce) {
            return Err(Invalid::Used);
        }
        if seen.answered.len() == REMEMBERED {
            seen.answered.remove(0);
        }
        seen.answered.push(nonce);
        Ok(())
    }

    /// A fresh integrity token for `uuid`, issued at `now_millis`; tokens issued before it
    /// stop holding on this process.
    pub fn token(&self, uuid: &str, now_millis: u64) -> Vec<u8> {
        let mut body = [0u8; 24];
        body[..8].copy_from_slice(&now_millis.to_be_bytes());
        let _ = self.random.fill(&mut body[8..]);
        let mac = tag(&self.key, b"token/", uuid, &body);
        let mut seen = self.seen.lock().expect("not poisoned");
        let seen = seen.entry(uuid.to_string()).or_default();
        if seen.newest_token.is_none_or(|(at, _)| at <= now_millis) {
            seen.newest_token = mac.as_ref().try_into().ok().map(|mac| (now_millis, mac));
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode([&body[..], mac.as_ref()].concat())
            .into_bytes()
    }

    /// Whether `token` holds for `uuid` at `now_millis`.
    pub fn check_token(&self, uuid: &str, token: &[u8], now_millis: u64) -> Result<(), Invalid> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| Invalid::Forged)?;
        if bytes.len() != TOKEN_LEN
            || !verify(&self.key, b"token/", uuid, &bytes[..24], &bytes[24..])
        {
            return Err(Invalid::Forged);
        }
        let issued = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        if now_millis.saturating_sub(issued) > TOKEN_LIFETIME.as_millis() as u64 {
            return Err(Invalid::Expired);
        }
        let seen = self.seen.lock().expect("not poisoned");
        if let Some((newest, mac)) = seen.get(uuid).and_then(|s| s.newest_token)
            && (issued < newest || (issued == newest && !same(&mac, &bytes[24..])))
        {
            return Err(Invalid::Used);
        }
        Ok(())
    }

    /// Forgets a device (deleted).
    pub fn forget(&self, uuid: &str) {
        self.seen.lock().expect("not poisoned").remove(uuid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;
    const S: u64 = 1000;

    #[test]
    fn a_nonce_is_answered_once_by_its_device_within_its_lifetime() {
        let integrity = Integrity::new(b"secret");
        let nonce = integrity.nonce("a", NOW);
        assert_eq!(nonce.len(), 32);
        assert_eq!(integrity.answer("b", &nonce, NOW), Err(Invalid::Forged));
        assert_eq!(
            integrity.answer("a", &nonce, NOW + 400 * S),
            Err(Invalid::Expired)
        );
        assert_eq!(integrity.answer("a", &nonce, NOW + 10 * S), Ok(()));
        assert_eq!(
            integrity.answer("a", &nonce, NOW + 11 * S),
            Err(Invalid::Used)
        );
        let mut flipped = integrity.nonce("a", NOW);
        flipped[5] ^= 1;
        assert_eq!(integrity.answer("a", &flipped, NOW), Err(Invalid::Forged));
        assert_eq!(integrity.answer("a", b"short", NOW), Err(Invalid::Forged));
        // Another installation's nonce is not this one's.
        let other = Integrity::new(b"other").nonce("a", NOW);
        assert_eq!(integrity.answer("a", &other, NOW), Err(Invalid::Forged));
        // Any replica (same key, other memory) checks what another issued.
        let replica = Integrity::new(b"secret");
        assert_eq!(replica.answer("a", &integrity.nonce("a", NOW), NOW), Ok(()));
    }

    /// A `TPMS_ATTEST` whose `extraData` is `nonce`.
    fn attest_data(nonce: &[u8]) -> Vec<u8> {
        let mut data = vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 3, 1, 2, 3];
        data.extend_from_slice(&(nonce.len() as u16).to_be_bytes());
        data.extend_from_slice(nonce);
        data.extend_from_slice(&[0; 17]);
        data
    }

    #[test]
    fn a_quote_answers_the_nonce_in_its_signed_data_or_the_last_one_issued() {
        let integrity = Integrity::new(b"secret");
        let nonce = integrity.nonce("a", NOW);
        assert_eq!(
            integrity.answer_quote("a", &attest_data(&nonce), NOW),
            Ok(())
        );
        assert_eq!(
            integrity.answer_quote("a", &attest_data(&nonce), NOW),
            Err(Invalid::Used),
            "a replayed quote"
        );
        assert_eq!(
            integrity.answer_quote("a", &attest_data(b"made up"), NOW),
            Err(Invalid::Forged)
        );
        assert_eq!(
            integrity.answer_quote("a", &[0xff, 0x54], NOW),
            Err(Invalid::Forged)
        );
        // Without a TPM: the last nonce issued, once.
        integrity.nonce("a", NOW);
        assert_eq!(integrity.answer_quote("a", &[], NOW + 1), Ok(()));
        assert_eq!(
            integrity.answer_quote("a", &[], NOW + 2),
            Err(Invalid::Missing)
        );
        assert_eq!(integrity.answer_quote("b", &[], NOW), Err(Invalid::Missing));
        integrity.nonce("a", NOW);
        assert_eq!(
            integrity.answer_quote("a", &[], NOW + 600 * S),
            Err(Invalid::Expired)
        );
    }

    #[test]
    fn tokens_are_fresh_bound_to_their_device_and_replaced_by_the_next() {
        let integrity = Integrity::new(b"secret");
        let first = integrity.token("a", NOW);
        let again = Integrity::new(b"secret").token("a", NOW);
        assert_ne!(first, again, "random each time");
        assert_eq!(integrity.check_token("a", &first, NOW + 5), Ok(()));
        assert_eq!(
            integrity.check_token("b", &first, NOW),
            Err(Invalid::Forged)
        );
        assert_eq!(
            integrity.check_token("a", &first, NOW + TOKEN_LIFETIME.as_millis() as u64 + 1),
            Err(Invalid::Expired)
        );
        let second = integrity.token("a", NOW);
        assert_eq!(integrity.check_token("a", &second, NOW + 61), Ok(()));
        assert_eq!(
            integrity.check_token("a", &first, NOW + 61),
            Err(Invalid::Used),
            "a later attestation replaced it, in the same millisecond too"
        );
        assert_eq!(
            integrity.check_token("a", b"garbage!", NOW),
            Err(Invalid::Forged)
        );
        integrity.forget("a");
        assert_eq!(integrity.check_token("a", &first, NOW + 61), Ok(()));
    }
}
