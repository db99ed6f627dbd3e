//! What every reconciler is given ([`Ctx`]): the client, the caches and what they read of them,
//! the event recorder, the expectations; its error, and the status write.

use std::collections::HashMap;
use std::sync::Arc;

use eve_model::{
    Application, ApplicationDaemonSet, ApplicationDeployment, Device, DeviceNetwork, annotations,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use super::Caches;
use super::expectations::{Expectations, Observed};
use crate::events::Events;
use crate::scheduling::Context;

/// Why a reconcile failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    /// A call to the API failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// Whose expectations an Application's event settles, and whose reconcile it triggers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Owner {
    /// Its controlling deployment.
    Deployment(ObjectRef<ApplicationDeployment>),
    /// Its controlling daemon set.
    DaemonSet(ObjectRef<ApplicationDaemonSet>),
    /// Its namespace, for standalone applications.
    Namespace(ObjectRef<Namespace>),
}

/// The reconcilers' context.
pub(super) struct Ctx {
    pub(super) client: Client,
    pub(super) caches: Caches,
    pub(super) events: Events,
    pub(super) expectations: Arc<Expectations<Owner>>,
    /// What each namespace's reconcile has to look at.
    pub(super) work: Arc<super::work::NamespaceWork>,
    pub(super) metrics: super::Metrics,
    /// When each owner's reconcile may run again ([`Ctx::paced`], [`Ctx::planned`]).
    pub(super) pacer: std::sync::Mutex<std::collections::HashMap<Owner, std::time::Instant>>,
}

/// The least time between two runs of one owner's reconcile, each of which reads every
/// Application and Device of its namespace: a stream of events (a fleet's reports) coalesces
/// into at most a few runs a second instead of keeping a core busy.
pub(super) const PACE: std::time::Duration = std::time::Duration::from_millis(200);

/// A plan that took `t` is followed by the owner's next at the earliest `PLAN_SHARE × t` after
/// it started (or [`PACE`], if longer; [`PLAN_PACE_CAP`] at most): however large the namespace
/// and however many its events, one owner's planning takes at most a fifth of a core.
const PLAN_SHARE: u32 = 5;
/// The longest a plan puts off the next (a plan slowed by a busy machine puts off no more).
const PLAN_PACE_CAP: std::time::Duration = std::time::Duration::from_secs(5);

/// A merge patch of `status` alone.
#[derive(Debug, Serialize)]
struct StatusPatch<'a, S> {
    status: &'a S,
}

pub(super) fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// `app`'s controller, if it has one.
pub(super) fn controller_of(app: &Application) -> Option<&OwnerReference> {
    app.owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
}

/// [`Ctx::paced`] over the table of when each owner may run next.
fn pace(
    next: &mut std::collections::HashMap<Owner, std::time::Instant>,
    owner: &Owner,
    now: std::time::Instant,
) -> Option<std::time::Duration> {
    if let Some(at) = next.get(owner)
        && *at > now
    {
        return Some(*at - now);
    }
    // Times passed hold nothing back: forgotten once there are many, so owners that come and
    // go (deleted deployments, namespaces) do not grow the map.
    if next.len() >= PACED_KEPT {
        next.retain(|_, at| *at > now);
    }
    next.insert(owner.clone(), now + PACE);
    None
}

/// [`Ctx::planned`] over the table of when each owner may run next.
fn planned(
    next: &mut std::collections::HashMap<Owner, std::time::Instant>,
    owner: &Owner,
    started: std::time::Instant,
    now: std::time::Instant,
) {
    let took = now.saturating_duration_since(started);
    let at = started + (took.saturating_mul(PLAN_SHARE)).clamp(PACE, PLAN_PACE_CAP);
    let entry = next.entry(owner.clone()).or_insert(at);
    *entry = (*entry).max(at);
}

/// How many owners' next runs [`pace`] keeps before it forgets those already passed.
const PACED_KEPT: usize = 1024;

impl Ctx {
    /// None when `owner`'s reconcile may run now (and it is noted as running); else how long
    /// until it may, [`PACE`] after its last run.
    pub(super) fn paced(
        &self,
        owner: &Owner,
        now: std::time::Instant,
    ) -> Option<std::time::Duration> {
        pace(&mut self.pacer.lock().expect("not poisoned"), owner, now)
    }

    /// Notes that `owner`'s plan, begun at `started`, is made: its next run waits in proportion
    /// to what this one took ([`PLAN_SHARE`]).
    pub(super) fn planned(&self, owner: &Owner, started: std::time::Instant) {
        let now = std::time::Instant::now();
        planned(
            &mut self.pacer.lock().expect("not poisoned"),
            owner,
            started,
            now,
        );
    }

    /// The Devices of `ns`, by name.
    pub(super) fn devices_in(&self, ns: &str) -> Vec<Arc<Device>> {
        let mut devices = self
            .caches
            .devices
            .state_filter(|d| d.metadata.namespace.as_deref() == Some(ns));
        devices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        devices
    }

    pub(super) fn networks_in(&self, ns: &str) -> Vec<Arc<DeviceNetwork>> {
        self.caches
            .networks
            .state_filter(|n| n.metadata.namespace.as_deref() == Some(ns))
    }

    pub(super) fn apps_in(&self, ns: &str) -> Vec<Arc<Application>> {
        self.caches
            .applications
            .state_filter(|a| a.metadata.namespace.as_deref() == Some(ns))
    }

    /// What placement in `ns` depends on besides devices: `networks` by name, and the claims
    /// bound to a device.
    pub(super) fn context<'a>(&self, ns: &str, networks: &'a [Arc<DeviceNetwork>]) -> Context<'a> {
        let mut context = Context::default();
        for n in networks {
            context.networks.insert(n.name_any(), n);
        }
        if let Some(models) = self
            .caches
            .models
            .get(&ObjectRef::new(eve_model::device_model::MODELS).within(ns))
        {
            let data = models.data.clone().unwrap_or_default();
            for name in data.keys() {
                if let Ok(entries) = eve_model::device_model::read(&data, name) {
                    context.adapters.insert(
                        name.clone(),
                        eve_model::device_model::groups(&entries)
                            .into_keys()
                            .collect(),
                    );
                }
            }
        }
        for c in self.caches.claims.state() {
            if c.metadata.namespace.as_deref() == Some(ns)
                && let Some(device) = c.annotations().get(annotations::BOUND_DEVICE)
            {
                context.bound_claims.insert(c.name_any(), device.clone());
            }
        }
        context
    }

    /// Applications per device in `ns`.
    pub(super) fn load_in(&self, ns: &str) -> HashMap<String, u32> {
        let mut total = HashMap::new();
        for a in self.apps_in(ns) {
            if let Some(d) = &a.spec.node_name {
                *total.entry(d.clone()).or_default() += 1;
            }
        }
        total
    }

    /// The Application `name` of `ns`, as the cache holds it.
    pub(super) fn app(&self, ns: &str, name: &str) -> Option<Arc<Application>> {
        self.caches
            .applications
            .get(&ObjectRef::new(name).within(ns))
    }

    /// How the cache shows the Application `name` of `ns`.
    pub(super) fn observed(&self, ns: &str, name: &str) -> Observed {
        self.app(ns, name)
            .map_or(Observed::Gone, |a| super::observed(&a))
    }

    /// Writes `status` as `K` `ns`/`name`'s status (a merge patch); a `K` that is gone is left.
    pub(super) async fn write_status<K, S>(
        &self,
        ns: &str,
        name: &str,
        status: &S,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: Serialize + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        match api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(StatusPatch { status }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn an_owner_is_reconciled_at_most_once_a_pace_and_owners_apart() {
        let mut last = std::collections::HashMap::new();
        let a = Owner::Namespace(ObjectRef::new("a"));
        let b = Owner::Namespace(ObjectRef::new("b"));
        let t0 = Instant::now();
        assert_eq!(pace(&mut last, &a, t0), None, "the first run goes");
        assert_eq!(pace(&mut last, &b, t0), None, "another owner too");
        let soon = t0 + Duration::from_millis(50);
        assert_eq!(
            pace(&mut last, &a, soon),
            Some(PACE - Duration::from_millis(50))
        );
        assert_eq!(pace(&mut last, &a, t0 + PACE), None, "a pace later it runs");
        // Owners gone long ago are forgotten: the map stays bounded.
        let later = t0 + 2 * PACE;
        for n in 0..5 * PACED_KEPT {
            let owner = Owner::Namespace(ObjectRef::new(&format!("gone-{n}")));
            pace(&mut last, &owner, later + PACE * n as u32);
        }
        assert!(last.len() <= PACED_KEPT, "{}", last.len());
    }

    #[test]
    fn a_costly_plan_puts_the_next_off_in_proportion() {
        let mut next = std::collections::HashMap::new();
        let a = Owner::Namespace(ObjectRef::new("a"));
        let t0 = Instant::now();
        assert_eq!(pace(&mut next, &a, t0), None);
        // A quick plan: the pace as before.
        planned(&mut next, &a, t0, t0 + Duration::from_millis(10));
        assert_eq!(pace(&mut next, &a, t0 + PACE), None);
        // A plan of 300 ms (a namespace of 100,000 devices): the next 1.5 s after it began.
        let t1 = t0 + PACE;
        planned(&mut next, &a, t1, t1 + Duration::from_millis(300));
        let later = t1 + Duration::from_millis(400);
        assert_eq!(
            pace(&mut next, &a, later),
            Some(Duration::from_millis(1100))
        );
        assert_eq!(pace(&mut next, &a, t1 + Duration::from_millis(1500)), None);
        // A plan slowed to 4 s by a busy machine puts the next off 5 s, not 20.
        let t2 = t1 + Duration::from_millis(1500);
        planned(&mut next, &a, t2, t2 + Duration::from_secs(4));
        assert_eq!(
            pace(&mut next, &a, t2 + Duration::from_secs(4)),
            Some(Duration::from_secs(1))
        );
    }
}
