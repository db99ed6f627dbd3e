//! The server chooses the cipher suite: AES-128-GCM over SHA-256, even when the client prefers
//! AES-256-GCM over SHA-384 (as rustls clients do), since its key schedule runs on the CPU's
//! SHA extensions.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

/// The suite a client offering ring's default order (AES-256 first) and `server` agree on.
fn negotiated(server: rustls::ServerConfig, root_pem: &str) -> rustls::CipherSuite {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    let mut server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
    for _ in 0..10 {
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        server.read_tls(&mut bytes.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        let mut bytes = Vec::new();
        server.write_tls(&mut bytes).unwrap();
        client.read_tls(&mut bytes.as_slice()).unwrap();
        client.process_new_packets().unwrap();
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!server.is_handshaking(), "the handshake completes");
    server.negotiated_cipher_suite().unwrap().suite()
}

#[test]
fn the_server_prefers_aes_128_gcm_over_sha_256() {
    let root = pki::Authority::generate("suite test").unwrap();
    let issued = root
        .issue_server("localhost", &["localhost".into()])
        .unwrap();
    let default_first = rustls::crypto::ring::default_provider().cipher_suites[0].suite();
    assert_eq!(
        default_first,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
        "a client offers AES-256 first, so the choice below is the server's"
    );
    let config = https::server_config(&issued.certificate_pem, &issued.key_pem, &[]).unwrap();
    assert_eq!(
        negotiated(config, &root.certificate_pem),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
}
