//! Starts a private, single-member etcd on loopback in a temporary directory: for the etcd
//! backend's tests and for benchmarks that compare against etcd on the same machine.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an etcd may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an etcd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// There is no etcd binary to run.
    #[error(
        "cannot run {binary:?} ({source}): install etcd (Debian's etcd-server package; scripts/test does it) or set ETCD_BIN"
    )]
    NotInstalled {
        /// The binary tried.
        binary: String,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
    /// A temporary directory or port could not be had.
    #[error("cannot prepare a private etcd: {0}")]
    Io(#[from] std::io::Error),
    /// etcd started but did not become ready.
    #[error("etcd did not become ready: {0}")]
    NotReady(String),
}

/// A running etcd, stopped and deleted when dropped.
pub struct EtcdServer {
    child: Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts an etcd that syncs its writes to disk, as a production etcd does.
    pub async fn start() -> Result<EtcdServer, LaunchError> {
        Self::start_in(None).await
    }

    /// Starts an etcd whose data lives under `parent` (a temporary directory is made there).
    pub async fn start_in(parent: Option<PathBuf>) -> Result<EtcdServer, LaunchError> {
        let mut last = None;
        // A port found free can be taken before etcd binds it; try a few times.
        for _ in 0..5 {
            match Self::try_start(parent.clone()).await {
                Ok(server) => return Ok(server),
                Err(LaunchError::NotReady(why)) => last = Some(why),
                Err(e) => return Err(e),
            }
        }
        Err(LaunchError::NotReady(last.unwrap_or_default()))
    }

    async fn try_start(parent: Option<PathBuf>) -> Result<EtcdServer, LaunchError> {
        let dir = match parent {
            Some(parent) => tempfile::tempdir_in(parent)?,
            None => tempfile::tempdir()?,
        };
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let log = std::fs::File::create(dir.path().join("etcd.log"))?;
        let child = Command::new(&binary)
            .arg("--name=adamant-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=adamant-test={peer}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| LaunchError::NotInstalled { binary, source })?;
        let mut server = EtcdServer {
            child,
            endpoint: format!("127.0.0.1:{client_port}"),
            dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<(), LaunchError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut why = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let log =
                    std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(LaunchError::NotReady(format!(
                    "etcd exited with {status}: {tail}"
                )));
            }
            match etcd_client::Client::connect([&self.endpoint], None).await {
                Ok(mut client) => match client.status().await {
                    Ok(_) => return Ok(()),
                    Err(e) => why = e.to_string(),
                },
                Err(e) => why = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(LaunchError::NotReady(why))
    }

    /// The `host:port` clients connect to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The directory holding etcd's data.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
