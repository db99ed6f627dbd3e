//! Choosing and opening the telemetry store (`--telemetry-store`), and keeping it within its
//! retention.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use telemetry::{Retention, TelemetryStore};

/// Where device telemetry is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelemetryUrl {
    /// `embedded`: `telemetry.redb` in the data directory.
    Embedded,
    /// `memory`: in the process only (lost at exit).
    Memory,
    /// `redis://HOST:PORT[/DB]`: Redis Streams, shared by replicas.
    Redis(String),
}

impl FromStr for TelemetryUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(TelemetryUrl::Embedded),
            "memory" => Ok(TelemetryUrl::Memory),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Ok(TelemetryUrl::Redis(url.to_string()))
            }
            other => Err(format!(
                "unknown telemetry store {other:?}: use `embedded`, `memory` or `redis://HOST:PORT`"
            )),
        }
    }
}

impl fmt::Display for TelemetryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TelemetryUrl::Embedded => f.write_str("embedded"),
            TelemetryUrl::Memory => f.write_str("memory"),
            TelemetryUrl::Redis(url) => f.write_str(url),
        }
    }
}

impl TelemetryUrl {
    /// Opens the store (`data_dir` holds the embedded one; `None` refuses `embedded`).
    pub async fn open(&self, data_dir: Option<&Path>) -> anyhow::Result<Arc<dyn TelemetryStore>> {
        Ok(match self {
            TelemetryUrl::Memory => Arc::new(telemetry::MemoryTelemetry::new()),
            TelemetryUrl::Embedded => {
                let dir = data_dir.context(
                    "the embedded telemetry store needs a data directory: use `memory` or `redis://HOST:PORT` here",
                )?;
                let path = dir.join("telemetry.redb");
                let store = telemetry_embedded::EmbeddedTelemetry::open(&path, Default::default())
                    .with_context(|| {
                        format!("cannot open the telemetry store {}", path.display())
                    })?;
                Arc::new(store)
            }
            TelemetryUrl::Redis(url) => Arc::new(
                telemetry_redis::RedisTelemetry::connect(url)
                    .await
                    .with_context(|| format!("cannot reach the telemetry store {url}"))?,
            ),
        })
    }
}

/// Trims `store` to `retention` every `interval` until `stop`.
pub(crate) fn spawn_retention(
    store: Arc<dyn TelemetryStore>,
    retention: Retention,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            match store.trim(&retention, telemetry::now_millis()).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "telemetry retention removed records"),
                Err(e) => {
                    tracing::warn!(error = %e, "telemetry retention failed; retrying at the next interval")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_stores_are_named_as_the_flag_says() {
        assert_eq!("embedded".parse(), Ok(TelemetryUrl::Embedded));
        assert_eq!("memory".parse(), Ok(TelemetryUrl::Memory));
        assert_eq!(
            "redis://127.0.0.1:6379".parse(),
            Ok(TelemetryUrl::Redis("redis://127.0.0.1:6379".into()))
        );
        let refused = "postgres://x".parse::<TelemetryUrl>().unwrap_err();
        assert!(
            refused.contains("use `embedded`, `memory` or `redis://HOST:PORT`"),
            "{refused}"
        );
    }
}
