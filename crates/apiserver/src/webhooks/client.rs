//! The HTTPS client of the webhooks: rustls (ring), the server verified against the webhook's
//! `caBundle`, or the system's roots when it has none; HTTP/2 or HTTP/1.1 by ALPN; connections
//! kept and reused per `caBundle`; the whole exchange bounded by the webhook's timeout and the
//! response by [`MAX_RESPONSE`]. Host names (a `service`'s `NAME.NAMESPACE.svc` among them) go
//! through the system resolver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The largest webhook response read.
pub(crate) const MAX_RESPONSE: usize = 3 * 1024 * 1024;

/// At most this many distinct `caBundle`s keep a client; more start the pool afresh.
const MAX_CLIENTS: usize = 64;

/// A pooled HTTPS client (rustls, HTTP/2 or HTTP/1.1 by ALPN).
pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why a webhook could not be called (kube-apiserver's wording where it has one).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No client for the webhook's `caBundle`.
    #[error("could not get REST client: {0}")]
    Client(String),
    /// The request failed: connection, TLS, protocol.
    #[error("failed to call webhook: Post {url:?}: {cause}")]
    Failed {
        /// Where.
        url: String,
        /// What went wrong.
        cause: String,
    },
    /// The webhook did not answer within its timeout.
    #[error("failed to call webhook: Post {url:?}: context deadline exceeded")]
    Timeout {
        /// Where.
        url: String,
    },
    /// The webhook answered with an HTTP error.
    #[error("failed to call webhook: Post {url:?}: the server responded with {status}: {body}")]
    Status {
        /// Where.
        url: String,
        /// The HTTP status.
        status: http::StatusCode,
        /// The start of the body.
        body: String,
    },
    /// The response was larger than [`MAX_RESPONSE`].
    #[error(
        "failed to call webhook: Post {url:?}: the response is larger than {MAX_RESPONSE} bytes"
    )]
    TooLarge {
        /// Where.
        url: String,
    },
}

/// The clients, one per `caBundle` (an empty bundle is the system roots), all presenting the
/// server's client certificate once it has one.
#[derive(Default)]
pub(crate) struct Clients {
    pool: Mutex<HashMap<Vec<u8>, HttpClient>>,
    identity: Mutex<Option<pki::Issued>>,
}

/// The system's trust roots, loaded once.
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a system root certificate could not be loaded");
        }
        roots.add_parsable_certificates(found.certs);
        roots
    })
}

fn tls(ca_bundle: &[u8], identity: Option<&pki::Issued>) -> Result<rustls::ClientConfig, String> {
    let roots = if ca_bundle.is_empty() {
        system_roots().clone()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(ca_bundle) {
            let certificate =
                certificate.map_err(|e| format!("unable to load root certificates: {e}"))?;
            roots
                .add(certificate)
                .map_err(|e| format!("unable to load root certificates: {e}"))?;
        }
        if roots.is_empty() {
            return Err(
                "unable to load root certificates: the caBundle holds no PEM certificate".into(),
            );
        }
        roots
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let Some(identity) = identity else {
        return Ok(builder.with_no_client_auth());
    };
    let unusable = |e: &dyn std::fmt::Display| format!("the client certificate is unusable: {e}");
    let chain = CertificateDer::pem_slice_iter(identity.certificate_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(&e))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| unusable(&e))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| unusable(&e))
}

/// A client trusting the PEM certificates of `ca_bundle`, or the system's roots when it is
/// empty; it presents no client certificate.
pub(crate) fn build(ca_bundle: &[u8]) -> Result<HttpClient, String> {
    build_as(ca_bundle, None)
}

/// [`build`], presenting `identity` (a client certificate and its key) when asked for one.
fn build_as(ca_bundle: &[u8], identity: Option<&pki::Issued>) -> Result<HttpClient, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls(ca_bundle, identity)?)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector))
}

/// An error with its causes, as one line.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The URL a review is posted to: kube-apiserver adds `?timeout=Ns` for the webhook to see.
fn with_timeout(url: &str, timeout: Duration) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let slash = if after_scheme.contains('/') { "" } else { "/" };
    format!("{url}{slash}?timeout={}s", timeout.as_secs().max(1))
}

impl Clients {
    /// Presents `identity` (a client certificate and its key) to the webhooks from now on:
    /// clients made before are dropped.
    pub(crate) fn present(&self, identity: pki::Issued) {
        let mut pool = self.pool.lock().expect("not poisoned");
        *self.identity.lock().expect("not poisoned") = Some(identity);
        pool.clear();
    }

    fn client(&self, ca_bundle: &[u8]) -> Result<HttpClient, CallError> {
        let mut pool = self.pool.lock().expect("not poisoned");
        if let Some(client) = pool.get(ca_bundle) {
            return Ok(client.clone());
        }
        let identity = self.identity.lock().expect("not poisoned").clone();
        let client = build_as(ca_bundle, identity.as_ref()).map_err(CallError::Client)?;
        if pool.len() >= MAX_CLIENTS {
            pool.clear();
        }
        pool.insert(ca_bundle.to_vec(), client.clone());
        Ok(client)
    }

    /// Posts `body` (JSON) to `url` and returns the response's body, all within `timeout`.
    pub(crate) async fn post(
        &self,
        url: &str,
        ca_bundle: &[u8],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let client = self.client(ca_bundle)?;
        let target = with_timeout(url, timeout);
        let failed = |cause: String| CallError::Failed {
            url: target.clone(),
            cause,
        };
        if !url.starts_with("https://") {
            return Err(failed("only https URLs are called".into()));
        }
        let request = http::Request::post(&target)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(e.to_string()))?;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| failed(chain(&e)))?;
            let status = response.status();
            let collected = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        CallError::TooLarge {
                            url: target.clone(),
                        }
                    } else {
                        failed(e.to_string())
                    }
                })?
                .to_bytes();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&collected[..collected.len().min(256)]);
                return Err(CallError::Status {
                    url: target.clone(),
                    status,
                    body: text.trim().to_string(),
                });
            }
            Ok(collected)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                url: target.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_in_the_url() {
        let ten = Duration::from_secs(10);
        assert_eq!(
            with_timeout("https://h:1/validate", ten),
            "https://h:1/validate?timeout=10s"
        );
        assert_eq!(with_timeout("https://h", ten), "https://h/?timeout=10s");
    }

    #[test]
    fn a_bundle_without_certificates_gives_no_client() {
        let error = build(b"not a certificate").map(|_| ()).unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
    }
}
