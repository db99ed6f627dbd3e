//! Any body a network can deliver: the decoders of the device API's requests never panic, never
//! allocate beyond the body's size, and refuse what is not a valid signed message.

use eve_api::Message;
use eve_api::envelope::{Opened, Signer};
use proptest::prelude::*;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/keys/");

fn signer() -> Signer {
    let read = |n: &str| std::fs::read(format!("{KEYS}{n}")).unwrap();
    Signer::device(&read("device.key"), &read("device.pem")).unwrap()
}

/// Every message a device sends, decoded from `bytes`: errors are fine, panics are not.
fn decode_all(bytes: &[u8]) {
    let _ = eve_api::config::ConfigRequest::decode(bytes);
    let _ = eve_api::register::ZRegisterMsg::decode(bytes);
    let _ = eve_api::attest::ZAttestReq::decode(bytes);
    let _ = eve_api::info::ZInfoMsg::decode(bytes);
    let _ = eve_api::telemetry::ZMetricMsg::decode(bytes);
    let _ = eve_api::uuid::UuidRequest::decode(bytes);
    if let Ok(bundle) = eve_api::newlogs::parse(bytes) {
        assert!(
            bundle.entries.len() + bundle.skipped <= eve_api::newlogs::MAX_DECOMPRESSED as usize
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bodies_are_refused_cleanly(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(opened) = Opened::decode(&body) {
            // What decodes cannot be larger than what came.
            prop_assert!(opened.payload.len() <= body.len());
            decode_all(&opened.payload);
        }
        decode_all(&body);
    }

    #[test]
    fn changed_envelopes_do_not_verify(
        payload in proptest::collection::vec(any::<u8>(), 1..512),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let signer = signer();
        let mut sealed = signer.seal(payload.clone());
        let i = at.index(sealed.len());
        sealed[i] ^= flip;
        if let Ok(opened) = Opened::decode(&sealed) {
            // A flip in the framing or the sender hash may leave the payload intact; a flip in
            // the payload or the signature never verifies.
            if opened.verify(signer.public_key()).is_ok() {
                prop_assert_eq!(opened.payload, payload);
            }
        }
    }

    #[test]
    fn changed_log_files_are_read_or_refused_cleanly(
        lines in proptest::collection::vec("[ -~]{0,40}", 0..20),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let values: Vec<serde_json::Value> =
            lines.iter().map(|l| serde_json::json!({"content": l})).collect();
        let mut file = eve_api::newlogs::write("meta", false, &values);
        let bundle = eve_api::newlogs::parse(&file).unwrap();
        prop_assert_eq!(bundle.entries.len(), lines.len());
        let i = at.index(file.len());
        file[i] ^= flip;
        // A flip anywhere: read (perhaps with lines skipped) or refused, never a panic.
        let _ = eve_api::newlogs::parse(&file);
    }
}
