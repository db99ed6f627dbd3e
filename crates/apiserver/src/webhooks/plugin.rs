//! The admission plug-in that calls the webhooks, as kube-apiserver's `MutatingAdmissionWebhook`
//! and `ValidatingAdmissionWebhook` do: mutating webhooks one after another (by configuration
//! name, then as listed), each seeing the object as the previous one left it, with one
//! reinvocation round for `reinvocationPolicy: IfNeeded`; validating webhooks in parallel
//! after the kind's own validation. Configurations (and the served versions of custom
//! resources, for `matchPolicy: Equivalent`) come from watch-fed caches.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use apimachinery::FieldError;
use registry::{ApiError, DefaultStrategy, Registry};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::cache::Watched;
use super::client::Clients;
use super::config::{self, Flavor, GROUP, Hook};
use super::matching::{Attributes, labels_of, object_selected};
use super::review::{self, at_version};
use crate::admission::{Operation, Plugin, Request};
use crate::native;
use crate::schema::{Components, Schema};

/// The resources whose writes never go to webhooks, lest a broken webhook lock itself in.
const EXEMPT: &[&str] = &[
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
];

/// Metadata a webhook may not change (the registry owns it); restored after every patch.
const SYSTEM_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The served versions of each custom resource, by (group, plural), in the CRD's order.
type Versions = BTreeMap<(String, String), Vec<String>>;

/// The webhook admission plug-in.
pub(crate) struct Webhooks {
    registry: Registry,
    mutating: Watched<Vec<Hook>>,
    validating: Watched<Vec<Hook>>,
    versions: Watched<Versions>,
    clients: Arc<Clients>,
    native: OnceLock<Arc<Components>>,
    /// Dropped with the plug-in, which ends the caches' watches.
    _stop: watch::Sender<()>,
}

fn served_versions(crds: &BTreeMap<String, Value>) -> Versions {
    crds.values()
        .map(|crd| {
            let spec = &crd["spec"];
            let key = (
                spec["group"].as_str().unwrap_or("").to_string(),
                spec["names"]["plural"].as_str().unwrap_or("").to_string(),
            );
            let versions = spec["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["served"] == json!(true))
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect();
            (key, versions)
        })
        .collect()
}

/// Where a webhook is called from, for a request it matched.
struct Invocation {
    /// The version the webhook sees the objects at.
    version: String,
}

/// The request's attributes as the rules see them.
fn attributes(request: &Request, version: &str) -> Attributes {
    Attributes {
        operation: match request.operation {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
        .into(),
        group: request.group.clone(),
        version: version.into(),
        resource: request.resource.clone(),
        subresource: request.subresource.clone(),
        namespace: request.namespace.clone(),
    }
}

/// The error of a webhook that could not be called, or `Ok` when its failure policy ignores it.
fn failed(hook: &Hook, reason: impl std::fmt::Display) -> Result<(), ApiError> {
    if hook.fail_open {
        tracing::warn!(webhook = %hook.name, configuration = %hook.configuration, error = %reason, "failed calling webhook, failing open");
        return Ok(());
    }
    Err(ApiError::Internal(format!(
        "failed calling webhook {:?}: {reason}",
        hook.name
    )))
}

/// The refusal of a dry run by a webhook that may have side effects.
fn dry_run_refusal(hook: &Hook) -> ApiError {
    ApiError::BadRequest(format!(
        "admission webhook {:?} does not support dry run",
        hook.name
    ))
}

impl Webhooks {
    /// The plug-in over `registry`, calling through `clients`; its caches start watching on
    /// the current Tokio runtime.
    pub(crate) fn new(registry: &Registry, clients: Arc<Clients>) -> Webhooks {
        let (stop, stopped) = watch::channel(());
        let watch = |flavor: Flavor| {
            Watched::start(
                registry.clone(),
                config::resource(flavor),
                config::hooks,
                stopped.clone(),
            )
        };
        let crds = native::plain(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            Arc::new(DefaultStrategy),
        );
        Webhooks {
            registry: registry.clone(),
            mutating: watch(Flavor::Mutating),
            validating: watch(Flavor::Validating),
            versions: Watched::start(registry.clone(), crds, served_versions, stopped),
            clients,
            native: OnceLock::new(),
            _stop: stop,
        }
    }

    async fn hooks(&self, flavor: Flavor, request: &Request) -> Result<Arc<Vec<Hook>>, ApiError> {
        let cache = match flavor {
            Flavor::Mutating => &self.mutating,
            Flavor::Validating => &self.validating,
        };
        cache.current().await.ok_or_else(|| {
            let resource = if request.group.is_empty() {
                request.resource.clone()
            } else {
                format!("{}.{}", request.resource, request.group)
            };
            ApiError::Forbidden(format!(
                "{resource} {:?} is forbidden: not yet ready to handle request",
                request.name
            ))
        })
    }

    /// The versions a request's resource is served at (the request's own first).
    async fn versions(&self, request: &Request) -> Vec<String> {
        let mut versions = vec![request.version.clone()];
        if let Some(served) = self.versions.current().await
            && let Some(more) = served.get(&(request.group.clone(), request.resource.clone()))
        {
            versions.extend(more.iter().filter(|v| **v != request.version).cloned());
        }
        versions
    }

    /// The labels a `namespaceSelector` looks at, or `None` for a cluster-scoped object other
    /// than a Namespace (which every namespace selector selects).
    async fn namespace_labels(
        &self,
        request: &Request,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        if request.group.is_empty() && request.resource == "namespaces" {
            // A Namespace's own labels: as written, or as stored for its subresources.
            let source = if request.subresource.is_empty() && !object.is_null() {
                Some(object)
            } else {
                old.or(Some(object))
            };
            let mut labels = labels_of(source);
            let name = source.map_or("", registry::object::name);
            labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
            return Ok(Some(labels));
        }
        if request.namespace.is_empty() {
            return Ok(None);
        }
        let namespace = self
            .registry
            .get(&native::namespace_resource(), "", &request.namespace)
            .await?;
        Ok(Some(labels_of(Some(&namespace))))
    }

    /// Whether `hook` is called for the request, and at which version: its rules (exactly, or
    /// at an equivalent version), then its selectors.
    async fn invocation(
        &self,
        hook: &Hook,
        request: &Request,
        object: &Value,
        old: Option<&Value>,
        versions: &[String],
        namespace_labels: &mut Option<Option<BTreeMap<String, String>>>,
    ) -> Result<Option<Invocation>, ApiError> {
        let exact = attributes(request, &request.version);
        let mut version = hook
            .rules
            .iter()
            .any(|r| r.matches(&exact))
            .then(|| request.version.clone());
        if version.is_none() && hook.equivalent {
            version = hook.rules.iter().find_map(|rule| {
                versions
                    .iter()
                    .filter(|v| **v != request.version)
                    .find(|v| rule.matches(&attributes(request, v)))
                    .cloned()
            });
        }
        let Some(version) = version else {
            return Ok(None);
        };
        let broken = |what: &str, why: &String| {
            ApiError::Internal(format!(
                "the {what} of webhook {:?} cannot be used: {why}",
                hook.name
            ))
        };
        let namespace_selector = hook
            .namespace_selector
            .as_ref()
            .map_err(|e| broken("namespaceSelector", e))?;
        if !namespace_selector.is_empty() {
            if namespace_labels.is_none() {
                *namespace_labels = Some(self.namespace_labels(request, object, old).await?);
            }
            if let Some(Some(labels)) = namespace_labels
                && !namespace_selector.matches(labels)
            {
                return Ok(None);
            }
        }
        let object_selector = hook
            .object_selector
            .as_ref()
            .map_err(|e| broken("objectSelector", e))?;
        if !object_selected(object_selector, Some(object), old) {
            return Ok(None);
        }
        Ok(Some(Invocation { version }))
    }

    /// Posts a review to `hook` and reads its answer; the error is why the call failed.
    async fn exchange(
        &self,
        hook: &Hook,
        mutating: bool,
        request: &Request,
        version: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<review::Answer, String> {
        let uid = uuid::Uuid::new_v4().to_string();
        let old = old.map(|o| at_version(o, &request.group, version));
        let body = review::review(&uid, request, version, object, old.as_ref());
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let response = self
            .clients
            .post(&hook.url, &hook.ca_bundle, body, hook.timeout)
            .await
            .map_err(|e| e.to_string())?;
        review::answer(&uid, mutating, &response)
    }

    /// The schema of a native kind, to check what a patch made of its object.
    fn native_schema(&self, request: &Request) -> Option<Schema> {
        let components = self.native.get_or_init(|| Arc::new(native::components()));
        let name = native::native_schema_name(&request.group, &request.version, &request.kind);
        components.contains_key(&name).then(|| {
            Schema::new(
                json!({"$ref": format!("#/components/schemas/{name}")}),
                components.clone(),
                false,
            )
        })
    }

    /// Checks and completes what a patch made of `before` (both at the webhook's version): still
    /// an object of the same type, its system metadata and identity unchanged, of the right
    /// shape for a native kind (unknown fields dropped, as decoding drops them).
    fn settle(
        &self,
        hook: &Hook,
        request: &Request,
        before: &Value,
        patched: &mut Value,
    ) -> Result<(), ApiError> {
        let invalid = |why: String| {
            ApiError::Internal(format!(
                "admission webhook {:?} made an invalid object: {why}",
                hook.name
            ))
        };
        if !patched.is_object() {
            return Err(invalid("it is not a JSON object".into()));
        }
        for field in ["apiVersion", "kind"] {
            if patched[field] != before[field] {
                return Err(invalid(format!(
                    "{field} changed from {} to {}",
                    before[field], patched[field]
                )));
            }
        }
        if !patched["metadata"].is_object() {
            return Err(invalid("metadata is not an object".into()));
        }
        let identity = |o: &Value| {
            (
                registry::object::name(o).to_string(),
                registry::object::namespace(o).to_string(),
            )
        };
        let (name, namespace) = identity(before);
        let (new_name, new_namespace) = identity(patched);
        if new_namespace != namespace {
            return Err(ApiError::BadRequest(format!(
                "admission webhook {:?} changed the namespace of the object: the namespace of the provided object does not match the namespace sent on the request",
                hook.name
            )));
        }
        if request.operation == Operation::Update && new_name != name {
            let kind = if request.group.is_empty() {
                request.kind.clone()
            } else {
                format!("{}.{}", request.kind, request.group)
            };
            return Err(ApiError::Invalid {
                kind,
                name,
                causes: vec![FieldError::invalid(
                    "metadata.name",
                    new_name,
                    "field is immutable",
                )],
            });
        }
        let meta = registry::object::meta_mut(patched);
        for field in SYSTEM_METADATA {
            match before["metadata"].get(*field) {
                Some(value) => meta.insert((*field).into(), value.clone()),
                None => meta.remove(*field),
            };
        }
        if let Some(schema) = self.native_schema(request) {
            schema.prune(patched);
            if let Some(error) = schema.type_errors(patched).first() {
                return Err(invalid(error.to_string()));
            }
        }
        Ok(())
    }

    /// Calls one mutating webhook; returns whether it changed the object.
    async fn call_mutating(
        &self,
        hook: &Hook,
        request: &Request,
        invocation: &Invocation,
        object: &mut Value,
        old: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<bool, ApiError> {
        if request.dry_run && !hook.dry_run_safe() {
            return Err(dry_run_refusal(hook));
        }
        let sent = at_version(object, &request.group, &invocation.version);
        let answer = match self
            .exchange(hook, true, request, &invocation.version, &sent, old)
            .await
        {
            Ok(answer) => answer,
            Err(reason) => return failed(hook, reason).map(|()| false),
        };
        warnings.extend(answer.warnings);
        if !answer.allowed {
            return Err(review::refusal(&hook.name, &answer.status));
        }
        let Some(patch) = answer.patch else {
            return Ok(false);
        };
        let operations: json_patch::Patch = match serde_json::from_slice(&patch) {
            Ok(operations) => operations,
            Err(e) => {
                return failed(
                    hook,
                    format!("received undecodable patch in webhook response: {e}"),
                )
                .map(|()| false);
            }
        };
        if operations.0.is_empty() {
            return Ok(false);
        }
        let mut patched = sent.clone();
        json_patch::patch(&mut patched, &operations).map_err(|e| {
            ApiError::Internal(format!(
                "admission webhook {:?} returned a patch that does not apply: {e}",
                hook.name
            ))
        })?;
        self.settle(hook, request, &sent, &mut patched)?;
        patched["apiVersion"] = object["apiVersion"].clone();
        let changed = patched != *object;
        *object = patched;
        Ok(changed)
    }

    /// Calls one validating webhook; returns its warnings and its verdict.
    async fn call_validating(
        &self,
        hook: &Hook,
        request: &Request,
        invocation: &Invocation,
        object: &Value,
        old: Option<&Value>,
    ) -> (Vec<String>, Result<(), ApiError>) {
        let sent = at_version(object, &request.group, &invocation.version);
        match self
            .exchange(hook, false, request, &invocation.version, &sent, old)
            .await
        {
            Err(reason) => (Vec::new(), failed(hook, reason)),
            Ok(answer) if answer.allowed => (answer.warnings, Ok(())),
            Ok(answer) => (
                answer.warnings,
                Err(review::refusal(&hook.name, &answer.status)),
            ),
        }
    }
}

fn exempt(request: &Request) -> bool {
    request.group == GROUP && EXEMPT.contains(&request.resource.as_str())
}

#[async_trait::async_trait]
impl Plugin for Webhooks {
    fn name(&self) -> &str {
        "AdmissionWebhooks"
    }

    async fn mutate(
        &self,
        request: &Request,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if exempt(request) {
            return Ok(Vec::new());
        }
        let hooks = self.hooks(Flavor::Mutating, request).await?;
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let versions = self.versions(request).await;
        let mut namespace_labels = None;
        let mut warnings = Vec::new();
        // Webhooks with `reinvocationPolicy: IfNeeded` called since the last change, and those
        // a later change calls again.
        let mut since_change = BTreeSet::new();
        let mut again = BTreeSet::new();
        for round in 0..2 {
            if round == 1 && again.is_empty() {
                break;
            }
            for (i, hook) in hooks.iter().enumerate() {
                if round == 1 && !again.contains(&i) {
                    continue;
                }
                let Some(invocation) = self
                    .invocation(hook, request, object, old, &versions, &mut namespace_labels)
                    .await?
                else {
                    continue;
                };
                let changed = self
                    .call_mutating(hook, request, &invocation, object, old, &mut warnings)
                    .await?;
                if round == 0 {
                    if changed {
                        again.append(&mut since_change);
                    }
                    if hook.reinvoke {
                        since_change.insert(i);
                    }
                }
            }
        }
        Ok(warnings)
    }

    async fn validate(
        &self,
        request: &Request,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if exempt(request) {
            return Ok(Vec::new());
        }
        let hooks = self.hooks(Flavor::Validating, request).await?;
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let versions = self.versions(request).await;
        let mut namespace_labels = None;
        let mut calls = Vec::new();
        for hook in hooks.iter() {
            let Some(invocation) = self
                .invocation(hook, request, object, old, &versions, &mut namespace_labels)
                .await?
            else {
                continue;
            };
            if request.dry_run && !hook.dry_run_safe() {
                return Err(dry_run_refusal(hook));
            }
            calls.push(async move {
                self.call_validating(hook, request, &invocation, object, old)
                    .await
            });
        }
        let mut warnings = Vec::new();
        let mut refusal = None;
        for (more, verdict) in futures::future::join_all(calls).await {
            warnings.extend(more);
            if let Err(error) = verdict {
                refusal.get_or_insert(error);
            }
        }
        match refusal {
            Some(error) => Err(error),
            None => Ok(warnings),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::User;

    fn hook(side_effects: &str) -> Hook {
        let mut configuration = json!({"webhooks": [{
            "name": "w.example.com",
            "sideEffects": side_effects,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:1/"},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
        }]});
        config::default(Flavor::Validating, &mut configuration);
        config::hooks(&BTreeMap::from([("c".to_string(), configuration)])).remove(0)
    }

    #[test]
    fn dry_runs_need_webhooks_without_side_effects() {
        assert!(hook("None").dry_run_safe());
        assert!(hook("NoneOnDryRun").dry_run_safe());
        // Only configurations stored before v1's rule could say so; they are refused as kube
        // refuses them.
        for effects in ["Some", "Unknown", ""] {
            let hook = hook(effects);
            assert!(!hook.dry_run_safe());
            let error = dry_run_refusal(&hook);
            assert_eq!(crate::status::code_and_reason(&error).0, 400);
            assert_eq!(
                error.to_string(),
                "admission webhook \"w.example.com\" does not support dry run"
            );
        }
    }

    #[test]
    fn failure_policy_decides_what_a_failed_call_does() {
        let mut closed = hook("None");
        assert_eq!(
            failed(&closed, "failed to call webhook: boom")
                .unwrap_err()
                .to_string(),
            "Internal error occurred: failed calling webhook \"w.example.com\": failed to call webhook: boom"
        );
        closed.fail_open = true;
        assert!(failed(&closed, "boom").is_ok());
    }

    #[test]
    fn webhook_configurations_are_exempt() {
        let request = |group: &str, resource: &str| Request {
            operation: Operation::Create,
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            subresource: String::new(),
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
            user: User::anonymous(),
            dry_run: false,
        };
        assert!(exempt(&request(GROUP, "validatingwebhookconfigurations")));
        assert!(exempt(&request(GROUP, "mutatingwebhookconfigurations")));
        assert!(!exempt(&request("", "configmaps")));
    }

    #[tokio::test]
    async fn mutating_webhooks_see_what_the_previous_left_and_run_again_if_needed() {
        // Two webhooks served in process: the first (IfNeeded) copies label `b` to `a`, the
        // second sets `b`. The first runs again after the second changed the object.
        use std::sync::Mutex;
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        let webhooks = Webhooks::new(&registry, Arc::default());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let server = TestServer::start(calls.clone()).await;
        let configuration = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "a"},
            "webhooks": [
                server.hook("copy.example.com", "/copy", "IfNeeded"),
                server.hook("set.example.com", "/set", "Never"),
            ],
        });
        registry
            .create(
                &config::resource(Flavor::Mutating),
                "",
                configuration,
                &Default::default(),
            )
            .await
            .unwrap();
        let request = Request {
            operation: Operation::Create,
            group: String::new(),
            version: "v1".into(),
            resource: "configmaps".into(),
            subresource: String::new(),
            kind: "ConfigMap".into(),
            namespace: String::new(),
            name: "x".into(),
            user: User::anonymous(),
            dry_run: false,
        };
        let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {}}});
        // The cache fills shortly after the write.
        for _ in 0..100 {
            if webhooks
                .hooks(Flavor::Mutating, &request)
                .await
                .unwrap()
                .len()
                == 2
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        webhooks.mutate(&request, &mut object, None).await.unwrap();
        assert_eq!(
            object["metadata"]["labels"],
            json!({"a": "set", "b": "set"})
        );
        assert_eq!(*calls.lock().unwrap(), ["/copy", "/set", "/copy"]);
    }

    /// A tiny HTTPS webhook for the tests above.
    struct TestServer {
        ca: String,
        address: std::net::SocketAddr,
        _stop: watch::Sender<bool>,
    }

    impl TestServer {
        async fn start(calls: Arc<std::sync::Mutex<Vec<String>>>) -> TestServer {
            use base64::Engine;
            let authority = pki::Authority::generate("test-ca").unwrap();
            let issued = authority
                .issue_server("webhook", &["127.0.0.1".to_string()])
                .unwrap();
            let tls = https::server_config(
                &issued.certificate_pem,
                &issued.key_pem,
                &[b"h2", b"http/1.1"],
            )
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let (stop, stopped) = watch::channel(false);
            tokio::spawn(https::serve(
                listener,
                Arc::new(tls),
                stopped,
                move |_peer| {
                    let calls = calls.clone();
                    move |request: http::Request<hyper::body::Incoming>| {
                        let calls = calls.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let path = request.uri().path().to_string();
                            calls.lock().unwrap().push(path.clone());
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let review: Value = serde_json::from_slice(&body).unwrap();
                            let labels = &review["request"]["object"]["metadata"]["labels"];
                            let patch = if path == "/copy" {
                                json!([{"op": "add", "path": "/metadata/labels/a", "value": labels["b"].as_str().unwrap_or("unset")}])
                            } else {
                                json!([{"op": "add", "path": "/metadata/labels/b", "value": "set"}])
                            };
                            let answer = json!({
                                "apiVersion": "admission.k8s.io/v1",
                                "kind": "AdmissionReview",
                                "response": {
                                    "uid": review["request"]["uid"],
                                    "allowed": true,
                                    "patchType": "JSONPatch",
                                    "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string()),
                                },
                            });
                            http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
                                answer.to_string(),
                            )))
                        }
                    }
                },
            ));
            TestServer {
                ca: authority.certificate_pem.clone(),
                address,
                _stop: stop,
            }
        }

        fn hook(&self, name: &str, path: &str, reinvocation: &str) -> Value {
            use base64::Engine;
            json!({
                "name": name,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": reinvocation,
                "clientConfig": {
                    "url": format!("https://{}{path}", self.address),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca),
                },
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            })
        }
    }
}
