//! Serving HTTPS: accept TCP connections within caps (in all and per address), complete the TLS
//! handshake within a deadline, and hand each connection's requests (HTTP/1.1 within a header
//! and idle deadline, or HTTP/2 with bounded streams) to a handler made for that connection. The
//! Kubernetes API, the admission webhook and the EVE device API all listen this way; what they
//! serve is theirs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod coalesce;
pub use coalesce::Coalesced;

/// A certificate and key that cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate is not PEM, or holds no certificate.
    #[error("the certificate is not a PEM certificate chain: {0}")]
    Certificate(String),
    /// The key is not a PEM private key.
    #[error("the key is not a PEM private key: {0}")]
    Key(String),
    /// The two do not belong together, or TLS refused them.
    #[error("the certificate and key cannot serve TLS: {0}")]
    Config(String),
}

/// A server TLS configuration (ring, TLS 1.2 and 1.3, no client certificates) for a PEM chain
/// and key, offering `alpn` protocols.
pub fn server_config(
    chain_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, TlsError> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate("no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // The server chooses the cipher suite by its own order (below), as Go's servers do.
    config.ignore_client_order = true;
    Ok(config)
}

/// Makes `config` resume sessions cheaply for clients that open a connection per request (EVE
/// devices): by ID (a cache of 65,536 sessions) and by ticket, one ticket a handshake. A client
/// needs one ticket for its next connection, and Go's client keeps one a server; rustls's
/// default of two doubles the ticket sealing and what each handshake writes.
pub fn resume_sessions(config: &mut rustls::ServerConfig) -> Result<(), TlsError> {
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(1 << 16);
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    config.send_tls13_tickets = 1;
    Ok(())
}

/// ring, with AES-128-GCM over SHA-256 preferred: its key schedule runs on the CPU's SHA
/// extensions, where SHA-384's (AES-256-GCM's) runs in software. A resumed handshake spends a
/// tenth of its server CPU there (docs/benchmarks.md, "Allocator and cipher suite").
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS13_AES_128_GCM_SHA256,
    };
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    provider
}

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// What one listener allows its clients. Beyond a connection cap, a new connection is closed as
/// soon as it is accepted (its descriptor freed at once); beyond a deadline, the connection is
/// closed.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once on the listener.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_per_address: usize,
    /// Time to complete the TLS handshake.
    pub handshake: Duration,
    /// HTTP/1.1: time for a request's headers to arrive, counted from when the connection is
    /// ready for the next request, so it is also how long a kept-alive connection may sit idle.
    pub header: Duration,
    /// Whether HTTP/2 is spoken (when offered by ALPN or by prior knowledge); without it,
    /// HTTP/1.1 only.
    pub http2: bool,
    /// HTTP/2: streams open at once on one connection.
    pub max_streams: u32,
    /// Whether a connection's writes are held until it would wait for the client or closes
    /// ([`Coalesced`]): fewer writes for clients that open a connection per request and whose
    /// responses are whole (the device API); never where responses stream (watches).
    pub coalesce_writes: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            max_per_address: 1024,
            handshake: HANDSHAKE_DEADLINE,
            header: Duration::from_secs(30),
            http2: true,
            max_streams: 250,
            coalesce_writes: false,
        }
    }
}

/// Who is at the other end of a connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The client's address.
    pub address: SocketAddr,
    /// The certificates the client presented (leaf first), if any.
    pub certificates: Vec<CertificateDer<'static>>,
}

/// The open connections of a listener, in all and by address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection counted in [`Open`] until dropped.
struct Counted {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Counts a new connection from `address`, unless a cap of `limits` is reached.
fn admit(open: &Arc<Mutex<Open>>, address: IpAddr, limits: &Limits) -> Option<Counted> {
    let mut state = open.lock().unwrap_or_else(PoisonError::into_inner);
    let from = state.by_address.get(&address).copied().unwrap_or(0);
    if state.total >= limits.max_connections || from >= limits.max_per_address {
        return None;
    }
    state.total += 1;
    *state.by_address.entry(address).or_insert(0) += 1;
    Some(Counted {
        open: open.clone(),
        address,
    })
}

/// Serves `listener` until `shutdown` turns true, with the default [`Limits`]. For every
/// connection, `connect` is called once with the peer and returns the handler of that
/// connection's requests.
pub async fn serve<C, H, F, B>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: watch::Receiver<bool>,
    connect: C,
) where
    C: Fn(Peer) -> H + Send + Sync + 'static,
    H: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(listener, tls, Limits::default(), shutdown, connect).await
}

/// [`serve`] within `limits`.
pub async fn serve_with<C, H, F, B>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    connect: C,
) where
    C: Fn(Peer) -> H + Send + Sync + 'static,
    H: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = http::Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connect = Arc::new(connect);
    let open = Arc::new(Mutex::new(Open::default()));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    if !limits.http2 {
        builder = builder.http1_only();
    }
    let builder = Arc::new(builder);
    loop {
        let (tcp, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(counted) = admit(&open, address.ip(), &limits) else {
            tracing::debug!(%address, "connection refused: too many open");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let connect = connect.clone();
        let builder = builder.clone();
        let handshake = limits.handshake;
        let header = limits.header;
        let tcp = if limits.coalesce_writes {
            Coalesced::new(tcp)
        } else {
            Coalesced::passing(tcp)
        };
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _counted = counted;
            let mut tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %address, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            if tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                // Only the session ticket is held: the client does not wait for it.
                tls.get_mut().0.hold_until_written();
            }
            let certificates = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let handler = connect(Peer {
                address,
                certificates,
            });
            // Whether a request came: until one does, the header deadline holds from the
            // handshake (hyper starts its own only once it knows the protocol, after the first
            // bytes; HTTP/2 has none).
            let requested = Arc::new(AtomicBool::new(false));
            let asked = requested.clone();
            let service = service_fn(move |request| {
                asked.store(true, Ordering::Relaxed);
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let silent = async {
                tokio::time::sleep(header).await;
                if requested.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            };
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %address, "connection ended with an error");
                    }
                }
                () = silent => {
                    tracing::debug!(%address, "connection closed: no request within the header deadline");
                }
                _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
