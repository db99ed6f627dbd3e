//! Following a resource through the registry, as a reflector does: its objects listed, then its
//! changes watched from the list's revision; listed again when the watch ends (compaction, a
//! slow watcher). A failed list or watch is retried after a pause, and so is a watch that ends
//! within a second of the last listing, so a failing store is never listed in a tight loop.

use std::time::Duration;

use futures::StreamExt;
use registry::{ListOptions, Registry, Resource, Start, WatchEvent};
use serde_json::Value;
use storage::Revision;
use tokio::sync::watch;

/// How long to wait before listing again after a failure.
const PAUSE: Duration = Duration::from_secs(1);

/// What a follower is told.
pub(crate) enum Followed {
    /// Every object, listed (at the start, and again after a watch ended), as of `revision`.
    Listed {
        objects: Vec<Value>,
        revision: Revision,
    },
    /// An object created or changed.
    Applied(Value),
    /// An object deleted (its last state).
    Deleted(Value),
    /// The store reached `revision` with nothing of the resource changed (a bookmark).
    Progress(Revision),
}

/// Follows `resource` (of every namespace), telling `on` what it sees, until `stop` changes or
/// its sender goes.
pub(crate) async fn follow<S>(
    registry: &Registry,
    resource: &Resource,
    stop: watch::Receiver<S>,
    on: impl FnMut(Followed),
) {
    follow_from(registry, resource, &ListOptions::default(), None, stop, on).await;
}

/// [`follow`] of the objects `selected` picks (by labels or fields), watching from `after` first
/// when given (the caller listed as of it), listing only when that watch ends.
pub(crate) async fn follow_from<S>(
    registry: &Registry,
    resource: &Resource,
    selected: &ListOptions,
    mut after: Option<Revision>,
    mut stop: watch::Receiver<S>,
    mut on: impl FnMut(Followed),
) {
    let pause = |stop: &mut watch::Receiver<S>| {
        let mut stop = stop.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(PAUSE) => true,
                _ = stop.changed() => false,
            }
        }
    };
    loop {
        let listed_at = tokio::time::Instant::now();
        let revision = match after.take() {
            Some(revision) => revision,
            None => {
                let listed = tokio::select! {
                    listed = registry.list(resource, None, selected) => listed,
                    _ = stop.changed() => return,
                };
                let list = match listed {
                    Ok(list) => list,
                    Err(e) => {
                        tracing::warn!(resource = %resource.qualified(), error = %e, "listing failed; retrying");
                        if pause(&mut stop).await {
                            continue;
                        }
                        return;
                    }
                };
                let revision = list.resource_version;
                on(Followed::Listed {
                    objects: list.items,
                    revision,
                });
                revision
            }
        };
        let watched = registry
            .watch(resource, None, selected, Start::After(revision))
            .await;
        match watched {
            Ok(events) => {
                let mut events = Box::pin(events);
                loop {
                    let event = tokio::select! {
                        event = events.next() => event,
                        _ = stop.changed() => return,
                    };
                    match event {
                        Some(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                            on(Followed::Applied(object));
                        }
                        Some(WatchEvent::Deleted(object)) => on(Followed::Deleted(object)),
                        Some(WatchEvent::Bookmark(revision)) => on(Followed::Progress(revision)),
                        Some(WatchEvent::Error(e)) => {
                            tracing::debug!(resource = %resource.qualified(), error = %e, "watch ended; listing again");
                            break;
                        }
                        None => break,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(resource = %resource.qualified(), error = %e, "watching failed; retrying");
            }
        }
        if listed_at.elapsed() < PAUSE && !pause(&mut stop).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::WriteOptions;
    use serde_json::json;
    use std::sync::Arc;

    fn config_map(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}})
    }

    /// What `follow_from` tells, as text, until `until` is told.
    async fn told(
        registry: &Registry,
        resource: &Resource,
        after: Option<Revision>,
        until: &str,
    ) -> Vec<String> {
        let (stop_tx, stop) = watch::channel(());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let following = {
            let (registry, resource) = (registry.clone(), resource.clone());
            tokio::spawn(async move {
                let all = ListOptions::default();
                follow_from(&registry, &resource, &all, after, stop, move |followed| {
                    let line = match followed {
                        Followed::Listed { objects, .. } => format!(
                            "listed {:?}",
                            objects
                                .iter()
                                .map(|o| registry::object::name(o).to_string())
                                .collect::<Vec<_>>()
                        ),
                        Followed::Applied(o) => format!("applied {}", registry::object::name(&o)),
                        Followed::Deleted(o) => format!("deleted {}", registry::object::name(&o)),
                        Followed::Progress(_) => return,
                    };
                    let _ = tx.send(line);
                })
                .await
            })
        };
        let mut lines = Vec::new();
        let patience = std::time::Duration::from_secs(10);
        while let Some(line) = tokio::time::timeout(patience, rx.recv())
            .await
            .expect("told within 10 s")
        {
            let done = line == until;
            lines.push(line);
            if done {
                break;
            }
        }
        drop(stop_tx);
        following.await.unwrap();
        lines
    }

    #[tokio::test]
    async fn follows_from_a_list_or_from_the_revision_it_is_given() {
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        let resource = crate::native::config_map_resource();
        let options = WriteOptions::default();
        let first = registry
            .create(&resource, "ns", config_map("a"), &options)
            .await
            .unwrap();
        let after: Revision = registry::object::meta_str(&first, "resourceVersion")
            .parse()
            .unwrap();
        registry
            .create(&resource, "ns", config_map("b"), &options)
            .await
            .unwrap();
        // Without a revision: a list first.
        let listed = told(&registry, &resource, None, "listed [\"a\", \"b\"]").await;
        assert_eq!(listed, ["listed [\"a\", \"b\"]"]);
        // From `a`'s revision: no list; `b` is told as a change.
        let watched = told(&registry, &resource, Some(after), "applied b").await;
        assert_eq!(watched, ["applied b"]);
    }
}
