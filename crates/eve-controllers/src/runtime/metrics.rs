//! The controllers' own figures, for `/metrics` (`docs/metrics.md`): how often the namespace
//! reconciler ran and how many applications it looked at, which shows whether a burst of
//! changes costs work in proportion to the changes (see [`work`](super::work)).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// The counters; clones share them.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub(super) namespace_reconciles: Counter,
    pub(super) applications_examined: Counter,
}

impl Metrics {
    /// Registers the counters with `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "eve_controller_namespace_reconciles",
            "Runs of the namespace reconciler (references, binding and claims of applications)",
            self.namespace_reconciles.clone(),
        );
        registry.register(
            "eve_controller_namespace_applications_examined",
            "Applications the namespace reconciler looked at",
            self.applications_examined.clone(),
        );
    }

    /// The applications the namespace reconciler has looked at so far.
    pub fn applications_examined(&self) -> u64 {
        self.applications_examined.get()
    }
}
