//! RBAC as kube-apiserver has it, with users made here (client certificates from the server's
//! root CA, CN = user, O = groups): a data-driven matrix of users bound to `view`, `edit`,
//! `admin`, `eve:operator`, a namespaced Role and a Role with resourceNames (and `view`
//! cluster-wide through a group), verb by verb and namespace by namespace on native kinds, EVE
//! kinds and the `status` and `scale` subresources — each request's outcome, a
//! SelfSubjectAccessReview and `kubectl auth can-i --list` agree with the table; kube's
//! Forbidden messages; escalation and `bind` refused, `escalate` and `bind` honoured;
//! impersonation allowed and refused; `kubectl auth whoami`; the RBAC kinds' printers and
//! validation.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{Server, apply_examples};
use serde_json::{Value, json};

/// Users: (name, groups).
const USERS: &[(&str, &[&str])] = &[
    ("viewer", &[]),
    ("editor", &[]),
    ("boss", &[]),
    ("olga", &["operators"]),
    ("devicer", &[]),
    ("reader", &[]),
    ("auditor", &["auditors"]),
];

/// What the admin sets up: namespaces, probes, and the bindings of the matrix.
const SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: probe, namespace: enterprise1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: probe, namespace: team}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: probe, namespace: other}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: viewer}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: editor, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: User, name: editor}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: boss, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: User, name: boss}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operators, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "eve:operator"}
subjects: [{kind: Group, name: operators}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-device, namespace: enterprise1}
rules:
- {apiGroups: [eve.lfedge.org], resources: [devices], resourceNames: [eve-device.lab1], verbs: [get, list, watch, patch]}
- {apiGroups: [eve.lfedge.org], resources: [devices/status], resourceNames: [eve-device.lab1], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devicer, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-device}
subjects: [{kind: User, name: devicer}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: team}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects: [{kind: User, name: reader}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auditors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: auditors}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: robot, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: robot}]
"#;

/// The matrix: (user, verb, target, namespace, allowed). A target is
/// `resource[/name[/subresource]]`, or `resource@name` for a list or watch selecting one name.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, &str, &str, bool)] = &[
    // view, bound in enterprise1.
    ("viewer", "get", "configmaps/probe", "enterprise1", true),
    ("viewer", "list", "configmaps", "enterprise1", true),
    ("viewer", "watch", "configmaps", "enterprise1", true),
    ("viewer", "create", "configmaps", "enterprise1", false),
    ("viewer", "update", "configmaps/probe", "enterprise1", false),
    ("viewer", "patch", "configmaps/probe", "enterprise1", false),
    ("viewer", "delete", "configmaps/probe", "enterprise1", false),
    ("viewer", "deletecollection", "configmaps", "enterprise1", false),
    ("viewer", "get", "secrets/quay-creds", "enterprise1", false),
    ("viewer", "list", "secrets", "enterprise1", false),
    ("viewer", "get", "configmaps/probe", "team", false),
    ("viewer", "list", "configmaps", "", false),
    ("viewer", "get", "devices/eve-device.lab1", "enterprise1", true),
    ("viewer", "get", "devices/eve-device.lab1/status", "enterprise1", true),
    ("viewer", "patch", "devices/eve-device.lab1/status", "enterprise1", false),
    ("viewer", "list", "applications", "enterprise1", true),
    ("viewer", "create", "applications", "enterprise1", false),
    ("viewer", "get", "applicationdeployments/web/scale", "enterprise1", true),
    ("viewer", "patch", "applicationdeployments/web/scale", "enterprise1", false),
    ("viewer", "get", "persistentvolumeclaims/ubuntuclaim", "enterprise1", true),
    ("viewer", "get", "namespaces/enterprise1", "", true),
    ("viewer", "get", "namespaces/team", "", false),
    ("viewer", "list", "roles", "enterprise1", false),
    // edit, bound in enterprise1.
    ("editor", "get", "configmaps/probe", "enterprise1", true),
    ("editor", "list", "configmaps", "enterprise1", true),
    ("editor", "watch", "configmaps", "enterprise1", true),
    ("editor", "create", "configmaps", "enterprise1", true),
    ("editor", "update", "configmaps/probe", "enterprise1", true),
    ("editor", "patch", "configmaps/probe", "enterprise1", true),
    ("editor", "delete", "configmaps/probe", "enterprise1", true),
    ("editor", "deletecollection", "configmaps", "enterprise1", true),
    ("editor", "get", "secrets/quay-creds", "enterprise1", true),
    ("editor", "create", "secrets", "enterprise1", true),
    ("editor", "create", "configmaps", "team", false),
    ("editor", "patch", "devices/eve-device.lab1", "enterprise1", true),
    ("editor", "patch", "devices/eve-device.lab1/status", "enterprise1", true),
    ("editor", "update", "applicationdeployments/web/scale", "enterprise1", true),
    ("editor", "list", "roles", "enterprise1", false),
    ("editor", "create", "rolebindings", "enterprise1", false),
    // admin, bound in enterprise1.
    ("boss", "list", "roles", "enterprise1", true),
    ("boss", "create", "roles", "enterprise1", true),
    ("boss", "delete", "rolebindings/nothing", "enterprise1", true),
    ("boss", "create", "localsubjectaccessreviews", "enterprise1", true),
    ("boss", "deletecollection", "configmaps", "enterprise1", true),
    ("boss", "delete", "devices/eve-device.lab1", "enterprise1", true),
    ("boss", "get", "configmaps/probe", "team", false),
    ("boss", "list", "roles", "team", false),
    // eve:operator, bound to the group operators in enterprise1.
    ("olga", "list", "devices", "enterprise1", true),
    ("olga", "get", "devices/eve-device.lab1/status", "enterprise1", true),
    ("olga", "patch", "devices/eve-device.lab1", "enterprise1", false),
    ("olga", "delete", "devices/eve-device.lab1", "enterprise1", false),
    ("olga", "create", "applications", "enterprise1", true),
    ("olga", "patch", "applications/app-ubuntu", "enterprise1", true),
    ("olga", "patch", "applicationdeployments/web/scale", "enterprise1", true),
    ("olga", "get", "applicationdeployments/web/status", "enterprise1", true),
    ("olga", "patch", "applicationdeployments/web/status", "enterprise1", false),
    ("olga", "create", "persistentvolumeclaims", "enterprise1", true),
    ("olga", "create", "images", "enterprise1", true),
    ("olga", "list", "networkconfigs", "enterprise1", true),
    ("olga", "get", "onboardcertificates/onboard-cert-25", "enterprise1", false),
    ("olga", "list", "deviceconfigs", "enterprise1", false),
    ("olga", "get", "configmaps/probe", "enterprise1", false),
    ("olga", "list", "devices", "team", false),
    // A Role with resourceNames: one Device.
    ("devicer", "get", "devices/eve-device.lab1", "enterprise1", true),
    ("devicer", "get", "devices/another", "enterprise1", false),
    ("devicer", "list", "devices", "enterprise1", false),
    ("devicer", "watch", "devices@eve-device.lab1", "enterprise1", true),
    ("devicer", "list", "devices@eve-device.lab1", "enterprise1", true),
    ("devicer", "watch", "devices@another", "enterprise1", false),
    ("devicer", "patch", "devices/eve-device.lab1", "enterprise1", true),
    ("devicer", "get", "devices/eve-device.lab1/status", "enterprise1", true),
    ("devicer", "patch", "devices/eve-device.lab1/status", "enterprise1", false),
    ("devicer", "delete", "devices/eve-device.lab1", "enterprise1", false),
    ("devicer", "get", "applications/app-ubuntu", "enterprise1", false),
    // A namespaced Role in team.
    ("reader", "get", "configmaps/probe", "team", true),
    ("reader", "list", "configmaps", "team", true),
    ("reader", "watch", "configmaps", "team", false),
    ("reader", "create", "configmaps", "team", false),
    ("reader", "get", "configmaps/probe", "enterprise1", false),
    ("reader", "list", "configmaps", "other", false),
    ("reader", "get", "secrets/anything", "team", false),
    // view everywhere, through a group's ClusterRoleBinding.
    ("auditor", "list", "configmaps", "", true),
    ("auditor", "get", "configmaps/probe", "other", true),
    ("auditor", "list", "devices", "", true),
    ("auditor", "list", "secrets", "", false),
    ("auditor", "create", "configmaps", "other", false),
];

/// The API path prefix, kind and scope of the resources of the matrix.
fn api(resource: &str) -> (&'static str, &'static str, bool) {
    match resource {
        "configmaps" => ("/api/v1", "ConfigMap", true),
        "secrets" => ("/api/v1", "Secret", true),
        "persistentvolumeclaims" => ("/api/v1", "PersistentVolumeClaim", true),
        "namespaces" => ("/api/v1", "Namespace", false),
        "roles" => ("/apis/rbac.authorization.k8s.io/v1", "Role", true),
        "rolebindings" => ("/apis/rbac.authorization.k8s.io/v1", "RoleBinding", true),
        "localsubjectaccessreviews" => (
            "/apis/authorization.k8s.io/v1",
            "LocalSubjectAccessReview",
            true,
        ),
        other => {
            let kind = match other {
                "devices" => "Device",
                "applications" => "Application",
                "applicationdeployments" => "ApplicationDeployment",
                "images" => "Image",
                "networkconfigs" => "NetworkConfig",
                "onboardcertificates" => "OnboardCertificate",
                "deviceconfigs" => "DeviceConfig",
                _ => panic!("no API for {other}"),
            };
            ("/apis/eve.lfedge.org/v1beta1", kind, true)
        }
    }
}

/// One request of the matrix, parsed.
struct Target<'a> {
    resource: &'a str,
    name: &'a str,
    subresource: &'a str,
    /// A list or watch selecting this name.
    selected: &'a str,
}

impl<'a> Target<'a> {
    fn parse(target: &'a str) -> Target<'a> {
        if let Some((resource, selected)) = target.split_once('@') {
            return Target {
                resource,
                name: "",
                subresource: "",
                selected,
            };
        }
        let mut parts = target.splitn(3, '/');
        let resource = parts.next().unwrap_or("");
        Target {
            resource,
            name: parts.next().unwrap_or(""),
            subresource: parts.next().unwrap_or(""),
            selected: "",
        }
    }

    fn group(&self) -> &'static str {
        let (prefix, _, _) = api(self.resource);
        match prefix.strip_prefix("/apis/") {
            Some(rest) => rest.split('/').next().unwrap_or(""),
            None => "",
        }
    }

    fn path(&self, namespace: &str) -> String {
        let (prefix, _, _) = api(self.resource);
        let mut path = prefix.to_string();
        if !namespace.is_empty() {
            path.push_str(&format!("/namespaces/{namespace}"));
        }
        path.push_str(&format!("/{}", self.resource));
        for part in [self.name, self.subresource] {
            if !part.is_empty() {
                path.push_str(&format!("/{part}"));
            }
        }
        path
    }

    /// The namespace the authorizer sees (a Namespace's own requests are in it).
    fn authorized_namespace<'b>(&'b self, namespace: &'b str) -> &'b str {
        if self.resource == "namespaces" {
            self.name
        } else {
            namespace
        }
    }
}

/// The test's users: kubeconfigs with client certificates from the server's client CA.
struct Users {
    client_ca: pki::Authority,
    root_pem: String,
    url: String,
    dir: tempfile::TempDir,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl Users {
    fn new(server: &Server) -> Users {
        let read =
            |file: &str| std::fs::read_to_string(server.data.join("pki").join(file)).unwrap();
        let client_ca =
            pki::Authority::from_pem(&read("client-ca.crt"), &read("client-ca.key")).unwrap();
        Users {
            client_ca,
            root_pem: read("root-certificate.pem"),
            url: format!("https://{}", server.address),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The kubeconfig of `user` in `groups` (made once).
    fn kubeconfig(&self, user: &str, groups: &[&str]) -> PathBuf {
        let path = self.dir.path().join(format!("{user}.kubeconfig"));
        if path.exists() {
            return path;
        }
        let issued = self
            .client_ca
            .issue_client(user, groups, pki::validity::CLIENT)
            .unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: adamant\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: adamant\n  context: {{cluster: adamant, user: {user}, namespace: default}}\ncurrent-context: adamant\n",
            self.url,
            b64(&self.root_pem),
            b64(&issued.certificate_pem),
            b64(&issued.key_pem),
        );
        std::fs::write(&path, kubeconfig).unwrap();
        path
    }

    fn of(&self, user: &str) -> PathBuf {
        let groups = USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map_or(&[][..], |(_, g)| g);
        self.kubeconfig(user, groups)
    }
}

/// kubectl as the user of `kubeconfig`: (success, stdout, stderr).
fn kubectl_as(
    server: &Server,
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    all.extend(args);
    let mut child = server
        .kubectl_command(&all)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes());
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Sends a request; returns the status and the body.
async fn send(
    client: &kube::Client,
    method: &str,
    uri: &str,
    body: Option<&Value>,
    content_type: &str,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(kube::client::Body::from(
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        ))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let status = response.status().as_u16();
    if uri.contains("watch=true") && status == 200 {
        return (status, Value::Null);
    }
    let bytes = response.into_body().collect_bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The body of a create of `resource` in `namespace`.
fn new_object(resource: &str, namespace: &str) -> Value {
    let (prefix, kind, _) = api(resource);
    let api_version = prefix
        .trim_start_matches("/api/")
        .trim_start_matches("/apis/");
    let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "made"}});
    match resource {
        "roles" => object["rules"] = json!([]),
        "persistentvolumeclaims" => {
            object["spec"] = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
        }
        "localsubjectaccessreviews" => {
            object["metadata"] = json!({"namespace": namespace});
            object["spec"] = json!({"user": "someone", "resourceAttributes": {"namespace": namespace, "verb": "get", "resource": "configmaps"}});
        }
        _ => {}
    }
    object
}

/// Makes one request of the matrix as `client` (writes are dry runs); returns the status and
/// the body.
async fn request(
    client: &kube::Client,
    admin: &kube::Client,
    verb: &str,
    target: &Target<'_>,
    namespace: &str,
) -> (u16, Value) {
    let path = target.path(namespace);
    let selected = match target.selected {
        "" => String::new(),
        name => format!("&fieldSelector=metadata.name%3D{name}"),
    };
    let merge = "application/merge-patch+json";
    let json = "application/json";
    match verb {
        "get" => send(client, "GET", &path, None, json).await,
        "list" => {
            send(
                client,
                "GET",
                &format!("{path}?limit=1{selected}"),
                None,
                json,
            )
            .await
        }
        "watch" => {
            send(
                client,
                "GET",
                &format!("{path}?watch=true&timeoutSeconds=1{selected}"),
                None,
                json,
            )
            .await
        }
        "create" => {
            send(
                client,
                "POST",
                &format!("{path}?dryRun=All"),
                Some(&new_object(target.resource, namespace)),
                json,
            )
            .await
        }
        "update" => {
            let (_, current) = send(admin, "GET", &path, None, json).await;
            send(
                client,
                "PUT",
                &format!("{path}?dryRun=All"),
                Some(&current),
                json,
            )
            .await
        }
        "patch" => {
            send(
                client,
                "PATCH",
                &format!("{path}?dryRun=All"),
                Some(&json!({})),
                merge,
            )
            .await
        }
        "delete" => send(client, "DELETE", &format!("{path}?dryRun=All"), None, json).await,
        "deletecollection" => {
            send(
                client,
                "DELETE",
                &format!("{path}?dryRun=All&labelSelector=rbac-test%3Dnothing"),
                None,
                json,
            )
            .await
        }
        other => panic!("no verb {other}"),
    }
}

/// What a SelfSubjectAccessReview says of one request of the matrix.
async fn can_i(client: &kube::Client, verb: &str, target: &Target<'_>, namespace: &str) -> bool {
    let name = if target.selected.is_empty() {
        target.name
    } else {
        target.selected
    };
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {
            "namespace": target.authorized_namespace(namespace), "verb": verb, "group": target.group(),
            "resource": target.resource, "subresource": target.subresource, "name": name,
        }},
    });
    let (status, answer) = send(
        client,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(&review),
        "application/json",
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["status"]["allowed"] == true
}

/// One line of `kubectl auth can-i --list`: resource (`devices.eve.lfedge.org/status`),
/// resource names and verbs.
struct Listed {
    resource: String,
    names: Vec<String>,
    verbs: Vec<String>,
}

fn listed(output: &str) -> Vec<Listed> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let column = |title: &str| header.find(title).unwrap();
    let (names_at, verbs_at) = (column("Resource Names"), column("Verbs"));
    let urls_at = column("Non-Resource URLs");
    let words = |text: &str| -> Vec<String> {
        text.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    lines
        .filter(|l| !l[..urls_at.min(l.len())].trim().is_empty())
        .map(|l| Listed {
            resource: l[..urls_at].trim().to_string(),
            names: words(&l[names_at..verbs_at]),
            verbs: words(&l[verbs_at..]),
        })
        .collect()
}

/// Whether a line of `--list` allows a request.
fn lists(line: &Listed, verb: &str, target: &Target<'_>) -> bool {
    let (resource, sub) = line
        .resource
        .split_once('/')
        .unwrap_or((&line.resource, ""));
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let name = if target.selected.is_empty() {
        target.name
    } else {
        target.selected
    };
    let resource_ok = resource == "*" || (resource == target.resource && sub == target.subresource);
    let group_ok = group == "*" || group == target.group();
    let verb_ok = line.verbs.iter().any(|v| v == verb || v == "*");
    let name_ok = line.names.is_empty() || line.names.iter().any(|n| n == name);
    resource_ok && group_ok && verb_ok && name_ok
}

/// A server with the examples (if `examples`) and the bindings of the matrix, and its users.
fn setup(examples: bool) -> (Server, Users) {
    let server = Server::start();
    if examples {
        apply_examples(&server);
    } else {
        server.ok(&["create", "namespace", "enterprise1"]);
    }
    server.ok_stdin(&["apply", "-f", "-"], SETUP);
    let users = Users::new(&server);
    (server, users)
}

#[test]
fn the_rbac_matrix_holds_for_requests_reviews_and_can_i_list() {
    let (server, users) = setup(true);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admin = runtime.block_on(common::kube_client(&server.kubeconfig()));
    let mut failures = Vec::new();
    for &(user, _) in USERS {
        let kubeconfig = users.of(user);
        let client = runtime.block_on(common::kube_client(&kubeconfig));
        let rows: Vec<_> = MATRIX.iter().filter(|r| r.0 == user).collect();
        let mut lists_by_namespace = std::collections::BTreeMap::new();
        for &&(_, verb, target, namespace, allowed) in &rows {
            let target = Target::parse(target);
            let (status, body) =
                runtime.block_on(request(&client, &admin, verb, &target, namespace));
            let what = format!(
                "{user} {verb} {:?} in {namespace:?}",
                target.path(namespace)
            );
            if (status == 403) == allowed {
                failures.push(format!("{what}: {status} {body}"));
            }
            if !allowed && status == 403 {
                let message = body["message"].as_str().unwrap_or("");
                if !message.contains(&format!("User \"{user}\" cannot {verb} resource")) {
                    failures.push(format!("{what}: message {message:?}"));
                }
            }
            if runtime.block_on(can_i(&client, verb, &target, namespace)) != allowed {
                failures.push(format!("{what}: the SelfSubjectAccessReview disagrees"));
            }
            // `kubectl auth can-i --list` of the namespace the request is authorized in.
            let scope = target.authorized_namespace(namespace).to_string();
            if scope.is_empty() {
                continue;
            }
            let lines = lists_by_namespace.entry(scope.clone()).or_insert_with(|| {
                let (ok, out, err) = kubectl_as(
                    &server,
                    &kubeconfig,
                    &["auth", "can-i", "--list", "-n", &scope],
                    None,
                );
                assert!(ok, "{err}");
                listed(&out)
            });
            if lines.iter().any(|l| lists(l, verb, &target)) != allowed {
                failures.push(format!(
                    "{what}: `kubectl auth can-i --list -n {scope}` disagrees"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows fail:\n{}",
        failures.len(),
        MATRIX.len(),
        failures.join("\n")
    );
}

/// Runs kubectl as `user`, expecting success; returns stdout.
#[track_caller]
fn ok_as(server: &Server, users: &Users, user: &str, args: &[&str]) -> String {
    let (ok, out, err) = kubectl_as(server, &users.of(user), args, None);
    assert!(ok, "{user}: kubectl {} failed:\n{out}{err}", args.join(" "));
    out
}

/// Runs kubectl as `user` with `stdin`, expecting failure; returns stderr.
#[track_caller]
fn fails_as(
    server: &Server,
    users: &Users,
    user: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    let (ok, out, err) = kubectl_as(server, &users.of(user), args, stdin);
    assert!(!ok, "{user}: kubectl {} succeeded:\n{out}", args.join(" "));
    err
}

#[test]
fn refusals_can_i_and_whoami_are_kube_s() {
    let (server, users) = setup(true);
    let e1 = ["-n", "enterprise1"];
    let with = |args: &[&'static str], ns: &[&'static str]| [args, ns].concat();
    expect_test::expect![[r#"
        Error from server (Forbidden): configmaps "probe" is forbidden: User "viewer" cannot delete resource "configmaps" in API group "" in the namespace "enterprise1"
    "#]]
    .assert_eq(&fails_as(&server, &users, "viewer", &with(&["delete", "configmap", "probe"], &e1), None));
    expect_test::expect![[r#"
        Error from server (Forbidden): configmaps is forbidden: User "viewer" cannot list resource "configmaps" in API group "" at the cluster scope
    "#]]
    .assert_eq(&fails_as(&server, &users, "viewer", &["get", "configmaps", "-A"], None));
    expect_test::expect![[r#"
        Error from server (Forbidden): devices.eve.lfedge.org "eve-device.lab1" is forbidden: User "viewer" cannot patch resource "devices/status" in API group "eve.lfedge.org" in the namespace "enterprise1"
    "#]]
    .assert_eq(&fails_as(
        &server,
        &users,
        "viewer",
        &with(&["patch", "device", "eve-device.lab1", "--subresource=status", "--type=merge", "-p", "{}"], &e1),
        None,
    ));
    expect_test::expect![[r#"
        Error from server (Forbidden): forbidden: User "viewer" cannot get path "/debug/pprof"
    "#]]
    .assert_eq(&fails_as(
        &server,
        &users,
        "viewer",
        &["get", "--raw", "/debug/pprof"],
        None,
    ));
    // kubectl auth can-i: yes (exit 0) and no (exit 1), subresources and names.
    let can = |user: &str, args: &[&str]| {
        let (ok, out, _) = kubectl_as(
            &server,
            &users.of(user),
            &[&["auth", "can-i"], args].concat(),
            None,
        );
        assert_eq!(out.trim(), if ok { "yes" } else { "no" });
        ok
    };
    assert!(can("viewer", &["get", "configmaps", "-n", "enterprise1"]));
    assert!(!can(
        "viewer",
        &["delete", "configmaps", "-n", "enterprise1"]
    ));
    assert!(!can("viewer", &["get", "configmaps", "-n", "team"]));
    assert!(can(
        "viewer",
        &[
            "get",
            "devices",
            "--subresource=status",
            "-n",
            "enterprise1"
        ]
    ));
    assert!(!can(
        "viewer",
        &[
            "patch",
            "devices",
            "--subresource=status",
            "-n",
            "enterprise1"
        ]
    ));
    assert!(can(
        "devicer",
        &["get", "device/eve-device.lab1", "-n", "enterprise1"]
    ));
    assert!(!can(
        "devicer",
        &["get", "device/another", "-n", "enterprise1"]
    ));
    assert!(can(
        "olga",
        &[
            "update",
            "applicationdeployments",
            "--subresource=scale",
            "-n",
            "enterprise1"
        ]
    ));
    assert!(can("auditor", &["list", "devices", "--all-namespaces"]));
    // A single-Device grant: get and watch that Device by name with kubectl.
    assert!(
        ok_as(
            &server,
            &users,
            "devicer",
            &with(&["get", "device", "eve-device.lab1", "-o", "name"], &e1)
        )
        .contains("eve-device.lab1")
    );
    let watched = ok_as(
        &server,
        &users,
        "devicer",
        &with(
            &[
                "get",
                "device",
                "eve-device.lab1",
                "--watch",
                "--request-timeout=2s",
                "-o",
                "name",
            ],
            &e1,
        ),
    );
    assert!(watched.contains("eve-device.lab1"), "{watched}");
    // kubectl auth whoami.
    expect_test::expect![[r#"
        ATTRIBUTE   VALUE
        Username    olga
        Groups      [operators system:authenticated]
    "#]]
    .assert_eq(&ok_as(&server, &users, "olga", &["auth", "whoami"]));
    // A SubjectAccessReview (create-only, answered, not stored) by an admin.
    let review = r#"{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "viewer", "resourceAttributes": {"namespace": "enterprise1", "verb": "get", "resource": "configmaps"}}}"#;
    let answer: Value =
        serde_json::from_str(&server.ok_stdin(&["create", "-f", "-", "-o", "json"], review))
            .unwrap();
    assert_eq!(answer["status"]["allowed"], true);
    assert_eq!(
        answer["status"]["reason"],
        "RBAC: allowed by RoleBinding \"viewer/enterprise1\" of ClusterRole \"view\" to User \"viewer\""
    );
    let listed = server.fails(&["get", "subjectaccessreviews"], None);
    assert!(
        listed.contains("MethodNotAllowed") || listed.contains("not allow"),
        "{listed}"
    );
}

/// More bindings for the escalation and impersonation tests.
const MORE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: binder, namespace: enterprise1}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], resourceNames: [view], verbs: [bind]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: binder, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}
subjects: [{kind: User, name: binder}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: escalator, namespace: enterprise1}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [create, escalate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: escalator, namespace: enterprise1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: escalator}
subjects: [{kind: User, name: escalator}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: clusterrole-writer}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: role-maker}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: clusterrole-writer}
subjects: [{kind: User, name: role-maker}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-viewer}
rules:
- {apiGroups: [""], resources: [users], resourceNames: [viewer], verbs: [impersonate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: impersonator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-viewer}
subjects: [{kind: User, name: impersonator}]
"#;

fn role(name: &str, rule: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: enterprise1}}\nrules: [{rule}]\n"
    )
}

fn binding(name: &str, namespace: &str, cluster_role: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: {namespace}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {cluster_role}}}\nsubjects: [{{kind: User, name: someone}}]\n"
    )
}

#[test]
fn nobody_grants_what_they_do_not_hold() {
    let (server, users) = setup(false);
    server.ok_stdin(&["apply", "-f", "-"], MORE);
    let create = ["create", "-f", "-"];
    let secrets = "{apiGroups: [''], resources: [secrets], verbs: [get]}";
    let classes = "{apiGroups: [storage.k8s.io], resources: [storageclasses], verbs: [get, list]}";
    // admin of a namespace: roles within what admin holds, bindings to roles it holds.
    let (ok, _, err) = kubectl_as(
        &server,
        &users.of("boss"),
        &create,
        Some(&role("secret-reader", secrets)),
    );
    assert!(ok, "{err}");
    expect_test::expect![[r#"
        Error from server (Forbidden): error when creating "STDIN": roles.rbac.authorization.k8s.io "too-much" is forbidden: user "boss" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
        {APIGroups:["storage.k8s.io"], Resources:["storageclasses"], Verbs:["get" "list"]}
    "#]]
    .assert_eq(&fails_as(&server, &users, "boss", &create, Some(&role("too-much", classes))));
    let (ok, _, err) = kubectl_as(
        &server,
        &users.of("boss"),
        &create,
        Some(&binding("edit-someone", "enterprise1", "edit")),
    );
    assert!(ok, "{err}");
    let refused = fails_as(
        &server,
        &users,
        "boss",
        &create,
        Some(&binding("root-someone", "enterprise1", "cluster-admin")),
    );
    assert!(refused.contains(r#"rolebindings.rbac.authorization.k8s.io "root-someone" is forbidden: user "boss" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#), "{refused}");
    assert!(
        refused.contains(r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#),
        "{refused}"
    );
    let outside = fails_as(
        &server,
        &users,
        "boss",
        &create,
        Some(&binding("edit-someone", "team", "edit")),
    );
    assert!(outside.contains(r#"User "boss" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "team""#), "{outside}");
    // admin holds the EVE roles (aggregated), so a namespace's admin may hand them out.
    for (name, role) in [
        ("fleet", "eve:fleet-admin"),
        ("ops", "eve:operator"),
        ("audit", "eve:viewer"),
    ] {
        let binding = binding(name, "enterprise1", &format!("\"{role}\""));
        let (ok, _, err) = kubectl_as(&server, &users.of("boss"), &create, Some(&binding));
        assert!(ok, "{role}: {err}");
    }
    // `bind` on one ClusterRole lets a binder grant it, and nothing else.
    let (ok, _, err) = kubectl_as(
        &server,
        &users.of("binder"),
        &create,
        Some(&binding("view-someone", "enterprise1", "view")),
    );
    assert!(ok, "{err}");
    let refused = fails_as(
        &server,
        &users,
        "binder",
        &create,
        Some(&binding("edit-other", "enterprise1", "edit")),
    );
    assert!(refused.contains(r#"user "binder" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held"#), "{refused}");
    // `escalate` lets a user write roles beyond what they hold.
    let (ok, _, err) = kubectl_as(
        &server,
        &users.of("escalator"),
        &create,
        Some(&role("wide", classes)),
    );
    assert!(ok, "{err}");
    // ClusterRoles: an aggregationRule needs cluster-admin powers (or escalate).
    let aggregated = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: sneaky}\naggregationRule:\n  clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-admin: 'true'}}]\n";
    expect_test::expect![[r#"
        Error from server (Forbidden): error when creating "STDIN": clusterroles.rbac.authorization.k8s.io "sneaky" is forbidden: must have cluster-admin privileges to use the aggregationRule
    "#]]
    .assert_eq(&fails_as(&server, &users, "role-maker", &create, Some(aggregated)));
    let empty = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: harmless}\nrules: []\n";
    let (ok, _, err) = kubectl_as(&server, &users.of("role-maker"), &create, Some(empty));
    assert!(ok, "{err}");
    // kubectl create role|rolebinding (protobuf bodies) by the admin of enterprise1.
    ok_as(
        &server,
        &users,
        "boss",
        &[
            "create",
            "role",
            "cm-editor",
            "--verb=get,update",
            "--resource=configmaps",
            "-n",
            "enterprise1",
        ],
    );
    ok_as(
        &server,
        &users,
        "boss",
        &[
            "create",
            "rolebinding",
            "cm-editor",
            "--role=cm-editor",
            "--user=someone",
            "-n",
            "enterprise1",
        ],
    );
    let denied = fails_as(
        &server,
        &users,
        "boss",
        &[
            "create",
            "clusterrolebinding",
            "mine",
            "--clusterrole=view",
            "--user=boss",
        ],
        None,
    );
    assert!(denied.contains("at the cluster scope"), "{denied}");
}

#[test]
fn aggregation_follows_labelled_cluster_roles() {
    let (server, users) = setup(false);
    let leases = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: lease-view\n  labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}\nrules:\n- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, watch]}\n";
    let has_leases = |role: &str| {
        common::get_json(&server, &["get", "clusterrole", role])["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["leases"]))
    };
    assert!(!has_leases("view"));
    server.ok_stdin(&["apply", "-f", "-"], leases);
    // view aggregates it, and so edit and admin (which aggregate view's rules).
    for role in ["view", "edit", "admin"] {
        common::eventually(&format!("{role} aggregating lease-view"), || {
            has_leases(role).then_some(())
        });
    }
    common::eventually("the viewer listing leases", || {
        kubectl_as(
            &server,
            &users.of("viewer"),
            &["get", "leases", "-n", "enterprise1"],
            None,
        )
        .0
        .then_some(())
    });
    server.ok(&["delete", "clusterrole", "lease-view"]);
    common::eventually("view without lease-view", || {
        (!has_leases("view")).then_some(())
    });
    // The EVE roles are aggregated: admin, edit and view hold the EVE kinds.
    let view = server.ok(&["get", "clusterrole", "view", "-o", "yaml"]);
    assert!(view.contains("devices/status"), "{view}");
}

#[test]
fn impersonation_needs_the_impersonate_verb() {
    let (server, users) = setup(false);
    server.ok_stdin(&["apply", "-f", "-"], MORE);
    let e1 = ["-n", "enterprise1"];
    expect_test::expect![[r#"
        Error from server (Forbidden): users "editor" is forbidden: User "viewer" cannot impersonate resource "users" in API group "" at the cluster scope
    "#]]
    .assert_eq(&fails_as(&server, &users, "viewer", &[&["--as", "editor", "get", "configmaps"][..], &e1].concat(), None));
    // A member of system:masters may impersonate anyone; the request runs as them.
    server.ok(&[&["--as", "viewer", "get", "configmap", "probe"][..], &e1].concat());
    let refused = server.fails(
        &[
            &[
                "--as",
                "viewer",
                "delete",
                "configmap",
                "probe",
                "--dry-run=server",
            ][..],
            &e1,
        ]
        .concat(),
        None,
    );
    assert!(
        refused.contains(r#"User "viewer" cannot delete resource "configmaps""#),
        "{refused}"
    );
    // Impersonating one user by name, and no group.
    ok_as(
        &server,
        &users,
        "impersonator",
        &[&["--as", "viewer", "get", "configmap", "probe"][..], &e1].concat(),
    );
    let other = fails_as(
        &server,
        &users,
        "impersonator",
        &[&["--as", "editor", "get", "configmap", "probe"][..], &e1].concat(),
        None,
    );
    assert!(other.contains(r#"users "editor" is forbidden: User "impersonator" cannot impersonate resource "users""#), "{other}");
    let group = fails_as(
        &server,
        &users,
        "impersonator",
        &[
            "--as",
            "viewer",
            "--as-group",
            "system:masters",
            "get",
            "namespaces",
        ],
        None,
    );
    assert!(group.contains(r#"groups "system:masters" is forbidden: User "impersonator" cannot impersonate resource "groups" in API group "" at the cluster scope"#), "{group}");
    // A service account: its user name and groups; its RoleBinding applies.
    let robot = "system:serviceaccount:team:robot";
    server.ok(&["--as", robot, "get", "configmap", "probe", "-n", "team"]);
    server.fails(
        &[
            "--as",
            robot,
            "get",
            "configmap",
            "probe",
            "-n",
            "enterprise1",
        ],
        None,
    );
    expect_test::expect![[r#"
        ATTRIBUTE   VALUE
        Username    system:serviceaccount:team:robot
        Groups      [system:serviceaccounts system:serviceaccounts:team system:authenticated]
    "#]]
    .assert_eq(&server.ok(&["--as", robot, "auth", "whoami"]));
    expect_test::expect![[r#"
        ATTRIBUTE   VALUE
        Username    viewer
        UID         42
        Groups      [auditors system:authenticated]
    "#]]
    .assert_eq(&server.ok(&[
        "--as",
        "viewer",
        "--as-group",
        "auditors",
        "--as-uid",
        "42",
        "auth",
        "whoami",
    ]));
}

#[test]
fn rbac_kinds_print_and_validate_as_kube() {
    let (server, _users) = setup(false);
    let table = server.ok(&[
        "get",
        "clusterrolebinding",
        "cluster-admin",
        "system:public-info-viewer",
        "-o",
        "wide",
    ]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    assert!(
        table.contains("ClusterRole/cluster-admin") && table.contains("system:masters"),
        "{table}"
    );
    assert!(
        table.contains("system:authenticated, system:unauthenticated"),
        "{table}"
    );
    let roles = server.ok(&["get", "roles", "-n", "team"]);
    assert!(roles.starts_with("NAME        CREATED AT"), "{roles}");
    let bindings = server.ok(&["get", "rolebindings", "-n", "team", "-o", "wide"]);
    // As kube prints it: a service account without a namespace (the binding's) as `/NAME`.
    assert!(
        bindings.contains(" /robot") && bindings.contains("Role/cm-reader"),
        "{bindings}"
    );
    let no_verbs = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: bad, namespace: team}\nrules: [{apiGroups: [''], resources: [configmaps]}]\n";
    let error = server.fails(&["create", "-f", "-"], Some(no_verbs));
    assert!(
        error.contains("rules[0].verbs: Required value: verbs must contain at least one value"),
        "{error}"
    );
    let moved = SETUP
        .split("---")
        .find(|d| d.contains("name: reader, namespace: team"))
        .unwrap()
        .replace("name: cm-reader", "name: other");
    let error = server.fails(&["apply", "-f", "-"], Some(&moved));
    assert!(
        error.contains("roleRef: Invalid value: \"Role/other\": cannot change roleRef"),
        "{error}"
    );
    let robot = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bad}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: x}\nsubjects: [{kind: Robot, name: r}]\n";
    let error = server.fails(&["create", "-f", "-"], Some(robot));
    assert!(
        error.contains(
            r#"roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#
        ),
        "{error}"
    );
    assert!(
        error.contains(r#"subjects[0].kind: Unsupported value: "Robot""#),
        "{error}"
    );
    // The review kinds are create-only in discovery.
    let resources = server.ok(&[
        "api-resources",
        "--api-group=authorization.k8s.io",
        "-o",
        "wide",
    ]);
    let row = resources
        .lines()
        .find(|l| l.starts_with("selfsubjectaccessreviews "))
        .unwrap();
    assert_eq!(row.split_whitespace().nth(4), Some("create"), "{resources}");
}
