//! `adamant serve` starts on the embedded store (or on etcd), serves the API, stops on SIGTERM,
//! and keeps its data across a restart.

use crate::common;

use std::process::Command;

use common::Server;

#[test]
fn serve_starts_on_the_embedded_store_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, "127.0.0.1:0", &[]);
    assert!(server.ready.contains("store=embedded"), "{}", server.ready);
    assert!(data.join("store.redb").exists());
    assert!(data.join("kubeconfig").exists());
    // The data directory and every secret in it are the owner's alone, from their creation.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &str| {
        std::fs::metadata(data.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    assert_eq!(mode("pki"), 0o700);
    for private in [
        "store.redb",
        "kubeconfig",
        "pki/apiserver.key",
        "pki/admin.key",
    ] {
        assert_eq!(mode(private), 0o600, "{private}");
    }
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: kept}\n",
    );
    server.stop();
    let mut server = Server::start_in(&data, "127.0.0.1:0", &[]);
    assert_eq!(
        server.ok(&["get", "ns", "kept", "-o", "name"]),
        "namespace/kept\n"
    );
    server.stop();
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

/// With the `etcd` feature, `adamant serve --store etcd://...` serves the API from a real etcd.
#[cfg(feature = "etcd")]
#[test]
fn serve_runs_on_etcd() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let etcd = runtime
        .block_on(storage_etcd::server::EtcdServer::start())
        .expect("start etcd");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = format!("--store=etcd://{}", etcd.endpoint());
    let mut server = Server::start_in(&data, "127.0.0.1:0", &[&store]);
    assert!(
        server
            .ready
            .contains(&format!("store=etcd://{}", etcd.endpoint())),
        "{}",
        server.ready
    );
    assert!(!data.join("store.redb").exists());
    server.ok_stdin(&["apply", "-f", "-"], common::WIDGET_CRD);
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    server.ok_stdin(&["apply", "-f", "-"], &common::widget("on-etcd", 2));
    assert_eq!(
        server.ok(&["get", "wd", "-o", "name"]),
        "widget.example.com/on-etcd\n"
    );
    server.stop();
}
