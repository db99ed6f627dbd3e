//! Automatic compaction: keep a bounded window of history, for any backend.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{Revision, Store};

/// How much history a store keeps for watches and reads at past revisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keep at least this many revisions before the current one.
    pub revisions: Revision,
    /// Compact this often.
    pub interval: Duration,
}

impl Default for Retention {
    /// 100,000 revisions, compacted every 30 seconds.
    fn default() -> Self {
        Retention {
            revisions: 100_000,
            interval: Duration::from_secs(30),
        }
    }
}

/// Starts a task that compacts `store` every `retention.interval`, keeping `retention.revisions`
/// revisions of history. The task ends when the handle is aborted.
pub fn spawn_compactor(store: Arc<dyn Store>, retention: Retention) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut compacted = 0;
        let mut tick = tokio::time::interval(retention.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let target = match store.current_revision().await {
                Ok(current) => current - retention.revisions,
                Err(e) => {
                    tracing::warn!(error = %e, "compaction skipped: cannot read the current revision");
                    continue;
                }
            };
            if target <= compacted {
                continue;
            }
            match store.compact(target).await {
                Ok(()) => {
                    tracing::debug!(revision = target, "compacted");
                    compacted = target;
                }
                Err(e) => tracing::warn!(error = %e, revision = target, "compaction failed"),
            }
        }
    })
}
