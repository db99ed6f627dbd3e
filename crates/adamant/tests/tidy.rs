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
    for forbidden in ["redb", "etcd", "storage-embedded", "anyhow", "eve-api"] {
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
    // The API server speaks Kubernetes' protobuf (`application/vnd.kubernetes.protobuf`, the
    // wire form of kubectl and client-go), never EVE's.
    let names = dependency_names("apiserver");
    assert!(
        !names.iter().any(|n| n == "eve-api"),
        "apiserver knows Kubernetes' protobuf only, never EVE's"
    );
}

/// Every file a clone carries that a path could hide in (text files only).
fn repository_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "target" || name == ".git" {
            continue;
        }
        if path.is_dir() {
            repository_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Where a path written in `relative` (a file's path from the root) is resolved from, as a depth
/// below the root: a crate's directory for its Rust code (`CARGO_MANIFEST_DIR`, the working
/// directory of its tests), except in `include_str!`-style macros and `#[path]`, which resolve
/// from the file's directory, as does everything outside `crates/`.
fn base_depth(relative: &Path, line: &str) -> usize {
    let file_dir = relative.components().count() - 1;
    let in_crate = relative.starts_with("crates");
    let from_file = ["include_str!", "include_bytes!", "#[path"]
        .iter()
        .any(|m| line.contains(m));
    if in_crate && !from_file {
        2.min(file_dir)
    } else {
        file_dir
    }
}

/// How far a line climbs: the total of its parent-directory path segments wherever they are (a
/// run of them in one string, in `join` arguments, chains of `join` calls), so that pieces
/// spelled apart add up. Two dots count when they stand between path boundaries (a slash, quotes,
/// the brackets of a Markdown link, spaces) with a slash on one side or the same quote on both:
/// Rust's ranges and rest patterns, and ellipses, do not. (Spelled in words so that this file
/// makes no climb itself.)
fn climb(line: &str) -> usize {
    let bytes = line.as_bytes();
    let boundary = |b: Option<&u8>| b.is_none_or(|b| b" \t/\"'`()".contains(b));
    let mut total = 0;
    for (i, _) in line.match_indices("..") {
        let (before, after) = (i.checked_sub(1).map(|j| &bytes[j]), bytes.get(i + 2));
        if before == Some(&b'.') || after == Some(&b'.') {
            continue; // part of `...`
        }
        if !boundary(before) || !boundary(after) {
            continue;
        }
        let slash = before == Some(&b'/') || after == Some(&b'/');
        let quoted = matches!(before, Some(b'"' | b'\'' | b'`')) && before == after;
        if slash || quoted {
            total += 1;
        }
    }
    total
}

/// What is wrong with a line of the file at `relative`, if it refers outside the repository.
fn outside_reference(relative: &Path, line: &str) -> Option<String> {
    // Spelled in pieces so that this file does not name them itself.
    let beside = ["..", "/shared"].concat();
    let machine_roots = [
        ["/wo", "rk/"].concat(),
        ["/ho", "me/"].concat(),
        ["/ro", "ot/"].concat(),
        ["/Us", "ers/"].concat(),
    ];
    if line.contains(&beside) {
        return Some(format!(
            "names `{beside}`, a directory beside the repository"
        ));
    }
    if let Some(root) = machine_roots.iter().find(|r| {
        line.match_indices(r.as_str())
            .any(|(i, _)| i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())
    }) {
        return Some(format!("names `{root}`, an absolute path of some machine"));
    }
    let (climb, base) = (climb(line), base_depth(relative, line));
    (climb > base).then(|| {
        format!(
            "climbs {climb} directories from a place {base} below the root, out of the repository"
        )
    })
}

#[test]
fn the_outside_reference_check_catches_what_it_should() {
    let crate_test = Path::new("crates/x/tests/t.rs");
    let crate_src = Path::new("crates/x/src/a/b.rs");
    let doc = Path::new("docs/page.md");
    let readme = Path::new("README.md");
    // Climbs are spelled with `up` so that this file makes none itself.
    let up = |n: usize| "../".repeat(n);
    let dots = || [".", "."].concat();
    let join_up = |n: usize| format!(r#".join("{}")"#, dots()).repeat(n);
    let cases: Vec<(&Path, String, bool)> = vec![
        (crate_test, format!(r#"join("{}examples")"#, up(2)), false),
        (crate_test, format!(r#"join("{}elsewhere")"#, up(3)), true),
        (crate_test, format!(r#"join("{}..")"#, up(1)), false),
        (crate_test, format!(r#"join("{}..")"#, up(2)), true),
        // A chain of `join("..")` adds up: three from a crate's directory leave the workspace.
        (
            crate_test,
            format!(r#"Path::new(env!("CARGO_MANIFEST_DIR")){}"#, join_up(3)),
            true,
        ),
        (
            crate_test,
            format!(
                r#"Path::new(env!("CARGO_MANIFEST_DIR")){}.join("examples")"#,
                join_up(2)
            ),
            false,
        ),
        (
            crate_test,
            format!(r#"join("{}{}"){}"#, up(1), dots(), join_up(1)),
            true,
        ),
        (
            crate_test,
            format!(
                r#"let dir = root.join("{}"); let x = dir.join("{}");"#,
                dots(),
                dots()
            ),
            false,
        ),
        (
            crate_test,
            format!(
                r#"let up = Path::new("{}"); up.join("{}").join("{}")"#,
                dots(),
                dots(),
                dots()
            ),
            true,
        ),
        (
            crate_test,
            format!(
                r#"PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("{}examples")"#,
                up(2)
            ),
            false,
        ),
        (
            crate_test,
            format!(r#"format!("{{}}/{}x", env!("CARGO_MANIFEST_DIR"))"#, up(3)),
            true,
        ),
        (
            crate_src,
            "let (a, ..) = t; let all = &v[..];".into(),
            false,
        ),
        (
            crate_test,
            format!("\"{}{}/x\"", up(1), ["..", "/shared"].concat()),
            true,
        ),
        (
            crate_src,
            format!(r#"include_str!("{}README.md")"#, up(4)),
            false,
        ),
        (crate_src, format!(r#"include_str!("{}x")"#, up(5)), true),
        (
            crate_src,
            "let rest = &s[..n]; ..Default::default()".into(),
            false,
        ),
        (doc, format!("see [the README]({}README.md)", up(1)), false),
        (doc, format!("see ({}x.md)", up(2)), true),
        (doc, format!("see [a]({}{}/x.md)", up(1), dots()), true),
        (readme, "HOST:PORT[,HOST:PORT...]".into(), false),
        (readme, ["read ", "/wo", "rk/main/x"].concat(), true),
        (readme, ["cd ", "/ho", "me/me"].concat(), true),
        (readme, "https://example.com/work/x".into(), false),
    ];
    for (file, line, flagged) in cases {
        assert_eq!(
            outside_reference(file, &line).is_some(),
            flagged,
            "{} {line:?}",
            file.display()
        );
    }
}

#[test]
fn nothing_refers_to_a_path_outside_the_repository() {
    let root = workspace().canonicalize().unwrap();
    let mut files = Vec::new();
    for dir in ["crates", "scripts", ".ci", "docs", "examples"] {
        repository_files(&root.join(dir), &mut files);
    }
    for file in ["README.md", "ARCHITECTURE.md", "Cargo.toml"] {
        files.push(root.join(file));
    }
    let mut found = Vec::new();
    let mut read = 0;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // not text
        };
        read += 1;
        let relative = file.strip_prefix(&root).unwrap();
        for (n, line) in text.lines().enumerate() {
            if let Some(problem) = outside_reference(relative, line) {
                found.push(format!(
                    "{}:{}: {problem}\n    {line}",
                    relative.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(read > 100, "only {read} files read");
    assert!(
        found.is_empty(),
        "a clone has nothing beside it: copy what these need into the repository (examples/, \
         docs/) and refer to it there\n{}",
        found.join("\n")
    );
}

/// Admission picks a kind's rules from the table its types make (`kube::Resource`) and reads
/// the decoded type: no match on group or kind strings, no kind named in a string, no JSON
/// path into the object.
#[test]
fn admission_dispatches_on_types_and_reads_typed_fields() {
    let dir = workspace().join("crates/eve-controllers/src/admission");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() > 5, "admission is one module per kind");
    let native = [
        "PersistentVolumeClaim",
        "StorageClass",
        "CustomResourceDefinition",
        "storage.k8s.io",
        "apiextensions.k8s.io",
    ];
    let kinds = eve_model::KINDS.iter().map(|k| k.kind).chain(native);
    let quoted: Vec<String> = kinds.map(|k| format!("\"{k}\"")).collect();
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", file.display(), n + 1);
            for forbidden in [
                "[\"spec\"]",
                ".pointer(",
                ".pointer_mut(",
                "review.group.as_str()",
                "review.kind.as_str()",
                "review.group ==",
                "review.kind ==",
                "review.group !=",
                "review.kind !=",
            ] {
                if line.contains(forbidden) {
                    found.push(format!("{at}: {forbidden}"));
                }
            }
            // A kind's name as a whole string literal (messages may name kinds in prose).
            for kind in &quoted {
                if line.contains(kind.as_str()) {
                    found.push(format!("{at}: {kind}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "dispatch through the admission table and read the decoded type: {found:?}"
    );
}

/// The EVE half opens watches only through its shared informers (one watch and one cache per
/// kind in a process; `serve_keeps_one_watch_per_kind_for_the_controllers_and_the_device_api`
/// counts them on a running server): no other file starts a kube-runtime watcher or reflector.
#[test]
fn the_eve_half_watches_only_through_its_shared_informers() {
    let mut files = Vec::new();
    for krate in ["eve-controllers", "device-api", "adamant"] {
        rust_files(
            &workspace().join("crates").join(krate).join("src"),
            &mut files,
        );
    }
    let informers = workspace().join("crates/eve-controllers/src/informers.rs");
    assert!(files.contains(&informers));
    let mut found = Vec::new();
    for file in files.iter().filter(|f| **f != informers) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for forbidden in [
                "watcher(",
                "reflector::reflector(",
                ".reflect(",
                "watch_object(",
            ] {
                if line.contains(forbidden) && !line.trim_start().starts_with("//") {
                    found.push(format!("{}:{}: {forbidden}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "register with eve_controllers::informers::Informers instead: {found:?}"
    );
}
