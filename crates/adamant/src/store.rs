//! Choosing and opening the store from `--store`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use storage::Store;

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// The embedded store, `store.redb` in the data directory.
    Embedded,
    /// An etcd cluster.
    Etcd(Vec<String>),
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "embedded" {
            return Ok(StoreUrl::Embedded);
        }
        let Some(rest) = s.strip_prefix("etcd://") else {
            return Err(format!(
                "unknown store {s:?}: use `embedded` or `etcd://HOST:PORT[,HOST:PORT...]`"
            ));
        };
        let endpoints: Vec<String> = rest.split(',').map(str::to_string).collect();
        if let Some(bad) = endpoints.iter().find(|e| e.is_empty() || !e.contains(':')) {
            return Err(format!(
                "etcd endpoint {bad:?} in {s:?} is not HOST:PORT: use `etcd://HOST:PORT[,HOST:PORT...]`"
            ));
        }
        Ok(StoreUrl::Etcd(endpoints))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Embedded => f.write_str("embedded"),
            StoreUrl::Etcd(endpoints) => write!(f, "etcd://{}", endpoints.join(",")),
        }
    }
}

/// The embedded store's page cache in `adamant serve`, in MiB. Reads are mostly served from
/// the informers' caches and the kernel's page cache holds the file too, so the process keeps
/// less than the store crate's default (256 MiB): at 100,000 devices the difference is what
/// brings the server under 2 GiB (docs/benchmarks.md).
pub(crate) const DEFAULT_CACHE_MIB: usize = 128;

impl StoreUrl {
    /// Opens the store; an embedded one lets a watcher fall `watch_backlog` events behind and
    /// keeps `cache_mib` MiB of its file's pages in memory.
    pub async fn open(
        &self,
        data_dir: &Path,
        watch_backlog: usize,
        cache_mib: usize,
    ) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            StoreUrl::Embedded => {
                let path = data_dir.join("store.redb");
                let options = storage_embedded::Options {
                    watch_capacity: watch_backlog,
                    cache_bytes: cache_mib << 20,
                    ..Default::default()
                };
                let store =
                    storage_embedded::EmbeddedStore::open(&path, options).with_context(|| {
                        format!("cannot open the embedded store {}", path.display())
                    })?;
                Ok(Arc::new(store))
            }
            #[cfg(feature = "etcd")]
            StoreUrl::Etcd(endpoints) => {
                let store = storage_etcd::EtcdStore::connect(endpoints).await?;
                Ok(Arc::new(store))
            }
            #[cfg(not(feature = "etcd"))]
            StoreUrl::Etcd(_) => anyhow::bail!(
                "this adamant was built without etcd support: build it with `cargo build --release --features etcd` (needs protoc)"
            ),
        }
    }
}

/// `adamant_store_size_bytes{store}`: the size of the embedded stores' files (`objects`:
/// `store.redb`, `telemetry`: `telemetry.redb`), read at each scrape. Stores elsewhere (etcd,
/// Redis) have their own exporters.
#[derive(Debug)]
pub(crate) struct StoreFiles(pub(crate) Vec<(&'static str, std::path::PathBuf)>);

impl prometheus_client::collector::Collector for StoreFiles {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let mut family = encoder.encode_descriptor(
            "adamant_store_size_bytes",
            "The size of an embedded store's file (objects: store.redb, telemetry: telemetry.redb), in bytes",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (store, path) in &self.0 {
            let Ok(metadata) = std::fs::metadata(path) else {
                continue;
            };
            prometheus_client::metrics::gauge::ConstGauge::new(metadata.len() as i64)
                .encode(family.encode_family(&[("store", *store)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Result<StoreUrl, &str>) {
        assert_eq!(input.parse::<StoreUrl>(), expected.map_err(str::to_string));
    }

    #[test]
    fn store_urls() {
        check("embedded", Ok(StoreUrl::Embedded));
        check("etcd://a:2379", Ok(StoreUrl::Etcd(vec!["a:2379".into()])));
        check(
            "etcd://a:1,b:2",
            Ok(StoreUrl::Etcd(vec!["a:1".into(), "b:2".into()])),
        );
        check(
            "sqlite://x",
            Err(
                "unknown store \"sqlite://x\": use `embedded` or `etcd://HOST:PORT[,HOST:PORT...]`",
            ),
        );
        check(
            "etcd://a:1,",
            Err(
                "etcd endpoint \"\" in \"etcd://a:1,\" is not HOST:PORT: use `etcd://HOST:PORT[,HOST:PORT...]`",
            ),
        );
    }
}
