//! Following a resource through the registry, as a reflector does: its objects listed a page at
//! a time at one revision, then its changes watched from that revision, with a bookmark of the
//! store's revision asked for every minute. A watch that ends unavailable (a slow watcher, the
//! store away) is watched again from the last revision it delivered; one that ends otherwise
//! (`410 Gone`, an event that cannot be read) lists again. A failed list or watch is
//! retried after a pause that doubles with each failure in a row, and so is a watch that ends
//! within a second of the last start, so a failing store is never asked in a tight loop.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use registry::{ListOptions, Registry, Resource, Start, WatchEvent};
use serde_json::Value;
use storage::Revision;
use tokio::sync::watch;

use crate::workqueue::backoff;

/// How many objects are listed per page.
const PAGE: usize = 500;
/// The first pause after a failure (or a round under [`ROUND`]) ...
const PAUSE_FIRST: Duration = Duration::from_millis(250);
/// ... doubled with each further one in a row, up to this (the RBAC and webhook caches follow:
/// they catch up within this of the store's return).
const PAUSE_CAP: Duration = Duration::from_secs(5);
/// How often a watch asks its store for a bookmark of its latest revision.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);
/// A round (list and watch) that lasts this long ends the run of failures.
const ROUND: Duration = Duration::from_secs(1);

/// What a follower is told, of objects kept as `T`.
pub(crate) enum Followed<T = Value> {
    /// Every object, listed (at the start, and again after a watch ended), as of `revision`.
    Listed { objects: Vec<T>, revision: Revision },
    /// An object created or changed.
    Applied(T),
    /// An object deleted (its last state).
    Deleted(T),
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
    after: Option<Revision>,
    stop: watch::Receiver<S>,
    mut on: impl FnMut(Followed),
) {
    follow_kept(
        registry,
        resource,
        selected,
        after,
        stop,
        Some,
        |followed| {
            on(followed);
            std::future::ready(true)
        },
    )
    .await;
}

/// [`follow_from`] keeping of each object only what `keep` makes of it (objects it makes
/// nothing of are not told), page by page, so a list of many objects is never held whole; `on`
/// is awaited (a bounded channel's send, say) and ends the following by answering `false`.
pub(crate) async fn follow_kept<S, T, Fut>(
    registry: &Registry,
    resource: &Resource,
    selected: &ListOptions,
    mut after: Option<Revision>,
    mut stop: watch::Receiver<S>,
    keep: impl Fn(Value) -> Option<T>,
    mut on: impl FnMut(Followed<T>) -> Fut,
) where
    Fut: Future<Output = bool>,
{
    let mut failures = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        let revision = match after.take() {
            Some(revision) => Ok(revision),
            None => {
                let listed = tokio::select! {
                    listed = list(registry, resource, selected, &keep) => listed,
                    _ = stop.changed() => return,
                };
                match listed {
                    Ok((objects, revision)) => {
                        if !on(Followed::Listed { objects, revision }).await {
                            return;
                        }
                        Ok(revision)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let mut failed = true;
        let watched = match revision {
            Ok(revision) => registry
                .watch(resource, None, selected, Start::After(revision))
                .await
                .map(|events| (events, revision))
                .map_err(|e| ("watching", e)),
            Err(e) => Err(("listing", e)),
        };
        match watched {
            Ok((mut events, mut last)) => {
                failed = false;
                // Bookmarks of the store's revision keep `last` recent for a resource that
                // sees no change, so a watch that ends is watched again from there.
                let mut ticker = tokio::time::interval_at(
                    tokio::time::Instant::now() + PROGRESS_EVERY,
                    PROGRESS_EVERY,
                );
                loop {
                    let event = tokio::select! {
                        event = events.next() => event,
                        _ = ticker.tick() => {
                            events.request_progress();
                            continue;
                        }
                        _ = stop.changed() => return,
                    };
                    let followed = match event {
                        Some(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                            last = registry::object::revision(&object).unwrap_or(last);
                            keep(object).map(Followed::Applied)
                        }
                        Some(WatchEvent::Deleted(object)) => {
                            last = registry::object::revision(&object).unwrap_or(last);
                            keep(object).map(Followed::Deleted)
                        }
                        Some(WatchEvent::Bookmark(revision)) => {
                            last = last.max(revision);
                            Some(Followed::Progress(revision))
                        }
                        // Fallen behind, or the store went away for a while: the history
                        // still has what comes next.
                        Some(WatchEvent::Error(e @ registry::ApiError::Unavailable(_))) => {
                            tracing::debug!(resource = %resource.qualified(), error = %e, "watch ended; watching again");
                            after = Some(last);
                            break;
                        }
                        // Compacted (410), or an event that cannot be read (watched again,
                        // it would be read again): listed again.
                        Some(WatchEvent::Error(e)) => {
                            tracing::debug!(resource = %resource.qualified(), error = %e, "watch ended; listing again");
                            break;
                        }
                        None => {
                            after = Some(last);
                            break;
                        }
                    };
                    if let Some(followed) = followed
                        && !on(followed).await
                    {
                        return;
                    }
                }
            }
            Err((doing, e)) => {
                tracing::warn!(resource = %resource.qualified(), error = %e, "{doing} failed; retrying");
            }
        }
        if !failed && started.elapsed() >= ROUND {
            failures = 0;
            continue;
        }
        failures += 1;
        tokio::select! {
            _ = tokio::time::sleep(backoff(PAUSE_FIRST, failures, PAUSE_CAP)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Every object `selected` picks of `resource`, kept as `keep` makes them, a page at a time at
/// the first page's revision, and that revision.
async fn list<T>(
    registry: &Registry,
    resource: &Resource,
    selected: &ListOptions,
    keep: &impl Fn(Value) -> Option<T>,
) -> Result<(Vec<T>, Revision), registry::ApiError> {
    let mut options = ListOptions {
        limit: PAGE,
        continue_token: None,
        ..selected.clone()
    };
    let mut kept = Vec::new();
    loop {
        let page = registry.list(resource, None, &options).await?;
        kept.extend(page.items.into_iter().filter_map(keep));
        match page.continue_token {
            Some(token) => options.continue_token = Some(token),
            None => return Ok((kept, page.resource_version)),
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

    /// On a paused clock: the minute passes as soon as nothing else is to be done.
    #[tokio::test(start_paused = true)]
    async fn a_follower_that_sees_no_change_is_told_the_store_s_revision_every_minute() {
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        let resource = crate::native::config_map_resource();
        let (_stop_tx, stop) = watch::channel(());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let following = {
            let (registry, resource) = (registry.clone(), resource.clone());
            tokio::spawn(async move {
                // None of the ConfigMaps written below is selected.
                let selected = ListOptions {
                    labels: apimachinery::labels::Selector::parse("app=none").unwrap(),
                    ..ListOptions::default()
                };
                follow_from(
                    &registry,
                    &resource,
                    &selected,
                    None,
                    stop,
                    move |followed| {
                        if let Followed::Progress(revision) = followed {
                            let _ = tx.send(revision);
                        }
                    },
                )
                .await
            })
        };
        let mut written = 0;
        for i in 0..3 {
            let map = registry
                .create(
                    &resource,
                    "ns",
                    config_map(&format!("cm-{i}")),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
            written = registry::object::revision(&map).unwrap();
        }
        let told = tokio::time::timeout(std::time::Duration::from_secs(120), rx.recv())
            .await
            .expect("a bookmark within two minutes")
            .unwrap();
        assert!(told >= written, "told {told}, the store is at {written}");
        following.abort();
    }

    #[tokio::test]
    async fn a_watch_that_falls_behind_is_watched_again_from_where_it_was_not_listed_again() {
        // Each watcher may fall 4 events behind.
        let store = storage::MemoryStore::with_watch_capacity(4);
        let registry = Registry::new(Arc::new(store));
        let resource = crate::native::config_map_resource();
        let options = WriteOptions::default();
        let (_stop_tx, stop) = watch::channel(());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (go_tx, go) = watch::channel(false);
        let following = {
            let (registry, resource) = (registry.clone(), resource.clone());
            tokio::spawn(async move {
                let all = ListOptions::default();
                let keep = |o: Value| Some(registry::object::name(&o).to_string());
                follow_kept(
                    &registry,
                    &resource,
                    &all,
                    None,
                    stop,
                    keep,
                    move |followed| {
                        let line = match followed {
                            Followed::Listed { objects, .. } => Some(format!("listed {objects:?}")),
                            Followed::Applied(name) => Some(format!("applied {name}")),
                            Followed::Deleted(name) => Some(format!("deleted {name}")),
                            Followed::Progress(_) => None,
                        };
                        let (tx, mut go) = (tx.clone(), go.clone());
                        async move {
                            let applied = line.as_ref().is_some_and(|l| l.starts_with("applied"));
                            if let Some(line) = line {
                                let _ = tx.send(line);
                            }
                            // After its first change it reads nothing until told to: its watch
                            // falls behind meanwhile.
                            if applied {
                                let _ = go.wait_for(|go| *go).await;
                            }
                            true
                        }
                    },
                )
                .await
            })
        };
        let patience = std::time::Duration::from_secs(10);
        let mut next = async || {
            tokio::time::timeout(patience, rx.recv())
                .await
                .expect("told within 10 s")
                .unwrap()
        };
        assert_eq!(next().await, "listed []");
        let name = |i: usize| format!("cm-{i:02}");
        registry
            .create(&resource, "ns", config_map(&name(0)), &options)
            .await
            .unwrap();
        assert_eq!(next().await, "applied cm-00");
        for i in 1..20 {
            registry
                .create(&resource, "ns", config_map(&name(i)), &options)
                .await
                .unwrap();
        }
        go_tx.send(true).unwrap();
        // Every change told once, in order, and no second list: the watch was ended after 4
        // and started again from the last change it had delivered.
        for i in 1..20 {
            assert_eq!(next().await, format!("applied {}", name(i)));
        }
        following.abort();
    }

    #[tokio::test]
    async fn lists_across_pages_losing_nothing_keeping_what_it_is_told_to_and_stops_when_told() {
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        let resource = crate::native::config_map_resource();
        let options = WriteOptions::default();
        let count = 2 * PAGE + 3;
        for i in 0..count {
            registry
                .create(&resource, "ns", config_map(&format!("cm-{i:04}")), &options)
                .await
                .unwrap();
        }
        let (_stop_tx, stop) = watch::channel(());
        let all = ListOptions::default();
        let mut told = Vec::new();
        // Only the even ones kept; the first thing told (the list) ends the following.
        let keep = |o: Value| {
            let name = registry::object::name(&o).to_string();
            name.ends_with(['0', '2', '4', '6', '8']).then_some(name)
        };
        follow_kept(&registry, &resource, &all, None, stop, keep, |followed| {
            if let Followed::Listed { objects, .. } = followed {
                told = objects;
            }
            std::future::ready(false)
        })
        .await;
        let expected: Vec<String> = (0..count)
            .step_by(2)
            .map(|i| format!("cm-{i:04}"))
            .collect();
        assert_eq!(told, expected);
    }
}
