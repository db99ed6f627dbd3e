//! Shared informers: one watch and one cache per kind in the process, whoever needs the kind,
//! as client-go's `SharedInformerFactory`. The controllers and the device API each register
//! what they want of a kind (its cache, and a handler of its events), then one call starts a
//! watch per kind registered; each handler sees every event of its kind, in order, after the
//! cache has applied it.
//!
//! Handlers run on the kind's watch task: they must be quick (push to a queue, update an
//! index), never wait on the API.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use tokio::sync::watch;

/// What a handler is told: an event of the kind's watch, the initial list included
/// (`Init`, `InitApply` per object, `InitDone`, again after every re-list).
pub type Handler<K> = Box<dyn FnMut(&watcher::Event<K>) + Send>;

/// What a kind must be to be watched and cached.
pub trait Watched:
    Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A kind's registrations until it starts.
struct Pending<K: Watched> {
    config: watcher::Config,
    store: Store<K>,
    writer: reflector::store::Writer<K>,
    handlers: Vec<Handler<K>>,
}

/// A kind's informer, before and after it starts.
enum Slot<K: Watched> {
    Pending(Box<Pending<K>>),
    Running,
}

/// A reference to `object` by namespace and name only, for a long-lived map key:
/// `ObjectRef::from_obj` also copies its resourceVersion and UID (about 100 bytes), which
/// references' equality and hash ignore.
pub fn key<K: Resource<DynamicType = ()>>(object: &K) -> reflector::ObjectRef<K> {
    let meta = object.meta();
    let reference = reflector::ObjectRef::new(meta.name.as_deref().unwrap_or_default());
    match meta.namespace.as_deref() {
        Some(namespace) => reference.within(namespace),
        None => reference,
    }
}

/// Drops from a cached object what no reader of the caches needs: a Device's
/// `status.allocatable`, which repeats its capacity (EVE reserves nothing apart; scheduling and
/// the fleet exporter read `capacity`). About 0.7 KB a Device.
fn trim(object: &mut dyn Any) {
    if let Some(status) = object
        .downcast_mut::<eve_model::Device>()
        .and_then(|d| d.status.as_mut())
    {
        status.allocatable = Default::default();
    }
}

/// How a started kind is run: type-erased so kinds of every type share one table.
trait Start: Send {
    fn start(&mut self, client: &Client, stop: &watch::Receiver<bool>);
    fn as_any(&mut self) -> &mut dyn Any;
}

impl<K> Start for Slot<K>
where
    K: Watched,
{
    fn start(&mut self, client: &Client, stop: &watch::Receiver<bool>) {
        if matches!(self, Slot::Running) {
            return;
        }
        let Slot::Pending(pending) = std::mem::replace(self, Slot::Running) else {
            unreachable!("checked above")
        };
        let Pending {
            config,
            writer,
            mut handlers,
            ..
        } = *pending;
        let api: Api<K> = Api::all(client.clone());
        // Who wrote which field is the API server's to keep: no reader here needs it, and its
        // field trees would be most of a cached object (writes that omit it leave it as is).
        let stream = watcher(api, config)
            .default_backoff()
            .modify(|object| {
                object.meta_mut().managed_fields = None;
                trim(object as &mut dyn Any);
            })
            .reflect(writer);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut listed = false;
            loop {
                let event = tokio::select! {
                    event = stream.next() => event,
                    _ = stop.changed() => return,
                };
                match event {
                    Some(Ok(event)) => {
                        if matches!(event, watcher::Event::Init) {
                            if listed {
                                tracing::info!(
                                    kind = %K::kind(&()),
                                    "listing again: the watch fell behind or its version was compacted"
                                );
                            }
                            listed = true;
                        }
                        for handler in &mut handlers {
                            handler(&event);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying")
                    }
                    None => return,
                }
            }
        });
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// The process's informers (see the module's documentation).
pub struct Informers {
    client: Client,
    stop: watch::Receiver<bool>,
    /// By kind and field selector.
    kinds: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    slots: HashMap<(TypeId, String), Box<dyn Start>>,
    started: bool,
}

impl Informers {
    /// Informers on `client`, their watches stopping when `stop` turns true.
    pub fn new(client: Client, stop: watch::Receiver<bool>) -> Informers {
        Informers {
            client,
            stop,
            kinds: Mutex::default(),
        }
    }

    /// The client the informers watch through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cache of every `K`, without a handler.
    pub fn store<K>(&self) -> Store<K>
    where
        K: Watched,
    {
        self.watch_with(watcher::Config::default(), |_: &watcher::Event<K>| {})
    }

    /// The cache of every `K`, and `handler` called on each of its events.
    pub fn watch<K>(&self, handler: impl FnMut(&watcher::Event<K>) + Send + 'static) -> Store<K>
    where
        K: Watched,
    {
        self.watch_with(watcher::Config::default(), handler)
    }

    /// As [`Informers::watch`], of the `K` that `config` selects (one informer per kind and
    /// field selector).
    ///
    /// # Panics
    /// After [`Informers::start`]: a handler registered then would miss events, so registering
    /// late is a bug of the caller.
    pub fn watch_with<K>(
        &self,
        config: watcher::Config,
        handler: impl FnMut(&watcher::Event<K>) + Send + 'static,
    ) -> Store<K>
    where
        K: Watched,
    {
        let mut table = self.kinds.lock().expect("not poisoned");
        assert!(
            !table.started,
            "{} informer registered after the informers started",
            K::kind(&())
        );
        let key = (
            TypeId::of::<K>(),
            config.field_selector.clone().unwrap_or_default(),
        );
        let slot = table.slots.entry(key).or_insert_with(|| {
            let (store, writer) = reflector::store::<K>();
            Box::new(Slot::Pending(Box::new(Pending {
                config,
                store,
                writer,
                handlers: Vec::new(),
            })))
        });
        let Some(Slot::Pending(pending)) = slot.as_any().downcast_mut::<Slot<K>>() else {
            unreachable!("slots are keyed by their type and not started")
        };
        pending.handlers.push(Box::new(handler));
        pending.store.clone()
    }

    /// Starts one watch per kind registered. Caches fill from then on: wait for them with
    /// `Store::wait_until_ready`.
    pub fn start(&self) {
        let mut table = self.kinds.lock().expect("not poisoned");
        table.started = true;
        for slot in table.slots.values_mut() {
            slot.start(&self.client, &self.stop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_device_keeps_its_capacity_not_its_repeated_allocatable() {
        let mut device: eve_model::Device = serde_json::from_value(serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1alpha1",
            "kind": "Device",
            "metadata": {"name": "d", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
            "spec": {},
            "status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "4"}},
        }))
        .unwrap();
        trim(&mut device as &mut dyn Any);
        let status = device.status.as_ref().unwrap();
        assert!(status.allocatable.is_empty());
        assert_eq!(status.capacity.len(), 1);
        // Other kinds pass untouched.
        let mut other = k8s_openapi::api::core::v1::ConfigMap::default();
        trim(&mut other as &mut dyn Any);
    }

    #[test]
    fn a_key_names_its_object_without_its_version_and_finds_it() {
        let device = eve_model::Device {
            metadata: kube::api::ObjectMeta {
                name: Some("d".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                resource_version: Some("7".into()),
                ..Default::default()
            },
            spec: Default::default(),
            status: None,
        };
        let key = key(&device);
        assert_eq!(key.extra.uid, None);
        assert_eq!(key.extra.resource_version, None);
        assert_eq!(key, reflector::ObjectRef::from_obj(&device));
        let mut map = HashMap::new();
        map.insert(key, 1);
        assert_eq!(map.get(&reflector::ObjectRef::from_obj(&device)), Some(&1));
    }
}
