//! OpenID Connect (`--oidc-*`): the test runs its own issuer (HTTPS on 127.0.0.1 through the
//! workspace's `https` crate, a certificate from `pki`'s authority, a discovery document and a
//! JWKS it can swap), signs ID tokens with EC P-256 keys, and checks that kubectl and raw HTTPS
//! requests authenticate with them as the prefixed user and groups that RBAC then governs; that
//! tokens which do not hold (expired, another audience or issuer, another key, tampered,
//! unsigned, malformed, oversized) are 401 and change nothing; that a rotated key works without
//! a restart while the key removed stops working; that the server starts while the issuer is
//! down; and that flags that cannot work stop `adamant serve` naming the flag.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::{Server, eventually};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key of the test issuer.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    /// The public key as a JWK.
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate().unwrap();
        // The uncompressed point: 0x04, then x and y (32 bytes each for P-256).
        let raw = pair.public_key_raw();
        let (x, y) = raw[1..].split_at(32);
        SigningKey {
            kid: kid.to_string(),
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            }),
        }
    }

    /// An ID token with `claims`, signed with this key and naming its kid.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The test's OIDC issuer: `/.well-known/openid-configuration` and `/jwks` over HTTPS.
struct Issuer {
    url: String,
    ca_file: PathBuf,
    jwks: Arc<Mutex<Value>>,
    /// While false, discovery answers 503.
    up: Arc<AtomicBool>,
    /// The `issuer` the discovery document names, when not the issuer's own URL.
    names: Arc<Mutex<Option<String>>>,
    runtime: tokio::runtime::Runtime,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Issuer {
    fn start(keys: &[&SigningKey]) -> Issuer {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let common::LoopbackTls {
            authority,
            tls,
            listener,
        } = common::loopback_tls(&runtime, "issuer");
        let url = format!("https://{}", listener.local_addr().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("issuer-ca.pem");
        std::fs::write(&ca_file, &authority.certificate_pem).unwrap();
        let jwks = Arc::new(Mutex::new(Value::Null));
        let up = Arc::new(AtomicBool::new(true));
        let names = Arc::new(Mutex::new(None::<String>));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (served_jwks, served_up, issuer) = (jwks.clone(), up.clone(), url.clone());
        let served_names = names.clone();
        runtime.spawn(https::serve(listener, tls, stopped, move |_peer| {
            let (jwks, up, issuer) = (served_jwks.clone(), served_up.clone(), issuer.clone());
            let names = served_names.clone();
            move |request: http::Request<hyper::body::Incoming>| {
                let (jwks, up, issuer) = (jwks.clone(), up.clone(), issuer.clone());
                let named = names.lock().unwrap().clone().unwrap_or(issuer.clone());
                async move {
                    let (status, body) = match request.uri().path() {
                        _ if !up.load(Ordering::SeqCst) => (503, "down".to_string()),
                        "/.well-known/openid-configuration" => (
                            200,
                            json!({"issuer": named, "jwks_uri": format!("{issuer}/jwks")})
                                .to_string(),
                        ),
                        "/jwks" => (200, jwks.lock().unwrap().to_string()),
                        _ => (404, "not found".to_string()),
                    };
                    http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap()
                }
            }
        }));
        let issuer = Issuer {
            url,
            ca_file,
            jwks,
            up,
            names,
            runtime,
            _stop: stop,
            _dir: dir,
        };
        issuer.publish(keys);
        issuer
    }

    /// Serves a JWKS of `keys` from now on.
    fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    /// `adamant serve` arguments for this issuer.
    fn flags(&self) -> Vec<String> {
        [
            "--oidc-issuer-url",
            &self.url,
            "--oidc-client-id",
            "adamant",
            "--oidc-ca-file",
            &self.ca_file.display().to_string(),
            "--oidc-groups-claim",
            "groups",
            "--oidc-groups-prefix",
            "oidc:",
            "--oidc-signing-algs",
            "ES256,RS256",
            "--oidc-required-claim",
            "tenant=eve",
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// The claims of a valid ID token of this issuer for `subject`.
    fn claims(&self, subject: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({
            "iss": self.url, "aud": "adamant", "sub": subject, "tenant": "eve",
            "groups": ["viewers", "eve:fleet"], "iat": now, "exp": now + 600,
        })
    }

    /// The user name `subject` has (the default prefix: the issuer and `#`).
    fn user(&self, subject: &str) -> String {
        format!("{}#{subject}", self.url)
    }
}

/// `claims` with `more` merged in (`null` removes).
fn with(mut claims: Value, more: Value) -> Value {
    for (key, value) in more.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn start(issuer: &Issuer) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let flags = issuer.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_in(&dir.path().join("data"), "127.0.0.1:0", &flags);
    (server, dir)
}

/// The HTTP status of one request to the API with `Authorization: Bearer TOKEN`, over
/// HTTP/1.1 (which takes headers larger than HTTP/2's default limit).
fn status(
    issuer: &Issuer,
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> u16 {
    let root = std::fs::read(server.data.join("pki/root-certificate.pem")).unwrap();
    issuer.runtime.block_on(async {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(&root) {
            roots.add(certificate.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(&server.address)
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &server.address)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        sender
            .send_request(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

fn success(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn oidc_id_tokens_authenticate_users_that_rbac_then_governs() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]);
    let (server, _dir) = start(&issuer);
    let alice = key.sign(&issuer.claims("alice"));
    let whoami = success(&server.with_token(&alice, &["auth", "whoami", "-o", "json"]));
    let review: Value = serde_json::from_str(&whoami).unwrap();
    let info = &review["status"]["userInfo"];
    assert_eq!(info["username"], issuer.user("alice"));
    assert_eq!(
        info["groups"],
        json!(["oidc:viewers", "oidc:eve:fleet", "system:authenticated"])
    );
    assert!(
        info.get("uid").is_none() && info.get("extra").is_none(),
        "{info}"
    );
    // Nothing until bound; a RoleBinding to the prefixed group grants reading.
    let denied = server.with_token(&alice, &["-n", "default", "get", "configmaps"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains(&format!(
            "User \"{}\" cannot list resource \"configmaps\"",
            issuer.user("alice")
        )),
        "{stderr}"
    );
    server.ok(&[
        "-n",
        "default",
        "create",
        "rolebinding",
        "oidc-viewers",
        "--clusterrole=view",
        "--group=oidc:viewers",
    ]);
    eventually("the group's binding in force", || {
        server
            .with_token(&alice, &["-n", "default", "get", "configmaps"])
            .status
            .success()
            .then_some(())
    });
    let create = server.with_token(&alice, &["-n", "default", "create", "configmap", "x"]);
    assert!(!create.status.success(), "view does not create");
    // A RoleBinding to the prefixed user grants editing.
    server.ok(&[
        "-n",
        "default",
        "create",
        "rolebinding",
        "alice-edits",
        "--clusterrole=edit",
        &format!("--user={}", issuer.user("alice")),
    ]);
    eventually("the user's binding in force", || {
        server
            .with_token(&alice, &["-n", "default", "create", "configmap", "x"])
            .status
            .success()
            .then_some(())
    });
    let can_i = server.with_token(
        &alice,
        &["auth", "can-i", "-n", "default", "delete", "configmaps"],
    );
    assert_eq!(success(&can_i).trim(), "yes");
}

#[test]
fn oidc_tokens_that_do_not_hold_are_401_and_change_nothing() {
    let key = SigningKey::generate("k1");
    let impostor = SigningKey::generate("k1");
    let stranger = SigningKey::generate("k-unknown");
    let issuer = Issuer::start(&[&key]);
    let (server, _dir) = start(&issuer);
    server.ok(&[
        "create",
        "clusterrolebinding",
        "alice-admin",
        "--clusterrole=cluster-admin",
        &format!("--user={}", issuer.user("alice")),
    ]);
    let path = "/api/v1/namespaces/default/configmaps";
    let configmap =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let good = key.sign(&issuer.claims("alice"));
    // The good token works, over raw HTTPS too.
    eventually("alice's binding in force", || {
        (status(&issuer, &server, "GET", path, &good, None) == 200).then_some(())
    });
    assert_eq!(
        status(
            &issuer,
            &server,
            "POST",
            path,
            &good,
            Some(configmap("by-alice"))
        ),
        201
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = issuer.claims("alice");
    let b64 = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = b64(&with(claims.clone(), json!({"sub": "admin"})));
    let tampered = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&claims)
    );
    let oversized = key.sign(&with(claims.clone(), json!({"pad": "x".repeat(17 * 1024)})));
    let bad = [
        (
            "expired",
            key.sign(&with(claims.clone(), json!({"exp": now - 3600}))),
        ),
        (
            "not yet valid",
            key.sign(&with(claims.clone(), json!({"nbf": now + 3600}))),
        ),
        (
            "wrong audience",
            key.sign(&with(claims.clone(), json!({"aud": "someone-else"}))),
        ),
        (
            "no audience",
            key.sign(&with(claims.clone(), json!({"aud": null}))),
        ),
        (
            "wrong issuer",
            key.sign(&with(
                claims.clone(),
                json!({"iss": "https://elsewhere.example"}),
            )),
        ),
        (
            "missing required claim",
            key.sign(&with(claims.clone(), json!({"tenant": null}))),
        ),
        ("another key with the same kid", impostor.sign(&claims)),
        ("a key not in the JWKS", stranger.sign(&claims)),
        ("tampered payload", tampered),
        ("alg none", unsigned),
        (
            "two segments",
            format!("{}.{}", b64(&json!({"alg": "ES256"})), b64(&claims)),
        ),
        ("not base64", "!!!.@@@.###".to_string()),
        ("oversized", oversized),
    ];
    for (i, (what, token)) in bad.iter().enumerate() {
        assert_eq!(
            status(&issuer, &server, "GET", path, token, None),
            401,
            "{what}"
        );
        let name = format!("bad-{i}");
        assert_eq!(
            status(
                &issuer,
                &server,
                "POST",
                path,
                token,
                Some(configmap(&name))
            ),
            401,
            "{what}"
        );
    }
    // kubectl sees a refusal as not being logged in.
    let expired = &bad[0].1;
    let output = server.with_token(expired, &["get", "namespaces"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("You must be logged in to the server"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names = server.ok(&["-n", "default", "get", "configmaps", "-o", "name"]);
    assert!(names.contains("configmap/by-alice"), "{names}");
    assert!(!names.contains("bad-"), "{names}");
    // The reasons are in the server's log, not in the answers.
    let log = std::fs::read_to_string(server.data.with_extension("log")).unwrap();
    for words in ["expired", "does not include the client id", "k-unknown"] {
        assert!(log.contains(words), "{words} not in the log");
    }
}

#[test]
fn oidc_keys_rotate_without_a_restart() {
    let old = SigningKey::generate("old");
    let new = SigningKey::generate("new");
    let issuer = Issuer::start(&[&old]);
    let (server, _dir) = start(&issuer);
    let claims = issuer.claims("alice");
    let whoami = |token: &str| server.with_token(token, &["auth", "whoami", "-o", "json"]);
    success(&whoami(&old.sign(&claims)));
    assert!(
        !whoami(&new.sign(&claims)).status.success(),
        "not published yet"
    );
    // The issuer rotates: only the new key is published.
    issuer.publish(&[&new]);
    // An unknown kid refetches the JWKS (at most every few seconds).
    eventually("the new key accepted", || {
        whoami(&new.sign(&claims)).status.success().then_some(())
    });
    let refused = whoami(&old.sign(&claims));
    assert!(!refused.status.success(), "the removed key still works");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("You must be logged in"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn oidc_server_starts_while_the_issuer_is_down() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]);
    issuer.up.store(false, Ordering::SeqCst);
    let (server, _dir) = start(&issuer);
    let token = key.sign(&issuer.claims("alice"));
    let whoami = || server.with_token(&token, &["auth", "whoami"]);
    assert!(!whoami().status.success(), "no keys yet");
    let log_path = server.data.with_extension("log");
    eventually("the log says why", || {
        std::fs::read_to_string(&log_path).ok().filter(|log| {
            log.contains("cannot fetch the OIDC issuer's keys") && log.contains("503")
        })
    });
    issuer.up.store(true, Ordering::SeqCst);
    eventually("the token accepted once the issuer is up", || {
        whoami().status.success().then_some(())
    });
}

#[test]
fn oidc_discovery_must_name_the_issuer_and_stay_small() {
    let key = SigningKey::generate("k1");
    let issuer = Issuer::start(&[&key]);
    *issuer.names.lock().unwrap() = Some(format!("{}/", issuer.url));
    let (server, _dir) = start(&issuer);
    let token = key.sign(&issuer.claims("alice"));
    let whoami = || server.with_token(&token, &["auth", "whoami"]);
    let log_path = server.data.with_extension("log");
    let logged = |words: &str| {
        std::fs::read_to_string(&log_path)
            .is_ok_and(|log| log.contains(words))
            .then_some(())
    };
    eventually("the log names the issuer mismatch", || {
        logged("--oidc-issuer-url must equal the issuer's own URL exactly")
    });
    assert!(
        !whoami().status.success(),
        "keys of another issuer's document"
    );
    // A JWKS over 1 MiB is not read.
    *issuer.names.lock().unwrap() = None;
    *issuer.jwks.lock().unwrap() = json!({"keys": [], "pad": "x".repeat(2 << 20)});
    eventually("the log says the JWKS is too large", || {
        logged("the response is larger than 1048576 bytes")
    });
    assert!(!whoami().status.success());
    issuer.publish(&[&key]);
    eventually("the token accepted once the documents are right", || {
        whoami().status.success().then_some(())
    });
}

/// `adamant serve` with `args`, expected to fail; its stderr.
fn serve_fails(data: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_adamant"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--device-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} started");
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn oidc_flags_that_cannot_work_stop_the_server_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (args, words) in [
        (
            &["--oidc-client-id", "adamant"][..],
            "--oidc-client-id is set but --oidc-issuer-url is not",
        ),
        (
            &[
                "--oidc-issuer-url",
                "http://issuer.example",
                "--oidc-client-id",
                "adamant",
            ][..],
            "--oidc-issuer-url \"http://issuer.example\" is not an https:// URL",
        ),
        (
            &["--oidc-issuer-url", "https://issuer.example"][..],
            "--oidc-client-id is not",
        ),
        (
            &[
                "--oidc-issuer-url",
                "https://issuer.example",
                "--oidc-client-id",
                "adamant",
                "--oidc-signing-algs",
                "HS256",
            ][..],
            "--oidc-signing-algs: \"HS256\" is not supported",
        ),
    ] {
        let stderr = serve_fails(&data, args);
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}
