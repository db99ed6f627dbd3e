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
            .modify(|object| object.meta_mut().managed_fields = None)
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
