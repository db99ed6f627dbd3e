//! Mechanical checks of the rules in ARCHITECTURE.md that a reader should not have to police.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_opens_with_module_docs() {
    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    let undocumented: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .collect();
    assert!(files.len() > 10);
    assert!(
        undocumented.is_empty(),
        "start these with a `//!` comment: {undocumented:?}"
    );
}

/// The `[dependencies]` section of a crate's manifest.
fn dependencies(krate: &str) -> String {
    let manifest =
        std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let start = manifest
        .find("[dependencies]")
        .expect("a [dependencies] section");
    let rest = &manifest[start + 1..];
    rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
}

#[test]
fn the_storage_contract_depends_on_no_engine_and_no_protocol() {
    let deps = dependencies("storage");
    for forbidden in [
        "redb", "etcd", "axum", "hyper", "prost", "tonic", "kube", "anyhow",
    ] {
        assert!(
            !deps.contains(forbidden),
            "crates/storage must not depend on {forbidden}"
        );
    }
}

#[test]
fn the_registry_never_sees_http_nor_an_engine() {
    let deps = dependencies("registry");
    for forbidden in ["axum", "hyper", "http", "tower", "redb", "etcd", "anyhow"] {
        assert!(
            !deps.contains(forbidden),
            "crates/registry must not depend on {forbidden}"
        );
    }
}

#[test]
fn the_api_server_knows_no_engine_and_nothing_of_eve() {
    let deps = dependencies("apiserver");
    for forbidden in ["redb", "etcd", "storage-embedded", "anyhow", "prost"] {
        assert!(
            !deps.contains(forbidden),
            "crates/apiserver must not depend on {forbidden}"
        );
    }
}

#[test]
fn only_binaries_use_anyhow() {
    for krate in [
        "apimachinery",
        "apiserver",
        "registry",
        "storage",
        "storage-embedded",
        "storage-etcd",
        "https",
        "pki",
        "eve-model",
        "eve-controllers",
        "eve-api",
        "device-api",
        "device-sim",
    ] {
        assert!(
            !dependencies(krate).contains("anyhow"),
            "{krate} is a library: use typed errors"
        );
    }
}

/// The dependency names of a crate's `[dependencies]` (the key before `=` or `.workspace`).
fn dependency_names(krate: &str) -> Vec<String> {
    dependencies(krate)
        .lines()
        .skip(1)
        .filter_map(|l| l.split(['=', '.']).next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect()
}

#[test]
fn the_eve_half_reaches_objects_only_as_a_kubernetes_client() {
    for krate in [
        "eve-model",
        "eve-controllers",
        "eve-api",
        "device-api",
        "device-sim",
    ] {
        let names = dependency_names(krate);
        for forbidden in [
            "apiserver",
            "registry",
            "storage",
            "storage-embedded",
            "storage-etcd",
        ] {
            assert!(
                !names.iter().any(|n| n == forbidden),
                "{krate} is EVE's half: it must not depend on {forbidden}"
            );
        }
    }
}

#[test]
fn only_the_device_api_crates_know_protobuf() {
    for krate in [
        "apimachinery",
        "apiserver",
        "registry",
        "storage",
        "eve-model",
        "eve-controllers",
        "https",
        "pki",
    ] {
        let names = dependency_names(krate);
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("prost") || n == "eve-api"),
            "{krate} must not know protobuf: the device API crates turn it into objects"
        );
    }
}
