//! `coordination.k8s.io/v1` Lease: the lock object of leader election and heartbeats
//! (`spec.holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime`,
//! `leaseTransitions`, `strategy`, `preferredHolder`), with kube-apiserver's validation and
//! printer (`HOLDER`, `AGE`).

use std::sync::Arc;

use apimachinery::FieldError;
use apimachinery::validation::is_qualified_name;
use registry::Strategy;
use serde_json::{Value, json};

use crate::catalog::{Column, Kind};
use crate::native::{age, kind, str_at};
use crate::schema::Components;

/// The coordinated-leader-election strategies Kubernetes defines (others must be
/// `domain/name`).
const STRATEGIES: &[&str] = &["OldestEmulationVersion"];

/// The Lease strategy: kube-apiserver's `ValidateLeaseSpec`, on create and update.
pub struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let spec = &object["spec"];
        let mut errors = Vec::new();
        if let Some(seconds) = spec["leaseDurationSeconds"].as_i64()
            && seconds <= 0
        {
            errors.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                seconds.to_string(),
                "must be greater than 0",
            ));
        }
        if let Some(transitions) = spec["leaseTransitions"].as_i64()
            && transitions < 0
        {
            errors.push(FieldError::invalid(
                "spec.leaseTransitions",
                transitions.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        let strategy = spec["strategy"].as_str();
        if let Some(strategy) = strategy {
            if strategy.contains('/') {
                for message in is_qualified_name(strategy) {
                    errors.push(FieldError::invalid("spec.strategy", strategy, message));
                }
            } else if !STRATEGIES.contains(&strategy) {
                errors.push(FieldError::not_supported(
                    "spec.strategy",
                    strategy,
                    STRATEGIES,
                ));
            }
        }
        if !str_at(object, &["spec", "preferredHolder"]).is_empty()
            && strategy.is_none_or(str::is_empty)
        {
            errors.push(FieldError::forbidden(
                "spec.preferredHolder",
                "may only be specified if `strategy` is defined",
            ));
        }
        errors
    }
}

/// The Lease kind.
pub(crate) fn lease_kind(components: &Arc<Components>) -> Kind {
    kind(
        components,
        "coordination.k8s.io",
        "leases",
        "Lease",
        &[],
        true,
        Arc::new(LeaseStrategy),
        None,
        vec![
            Column::new(
                "Holder",
                "string",
                0,
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            Column::new(
                "Age",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        |lease| {
            vec![
                json!(str_at(lease, &["spec", "holderIdentity"])),
                age(lease),
            ]
        },
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes(spec: Value) -> Vec<String> {
        LeaseStrategy
            .validate(&json!({"spec": spec}))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn lease_rules_are_kube_apiserver_s() {
        assert!(causes(json!({"holderIdentity": "a", "leaseDurationSeconds": 15})).is_empty());
        assert_eq!(
            causes(json!({"leaseDurationSeconds": 0, "leaseTransitions": -1})),
            [
                "spec.leaseDurationSeconds: Invalid value: \"0\": must be greater than 0",
                "spec.leaseTransitions: Invalid value: \"-1\": must be greater than or equal to 0",
            ]
        );
        assert_eq!(
            causes(json!({"strategy": "Newest", "preferredHolder": "x"})),
            [
                "spec.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\""
            ]
        );
        assert_eq!(
            causes(json!({"preferredHolder": "x"})),
            ["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]
        );
        assert!(causes(json!({"strategy": "example.com/mine", "preferredHolder": "x"})).is_empty());
    }
}
