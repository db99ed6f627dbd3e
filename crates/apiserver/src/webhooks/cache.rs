//! A watch-fed cache of one cluster-scoped resource (followed as `crate::follow` does): after
//! every listing and change a snapshot is derived from all the objects and published. Readers
//! never touch the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use registry::{Registry, Resource};
use serde_json::Value;
use tokio::sync::watch;

use crate::follow::{Followed, follow};

/// How long a request waits for the first list before it is refused.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The latest snapshot of a watched resource.
pub(crate) struct Watched<T> {
    snapshot: watch::Receiver<Option<Arc<T>>>,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Starts watching `resource` (on the current Tokio runtime) until `stop`'s sender is
    /// dropped; `derive` makes the snapshot from the objects by name.
    pub(crate) fn start(
        registry: Registry,
        resource: Resource,
        derive: impl Fn(&BTreeMap<String, Value>) -> T + Send + 'static,
        stop: watch::Receiver<()>,
    ) -> Watched<T> {
        let (publish, snapshot) = watch::channel(None);
        tokio::spawn(run(registry, resource, derive, publish, stop));
        Watched { snapshot }
    }

    /// The current snapshot, waiting (a while) for the first one; `None` if it never came.
    pub(crate) async fn current(&self) -> Option<Arc<T>> {
        if let Some(snapshot) = self.snapshot.borrow().clone() {
            return Some(snapshot);
        }
        let mut snapshot = self.snapshot.clone();
        match tokio::time::timeout(READY_WITHIN, snapshot.wait_for(Option::is_some)).await {
            Ok(Ok(ready)) => ready.clone(),
            _ => None,
        }
    }
}

async fn run<T>(
    registry: Registry,
    resource: Resource,
    derive: impl Fn(&BTreeMap<String, Value>) -> T,
    publish: watch::Sender<Option<Arc<T>>>,
    stop: watch::Receiver<()>,
) {
    let mut objects = BTreeMap::new();
    let name = |object: &Value| registry::object::name(object).to_string();
    follow(&registry, &resource, stop, move |followed| {
        match followed {
            Followed::Listed { objects: list, .. } => {
                objects = list.into_iter().map(|o| (name(&o), o)).collect();
            }
            Followed::Progress(_) => return,
            Followed::Applied(object) => {
                objects.insert(name(&object), object);
            }
            Followed::Deleted(object) => {
                objects.remove(&name(&object));
            }
        }
        publish.send_replace(Some(Arc::new(derive(&objects))));
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::{DefaultStrategy, WriteOptions};
    use serde_json::json;

    #[tokio::test]
    async fn follows_the_store() {
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        let resource = Resource {
            group: "example.com".into(),
            resource: "things".into(),
            kind: "Thing".into(),
            namespaced: false,
            strategy: Arc::new(DefaultStrategy),
        };
        let thing = |name: &str| json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": name}});
        registry
            .create(&resource, "", thing("a"), &WriteOptions::default())
            .await
            .unwrap();
        let (keep, stop) = watch::channel(());
        let cache = Watched::start(
            registry.clone(),
            resource.clone(),
            |objects| objects.keys().cloned().collect::<Vec<_>>(),
            stop,
        );
        assert_eq!(*cache.current().await.unwrap(), ["a"]);
        registry
            .create(&resource, "", thing("b"), &WriteOptions::default())
            .await
            .unwrap();
        registry
            .delete(&resource, "", "a", None, &WriteOptions::default())
            .await
            .unwrap();
        let mut seen = cache.snapshot.clone();
        tokio::time::timeout(
            Duration::from_secs(5),
            seen.wait_for(|s| s.as_deref().is_some_and(|names| *names == ["b"])),
        )
        .await
        .expect("the cache follows")
        .unwrap();
        drop(keep);
    }
}
