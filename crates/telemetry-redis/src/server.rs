//! Starts a private `redis-server` on loopback in a temporary directory, with an append-only
//! file synced at every write: for the Redis backend's tests and for benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a Redis may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a Redis could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// There is no redis-server binary to run.
    #[error(
        "cannot run {binary:?} ({source}): install redis-server (Debian's redis-server package; `scripts/test --deps-only` installs it) or set REDIS_SERVER_BIN"
    )]
    NotInstalled {
        /// The binary tried.
        binary: String,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
    /// A temporary directory or port could not be had.
    #[error("cannot prepare a private Redis: {0}")]
    Io(#[from] std::io::Error),
    /// Redis started but did not become ready.
    #[error("redis-server did not become ready: {0}")]
    NotReady(String),
}

/// A running Redis, stopped (and its directory deleted) when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a Redis with `appendonly yes` and `appendfsync always`, and no snapshots.
    pub async fn start() -> Result<RedisServer, LaunchError> {
        let dir = tempfile::tempdir()?;
        let mut last = String::new();
        // A port found free can be taken before Redis binds it; try a few times.
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = spawn(dir.path(), port)?;
            match wait_ready(&mut child, dir.path(), port).await {
                Ok(()) => return Ok(RedisServer { child, port, dir }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    match e {
                        LaunchError::NotReady(why) => last = why,
                        e => return Err(e),
                    }
                }
            }
        }
        Err(LaunchError::NotReady(last))
    }

    /// Kills the server with SIGKILL and starts it again on the same port and data: what an
    /// acknowledged write must survive.
    pub async fn kill_and_restart(&mut self) -> Result<(), LaunchError> {
        self.child.kill()?;
        self.child.wait()?;
        self.child = spawn(self.dir.path(), self.port)?;
        wait_ready(&mut self.child, self.dir.path(), self.port).await
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id (for its CPU time and memory in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding Redis's data.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

async fn ping(url: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    // A server still loading its append-only file answers LOADING.
    redis::cmd("PING").query_async::<()>(&mut con).await
}

async fn wait_ready(child: &mut Child, dir: &Path, port: u16) -> Result<(), LaunchError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let url = format!("redis://127.0.0.1:{port}/");
    let mut why = String::new();
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            return Err(LaunchError::NotReady(format!(
                "redis-server exited with {status}: {tail}"
            )));
        }
        match ping(&url).await {
            Ok(()) => return Ok(()),
            Err(e) => why = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(LaunchError::NotReady(why))
}

fn spawn(dir: &Path, port: u16) -> Result<Child, LaunchError> {
    let binary = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
    Command::new(&binary)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", ""])
        .args(["--appendonly", "yes"])
        .args(["--appendfsync", "always"])
        .args(["--daemonize", "no"])
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| LaunchError::NotInstalled { binary, source })
}

impl Drop for RedisServer {
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
