//! The admission webhook of cluster mode: the EVE admission rules served over HTTPS as
//! `AdmissionReview`s, and the webhook configurations that point the API server at them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use eve_controllers::admission::Admission;
use eve_controllers::webhook::{self, Endpoint, Stage};
use http_body_util::{BodyExt, Full, Limited};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, Patch, PatchParams};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The largest review accepted: an object and its old version, each up to etcd's 1.5 MiB
/// limit, with room for JSON's escaping.
const MAX_REVIEW: usize = 8 * 1024 * 1024;

/// Options of the webhook.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Serve the admission rules as a webhook (HTTPS) on this address, e.g. `0.0.0.0:8443`.
    /// Without it, only the CRDs' schemas check objects in cluster mode.
    #[arg(long)]
    pub webhook_listen: Option<SocketAddr>,
    /// Where the API server reaches the webhook: `https://HOST:PORT` or a Service as
    /// `NAMESPACE/NAME[:PORT]`. Given, the controller registers (or updates) the
    /// `adamant-eve` Mutating- and ValidatingWebhookConfigurations at start.
    #[arg(long, requires = "webhook_listen")]
    pub webhook_endpoint: Option<Endpoint>,
    /// The webhook's serving certificate (PEM), e.g. a cert-manager Secret's `tls.crt`.
    /// Without it, the controller makes a certificate authority and a certificate at start
    /// (fine for one replica; replicas need a shared certificate).
    #[arg(long, requires_all = ["webhook_key_file", "webhook_ca_file"])]
    pub webhook_cert_file: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(long, requires = "webhook_cert_file")]
    pub webhook_key_file: Option<PathBuf>,
    /// The certificate authority of `--webhook-cert-file` (PEM), the registered `caBundle`.
    #[arg(long, requires = "webhook_cert_file")]
    pub webhook_ca_file: Option<PathBuf>,
    /// More DNS names or addresses for a generated certificate (repeatable). The endpoint's
    /// host, or the Service's DNS names, are always included.
    #[arg(long = "webhook-host")]
    pub webhook_hosts: Vec<String>,
    /// Certificate authorities (PEM) of the clients allowed to call the webhook: the TLS
    /// handshake then requires a client certificate they issued, such as the one the API
    /// server presents (kube-apiserver's admission kubeconfig; `adamant serve`'s is issued by
    /// its client CA, `DATA/pki/client-ca.crt`). Without it, anyone who reaches the webhook's
    /// address may call it.
    #[arg(long, requires = "webhook_listen")]
    pub webhook_client_ca: Option<PathBuf>,
}

/// A certificate to serve and the authority to register as `caBundle`.
struct Serving {
    chain_pem: String,
    key_pem: String,
    ca_pem: String,
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

impl WebhookArgs {
    fn serving(&self) -> anyhow::Result<Serving> {
        if let (Some(cert), Some(key), Some(ca)) = (
            &self.webhook_cert_file,
            &self.webhook_key_file,
            &self.webhook_ca_file,
        ) {
            return Ok(Serving {
                chain_pem: read(cert)?,
                key_pem: read(key)?,
                ca_pem: read(ca)?,
            });
        }
        let mut hosts = self.webhook_hosts.clone();
        match &self.webhook_endpoint {
            Some(Endpoint::Url(url)) => {
                let authority = url.trim_start_matches("https://");
                let host = authority.split('/').next().unwrap_or(authority);
                let host = match host.rsplit_once(':') {
                    Some((host, port)) if port.parse::<u16>().is_ok() => host,
                    _ => host,
                };
                hosts.push(host.trim_start_matches('[').trim_end_matches(']').into());
            }
            Some(Endpoint::Service {
                namespace, name, ..
            }) => {
                hosts.push(format!("{name}.{namespace}.svc"));
                hosts.push(format!("{name}.{namespace}.svc.cluster.local"));
            }
            None => {}
        }
        hosts.extend(["localhost".into(), "127.0.0.1".into()]);
        let authority = pki::Authority::generate("adamant-webhook-ca")?;
        let issued = authority.issue_server("adamant-webhook", &hosts)?;
        Ok(Serving {
            chain_pem: issued.certificate_pem,
            key_pem: issued.key_pem,
            ca_pem: authority.certificate_pem,
        })
    }
}

fn tls_config(
    serving: &Serving,
    client_ca: Option<&PathBuf>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let Some(client_ca) = client_ca else {
        let config =
            https::server_config(&serving.chain_pem, &serving.key_pem, &[b"h2", b"http/1.1"])
                .context("the webhook's certificate")?;
        return Ok(Arc::new(config));
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let text = read(client_ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(text.as_bytes()) {
        let certificate =
            certificate.with_context(|| format!("--webhook-client-ca {}", client_ca.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("--webhook-client-ca {}", client_ca.display()))?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "--webhook-client-ca {} holds no PEM certificate",
        client_ca.display()
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Every caller must present a certificate these authorities issued: no anonymous client.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .with_context(|| format!("--webhook-client-ca {}", client_ca.display()))?;
    let chain = CertificateDer::pem_slice_iter(serving.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the webhook's certificate")?;
    let key =
        PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).context("the webhook's key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("the webhook's certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn respond(status: http::StatusCode, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let content_type = if status == http::StatusCode::OK {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

async fn handle(
    admission: Arc<Admission>,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    use http::StatusCode;
    let path = request.uri().path().to_string();
    if path == "/healthz" || path == "/readyz" {
        return respond(StatusCode::OK, "ok");
    }
    let Some(stage) = Stage::from_path(&path) else {
        return respond(
            StatusCode::NOT_FOUND,
            format!(
                "no webhook at {path}: the API server posts reviews to {} and {}\n",
                webhook::MUTATE_PATH,
                webhook::VALIDATE_PATH
            ),
        );
    };
    if request.method() != http::Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "admission reviews are POSTed\n",
        );
    }
    let body = match Limited::new(request.into_body(), MAX_REVIEW)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                format!("the review could not be read: {e}\n"),
            );
        }
    };
    match webhook::answer(&admission, stage, &body).await {
        Ok(answer) => respond(StatusCode::OK, answer),
        Err(e) => respond(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// Starts the webhook if `--webhook-listen` is given, registering it if `--webhook-endpoint`
/// is. Returns the address it listens on.
pub(crate) async fn start(
    args: &WebhookArgs,
    client: &kube::Client,
    admission: Admission,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(listen) = args.webhook_listen else {
        return Ok(None);
    };
    let serving = args.serving()?;
    let tls = tls_config(&serving, args.webhook_client_ca.as_ref())?;
    if args.webhook_client_ca.is_none() {
        tracing::warn!(
            "the webhook accepts reviews from anyone who reaches {listen}: --webhook-client-ca limits it to the API server's client certificate"
        );
    }
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("the webhook cannot listen on {listen}: choose another --webhook-listen")
    })?;
    let local = listener.local_addr()?;
    if let Some(endpoint) = &args.webhook_endpoint {
        register(client, endpoint, &serving.ca_pem).await?;
    }
    let admission = Arc::new(admission);
    tokio::spawn(https::serve(listener, tls, stop, move |_peer| {
        let admission = admission.clone();
        move |request| handle(admission.clone(), request)
    }));
    Ok(Some(local))
}

async fn register(client: &kube::Client, endpoint: &Endpoint, ca_pem: &str) -> anyhow::Result<()> {
    let (mutating, validating) = webhook::configurations(endpoint, ca_pem);
    let params = PatchParams::apply("adamant-controller").force();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(webhook::CONFIGURATION_NAME, &params, &Patch::Apply(&mutating))
        .await
        .context("cannot register the MutatingWebhookConfiguration (may the controller write admissionregistration.k8s.io?)")?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(webhook::CONFIGURATION_NAME, &params, &Patch::Apply(&validating))
        .await
        .context("cannot register the ValidatingWebhookConfiguration (may the controller write admissionregistration.k8s.io?)")?;
    tracing::info!(
        name = webhook::CONFIGURATION_NAME,
        "webhook configurations registered"
    );
    Ok(())
}
