//! The server chooses the cipher suite: AES-128-GCM over SHA-256, even when the client prefers
//! AES-256-GCM over SHA-384 (as rustls clients do), since its key schedule runs on the CPU's
//! SHA extensions.

mod common;

use std::sync::Arc;

/// The suite a client offering ring's default order (AES-256 first) and `server` agree on.
fn negotiated(server: rustls::ServerConfig, root_pem: &str) -> rustls::CipherSuite {
    let client = common::client_config(root_pem.as_bytes());
    let (_, server) = common::handshake(Arc::new(client), Arc::new(server));
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
