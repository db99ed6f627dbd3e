//! One monitor per watched resource: follows it (`follow::follow_kept`: listed a page at a
//! time, then watched, listed again whenever the watch ends, failures retried with a back-off),
//! sending the graph only what it needs of each object.

use std::sync::Arc;

use registry::ListOptions;
use tokio::sync::{mpsc, watch};

use super::graph::Change;
use super::kinds::Watched;
use super::owners::Meta;
use crate::follow::{Followed, follow_kept};
use crate::server::ApiServer;

/// Follows `watched`, sending its changes, until the graph stops taking them (or the monitor
/// is aborted, when its resource is no longer watched).
pub(super) async fn monitor(
    server: Arc<ApiServer>,
    watched: Arc<Watched>,
    changes: mpsc::Sender<Change>,
) {
    // Stopped only by abort or by the graph going: this sender lives as long as the monitor.
    let (_running, stop) = watch::channel(());
    let all = ListOptions::default();
    let keep = |object: serde_json::Value| Meta::of(&object);
    follow_kept(
        &server.registry,
        &watched.kind.main,
        &all,
        None,
        stop,
        keep,
        |followed| {
            let change = match followed {
                Followed::Listed { objects, .. } => Some(Change::Listed(watched.clone(), objects)),
                Followed::Applied(meta) => Some(Change::Upsert(watched.clone(), meta)),
                Followed::Deleted(meta) => Some(Change::Deleted(meta.uid)),
                Followed::Progress(_) => None,
            };
            let changes = changes.clone();
            async move {
                match change {
                    Some(change) => changes.send(change).await.is_ok(),
                    None => true,
                }
            }
        },
    )
    .await;
}
