//! Role-based access control as kube-apiserver has it (`docs/access.md`): the
//! `rbac.authorization.k8s.io/v1` kinds ([`kinds`], [`validation`]), the authorizer
//! ([`Rbac`]: `system:masters` may do anything; everyone else what their bindings grant,
//! decided over a watch-fed cache ([`cache`], [`resolve`]) by kube's rule matching
//! ([`rules`])), aggregated ClusterRoles ([`aggregate`]), the bootstrap roles and bindings
//! reconciled at start ([`bootstrap`]), escalation prevention on writes of roles and bindings
//! ([`escalation`]), impersonation ([`impersonate`]) and the review APIs ([`reviews`]).

mod aggregate;
mod bootstrap;
mod cache;
mod escalation;
mod impersonate;
mod kinds;
mod resolve;
mod reviews;
mod reviews_proto;
mod rules;
mod selector;
mod validation;

use std::sync::Arc;

use registry::{ApiError, Registry};
use serde_json::Value;
use tokio::sync::watch;

use crate::admission::Plugin;
use crate::auth::{Attributes, Authorizer, User};
use crate::catalog::Kind;
use crate::schema::Components;
use crate::server::ApiServer;
use cache::Cache;
pub(crate) use impersonate::impersonate;
use kinds::Which;
use resolve::{Decision, is_master};
use rules::PolicyRule;

/// The RBAC authorizer over its cache. The cache follows the store until this is dropped.
pub(crate) struct Rbac {
    cache: Arc<Cache>,
    _stop: watch::Sender<()>,
}

impl Rbac {
    /// Reconciles the bootstrap roles and bindings, then lists the four kinds into the cache
    /// and follows them from the current Tokio runtime.
    pub(crate) async fn start(registry: &Registry) -> Result<Arc<Rbac>, ApiError> {
        bootstrap::reconcile(registry).await?;
        let (stop, stopped) = watch::channel(());
        let cache = Cache::start(registry, stopped).await?;
        Ok(Arc::new(Rbac { cache, _stop: stop }))
    }

    /// Decides a request, with kube's reason.
    pub(crate) fn decide(&self, user: &User, request: &Attributes) -> Decision {
        if is_master(user) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        self.cache.read(|state| state.decide(user, request))
    }

    /// The rules `user` holds in `namespace` (a member of `system:masters` holds every one),
    /// and the errors met while gathering them.
    pub(crate) fn rules_for(&self, user: &User, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let (mut rules, errors) = self.cache.read(|state| state.rules_for(user, namespace));
        if is_master(user) {
            rules.insert(0, PolicyRule::resource(&["*"], &["*"], &["*"]));
            rules.insert(1, PolicyRule::urls(&["*"], &["*"]));
        }
        (rules, errors)
    }

    /// The admission plug-in refusing escalation through roles and bindings.
    pub(crate) fn plugin(self: &Arc<Self>) -> Arc<dyn Plugin> {
        Arc::new(escalation::Escalation::new(self.clone()))
    }

    /// Runs the aggregation controller until `shutdown` turns true.
    pub(crate) fn spawn_controllers(&self, registry: &Registry, shutdown: watch::Receiver<bool>) {
        tokio::spawn(aggregate::run(
            self.cache.clone(),
            registry.clone(),
            shutdown,
        ));
    }

    /// After a write of an RBAC object through the API, waits (a while) until the cache has
    /// seen it, so that the writer's next request is decided with it.
    pub(crate) async fn after_write(&self, kind: &Kind, object: &Value) {
        if kind.group != kinds::GROUP {
            return;
        }
        if let Some(which) = Which::of_resource(&kind.resource) {
            let revision = registry::object::meta_str(object, "resourceVersion")
                .parse()
                .unwrap_or(0);
            self.cache.caught_up(which, revision).await;
        }
    }
}

impl Authorizer for Rbac {
    fn authorize(&self, user: &User, attributes: &Attributes) -> Result<(), String> {
        let decision = self.decide(user, attributes);
        if decision.allowed {
            Ok(())
        } else {
            Err(decision.reason)
        }
    }
}

/// The RBAC and review kinds for the catalog, over `components` (which must hold
/// [`add_components`]'s).
pub(crate) fn kinds(components: &Arc<Components>) -> Vec<Kind> {
    let mut all = kinds::kinds(components);
    all.extend(reviews::kinds(components));
    all
}

/// Adds the schemas of the RBAC and review kinds to the native components.
pub(crate) fn add_components(components: &mut Components) {
    kinds::add_components(components);
}

/// After a write through the API: waits until the authorizer has seen it (RBAC kinds only).
pub(crate) async fn after_write(server: &ApiServer, kind: &Kind, object: &Value) {
    server.rbac.after_write(kind, object).await;
}
