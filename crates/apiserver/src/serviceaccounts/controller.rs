//! What kube-controller-manager keeps in every namespace for ServiceAccounts: the `default`
//! ServiceAccount, and the `kube-root-ca.crt` ConfigMap holding the certificate that verifies
//! this API server (`ca.crt`, the root). Made when a namespace appears, set right again when
//! the ConfigMap is deleted or changed (`crate::controllers::spawn_service_accounts` feeds it).

use std::sync::Arc;

use registry::{ApiError, WriteOptions};
use serde_json::{Value, json};

use crate::ApiServer;
use crate::native;
use crate::workqueue::Outcome;

/// The ConfigMap's name.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

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

impl ApiServer {
    /// Reconciles the namespace `name` as it is now: an active one gets its `default`
    /// ServiceAccount and a right `kube-root-ca.crt`. The root certificate is read from the
    /// vault once into `root` (again after a failure).
    pub(crate) async fn reconcile_service_accounts_named(
        self: Arc<Self>,
        name: String,
        root: Arc<tokio::sync::OnceCell<String>>,
    ) -> Outcome {
        let result = async {
            match self
                .registry
                .get(&native::namespace_resource(), "", &name)
                .await
            {
                Ok(namespace)
                    if registry::object::meta_str(&namespace, "deletionTimestamp").is_empty() => {}
                Ok(_) | Err(ApiError::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
            let root_pem = root
                .get_or_try_init(|| async {
                    crate::pki::load_or_create(self.vault().as_ref())
                        .await
                        .map(|authorities| authorities.root.certificate_pem)
                        .map_err(|e| format!("the root certificate cannot be read: {e}"))
                })
                .await?;
            ensure(&self, &name, root_pem)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(()) => Outcome::Forget,
            Err(error) => {
                tracing::warn!(namespace = %name, %error, "making the default ServiceAccount or kube-root-ca.crt failed; retrying");
                Outcome::Retry
            }
        }
    }
}
