//! Admission webhooks (`admissionregistration.k8s.io/v1`): the `ValidatingWebhookConfiguration`
//! and `MutatingWebhookConfiguration` kinds ([`config`], checked by [`validation`]), and an
//! admission plug-in ([`plugin`]) that calls the webhooks they describe as kube-apiserver does:
//! which requests ([`matching`]), what is sent and what is accepted back ([`review`]), over
//! HTTPS ([`client`]), from configurations read through a watch-fed cache ([`cache`]).
//!
//! What differs from kube-apiserver (see `docs/webhooks.md`): only `AdmissionReview` v1 is
//! spoken; `matchConditions` (CEL) are refused; deletes do not pass through admission here, so
//! `DELETE` and `CONNECT` rules never fire; a `service` is reached as
//! `https://NAME.NAMESPACE.svc:PORT/PATH` through the system resolver.

mod cache;
// Shared with the OIDC authenticator's discovery and JWKS fetches.
pub(crate) mod client;
mod config;
mod matching;
mod plugin;
mod review;
mod validation;

use std::sync::Arc;

pub(crate) use config::{add_components, kinds};

use crate::admission::Plugin;

pub(crate) use client::Clients;

/// The webhook plug-in over `registry`, calling the webhooks through `clients`, to run last in
/// the admission chain. Its caches watch the store from the current Tokio runtime until the
/// plug-in is dropped.
pub(crate) fn plugin(registry: &registry::Registry, clients: Arc<Clients>) -> Arc<dyn Plugin> {
    Arc::new(plugin::Webhooks::new(registry, clients))
}
