//! The garbage collector, in process: `ownerReferences` honoured for native and CRD-defined
//! kinds with background, foreground and orphan propagation (and the legacy
//! `orphanDependents`), `blockOwnerDeletion`, dangling owners (absent, or another object of the
//! name), several owners, cluster-scoped owners of namespaced objects and the invalid reverse,
//! objects left over from before a start, kinds added by a CRD after the start, and the
//! `DeleteOptions` refused as kube-apiserver refuses them.

use std::sync::Arc;
use std::time::Duration;

use apiserver::ApiServer;
use apiserver::auth::User;
use http_body_util::BodyExt;
use registry::WriteOptions;
use serde_json::{Value, json};
use storage::{MemoryStore, Store};

struct Harness {
    server: Arc<ApiServer>,
    stop: tokio::sync::watch::Receiver<bool>,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// A server on a fresh store, its controllers (the collector among them) running.
async fn harness() -> Harness {
    start(Arc::new(MemoryStore::new()), |_| async {}).await
}

/// A server on `store`; `before` runs before the controllers start.
async fn start<F, Fut>(store: Arc<MemoryStore>, before: F) -> Harness
where
    F: FnOnce(Arc<ApiServer>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = ApiServer::new(store.clone() as Arc<dyn Store>, Vec::new())
        .await
        .unwrap();
    before(server.clone()).await;
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    server.spawn_controllers(stop.clone());
    Harness {
        server,
        stop,
        _stop: stop_sender,
    }
}

fn admin() -> User {
    User {
        name: "admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..User::default()
    }
}

const CM: &str = "/api/v1/namespaces/default/configmaps";

impl Harness {
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(
                "content-type",
                if method == "PATCH" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                },
            )
            .header("accept", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
            .unwrap();
        let response = self
            .server
            .clone()
            .call(admin(), request, self.stop.clone())
            .await;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}));
        (status, value)
    }

    async fn create(&self, collection: &str, object: Value) -> Value {
        let (code, body) = self.send("POST", collection, Some(&object)).await;
        assert_eq!(code, 201, "{body}");
        body
    }

    async fn get(&self, path: &str) -> Option<Value> {
        match self.send("GET", path, None).await {
            (200, body) => Some(body),
            (404, _) => None,
            (code, body) => panic!("GET {path}: {code} {body}"),
        }
    }

    async fn delete(&self, path: &str, options: Option<Value>) -> (u16, Value) {
        self.send("DELETE", path, options.as_ref()).await
    }

    /// Polls `path` until `check` holds of what is there (`None`: nothing).
    async fn until(&self, what: &str, path: &str, check: impl Fn(Option<&Value>) -> bool) {
        for _ in 0..600 {
            if check(self.get(path).await.as_ref()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting for {what}: {:?}", self.get(path).await);
    }

    async fn until_gone(&self, path: &str) {
        self.until(&format!("{path} to go"), path, |o| o.is_none())
            .await;
    }

    /// Waits until the collection at `path` is served (a CRD's kind once it is established,
    /// as a client must wait after creating one).
    async fn until_served(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (code, body) = self.send("GET", path, None).await;
            if code == 200 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} not served within 10 s: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets the collector work for a while (for what must *not* happen).
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

fn cm(name: &str, owners: &[Value]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": owners},
        "data": {"k": "v"},
    })
}

/// An owner reference to `owner`.
fn owned_by(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": false, "blockOwnerDeletion": block,
    })
}

fn owner_uids(object: Option<&Value>) -> Vec<String> {
    object.unwrap()["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["uid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_deletion_collects_the_dependents() {
    let h = harness().await;
    let owner = h.create(CM, cm("owner", &[])).await;
    for name in ["a", "b"] {
        h.create(CM, cm(name, &[owned_by(&owner, false)])).await;
    }
    let grandchild_owner = h.get(&format!("{CM}/a")).await.unwrap();
    h.create(CM, cm("a-child", &[owned_by(&grandchild_owner, false)]))
        .await;
    // Owners that exist are never collected.
    h.settle().await;
    for name in ["a", "b", "a-child"] {
        assert!(h.get(&format!("{CM}/{name}")).await.is_some(), "{name}");
    }
    // The default (and explicit Background): the owner goes at once, then its dependents, then
    // theirs.
    let (code, _) = h.delete(&format!("{CM}/owner"), None).await;
    assert_eq!(code, 200);
    assert!(h.get(&format!("{CM}/owner")).await.is_none());
    for name in ["a", "b", "a-child"] {
        h.until_gone(&format!("{CM}/{name}")).await;
    }
    let owner = h.create(CM, cm("owner2", &[])).await;
    h.create(CM, cm("c", &[owned_by(&owner, false)])).await;
    let (code, _) = h
        .delete(
            &format!("{CM}/owner2"),
            Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})),
        )
        .await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{CM}/c")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let h = harness().await;
    let owner = h.create(CM, cm("owner", &[])).await;
    // A blocking dependent held by a finalizer, a blocking one with its own blocking
    // dependent, and a non-blocking one.
    let mut held = cm("held", &[owned_by(&owner, true)]);
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    h.create(CM, held).await;
    let middle = h.create(CM, cm("middle", &[owned_by(&owner, true)])).await;
    h.create(CM, cm("leaf", &[owned_by(&middle, true)])).await;
    h.create(CM, cm("loose", &[owned_by(&owner, false)])).await;

    let (code, body) = h
        .delete(
            &format!("{CM}/owner"),
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(body["metadata"]["deletionTimestamp"].is_string());
    // Every dependent is deleted, the chain from the leaf up.
    for name in ["loose", "leaf", "middle"] {
        h.until_gone(&format!("{CM}/{name}")).await;
    }
    h.until("the held dependent marked", &format!("{CM}/held"), |o| {
        o.is_some_and(|o| o["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    // The owner waits for its blocking dependent.
    h.settle().await;
    let waiting = h
        .get(&format!("{CM}/owner"))
        .await
        .expect("the owner waits");
    assert_eq!(
        waiting["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    // Released, the dependent goes, then the owner.
    let (code, body) = h
        .send(
            "PATCH",
            &format!("{CM}/held"),
            Some(&json!({"metadata": {"finalizers": null}})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    h.until_gone(&format!("{CM}/held")).await;
    h.until_gone(&format!("{CM}/owner")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphan_deletion_leaves_the_dependents_without_the_owner() {
    let h = harness().await;
    let owner = h.create(CM, cm("owner", &[])).await;
    let other = h.create(CM, cm("other", &[])).await;
    h.create(CM, cm("a", &[owned_by(&owner, true)])).await;
    h.create(
        CM,
        cm("b", &[owned_by(&owner, false), owned_by(&other, false)]),
    )
    .await;
    let (code, body) = h
        .delete(
            &format!("{CM}/owner"),
            Some(json!({"propagationPolicy": "Orphan"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["metadata"]["finalizers"], json!(["orphan"]));
    h.until_gone(&format!("{CM}/owner")).await;
    h.settle().await;
    let a = h.get(&format!("{CM}/a")).await;
    assert!(
        a.as_ref().unwrap()["metadata"]
            .get("ownerReferences")
            .is_none()
    );
    let b = h.get(&format!("{CM}/b")).await;
    assert_eq!(
        owner_uids(b.as_ref()),
        vec![other["metadata"]["uid"].as_str().unwrap().to_string()]
    );

    // The legacy orphanDependents (in the query), answered 202 when false and waiting.
    let owner = h.create(CM, cm("legacy", &[])).await;
    h.create(CM, cm("c", &[owned_by(&owner, false)])).await;
    let (code, _) = h
        .delete(&format!("{CM}/legacy?orphanDependents=true"), None)
        .await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{CM}/legacy")).await;
    h.settle().await;
    assert!(owner_uids(h.get(&format!("{CM}/c")).await.as_ref()).is_empty());

    let mut kept = cm("kept", &[]);
    kept["metadata"]["finalizers"] = json!(["example.com/hold"]);
    h.create(CM, kept).await;
    let (code, body) = h
        .delete(
            &format!("{CM}/kept"),
            Some(json!({"orphanDependents": false})),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["metadata"]["finalizers"], json!(["example.com/hold"]));

    // A collection deleted with Orphan.
    h.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "many"}}),
    )
    .await;
    let many = "/api/v1/namespaces/many/configmaps";
    let mut owners = Vec::new();
    for i in 0..3 {
        let mut o = cm(&format!("o{i}"), &[]);
        o["metadata"]["labels"] = json!({"role": "owner"});
        owners.push(h.create(many, o).await);
    }
    let refs: Vec<Value> = owners.iter().map(|o| owned_by(o, true)).collect();
    h.create(many, cm("shared", &refs)).await;
    let (code, body) = h
        .delete(
            &format!("{many}?labelSelector=role%3Downer"),
            Some(json!({"propagationPolicy": "Orphan"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    for i in 0..3 {
        h.until_gone(&format!("{many}/o{i}")).await;
    }
    h.until(
        "the shared dependent orphaned",
        &format!("{many}/shared"),
        |o| o.is_some_and(|o| o["metadata"].get("ownerReferences").is_none()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dangling_owners_are_collected_and_live_ones_never() {
    let h = harness().await;
    let owner = h.create(CM, cm("owner", &[])).await;
    // An owner that never existed.
    let mut missing = owned_by(&owner, false);
    missing["name"] = "nobody".into();
    missing["uid"] = "00000000-0000-0000-0000-000000000001".into();
    h.create(CM, cm("never", &[missing])).await;
    // The owner's name, another UID (the owner was replaced).
    let mut replaced = owned_by(&owner, false);
    replaced["uid"] = "00000000-0000-0000-0000-000000000002".into();
    h.create(CM, cm("replaced", &[replaced])).await;
    // A namespaced owner in another namespace: absent where the dependent is.
    h.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}),
    )
    .await;
    h.create(
        "/api/v1/namespaces/elsewhere/configmaps",
        cm("cross", &[owned_by(&owner, false)]),
    )
    .await;
    // The live owner's dependent, written in the same breath as the owner.
    let fresh = h.create(CM, cm("fresh-owner", &[])).await;
    h.create(CM, cm("fresh", &[owned_by(&fresh, true)])).await;
    for path in [
        format!("{CM}/never"),
        format!("{CM}/replaced"),
        "/api/v1/namespaces/elsewhere/configmaps/cross".to_string(),
    ] {
        h.until_gone(&path).await;
    }
    h.settle().await;
    assert!(h.get(&format!("{CM}/owner")).await.is_some());
    assert!(h.get(&format!("{CM}/fresh")).await.is_some());

    // Deleted and made again under the same name: the dependents of the old one go, the new
    // one's stay.
    let (code, _) = h.delete(&format!("{CM}/fresh-owner"), None).await;
    assert_eq!(code, 200);
    let again = h.create(CM, cm("fresh-owner", &[])).await;
    h.create(CM, cm("fresh2", &[owned_by(&again, true)])).await;
    h.until_gone(&format!("{CM}/fresh")).await;
    h.settle().await;
    assert!(h.get(&format!("{CM}/fresh2")).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_owners_keep_a_dependent_until_the_last_goes() {
    let h = harness().await;
    let a = h.create(CM, cm("a", &[])).await;
    let b = h.create(CM, cm("b", &[])).await;
    h.create(CM, cm("shared", &[owned_by(&a, false), owned_by(&b, true)]))
        .await;
    let (code, _) = h.delete(&format!("{CM}/a"), None).await;
    assert_eq!(code, 200);
    // The absent owner's reference goes; the dependent stays.
    let b_uid = b["metadata"]["uid"].as_str().unwrap().to_string();
    h.until("the absent owner dropped", &format!("{CM}/shared"), |o| {
        o.is_some_and(|o| o["metadata"]["ownerReferences"].as_array().map(Vec::len) == Some(1))
    })
    .await;
    assert_eq!(
        owner_uids(h.get(&format!("{CM}/shared")).await.as_ref()),
        vec![b_uid]
    );
    let (code, _) = h.delete(&format!("{CM}/b"), None).await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{CM}/shared")).await;

    // An owner in foreground deletion does not keep a dependent another owner holds: its
    // reference is dropped, and the owner goes.
    let c = h.create(CM, cm("c", &[])).await;
    let d = h.create(CM, cm("d", &[])).await;
    h.create(CM, cm("both", &[owned_by(&c, true), owned_by(&d, false)]))
        .await;
    let (code, _) = h
        .delete(
            &format!("{CM}/c"),
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{CM}/c")).await;
    let both = h.get(&format!("{CM}/both")).await;
    assert_eq!(
        owner_uids(both.as_ref()),
        vec![d["metadata"]["uid"].as_str().unwrap().to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_scoped_owners_of_namespaced_objects() {
    let h = harness().await;
    let classes = "/apis/storage.k8s.io/v1/storageclasses";
    let class = h
        .create(
            classes,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "eve"}, "provisioner": "eve"}),
        )
        .await;
    h.create(CM, cm("of-class", &[owned_by(&class, true)]))
        .await;
    h.create(
        "/api/v1/namespaces/kube-system/configmaps",
        cm("of-class-too", &[owned_by(&class, false)]),
    )
    .await;
    // A cluster-scoped object naming a namespaced owner: invalid, never collected.
    let owner = h.create(CM, cm("namespaced-owner", &[])).await;
    let mut invalid = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "invalid"}, "provisioner": "eve"});
    invalid["metadata"]["ownerReferences"] = json!([owned_by(&owner, false)]);
    h.create(classes, invalid).await;
    h.create(CM, cm("valid", &[owned_by(&owner, false)])).await;
    h.settle().await;
    assert!(h.get(&format!("{CM}/of-class")).await.is_some());
    let (code, _) = h.delete(&format!("{classes}/eve"), None).await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{CM}/of-class")).await;
    h.until_gone("/api/v1/namespaces/kube-system/configmaps/of-class-too")
        .await;
    let (code, _) = h.delete(&format!("{CM}/namespaced-owner"), None).await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{CM}/valid")).await;
    h.settle().await;
    assert!(
        h.get(&format!("{classes}/invalid")).await.is_some(),
        "a cluster-scoped dependent of a namespaced owner is not collected"
    );
}

const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn widget_crd(scope: &str, plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {
            "group": "example.com", "scope": scope,
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

fn widget(name: &str, owners: &[Value]) -> Value {
    json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name, "ownerReferences": owners},
        "spec": {"size": 1},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kinds_added_by_a_crd_after_the_start() {
    let h = harness().await;
    // Let the collector start on the native kinds alone.
    h.settle().await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    h.create(crds, widget_crd("Namespaced", "widgets", "Widget"))
        .await;
    h.create(crds, widget_crd("Cluster", "gadgets", "Gadget"))
        .await;
    h.until_served(WIDGETS).await;
    h.until_served("/apis/example.com/v1/gadgets").await;
    // A Widget owning a ConfigMap, a ConfigMap owning a Widget, a cluster-scoped Gadget
    // owning both kinds.
    let owner = h.create(WIDGETS, widget("w-owner", &[])).await;
    h.create(CM, cm("of-widget", &[owned_by(&owner, true)]))
        .await;
    let cm_owner = h.create(CM, cm("cm-owner", &[])).await;
    h.create(WIDGETS, widget("of-cm", &[owned_by(&cm_owner, false)]))
        .await;
    let gadget = h
        .create(
            "/apis/example.com/v1/gadgets",
            json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}),
        )
        .await;
    h.create(WIDGETS, widget("of-gadget", &[owned_by(&gadget, false)]))
        .await;
    h.create(CM, cm("of-gadget", &[owned_by(&gadget, false)]))
        .await;
    h.settle().await;
    for path in [
        format!("{CM}/of-widget"),
        format!("{WIDGETS}/of-cm"),
        format!("{WIDGETS}/of-gadget"),
    ] {
        assert!(h.get(&path).await.is_some(), "{path}");
    }
    // Foreground on a custom resource.
    let (code, body) = h
        .delete(
            &format!("{WIDGETS}/w-owner"),
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    h.until_gone(&format!("{CM}/of-widget")).await;
    h.until_gone(&format!("{WIDGETS}/w-owner")).await;
    let (code, _) = h.delete(&format!("{CM}/cm-owner"), None).await;
    assert_eq!(code, 200);
    h.until_gone(&format!("{WIDGETS}/of-cm")).await;
    // The Gadget kind deleted with its CRD: its objects go, and then their dependents.
    let (code, body) = h.delete(&format!("{crds}/gadgets.example.com"), None).await;
    assert_eq!(code, 200, "{body}");
    h.until_gone(&format!("{crds}/gadgets.example.com")).await;
    h.until_gone(&format!("{WIDGETS}/of-gadget")).await;
    h.until_gone(&format!("{CM}/of-gadget")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_left_from_before_the_start_are_collected() {
    let store = Arc::new(MemoryStore::new());
    let h = start(store, |server| async move {
        // Written straight to the registry before the collector runs: an owner, its dependent,
        // and a dependent whose owner is gone.
        let registry = server.registry();
        let catalog = server.catalog();
        let kind = catalog.find("", "v1", "configmaps").unwrap();
        let owner = registry
            .create(
                &kind.main,
                "default",
                cm("owner", &[]),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        let mut owner = owner;
        owner["apiVersion"] = "v1".into();
        owner["kind"] = "ConfigMap".into();
        registry
            .create(
                &kind.main,
                "default",
                cm("kept", &[owned_by(&owner, true)]),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        let mut gone = owned_by(&owner, true);
        gone["uid"] = "00000000-0000-0000-0000-000000000003".into();
        registry
            .create(
                &kind.main,
                "default",
                cm("orphaned", &[gone]),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        // An owner marked for orphaning before the start.
        let mut marked = cm("marked", &[]);
        marked["metadata"]["finalizers"] = json!(["orphan"]);
        let marked = registry
            .create(&kind.main, "default", marked, &WriteOptions::default())
            .await
            .unwrap();
        let mut marked_ref = owned_by(&owner, false);
        marked_ref["name"] = "marked".into();
        marked_ref["uid"] = marked["metadata"]["uid"].clone();
        registry
            .create(
                &kind.main,
                "default",
                cm("of-marked", &[marked_ref]),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        registry
            .delete(
                &kind.main,
                "default",
                "marked",
                None,
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    })
    .await;
    h.until_gone(&format!("{CM}/orphaned")).await;
    h.until_gone(&format!("{CM}/marked")).await;
    assert!(owner_uids(h.get(&format!("{CM}/of-marked")).await.as_ref()).is_empty());
    h.settle().await;
    assert!(h.get(&format!("{CM}/kept")).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_options_are_checked_as_kube_apiserver_does() {
    let h = harness().await;
    let owner = h.create(CM, cm("owner", &[])).await;
    h.create(CM, cm("child", &[owned_by(&owner, true)])).await;
    let path = format!("{CM}/owner");
    let (code, body) = h
        .delete(
            &path,
            Some(json!({"propagationPolicy": "Orphan", "orphanDependents": true})),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"
    );
    let (code, body) = h
        .delete(&path, Some(json!({"propagationPolicy": "Sideways"})))
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    let (code, body) = h
        .delete(&format!("{path}?propagationPolicy=Sideways"), None)
        .await;
    assert_eq!(code, 422, "{body}");
    // A UID precondition naming another object.
    let (code, body) = h
        .delete(
            &path,
            Some(json!({"preconditions": {"uid": "00000000-0000-0000-0000-000000000009"}})),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Precondition failed: UID in precondition"),
        "{body}"
    );
    // Dry run: nothing changes.
    let (code, body) = h
        .delete(
            &format!("{path}?dryRun=All"),
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let now = h.get(&path).await.unwrap();
    assert!(now["metadata"].get("deletionTimestamp").is_none());
    assert!(now["metadata"].get("finalizers").is_none());
    // A second DELETE changes the policy of an object already waiting: Foreground, then
    // Orphan leaves the child in place.
    let mut hold = now.clone();
    hold["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let (code, body) = h.send("PUT", &path, Some(&hold)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = h
        .delete(&path, Some(json!({"propagationPolicy": "Orphan"})))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["example.com/hold", "orphan"])
    );
    h.until("the child orphaned", &format!("{CM}/child"), |o| {
        o.is_some_and(|o| o["metadata"].get("ownerReferences").is_none())
    })
    .await;
    h.until("the orphan finalizer removed", &path, |o| {
        o.is_some_and(|o| o["metadata"]["finalizers"] == json!(["example.com/hold"]))
    })
    .await;
}
