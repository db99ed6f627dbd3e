//! Watching a resource: storage events as Kubernetes watch events.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use storage::{Event, Revision, StorageError, WatchItem};

use crate::error::ApiError;
use crate::store::{ListOptions, Registry, Resource, decode_as};

/// What a watcher of a resource receives.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// An object appeared (or started matching the selectors).
    Added(Value),
    /// An object changed and still matches.
    Modified(Value),
    /// An object went (or stopped matching); with its last state and the revision of the change.
    Deleted(Value),
    /// Every change up to this revision has been sent.
    Bookmark(Revision),
    /// The watch is over; the client must list again (410) or watch again.
    Error(ApiError),
}

/// A watch of a resource: a stream of [`WatchEvent`]s, which can be asked for a bookmark.
pub struct Watching {
    events: futures::stream::BoxStream<'static, WatchEvent>,
    progress: storage::Progress,
}

impl Watching {
    /// Asks for a [`WatchEvent::Bookmark`] of the store's latest revision, delivered after
    /// every change before it, so that a watcher whose resource saw no change for a while
    /// still learns a recent version to watch again from (not one compacted meanwhile). Best
    /// effort: a watcher that is behind gets its events first, and may get none.
    pub fn request_progress(&self) {
        self.progress.request()
    }
}

impl Stream for Watching {
    type Item = WatchEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<WatchEvent>> {
        self.events.poll_next_unpin(cx)
    }
}

/// Where a watch starts, from `resourceVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// `""` or `"0"`: the current objects as `Added` first, then changes.
    Now,
    /// `"N"`: the changes after revision N.
    After(Revision),
}

impl Registry {
    /// Watches `resource` in `namespace` (all for `None`), with the selectors of `options`.
    pub async fn watch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        options: &ListOptions,
        start: Start,
    ) -> Result<Watching, ApiError> {
        let mut initial = Vec::new();
        let after = match start {
            Start::After(revision) => revision,
            Start::Now => {
                let unpaged = ListOptions {
                    limit: 0,
                    continue_token: None,
                    ..options.clone()
                };
                let list = self.list(resource, namespace, &unpaged).await?;
                initial = list.items.into_iter().map(WatchEvent::Added).collect();
                list.resource_version
            }
        };
        self.check_selectors(resource, options)?;
        let prefix = resource.prefix(namespace);
        let watch = self
            .store()
            .watch(Bytes::from(prefix), after)
            .await
            .map_err(|e| ApiError::from_storage(e, &resource.qualified(), ""))?;
        let progress = watch.progress();
        let resource = resource.clone();
        let options = options.clone();
        let registry = self.clone();
        let changes = watch
            .map(move |item| registry.translate(&resource, &options, item))
            .filter_map(futures::future::ready);
        // An error ends the watch: nothing may follow it.
        let mut over = false;
        let changes = changes.take_while(move |event| {
            let go_on = !over;
            over |= matches!(event, WatchEvent::Error(_));
            futures::future::ready(go_on)
        });
        Ok(Watching {
            events: futures::stream::iter(initial).chain(changes).boxed(),
            progress,
        })
    }

    fn translate(
        &self,
        resource: &Resource,
        options: &ListOptions,
        item: Result<WatchItem, StorageError>,
    ) -> Option<WatchEvent> {
        let event = match item {
            Ok(WatchItem::Progress(revision)) => return Some(WatchEvent::Bookmark(revision)),
            Ok(WatchItem::Event(event)) => event,
            Err(StorageError::Compacted {
                requested,
                compacted,
            }) => {
                return Some(WatchEvent::Error(ApiError::Gone(format!(
                    "too old resource version: {requested} ({compacted})"
                ))));
            }
            Err(e) => {
                return Some(WatchEvent::Error(ApiError::from_storage(
                    e,
                    &resource.qualified(),
                    "",
                )));
            }
        };
        let decoded = |bytes: &[u8], revision| {
            decode_as(resource, bytes, revision).map_err(WatchEvent::Error)
        };
        // Without selectors every object matches: a change's previous value is needed only for
        // a deletion (the last state), and is not decoded for the others.
        if options.labels.is_empty()
            && options.fields.is_empty()
            && let Event::Put { kv, .. } = &event
        {
            return Some(match decoded(&kv.value, kv.mod_revision) {
                Ok(new) if event.prev().is_some() => WatchEvent::Modified(new),
                Ok(new) => WatchEvent::Added(new),
                Err(error) => error,
            });
        }
        let result = (|| {
            let revision = event.revision();
            let old = match event.prev() {
                Some(prev) => Some(decoded(&prev.value, revision)?),
                None => None,
            };
            let old_matches = old
                .as_ref()
                .is_some_and(|o| self.selected(resource, o, options));
            Ok(match &event {
                Event::Put { kv, .. } => {
                    let new = decoded(&kv.value, kv.mod_revision)?;
                    match (old_matches, self.selected(resource, &new, options)) {
                        (true, true) => Some(WatchEvent::Modified(new)),
                        (false, true) => Some(WatchEvent::Added(new)),
                        // Stopped matching: gone for this watcher, as of this revision.
                        (true, false) => old.map(WatchEvent::Deleted),
                        (false, false) => None,
                    }
                }
                Event::Delete { .. } => old.filter(|_| old_matches).map(WatchEvent::Deleted),
            })
        })();
        match result {
            Ok(event) => event,
            Err(error) => Some(error),
        }
    }
}
