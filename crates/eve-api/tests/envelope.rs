//! The envelope with the specification's example keys: signed, opened, verified; tampering and
//! truncation refused; the two hash rules.

use eve_api::Message;
use eve_api::envelope::{EnvelopeError, Opened, Signer, pem_to_der, public_key, sha256};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/keys/");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{KEYS}{name}")).unwrap_or_else(|e| panic!("{KEYS}{name}: {e}"))
}

#[test]
fn a_device_envelope_opens_and_verifies_with_its_certificate() {
    let cert = read("device.pem");
    let signer = Signer::device(&read("device.key"), &cert).unwrap();
    let payload = eve_api::config::ConfigRequest {
        config_hash: "abc".into(),
        integrity_token: Vec::new(),
    }
    .encode_to_vec();
    let sealed = signer.seal(payload.clone());
    let opened = Opened::decode(&sealed).unwrap();
    assert_eq!(opened.payload, payload);
    // A device is named by SHA-256 of its certificate's DER.
    let der = pem_to_der(&cert).unwrap();
    assert!(opened.names(&sha256(&der)));
    assert!(!opened.names(&sha256(&cert)));
    assert_eq!(opened.signature.len(), 64, "raw r||s");
    opened.verify(&public_key(&der).unwrap()).unwrap();

    // Another key's certificate does not verify it.
    let other = pem_to_der(&read("onboard.pem")).unwrap();
    assert_eq!(
        opened.verify(&public_key(&other).unwrap()),
        Err(EnvelopeError::BadSignature)
    );
    // A changed payload does not verify.
    let mut tampered = opened.clone();
    tampered.payload.push(0);
    assert_eq!(
        tampered.verify(&public_key(&der).unwrap()),
        Err(EnvelopeError::BadSignature)
    );
    // Truncated bodies and garbage are refused without panicking.
    for cut in 0..sealed.len() {
        let _ = Opened::decode(&sealed[..cut]);
    }
    assert!(matches!(
        Opened::decode(b"\xff\xff\xff\xff"),
        Err(EnvelopeError::Malformed(_))
    ));
}

#[test]
fn a_registration_carries_the_onboarding_certificate_as_base64_pem() {
    let onboard = read("onboard.pem");
    let signer = Signer::device(&read("onboard.key"), &onboard)
        .unwrap()
        .with_certificate(&onboard);
    let opened = Opened::decode(&signer.seal(b"x".to_vec())).unwrap();
    assert_eq!(opened.sender_cert_pem.as_deref(), Some(onboard.as_slice()));
}

#[test]
fn the_controller_is_named_by_the_hash_of_its_pem_bytes() {
    let cert = read("device-ca.pem");
    let signer = Signer::controller(&read("device-ca.key"), &cert).unwrap();
    let opened = Opened::decode(&signer.seal(Vec::new())).unwrap();
    assert_eq!(opened.sender_hash, sha256(&cert).to_vec());
}
