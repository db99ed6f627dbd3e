//! The `adamant` binary's library: the command line, and the composition of the server from the
//! crates below it. This is the only crate that chooses a storage backend, and the only one that
//! uses `anyhow`.

mod access;
mod eve;
pub mod plugin;
mod roles;
mod store;
mod telemetry;
mod telemetry_service;
mod telemetry_store;
mod webhook;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use storage::Retention;

pub use store::StoreUrl;
pub use telemetry_store::TelemetryUrl;

/// Adamant: a controller for LF Edge EVE devices whose API is Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "adamant", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the store, the Kubernetes API server and the EVE controllers.
    Serve(Box<ServeArgs>),
    /// Print the CustomResourceDefinitions of the EVE kinds, and ClusterRoles that add them to
    /// the `admin`, `edit` and `view` roles, and the EVE roles (`eve:fleet-admin`, `eve:operator`,
    /// `eve:viewer`), then what `adamant controller` runs as in cluster mode (the ServiceAccount
    /// `adamant-controller` in the Namespace `adamant-system`, bound to the ClusterRole
    /// `adamant:controller` and to the Role `adamant:controller-keys` in `kube-system`), as YAML
    /// (for `kubectl apply -f -`).
    Crds,
    /// Run the EVE controllers against any Kubernetes API server (cluster mode).
    Controller(ControllerArgs),
    /// Simulate EVE devices against a device API (this one or any EVE controller's).
    Sim(SimArgs),
    /// Write a kubeconfig with a client certificate for a user, from the client CA in a
    /// server's data directory (as `kubeadm kubeconfig user`).
    Kubeconfig(access::KubeconfigArgs),
    /// Manage the installation's keys (kept in the store, out of the API's reach).
    Keys(access::KeysArgs),
}

/// Options of `adamant sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// The device API, `HOST:PORT`.
    #[arg(long, env = "ADAMANT_DEVICE_API", default_value = "127.0.0.1:8443")]
    pub server: String,
    /// The name the controller's certificate must carry (default: the host of `--server`).
    #[arg(long)]
    pub host: Option<String>,
    /// The root certificate devices trust (their `/config/root-certificate.pem`).
    #[arg(long, default_value = "./adamant-data/pki/root-certificate.pem")]
    pub root_cert: PathBuf,
    /// How many devices (besides the one of `--device-cert`).
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// One more device, with this device certificate (PEM; an EVE device's
    /// `/persist/certs/device.cert.pem`), for a Device created in advance with it; its key is
    /// `--device-key`, its serial number `--device-serial`.
    #[arg(long, requires_all = ["device_key", "device_serial"])]
    pub device_cert: Option<PathBuf>,
    /// The private key of `--device-cert` (PKCS#8 PEM).
    #[arg(long, requires = "device_cert")]
    pub device_key: Option<PathBuf>,
    /// The serial number of the device of `--device-cert`.
    #[arg(long, requires = "device_cert")]
    pub device_serial: Option<String>,
    /// The onboarding certificate (PEM) devices register with; its key is `--onboard-key`.
    /// Without it the devices only ask for their UUID (their certificates must be known).
    #[arg(long, requires = "onboard_key")]
    pub onboard_cert: Option<PathBuf>,
    /// The onboarding certificate's private key (PKCS#8 PEM).
    #[arg(long, requires = "onboard_cert")]
    pub onboard_key: Option<PathBuf>,
    /// A certificate authority (PEM) that issues the devices' certificates, for a
    /// DeviceCertificateAuthority policy; its key is `--device-ca-key`. Without it each device
    /// makes a self-signed certificate, as EVE does.
    #[arg(long, requires = "device_ca_key")]
    pub device_ca_cert: Option<PathBuf>,
    /// The device certificate authority's private key (PKCS#8 PEM).
    #[arg(long, requires = "device_ca_cert")]
    pub device_ca_key: Option<PathBuf>,
    /// Serial numbers are this prefix followed by the device's number.
    #[arg(long, default_value = "sim-")]
    pub serial_prefix: String,
    /// `timer.config.interval` in seconds (polls at a random point of 0.3 to 1 times it).
    #[arg(long, default_value_t = 60)]
    pub config_interval: u64,
    /// `timer.metric.interval` in seconds.
    #[arg(long, default_value_t = 60)]
    pub metric_interval: u64,
    /// How long to run after onboarding, in seconds.
    #[arg(long, default_value_t = 120)]
    pub duration: u64,
}

/// Options of `adamant controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// The kubeconfig of the API server to manage (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Whether to install or upgrade the CRDs at start (needs the right to write CRDs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub install_crds: bool,
    /// What the webhook does with an object naming objects that do not exist: `refuse` or
    /// `warn` (as `adamant serve --reference-checks`).
    #[arg(long, env = "ADAMANT_REFERENCE_CHECKS", default_value = "refuse")]
    pub reference_checks: eve_controllers::admission::References,
    /// The admission webhook.
    #[command(flatten)]
    pub webhook: webhook::WebhookArgs,
    /// Whether this process serves the EVE device API (cluster mode: the root and controller
    /// certificates are Secrets in `kube-system`; `adamant sim` and devices need the root's
    /// `tls.crt`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub device_api: bool,
    /// Serve device telemetry (`/edgenode/...`, as `adamant serve` does on its API port) over
    /// HTTPS on this address, e.g. `0.0.0.0:8444`, to callers whose bearer token the cluster
    /// accepts (TokenReview), each read authorized by the cluster (SubjectAccessReview). Needs
    /// `--device-api=true`.
    #[arg(long)]
    pub telemetry_listen: Option<std::net::SocketAddr>,
    /// More DNS names or addresses for the telemetry service's certificate (repeatable), e.g.
    /// its Service's `adamant-telemetry.adamant-system.svc`; `localhost` and the listening
    /// address are always in it. The root (`tls.crt` of the root Secret) signs it.
    #[arg(long = "telemetry-host")]
    pub telemetry_hosts: Vec<String>,
    /// The EVE device API.
    #[command(flatten)]
    pub devices: DeviceArgs,
}

/// OpenID Connect authentication of `adamant serve`, as kube-apiserver's `--oidc-*` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// The OIDC issuer's URL (https:// only), as kube-apiserver's `--oidc-issuer-url`: bearer
    /// tokens that are its ID tokens (their `iss` equal to this URL) authenticate. Its keys come
    /// from `URL/.well-known/openid-configuration` and the JWKS it names.
    #[arg(long)]
    pub oidc_issuer_url: Option<String>,
    /// The client id ID tokens must be issued for (their `aud`).
    #[arg(long)]
    pub oidc_client_id: Option<String>,
    /// The claim holding the user name (default `sub`).
    #[arg(long)]
    pub oidc_username_claim: Option<String>,
    /// What goes before user names: unset, `ISSUER#` unless the username claim is `email`;
    /// `-` for nothing.
    #[arg(long)]
    pub oidc_username_prefix: Option<String>,
    /// The claim holding the groups (a string or an array of strings); no groups when unset.
    #[arg(long)]
    pub oidc_groups_claim: Option<String>,
    /// What goes before each group.
    #[arg(long)]
    pub oidc_groups_prefix: Option<String>,
    /// PEM certificates trusted for the issuer's HTTPS (the system's roots when unset).
    #[arg(long)]
    pub oidc_ca_file: Option<PathBuf>,
    /// A claim ID tokens must carry with this value, `key=value` (repeatable).
    #[arg(long = "oidc-required-claim")]
    pub oidc_required_claims: Vec<String>,
    /// The signing algorithms accepted, comma-separated (default RS256; RS256, RS384, RS512,
    /// ES256, ES384 and PS256 are supported).
    #[arg(long, value_delimiter = ',')]
    pub oidc_signing_algs: Vec<String>,
}

impl OidcArgs {
    /// The flags as the API server's OIDC options.
    pub fn options(&self) -> apiserver::oidc::Options {
        apiserver::oidc::Options {
            issuer_url: self.oidc_issuer_url.clone(),
            client_id: self.oidc_client_id.clone(),
            username_claim: self.oidc_username_claim.clone(),
            username_prefix: self.oidc_username_prefix.clone(),
            groups_claim: self.oidc_groups_claim.clone(),
            groups_prefix: self.oidc_groups_prefix.clone(),
            ca_file: self.oidc_ca_file.clone(),
            required_claims: self.oidc_required_claims.clone(),
            signing_algs: self.oidc_signing_algs.clone(),
        }
    }
}

/// Options of the EVE device API (in `serve`, and in `controller` with `--device-api`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// Where the EVE device API listens (HTTPS, for devices). Port 0 picks a free port.
    #[arg(long, env = "ADAMANT_DEVICE_ADDR", default_value = "0.0.0.0:8443")]
    pub device_addr: std::net::SocketAddr,
    /// The host names or addresses devices use to reach the device API (their
    /// `/config/server`); its certificate names them (repeatable). Loopback is always named.
    #[arg(
        long = "device-host",
        env = "ADAMANT_DEVICE_HOST",
        value_delimiter = ','
    )]
    pub device_hosts: Vec<String>,
    /// Open self-registration: any device that registers becomes a Device in this namespace,
    /// whatever its onboarding certificate. Off by default; Devices, OnboardCertificates and the
    /// certificate authorities admit devices without it.
    #[arg(long, value_name = "NAMESPACE")]
    pub open_registration: Option<String>,
    /// Seconds a device may be silent before its Ready condition turns Unknown.
    #[arg(long, default_value_t = device_api::liveness::GRACE.as_secs())]
    pub device_grace_seconds: u64,
    /// Where device telemetry (logs, info, metrics...) is kept: `embedded` (`telemetry.redb` in
    /// the data directory; `serve` only), `memory` (lost at exit) or `redis://HOST:PORT` (shared
    /// by replicas). Default: `embedded` for `serve`, `memory` for `controller`.
    #[arg(long, env = "ADAMANT_TELEMETRY_STORE")]
    pub telemetry_store: Option<TelemetryUrl>,
    /// How long telemetry is kept (Go duration).
    #[arg(long, default_value = "168h", value_parser = apiserver::events::parse_ttl)]
    pub telemetry_retention: Duration,
    /// The most bytes of records kept per device and kind (the oldest go first).
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub telemetry_max_bytes: u64,
    /// How many bytes of telemetry a device may post per second, sustained (a minute's worth
    /// of burst); beyond it devices get 429 and retry later.
    #[arg(long, default_value_t = device_api::telemetry::Budget::default().bytes_per_second as u64)]
    pub telemetry_budget: u64,
    /// Connections the device API holds open at once; beyond it a new one is closed at once.
    #[arg(long, default_value_t = 8192)]
    pub device_max_connections: usize,
    /// Connections one IP address may hold open on the device API at once (devices behind one
    /// NAT share an address).
    #[arg(long, default_value_t = 256)]
    pub device_max_connections_per_address: usize,
    /// How long a device connection may wait for a request's headers, and sit idle between
    /// requests (Go duration); the TLS handshake gets 10 s, a body 30 s.
    #[arg(long, default_value = "30s", value_parser = apiserver::events::parse_ttl)]
    pub device_idle_timeout: Duration,
    /// Requests a device may make a minute (a minute's worth at once); beyond it 429, on which
    /// EVE retries later.
    #[arg(long, default_value_t = device_api::Options::default().requests_per_minute)]
    pub device_requests_per_minute: u32,
    /// Bytes a device may send a minute (a minute's worth at once); beyond it 429.
    #[arg(long, default_value_t = device_api::Options::default().bytes_per_minute)]
    pub device_bytes_per_minute: u64,
    /// Requests one IP address may make a minute that no known device signed (registrations,
    /// unknown certificates); beyond it 429.
    #[arg(long, default_value_t = device_api::Options::default().stranger_requests_per_minute)]
    pub device_stranger_requests_per_minute: u32,
}

impl DeviceArgs {
    /// The device API's connection limits: these flags, and HTTP/1.1 only (what EVE speaks).
    fn limits(&self) -> https::Limits {
        https::Limits {
            max_connections: self.device_max_connections.max(1),
            max_per_address: self.device_max_connections_per_address.max(1),
            header: self.device_idle_timeout,
            http2: false,
            // Whole responses to a connection per request: the session ticket, the response
            // and `close_notify` in one write.
            coalesce_writes: true,
            ..https::Limits::default()
        }
    }
}

/// Connection limits of the Kubernetes API's port.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiLimitArgs {
    /// Connections the API port holds open at once; beyond it a new one is closed at once.
    #[arg(long, default_value_t = https::Limits::default().max_connections)]
    pub api_max_connections: usize,
    /// Connections one IP address may hold open on the API port at once.
    #[arg(long, default_value_t = https::Limits::default().max_per_address)]
    pub api_max_connections_per_address: usize,
    /// HTTP/1.1 on the API port: how long a connection may wait for a request's headers, and
    /// sit idle between requests (Go duration). HTTP/2 connections are pinged every 30 s and
    /// closed when a ping goes unanswered for 20 s; at most 250 streams each.
    #[arg(long, default_value = "30s", value_parser = apiserver::events::parse_ttl)]
    pub api_idle_timeout: Duration,
    /// Reads in flight at once (as kube-apiserver's flag); beyond it 429 with `Retry-After`.
    /// `system:masters` are never held back.
    #[arg(long, default_value_t = apiserver::inflight::InflightLimits::default().read_only)]
    pub max_requests_inflight: usize,
    /// Writes in flight at once (as kube-apiserver's flag); beyond it 429.
    #[arg(long, default_value_t = apiserver::inflight::InflightLimits::default().mutating)]
    pub max_mutating_requests_inflight: usize,
    /// Watches and followed telemetry streams open at once; beyond it 429.
    #[arg(long, default_value_t = apiserver::inflight::InflightLimits::default().long_running)]
    pub max_long_running_requests: usize,
}

impl ApiLimitArgs {
    fn inflight(&self) -> apiserver::inflight::InflightLimits {
        apiserver::inflight::InflightLimits {
            read_only: self.max_requests_inflight,
            mutating: self.max_mutating_requests_inflight,
            long_running: self.max_long_running_requests,
        }
    }

    fn limits(&self) -> https::Limits {
        https::Limits {
            max_connections: self.api_max_connections.max(1),
            max_per_address: self.api_max_connections_per_address.max(1),
            header: self.api_idle_timeout,
            ..https::Limits::default()
        }
    }
}

/// Options of `adamant serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the server keeps its data (the embedded store, the PKI, the admin kubeconfig).
    #[arg(long, env = "ADAMANT_DATA_DIR", default_value = "./adamant-data")]
    pub data_dir: PathBuf,
    /// The store: `embedded` (a file in the data directory) or `etcd://HOST:PORT[,HOST:PORT...]`.
    #[arg(long, env = "ADAMANT_STORE", default_value = "embedded")]
    pub store: StoreUrl,
    /// How many revisions of history to keep for watches and paginated lists.
    #[arg(long, default_value_t = Retention::default().revisions)]
    pub history_revisions: i64,
    /// How often to compact history older than that, in seconds.
    #[arg(long, default_value_t = Retention::default().interval.as_secs())]
    pub compact_interval_seconds: u64,
    /// How many events one watcher of the embedded store may fall behind before its watch is
    /// ended (the client then watches again from where it was, or lists again if that was
    /// compacted).
    #[arg(long, default_value_t = storage::DEFAULT_WATCH_CAPACITY)]
    pub watch_backlog: usize,
    /// How much of the embedded store's file its page cache keeps in memory, in MiB.
    #[arg(long, default_value_t = store::DEFAULT_CACHE_MIB)]
    pub store_cache_mib: usize,
    /// Where the Kubernetes API listens (HTTPS). Port 0 picks a free port.
    #[arg(
        long,
        visible_alias = "api-addr",
        env = "ADAMANT_LISTEN",
        default_value = "127.0.0.1:6443"
    )]
    pub listen: std::net::SocketAddr,
    /// The address written into the kubeconfig and the serving certificate, for when the API
    /// listens on `0.0.0.0` or behind another address.
    #[arg(long, env = "ADAMANT_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,
    /// More DNS names or addresses for the API's serving certificate (repeatable).
    #[arg(long = "tls-host")]
    pub tls_hosts: Vec<String>,
    /// What admission does with an object naming objects that do not exist: `refuse` (the
    /// default, naming every missing one) or `warn` (accept with a warning; the object reports a
    /// `ReferencesResolved=False` condition), for GitOps tools that apply in any order. The
    /// annotation `eve.lfedge.org/reference-checks: warn` on an object or its namespace does
    /// the same for it.
    #[arg(long, env = "ADAMANT_REFERENCE_CHECKS", default_value = "refuse")]
    pub reference_checks: eve_controllers::admission::References,
    /// How long Events are kept after their last write (Go's duration syntax: `1h`, `30m`,
    /// `1h30m`), as kube-apiserver's `--event-ttl`.
    #[arg(long, default_value = "1h", value_parser = apiserver::events::parse_ttl)]
    pub event_ttl: Duration,
    /// A file of static bearer tokens, as kube-apiserver's `--token-auth-file`: CSV lines
    /// `token,user,uid[,"group1,group2"]`. Requests without a client certificate that carry
    /// `Authorization: Bearer TOKEN` are that user.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// The issuer of ServiceAccount tokens (their `iss`), as kube-apiserver's
    /// `--service-account-issuer`; only tokens of this issuer are ServiceAccount tokens.
    #[arg(long, default_value = apiserver::serviceaccounts::DEFAULT_ISSUER)]
    pub service_account_issuer: String,
    /// The audiences a token must name one of to authenticate here, comma separated (default:
    /// the issuer); also what a TokenRequest without audiences gets.
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// The longest lifetime of a ServiceAccount token (longer requests are shortened to it; Go
    /// duration).
    #[arg(long, default_value = "48h", value_parser = apiserver::events::parse_ttl)]
    pub service_account_max_token_expiration: Duration,
    /// OpenID Connect authentication.
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// The EVE device API.
    #[command(flatten)]
    pub devices: DeviceArgs,
    /// Connection limits of the API port.
    #[command(flatten)]
    pub api_limits: ApiLimitArgs,
    /// Whether this process runs the EVE controllers (scheduling, deployments, daemon sets).
    /// `false` leaves them to an `adamant controller` elsewhere.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub eve_controllers: bool,
    /// Whether this process serves the EVE device API. `false` leaves it to an
    /// `adamant controller --device-api=true` elsewhere (two device APIs on one set of
    /// objects, each with its own root, would rewrite each other's DeviceConfigs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub device_api: bool,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Crds => {
            use std::io::Write;
            match std::io::stdout().write_all(eve::crds_yaml()?.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Controller(args) => runtime.block_on(controller(args)),
        Command::Sim(args) => runtime.block_on(sim(args)),
        Command::Kubeconfig(args) => access::kubeconfig(&args),
        Command::Keys(access::KeysArgs {
            command: access::KeysCommand::Rotate(args),
        }) => runtime.block_on(access::rotate(&args)),
    }
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let address = tokio::net::lookup_host(&args.server)
        .await
        .with_context(|| format!("cannot resolve --server {}", args.server))?
        .next()
        .with_context(|| format!("--server {} has no address", args.server))?;
    let host = args.host.clone().unwrap_or_else(|| {
        args.server
            .rsplit_once(':')
            .map_or(args.server.as_str(), |(h, _)| h)
            .trim_matches(['[', ']'])
            .to_string()
    });
    let root = std::fs::read(&args.root_cert).with_context(|| {
        format!(
            "cannot read the root certificate {}: pass --root-cert (a server writes it to DATA/pki/root-certificate.pem)",
            args.root_cert.display()
        )
    })?;
    let controller = device_sim::Controller::new(address, &host, &root)?;
    let identity = |cert: &Option<PathBuf>, key: &Option<PathBuf>| match (cert, key) {
        (Some(cert), Some(key)) => Ok::<_, anyhow::Error>(Some(device_sim::Identity {
            certificate_pem: std::fs::read(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?,
            key_pem: std::fs::read(key)
                .with_context(|| format!("cannot read {}", key.display()))?,
        })),
        _ => Ok(None),
    };
    let known = identity(&args.device_cert, &args.device_key)?
        .map(|identity| (identity, args.device_serial.clone().unwrap_or_default()));
    let expected = args.devices + usize::from(known.is_some());
    let plan = device_sim::fleet::Plan {
        devices: args.devices,
        known,
        onboard: identity(&args.onboard_cert, &args.onboard_key)?,
        device_ca: identity(&args.device_ca_cert, &args.device_ca_key)?,
        serial_prefix: args.serial_prefix.clone(),
        config_interval: Duration::from_secs(args.config_interval.max(1)),
        metric_interval: Duration::from_secs(args.metric_interval.max(1)),
        duration: Duration::from_secs(args.duration),
        spread_sources: address.ip().is_loopback() && address.is_ipv4(),
    };
    let summary = device_sim::fleet::run(controller, plan).await;
    println!("{summary}");
    anyhow::ensure!(
        summary.onboarded == expected,
        "{} of {expected} devices onboarded: see the first error above",
        summary.onboarded
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Flags are checked before anything is opened.
    let oidc = args.oidc.options().config()?;
    apiserver::pki::private_dir(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (mode 0700)",
            args.data_dir.display()
        )
    })?;
    let store = args
        .store
        .open(
            &args.data_dir,
            args.watch_backlog,
            args.store_cache_mib.max(1),
        )
        .await?;
    let revision = store.current_revision().await?;
    let retention = Retention {
        revisions: args.history_revisions.max(1),
        interval: Duration::from_secs(args.compact_interval_seconds.max(1)),
    };
    let compactor = storage::spawn_compactor(store.clone(), retention);
    let eve_admission = eve::EveAdmission::default();
    let plugins: Vec<Arc<dyn apiserver::admission::Plugin>> = vec![Arc::new(eve_admission.clone())];
    let server = apiserver::ApiServer::new(store.clone(), plugins)
        .await
        .context("cannot start the API server")?;
    apiserver::events::set_ttl(&server, args.event_ttl);
    server.set_inflight_limits(args.api_limits.inflight());
    let audiences = if args.api_audiences.is_empty() {
        vec![args.service_account_issuer.clone()]
    } else {
        args.api_audiences.clone()
    };
    server
        .service_accounts()
        .set_options(apiserver::serviceaccounts::Options {
            issuer: args.service_account_issuer.clone(),
            api_audiences: audiences,
            max_expiration: args.service_account_max_token_expiration,
        });
    if let Some(file) = &args.token_auth_file {
        server.add_token_authenticator(Arc::new(apiserver::tokens::StaticTokens::load(file)?));
    }
    if let Some(oidc) = oidc {
        server.add_token_authenticator(apiserver::oidc::OidcAuthenticator::start(oidc)?);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: choose another --listen address",
                args.listen
            )
        })?;
    let local = listener.local_addr()?;
    let config = apiserver::Config {
        data_dir: args.data_dir.clone(),
        advertise_address: args.advertise_address.clone(),
        extra_hosts: args.tls_hosts.clone(),
    };
    let tls = server
        .prepare_tls(&config, local)
        .await
        .context("cannot set up the API server's TLS")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    server.spawn_controllers(stopped.clone());
    let client = eve::local_client(server.clone(), stopped.clone());
    eve::install_crds(&client)
        .await
        .context("cannot install the EVE CustomResourceDefinitions")?;
    roles::install(&client)
        .await
        .context("cannot install the EVE roles")?;
    // One watch and one cache per kind, shared by the controllers and the device API.
    let informers = eve_controllers::informers::Informers::new(client.clone(), stopped.clone());
    let controllers = args
        .eve_controllers
        .then(|| eve_controllers::runtime::register(&informers, stopped.clone()));
    let fleet = args
        .device_api
        .then(|| device_api::fleet::Fleet::register(&informers));
    informers.start();
    let controller_metrics = controllers.as_ref().map(|c| c.metrics());
    let caches = match controllers {
        Some(controllers) => Some(
            controllers
                .run()
                .await
                .context("cannot start the EVE controllers")?,
        ),
        None => None,
    };
    eve_admission.activate(
        eve_controllers::admission::Admission::new(
            client,
            args.reference_checks,
            caches.as_ref().map(|c| c.device_lookup()),
        )
        .reading(caches.as_ref().map(|c| c.cached()).unwrap_or_default()),
    );
    let device_api = match fleet {
        Some(fleet) => Some(
            start_device_api(
                eve::local_client(server.clone(), stopped.clone()),
                fleet,
                server.vault().as_ref(),
                &args.devices,
                DeviceFiles {
                    data_dir: Some(&args.data_dir),
                    advertise_address: args.advertise_address.as_deref(),
                    exports: Some(&args.data_dir.join("pki")),
                },
                stopped.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // `/metrics`: the device API's beside the server's; `/metrics/fleet`: the fleet exporter.
    let mut files = Vec::new();
    if matches!(args.store, StoreUrl::Embedded) {
        files.push(("objects", args.data_dir.join("store.redb")));
    }
    if device_api.is_some()
        && matches!(
            args.devices.telemetry_store,
            None | Some(TelemetryUrl::Embedded)
        )
    {
        files.push(("telemetry", args.data_dir.join("telemetry.redb")));
    }
    let api = device_api.as_ref().map(|(_, _, api)| api.clone());
    server.metrics().register(|registry| {
        if let Some(api) = &api {
            api.register_metrics(registry);
        }
        if let Some(metrics) = &controller_metrics {
            metrics.register(registry);
        }
        registry.register_collector(Box::new(store::StoreFiles(files)));
    });
    if let Some(api) = api {
        server.metrics().add_page("fleet", api.fleet_registry());
        server.mount("edgenode", Arc::new(telemetry::TelemetryEndpoints(api)));
    }
    let (devices, device_serving) = match device_api {
        Some((local, serving, _)) => (format!("https://{local}"), Some(serving)),
        None => ("off".to_string(), None),
    };
    let serving = tokio::spawn(server.clone().serve(
        listener,
        tls,
        args.api_limits.limits(),
        stopped,
    ));
    tracing::info!(
        store = %args.store,
        revision,
        api = %format!("https://{local}"),
        devices = %devices,
        kubeconfig = %args.data_dir.join("kubeconfig").display(),
        "adamant is ready"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = serving.await;
    if let Some(device_serving) = device_serving {
        let _ = device_serving.await;
    }
    compactor.abort();
    drop(server);
    drop(store);
    Ok(())
}

/// Where `adamant serve` keeps its device API's files: none in cluster mode.
#[derive(Clone, Copy, Default)]
struct DeviceFiles<'a> {
    /// The data directory (the embedded telemetry store's).
    data_dir: Option<&'a std::path::Path>,
    /// The address devices are told to reach, for the certificate.
    advertise_address: Option<&'a str>,
    /// Where the controller's certificates are written (the vault is the truth).
    exports: Option<&'a std::path::Path>,
}

/// Starts the device API on `args.device_addr` with the keys in `vault`; returns where it
/// listens and its task.
async fn start_device_api(
    client: kube::Client,
    fleet: device_api::fleet::Fleet,
    vault: &dyn pki::Vault,
    args: &DeviceArgs,
    files: DeviceFiles<'_>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
    Arc<device_api::DeviceApi>,
)> {
    let DeviceFiles {
        data_dir,
        advertise_address,
        exports,
    } = files;
    let default_store = match data_dir {
        Some(_) => TelemetryUrl::Embedded,
        None => TelemetryUrl::Memory,
    };
    let telemetry_url = args.telemetry_store.clone().unwrap_or(default_store);
    let telemetry_store = telemetry_url.open(data_dir).await?;
    telemetry_store::spawn_retention(
        telemetry_store.clone(),
        ::telemetry::Retention {
            max_age: args.telemetry_retention,
            max_bytes: args.telemetry_max_bytes,
        },
        Duration::from_secs(60),
        stop.clone(),
    );
    let api = device_api::DeviceApi::start(
        client,
        fleet,
        vault,
        device_api::Options {
            open_registration: args.open_registration.clone(),
            grace: Duration::from_secs(args.device_grace_seconds.max(1)),
            requests_per_minute: args.device_requests_per_minute,
            bytes_per_minute: args.device_bytes_per_minute,
            stranger_requests_per_minute: args.device_stranger_requests_per_minute,
        },
        Arc::new(device_api::telemetry::Telemetry::new(
            telemetry_store,
            device_api::telemetry::Budget {
                bytes_per_second: args.telemetry_budget.max(1) as f64,
            },
        )),
        stop.clone(),
    )
    .await
    .context("cannot start the device API")?;
    if let Some(dir) = exports {
        for (file, pem) in [
            (
                "controller-signing.pem",
                &api.certs().signing.certificate_pem,
            ),
            ("controller-ecdh.pem", &api.certs().ecdh.certificate_pem),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, pem)
                .with_context(|| format!("cannot export {}", path.display()))?;
        }
    }
    let listener = tokio::net::TcpListener::bind(args.device_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for devices: choose another --device-addr",
                args.device_addr
            )
        })?;
    let local = listener.local_addr()?;
    let mut hosts = args.device_hosts.clone();
    hosts.extend(["localhost".into(), "127.0.0.1".into(), "::1".into()]);
    hosts.extend(advertise_address.map(str::to_string));
    if !local.ip().is_unspecified() {
        hosts.push(local.ip().to_string());
    }
    let tls = api
        .certs()
        .tls(&hosts)
        .context("cannot make the device API's certificate")?;
    let serving = tokio::spawn(api.clone().serve(listener, tls, args.limits(), stop));
    Ok((local, serving, api))
}

async fn controller(args: ControllerArgs) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("cannot use the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig: pass --kubeconfig or set KUBECONFIG")?,
    };
    let client = kube::Client::try_from(config).context("cannot make a Kubernetes client")?;
    if args.install_crds {
        eve::install_crds(&client)
            .await
            .context("cannot install the EVE CustomResourceDefinitions")?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // One watch and one cache per kind, shared by the controllers and the device API.
    let informers = eve_controllers::informers::Informers::new(client.clone(), stopped.clone());
    let controllers = eve_controllers::runtime::register(&informers, stopped.clone());
    let fleet = args
        .device_api
        .then(|| device_api::fleet::Fleet::register(&informers));
    informers.start();
    let caches = controllers
        .run()
        .await
        .context("cannot start the EVE controllers")?;
    let admission = eve_controllers::admission::Admission::new(
        client.clone(),
        args.reference_checks,
        Some(caches.device_lookup()),
    )
    .reading(caches.cached());
    let webhook = webhook::start(&args.webhook, &client, admission, stopped.clone())
        .await
        .context("cannot start the admission webhook")?;
    if args.telemetry_listen.is_some() && !args.device_api {
        anyhow::bail!(
            "--telemetry-listen serves the device API's telemetry: add --device-api=true"
        );
    }
    let (devices, telemetry) = if let Some(fleet) = fleet {
        let (address, _, api) = start_device_api(
            client.clone(),
            fleet,
            &device_api::pki::SecretVault::new(client.clone()),
            &args.devices,
            DeviceFiles::default(),
            stopped.clone(),
        )
        .await?;
        let telemetry = match args.telemetry_listen {
            Some(listen) => Some(
                serve_telemetry(listen, &args.telemetry_hosts, api, client.clone(), stopped)
                    .await?,
            ),
            None => None,
        };
        (Some(address), telemetry)
    } else {
        (None, None)
    };
    let https =
        |a: Option<std::net::SocketAddr>| a.map(|a| format!("https://{a}")).unwrap_or_default();
    tracing::info!(
        webhook = %https(webhook),
        devices = %https(devices),
        telemetry = %https(telemetry),
        "adamant controller is ready"
    );
    shutdown_signal().await;
    let _ = stop.send(true);
    Ok(())
}

/// Starts cluster mode's telemetry service on `listen` with a certificate from the root for
/// `hosts`, localhost and the bound address; returns the bound address.
async fn serve_telemetry(
    listen: std::net::SocketAddr,
    hosts: &[String],
    api: Arc<device_api::DeviceApi>,
    client: kube::Client,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for telemetry readers on {listen}"))?;
    let local = listener.local_addr()?;
    let mut names = hosts.to_vec();
    names.extend(["localhost".into(), "127.0.0.1".into(), "::1".into()]);
    if !local.ip().is_unspecified() {
        names.push(local.ip().to_string());
    }
    let tls = api
        .certs()
        .tls(&names)
        .context("cannot make the telemetry service's certificate")?;
    tokio::spawn(telemetry_service::TelemetryService::new(api, client).serve(listener, tls, stop));
    Ok(local)
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Listeners {
        #[command(flatten)]
        device: DeviceArgs,
        #[command(flatten)]
        api: ApiLimitArgs,
    }

    #[test]
    fn only_the_device_listener_holds_its_writes() {
        let args = Listeners::parse_from(["adamant"]);
        let device = args.device.limits();
        assert!(device.coalesce_writes && !device.http2);
        // The Kubernetes API streams watches to clients that send nothing meanwhile.
        assert!(!args.api.limits().coalesce_writes);
    }
}
