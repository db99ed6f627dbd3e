//! A device's own keys end to end, with simulated devices: data store credentials encrypted for
//! the ECDH certificate it uploads, which only it opens; quotes of a (simulated) TPM judged by
//! the attestation policy and the namespace's PCR templates, the outcome on the Device.

use crate::common;

use common::{Server, apply_examples, configured, eventually, get_json};
use eve_api::attest::ZAttestResponseCode;

const NAMESPACE: &str = "enterprise1";
const DEVICE: &str = "eve-device.lab1";

fn device_status(server: &Server) -> serde_json::Value {
    get_json(server, &["-n", NAMESPACE, "get", "device", DEVICE])["status"].clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn data_store_credentials_reach_the_device_sealed_for_its_ecdh_certificate() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    // The ECDH certificate it uploaded is recorded on its Device.
    let hash = eventually("the ECDH certificate on the Device", || {
        device_status(&server)["ecdhCertificate"]["hash"]
            .as_str()
            .map(str::to_owned)
    });
    let uploaded = device.keys().unwrap().certificates();
    assert_eq!(hash, hex(&uploaded[0].cert_hash));
    // The example registry's credentials come sealed, and the device opens them.
    let block = configured(
        &runtime,
        &mut device,
        "the quay.io credentials sealed",
        |config| {
            config
                .datastores
                .into_iter()
                .find(|s| s.fqdn == "docker://quay.io")?
                .cipher_data
        },
    );
    let opened = device.open_block(&block).unwrap();
    assert_eq!(opened.ds_api_key, "robot");
    assert_eq!(opened.ds_password, "example-password");
    let config = device.config.clone().unwrap();
    let store = config
        .datastores
        .iter()
        .find(|s| s.fqdn == "docker://quay.io")
        .unwrap();
    assert!(
        store.api_key.is_empty() && store.password.is_empty(),
        "none in the clear"
    );
    assert_eq!(config.cipher_contexts.len(), 1);
    // Whoever reads the DeviceConfig reads no password.
    let shown = server.ok(&["-n", NAMESPACE, "get", "deviceconfig", DEVICE, "-o", "yaml"]);
    assert!(shown.contains("cipherData") && !shown.contains("example-password"));
}

#[test]
fn tpm_quotes_are_judged_by_the_attestation_policy_and_the_pcr_templates() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut device = server.example_device().with_tpm();
    let uuid = runtime.block_on(device.onboard()).unwrap();
    let attestation = |outcome: &str| {
        eventually(&format!("status.attestation {outcome}"), || {
            let a = device_status(&server)["attestation"].clone();
            (a["outcome"] == outcome).then_some(a)
        })
    };
    // The default policy records: verified, let through, its PCRs shown for approval.
    let first = attestation("Verified");
    assert_eq!(first["policy"], "record");
    assert_eq!(first["accepted"], true);
    assert_eq!(first["pcrs"]["7"], hex(&device_sim::keys::pcr(7)));
    assert_eq!(first["eveVersion"], device_sim::keys::EVE_VERSION);
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("no PCR template"),
        "{first}"
    );
    let mut attest = |pcrs: &[(u32, [u8; 32])]| {
        runtime.block_on(async {
            let nonce = device.nonce().await.unwrap();
            let quote = device.keys().unwrap().quote(&nonce, pcrs);
            device.send_quote(quote).await.unwrap()
        })
    };
    // Enforced on the namespace: without a template, refused.
    server.ok(&[
        "annotate",
        "namespace",
        NAMESPACE,
        "eve.lfedge.org/attestation=enforce",
    ]);
    let refused = attest(&[]);
    assert_eq!(refused.response, ZAttestResponseCode::QuoteFailed as i32);
    assert!(refused.integrity_token.is_empty());
    // Approved as a template: let through.
    let pcrs: String = (0..16)
        .map(|i| format!("      {i}: '{}'\n", hex(&device_sim::keys::pcr(i))))
        .collect();
    let applied = server.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1
kind: ConfigMap
metadata: {{name: adamant-pcr-templates, namespace: {NAMESPACE}}}
data:
  sim-fleet: |
    eveVersion: {}
    pcrs:
{}",
            device_sim::keys::EVE_VERSION,
            pcrs
        ),
    );
    assert!(applied.status.success(), "{applied:?}");
    let accepted = attest(&[]);
    assert_eq!(accepted.response, ZAttestResponseCode::Success as i32);
    assert!(!accepted.integrity_token.is_empty());
    let verified = eventually("the template named", || {
        let a = device_status(&server)["attestation"].clone();
        (a["template"] == "sim-fleet").then_some(a)
    });
    assert_eq!(verified["policy"], "enforce");
    // A measurement that changed: refused, the PCR named.
    let changed = attest(&[(7, [0; 32])]);
    assert_eq!(changed.response, ZAttestResponseCode::QuoteFailed as i32);
    let named = eventually("the changed PCR named", || {
        let a = device_status(&server)["attestation"].clone();
        (a["accepted"] == false).then_some(a)
    });
    assert!(
        named["message"].as_str().unwrap().contains("PCR 7"),
        "{named}"
    );
    // A quote that answers a nonce never issued: refused under enforcement...
    let forged = |device: &mut device_sim::Device| {
        runtime.block_on(async {
            let quote = device.keys().unwrap().quote(&[7; 32], &[]);
            device.send_quote(quote).await.unwrap()
        })
    };
    assert_eq!(
        forged(&mut device).response,
        ZAttestResponseCode::NonceMismatch as i32
    );
    // ... and let through, recorded as failed, without.
    server.ok(&[
        "annotate",
        "namespace",
        NAMESPACE,
        "--overwrite",
        "eve.lfedge.org/attestation=record",
    ]);
    assert_eq!(
        forged(&mut device).response,
        ZAttestResponseCode::Success as i32
    );
    let recorded = attestation("Failed");
    assert_eq!(recorded["accepted"], true);
    assert!(
        recorded["message"].as_str().unwrap().contains("nonce"),
        "{recorded}"
    );
    // The certificates it uploaded come back from the telemetry store.
    let certs = server.ok(&["get", "--raw", &format!("/edgenode/{uuid}/certs")]);
    assert!(
        certs.contains("CERT_TYPE_DEVICE_RESTRICTED_SIGNING")
            && certs.contains("CERT_TYPE_DEVICE_ECDH_EXCHANGE"),
        "{certs}"
    );
}

#[test]
fn require_tpm_refuses_a_device_without_one_and_enforce_lets_it_through() {
    let server = Server::start();
    apply_examples(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    server.ok(&[
        "-n",
        NAMESPACE,
        "annotate",
        "device",
        DEVICE,
        "eve.lfedge.org/attestation=require-tpm",
    ]);
    let mut device = server.example_device();
    runtime.block_on(device.onboard()).unwrap();
    eventually("a device without a TPM refused under require-tpm", || {
        runtime.block_on(device.attest()).unwrap();
        let a = device_status(&server)["attestation"].clone();
        (a["policy"] == "require-tpm" && a["accepted"] == false).then_some(())
    });
    assert_eq!(device_status(&server)["attestation"]["outcome"], "NoTPM");
    server.ok(&[
        "-n",
        NAMESPACE,
        "annotate",
        "device",
        DEVICE,
        "--overwrite",
        "eve.lfedge.org/attestation=enforce",
    ]);
    eventually("a device without a TPM let through under enforce", || {
        runtime.block_on(device.attest()).unwrap();
        let a = device_status(&server)["attestation"].clone();
        (a["policy"] == "enforce" && a["accepted"] == true).then_some(())
    });
    runtime.block_on(device.poll_config()).unwrap();
}
