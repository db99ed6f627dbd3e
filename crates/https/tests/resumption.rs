//! Session resumption as devices use it (a new connection per request): the second connection
//! resumes the first one's session, and each handshake gives the client one ticket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls13ClientSessionValue,
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

/// The client's session store, counting the tickets it is given.
#[derive(Debug)]
struct Counting {
    inner: ClientSessionMemoryCache,
    tickets: AtomicUsize,
}

impl ClientSessionStore for Counting {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(server_name, value);
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

/// A handshake between `client` and `server` in memory, with what follows it (the tickets).
fn connect(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> rustls::ClientConnection {
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(client.clone(), name).unwrap();
    let mut server = rustls::ServerConnection::new(server.clone()).unwrap();
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
    assert!(!client.is_handshaking(), "the handshake completes");
    client
}

#[test]
fn a_client_resumes_with_the_one_ticket_each_handshake_gives() {
    let root = pki::Authority::generate("resumption test").unwrap();
    let issued = root
        .issue_server("localhost", &["localhost".into()])
        .unwrap();
    let mut server = https::server_config(&issued.certificate_pem, &issued.key_pem, &[]).unwrap();
    https::resume_sessions(&mut server).unwrap();
    let server = Arc::new(server);

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root.certificate_pem.as_bytes()).unwrap())
        .unwrap();
    let store = Arc::new(Counting {
        inner: ClientSessionMemoryCache::new(16),
        tickets: AtomicUsize::new(0),
    });
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.resumption = Resumption::store(store.clone());
    let client = Arc::new(client);

    let kinds: Vec<_> = (0..3)
        .map(|_| connect(&client, &server).handshake_kind())
        .collect();
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(kinds, [Some(Full), Some(Resumed), Some(Resumed)]);
    assert_eq!(
        store.tickets.load(Ordering::SeqCst),
        3,
        "one ticket a handshake"
    );
}
