//! `adamant serve` starts on the embedded store, stops on SIGTERM, and keeps its data across a
//! restart.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn serve_until_ready(data_dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("run adamant");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("adamant is ready"))
        .expect("adamant serve never became ready");
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, ready)
}

fn terminate(mut child: std::process::Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "adamant serve exited with {exit} on SIGTERM"
    );
}

#[test]
fn serve_starts_on_the_embedded_store_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (child, ready) = serve_until_ready(dir.path());
    assert!(ready.contains("store=embedded"), "{ready}");
    assert!(dir.path().join("store.redb").exists());
    terminate(child);
    let (child, _) = serve_until_ready(dir.path());
    terminate(child);
}

#[test]
fn an_unknown_store_is_refused_with_the_accepted_forms() {
    let output = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args(["serve", "--store", "postgres://x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("use `embedded` or `etcd://HOST:PORT"),
        "{stderr}"
    );
}

/// With the `etcd` feature, `adamant serve --store etcd://...` runs on a real etcd.
#[cfg(feature = "etcd")]
#[test]
fn serve_runs_on_etcd() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(storage_etcd::server::EtcdServer::start())
        .expect("start etcd");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .arg(format!("--store=etcd://{}", server.endpoint()))
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let ready = lines
        .find(|line| line.contains("adamant is ready"))
        .expect("never ready");
    assert!(
        ready.contains(&format!("store=etcd://{}", server.endpoint())),
        "{ready}"
    );
    std::thread::spawn(move || lines.for_each(drop));
    assert!(!dir.path().join("store.redb").exists());
    terminate(child);
}
