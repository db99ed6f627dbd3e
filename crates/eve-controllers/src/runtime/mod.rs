//! The controller runtime: the reconcilers of deployments, daemon sets, namespaces (standalone
//! applications' references and binding, claims) and devices, run by kube-runtime's
//! [`applier`](kube::runtime::applier) over the shared informers' caches. The same code runs in
//! `adamant serve` (over the in-process client) and in `adamant controller` (over a kubeconfig).
//!
//! Wiring: each reconciled kind has an applier whose queue is a channel of `ObjectRef`s; the
//! informers' handlers (this module) push into them the objects an event concerns: a Device
//! change its Device, and, when what placement reads of it changed (not its status), the
//! deployments, daemon sets and namespace of its namespace (for its unbound applications); an
//! Application its controlling deployment or daemon set, and its
//! namespace (for that application); a DeviceNetwork the deployments, daemon sets and namespace
//! of its namespace; a claim or an Image its namespace; everything after each re-list. What a
//! namespace's reconcile looks at is noted beside the queue ([`work`]), so that it goes over the
//! applications that changed, not over every application of the namespace each time. The
//! applier de-duplicates, runs a bounded number of reconciles at once (never two of one
//! object), and requeues failures with exponential back-off ([`applier`]). Application writes
//! are followed by [`expectations`], not by waiting on the cache.
//!
//! The namespace reconciler's objects come from a cache of its own ([`NamespacesSeen`]): a
//! Namespace (name only) for every namespace an informer has shown an object in, added before
//! the object's event is pushed. Watching Namespaces instead would add a watch, and, in cluster
//! mode, the right to list and watch Namespaces to the controller's least-privilege role.

pub mod applier;
mod binding;
mod claims;
mod context;
mod daemon_set;
mod deployment;
mod device;
mod expectations;
mod metrics;
mod namespace;
mod owned;
mod references;
mod work;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use eve_model::{Application, ApplicationDaemonSet, ApplicationDeployment, Device, DeviceNetwork};
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::admission::{DeviceKeys, DeviceLookup};
use crate::events::Events;
use crate::informers::{Informers, Watched};
use context::{Ctx, Owner};
use expectations::{Expectations, Observed};

pub use metrics::Metrics;
pub use owned::daemon_app_name;

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A cache never filled.
    #[error("the {0} cache could not be filled: {1}")]
    Cache(&'static str, String),
}

/// The controllers' name on their events.
pub const CONTROLLER: &str = "eve.lfedge.org/controllers";

/// How long a reconciler waits for the cache to show its Application writes before acting
/// regardless.
const EXPECTATION_TTL: Duration = Duration::from_secs(10);

/// The caches.
#[derive(Clone)]
pub struct Caches {
    /// Devices.
    pub devices: Store<Device>,
    /// Devices by the keys that must be unique among them.
    pub device_keys: Arc<DeviceKeys>,
    networks: Store<DeviceNetwork>,
    applications: Store<Application>,
    deployments: Store<ApplicationDeployment>,
    daemon_sets: Store<ApplicationDaemonSet>,
    claims: Store<PersistentVolumeClaim>,
    images: Store<eve_model::Image>,
    models: Store<ConfigMap>,
}

impl Caches {
    /// The device cache with its index, for admission.
    pub fn device_lookup(&self) -> DeviceLookup {
        DeviceLookup {
            store: self.devices.clone(),
            keys: self.device_keys.clone(),
        }
    }

    /// The caches admission may read whether a named object exists in.
    pub fn cached(&self) -> crate::admission::Cached {
        crate::admission::Cached::default()
            .with(self.devices.clone())
            .with(self.images.clone())
            .with(self.networks.clone())
            .with(self.claims.clone())
    }
}

/// The namespaces the informers have shown objects in, as a cache of Namespaces (name only)
/// for the namespace reconciler's applier.
struct NamespacesSeen {
    store: Store<Namespace>,
    writer: Mutex<reflector::store::Writer<Namespace>>,
}

impl NamespacesSeen {
    fn new() -> NamespacesSeen {
        let (store, mut writer) = reflector::store::<Namespace>();
        // Filled from the start: it holds what the other caches show.
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        NamespacesSeen {
            store,
            writer: Mutex::new(writer),
        }
    }

    /// `namespace`'s reference, recorded as seen.
    fn note(&self, namespace: &str) -> ObjectRef<Namespace> {
        let key = ObjectRef::new(namespace);
        if self.store.get(&key).is_none() {
            let mut object = Namespace::default();
            object.metadata.name = Some(namespace.to_owned());
            self.writer
                .lock()
                .expect("not poisoned")
                .apply_watcher_event(&watcher::Event::Apply(object));
        }
        key
    }
}

/// The appliers' queues, as the handlers feed them.
struct Queues {
    deployments: mpsc::UnboundedSender<ObjectRef<ApplicationDeployment>>,
    daemon_sets: mpsc::UnboundedSender<ObjectRef<ApplicationDaemonSet>>,
    namespaces: mpsc::UnboundedSender<ObjectRef<Namespace>>,
    devices: mpsc::UnboundedSender<ObjectRef<Device>>,
}

/// Their receiving ends, until the appliers take them.
struct Receivers {
    deployments: mpsc::UnboundedReceiver<ObjectRef<ApplicationDeployment>>,
    daemon_sets: mpsc::UnboundedReceiver<ObjectRef<ApplicationDaemonSet>>,
    namespaces: mpsc::UnboundedReceiver<ObjectRef<Namespace>>,
    devices: mpsc::UnboundedReceiver<ObjectRef<Device>>,
}

fn queues() -> (Queues, Receivers) {
    let (deployments, deployments_rx) = mpsc::unbounded();
    let (daemon_sets, daemon_sets_rx) = mpsc::unbounded();
    let (namespaces, namespaces_rx) = mpsc::unbounded();
    let (devices, devices_rx) = mpsc::unbounded();
    (
        Queues {
            deployments,
            daemon_sets,
            namespaces,
            devices,
        },
        Receivers {
            deployments: deployments_rx,
            daemon_sets: daemon_sets_rx,
            namespaces: namespaces_rx,
            devices: devices_rx,
        },
    )
}

/// What the handlers need: the queues, the namespaces seen, the expectations, and the caches
/// (to queue everything after a re-list).
struct Triggers {
    queues: Queues,
    namespaces: NamespacesSeen,
    expectations: Arc<Expectations<Owner>>,
    work: Arc<work::NamespaceWork>,
    caches: Caches,
}

impl Triggers {
    // A send fails only once the applier has stopped; nothing is left to tell then.
    fn deployment(&self, ns: &str, name: &str) {
        let _ = self
            .queues
            .deployments
            .unbounded_send(ObjectRef::new(name).within(ns));
    }

    fn daemon_set(&self, ns: &str, name: &str) {
        let _ = self
            .queues
            .daemon_sets
            .unbounded_send(ObjectRef::new(name).within(ns));
    }

    fn namespace(&self, ns: &str) {
        let _ = self
            .queues
            .namespaces
            .unbounded_send(self.namespaces.note(ns));
    }

    /// `ns`'s reconcile, to look at every application of it.
    fn whole_namespace(&self, ns: &str) {
        self.work.all(ns);
        self.namespace(ns);
    }

    fn device(&self, ns: &str, name: &str) {
        let _ = self
            .queues
            .devices
            .unbounded_send(ObjectRef::new(name).within(ns));
    }

    fn owner(&self, owner: Owner) {
        match owner {
            Owner::Deployment(r) => {
                let _ = self.queues.deployments.unbounded_send(r);
            }
            Owner::DaemonSet(r) => {
                let _ = self.queues.daemon_sets.unbounded_send(r);
            }
            Owner::Namespace(r) => {
                let _ = self.queues.namespaces.unbounded_send(r);
            }
        }
    }

    /// Who reconciles `app`: its controlling deployment or daemon set, or else its namespace.
    fn owner_of(&self, app: &Application) -> Owner {
        let ns = app.namespace().unwrap_or_default();
        match context::controller_of(app) {
            Some(o) if o.kind == "ApplicationDeployment" => {
                Owner::Deployment(ObjectRef::new(&o.name).within(&ns))
            }
            Some(o) if o.kind == "ApplicationDaemonSet" => {
                Owner::DaemonSet(ObjectRef::new(&o.name).within(&ns))
            }
            _ => Owner::Namespace(self.namespaces.note(&ns)),
        }
    }

    /// Every deployment and daemon set of `ns`, and `ns` itself: all its applications, or
    /// (`unbound_only`) those not bound yet.
    fn all_in(&self, ns: &str, unbound_only: bool) {
        let caches = &self.caches;
        for d in caches.deployments.state() {
            if d.metadata.namespace.as_deref() == Some(ns) {
                self.deployment(ns, &d.name_any());
            }
        }
        for d in caches.daemon_sets.state() {
            if d.metadata.namespace.as_deref() == Some(ns) {
                self.daemon_set(ns, &d.name_any());
            }
        }
        if unbound_only {
            self.work.unbound(ns);
            self.namespace(ns);
        } else {
            self.whole_namespace(ns);
        }
    }

    /// Everything the caches hold.
    fn everything(&self) {
        let caches = &self.caches;
        let mut namespaces = HashSet::new();
        for d in caches.deployments.state() {
            self.deployment(&d.namespace().unwrap_or_default(), &d.name_any());
        }
        for d in caches.daemon_sets.state() {
            self.daemon_set(&d.namespace().unwrap_or_default(), &d.name_any());
        }
        for d in caches.devices.state() {
            let ns = d.namespace().unwrap_or_default();
            self.device(&ns, &d.name_any());
            namespaces.insert(ns);
        }
        for a in caches.applications.state() {
            let ns = a.namespace().unwrap_or_default();
            if let owner @ (Owner::Deployment(_) | Owner::DaemonSet(_)) = self.owner_of(&a) {
                self.owner(owner);
            }
            namespaces.insert(ns);
        }
        for ns in namespaces {
            self.whole_namespace(&ns);
        }
    }
}

/// What a handler is told of an event.
enum Change<'a, K> {
    /// `K` was created or changed.
    Applied(&'a K),
    /// `K` was deleted.
    Deleted(&'a K),
    /// The kind was listed again (or for the first time).
    Relisted,
}

impl<'a, K> Change<'a, K> {
    /// The object changed, if one did.
    fn object(&self) -> Option<&'a K> {
        match self {
            Change::Applied(k) | Change::Deleted(k) => Some(k),
            Change::Relisted => None,
        }
    }
}

/// Registers with `informers` a handler of `K`'s events that, for events passing `filter`
/// (which sees all, the initial list's included), calls `on_change`.
fn handle<K, P, F>(
    informers: &Informers,
    slot: &Arc<OnceLock<Arc<Triggers>>>,
    filter: P,
    on_change: F,
) -> Store<K>
where
    K: Watched,
    P: FnMut(&watcher::Event<K>) -> bool + Send + 'static,
    F: Fn(&Triggers, Change<'_, K>) + Send + Sync + 'static,
{
    handle_with(
        informers,
        watcher::Config::default(),
        slot,
        filter,
        on_change,
    )
}

/// [`handle`], of the objects `config` selects.
fn handle_with<K, P, F>(
    informers: &Informers,
    config: watcher::Config,
    slot: &Arc<OnceLock<Arc<Triggers>>>,
    mut filter: P,
    on_change: F,
) -> Store<K>
where
    K: Watched,
    P: FnMut(&watcher::Event<K>) -> bool + Send + 'static,
    F: Fn(&Triggers, Change<'_, K>) + Send + Sync + 'static,
{
    let slot = slot.clone();
    informers.watch_with(config, move |event: &watcher::Event<K>| {
        if !filter(event) {
            return;
        }
        let Some(triggers) = slot.get() else { return };
        match event {
            watcher::Event::Apply(k) => on_change(triggers, Change::Applied(k)),
            watcher::Event::Delete(k) => on_change(triggers, Change::Deleted(k)),
            watcher::Event::InitDone => on_change(triggers, Change::Relisted),
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    })
}

/// Every event passes.
fn all<K>(_: &watcher::Event<K>) -> bool {
    true
}

/// The namespace of a changed object (everything after a re-list).
fn its_namespace<K: Resource>(triggers: &Triggers, change: Change<'_, K>) {
    match change.object() {
        Some(o) => triggers.whole_namespace(o.meta().namespace.as_deref().unwrap_or_default()),
        None => triggers.everything(),
    }
}

/// A digest of what the reconcilers read of an Application: who it is and its spec
/// (generation), labels, annotations, owners, deletion, binding, and of its status only its
/// state and when it last turned RUNNING (availability).
fn owner_view(app: &Application) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let meta = &app.metadata;
    (&meta.uid, meta.generation, &meta.labels, &meta.annotations).hash(&mut h);
    for o in meta.owner_references.iter().flatten() {
        (&o.uid, o.controller).hash(&mut h);
    }
    meta.deletion_timestamp.is_some().hash(&mut h);
    app.spec.node_name.hash(&mut h);
    if let Some(status) = &app.status {
        status.state.hash(&mut h);
        status
            .statuses
            .iter()
            .rev()
            .find(|s| s.state == "RUNNING")
            .map(|s| s.timestamp.0.as_second())
            .hash(&mut h);
    }
    h.finish()
}

/// How the cache shows an Application, for expectations.
fn observed(app: &Application) -> Observed {
    if app.metadata.deletion_timestamp.is_some() {
        Observed::Gone
    } else if app.spec.node_name.as_deref().is_some_and(|d| !d.is_empty()) {
        Observed::Bound
    } else {
        Observed::Unbound
    }
}

/// The controllers registered with the informers, to run once they start.
pub struct Registered {
    ctx: Arc<Ctx>,
    triggers: Arc<Triggers>,
    receivers: Receivers,
    stop: watch::Receiver<bool>,
}

/// Starts the controllers on `client`, with informers of their own, and runs them until `stop`
/// turns true. Returns the caches (admission uses the device cache) once they are filled.
pub async fn start(client: Client, stop: watch::Receiver<bool>) -> Result<Caches, RuntimeError> {
    let informers = Informers::new(client, stop.clone());
    let registered = register(&informers, stop);
    informers.start();
    registered.run().await
}

/// Registers the controllers' caches and handlers with `informers`; [`Registered::run`] runs
/// them once the informers have started.
pub fn register(informers: &Informers, stop: watch::Receiver<bool>) -> Registered {
    let client = informers.client().clone();
    let slot: Arc<OnceLock<Arc<Triggers>>> = Arc::default();
    let device_keys = Arc::new(DeviceKeys::default());
    let keys = device_keys.clone();
    let fingerprints = Mutex::new(HashMap::new());
    // Whether the event the filter just passed changed what placement reads (the handler runs
    // the filter, then `on_change`, for one event at a time).
    let placement_changed = Arc::new(AtomicBool::new(true));
    let placement_seen = placement_changed.clone();
    let devices = handle::<Device, _, _>(
        informers,
        &slot,
        move |event| {
            // Deleted Devices' keys are dropped by the index's own check on lookup.
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event {
                keys.observe(d);
            }
            // Heartbeats change only a Device's status: the device reconciler (which reads
            // the UUID too) need not hear of them; scheduling (labels, annotations, deletion)
            // need not hear of any status write, a UUID's or a certificate's either.
            let mut seen = fingerprints.lock().expect("not poisoned");
            match event {
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                    let print = (d.fingerprint(), d.placement_fingerprint());
                    let before = seen.insert(crate::informers::key(d), print);
                    placement_changed
                        .store(before.is_none_or(|b| b.1 != print.1), Ordering::Relaxed);
                    before != Some(print)
                }
                watcher::Event::Delete(d) => {
                    seen.remove(&crate::informers::key(d));
                    placement_changed.store(true, Ordering::Relaxed);
                    true
                }
                _ => true,
            }
        },
        move |t, change| match change.object() {
            Some(d) => {
                let ns = d.namespace().unwrap_or_default();
                t.device(&ns, &d.name_any());
                // What placement reads of a Device changed: daemon sets and deployments plan
                // again, and an unbound application may fit.
                if placement_seen.load(Ordering::Relaxed) {
                    t.all_in(&ns, true);
                }
            }
            None => t.everything(),
        },
    );
    let networks =
        handle::<DeviceNetwork, _, _>(informers, &slot, all, |t, change| match change.object() {
            Some(n) => t.all_in(&n.namespace().unwrap_or_default(), false),
            None => t.everything(),
        });
    // The reconcilers' own status writes (conditions) and a device's reports that change
    // nothing they read need not wake them: an Application's owner and namespace hear of it
    // only when what they read of it changes ([`owner_view`]).
    let mut views = HashMap::new();
    let app_changed = move |event: &watcher::Event<Application>| match event {
        watcher::Event::Apply(a) | watcher::Event::InitApply(a) => {
            let view = owner_view(a);
            views.insert(crate::informers::key(a), view) != Some(view)
        }
        watcher::Event::Delete(a) => {
            views.remove(&crate::informers::key(a));
            true
        }
        _ => true,
    };
    let applications = handle::<Application, _, _>(informers, &slot, app_changed, |t, change| {
        let (app, seen) = match change {
            Change::Applied(app) => (app, observed(app)),
            Change::Deleted(app) => (app, Observed::Gone),
            Change::Relisted => return t.everything(),
        };
        let owner = t.owner_of(app);
        let (ns, name) = (app.namespace().unwrap_or_default(), app.name_any());
        t.expectations.observe(&owner, &name, seen);
        // Its namespace looks at it (references, binding, claims); an owner also plans.
        t.work.app(&ns, &name);
        if !matches!(owner, Owner::Namespace(_)) {
            t.namespace(&ns);
        }
        t.owner(owner);
    });
    let deployments = handle::<ApplicationDeployment, _, _>(informers, &slot, all, |t, change| {
        if let Change::Deleted(d) = &change {
            t.expectations
                .forget(&Owner::Deployment(ObjectRef::from_obj(*d)));
        }
        match change.object() {
            Some(d) => t.deployment(&d.namespace().unwrap_or_default(), &d.name_any()),
            None => t.everything(),
        }
    });
    let daemon_sets = handle::<ApplicationDaemonSet, _, _>(informers, &slot, all, |t, change| {
        if let Change::Deleted(d) = &change {
            t.expectations
                .forget(&Owner::DaemonSet(ObjectRef::from_obj(*d)));
        }
        match change.object() {
            Some(d) => t.daemon_set(&d.namespace().unwrap_or_default(), &d.name_any()),
            None => t.everything(),
        }
    });
    let claims = handle::<PersistentVolumeClaim, _, _>(informers, &slot, all, its_namespace);
    let images = handle::<eve_model::Image, _, _>(informers, &slot, all, its_namespace);
    // Device models: what adapters a device has for applications.
    let models = handle_with::<ConfigMap, _, _>(
        informers,
        watcher::Config::default().fields(&format!(
            "metadata.name={}",
            eve_model::device_model::MODELS
        )),
        &slot,
        all,
        its_namespace,
    );
    let caches = Caches {
        images,
        models,
        devices,
        device_keys,
        networks,
        applications,
        deployments,
        daemon_sets,
        claims,
    };
    let expectations = Arc::new(Expectations::new(EXPECTATION_TTL));
    let work = Arc::new(work::NamespaceWork::default());
    let (queues, receivers) = queues();
    let triggers = Arc::new(Triggers {
        queues,
        namespaces: NamespacesSeen::new(),
        expectations: expectations.clone(),
        work: work.clone(),
        caches: caches.clone(),
    });
    let _ = slot.set(triggers.clone());
    let ctx = Arc::new(Ctx {
        events: Events::start(client.clone(), CONTROLLER, stop.clone()),
        client,
        caches,
        expectations,
        work,
        metrics: Metrics::default(),
        pacer: Default::default(),
    });
    Registered {
        ctx,
        triggers,
        receivers,
        stop,
    }
}

impl Registered {
    /// The controllers' metrics.
    pub fn metrics(&self) -> Metrics {
        self.ctx.metrics.clone()
    }

    /// Waits for the caches, then runs the controllers until `stop` turns true; returns the
    /// caches.
    pub async fn run(self) -> Result<Caches, RuntimeError> {
        let Registered {
            ctx,
            triggers,
            receivers,
            stop,
        } = self;
        let caches = ctx.caches.clone();
        let ready = |name: &'static str, r: Result<(), reflector::store::WriterDropped>| {
            r.map_err(|e| RuntimeError::Cache(name, e.to_string()))
        };
        ready("device", caches.devices.wait_until_ready().await)?;
        ready("device network", caches.networks.wait_until_ready().await)?;
        ready("application", caches.applications.wait_until_ready().await)?;
        ready("deployment", caches.deployments.wait_until_ready().await)?;
        ready("daemon set", caches.daemon_sets.wait_until_ready().await)?;
        ready("claim", caches.claims.wait_until_ready().await)?;
        ready("image", caches.images.wait_until_ready().await)?;
        ready("device model", caches.models.wait_until_ready().await)?;
        applier::spawn(
            "deployment",
            caches.deployments.clone(),
            receivers.deployments,
            ctx.clone(),
            applier::CONCURRENCY,
            deployment::reconcile,
            stop.clone(),
        );
        applier::spawn(
            "daemon set",
            caches.daemon_sets.clone(),
            receivers.daemon_sets,
            ctx.clone(),
            applier::CONCURRENCY,
            daemon_set::reconcile,
            stop.clone(),
        );
        applier::spawn(
            "namespace",
            triggers.namespaces.store.clone(),
            receivers.namespaces,
            ctx.clone(),
            applier::CONCURRENCY,
            namespace::reconcile,
            stop.clone(),
        );
        applier::spawn(
            "device",
            caches.devices.clone(),
            receivers.devices,
            ctx.clone(),
            applier::CONCURRENCY,
            device::reconcile,
            stop,
        );
        triggers.everything();
        tracing::info!("EVE controllers are running");
        Ok(caches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(value: serde_json::Value) -> Application {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn owners_hear_of_what_they_read_of_an_application_not_of_its_conditions() {
        let base = serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1",
            "kind": "Application",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"state": "BOOTING"},
        });
        let view = owner_view(&app(base.clone()));
        let with = |path: &[&str], value: serde_json::Value| {
            let mut v = base.clone();
            let mut at = &mut v;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = value;
            owner_view(&app(v))
        };
        let condition = serde_json::json!([{"type": "Scheduled", "status": "True",
            "reason": "Bound", "message": "", "lastTransitionTime": "2026-11-30T00:00:00Z"}]);
        assert_eq!(
            with(&["status", "conditions"], condition),
            view,
            "its own conditions"
        );
        assert_ne!(
            with(&["status", "state"], "RUNNING".into()),
            view,
            "its state"
        );
        assert_ne!(with(&["spec", "nodeName"], "d".into()), view, "its binding");
        assert_ne!(
            with(&["metadata", "generation"], 2.into()),
            view,
            "its spec"
        );
        assert_ne!(
            with(&["metadata", "labels"], serde_json::json!({"k": "v"})),
            view
        );
        assert_ne!(
            with(
                &["metadata", "deletionTimestamp"],
                "2026-11-30T00:00:00Z".into()
            ),
            view
        );
    }
}
