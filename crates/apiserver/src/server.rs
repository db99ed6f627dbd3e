//! The API server: its state (store, catalog, admission, authorizer), its start (default
//! namespaces, PKI, kubeconfig), its controllers (CRD establishment and cleanup, namespace
//! finalization) and its HTTPS listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use registry::{ApiError, ListOptions, Registry, Resource, WriteOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};
use storage::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admission::Plugin;
use crate::auth::{Authorizer, User};
use crate::catalog::{Catalog, Column, Kind, Printer, merge_components};
use crate::crd::{self, CrdStatusStrategy, CrdStrategy};
use crate::native;
use crate::pki::{self, PkiError, Root};
use crate::schema::{Components, Schema};

/// The namespaces that exist from the start and cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where `pki/` and `kubeconfig` are written.
    pub data_dir: PathBuf,
    /// The address clients are told to use, when the listener's is not reachable (`0.0.0.0`).
    pub advertise_address: Option<String>,
    /// More names or addresses for the serving certificate.
    pub extra_hosts: Vec<String>,
}

/// What can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The PKI failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The store failed.
    #[error("the store failed while starting: {0}")]
    Store(#[from] ApiError),
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// The service-account key cannot be read or made.
    #[error(transparent)]
    ServiceAccountKey(#[from] crate::serviceaccounts::KeyError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] ::pki::VaultError),
}

/// The API server's state. Cheap to share (`Arc`).
pub struct ApiServer {
    pub(crate) registry: Registry,
    catalog: RwLock<Arc<Catalog>>,
    pub(crate) base_components: Arc<Components>,
    pub(crate) plugins: Arc<Vec<Arc<dyn Plugin>>>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    /// The RBAC authorizer (also `authorizer`), for the review APIs.
    pub(crate) rbac: Arc<crate::rbac::Rbac>,
    pub(crate) crd_kind: Arc<Kind>,
    /// The installation's keys.
    vault: crate::keys::StoreVault,
    /// Places of requests in flight, by class.
    inflight: std::sync::RwLock<Arc<crate::inflight::Inflight>>,
    /// ServiceAccount tokens: issued by `serviceaccounts/token`, and the first authenticator.
    service_accounts: Arc<crate::serviceaccounts::ServiceAccounts>,
    /// Handlers of whole path prefixes beside the API (`/edgenode/`).
    mounts: std::sync::RwLock<Vec<(String, Arc<dyn crate::auth::Mounted>)>>,
    /// The server's metrics and the registries served at `/metrics`.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// What authenticates bearer tokens, in order.
    authenticators: std::sync::RwLock<Vec<Arc<dyn crate::auth::TokenAuthenticator>>>,
    /// The admission webhooks' HTTPS clients, which present [`WEBHOOK_CLIENT_USER`]'s
    /// certificate once the PKI is made.
    webhook_clients: Arc<crate::webhooks::Clients>,
}

/// The user of the client certificate the API server presents to admission webhooks, issued by
/// the client CA (`DATA/pki/client-ca.crt`, which a webhook may require: `adamant controller
/// --webhook-client-ca`). It is in no group: to this API it is a user without permissions.
pub const WEBHOOK_CLIENT_USER: &str = "system:apiserver";

pub(crate) fn crd_kind(components: &Arc<Components>) -> Kind {
    let name = native::native_schema_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let main = Resource {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
        kind: "CustomResourceDefinition".into(),
        namespaced: false,
        strategy: Arc::new(CrdStrategy),
    };
    Kind {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        resource: "customresourcedefinitions".into(),
        kind: "CustomResourceDefinition".into(),
        singular: "customresourcedefinition".into(),
        short_names: vec!["crd".into(), "crds".into()],
        categories: Vec::new(),
        namespaced: false,
        storage_version: "v1".into(),
        status: Some(Resource {
            strategy: Arc::new(CrdStatusStrategy),
            ..main.clone()
        }),
        main,
        scale: None,
        printer: Printer::Native {
            columns: vec![Column::new(
                "Created At",
                "string",
                0,
                "When the definition was created",
            )],
            cells: |o| vec![o["metadata"]["creationTimestamp"].clone()],
        },
        schema: Schema::new(
            json!({"$ref": format!("#/components/schemas/{name}")}),
            components.clone(),
            false,
        ),
        schema_name: name,
        native: true,
        selectable_fields: Vec::new(),
        computed: None,
        create_subresources: Vec::new(),
        terminating: false,
        finalize: None,
        settles_catalog: true,
    }
}

impl ApiServer {
    /// ServiceAccount tokens (set their options before serving).
    pub fn service_accounts(&self) -> &Arc<crate::serviceaccounts::ServiceAccounts> {
        &self.service_accounts
    }

    /// Sets how many requests of each class may be in flight (before serving).
    pub fn set_inflight_limits(&self, limits: crate::inflight::InflightLimits) {
        *self
            .inflight
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(crate::inflight::Inflight::new(limits));
    }

    /// The places of requests in flight.
    pub(crate) fn inflight(&self) -> Arc<crate::inflight::Inflight> {
        self.inflight
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The audiences bearer tokens are checked for (`--api-audiences`).
    pub(crate) fn api_audiences(&self) -> Vec<String> {
        self.service_accounts.api_audiences()
    }

    /// The metrics served at `/metrics` (others may add theirs) and `/metrics/NAME`.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Serves the paths under `/PREFIX/` with `handler` (authenticated requests only).
    pub fn mount(&self, prefix: &str, handler: Arc<dyn crate::auth::Mounted>) {
        self.mounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((prefix.to_string(), handler));
    }

    /// The handler mounted at `prefix`, if any.
    pub(crate) fn mounted(&self, prefix: &str) -> Option<Arc<dyn crate::auth::Mounted>> {
        self.mounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, h)| h.clone())
    }

    /// The installation's keys (`pki::names`), out of every API request's reach.
    pub fn vault(&self) -> Arc<dyn ::pki::Vault> {
        Arc::new(self.vault.clone())
    }

    /// Authenticates requests that carry a bearer token (and no client certificate) with
    /// `authenticator` too, after those added before it.
    pub fn add_token_authenticator(&self, authenticator: Arc<dyn crate::auth::TokenAuthenticator>) {
        self.authenticators
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(authenticator);
    }

    /// The user of a bearer token, from the first authenticator that accepts it; else why
    /// each that recognised it refused it (empty when none did).
    pub(crate) async fn token_user(&self, token: &str) -> Result<User, Vec<String>> {
        let authenticators = self
            .authenticators
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut refusals = Vec::new();
        for authenticator in authenticators {
            match authenticator.authenticate(token).await {
                Ok(Some(user)) => return Ok(user),
                Ok(None) => {}
                Err(why) => refusals.push(why),
            }
        }
        Err(refusals)
    }

    /// A server over `store`, with the default namespaces in place and the CRDs in the store
    /// served.
    pub async fn new(
        store: Arc<dyn Store>,
        plugins: Vec<Arc<dyn Plugin>>,
    ) -> Result<Arc<ApiServer>, StartError> {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let store: Arc<dyn Store> = Arc::new(crate::metered::MeteredStore::new(
            store,
            metrics.storage.clone(),
        ));
        let registry = Registry::new(store.clone());
        let vault = crate::keys::StoreVault::new(store, &registry);
        let key = ::pki::load_or_make(&vault, ::pki::names::SERVICE_ACCOUNT, || {
            let key = ::pki::Authority::generate(::pki::names::SERVICE_ACCOUNT)?;
            Ok(::pki::Issued {
                key_pem: key.key_pem(),
                certificate_pem: key.certificate_pem,
            })
        })
        .await?;
        let service_accounts = Arc::new(crate::serviceaccounts::ServiceAccounts::new(
            registry.clone(),
            &key,
        )?);
        // The bootstrap roles and bindings, and the authorizer's cache of RBAC objects.
        let rbac = crate::rbac::Rbac::start(&registry).await?;
        let webhook_clients = Arc::new(crate::webhooks::Clients::default());
        let plugins = [
            plugins,
            vec![
                rbac.plugin(),
                crate::webhooks::plugin(&registry, webhook_clients.clone()),
            ],
        ]
        .concat();
        let base_components = Arc::new(native::components());
        let server = Arc::new(ApiServer {
            registry,
            catalog: RwLock::new(Arc::new(Catalog::default())),
            crd_kind: Arc::new(crd_kind(&base_components)),
            base_components,
            plugins: Arc::new(plugins),
            authorizer: rbac.clone(),
            rbac,
            authenticators: std::sync::RwLock::new(vec![
                service_accounts.clone() as Arc<dyn crate::auth::TokenAuthenticator>
            ]),
            service_accounts,
            mounts: std::sync::RwLock::new(Vec::new()),
            metrics,
            vault,
            inflight: std::sync::RwLock::new(Arc::new(crate::inflight::Inflight::new(
                crate::inflight::InflightLimits::default(),
            ))),
            webhook_clients,
        });
        let namespaces = native::namespace_resource();
        for name in SYSTEM_NAMESPACES {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match server
                .registry
                .create(&namespaces, "", namespace, &WriteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        server.refresh_catalog().await?;
        Ok(server)
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("not poisoned").clone()
    }

    /// Rebuilds the catalog from the native kinds and the established CRDs in the store (those
    /// being deleted included, as kube-apiserver serves them until they go: their objects are
    /// read, changed and deleted, not created).
    pub async fn refresh_catalog(&self) -> Result<(), ApiError> {
        let crds = self
            .registry
            .list(&self.crd_kind.main, None, &ListOptions::default())
            .await?;
        let established: Vec<&Value> = crds
            .items
            .iter()
            .filter(|crd| is_established(crd))
            .collect();
        let mut parts = vec![(*self.base_components).clone()];
        parts.extend(established.iter().map(|crd| crd::components(crd)));
        let components = Arc::new(merge_components(parts));
        let mut kinds = native::kinds(&self.base_components);
        kinds.push((*self.crd_kind).clone());
        for crd in established {
            kinds.extend(crd::kinds(crd, &components));
        }
        let catalog = Catalog::new(kinds, components);
        *self.catalog.write().expect("not poisoned") = Arc::new(catalog);
        Ok(())
    }

    /// Establishes a CRD (status conditions) if it is not yet, and refreshes the catalog.
    pub(crate) async fn establish(&self, crd: &Value) -> Result<(), ApiError> {
        let name = registry::object::name(crd).to_string();
        let status_resource = self.crd_kind.status.clone().expect("CRDs have status");
        let now = registry::object::now();
        self.registry
            .update_with(
                &status_resource,
                "",
                &name,
                &WriteOptions::default(),
                |current| {
                    let mut next = current.clone();
                    next["status"] = crd::established_status(current, &now);
                    if let Some(meta) = next["metadata"].as_object_mut() {
                        meta.remove("resourceVersion");
                    }
                    Ok(next)
                },
            )
            .await?;
        self.refresh_catalog().await
    }

    /// Runs the controllers until `shutdown` turns true.
    pub fn spawn_controllers(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        crate::controllers::spawn_crds(self.clone(), shutdown.clone());
        tokio::spawn(crate::gc::run(self.clone(), shutdown.clone()));
        self.rbac
            .spawn_controllers(&self.registry, shutdown.clone());
        crate::controllers::spawn_service_accounts(self.clone(), shutdown.clone());
        crate::controllers::spawn_namespaces(self.clone(), shutdown);
    }

    /// Makes the PKI (the authorities from the vault), writes `DATA/pki/` and
    /// `DATA/kubeconfig` for `local` (the listener's address), gives the webhook clients their
    /// client certificate, and returns the TLS configuration, which trusts client certificates
    /// from the client CA only.
    pub async fn prepare_tls(
        &self,
        config: &Config,
        local: SocketAddr,
    ) -> Result<Arc<rustls::ServerConfig>, StartError> {
        let authorities = pki::load_or_create(&self.vault).await?;
        let host = match (&config.advertise_address, local.ip()) {
            (Some(address), _) => address.clone(),
            (None, ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            (None, ip) => ip.to_string(),
        };
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
            host.clone(),
        ];
        if !local.ip().is_unspecified() {
            hosts.push(local.ip().to_string());
        }
        hosts.extend(config.extra_hosts.iter().cloned());
        let serving = authorities
            .root
            .issue_server("adamant-apiserver", &hosts)
            .map_err(PkiError::from)?;
        let admin = authorities
            .client_ca
            .issue_client(
                pki::ADMIN_USER,
                &["system:masters"],
                ::pki::validity::CLIENT,
            )
            .map_err(PkiError::from)?;
        let url_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let url = format!("https://{url_host}:{}", local.port());
        pki::export(&config.data_dir, &authorities, &serving, &admin, &url)?;
        // Webhooks that require a client certificate from the client CA accept this server.
        let webhook_client = authorities
            .client_ca
            .issue_client(WEBHOOK_CLIENT_USER, &[], ::pki::validity::CLIENT)
            .map_err(PkiError::from)?;
        self.webhook_clients.present(webhook_client);
        tls_config(&authorities.client_ca, &serving)
    }

    /// Serves one request from an in-process client acting as `user`, without a socket: how the
    /// EVE half's Kubernetes client reaches this server in `adamant serve`. Watches end when
    /// `shutdown` turns true.
    pub async fn call<B: crate::http::RequestBody>(
        self: Arc<Self>,
        user: User,
        request: http::Request<B>,
        shutdown: watch::Receiver<bool>,
    ) -> http::Response<crate::http::ResponseBody> {
        crate::http::handle(self, user, request, shutdown).await
    }

    /// Serves HTTPS on `listener` within `limits` until `shutdown` turns true.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        limits: https::Limits,
        shutdown: watch::Receiver<bool>,
    ) {
        https::serve_with(listener, tls, limits, shutdown.clone(), move |peer| {
            let user = peer
                .certificates
                .first()
                .and_then(|leaf| User::from_certificate(leaf))
                .unwrap_or_else(User::anonymous);
            let server = self.clone();
            let shutdown = shutdown.clone();
            move |request| {
                crate::http::handle(server.clone(), user.clone(), request, shutdown.clone())
            }
        })
        .await;
    }
}

pub(crate) fn is_established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

fn tls_config(
    client_ca: &Root,
    serving: &pki::Issued,
) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let tls = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(client_ca.certificate_pem.as_bytes()) {
        roots
            .add(certificate.map_err(|e| tls(&e))?)
            .map_err(|e| tls(&e))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| tls(&e))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(serving.certificate_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).map_err(|e| tls(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
