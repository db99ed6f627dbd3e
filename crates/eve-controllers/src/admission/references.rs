//! Reference checks: whether an object a field names exists (in the informers' caches, or else
//! looked up live through the client: [`Cached`](super::cached)), and whether a StorageClass it names is an EVE data store.

use std::collections::BTreeMap;

use apimachinery::FieldError;
use eve_model::annotations;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::api::Api;

use super::Refusal;
use super::check::Check;

/// A lookup that failed: admission cannot decide.
pub(super) fn unavailable(e: kube::Error) -> Refusal {
    Refusal::Unavailable(format!("admission could not look up a reference: {e}"))
}

impl Check<'_> {
    /// Whether the `K` named `name` exists in the object's namespace; a missing one is recorded
    /// against `path`.
    pub(super) async fn exists<K>(&mut self, path: &str, name: &str) -> Result<bool, Refusal>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + 'static,
    {
        if self.admission.cached.holds::<K>(self.namespace(), name) {
            return Ok(true);
        }
        Ok(self.fetch::<K>(path, name).await?.is_some())
    }

    /// The object `name` of kind `K` in the namespace, or `None` with a missing reference at
    /// `path`.
    pub(super) async fn fetch<K>(&mut self, path: &str, name: &str) -> Result<Option<K>, Refusal>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.admission.client.clone(), self.namespace());
        let found = api.get_opt(name).await.map_err(unavailable)?;
        if found.is_none() {
            self.missing.push(FieldError::not_found(
                path,
                name,
                format!(
                    "{} {}/{name} does not exist; create it first",
                    K::kind(&()),
                    self.namespace()
                ),
            ));
        }
        Ok(found)
    }

    /// The DeviceNetworks named in the networks annotation of `annotations` (at `path`, the
    /// annotations' own path) exist.
    pub(super) async fn networks(
        &mut self,
        path: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), Refusal> {
        let networks = annotations
            .get(annotations::NETWORKS)
            .map(|v| annotations::networks(v))
            .unwrap_or_default();
        for network in networks {
            self.exists::<eve_model::DeviceNetwork>(
                &format!("{path}[{}]", annotations::NETWORKS),
                &network,
            )
            .await?;
        }
        Ok(())
    }

    /// The StorageClass `name` (at `path`), if it exists with `provisioner: eve`; one of
    /// another provisioner is an error, a missing one a missing reference.
    pub(super) async fn eve_storage_class(
        &mut self,
        path: &str,
        name: &str,
    ) -> Result<Option<StorageClass>, Refusal> {
        let api: Api<StorageClass> = Api::all(self.admission.client.clone());
        match api.get_opt(name).await.map_err(unavailable)? {
            Some(class) if class.provisioner == "eve" => Ok(Some(class)),
            Some(class) => {
                self.errors.push(FieldError::invalid(
                    path,
                    name,
                    format!(
                        "StorageClass {name} has provisioner {:?}; EVE data stores need provisioner \"eve\"",
                        class.provisioner
                    ),
                ));
                Ok(None)
            }
            None => {
                self.missing.push(FieldError::not_found(
                    path,
                    name,
                    format!(
                        "StorageClass {name} does not exist; create it (provisioner: eve) first"
                    ),
                ));
                Ok(None)
            }
        }
    }
}
