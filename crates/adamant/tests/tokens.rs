//! Static bearer tokens (`--token-auth-file`): kubectl and kube-rs authenticate with them as
//! the token's user and groups, which RBAC then governs; unknown and malformed tokens are 401.

use crate::common;

use common::Server;

const TOKENS: &str = "# token,user,uid,groups\n\
    s3cr3t-alice,alice,u-1,\"viewers,eve:fleet\"\n\
    s3cr3t-bob,bob,u-2\n";

fn start() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, TOKENS).unwrap();
    let file = file.display().to_string();
    let server = Server::start_in(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--token-auth-file", &file],
    );
    (server, dir)
}

#[test]
fn tokens_authenticate_users_that_rbac_then_governs() {
    let (server, _dir) = start();
    let whoami = server.with_token("s3cr3t-alice", &["auth", "whoami", "-o", "json"]);
    assert!(
        whoami.status.success(),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    let review: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], "alice");
    assert_eq!(review["status"]["userInfo"]["uid"], "u-1", "the file's uid");
    let groups = review["status"]["userInfo"]["groups"].to_string();
    for group in ["viewers", "eve:fleet", "system:authenticated"] {
        assert!(groups.contains(group), "{groups}");
    }
    // Unknown and malformed tokens: 401.
    for token in ["wrong", "s3cr3t-alice-not"] {
        let output = server.with_token(token, &["get", "namespaces"]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("You must be logged in to the server"),
            "{stderr}"
        );
    }
    // RBAC governs token users: nothing until bound, then what the binding allows.
    let denied = server.with_token("s3cr3t-bob", &["-n", "default", "get", "configmaps"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr)
            .contains("User \"bob\" cannot list resource \"configmaps\""),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    server.ok(&[
        "-n",
        "default",
        "create",
        "rolebinding",
        "bob-views",
        "--clusterrole=view",
        "--user=bob",
    ]);
    common::eventually("bob's binding in force", || {
        server
            .with_token("s3cr3t-bob", &["-n", "default", "get", "configmaps"])
            .status
            .success()
            .then_some(())
    });
    let create = server.with_token("s3cr3t-bob", &["-n", "default", "create", "configmap", "x"]);
    assert!(!create.status.success(), "view does not create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_authenticates_with_a_token() {
    let (server, _dir) = start();
    server.ok(&[
        "create",
        "clusterrolebinding",
        "alice-admin",
        "--clusterrole=cluster-admin",
        "--user=alice",
    ]);
    let root = std::fs::read_to_string(server.data.join("pki/root-certificate.pem")).unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://{}\n    certificate-authority-data: {}\nusers:\n- name: alice\n  user:\n    token: s3cr3t-alice\ncontexts:\n- name: a\n  context:\n    cluster: a\n    user: alice\ncurrent-context: a\n",
        server.address,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, root)
    );
    let kubeconfig: kube::config::Kubeconfig = serde_yaml::from_str(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    common::eventually_async(|| async {
        namespaces.list(&Default::default()).await.ok().filter(|l| {
            l.items
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("default"))
        })
    })
    .await;
}
