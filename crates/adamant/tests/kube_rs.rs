//! kube-rs against `adamant serve`: a `watcher` and a `reflector` (list-then-watch, and the
//! streaming list of `sendInitialEvents`) stay consistent with the server across creates,
//! updates, deletes, compaction (410 and a re-list) and a server restart.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

async fn client(server: &Server) -> Client {
    common::kube_client(&server.kubeconfig()).await
}

fn contents(objects: impl IntoIterator<Item = Arc<ConfigMap>>) -> BTreeMap<String, String> {
    objects
        .into_iter()
        .map(|cm| {
            let value = cm
                .data
                .as_ref()
                .and_then(|d| d.get("v"))
                .cloned()
                .unwrap_or_default();
            (cm.metadata.name.clone().unwrap(), value)
        })
        .collect()
}

/// Waits until every reflector's store holds what the server lists.
async fn consistent(api: &Api<ConfigMap>, stores: &[&Store<ConfigMap>]) {
    let start = Instant::now();
    loop {
        let listed = api.list(&ListParams::default()).await.unwrap();
        let truth = contents(listed.items.into_iter().map(Arc::new));
        let views: Vec<_> = stores.iter().map(|s| contents(s.state())).collect();
        if views.iter().all(|v| *v == truth) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "reflectors never caught up:\nserver {truth:?}\nviews {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("v".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

/// A reflector over `api`, counting the (re-)lists its watcher starts.
fn spawn_reflector(
    api: Api<ConfigMap>,
    config: watcher::Config,
) -> (Store<ConfigMap>, Arc<AtomicUsize>) {
    let (reader, writer) = reflector::store();
    let lists = Arc::new(AtomicUsize::new(0));
    let counted = lists.clone();
    let stream = watcher(api, config).default_backoff().map(move |event| {
        if let Ok(watcher::Event::Init) = &event {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        event
    });
    let stream = reflector::reflector(writer, stream);
    tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while stream.next().await.is_some() {}
    });
    (reader, lists)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_and_reflectors_stay_consistent_across_compaction_and_restarts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Keep almost no history, so that a watch resuming from an old version gets 410.
    let fast_compaction = [
        "--history-revisions",
        "20",
        "--compact-interval-seconds",
        "1",
    ];
    let mut server =
        tokio::task::block_in_place(|| Server::start_in(&data, "127.0.0.1:0", &fast_compaction));
    let client = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let others: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");

    // Watches end every second, and resume from the last version they saw: without bookmarks,
    // that of the last change; with them, the store's revision as the watch ended.
    let (listed, relists) = spawn_reflector(
        api.clone(),
        watcher::Config::default().timeout(1).disable_bookmarks(),
    );
    let (bookmarked, bookmarked_relists) =
        spawn_reflector(api.clone(), watcher::Config::default().timeout(1));
    let (streamed, _) = spawn_reflector(api.clone(), watcher::Config::default().streaming_lists());
    listed.wait_until_ready().await.unwrap();
    bookmarked.wait_until_ready().await.unwrap();
    streamed.wait_until_ready().await.unwrap();

    for i in 0..20 {
        api.create(&PostParams::default(), &config_map(&format!("cm{i}"), "0"))
            .await
            .unwrap();
    }
    for i in 0..20 {
        let patch = serde_json::json!({"data": {"v": "1"}});
        api.patch(
            &format!("cm{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    }
    for i in 0..10 {
        api.delete(&format!("cm{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    consistent(&api, &[&listed, &streamed]).await;

    // Writes elsewhere move the revision far beyond what the watchers have seen; compaction
    // drops it; the next resume without a bookmark gets 410 and the watcher lists again. The
    // one with bookmarks resumes from the store's recent revision: it lists no more.
    let before = relists.load(Ordering::SeqCst);
    let bookmarked_before = bookmarked_relists.load(Ordering::SeqCst);
    for i in 0..60 {
        others
            .create(
                &PostParams::default(),
                &config_map(&format!("noise{i}"), ""),
            )
            .await
            .unwrap();
    }
    let start = Instant::now();
    while relists.load(Ordering::SeqCst) == before {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the watcher never re-listed after compaction"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.create(&PostParams::default(), &config_map("after-compaction", "x"))
        .await
        .unwrap();
    consistent(&api, &[&listed, &bookmarked, &streamed]).await;
    assert_eq!(
        bookmarked_relists.load(Ordering::SeqCst),
        bookmarked_before,
        "a watcher given bookmarks of the store's revision listed again"
    );

    // A restart (after SIGKILL) on the same data and port: the watchers reconnect.
    let address = server.address.clone();
    let server = tokio::task::block_in_place(|| {
        server.kill();
        Server::start_in(&data, &address, &fast_compaction)
    });
    api.create(&PostParams::default(), &config_map("after-restart", "y"))
        .await
        .unwrap();
    let patch = serde_json::json!({"data": {"v": "2"}});
    api.patch("cm15", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    api.delete("cm16", &DeleteParams::default()).await.unwrap();
    consistent(&api, &[&listed, &bookmarked, &streamed]).await;
    assert_eq!(
        contents(listed.state()).get("cm15").map(String::as_str),
        Some("2")
    );
    drop(server);
}

/// kube-rs's server-side apply (`Patch::Apply`) of an EVE kind: created, shared with a second
/// manager, a conflict kube-rs reports as 409, forced, and a no-op apply that writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_server_side_apply_of_an_eve_kind() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let server = Server::start();
    server.ok(&["create", "namespace", "fleet"]);
    let client = client(&server).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("eve.lfedge.org", "v1beta1", "NetworkConfig"),
        "networkconfigs",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "fleet", &resource);
    let config = |ip: &str, labels: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "NetworkConfig",
            "metadata": {"name": "lan", "labels": labels},
            "spec": {"ip": ip},
        })
    };
    let gitops = PatchParams::apply("gitops");
    let created = api
        .patch(
            "lan",
            &gitops,
            &Patch::Apply(config("dhcp", serde_json::json!({"site": "lab"}))),
        )
        .await
        .unwrap();
    let managers = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managers[0].manager.as_deref(), Some("gitops"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));
    // A second manager adding a label: shared object, no conflict.
    let labeller = PatchParams::apply("labeller");
    api.patch(
        "lan",
        &labeller,
        &Patch::Apply(serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1", "kind": "NetworkConfig",
            "metadata": {"name": "lan", "labels": {"team": "ops"}},
        })),
    )
    .await
    .unwrap();
    // The labeller changing spec.ip conflicts with gitops.
    let error = api
        .patch(
            "lan",
            &labeller,
            &Patch::Apply(serde_json::json!({
                "apiVersion": "eve.lfedge.org/v1beta1", "kind": "NetworkConfig",
                "metadata": {"name": "lan", "labels": {"team": "ops"}},
                "spec": {"ip": "static"},
            })),
        )
        .await
        .unwrap_err();
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert!(status.message.contains(".spec.ip"), "{}", status.message);
            assert!(status.message.contains("\"gitops\""), "{}", status.message);
        }
        other => panic!("expected a 409, got {other}"),
    }
    // Re-applying gitops' configuration writes nothing.
    let before = api.get("lan").await.unwrap().metadata.resource_version;
    let again = api
        .patch(
            "lan",
            &gitops,
            &Patch::Apply(config("dhcp", serde_json::json!({"site": "lab"}))),
        )
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, before);
    let labels = again.metadata.labels.unwrap();
    assert_eq!(labels["site"], "lab");
    assert_eq!(labels["team"], "ops");
}
