//! The controller runtime: reflectors (watch-fed caches) of the kinds scheduling reads, a
//! de-duplicating work queue, and the reconcilers of deployments, daemon sets, standalone
//! applications, claims and devices. The same code runs in `adamant serve` (over the
//! in-process client) and in `adamant controller` (over a kubeconfig).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::informers::Informers;
use eve_model::{
    Application, ApplicationDaemonSet, ApplicationDeployment, ApplicationSpec, ApplicationTemplate,
    Device, DeviceNetwork, annotations,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::admission::{DeviceKeys, DeviceLookup};
use crate::events::{Events, Record, reference};
use crate::scheduling::{self, Context, Load, Member, Rollout};

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A cache never filled.
    #[error("the {0} cache could not be filled: {1}")]
    Cache(&'static str, String),
}

/// What needs reconciling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Deployment(String, String),
    DaemonSet(String, String),
    /// Standalone applications and claims of a namespace.
    Namespace(String),
    Device(String, String),
}

#[derive(Default)]
struct Queue {
    order: Mutex<(VecDeque<Key>, HashSet<Key>)>,
    notify: Notify,
}

impl Queue {
    fn push(&self, key: Key) {
        let mut q = self.order.lock().expect("not poisoned");
        if q.1.insert(key.clone()) {
            q.0.push_back(key);
            self.notify.notify_one();
        }
    }

    async fn pop(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.order.lock().expect("not poisoned");
                if let Some(key) = q.0.pop_front() {
                    q.1.remove(&key);
                    return key;
                }
            }
            notified.await;
        }
    }
}

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
}

struct Runtime {
    client: Client,
    caches: Caches,
    queue: Queue,
    events: Events,
}

/// The controllers' name on their events.
pub const CONTROLLER: &str = "eve.lfedge.org/controllers";

/// Registers with `informers` a handler of `K`'s events that tells the controllers.
fn spawn_reflector<K, F>(
    informers: &Informers,
    queue: Arc<Mutex<Option<Arc<Runtime>>>>,
    on_event: F,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: Fn(&Runtime, Option<&K>) + Send + Sync + 'static,
{
    spawn_filtered_reflector(informers, queue, |_| true, on_event)
}

/// As [`spawn_reflector`], with events first passing `filter`, which sees every event (also
/// those of the initial list) and says whether the controllers should hear of it.
fn spawn_filtered_reflector<K, P, F>(
    informers: &Informers,
    queue: Arc<Mutex<Option<Arc<Runtime>>>>,
    mut filter: P,
    on_event: F,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    P: FnMut(&watcher::Event<K>) -> bool + Send + 'static,
    F: Fn(&Runtime, Option<&K>) + Send + Sync + 'static,
{
    informers.watch(move |event: &watcher::Event<K>| {
        if !filter(event) {
            return;
        }
        let runtime = queue.lock().expect("not poisoned").clone();
        let Some(runtime) = runtime else { return };
        match event {
            watcher::Event::Apply(k) | watcher::Event::Delete(k) => on_event(&runtime, Some(k)),
            watcher::Event::InitDone => on_event(&runtime, None),
            _ => {}
        }
    })
}

impl Caches {
    /// The device cache with its index, for admission.
    pub fn device_lookup(&self) -> DeviceLookup {
        DeviceLookup {
            store: self.devices.clone(),
            keys: self.device_keys.clone(),
        }
    }
}

/// Reconciles the namespace of a changed object (everything after a re-list).
fn requeue_namespace<K: Resource>(rt: &Runtime, object: Option<&K>) {
    match object {
        Some(o) => rt.queue.push(Key::Namespace(
            o.meta().namespace.clone().unwrap_or_default(),
        )),
        None => rt.enqueue_everything(),
    }
}

/// Whether `owner` (by UID) is `app`'s controller.
fn controlled_by<K: Resource>(app: &Application, owner: &K) -> bool {
    controller_of(app).is_some_and(|o| Some(&o.uid) == owner.meta().uid.as_ref())
}

fn controller_of(app: &Application) -> Option<&OwnerReference> {
    app.owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
}

/// The controllers registered with the informers, to run once they start.
pub struct Registered {
    runtime: Arc<Runtime>,
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
    let slot: Arc<Mutex<Option<Arc<Runtime>>>> = Arc::new(Mutex::new(None));
    let all_in = |rt: &Runtime, ns: &str| {
        for d in rt.caches.deployments.state() {
            if d.namespace().as_deref() == Some(ns) {
                rt.queue.push(Key::Deployment(ns.into(), d.name_any()));
            }
        }
        for d in rt.caches.daemon_sets.state() {
            if d.namespace().as_deref() == Some(ns) {
                rt.queue.push(Key::DaemonSet(ns.into(), d.name_any()));
            }
        }
        rt.queue.push(Key::Namespace(ns.into()));
    };
    let device_keys = Arc::new(DeviceKeys::default());
    let keys = device_keys.clone();
    let fingerprints = Mutex::new(HashMap::new());
    let devices = spawn_filtered_reflector::<Device, _, _>(
        informers,
        slot.clone(),
        move |event| {
            // Deleted Devices' keys are dropped by the index's own check on lookup.
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event {
                keys.observe(d);
            }
            // Heartbeats change only a Device's status: scheduling and the device reconciler
            // (which read labels, annotations, deletion and the UUID) need not hear of them.
            let mut seen = fingerprints.lock().expect("not poisoned");
            match event {
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                    let print = d.fingerprint();
                    seen.insert(ObjectRef::from_obj(d), print) != Some(print)
                }
                watcher::Event::Delete(d) => {
                    seen.remove(&ObjectRef::from_obj(d));
                    true
                }
                _ => true,
            }
        },
        move |rt, d| match d {
            Some(d) => {
                let ns = d.namespace().unwrap_or_default();
                rt.queue.push(Key::Device(ns.clone(), d.name_any()));
                all_in(rt, &ns);
            }
            None => rt.enqueue_everything(),
        },
    );
    let networks =
        spawn_reflector::<DeviceNetwork, _>(informers, slot.clone(), move |rt, n| match n {
            Some(n) => all_in(rt, &n.namespace().unwrap_or_default()),
            None => rt.enqueue_everything(),
        });
    let applications =
        spawn_reflector::<Application, _>(informers, slot.clone(), |rt, app| match app {
            Some(app) => {
                let ns = app.namespace().unwrap_or_default();
                match controller_of(app) {
                    Some(o) if o.kind == "ApplicationDeployment" => {
                        rt.queue.push(Key::Deployment(ns, o.name.clone()))
                    }
                    Some(o) if o.kind == "ApplicationDaemonSet" => {
                        rt.queue.push(Key::DaemonSet(ns, o.name.clone()))
                    }
                    _ => rt.queue.push(Key::Namespace(ns)),
                }
            }
            None => rt.enqueue_everything(),
        });
    let deployments =
        spawn_reflector::<ApplicationDeployment, _>(informers, slot.clone(), |rt, d| match d {
            Some(d) => rt.queue.push(Key::Deployment(
                d.namespace().unwrap_or_default(),
                d.name_any(),
            )),
            None => rt.enqueue_everything(),
        });
    let daemon_sets =
        spawn_reflector::<ApplicationDaemonSet, _>(informers, slot.clone(), |rt, d| match d {
            Some(d) => rt.queue.push(Key::DaemonSet(
                d.namespace().unwrap_or_default(),
                d.name_any(),
            )),
            None => rt.enqueue_everything(),
        });
    let claims =
        spawn_reflector::<PersistentVolumeClaim, _>(informers, slot.clone(), requeue_namespace);
    let images = spawn_reflector::<eve_model::Image, _>(informers, slot.clone(), requeue_namespace);
    let caches = Caches {
        images,
        devices,
        device_keys,
        networks,
        applications,
        deployments,
        daemon_sets,
        claims,
    };
    let runtime = Arc::new(Runtime {
        events: Events::start(client.clone(), CONTROLLER, stop.clone()),
        client,
        caches: caches.clone(),
        queue: Queue::default(),
    });
    *slot.lock().expect("not poisoned") = Some(runtime.clone());
    Registered { runtime, stop }
}

impl Registered {
    /// Waits for the caches, then runs the controllers until `stop` turns true; returns the
    /// caches.
    pub async fn run(self) -> Result<Caches, RuntimeError> {
        let Registered { runtime, stop } = self;
        let caches = runtime.caches.clone();
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
        runtime.enqueue_everything();
        let worker = runtime.clone();
        let mut stop_worker = stop;
        tokio::spawn(async move {
            loop {
                let key = tokio::select! {
                    key = worker.queue.pop() => key,
                    _ = stop_worker.changed() => return,
                };
                if let Err(e) = worker.reconcile(&key).await {
                    tracing::warn!(?key, error = %e, "reconcile failed; retrying in a second");
                    let again = worker.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        again.queue.push(key);
                    });
                }
            }
        });
        tracing::info!("EVE controllers are running");
        Ok(caches)
    }
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn available(app: &Application, min_ready_seconds: i32) -> bool {
    let Some(status) = &app.status else {
        return false;
    };
    if status.state.as_deref() != Some("RUNNING") || app.spec.node_name.is_none() {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = status
        .statuses
        .iter()
        .rev()
        .find(|s| s.state == "RUNNING")
        .map(|s| s.timestamp.0);
    since.is_some_and(|t| {
        jiff::Timestamp::now().duration_since(t).as_secs() >= i64::from(min_ready_seconds)
    })
}

impl Runtime {
    fn enqueue_everything(&self) {
        let mut namespaces = HashSet::new();
        for d in self.caches.deployments.state() {
            self.queue.push(Key::Deployment(
                d.namespace().unwrap_or_default(),
                d.name_any(),
            ));
        }
        for d in self.caches.daemon_sets.state() {
            self.queue.push(Key::DaemonSet(
                d.namespace().unwrap_or_default(),
                d.name_any(),
            ));
        }
        for d in self.caches.devices.state() {
            let ns = d.namespace().unwrap_or_default();
            self.queue.push(Key::Device(ns.clone(), d.name_any()));
            namespaces.insert(ns);
        }
        for a in self.caches.applications.state() {
            namespaces.insert(a.namespace().unwrap_or_default());
            if let Some(o) = controller_of(&a) {
                let ns = a.namespace().unwrap_or_default();
                match o.kind.as_str() {
                    "ApplicationDeployment" => self.queue.push(Key::Deployment(ns, o.name.clone())),
                    "ApplicationDaemonSet" => self.queue.push(Key::DaemonSet(ns, o.name.clone())),
                    _ => {}
                }
            }
        }
        for ns in namespaces {
            self.queue.push(Key::Namespace(ns));
        }
    }

    async fn reconcile(&self, key: &Key) -> Result<(), kube::Error> {
        match key {
            Key::Deployment(ns, name) => self.deployment(ns, name).await,
            Key::DaemonSet(ns, name) => self.daemon_set(ns, name).await,
            Key::Namespace(ns) => {
                self.references(ns).await?;
                self.schedule(ns).await?;
                self.bind_claims(ns).await
            }
            Key::Device(ns, name) => self.device(ns, name).await,
        }
    }

    fn devices_in(&self, ns: &str) -> Vec<Arc<Device>> {
        let mut devices = self
            .caches
            .devices
            .state_filter(|d| d.namespace().as_deref() == Some(ns));
        devices.sort_by_key(|d| d.name_any());
        devices
    }

    fn context<'a>(&self, ns: &str, networks: &'a [Arc<DeviceNetwork>]) -> Context<'a> {
        let mut context = Context::default();
        for n in networks {
            context.networks.insert(n.name_any(), n);
        }
        for c in self.caches.claims.state() {
            if c.namespace().as_deref() == Some(ns)
                && let Some(device) = c.annotations().get(annotations::BOUND_DEVICE)
            {
                context.bound_claims.insert(c.name_any(), device.clone());
            }
        }
        context
    }

    fn networks_in(&self, ns: &str) -> Vec<Arc<DeviceNetwork>> {
        self.caches
            .networks
            .state_filter(|n| n.namespace().as_deref() == Some(ns))
    }

    fn apps_in(&self, ns: &str) -> Vec<Arc<Application>> {
        self.caches
            .applications
            .state_filter(|a| a.namespace().as_deref() == Some(ns))
    }

    /// The owner `kind`/`name`, if it exists and is not being deleted, with the applications it
    /// controls (by UID). Applications whose owner is gone, or was another object of the same
    /// name, are left to the garbage collector, which deletes them once their owner is gone
    /// (their `ownerReferences` say so); an owner being deleted is left alone, so that
    /// `--cascade=orphan` keeps its applications and `foreground` deletes them first.
    fn owner_and_apps<K: Resource>(
        &self,
        ns: &str,
        kind: &str,
        name: &str,
        current: Option<Arc<K>>,
    ) -> Option<(Arc<K>, Vec<Arc<Application>>)> {
        let owner = current.filter(|o| o.meta().deletion_timestamp.is_none())?;
        let mine = self.controlled(ns, kind, name, owner.as_ref());
        Some((owner, mine))
    }

    /// The applications `owner` (`kind`/`name`) controls now, from the cache.
    fn controlled<K: Resource>(
        &self,
        ns: &str,
        kind: &str,
        name: &str,
        owner: &K,
    ) -> Vec<Arc<Application>> {
        self.owned(ns, kind, name)
            .into_iter()
            .filter(|a| controlled_by(a, owner))
            .collect()
    }

    fn owned(&self, ns: &str, kind: &str, name: &str) -> Vec<Arc<Application>> {
        self.apps_in(ns)
            .into_iter()
            .filter(|a| controller_of(a).is_some_and(|o| o.kind == kind && o.name == name))
            .collect()
    }

    fn members(
        &self,
        apps: &[Arc<Application>],
        devices: &[Arc<Device>],
        context: &Context<'_>,
        min_ready: i32,
    ) -> Vec<Member> {
        let by_name: HashMap<String, &Arc<Device>> =
            devices.iter().map(|d| (d.name_any(), d)).collect();
        apps.iter()
            .filter(|a| a.metadata.deletion_timestamp.is_none())
            .map(|a| {
                let device = a.spec.node_name.clone();
                let placed = device
                    .as_ref()
                    .and_then(|d| by_name.get(d))
                    .is_some_and(|d| {
                        scheduling::fits(&a.spec, a.annotations(), d, context).is_ok()
                    });
                Member {
                    name: a.name_any(),
                    hash: a
                        .labels()
                        .get(annotations::TEMPLATE_HASH)
                        .cloned()
                        .unwrap_or_default(),
                    device,
                    placed,
                    available: available(a, min_ready),
                }
            })
            .collect()
    }

    async fn delete_apps(&self, ns: &str, names: &[String]) -> Result<(), kube::Error> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), ns);
        let results: Vec<Result<(), kube::Error>> = futures::stream::iter(names.iter().cloned())
            .map(|name| {
                let api = api.clone();
                async move {
                    match api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        let gone: HashSet<&String> = names.iter().collect();
        self.await_cache(|apps| {
            !apps
                .iter()
                .any(|a| a.namespace().as_deref() == Some(ns) && gone.contains(&a.name_any()))
        })
        .await;
        Ok(())
    }

    async fn create_apps(&self, ns: &str, apps: Vec<Application>) -> Result<(), kube::Error> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), ns);
        let created: Vec<Result<Option<String>, kube::Error>> = futures::stream::iter(apps)
            .map(|app| {
                let api = api.clone();
                async move {
                    match api.create(&PostParams::default(), &app).await {
                        Ok(made) => Ok(Some(made.name_any())),
                        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut names = HashSet::new();
        let mut failure = None;
        for c in created {
            match c {
                Ok(Some(name)) => {
                    names.insert(name);
                }
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
        }
        self.await_cache(|apps| {
            let seen: HashSet<String> = apps
                .iter()
                .filter(|a| a.namespace().as_deref() == Some(ns))
                .map(|a| a.name_any())
                .collect();
            names.iter().all(|n| seen.contains(n))
        })
        .await;
        failure.map_or(Ok(()), Err)
    }

    /// Waits (up to ten seconds) until the application cache shows what was just written, so the
    /// next reconcile does not act twice on a stale view.
    async fn await_cache(&self, done: impl Fn(&[Arc<Application>]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(&self.caches.applications.state()) {
            if tokio::time::Instant::now() > deadline {
                tracing::warn!("the application cache lags; going on");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn made_from(
        owner: &impl Resource<DynamicType = ()>,
        template: &ApplicationTemplate,
        hash: &str,
        name: Option<String>,
        device: String,
    ) -> Application {
        let mut labels: BTreeMap<String, String> = template
            .metadata
            .as_ref()
            .map(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(annotations::TEMPLATE_HASH.into(), hash.into());
        let owner_name = owner.meta().name.clone().unwrap_or_default();
        let mut spec: ApplicationSpec = template.spec.clone();
        spec.node_name = Some(device);
        let mut app = Application::new("", spec);
        app.metadata.name = name;
        if app.metadata.name.is_none() {
            app.metadata.generate_name = Some(format!("{owner_name}-{hash}-"));
        }
        app.metadata.labels = Some(labels);
        app.metadata.annotations = template
            .metadata
            .as_ref()
            .map(|m| m.annotations.clone())
            .filter(|a| !a.is_empty());
        app.metadata.owner_references = owner.controller_owner_ref(&()).map(|mut o| {
            o.block_owner_deletion = Some(true);
            vec![o]
        });
        app
    }

    async fn deployment(&self, ns: &str, name: &str) -> Result<(), kube::Error> {
        let current = self
            .caches
            .deployments
            .get(&ObjectRef::new(name).within(ns));
        let Some((deployment, mine)) =
            self.owner_and_apps(ns, "ApplicationDeployment", name, current)
        else {
            return Ok(());
        };
        let spec = &deployment.spec;
        let replicas = spec.replicas.unwrap_or(1);
        let hash = scheduling::template_hash(&spec.template);
        let devices = self.devices_in(ns);
        let networks = self.networks_in(ns);
        let context = self.context(ns, &networks);
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let members = self.members(&mine, &devices, &context, min_ready);
        let strategy = spec.strategy.clone().unwrap_or_default();
        let rolling = strategy.rolling_update.unwrap_or_default();
        let rollout = Rollout {
            replicas,
            recreate: strategy.type_.as_deref() == Some("Recreate"),
            max_surge: scheduling::resolve(rolling.max_surge.as_ref(), "25%", replicas, true),
            max_unavailable: scheduling::resolve(
                rolling.max_unavailable.as_ref(),
                "25%",
                replicas,
                false,
            ),
        };
        let paused = spec.paused == Some(true);
        let plan = if paused {
            scheduling::Plan::default()
        } else {
            scheduling::plan_deployment(rollout, &hash, &members)
        };
        if !plan.delete.is_empty() {
            self.delete_apps(ns, &plan.delete).await?;
        }
        let mut failure = None;
        let mut created = 0;
        if plan.create > 0 {
            let mut load = Load::default();
            for a in self.apps_in(ns) {
                if let Some(d) = &a.spec.node_name {
                    *load.total.entry(d.clone()).or_default() += 1;
                }
            }
            for m in &members {
                if let (Some(d), false) = (&m.device, plan.delete.contains(&m.name)) {
                    *load.own.entry(d.clone()).or_default() += 1;
                }
            }
            let refs: Vec<&Device> = devices.iter().map(AsRef::as_ref).collect();
            let template_annotations = spec
                .template
                .metadata
                .as_ref()
                .map(|m| m.annotations.clone())
                .unwrap_or_default();
            let mut made = Vec::new();
            for _ in 0..plan.create {
                match scheduling::choose(
                    &spec.template.spec,
                    &template_annotations,
                    &refs,
                    &context,
                    &load,
                ) {
                    Ok(device) => {
                        load.add(&device);
                        made.push(Self::made_from(
                            deployment.as_ref(),
                            &spec.template,
                            &hash,
                            None,
                            device,
                        ));
                    }
                    Err(why) => {
                        failure = Some(why);
                        break;
                    }
                }
            }
            created = made.len();
            self.create_apps(ns, made).await?;
        }
        if let Some(why) = &failure {
            self.events.record(Record::warning(
                reference(deployment.as_ref()),
                "FailedPlacement",
                "Schedule",
                format!("cannot place an application: {why}"),
            ));
        }
        // Status, from the cache after the changes.
        let mine = self.controlled(ns, "ApplicationDeployment", name, deployment.as_ref());
        let members = self.members(&mine, &devices, &context, min_ready);
        let count = |f: &dyn Fn(&Member) -> bool| members.iter().filter(|m| f(m)).count() as i32;
        let available_n = count(&|m| m.available);
        let updated = count(&|m| m.hash == hash);
        let ready = mine
            .iter()
            .filter(|a| a.status.as_ref().and_then(|s| s.state.as_deref()) == Some("RUNNING"))
            .count() as i32;
        let mut conditions = vec![condition(
            "Available",
            available_n >= replicas - rollout.max_unavailable,
            if available_n >= replicas - rollout.max_unavailable {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            &format!(
                "{available_n} of {replicas} applications are available (running on their device)"
            ),
        )];
        let complete =
            updated == replicas && members.len() as i32 == replicas && available_n == replicas;
        conditions.push(condition(
            "Progressing",
            failure.is_none(),
            if paused {
                "DeploymentPaused"
            } else if failure.is_some() {
                "ProgressDeadlineExceeded"
            } else if complete {
                "NewReplicaSetAvailable"
            } else {
                "ReplicaSetUpdated"
            },
            &match &failure {
                Some(why) => format!("cannot place an application: {why}"),
                None if complete => "the deployment has rolled out".to_string(),
                None => format!("{updated} of {replicas} applications are up to date"),
            },
        ));
        if let Some(why) = &failure {
            conditions.push(condition("ReplicaFailure", true, "FailedCreate", why));
        }
        let history = history(
            deployment
                .status
                .as_ref()
                .map(|s| s.history.clone())
                .unwrap_or_default(),
            &hash,
            deployment.annotations().get("kubernetes.io/change-cause"),
            spec.revision_history_limit.unwrap_or(10),
        );
        let status = json!({
            "observedGeneration": deployment.metadata.generation,
            "replicas": members.len(),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available_n,
            "unavailableReplicas": (replicas - available_n).max(0),
            "readyText": format!("{available_n}/{replicas}"),
            "selector": crate::labels::to_string(&spec.selector),
            "revision": history.last().map(|r| r.revision),
            "history": history,
            "conditions": conditions,
        });
        self.record_scaling(deployment.as_ref(), created, &plan.delete, &hash);
        let was_complete = deployment.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Progressing" && c.reason == "NewReplicaSetAvailable")
        });
        if complete && !paused && !was_complete {
            self.events.record(Record::normal(
                reference(deployment.as_ref()),
                "RolloutComplete",
                "Rollout",
                format!(
                    "all {replicas} applications run template {hash} (revision {})",
                    history.last().map_or(0, |r| r.revision)
                ),
            ));
        }
        let old = serde_json::to_value(&deployment.status).unwrap_or_default();
        self.write_status::<ApplicationDeployment>(ns, name, old, status)
            .await
    }

    /// Records that `owner` created and deleted applications on its way to template `hash`.
    fn record_scaling<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        created: usize,
        deleted: &[String],
        hash: &str,
    ) {
        if created == 0 && deleted.is_empty() {
            return;
        }
        let mut note = format!("created {created} application(s) of template {hash}");
        if !deleted.is_empty() {
            note.push_str(&format!("; deleted {}", deleted.join(", ")));
        }
        self.events.record(Record::normal(
            reference(owner),
            "ScalingApplications",
            "Rollout",
            note,
        ));
    }

    async fn daemon_set(&self, ns: &str, name: &str) -> Result<(), kube::Error> {
        let current = self
            .caches
            .daemon_sets
            .get(&ObjectRef::new(name).within(ns));
        let Some((ds, mine)) = self.owner_and_apps(ns, "ApplicationDaemonSet", name, current)
        else {
            return Ok(());
        };
        let spec = &ds.spec;
        let hash = scheduling::template_hash(&spec.template);
        let devices = self.devices_in(ns);
        let networks = self.networks_in(ns);
        let context = self.context(ns, &networks);
        let template_annotations = spec
            .template
            .metadata
            .as_ref()
            .map(|m| m.annotations.clone())
            .unwrap_or_default();
        let eligible: Vec<String> = devices
            .iter()
            .filter(|d| {
                scheduling::fits(&spec.template.spec, &template_annotations, d, &context).is_ok()
            })
            .map(|d| d.name_any())
            .collect();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let members = self.members(&mine, &devices, &context, min_ready);
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let on_delete = strategy.type_.as_deref() == Some("OnDelete");
        let max_unavailable = scheduling::resolve(
            strategy
                .rolling_update
                .as_ref()
                .and_then(|r| r.max_unavailable.as_ref()),
            "1",
            eligible.len() as i32,
            false,
        );
        let plan =
            scheduling::plan_daemon_set(&eligible, &hash, &members, max_unavailable, on_delete);
        if !plan.delete.is_empty() {
            self.delete_apps(ns, &plan.delete).await?;
        }
        if !plan.create_on.is_empty() {
            let made = plan
                .create_on
                .iter()
                .map(|device| {
                    Self::made_from(
                        ds.as_ref(),
                        &spec.template,
                        &hash,
                        Some(daemon_app_name(name, device)),
                        device.clone(),
                    )
                })
                .collect();
            self.create_apps(ns, made).await?;
        }
        self.record_scaling(ds.as_ref(), plan.create_on.len(), &plan.delete, &hash);
        let mine = self.controlled(ns, "ApplicationDaemonSet", name, ds.as_ref());
        let members = self.members(&mine, &devices, &context, min_ready);
        let on_eligible =
            |m: &Member| m.device.as_ref().is_some_and(|d| eligible.contains(d)) && m.placed;
        let current_n = members.iter().filter(|m| on_eligible(m)).count() as i32;
        let updated = members
            .iter()
            .filter(|m| on_eligible(m) && m.hash == hash)
            .count() as i32;
        let available_n = members
            .iter()
            .filter(|m| on_eligible(m) && m.available)
            .count() as i32;
        let history = history(
            ds.status
                .as_ref()
                .map(|s| s.history.clone())
                .unwrap_or_default(),
            &hash,
            ds.annotations().get("kubernetes.io/change-cause"),
            spec.revision_history_limit.unwrap_or(10),
        );
        let desired = eligible.len() as i32;
        let status = json!({
            "observedGeneration": ds.metadata.generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current_n,
            "updatedNumberScheduled": updated,
            "numberAvailable": available_n,
            "numberUnavailable": (desired - available_n).max(0),
            "numberMisscheduled": members.len() as i32 - current_n,
            "revision": history.last().map(|r| r.revision),
            "history": history,
        });
        let old = serde_json::to_value(&ds.status).unwrap_or_default();
        self.write_status::<ApplicationDaemonSet>(ns, name, old, status)
            .await
    }

    /// Binds standalone applications (no controller, no device yet) to devices.
    async fn schedule(&self, ns: &str) -> Result<(), kube::Error> {
        let pending: Vec<Arc<Application>> = self
            .apps_in(ns)
            .into_iter()
            .filter(|a| {
                a.spec.node_name.as_deref().is_none_or(str::is_empty)
                    && a.metadata.deletion_timestamp.is_none()
                    && controller_of(a).is_none()
            })
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let devices = self.devices_in(ns);
        let refs: Vec<&Device> = devices.iter().map(AsRef::as_ref).collect();
        let networks = self.networks_in(ns);
        let context = self.context(ns, &networks);
        let mut load = Load::default();
        for a in self.apps_in(ns) {
            if let Some(d) = &a.spec.node_name {
                *load.total.entry(d.clone()).or_default() += 1;
            }
        }
        let api: Api<Application> = Api::namespaced(self.client.clone(), ns);
        for app in pending {
            let name = app.name_any();
            let own = Load {
                own: HashMap::new(),
                total: load.total.clone(),
            };
            let (scheduled, reason, message) =
                match scheduling::choose(&app.spec, app.annotations(), &refs, &context, &own) {
                    Ok(device) => {
                        api.patch(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"nodeName": device}})),
                        )
                        .await?;
                        load.add(&device);
                        (true, "Scheduled", format!("bound to Device {device}"))
                    }
                    Err(why) => (false, "Unschedulable", why),
                };
            let previous = app
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Scheduled"));
            if previous.is_some_and(|p| p.message == message && p.reason == reason) {
                continue;
            }
            let record = if scheduled {
                Record::normal
            } else {
                Record::warning
            };
            self.events.record(record(
                reference(app.as_ref()),
                reason,
                "Schedule",
                message.clone(),
            ));
            let conditions =
                with_condition(&app, condition("Scheduled", scheduled, reason, &message));
            let mut status = json!({"conditions": conditions});
            if !scheduled && app.status.as_ref().and_then(|s| s.state.as_ref()).is_none() {
                status["state"] = json!("PENDING");
            }
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
        }
        Ok(())
    }

    /// Reports `ReferencesResolved` on applications that name missing Images, DeviceNetworks or
    /// claims (admitted in warning mode), and clears it once they exist.
    async fn references(&self, ns: &str) -> Result<(), kube::Error> {
        let names = |v: Vec<String>| v.into_iter().collect::<HashSet<String>>();
        let images = names(
            self.caches
                .images
                .state_filter(|i| i.namespace().as_deref() == Some(ns))
                .iter()
                .map(|i| i.name_any())
                .collect(),
        );
        let networks = names(self.networks_in(ns).iter().map(|n| n.name_any()).collect());
        // Each claim, with what is missing for its volume: the Image it is made from.
        let claims: HashMap<String, Option<String>> = self
            .caches
            .claims
            .state_filter(|c| c.namespace().as_deref() == Some(ns))
            .iter()
            .map(|c| {
                let spec = c.spec.clone().unwrap_or_default();
                let missing = match eve_model::claims::data_source(&spec) {
                    eve_model::claims::DataSource::Image { name, .. }
                        if !images.contains(&name) =>
                    {
                        Some(format!(
                            "Image {name} (of PersistentVolumeClaim {})",
                            c.name_any()
                        ))
                    }
                    _ => None,
                };
                (c.name_any(), missing)
            })
            .collect();
        let api: Api<Application> = Api::namespaced(self.client.clone(), ns);
        for app in self.apps_in(ns) {
            let mut missing = Vec::new();
            for c in &app.spec.containers {
                if !images.contains(&c.image) {
                    missing.push(format!("Image {}", c.image));
                }
            }
            for n in scheduling::networks_of(app.annotations()) {
                if !networks.contains(&n) {
                    missing.push(format!("DeviceNetwork {n}"));
                }
            }
            for v in &app.spec.volumes {
                if let Some(c) = &v.persistent_volume_claim {
                    match claims.get(&c.claim_name) {
                        None => missing.push(format!("PersistentVolumeClaim {}", c.claim_name)),
                        Some(Some(image)) => missing.push(image.clone()),
                        Some(None) => {}
                    }
                }
            }
            let previous = app.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "ReferencesResolved")
            });
            let (ok, message) = if missing.is_empty() {
                (
                    true,
                    "every object the application names exists".to_string(),
                )
            } else {
                (false, format!("missing: {}", missing.join(", ")))
            };
            let unchanged = match previous {
                Some(p) => p.status == if ok { "True" } else { "False" } && p.message == message,
                None => ok, // nothing to report while all is well
            };
            if unchanged {
                continue;
            }
            let conditions = with_condition(
                &app,
                condition(
                    "ReferencesResolved",
                    ok,
                    if ok { "Resolved" } else { "MissingReferences" },
                    &message,
                ),
            );
            api.patch_status(
                &app.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"conditions": conditions}})),
            )
            .await?;
        }
        Ok(())
    }

    /// Records which device each used claim is bound to.
    async fn bind_claims(&self, ns: &str) -> Result<(), kube::Error> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        let claims: HashMap<String, Arc<PersistentVolumeClaim>> = self
            .caches
            .claims
            .state_filter(|c| c.namespace().as_deref() == Some(ns))
            .into_iter()
            .map(|c| (c.name_any(), c))
            .collect();
        for app in self.apps_in(ns) {
            let Some(device) = app.spec.node_name.as_deref().filter(|d| !d.is_empty()) else {
                continue;
            };
            for volume in &app.spec.volumes {
                let Some(claim) = volume.persistent_volume_claim.as_ref() else {
                    continue;
                };
                let Some(pvc) = claims.get(&claim.claim_name) else {
                    continue;
                };
                if pvc.annotations().contains_key(annotations::BOUND_DEVICE) {
                    continue;
                }
                api.patch(
                    &claim.claim_name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {annotations::BOUND_DEVICE: device}}}),
                    ),
                )
                .await?;
                api.patch_status(
                    &claim.claim_name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": "Bound"}})),
                )
                .await?;
                self.events.record(Record::normal(
                    reference(pvc.as_ref()),
                    "Bound",
                    "Bind",
                    format!(
                        "bound to Device {device}, for Application {}",
                        app.name_any()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Gives a device its UUID (its object's uid) if it has none yet.
    async fn device(&self, ns: &str, name: &str) -> Result<(), kube::Error> {
        let Some(device) = self.caches.devices.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(());
        };
        if device
            .status
            .as_ref()
            .and_then(|s| s.uuid.as_ref())
            .is_some()
        {
            return Ok(());
        }
        let api: Api<Device> = Api::namespaced(self.client.clone(), ns);
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"uuid": device.uid()}})),
        )
        .await?;
        Ok(())
    }

    async fn write_status<K>(
        &self,
        ns: &str,
        name: &str,
        old: serde_json::Value,
        mut status: serde_json::Value,
    ) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        // Keep transition times of conditions whose status did not change.
        if let (Some(new), Some(before)) = (
            status["conditions"].as_array_mut(),
            old["conditions"].as_array(),
        ) {
            for c in new.iter_mut() {
                if let Some(b) = before.iter().find(|b| b["type"] == c["type"])
                    && b["status"] == c["status"]
                {
                    c["lastTransitionTime"] = b["lastTransitionTime"].clone();
                }
            }
        }
        if let Some(map) = status.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        if status == old {
            return Ok(());
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        match api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An application's conditions with `new` in place of the one of its type.
fn with_condition(app: &Application, new: serde_json::Value) -> Vec<serde_json::Value> {
    let mut conditions: Vec<serde_json::Value> = app
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .filter(|c| new["type"] != c.type_.as_str())
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .collect();
    conditions.push(new);
    conditions
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> serde_json::Value {
    json!({
        "type": type_,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    })
}

fn history(
    mut history: Vec<eve_model::Revision>,
    hash: &str,
    cause: Option<&String>,
    limit: i32,
) -> Vec<eve_model::Revision> {
    if history.last().is_none_or(|r| r.template_hash != hash) {
        let revision = history.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        history.retain(|r| r.template_hash != hash);
        history.push(eve_model::Revision {
            revision,
            template_hash: hash.into(),
            created: Some(now()),
            change_cause: cause.cloned(),
        });
    }
    let keep = limit.max(0) as usize + 1;
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
    history
}

/// The name of a daemon set's application on a device: `<daemon set>-<device>`, shortened with
/// a hash when too long for a name.
pub fn daemon_app_name(daemon_set: &str, device: &str) -> String {
    let name = format!("{daemon_set}-{device}");
    if name.len() <= 253 {
        return name;
    }
    let hash = scheduling::template_hash(&name);
    format!("{}-{hash}", &name[..242].trim_end_matches(['-', '.']))
}
