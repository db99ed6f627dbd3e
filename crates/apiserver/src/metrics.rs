//! The server's own metrics, served at `/metrics` in the Prometheus text format (0.0.4), and the
//! registry other parts of the binary add theirs to (`Metrics::register`), and further pages
//! served at `/metrics/NAME` (`Metrics::add_page`). Authorized as kube-apiserver's: `get` on the
//! non-resource URL.
//!
//! Every label is bounded (`docs/metrics.md`): verbs from a fixed set, groups, resources and
//! subresources only as the catalog names them (anything else is `other`), HTTP status codes.
//! Recording is an interned-name lookup, a hash of `&'static str`s under a read lock, and
//! atomic adds: no allocation once a series exists.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::catalog::{Catalog, Kind};

/// The label value of a group, resource or subresource the catalog does not have.
pub const OTHER: &str = "other";

/// The most distinct names interned; past it, new names are `other` (a bound on memory should
/// CRDs come and go for ever).
const MAX_NAMES: usize = 4096;

/// The upper bounds of the request latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The labels of a request on a resource, as counted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    code: u16,
}

/// The labels of a request on a resource, as timed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
}

/// The labels of a long-running request (a watch).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A request on a resource being measured: what it is, resolved against the catalog.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    pub(crate) verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
}

impl Request {
    /// A request whose path names no resource (`other` throughout).
    pub(crate) fn unknown() -> Request {
        Request {
            verb: OTHER,
            group: OTHER,
            resource: OTHER,
            subresource: "",
        }
    }
}

/// The server's metrics and the registries served.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<ResourceLabels, Histogram, fn() -> Histogram>,
    watches: Family<WatchLabels, Gauge>,
    /// Object store calls by operation (`crate::metered`).
    pub(crate) storage: crate::metered::Durations,
    names: RwLock<HashSet<&'static str>>,
    registry: RwLock<Registry>,
    pages: RwLock<Vec<(String, Arc<Registry>)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// The server's metric families, registered.
    pub fn new() -> Metrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Family<ResourceLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let watches = Family::<WatchLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "apiserver_request",
            "Requests on resources, by verb, group, resource, subresource and HTTP status code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Time to answer a request on a resource (watches excluded), in seconds",
            durations.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Watches open now, by group and resource",
            watches.clone(),
        );
        let storage = crate::metered::durations();
        registry.register(
            "apiserver_storage_request_duration_seconds",
            "Time the object store took to answer the API server, by operation (create, update and delete return once committed), in seconds",
            storage.clone(),
        );
        registry.register_collector(Box::new(crate::process::Process));
        let names = ["", OTHER].into_iter().collect();
        Metrics {
            requests,
            durations,
            storage,
            watches,
            names: RwLock::new(names),
            registry: RwLock::new(registry),
            pages: RwLock::new(Vec::new()),
        }
    }

    /// Adds metrics to those served at `/metrics`: `add` registers them.
    pub fn register(&self, add: impl FnOnce(&mut Registry)) {
        add(&mut self
            .registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Serves `registry` at `/metrics/NAME` (replacing one of that name).
    pub fn add_page(&self, name: &str, registry: Registry) {
        let mut pages = self
            .pages
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.retain(|(n, _)| n != name);
        pages.push((name.to_string(), Arc::new(registry)));
    }

    /// `/metrics` in the Prometheus text format.
    pub fn encode(&self) -> String {
        let registry = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        encode(&registry)
    }

    /// `/metrics/NAME` in the Prometheus text format, if there is such a page.
    pub fn encode_page(&self, name: &str) -> Option<String> {
        let registry = self
            .pages
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())?;
        Some(encode(&registry))
    }

    /// `name` as a `&'static str`, kept once; `other` past `MAX_NAMES`.
    fn intern(&self, name: &str) -> &'static str {
        let names = self
            .names
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(name) = names.get(name) {
            return name;
        }
        drop(names);
        let mut names = self
            .names
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(name) = names.get(name) {
            return name;
        }
        if names.len() >= MAX_NAMES {
            return OTHER;
        }
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.insert(leaked);
        leaked
    }

    /// What a request on `resource` (and `subresource`) of `group` at `version` is, as labelled:
    /// the catalog's names, else `other`.
    pub(crate) fn request(
        &self,
        catalog: &Catalog,
        verb: Option<&'static str>,
        group: &str,
        version: &str,
        resource: &str,
        subresource: &str,
    ) -> Request {
        let verb = verb.unwrap_or(OTHER);
        let Some(kind) = catalog.find(group, version, resource) else {
            return Request {
                verb,
                group: OTHER,
                resource: OTHER,
                subresource: if subresource.is_empty() { "" } else { OTHER },
            };
        };
        let subresource = match subresource {
            "" => "",
            known if has_subresource(kind, known) => self.intern(known),
            _ => OTHER,
        };
        Request {
            verb,
            group: self.intern(&kind.group),
            resource: self.intern(&kind.resource),
            subresource,
        }
    }

    /// Counts `request`, answered with `code` after `elapsed` (a watch is counted, not timed).
    pub(crate) fn observe(&self, request: Request, code: u16, elapsed: Option<Duration>) {
        let Request {
            verb,
            group,
            resource,
            subresource,
        } = request;
        self.requests
            .get_or_create(&RequestLabels {
                verb,
                group,
                resource,
                subresource,
                code,
            })
            .inc();
        if let Some(elapsed) = elapsed {
            self.durations
                .get_or_create(&ResourceLabels {
                    verb,
                    group,
                    resource,
                    subresource,
                })
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a watch of `kind` open until the guard returned is dropped.
    pub(crate) fn watching(self: &Arc<Self>, kind: &Kind) -> Watching {
        let labels = WatchLabels {
            verb: "watch",
            group: self.intern(&kind.group),
            resource: self.intern(&kind.resource),
        };
        self.watches.get_or_create(&labels).inc();
        Watching {
            metrics: self.clone(),
            labels,
        }
    }
}

/// An open watch, counted until dropped.
pub(crate) struct Watching {
    metrics: Arc<Metrics>,
    labels: WatchLabels,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.metrics.watches.get_or_create(&self.labels).dec();
    }
}

fn has_subresource(kind: &Kind, subresource: &str) -> bool {
    match subresource {
        "status" => kind.status.is_some(),
        "scale" => kind.scale.is_some(),
        "finalize" => kind.finalize.is_some(),
        other => kind.create_subresource(other).is_some(),
    }
}

/// The Prometheus text format's media type.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; a collector failing leaves what it wrote.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_and_timed_and_a_watch_counted_while_open() {
        let metrics = Arc::new(Metrics::new());
        let request = Request {
            verb: "list",
            group: "",
            resource: "configmaps",
            subresource: "",
        };
        metrics.observe(request, 200, Some(Duration::from_millis(3)));
        metrics.observe(request, 200, Some(Duration::from_millis(3)));
        let text = metrics.encode();
        assert!(
            text.contains(
                "apiserver_request_total{verb=\"list\",group=\"\",resource=\"configmaps\",subresource=\"\",code=\"200\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("apiserver_request_duration_seconds_bucket{le=\"0.005\",verb=\"list\",group=\"\",resource=\"configmaps\",subresource=\"\"} 2\n")
                || text.contains("apiserver_request_duration_seconds_bucket{verb=\"list\",group=\"\",resource=\"configmaps\",subresource=\"\",le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE apiserver_request_total counter\n"),
            "{text}"
        );
    }

    #[test]
    fn names_are_interned_once_and_bounded() {
        let metrics = Metrics::new();
        let a = metrics.intern("widgets");
        let b = metrics.intern(&String::from("widgets"));
        assert!(std::ptr::eq(a, b));
        for i in 0..MAX_NAMES {
            metrics.intern(&format!("n{i}"));
        }
        assert_eq!(metrics.intern("one-too-many"), OTHER);
        assert_eq!(metrics.intern("widgets"), "widgets");
    }

    #[test]
    fn pages_are_served_by_name() {
        let metrics = Metrics::new();
        assert_eq!(metrics.encode_page("fleet"), None);
        let mut registry = Registry::default();
        let gauge = Gauge::<i64>::default();
        gauge.set(1);
        registry.register("fleet_things", "Things", gauge);
        metrics.add_page("fleet", registry);
        let page = metrics.encode_page("fleet").expect("a page");
        assert!(page.contains("fleet_things 1\n"), "{page}");
    }
}
