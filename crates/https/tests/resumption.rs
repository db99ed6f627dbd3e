//! Session resumption as devices use it (a new connection per request): the second connection
//! resumes the first one's session, and each handshake gives the client one ticket.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;

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

#[test]
fn a_client_resumes_with_the_one_ticket_each_handshake_gives() {
    let root = pki::Authority::generate("resumption test").unwrap();
    let issued = root
        .issue_server("localhost", &["localhost".into()])
        .unwrap();
    let mut server = https::server_config(&issued.certificate_pem, &issued.key_pem, &[]).unwrap();
    https::resume_sessions(&mut server).unwrap();
    let server = Arc::new(server);

    let store = Arc::new(Counting {
        inner: ClientSessionMemoryCache::new(16),
        tickets: AtomicUsize::new(0),
    });
    let mut client = common::client_config(root.certificate_pem.as_bytes());
    client.resumption = Resumption::store(store.clone());
    let client = Arc::new(client);

    let kinds: Vec<_> = (0..3)
        .map(|_| {
            common::handshake(client.clone(), server.clone())
                .0
                .handshake_kind()
        })
        .collect();
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(kinds, [Some(Full), Some(Resumed), Some(Resumed)]);
    assert_eq!(
        store.tickets.load(Ordering::SeqCst),
        3,
        "one ticket a handshake"
    );
}
