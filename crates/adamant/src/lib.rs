//! The `adamant` binary's library: the command line, and the composition of the server from the
//! crates below it. This is the only crate that chooses a storage backend, and the only one that
//! uses `anyhow`.

mod store;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use storage::Retention;

pub use store::StoreUrl;

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
    /// Run the server: the store, and (as they are built) the API server, controllers and device API.
    Serve(ServeArgs),
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
        Command::Serve(args) => runtime.block_on(serve(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let store = args.store.open(&args.data_dir).await?;
    let revision = store.current_revision().await?;
    let retention = Retention {
        revisions: args.history_revisions.max(1),
        interval: Duration::from_secs(args.compact_interval_seconds.max(1)),
    };
    let compactor = storage::spawn_compactor(store.clone(), retention);
    tracing::info!(store = %args.store, revision, data_dir = %args.data_dir.display(), "adamant is ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    compactor.abort();
    drop(store);
    Ok(())
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
