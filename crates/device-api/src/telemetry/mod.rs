//! Device telemetry: what devices post is kept in a [`TelemetryStore`] (`ingest` makes the
//! records), acknowledged only once durable, within a byte budget per device; `query` serves it
//! back to people over HTTP (`docs/telemetry.md`).

pub mod ingest;
pub mod query;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use telemetry::{Kind, NewRecord, StreamKey, TelemetryStore};

use crate::Refused;

/// How much a device may post: bytes of records per second, sustained, with a minute's worth
/// of burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Bytes per second.
    pub bytes_per_second: f64,
}

impl Default for Budget {
    /// 64 KiB/s (some 5 GiB a day): far above what EVE sends at its default intervals, low
    /// enough that one device cannot crowd out the others.
    fn default() -> Budget {
        Budget {
            bytes_per_second: 64.0 * 1024.0,
        }
    }
}

/// The telemetry of the device API: the store and the devices' budgets.
pub struct Telemetry {
    store: Arc<dyn TelemetryStore>,
    buckets: crate::budget::Buckets<String>,
    metrics: crate::metrics::Metrics,
}

impl Telemetry {
    /// Telemetry kept in `store`, each device within `budget`.
    pub fn new(store: Arc<dyn TelemetryStore>, budget: Budget) -> Telemetry {
        Telemetry {
            store,
            // A minute's worth of burst; at most a million devices' buckets.
            buckets: crate::budget::Buckets::new(
                budget.bytes_per_second.max(1.0),
                budget.bytes_per_second.max(1.0) * 60.0,
                1 << 20,
            ),
            metrics: crate::metrics::Metrics::default(),
        }
    }

    /// The device API's metrics, telemetry kept and refused among them.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TelemetryStore> {
        &self.store
    }

    /// Forgets `device` (deleted): its records in the store, and its budget.
    pub(crate) async fn forget(&self, device: &str) -> Result<(), telemetry::TelemetryError> {
        self.buckets.forget(&device.to_string());
        self.store.forget(device).await?;
        self.metrics.forgotten();
        Ok(())
    }

    /// Takes `bytes` from `device`'s budget, or says when to come back.
    fn spend(&self, device: &str, bytes: usize) -> Result<(), Duration> {
        self.buckets.spend(&device.to_string(), bytes as f64)
    }

    /// Keeps `records` of `kind` from `device`: returns once they are durable. Over budget: 429
    /// (EVE keeps its logs and retries later); the store failing: 503.
    pub(crate) async fn keep(
        &self,
        device: &str,
        kind: Kind,
        records: Vec<NewRecord>,
    ) -> Result<(), Refused> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes = records.iter().map(|r| r.body.len()).sum();
        if let Err(wait) = self.spend(device, bytes) {
            self.metrics.refused(kind, crate::metrics::reason::BUDGET);
            return Err(Refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this device is over its telemetry budget; retry in {} s",
                    wait.as_secs()
                ),
            ));
        }
        let count = records.len();
        let started = std::time::Instant::now();
        let appended = self
            .store
            .append(&StreamKey::new(device, kind), records)
            .await;
        self.metrics.appended(kind, started.elapsed());
        match appended {
            Ok(_) => {
                self.metrics.kept(kind, count, bytes);
                Ok(())
            }
            Err(e) => {
                self.metrics.refused(kind, crate::metrics::reason::STORE);
                Err(Refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_device_over_its_budget_is_told_to_come_back_and_others_are_not() {
        let telemetry = Telemetry::new(
            Arc::new(telemetry::MemoryTelemetry::new()),
            Budget {
                bytes_per_second: 10.0,
            },
        );
        let record = |n: usize| NewRecord {
            millis: 1,
            body: bytes::Bytes::from(vec![b'x'; n]),
        };
        telemetry
            .keep("greedy", Kind::Log, vec![record(600)])
            .await
            .unwrap();
        let refused = telemetry
            .keep("greedy", Kind::Log, vec![record(100)])
            .await
            .unwrap_err();
        assert_eq!(refused.0, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.1.contains("retry in"), "{}", refused.1);
        telemetry
            .keep("modest", Kind::Log, vec![record(100)])
            .await
            .unwrap();
        let kept = telemetry
            .store()
            .read(&StreamKey::new("greedy", Kind::Log), &Default::default())
            .await
            .unwrap();
        assert_eq!(kept.len(), 1, "nothing of the refused post was kept");
    }
}
