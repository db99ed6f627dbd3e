//! The commands that work on a server's data directory rather than through its API:
//! `adamant kubeconfig` (a client certificate for a user, as `kubeadm kubeconfig user` makes
//! one) and `adamant keys rotate` (forgetting an installation key so that the next start makes
//! a new one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::StoreUrl;

/// Options of `adamant kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// The user the certificate names (its CN); RBAC bindings name it as a `User`.
    #[arg(long)]
    pub user: String,
    /// A group the user is in (the certificate's O; repeatable); bindings name it as a `Group`.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// How long the certificate is valid (Go's duration syntax: `24h`, `90m`); the default is
    /// kubeadm's, a year.
    #[arg(long, default_value = "8760h", value_parser = apiserver::events::parse_ttl)]
    pub ttl: Duration,
    /// The server's data directory (this reads its `pki/client-ca.crt` and `.key`, the root
    /// certificate and the admin kubeconfig's server address).
    #[arg(long, env = "ADAMANT_DATA_DIR", default_value = "./adamant-data")]
    pub data_dir: PathBuf,
    /// The API server's URL (default: the admin kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// The namespace of the kubeconfig's context.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Where to write the kubeconfig (mode 0600); without it, standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// Options of `adamant keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `adamant keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Forget installation keys so that the next start makes new ones. With the embedded store,
    /// stop the server first; with etcd, restart every replica afterwards.
    Rotate(RotateArgs),
}

/// Options of `adamant keys rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The keys to forget.
    #[arg(required = true, value_enum)]
    pub keys: Vec<Rotatable>,
    /// The server's data directory.
    #[arg(long, env = "ADAMANT_DATA_DIR", default_value = "./adamant-data")]
    pub data_dir: PathBuf,
    /// The server's store (as `adamant serve --store`).
    #[arg(long, env = "ADAMANT_STORE", default_value = "embedded")]
    pub store: StoreUrl,
}

/// The keys `adamant keys rotate` forgets. The root is not among them: devices trust it, and
/// a new one would cut every device off.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Rotatable {
    /// The client CA: every client certificate it issued stops working (the admin kubeconfig
    /// is made anew at start; users need new ones from `adamant kubeconfig`).
    ClientCa,
    /// The ServiceAccount token signing key: every ServiceAccount token stops working.
    ServiceAccountKey,
    /// The device API's signing certificate: devices fetch the new one (`/certs`) when their
    /// next configuration names it.
    DeviceSigning,
    /// The device API's ECDH certificate, likewise.
    DeviceEcdh,
}

impl Rotatable {
    fn name(self) -> &'static str {
        match self {
            Rotatable::ClientCa => pki::names::CLIENT_CA,
            Rotatable::ServiceAccountKey => pki::names::SERVICE_ACCOUNT,
            Rotatable::DeviceSigning => pki::names::DEVICE_SIGNING,
            Rotatable::DeviceEcdh => pki::names::DEVICE_ECDH,
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: pass the --data-dir of a server that has started once",
            path.display()
        )
    })
}

/// The server URL of the admin kubeconfig in `data_dir`.
fn admin_server_url(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("kubeconfig");
    let config: serde_yaml::Value = serde_yaml::from_str(&read(&path)?)
        .with_context(|| format!("{} is not a kubeconfig", path.display()))?;
    config["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{} names no server: pass --server", path.display()))
}

/// Writes a kubeconfig for `args.user`.
pub(crate) fn kubeconfig(args: &KubeconfigArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.user.trim().is_empty(), "--user must name someone");
    let pki_dir = args.data_dir.join("pki");
    let client_ca = pki::Authority::from_pem(
        &read(&pki_dir.join("client-ca.crt"))?,
        &read(&pki_dir.join("client-ca.key"))?,
    )
    .context("the client CA in the data directory is damaged")?;
    let root = read(&pki_dir.join("root-certificate.pem"))?;
    let server = match &args.server {
        Some(server) => server.clone(),
        None => admin_server_url(&args.data_dir)?,
    };
    let groups: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let issued = client_ca
        .issue_client(&args.user, &groups, args.ttl)
        .context("cannot issue the client certificate")?;
    let text = apiserver::pki::kubeconfig(&server, &root, &args.user, &issued, &args.namespace);
    match &args.output {
        Some(path) => apiserver::pki::write_file(path, &text, true)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("cannot write the kubeconfig")
        }
    }
}

/// Forgets the keys `args.keys` in the store.
pub(crate) async fn rotate(args: &RotateArgs) -> anyhow::Result<()> {
    let store = args
        .store
        .open(
            &args.data_dir,
            storage::DEFAULT_WATCH_CAPACITY,
            crate::store::DEFAULT_CACHE_MIB,
        )
        .await
        .with_context(|| {
            "cannot open the store: with the embedded store, stop the server first".to_string()
        })?;
    for key in &args.keys {
        let name = key.name();
        let forgotten = apiserver::keys::StoreVault::forget(store.as_ref(), name).await?;
        println!(
            "{name}: {}",
            if forgotten {
                "forgotten; the next start makes a new one"
            } else {
                "not stored; the next start makes one"
            }
        );
    }
    Ok(())
}
