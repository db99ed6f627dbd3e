//! ServiceAccounts as kubectl and clients use them: `kubectl create token` (audiences, duration,
//! a bound Secret), the token authenticating as the ServiceAccount under RBAC, refused once what
//! it names is gone; the `default` ServiceAccount and `kube-root-ca.crt` in every namespace; the
//! official Python client with a ServiceAccount token.

use crate::common;

use common::{Server, eventually};

fn unauthorized(output: &std::process::Output) -> bool {
    !output.status.success()
        && String::from_utf8_lossy(&output.stderr).contains("You must be logged in to the server")
}

#[test]
fn kubectl_create_token_makes_tokens_that_rbac_governs_and_that_die_with_what_they_name() {
    let server = Server::start();
    server.ok(&["create", "namespace", "team"]);
    server.ok(&["-n", "team", "create", "serviceaccount", "robot"]);
    server.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "probe",
        "--from-literal=a=b",
    ]);
    let token = server.ok(&["-n", "team", "create", "token", "robot"]);
    let token = token.trim();
    let whoami = server.with_token(token, &["auth", "whoami", "-o", "json"]);
    assert!(whoami.status.success(), "{whoami:?}");
    let review: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    let info = &review["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:team:robot");
    let uid =
        common::get_json(&server, &["-n", "team", "get", "sa", "robot"])["metadata"]["uid"].clone();
    assert_eq!(info["uid"], uid);
    assert_eq!(
        info["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated"
        ])
    );
    assert!(
        info["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI="),
        "{info}"
    );
    // Nothing until bound; then what the binding allows, in its namespace only.
    let denied = server.with_token(token, &["-n", "team", "get", "configmap", "probe"]);
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains(
            "User \"system:serviceaccount:team:robot\" cannot get resource \"configmaps\""
        ),
        "{denied:?}"
    );
    server.ok(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "robot-views",
        "--clusterrole=view",
        "--serviceaccount=team:robot",
    ]);
    let allowed = server.with_token(token, &["-n", "team", "get", "configmap", "probe"]);
    assert!(allowed.status.success(), "{allowed:?}");
    assert!(
        !server
            .with_token(token, &["-n", "default", "get", "configmaps"])
            .status
            .success()
    );

    // Another audience: a token for someone else, not for this server.
    let elsewhere = server.ok(&[
        "-n",
        "team",
        "create",
        "token",
        "robot",
        "--audience",
        "vault",
    ]);
    assert!(unauthorized(
        &server.with_token(elsewhere.trim(), &["-n", "team", "get", "cm"])
    ));
    // A tampered token.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = parts[1].replace(|c: char| c.is_ascii_lowercase(), "A");
    assert!(unauthorized(
        &server.with_token(&parts.join("."), &["get", "ns"])
    ));
    // Too short a life.
    let short = server.fails(
        &["-n", "team", "create", "token", "robot", "--duration", "5m"],
        None,
    );
    assert!(
        short.contains("may not specify a duration less than 10 minutes"),
        "{short}"
    );
    // Bound to a Secret: it dies with the Secret.
    server.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "holder",
        "--from-literal=x=y",
    ]);
    let bound = server.ok(&[
        "-n",
        "team",
        "create",
        "token",
        "robot",
        "--bound-object-kind",
        "Secret",
        "--bound-object-name",
        "holder",
    ]);
    assert!(
        server
            .with_token(bound.trim(), &["-n", "team", "get", "cm", "probe"])
            .status
            .success()
    );
    server.ok(&["-n", "team", "delete", "secret", "holder"]);
    assert!(unauthorized(&server.with_token(
        bound.trim(),
        &["-n", "team", "get", "cm", "probe"]
    )));
    // Deleted, then recreated with the same name: the old token stays dead.
    server.ok(&["-n", "team", "delete", "serviceaccount", "robot"]);
    assert!(unauthorized(
        &server.with_token(token, &["-n", "team", "get", "cm", "probe"])
    ));
    server.ok(&["-n", "team", "create", "serviceaccount", "robot"]);
    assert!(unauthorized(
        &server.with_token(token, &["-n", "team", "get", "cm", "probe"])
    ));
}

#[test]
fn every_namespace_has_a_default_service_account_and_the_root_ca_config_map() {
    let server = Server::start();
    let root = std::fs::read_to_string(server.data.join("pki/root-certificate.pem")).unwrap();
    server.ok(&["create", "namespace", "fresh"]);
    for namespace in ["default", "kube-system", "fresh"] {
        eventually(
            &format!("the default ServiceAccount in {namespace}"),
            || {
                server
                    .kubectl(&["-n", namespace, "get", "serviceaccount", "default"])
                    .status
                    .success()
                    .then_some(())
            },
        );
        let ca = eventually(&format!("kube-root-ca.crt in {namespace}"), || {
            let output = server.kubectl(&[
                "-n",
                namespace,
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ]);
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).to_string())
        });
        assert_eq!(ca, root, "{namespace}");
    }
    // Deleted or edited, it comes back as it was.
    let ca_of_fresh = || {
        let output = server.kubectl(&[
            "-n",
            "fresh",
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    server.ok(&["-n", "fresh", "delete", "configmap", "kube-root-ca.crt"]);
    // Within seconds, from the ConfigMap's watch event (the periodic pass comes only every 30 s).
    let prompt = std::time::Duration::from_secs(5);
    common::eventually_within("kube-root-ca.crt made again", prompt, || {
        (ca_of_fresh() == root).then_some(())
    });
    server.ok(&[
        "-n",
        "fresh",
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"forged"}}"#,
    ]);
    common::eventually_within("kube-root-ca.crt set right again", prompt, || {
        (ca_of_fresh() == root).then_some(())
    });
}

#[test]
fn the_python_client_works_with_a_service_account_token() {
    let server = Server::start();
    server.ok(&["-n", "default", "create", "serviceaccount", "py"]);
    server.ok(&[
        "-n",
        "default",
        "create",
        "rolebinding",
        "py-edits",
        "--clusterrole=edit",
        "--serviceaccount=default:py",
    ]);
    server.python("tokens.py");
}

#[test]
fn token_reviews_say_who_a_token_is_to_those_allowed_to_ask() {
    let server = Server::start();
    server.ok(&["create", "namespace", "team"]);
    server.ok(&["-n", "team", "create", "serviceaccount", "robot"]);
    server.ok(&["-n", "team", "create", "serviceaccount", "proxy"]);
    let robot = server.ok(&["-n", "team", "create", "token", "robot"]);
    let proxy = server.ok(&["-n", "team", "create", "token", "proxy"]);
    let review = |token: &str| {
        serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        })
        .to_string()
    };
    let create = |body: String| {
        let out = server.ok_stdin(
            &[
                "create",
                "--raw",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                "-f",
                "-",
            ],
            &body,
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let answer = create(review(robot.trim()));
    assert_eq!(answer["status"]["authenticated"], true, "{answer}");
    assert_eq!(
        answer["status"]["user"]["username"],
        "system:serviceaccount:team:robot"
    );
    assert!(
        answer["status"]["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&"system:serviceaccounts:team".into())
    );
    assert_eq!(
        answer["status"]["audiences"][0],
        "https://kubernetes.default.svc.cluster.local"
    );
    let forged = create(review("not.a.token"));
    assert_eq!(forged["status"]["authenticated"], false, "{forged}");
    assert!(forged["status"]["error"].is_string(), "{forged}");
    // Audiences the server does not check tokens for: not authenticated.
    let other = create(
        serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": robot.trim(), "audiences": ["vault"]},
        })
        .to_string(),
    );
    assert_eq!(other["status"]["authenticated"], false, "{other}");
    // No token: 400, as kube-apiserver answers.
    let empty = server.fails(
        &[
            "create",
            "--raw",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "-f",
            "-",
        ],
        Some(&review("")),
    );
    assert!(empty.contains("token is required"), "{empty}");

    // Asking is `create tokenreviews`: system:auth-delegator grants it, nothing else does.
    let ask = |token: &str| {
        server.with_token_stdin(
            token,
            &[
                "create",
                "--raw",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                "-f",
                "-",
            ],
            &review(robot.trim()),
        )
    };
    let refused = ask(proxy.trim());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("cannot create resource \"tokenreviews\""),
        "{refused:?}"
    );
    server.ok(&[
        "create",
        "clusterrolebinding",
        "proxy-delegates",
        "--clusterrole=system:auth-delegator",
        "--serviceaccount=team:proxy",
    ]);
    let allowed = ask(proxy.trim());
    assert!(allowed.status.success(), "{allowed:?}");
}
