//! One monitor per watched resource: lists it page by page, then watches it, sending the
//! graph what it needs of each object.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use registry::{ListOptions, Start, WatchEvent};
use tokio::sync::mpsc;

use super::graph::Change;
use super::kinds::Watched;
use super::owners::Meta;
use crate::server::ApiServer;

/// How many objects a monitor lists per page.
const PAGE: usize = 500;

/// Lists `watched` (page by page, keeping only what the collector needs), then watches it from
/// there, sending the changes; lists again whenever the watch ends.
pub(super) async fn monitor(
    server: Arc<ApiServer>,
    watched: Arc<Watched>,
    changes: mpsc::Sender<Change>,
) {
    let resource = &watched.kind.main;
    loop {
        let mut metas = Vec::new();
        let mut options = ListOptions {
            limit: PAGE,
            ..ListOptions::default()
        };
        let listed = loop {
            match server.registry.list(resource, None, &options).await {
                Ok(page) => {
                    metas.extend(page.items.iter().filter_map(Meta::of));
                    match page.continue_token {
                        Some(token) => options.continue_token = Some(token),
                        None => break Ok(page.resource_version),
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let revision = match listed {
            Ok(revision) => revision,
            Err(e) => {
                tracing::debug!(resource = %resource.qualified(), error = %e, "garbage collector list failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if changes
            .send(Change::Listed(watched.clone(), metas))
            .await
            .is_err()
        {
            return;
        }
        let events = match server
            .registry
            .watch(
                resource,
                None,
                &ListOptions::default(),
                Start::After(revision),
            )
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(resource = %resource.qualified(), error = %e, "garbage collector watch failed; listing again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut events = Box::pin(events);
        while let Some(event) = events.next().await {
            let change = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    Meta::of(&o).map(|m| Change::Upsert(watched.clone(), m))
                }
                WatchEvent::Deleted(o) => Meta::of(&o).map(|m| Change::Deleted(m.uid)),
                WatchEvent::Bookmark(_) => None,
                WatchEvent::Error(e) => {
                    tracing::debug!(resource = %resource.qualified(), error = %e, "garbage collector watch ended; listing again");
                    break;
                }
            };
            if let Some(change) = change
                && changes.send(change).await.is_err()
            {
                return;
            }
        }
    }
}
