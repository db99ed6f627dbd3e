//! Following a resource through the registry, as a reflector does: its objects listed, then its
//! changes watched from the list's revision; listed again when the watch ends (compaction, a
//! slow watcher). A failed list or watch is retried after a pause, and so is a watch that ends
//! within a second of the last listing, so a failing store is never listed in a tight loop.

use std::time::Duration;

use futures::StreamExt;
use registry::{ListOptions, Registry, Resource, Start, WatchEvent};
use serde_json::Value;
use tokio::sync::watch;

/// How long to wait before listing again after a failure.
const PAUSE: Duration = Duration::from_secs(1);

/// What a follower is told.
pub(crate) enum Followed {
    /// Every object, listed (at the start, and again after a watch ended).
    Listed(Vec<Value>),
    /// An object created or changed.
    Applied(Value),
    /// An object deleted (its last state).
    Deleted(Value),
}

/// Follows `resource` (of every namespace), telling `on` what it sees, until `stop` changes or
/// its sender goes.
pub(crate) async fn follow<S>(
    registry: &Registry,
    resource: &Resource,
    mut stop: watch::Receiver<S>,
    mut on: impl FnMut(Followed),
) {
    let everything = ListOptions::default();
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
        let listed = tokio::select! {
            listed = registry.list(resource, None, &everything) => listed,
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
        on(Followed::Listed(list.items));
        let watched = registry
            .watch(resource, None, &everything, Start::After(revision))
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
                        Some(WatchEvent::Bookmark(_)) => {}
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
