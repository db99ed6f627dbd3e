//! The credentials Secrets the objects name (a StorageClass's, a Wi-Fi NetworkConfig's), read by
//! name: the controller never lists or watches Secrets (its role in cluster mode may only get
//! them). A Secret is read when an object first names it and again every [`REFRESH`]; a change
//! recomposes the configurations.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, watch};

use crate::fleet::Fleet;

/// How often the Secrets named are read again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// A Secret's namespace and name.
pub type SecretRef = (String, String);

/// The Secrets named, as last read.
#[derive(Default)]
pub struct Secrets {
    read: RwLock<HashMap<SecretRef, Arc<Secret>>>,
    /// Woken when an object that may name a Secret changes.
    changed: Notify,
}

impl Secrets {
    /// The Secret `namespace/name`, if an object names it and it exists.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.read
            .read()
            .expect("not poisoned")
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Says that objects that may name Secrets changed: the new names are read at once.
    pub fn names_may_have_changed(&self) {
        self.changed.notify_one();
    }

    /// Reads the Secrets `fleet`'s objects name whenever they change and every [`REFRESH`],
    /// until `stop`; a Secret that changed recomposes the configurations that read it.
    pub async fn run(
        self: Arc<Self>,
        client: Client,
        fleet: Fleet,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last_full = tokio::time::Instant::now();
        loop {
            let wanted = named(&fleet);
            let full = last_full.elapsed() >= REFRESH;
            if full {
                last_full = tokio::time::Instant::now();
            }
            let mut changed = Vec::new();
            let known: Vec<SecretRef> = self
                .read
                .read()
                .expect("not poisoned")
                .keys()
                .cloned()
                .collect();
            for reference in &known {
                if !wanted.contains(reference) {
                    self.read.write().expect("not poisoned").remove(reference);
                }
            }
            for reference in wanted {
                let had = self.get(&reference.0, &reference.1);
                if had.is_some() && !full {
                    continue;
                }
                let api: Api<Secret> = Api::namespaced(client.clone(), &reference.0);
                match api.get_opt(&reference.1).await {
                    Ok(Some(secret)) => {
                        if had.as_ref().map(|s| s.resource_version())
                            != Some(secret.resource_version())
                        {
                            changed.push(reference.clone());
                            self.read
                                .write()
                                .expect("not poisoned")
                                .insert(reference, Arc::new(secret));
                        }
                    }
                    Ok(None) => {
                        let removed = self.read.write().expect("not poisoned").remove(&reference);
                        if removed.is_some() {
                            changed.push(reference);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(secret = %format!("{}/{}", reference.0, reference.1), error = %e, "cannot read a credentials Secret; kept as last read");
                    }
                }
            }
            // The configurations that read a Secret that changed are composed again.
            for (namespace, name) in &changed {
                fleet
                    .configs
                    .shared_changed(crate::compose::Shared::Secret, namespace, name);
            }
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(REFRESH) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The Secrets the objects name: StorageClasses' credentials, Wi-Fi NetworkConfigs'.
fn named(fleet: &Fleet) -> BTreeSet<SecretRef> {
    let mut names = BTreeSet::new();
    for class in fleet.classes.state() {
        if class.provisioner == "eve"
            && let Some(Ok(Some(secret))) = class
                .parameters
                .as_ref()
                .map(eve_model::data_store::credentials_secret)
        {
            names.insert((secret.namespace, secret.name));
        }
    }
    for config in fleet.network_configs.state() {
        if let (Some(namespace), Some(name)) = (
            config.namespace(),
            config
                .spec
                .wifi
                .as_ref()
                .and_then(|w| w.credentials_secret.clone()),
        ) {
            names.insert((namespace, name));
        }
    }
    names
}
