//! What the listener's tests share: a client configuration trusting a root, and a handshake
//! run in memory.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

/// A rustls client configuration (ring's defaults) trusting the PEM certificates in `root`.
pub(crate) fn client_config(root: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(root) {
        roots.add(certificate.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A handshake of `client` with `server` for `localhost`, in memory, with what follows it (the
/// server's session tickets); both connections once it completed.
#[allow(dead_code)] // Not every test binary runs a handshake in memory.
pub(crate) fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
) -> (rustls::ClientConnection, rustls::ServerConnection) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(client, name).unwrap();
    let mut server = rustls::ServerConnection::new(server).unwrap();
    for _ in 0..10 {
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        server.read_tls(&mut bytes.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        let mut bytes = Vec::new();
        server.write_tls(&mut bytes).unwrap();
        client.read_tls(&mut bytes.as_slice()).unwrap();
        client.process_new_packets().unwrap();
    }
    assert!(
        !client.is_handshaking() && !server.is_handshaking(),
        "the handshake completes"
    );
    (client, server)
}
