//! Admission webhooks with unmodified kubectl: `ValidatingWebhookConfiguration` and
//! `MutatingWebhookConfiguration` checked and defaulted as kube-apiserver does, and webhooks
//! served by a small HTTPS server inside the test (hyper and rustls through the workspace's
//! `https` crate, a certificate for 127.0.0.1 from `pki`'s rcgen authority) refusing,
//! mutating, failing, timing out and answering garbage.

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use common::{Server, eventually, get_json};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// The reviews the test webhook received: the path and the review.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTPS webhook server on 127.0.0.1, answering by path.
struct WebhookServer {
    address: SocketAddr,
    ca_pem: String,
    received: Received,
    _stop: tokio::sync::watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
}

fn allowed(review: &Value) -> Value {
    json!({"uid": review["request"]["uid"], "allowed": true})
}

/// The answer to a review at `path`: the `response`, or the raw body to send instead.
async fn respond(path: &str, review: &Value) -> Result<Value, &'static str> {
    let object = &review["request"]["object"];
    let labels = &object["metadata"]["labels"];
    let patch = |operations: Value| {
        let mut response = allowed(review);
        response["patchType"] = "JSONPatch".into();
        response["patch"] = base64::engine::general_purpose::STANDARD
            .encode(operations.to_string())
            .into();
        response
    };
    Ok(match path {
        "/deny-forbidden" => {
            if labels["forbidden"] == "true" {
                json!({
                    "uid": review["request"]["uid"],
                    "allowed": false,
                    "status": {"code": 403, "message": "ConfigMaps labelled forbidden=true are not allowed"},
                })
            } else {
                let mut response = allowed(review);
                response["warnings"] = json!(["checked by deny.example.com"]);
                response
            }
        }
        "/add-label" => {
            if labels.is_object() {
                patch(
                    json!([{"op": "add", "path": "/metadata/labels/added-by-webhook", "value": "yes"}]),
                )
            } else {
                patch(
                    json!([{"op": "add", "path": "/metadata/labels", "value": {"added-by-webhook": "yes"}}]),
                )
            }
        }
        "/deny-protected-delete" => {
            let old = &review["request"]["oldObject"];
            if review["request"]["operation"] == "DELETE"
                && old["metadata"]["labels"]["protected"] == "true"
            {
                json!({
                    "uid": review["request"]["uid"],
                    "allowed": false,
                    "status": {"code": 403, "message": "protected ConfigMaps may not be deleted"},
                })
            } else {
                allowed(review)
            }
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            allowed(review)
        }
        "/garbage" => return Err("this is not an AdmissionReview"),
        "/wrong-uid" => json!({"uid": "not-the-one", "allowed": true}),
        "/bad-patch" => patch(json!([{"op": "remove", "path": "/spec/nothing"}])),
        "/invalid-patch" => patch(json!([{"op": "add", "path": "/data", "value": 5}])),
        _ => allowed(review),
    })
}

impl WebhookServer {
    fn start() -> WebhookServer {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let common::LoopbackTls {
            authority,
            tls,
            listener,
        } = common::loopback_tls(&runtime, "webhook");
        let address = listener.local_addr().unwrap();
        let received: Received = Arc::default();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let record = received.clone();
        runtime.spawn(https::serve(listener, tls, stopped, move |_peer| {
            let record = record.clone();
            move |request: http::Request<hyper::body::Incoming>| {
                let record = record.clone();
                async move {
                    let path = request.uri().path().to_string();
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    record.lock().unwrap().push((path.clone(), review.clone()));
                    let body = match respond(&path, &review).await {
                        Ok(response) => json!({
                            "apiVersion": "admission.k8s.io/v1",
                            "kind": "AdmissionReview",
                            "response": response,
                        })
                        .to_string(),
                        Err(raw) => raw.to_string(),
                    };
                    http::Response::new(Full::new(Bytes::from(body)))
                }
            }
        }));
        WebhookServer {
            address,
            ca_pem: authority.certificate_pem,
            received,
            _stop: stop,
            _runtime: runtime,
        }
    }

    /// A webhook calling `path` here, with `more` merged in.
    fn hook(&self, name: &str, path: &str, more: Value) -> Value {
        let mut hook = json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "clientConfig": {
                "url": format!("https://{}{path}", self.address),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
            },
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        });
        merge(&mut hook, more);
        hook
    }

    /// The reviews received at `path`.
    fn reviews(&self, path: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// JSON merge patch (RFC 7386): `null` removes.
fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (key, value) in fields {
                if value.is_null() {
                    target.as_object_mut().unwrap().remove(&key);
                } else {
                    merge(&mut target[&key], value);
                }
            }
        }
        other => *target = other,
    }
}

fn configuration(kind: &str, name: &str, hooks: Vec<Value>) -> String {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": hooks,
    })
    .to_string()
}

fn configmap(name: &str, namespace: &str, labels: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"k": "v"},
    })
    .to_string()
}

/// Runs `kubectl create -f -` with `manifest` (and more arguments): success, stdout, stderr.
fn create(server: &Server, manifest: &str, more: &[&str]) -> (bool, String, String) {
    let mut args = vec!["create", "-f", "-"];
    args.extend(more);
    let output = server.kubectl_stdin(&args, manifest);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Waits until a dry-run create of `manifest` fails with `wanted` in its error (the webhook
/// caches follow the store through a watch, a moment after a configuration is written).
fn until_refused(server: &Server, manifest: &str, wanted: &str) {
    eventually(&format!("a refusal with {wanted:?}"), || {
        let (ok, _, stderr) = create(server, manifest, &["--dry-run=server"]);
        (!ok && stderr.contains(wanted)).then_some(())
    });
}

/// A free port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn configurations_are_defaulted_and_checked() {
    let server = Server::start();
    let resources = server.ok(&[
        "api-resources",
        "--api-group=admissionregistration.k8s.io",
        "--no-headers",
    ]);
    assert!(
        resources.contains("validatingwebhookconfigurations")
            && resources.contains("mutatingwebhookconfigurations"),
        "{resources}"
    );
    let hook = json!({
        "name": "check.example.com",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": {"service": {"namespace": "default", "name": "checker"}},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
    });
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration(
            "MutatingWebhookConfiguration",
            "defaults",
            vec![hook.clone()],
        ),
    );
    let stored = get_json(
        &server,
        &["get", "mutatingwebhookconfiguration", "defaults"],
    );
    let webhook = &stored["webhooks"][0];
    assert_eq!(webhook["failurePolicy"], "Fail");
    assert_eq!(webhook["matchPolicy"], "Equivalent");
    assert_eq!(webhook["reinvocationPolicy"], "Never");
    assert_eq!(webhook["timeoutSeconds"], 10);
    assert_eq!(webhook["namespaceSelector"], json!({}));
    assert_eq!(webhook["objectSelector"], json!({}));
    assert_eq!(webhook["rules"][0]["scope"], "*");
    assert_eq!(webhook["clientConfig"]["service"]["port"], 443);
    let table = server.ok(&["get", "mutatingwebhookconfigurations"]);
    assert!(
        table.starts_with("NAME") && table.contains("WEBHOOKS") && table.contains("defaults"),
        "{table}"
    );
    server.ok(&["delete", "mutatingwebhookconfiguration", "defaults"]);
    let explained = server.ok(&[
        "explain",
        "validatingwebhookconfiguration.webhooks.sideEffects",
    ]);
    assert!(explained.contains("NoneOnDryRun"), "{explained}");

    // kube-apiserver's rules, with its messages.
    let refused = |changes: Value, wanted: &str| {
        let mut bad = hook.clone();
        merge(&mut bad, changes);
        let stderr = server.fails(
            &["create", "-f", "-"],
            Some(&configuration(
                "ValidatingWebhookConfiguration",
                "bad",
                vec![bad],
            )),
        );
        assert!(
            stderr.contains("is invalid") && stderr.contains(wanted),
            "wanted {wanted:?} in:\n{stderr}"
        );
    };
    refused(
        json!({"sideEffects": "Some"}),
        r#"webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun""#,
    );
    refused(
        json!({"sideEffects": null}),
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
    );
    refused(
        json!({"admissionReviewVersions": ["v1beta1"]}),
        "must include at least one of v1",
    );
    refused(
        json!({"name": "checker"}),
        "should be a domain with at least three segments separated by dots",
    );
    refused(
        json!({"timeoutSeconds": 31}),
        "the timeout value must be between 1 and 30 seconds",
    );
    refused(
        json!({"clientConfig": {"url": "https://example.com/x"}}),
        "exactly one of url or service is required",
    );
    refused(
        json!({"clientConfig": {"service": null, "url": "http://example.com/x"}}),
        "'https' is the only allowed URL scheme",
    );
    refused(
        json!({"clientConfig": {"service": null, "url": "https://example.com/x?a=b"}}),
        "query parameters are not permitted in the URL",
    );
    refused(
        json!({"matchConditions": [{"name": "always", "expression": "true"}]}),
        "matchConditions are not supported by this server",
    );
    refused(
        json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
        "if '*' is present, must not specify other operations",
    );
    let stderr = server.fails(
        &["create", "-f", "-"],
        Some(&configuration(
            "ValidatingWebhookConfiguration",
            "twice",
            vec![hook.clone(), hook.clone()],
        )),
    );
    assert!(
        stderr.contains(r#"webhooks[1].name: Duplicate value: "check.example.com""#),
        "{stderr}"
    );
}

#[test]
fn webhooks_refuse_mutate_and_select() {
    let server = Server::start();
    let webhook = WebhookServer::start();
    server.ok(&["create", "namespace", "skipped"]);
    server.ok(&["label", "namespace", "skipped", "webhooks=skip"]);
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration(
            "ValidatingWebhookConfiguration",
            "checks",
            vec![webhook.hook(
                "deny.example.com",
                "/deny-forbidden",
                json!({"namespaceSelector": {"matchExpressions": [{"key": "webhooks", "operator": "NotIn", "values": ["skip"]}]}}),
            )],
        ),
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration(
            "MutatingWebhookConfiguration",
            "labels",
            vec![webhook.hook(
                "label.example.com",
                "/add-label",
                json!({"sideEffects": "NoneOnDryRun", "objectSelector": {"matchLabels": {"mutate": "yes"}}}),
            )],
        ),
    );
    let forbidden = configmap("bad", "default", json!({"forbidden": "true"}));
    until_refused(
        &server,
        &forbidden,
        r#"admission webhook "deny.example.com" denied the request: ConfigMaps labelled forbidden=true are not allowed"#,
    );

    // The refusal, as kubectl shows it: the webhook's code (403) and message.
    let (ok, _, stderr) = create(&server, &forbidden, &[]);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        r#"Error from server (Forbidden): error when creating "STDIN": admission webhook "deny.example.com" denied the request: ConfigMaps labelled forbidden=true are not allowed"#
    );
    // The namespace selector skips the labelled namespace.
    let (ok, _, stderr) = create(
        &server,
        &configmap("bad", "skipped", json!({"forbidden": "true"})),
        &[],
    );
    assert!(ok, "{stderr}");
    // An allowed object passes, with the webhook's warning.
    let (ok, _, stderr) = create(&server, &configmap("good", "default", json!({})), &[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Warning: checked by deny.example.com"),
        "{stderr}"
    );
    // Updates are reviewed too, with the old object.
    let stderr = server.fails(&["label", "configmap", "good", "forbidden=true"], None);
    assert!(
        stderr.contains(r#"admission webhook "deny.example.com" denied the request"#),
        "{stderr}"
    );
    let update = webhook
        .reviews("/deny-forbidden")
        .into_iter()
        .rfind(|r| r["request"]["operation"] == "UPDATE")
        .expect("the update was reviewed");
    let request = &update["request"];
    assert_eq!(
        request["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        request["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(request["requestKind"], request["kind"]);
    assert_eq!(request["name"], "good");
    assert_eq!(request["namespace"], "default");
    assert_eq!(request["userInfo"]["username"], "adamant-admin");
    assert_eq!(request["dryRun"], false);
    assert_eq!(request["options"]["kind"], "UpdateOptions");
    assert_eq!(request["object"]["metadata"]["labels"]["forbidden"], "true");
    assert!(request["oldObject"]["metadata"]["labels"]["forbidden"].is_null());

    // The mutating webhook labels what its object selector selects, and only that.
    let (ok, _, stderr) = create(&server, &configmap("plain", "default", json!({})), &[]);
    assert!(ok, "{stderr}");
    let plain = get_json(&server, &["get", "configmap", "plain"]);
    assert!(
        plain["metadata"]["labels"]["added-by-webhook"].is_null(),
        "{plain}"
    );
    eventually("the mutating webhook", || {
        let (ok, stdout, _) = create(
            &server,
            &configmap("probe", "default", json!({"mutate": "yes"})),
            &["--dry-run=server", "-o", "json"],
        );
        let probe: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (ok && probe["metadata"]["labels"]["added-by-webhook"] == "yes").then_some(())
    });
    let (ok, _, stderr) = create(
        &server,
        &configmap("mutated", "default", json!({"mutate": "yes"})),
        &[],
    );
    assert!(ok, "{stderr}");
    let mutated = get_json(&server, &["get", "configmap", "mutated"]);
    assert_eq!(
        mutated["metadata"]["labels"],
        json!({"mutate": "yes", "added-by-webhook": "yes"})
    );

    // A dry run reaches webhooks whose side effects allow it (NoneOnDryRun), told it is one,
    // and stores nothing; the mutated object comes back.
    let before = webhook.reviews("/add-label").len();
    let (ok, stdout, stderr) = create(
        &server,
        &configmap("dry", "default", json!({"mutate": "yes"})),
        &["--dry-run=server", "-o", "json"],
    );
    assert!(ok, "{stderr}");
    let dry: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(dry["metadata"]["labels"]["added-by-webhook"], "yes");
    let reviews = webhook.reviews("/add-label");
    assert_eq!(reviews.len(), before + 1);
    let request = &reviews[before]["request"];
    assert_eq!(request["dryRun"], true);
    assert_eq!(request["options"]["dryRun"], json!(["All"]));
    assert_eq!(request["operation"], "CREATE");
    server.fails(&["get", "configmap", "dry"], None);
}

#[test]
fn webhook_failures_follow_the_failure_policy() {
    let server = Server::start();
    let webhook = WebhookServer::start();
    let down = format!("https://127.0.0.1:{}/", closed_port());
    let case = |name: &str| json!({"objectSelector": {"matchLabels": {"case": name}}});
    let with = |base: Value, more: Value| {
        let mut base = base;
        merge(&mut base, more);
        base
    };
    let other_ca = pki::Authority::generate("another-ca").unwrap();
    let hooks = vec![
        webhook.hook(
            "down-fail.example.com",
            "/",
            with(case("down-fail"), json!({"clientConfig": {"url": down}})),
        ),
        webhook.hook(
            "down-ignore.example.com",
            "/",
            with(
                case("down-ignore"),
                json!({"clientConfig": {"url": down}, "failurePolicy": "Ignore"}),
            ),
        ),
        webhook.hook(
            "slow.example.com",
            "/slow",
            with(case("slow"), json!({"timeoutSeconds": 1})),
        ),
        webhook.hook(
            "slow-ignored.example.com",
            "/slow",
            with(
                case("slow-ignored"),
                json!({"timeoutSeconds": 1, "failurePolicy": "Ignore"}),
            ),
        ),
        webhook.hook("garbage.example.com", "/garbage", case("garbage")),
        webhook.hook("wrong-uid.example.com", "/wrong-uid", case("wrong-uid")),
        webhook.hook(
            "untrusted.example.com",
            "/",
            with(
                case("untrusted"),
                json!({"clientConfig": {"caBundle": base64::engine::general_purpose::STANDARD.encode(&other_ca.certificate_pem)}}),
            ),
        ),
        with(
            webhook.hook("service.example.com", "", case("service")),
            json!({"clientConfig": {"url": null, "service": {"namespace": "hooks", "name": "nowhere", "port": 8443}}}),
        ),
    ];
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration("ValidatingWebhookConfiguration", "failing", hooks),
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration(
            "MutatingWebhookConfiguration",
            "patching",
            vec![
                webhook.hook(
                    "bad-patch.example.com",
                    "/bad-patch",
                    with(case("bad-patch"), json!({"failurePolicy": "Ignore"})),
                ),
                webhook.hook(
                    "invalid-patch.example.com",
                    "/invalid-patch",
                    case("invalid-patch"),
                ),
            ],
        ),
    );
    let object = |name: &str| configmap(name, "default", json!({"case": name}));
    until_refused(
        &server,
        &object("down-fail"),
        r#"failed calling webhook "down-fail.example.com""#,
    );
    until_refused(
        &server,
        &object("invalid-patch"),
        r#"admission webhook "invalid-patch.example.com""#,
    );
    let refused = |name: &str, wanted: &[&str]| {
        let (ok, _, stderr) = create(&server, &object(name), &[]);
        assert!(!ok, "{name} was created");
        for part in wanted {
            assert!(
                stderr.contains(part),
                "{name}: wanted {part:?} in:\n{stderr}"
            );
        }
    };
    let created = |name: &str| {
        let (ok, _, stderr) = create(&server, &object(name), &[]);
        assert!(ok, "{name}: {stderr}");
    };
    // A webhook that cannot be reached: refused under Fail (500, the webhook and the cause
    // named), let through under Ignore.
    refused(
        "down-fail",
        &[
            "Error from server (InternalError)",
            &format!(
                r#"Internal error occurred: failed calling webhook "down-fail.example.com": failed to call webhook: Post "{down}?timeout=10s": "#
            ),
            "onnection refused",
        ],
    );
    created("down-ignore");
    // Too slow: the webhook's timeout, not the client's.
    let start = std::time::Instant::now();
    refused(
        "slow",
        &[
            r#"failed calling webhook "slow.example.com""#,
            "?timeout=1s\": context deadline exceeded",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    created("slow-ignored");
    // Bad answers.
    refused(
        "garbage",
        &[
            r#"failed calling webhook "garbage.example.com": failed to call webhook: the response is not an AdmissionReview"#,
        ],
    );
    refused(
        "wrong-uid",
        &[
            r#"failed calling webhook "wrong-uid.example.com": received invalid webhook response: expected response.uid="#,
            r#"got "not-the-one""#,
        ],
    );
    // A server the caBundle does not vouch for.
    refused(
        "untrusted",
        &[
            r#"failed calling webhook "untrusted.example.com""#,
            "UnknownIssuer",
        ],
    );
    // A service is reached by its DNS name, which nothing resolves here.
    refused(
        "service",
        &[
            r#"failed calling webhook "service.example.com""#,
            r#"Post "https://nowhere.hooks.svc:8443/?timeout=10s""#,
        ],
    );
    // A patch that does not apply, or makes an invalid object, is the server's error whatever
    // the failure policy (as in kube-apiserver).
    refused(
        "bad-patch",
        &[r#"admission webhook "bad-patch.example.com" returned a patch that does not apply"#],
    );
    refused(
        "invalid-patch",
        &[
            r#"admission webhook "invalid-patch.example.com" made an invalid object"#,
            "data",
        ],
    );
    // Nothing failed that should not have: the others are stored.
    for name in ["down-ignore", "slow-ignored"] {
        server.ok(&["get", "configmap", name]);
    }
    for name in [
        "down-fail",
        "slow",
        "garbage",
        "wrong-uid",
        "untrusted",
        "bad-patch",
    ] {
        server.fails(&["get", "configmap", name], None);
    }
}

#[test]
fn validating_webhooks_see_deletions() {
    let server = Server::start();
    let hooks = WebhookServer::start();
    server.ok(&["create", "namespace", "guarded"]);
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configmap("precious", "guarded", json!({"protected": "true"})),
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configmap("ordinary", "guarded", json!({})),
    );
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration(
            "ValidatingWebhookConfiguration",
            "guard",
            vec![hooks.hook(
                "guard.example.com",
                "/deny-protected-delete",
                json!({"rules": [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
            )],
        ),
    );
    // The webhook follows the store through a watch: wait for it to refuse.
    let refused = eventually("the protected ConfigMap's deletion refused", || {
        let output = server.kubectl(&[
            "-n",
            "guarded",
            "delete",
            "configmap",
            "precious",
            "--dry-run=server",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        (!output.status.success()).then_some(stderr)
    });
    assert!(
        refused.contains("admission webhook \"guard.example.com\" denied the request: protected ConfigMaps may not be deleted"),
        "{refused}"
    );
    let output = server.kubectl(&["-n", "guarded", "delete", "configmap", "precious"]);
    assert!(!output.status.success());
    server.ok(&["-n", "guarded", "get", "configmap", "precious"]);
    server.ok(&["-n", "guarded", "delete", "configmap", "ordinary"]);
    // What the webhook saw: a DELETE with no object and the stored one as the old object.
    let reviews = hooks.reviews("/deny-protected-delete");
    let review = reviews
        .iter()
        .find(|r| r["request"]["name"] == "ordinary")
        .expect("the ordinary deletion was reviewed");
    assert_eq!(review["request"]["operation"], "DELETE");
    assert!(review["request"]["object"].is_null(), "{review}");
    assert_eq!(
        review["request"]["oldObject"]["metadata"]["name"],
        "ordinary"
    );
    assert_eq!(review["request"]["options"]["kind"], "DeleteOptions");
}

/// Gadgets, served as `example.com/v1` (stored) and `example.com/v2`, without conversion.
const GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

fn gadget(version: &str, name: &str) -> String {
    json!({
        "apiVersion": format!("example.com/{version}"),
        "kind": "Gadget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"size": 1},
    })
    .to_string()
}

#[test]
fn match_policy_decides_whether_another_version_of_a_rule_s_resource_is_reviewed() {
    let server = Server::start();
    let hooks = WebhookServer::start();
    server.ok_stdin(&["apply", "-f", "-"], GADGETS);
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
    ]);
    // Two webhooks whose rules name only v1: one matching equivalent versions, one exactly.
    let v1_only = |policy: &str| {
        json!({
            "matchPolicy": policy,
            "rules": [{"operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": ["v1"], "resources": ["gadgets"]}],
        })
    };
    server.ok_stdin(
        &["apply", "-f", "-"],
        &configuration(
            "ValidatingWebhookConfiguration",
            "versions",
            vec![
                hooks.hook(
                    "equivalent.example.com",
                    "/equivalent",
                    v1_only("Equivalent"),
                ),
                hooks.hook("exact.example.com", "/exact", v1_only("Exact")),
            ],
        ),
    );
    let written_at = |path: &str, version: &str| {
        hooks
            .reviews(path)
            .into_iter()
            .filter(|r| r["request"]["requestKind"]["version"] == version)
            .collect::<Vec<_>>()
    };
    // Both webhooks see v1 writes; wait until the configuration (and the CRD's served
    // versions) are followed: a dry-run write through v2 reaches the Equivalent webhook.
    eventually("the webhooks to review gadgets", || {
        let (ok, _, stderr) = create(&server, &gadget("v1", "probe"), &["--dry-run=server"]);
        assert!(ok, "{stderr}");
        (!written_at("/exact", "v1").is_empty()).then_some(())
    });
    eventually("a v2 write reviewed at v1", || {
        let (ok, _, stderr) = create(&server, &gadget("v2", "probe"), &["--dry-run=server"]);
        assert!(ok, "{stderr}");
        (!written_at("/equivalent", "v2").is_empty()).then_some(())
    });

    let (ok, _, stderr) = create(&server, &gadget("v2", "through-v2"), &[]);
    assert!(ok, "{stderr}");
    let reviews: Vec<Value> = written_at("/equivalent", "v2")
        .into_iter()
        .filter(|r| r["request"]["name"] == "through-v2")
        .collect();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    let request = &reviews[0]["request"];
    // Equivalent: called with the version its rule names, told which one was written.
    assert_eq!(
        request["kind"],
        json!({"group": "example.com", "version": "v1", "kind": "Gadget"})
    );
    assert_eq!(
        request["resource"],
        json!({"group": "example.com", "version": "v1", "resource": "gadgets"})
    );
    assert_eq!(
        request["requestKind"],
        json!({"group": "example.com", "version": "v2", "kind": "Gadget"})
    );
    assert_eq!(request["object"]["apiVersion"], "example.com/v1");
    assert_eq!(request["dryRun"], false);
    // Exact: never called for a write through v2.
    assert_eq!(written_at("/exact", "v2"), Vec::<Value>::new());
    assert!(
        hooks
            .reviews("/exact")
            .iter()
            .all(|r| r["request"]["kind"]["version"] == "v1"),
    );
    let stored = get_json(&server, &["get", "gadgets.v2.example.com", "through-v2"]);
    assert_eq!(stored["apiVersion"], "example.com/v2");
}
