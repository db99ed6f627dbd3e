//! The controllers' own figures, for `/metrics` (`docs/metrics.md`): how often the namespace
//! reconciler ran and how many applications it looked at, which shows whether a burst of
//! changes costs work in proportion to the changes (see [`work`](super::work)); and how often
//! daemon sets and deployments planned over their namespace's devices.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// A plan's owner kind, as labelled: `daemon_set` or `deployment`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PlanLabels {
    pub(super) kind: &'static str,
}

/// The counters; clones share them.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub(super) namespace_reconciles: Counter,
    pub(super) applications_examined: Counter,
    pub(super) plans: Family<PlanLabels, Counter>,
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
        registry.register(
            "eve_controller_plans",
            "Plans of daemon sets and deployments over their namespace's devices, by kind",
            self.plans.clone(),
        );
    }

    /// Counts a plan of an owner of `kind` (`daemon_set` or `deployment`).
    pub(super) fn planned(&self, kind: &'static str) {
        self.plans.get_or_create(&PlanLabels { kind }).inc();
    }

    /// The applications the namespace reconciler has looked at so far.
    pub fn applications_examined(&self) -> u64 {
        self.applications_examined.get()
    }
}
