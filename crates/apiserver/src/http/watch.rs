//! Watch: the initial events (a list, or `sendInitialEvents`), then every change after a
//! resource version, bookmarks, timeouts, as a stream of JSON lines or Table rows.

use std::time::Duration;

use apimachinery::FieldError;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use registry::{ApiError, Start, WatchEvent};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch as signal};

use super::Body;
use super::negotiate::{self, Output};
use super::resource::Call;
use super::respond::error_response;
use crate::protobuf;
use crate::status::{Subject, status};
use crate::table;

/// How long a watch without `timeoutSeconds` lasts.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// How long a watch at its end waits for the store's latest revision to bookmark, delivering the
/// changes before it meanwhile.
const LAST_BOOKMARK_WAIT: Duration = Duration::from_secs(2);

impl Call {
    pub(crate) async fn watch(self, mut shutdown: signal::Receiver<bool>) -> Response<Body> {
        let options = match self.list_options() {
            Ok(mut options) => {
                options.limit = 0;
                options.continue_token = None;
                options
            }
            Err((e, _)) => return error_response(&e, &self.subject, &[]),
        };
        let rv = self.query.get("resourceVersion").unwrap_or("").to_string();
        let bookmarks = self.query.flag("allowWatchBookmarks");
        let initial_events = self
            .query
            .get("sendInitialEvents")
            .map(|v| v == "true" || v == "1");
        if initial_events == Some(true) {
            let mut causes = Vec::new();
            if self.query.get("resourceVersionMatch") != Some("NotOlderThan") {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                causes.push(FieldError::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
            if !causes.is_empty() {
                return error_response(
                    &ApiError::Invalid {
                        kind: "ListOptions.meta.k8s.io".into(),
                        name: String::new(),
                        causes,
                    },
                    &self.subject,
                    &[],
                );
            }
        }
        let timeout = self
            .query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT);
        let table = self.wants_table();
        let protobuf = self.output == Output::Protobuf;
        let metadata = self.output == Output::Metadata;
        let include = match self.include() {
            Ok(include) => include,
            Err((e, _)) => return error_response(&e, &self.subject, &[]),
        };
        let namespace = self.list_namespace().map(str::to_string);
        // Where the watch starts: after a list (initial events) or after a given version.
        let send_initial = match initial_events {
            Some(send) => send,
            None => rv.is_empty() || rv == "0",
        };
        let (initial, start) = if send_initial {
            match self
                .server
                .registry
                .list(&self.kind.main, namespace.as_deref(), &options)
                .await
            {
                Ok(list) => (list.items, list.resource_version),
                Err(e) => return error_response(&e, &self.subject, &[]),
            }
        } else {
            (Vec::new(), rv.parse().unwrap_or(0))
        };
        let events = match self
            .server
            .registry
            .watch(
                &self.kind.main,
                namespace.as_deref(),
                &options,
                Start::After(start),
            )
            .await
        {
            Ok(events) => events,
            Err(e) => return error_response(&e, &self.subject, &[]),
        };
        let (sender, receiver) = mpsc::channel::<Bytes>(64);
        let kind = self.kind.clone();
        let call = self;
        let watching = call.server.metrics.watching(&kind);
        tokio::spawn(async move {
            // Counted as open until this task ends (the client gone, a timeout, the server
            // stopping).
            let _watching = watching;
            let mut events = events;
            let mut first_row = true;
            let mut last = start;
            let encode = |event_type: &str, object: Value, first_row: &mut bool| -> Bytes {
                let object = if table && event_type != "ERROR" && event_type != "BOOKMARK" {
                    let rv = object["metadata"]["resourceVersion"].clone();
                    let t = table::table(
                        &kind,
                        &[object],
                        json!({"resourceVersion": rv}),
                        include,
                        *first_row,
                    );
                    *first_row = false;
                    t
                } else {
                    object
                };
                if protobuf {
                    // Length-framed WatchEvents; an object without a protobuf form (which the
                    // negotiation rules out) ends the stream with an error event instead.
                    let framed = protobuf::encode_watch_event(event_type, &object)
                        .or_else(|e| {
                            let error = ApiError::Internal(format!("encoding a watch event: {e}"));
                            protobuf::encode_watch_event(
                                "ERROR",
                                &status(&error, &Subject::default()),
                            )
                        })
                        .unwrap_or_default();
                    return Bytes::from(framed);
                }
                let mut line = serde_json::to_vec(&json!({"type": event_type, "object": object}))
                    .expect("JSON");
                line.push(b'\n');
                Bytes::from(line)
            };
            let (served_kind, served_version) = call.served_kind();
            let bookmark = |rv: i64, end: bool| -> Value {
                let mut object = json!({"kind": served_kind, "apiVersion": served_version, "metadata": {"resourceVersion": rv.to_string()}});
                if end {
                    object["metadata"]["annotations"] =
                        json!({"k8s.io/initial-events-end": "true"});
                }
                object
            };
            for object in initial {
                if sender
                    .send(encode("ADDED", call.shown(object), &mut first_row))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if initial_events == Some(true)
                && sender
                    .send(encode("BOOKMARK", bookmark(start, true), &mut first_row))
                    .await
                    .is_err()
            {
                return;
            }
            // Bookmarks carry the store's latest revision (asked of the watch, so they follow
            // every change before it), not only the last change of this resource: a watcher of
            // a quiet resource watches again from a recent revision, not one compacted since.
            let bookmarking = bookmarks && !table;
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            // Set at the deadline: the watch ends at the next bookmark, or at this instant.
            let mut ending = false;
            let mut ticker = tokio::time::interval_at(
                tokio::time::Instant::now() + BOOKMARK_INTERVAL,
                BOOKMARK_INTERVAL,
            );
            loop {
                let line = tokio::select! {
                    event = events.next() => match event {
                        Some(WatchEvent::Added(o)) => { last = revision_of(&o, last); encode("ADDED", call.shown(o), &mut first_row) }
                        Some(WatchEvent::Modified(o)) => { last = revision_of(&o, last); encode("MODIFIED", call.shown(o), &mut first_row) }
                        Some(WatchEvent::Deleted(o)) => { last = revision_of(&o, last); encode("DELETED", call.shown(o), &mut first_row) }
                        Some(WatchEvent::Bookmark(rv)) => {
                            last = last.max(rv);
                            if !bookmarking { continue; }
                            let line = encode("BOOKMARK", bookmark(last, false), &mut first_row);
                            if ending {
                                let _ = sender.send(line).await;
                                return;
                            }
                            line
                        }
                        Some(WatchEvent::Error(e)) => {
                            let _ = sender.send(encode("ERROR", status(&e, &call.subject), &mut first_row)).await;
                            return;
                        }
                        None => return,
                    },
                    _ = ticker.tick() => {
                        if !bookmarking { continue; }
                        // The store's revision follows as its own bookmark (if the store
                        // answers); this one keeps a quiet connection alive meanwhile.
                        events.request_progress();
                        encode("BOOKMARK", bookmark(last, false), &mut first_row)
                    }
                    _ = &mut deadline => {
                        if !bookmarking || ending {
                            if bookmarking {
                                let _ = sender.send(encode("BOOKMARK", bookmark(last, false), &mut first_row)).await;
                            }
                            return;
                        }
                        ending = true;
                        events.request_progress();
                        deadline.as_mut().reset(tokio::time::Instant::now() + LAST_BOOKMARK_WAIT);
                        continue;
                    }
                    _ = shutdown.changed() => return,
                    _ = sender.closed() => return,
                };
                if sender.send(line).await.is_err() {
                    return;
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver
                .recv()
                .await
                .map(|bytes| (Ok::<_, std::io::Error>(Frame::data(bytes)), receiver))
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        let content_type = if protobuf {
            protobuf::WATCH_MEDIA_TYPE
        } else if table {
            negotiate::TABLE
        } else if metadata {
            negotiate::METADATA
        } else {
            "application/json"
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        response
    }
}

fn revision_of(object: &Value, last: i64) -> i64 {
    registry::object::revision(object).unwrap_or(last).max(last)
}
