//! Who can reach the installation's keys (nobody through the API: not a user with `edit`
//! everywhere, not the admin), the files that hold what must stay private, and
//! `adamant kubeconfig`: a user's kubeconfig from the client CA, for a bounded time.

use crate::common;

use std::process::Command;

use base64::Engine;
use common::Server;

const KEYS: [&str; 5] = [
    "adamant-root-ca",
    "adamant-client-ca",
    "adamant-service-account-key",
    "adamant-device-signing",
    "adamant-device-ecdh",
];

/// kubectl with the kubeconfig `kubeconfig`.
fn kubectl_with(
    server: &Server,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HOME", server.home.path())
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn adamant(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn no_api_request_reaches_the_installations_keys() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let data = server.data.display().to_string();
    // Mallory may edit everything in every namespace.
    let mallory = dir.path().join("mallory.kubeconfig");
    let made = adamant(&[
        "kubeconfig",
        "--data-dir",
        &data,
        "--user",
        "mallory",
        "-o",
        &mallory.display().to_string(),
    ]);
    assert!(made.status.success(), "{made:?}");
    server.ok(&[
        "create",
        "clusterrolebinding",
        "mallory-edits",
        "--clusterrole=edit",
        "--user=mallory",
    ]);
    for name in KEYS {
        let output = kubectl_with(
            &server,
            &mallory,
            &["-n", "kube-system", "get", "secret", name],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("secrets \"{name}\" not found")),
            "{name}: {stderr}"
        );
    }
    // Key-escrow Secrets are readable by who reads Secrets in the namespace: edit, not the EVE
    // operator.
    server.ok(&[
        "create",
        "clusterrolebinding",
        "olga-operates",
        "--clusterrole=eve:operator",
        "--user=olga",
    ]);
    for (user, answer) in [("mallory", "yes\n"), ("olga", "no\n")] {
        let output = server.kubectl(&["auth", "can-i", "get", "secrets", "--as", user]);
        assert_eq!(String::from_utf8_lossy(&output.stdout), answer, "{user}");
    }
    // Not even the admin finds a private key in any Secret.
    let secrets = common::get_json(&server, &["get", "secrets", "-A", "-o", "json"]);
    for secret in secrets["items"].as_array().unwrap() {
        let name = secret["metadata"]["name"].as_str().unwrap();
        assert!(!KEYS.contains(&name), "{name} is served");
        for value in secret["data"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.1.as_str().unwrap())
                .unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"),
                "{name}/{}",
                value.0
            );
        }
    }
    // The files: the data directory and the keys in it are the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &str| {
        std::fs::metadata(server.data.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("pki"), 0o700);
    for private in [
        "store.redb",
        "kubeconfig",
        "pki/client-ca.key",
        "pki/admin.key",
    ] {
        assert_eq!(mode(private), 0o600, "{private}");
    }
    assert_eq!(
        std::fs::metadata(&mallory).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn adamant_kubeconfig_writes_a_users_kubeconfig_for_a_bounded_time() {
    let server = Server::start();
    let data = server.data.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let alice = dir.path().join("alice.kubeconfig");
    let made = adamant(&[
        "kubeconfig",
        "--data-dir",
        &data,
        "--user",
        "alice",
        "--group",
        "eve:operators",
        "--group",
        "devs",
        "--ttl",
        "1h",
        "--namespace",
        "enterprise1",
        "-o",
        &alice.display().to_string(),
    ]);
    assert!(made.status.success(), "{made:?}");
    let whoami = kubectl_with(&server, &alice, &["auth", "whoami", "-o", "json"]);
    assert!(whoami.status.success(), "{whoami:?}");
    let review: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!(["eve:operators", "devs", "system:authenticated"])
    );
    // RBAC governs alice: nothing until bound.
    let denied = kubectl_with(&server, &alice, &["get", "configmaps"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"enterprise1\""),
        "{stderr}"
    );
    // The certificate lives an hour (and five minutes before it was made).
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&alice).unwrap()).unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(
            config["users"][0]["user"]["client-certificate-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let text = String::from_utf8(pem).unwrap();
    let der = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
    let validity = certificate.validity();
    assert_eq!(
        validity.not_after.timestamp() - validity.not_before.timestamp(),
        3600 + 300
    );

    // What it refuses, and says why.
    for (args, words) in [
        (vec!["--user", ""], "--user must name someone"),
        (
            vec!["--user", "bob", "--ttl", "0s"],
            "it must be longer than zero",
        ),
        (
            vec!["--user", "bob", "--ttl", "forever"],
            "invalid value 'forever'",
        ),
    ] {
        let mut all = vec!["kubeconfig", "--data-dir", &data];
        all.extend(args);
        let output = adamant(&all);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(words), "{all:?}: {stderr}");
    }
    let empty = tempfile::tempdir().unwrap();
    let output = adamant(&[
        "kubeconfig",
        "--data-dir",
        &empty.path().display().to_string(),
        "--user",
        "bob",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pass the --data-dir of a server that has started once"),
        "{stderr}"
    );
}
