//! The API server in process, driven by kube-rs: the admission chain (its changes, refusals and
//! warnings reach the client), CRDs with several versions, deletecollection, finalizers, pinned
//! pages and 410 on expired continue tokens, aggregated discovery, tables, watch-list rules.

use std::sync::Arc;

use apiserver::admission::{Operation, Plugin, Request};
use apiserver::{ApiServer, Config};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use registry::ApiError;
use serde_json::{Value, json};
use storage::{MemoryStore, Store};

/// Labels every new ConfigMap, refuses ConfigMaps named `forbidden`, warns about `legacy`.
struct Example;

#[async_trait::async_trait]
impl Plugin for Example {
    fn name(&self) -> &str {
        "example"
    }

    async fn mutate(
        &self,
        request: &Request,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if request.kind == "ConfigMap" && request.operation == Operation::Create {
            object["metadata"]["labels"]["admitted-by"] = "example".into();
        }
        Ok(Vec::new())
    }

    async fn validate(
        &self,
        request: &Request,
        object: &Value,
        _old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        if request.kind == "ConfigMap" && name == "forbidden" {
            return Err(ApiError::Forbidden(format!(
                "configmaps \"{name}\" is forbidden: the example plug-in refuses it"
            )));
        }
        if name == "legacy" {
            return Ok(vec![format!("{} {name} uses a legacy name", request.kind)]);
        }
        Ok(Vec::new())
    }
}

struct Running {
    client: Client,
    store: Arc<MemoryStore>,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start() -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let server = ApiServer::new(store.clone() as Arc<dyn Store>, vec![Arc::new(Example)])
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        advertise_address: None,
        extra_hosts: Vec::new(),
    };
    let tls = server
        .prepare_tls(&config, listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    server.spawn_controllers(stopped.clone());
    tokio::spawn(server.serve(listener, tls, https::Limits::default(), stopped));
    let kubeconfig = Kubeconfig::read_from(dir.path().join("kubeconfig")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Running {
        client: Client::try_from(config).unwrap(),
        store,
        _dir: dir,
        _stop: stop,
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// A raw request: status, headers and JSON body.
async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Value,
) -> (u16, http::HeaderMap, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("accept", "application/json")
        .body(body)
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_plugins_change_refuse_and_warn() {
    let running = start().await;
    let api: Api<ConfigMap> = Api::namespaced(running.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &cm("plain"))
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["admitted-by"], "example");
    let refused = api
        .create(&PostParams::default(), &cm("forbidden"))
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the example plug-in refuses it"),
        "{refused}"
    );
    let (status, headers, _) = raw(
        &running.client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "legacy"}}),
    )
    .await;
    assert_eq!(status, 201);
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(warnings, [r#"299 - "ConfigMap legacy uses a legacy name""#]);
    // Nothing was stored for the refused object; updates pass the chain too, warnings included.
    assert!(api.get_opt("forbidden").await.unwrap().is_none());
    let (status, headers, updated) = raw(
        &running.client,
        "PUT",
        "/api/v1/namespaces/default/configmaps/legacy",
        "application/json",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "legacy"}, "data": {"changed": "yes"}}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["changed"], "yes");
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(warnings, [r#"299 - "ConfigMap legacy uses a legacy name""#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_versions_collections_finalizers_pages_and_tables() {
    let running = start().await;
    let client = running.client.clone();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}},
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}
            ]}
    });
    let (status, _, _) = raw(
        &client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        crd,
    )
    .await;
    assert_eq!(status, 201);
    let (_, _, crd) = raw(
        &client,
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.example.com",
        "",
        Value::Null,
    )
    .await;
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    assert_eq!(
        crd["status"]["acceptedNames"]["singular"], "gizmo",
        "defaulted names"
    );

    // Written at one version, read at both; stored at the storage version.
    let beta = ApiResource {
        group: "example.com".into(),
        version: "v1beta1".into(),
        api_version: "example.com/v1beta1".into(),
        kind: "Gizmo".into(),
        plural: "gizmos".into(),
    };
    let ga = ApiResource {
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        ..beta.clone()
    };
    let old: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &beta);
    let new: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ga);
    let object: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1beta1", "kind": "Gizmo", "metadata": {"name": "g1", "finalizers": ["example.com/hold"]}, "spec": {"anything": {"goes": 1}}})).unwrap();
    old.create(&PostParams::default(), &object).await.unwrap();
    let read = new.get("g1").await.unwrap();
    assert_eq!(read.types.unwrap().api_version, "example.com/v1");
    assert_eq!(read.data["spec"]["anything"]["goes"], 1);
    let stored = running
        .store
        .get(b"/registry/example.com/gizmos/default/g1", None)
        .await
        .unwrap()
        .kv
        .unwrap();
    assert!(String::from_utf8_lossy(&stored.value).contains(r#""apiVersion":"example.com/v1""#));

    // Finalizers hold a deleted object until they are gone.
    new.delete("g1", &DeleteParams::default()).await.unwrap();
    let held = new.get("g1").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    new.patch(
        "g1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(new.get_opt("g1").await.unwrap().is_none());

    // deletecollection with a label selector.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        let mut c = cm(&format!("c{i}"));
        c.metadata.labels = Some(
            [(
                "parity".to_string(),
                (if i % 2 == 0 { "even" } else { "odd" }).to_string(),
            )]
            .into(),
        );
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("parity=even"),
    )
    .await
    .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .filter(|name| name != "kube-root-ca.crt")
        .collect();
    assert_eq!(left, ["c1", "c3"]);

    // Pages are pinned to the first page's revision; a compacted one answers 410.
    let first = api.list(&ListParams::default().limit(1)).await.unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    api.create(&PostParams::default(), &cm("c9")).await.unwrap();
    let second = api
        .list(&ListParams::default().limit(5).continue_token(&token))
        .await
        .unwrap();
    let names: Vec<String> = second
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .filter(|name| name != "kube-root-ca.crt")
        .collect();
    assert_eq!(names, ["c3"], "the page does not see the later create");
    let current = running.store.current_revision().await.unwrap();
    running.store.compact(current).await.unwrap();
    let expired = api
        .list(&ListParams::default().limit(5).continue_token(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(&expired, kube::Error::Api(s) if s.code == 410),
        "{expired}"
    );

    // Tables.
    let request = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: Value = client.request(request).await.unwrap();
    assert_eq!(table["kind"], "Table");
    let headers: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(headers, ["Name", "Data", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "c1");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    // A watch-list without its companion parameters is refused with 422, as client-go expects.
    let (status, _, body) = raw(
        &client,
        "GET",
        "/api/v1/configmaps?watch=1&sendInitialEvents=true",
        "",
        Value::Null,
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // Aggregated discovery.
    let discovery = kube::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (found, _) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "example.com",
            "v1",
            "Gizmo",
        ))
        .unwrap();
    assert_eq!(found.plural, "gizmos");
}

/// A GET of `path` with `accept`: status, `Content-Type` and body.
async fn get_bytes(client: &Client, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let request = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("accept", accept)
        .body(Vec::new())
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, content_type, bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_is_served_as_protobuf_when_asked_for() {
    use prost_reflect::{DescriptorPool, DynamicMessage};
    let running = start().await;
    // What client-go's OpenAPISchema() asks for, and the Content-Type kube-apiserver answers
    // (Go's mime parser refuses the `@` of the requested type).
    let (status, content_type, body) = get_bytes(
        &running.client,
        "/openapi/v2",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        content_type,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    // The body is the crate's `openapi.v2.Document` (its compiled descriptors), and the same
    // document as the JSON one.
    let pool = DescriptorPool::decode(
        &include_bytes!(concat!(env!("OUT_DIR"), "/openapi_v2_descriptors.bin"))[..],
    )
    .unwrap();
    let descriptor = pool.get_message_by_name("openapi.v2.Document").unwrap();
    let document = DynamicMessage::decode(descriptor, &body[..]).unwrap();
    let field = |message: &DynamicMessage, name: &str| {
        message.get_field_by_name(name).unwrap().into_owned()
    };
    assert_eq!(field(&document, "swagger").as_str(), Some("2.0"));
    let paths = field(&document, "paths");
    let paths: Vec<String> = field(paths.as_message().unwrap(), "path")
        .as_list()
        .unwrap()
        .iter()
        .map(|p| {
            field(p.as_message().unwrap(), "name")
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p == "/api/v1/namespaces/{namespace}/configmaps/{name}"),
        "{paths:?}"
    );

    // JSON is still JSON, and the protobuf is its encoding.
    for accept in ["application/json", "application/json, */*", ""] {
        let (status, content_type, json_body) =
            get_bytes(&running.client, "/openapi/v2", accept).await;
        assert_eq!(status, 200, "{accept:?}");
        assert_eq!(content_type, "application/json", "{accept:?}");
        let swagger: Value = serde_json::from_slice(&json_body).unwrap();
        assert_eq!(swagger["swagger"], "2.0");
        // Every reference resolves (kubectl's client-side validation refuses the whole
        // document otherwise: "unknown model in reference").
        let text = swagger.to_string();
        let missing: Vec<&str> = text
            .split("\"#/definitions/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|name| swagger["definitions"].get(*name).is_none())
            .collect();
        assert!(missing.is_empty(), "unresolved references: {missing:?}");
        assert_eq!(apiserver::openapi_proto::encode(&swagger).unwrap(), body);
    }
    // Neither: 406.
    let (status, _, _) = get_bytes(&running.client, "/openapi/v2", "text/html").await;
    assert_eq!(status, 406);
}

/// A deleted CRD whose last object a finalizer holds goes once that finalizer is removed,
/// though nothing about the CRD itself changes then: the CRD controller looks at a CRD it has
/// not finished with again, rather than waiting for the CRD's next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_crd_goes_once_its_held_objects_are_released() {
    let running = start().await;
    let client = running.client.clone();
    let path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "holds.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "holds", "kind": "Hold"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let (status, _, _) = raw(&client, "POST", path, "application/json", crd).await;
    assert_eq!(status, 201);
    let resource = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Hold".into(),
        plural: "holds".into(),
    };
    let holds: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let held: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Hold", "metadata": {"name": "h1", "finalizers": ["example.com/hold"]}})).unwrap();
    holds.create(&PostParams::default(), &held).await.unwrap();

    let crd_path = format!("{path}/holds.example.com");
    let (status, _, _) = raw(&client, "DELETE", &crd_path, "", Value::Null).await;
    assert_eq!(status, 200);
    // The object is being deleted, held by its finalizer; the CRD waits for it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let object = holds.get("h1").await.unwrap();
        if object.metadata.deletion_timestamp.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the object was never deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, _, _) = raw(&client, "GET", &crd_path, "", Value::Null).await;
    assert_eq!(status, 200, "the CRD stays while its object is held");
    // Its objects are still served, as kube-apiserver serves them: read and changed, not made.
    let another: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Hold", "metadata": {"name": "h2"}}),
    )
    .unwrap();
    match holds.create(&PostParams::default(), &another).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 405, "{e:?}");
            assert!(e.message.contains("terminating"), "{e:?}");
        }
        other => panic!("a create while the CRD is terminating: {other:?}"),
    }

    holds
        .patch(
            "h1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _, _) = raw(&client, "GET", &crd_path, "", Value::Null).await;
        if status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CRD never went after its last object was released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A watch of a resource that saw no change ends on a bookmark of the store's latest revision
/// (asked of the store, so every change before it was sent): the client watches again from a
/// recent version, not from one a busy store has compacted since, which would cost it a list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_watch_ends_on_a_bookmark_of_the_latest_revision() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Secret;
    use kube::ResourceExt;
    use kube::api::{WatchEvent, WatchParams};
    let running = start().await;
    let secrets: Api<Secret> = Api::namespaced(running.client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(running.client.clone(), "default");
    let quiet = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut latest = String::new();
    for i in 0..5 {
        let map: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("busy-{i}")},
        }))
        .unwrap();
        latest = maps
            .create(&PostParams::default(), &map)
            .await
            .unwrap()
            .resource_version()
            .unwrap();
    }
    let params = WatchParams::default().timeout(1);
    assert!(params.bookmarks);
    let mut events = secrets.watch(&params, &quiet).await.unwrap().boxed();
    let mut bookmarked = Vec::new();
    while let Some(event) = events.next().await {
        match event.unwrap() {
            WatchEvent::Bookmark(b) => {
                bookmarked.push(b.metadata.resource_version.parse::<i64>().unwrap())
            }
            other => panic!("no Secret changed, yet: {other:?}"),
        }
    }
    let latest: i64 = latest.parse().unwrap();
    assert!(
        bookmarked.last().is_some_and(|rv| *rv >= latest),
        "the watch from {quiet} ended on bookmarks {bookmarked:?}, not at {latest} or later"
    );
}

/// Metadata clients (kube-rs's `list_metadata`, `get_metadata`, `watch_metadata` and
/// `metadata_watcher`; client-go's metadata informers) get objects as PartialObjectMetadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_served_as_partial_object_metadata_when_asked() {
    use futures::StreamExt;
    use kube::ResourceExt;
    use kube::api::{WatchEvent, WatchParams};
    let running = start().await;
    let maps: Api<ConfigMap> = Api::namespaced(running.client.clone(), "default");
    let map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "m", "labels": {"tier": "web"}},
        "data": {"secret-ish": "not in metadata"},
    }))
    .unwrap();
    let created = maps.create(&PostParams::default(), &map).await.unwrap();

    let one = maps.get_metadata("m").await.unwrap();
    assert_eq!(one.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(one.types.as_ref().unwrap().api_version, "meta.k8s.io/v1");
    assert_eq!(one.labels()["tier"], "web");
    assert_eq!(one.uid(), created.uid());

    // Unpaged (streamed) and paged.
    let web = ListParams::default().labels("tier=web");
    for params in [web.clone(), web.limit(1)] {
        let list = maps.list_metadata(&params).await.unwrap();
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.items[0].name_any(), "m");
        assert!(list.metadata.resource_version.is_some());
    }
    let (status, content_type, body) = get_bytes(
        &running.client,
        "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dweb",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    );
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["kind"], "PartialObjectMetadata");
    assert_eq!(list["items"][0].get("data"), None, "{list}");

    let version = created.resource_version().unwrap();
    let mut events = maps
        .watch_metadata(&WatchParams::default().timeout(1), &version)
        .await
        .unwrap()
        .boxed();
    maps.patch_metadata(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "db"}}})),
    )
    .await
    .unwrap();
    loop {
        match events.next().await.unwrap().unwrap() {
            WatchEvent::Modified(m) => {
                assert_eq!(m.types.as_ref().unwrap().kind, "PartialObjectMetadata");
                assert_eq!(m.labels()["tier"], "db");
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
}
