//! What kube-controller-manager keeps in every namespace for ServiceAccounts: the `default`
//! ServiceAccount, and the `kube-root-ca.crt` ConfigMap holding the certificate that verifies
//! this API server (`ca.crt`, the root). Made when a namespace appears, set right again when
//! the ConfigMap is deleted or changed, and every half minute.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use registry::{ApiError, ListOptions, Start, WatchEvent, WriteOptions};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::ApiServer;
use crate::native;

/// The ConfigMap's name.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

const RESYNC: Duration = Duration::from_secs(30);

fn config_map(root_pem: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROOT_CA_CONFIG_MAP,
            "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."},
        },
        "data": {"ca.crt": root_pem},
    })
}

/// Makes `namespace`'s `default` ServiceAccount and `kube-root-ca.crt` if missing, and sets the
/// ConfigMap's `ca.crt` right if it differs.
async fn ensure(server: &ApiServer, namespace: &str, root_pem: &str) -> Result<(), ApiError> {
    let options = WriteOptions::default();
    let account = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default"},
    });
    match server
        .registry
        .create(
            &native::service_account_resource(),
            namespace,
            account,
            &options,
        )
        .await
    {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    let config_maps = native::config_map_resource();
    match server
        .registry
        .get(&config_maps, namespace, ROOT_CA_CONFIG_MAP)
        .await
    {
        Ok(current) if current["data"]["ca.crt"] == root_pem => Ok(()),
        Ok(_) => server
            .registry
            .update_with(
                &config_maps,
                namespace,
                ROOT_CA_CONFIG_MAP,
                &options,
                |current| {
                    let mut next = current.clone();
                    next["data"] = json!({"ca.crt": root_pem});
                    Ok(next)
                },
            )
            .await
            .map(drop),
        Err(ApiError::NotFound { .. }) => match server
            .registry
            .create(&config_maps, namespace, config_map(root_pem), &options)
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn active(namespace: &Value) -> Option<String> {
    registry::object::meta_str(namespace, "deletionTimestamp")
        .is_empty()
        .then(|| registry::object::name(namespace).to_string())
}

async fn ensure_logged(server: &ApiServer, namespace: &str, root_pem: &str) {
    if let Err(e) = ensure(server, namespace, root_pem).await {
        tracing::warn!(namespace, error = %e, "making the default ServiceAccount or kube-root-ca.crt failed");
    }
}

/// Keeps every namespace's `default` ServiceAccount and `kube-root-ca.crt` until `shutdown`.
pub(crate) async fn run(server: Arc<ApiServer>, mut shutdown: watch::Receiver<bool>) {
    let root_pem = loop {
        match crate::pki::load_or_create(server.vault().as_ref()).await {
            Ok(authorities) => break authorities.root.certificate_pem,
            Err(e) => {
                tracing::warn!(error = %e, "the root certificate cannot be read; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    let namespaces = native::namespace_resource();
    loop {
        // Every namespace first, then each one that appears; the same again every RESYNC.
        match server
            .registry
            .list(&namespaces, None, &ListOptions::default())
            .await
        {
            Ok(list) => {
                for namespace in list.items.iter().filter_map(active) {
                    ensure_logged(&server, &namespace, &root_pem).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing namespaces failed"),
        }
        let watches = (
            server
                .registry
                .watch(&namespaces, None, &ListOptions::default(), Start::Now)
                .await,
            server
                .registry
                .watch(
                    &native::config_map_resource(),
                    None,
                    &ListOptions::default(),
                    Start::Now,
                )
                .await,
        );
        let (Ok(events), Ok(config_maps)) = watches else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = shutdown.changed() => return,
            }
        };
        let mut events = Box::pin(events);
        let mut config_maps = Box::pin(config_maps);
        let resync = tokio::time::sleep(RESYNC);
        tokio::pin!(resync);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(WatchEvent::Added(namespace)) => {
                        if let Some(name) = active(&namespace) {
                            ensure_logged(&server, &name, &root_pem).await;
                        }
                    }
                    Some(WatchEvent::Error(_)) | None => break,
                    Some(_) => {}
                },
                event = config_maps.next() => match event {
                    Some(WatchEvent::Modified(config_map) | WatchEvent::Deleted(config_map))
                        if registry::object::name(&config_map) == ROOT_CA_CONFIG_MAP =>
                    {
                        let namespace = registry::object::meta_str(&config_map, "namespace");
                        if let Ok(ns) = server.registry.get(&namespaces, "", namespace).await
                            && active(&ns).is_some()
                        {
                            ensure_logged(&server, namespace, &root_pem).await;
                        }
                    }
                    Some(WatchEvent::Error(_)) | None => break,
                    Some(_) => {}
                },
                _ = &mut resync => break,
                _ = shutdown.changed() => return,
            }
        }
    }
}
