//! The configurations devices get. Each device's configuration is composed from the objects once
//! and kept, encoded and signed with its hash, until a watch event says something it was made
//! from changed: a poll is a lookup, not a composition. The same results are written as
//! DeviceConfig objects; a DeviceConfig with `spec.paused` is the user's and is served as they
//! wrote it.
//!
//! Invalidation runs on one logical clock. A change that concerns one device (its Device, an
//! Application bound to it, its DeviceConfig) moves that device's `touched`. A change of an
//! object devices share (an Image, a claim, a network, a Secret, options) moves the keys of the
//! reads it answers ([`crate::compose::moved_by`]), and marks for writing the devices whose kept
//! result read one of them: only those are composed again. A re-list, after which deletions may
//! have gone unseen, moves `everything`. A kept result is good while it was composed after all
//! of these that concern it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use eve_api::config::EdgeDevConfig;
use eve_model::Device;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;

/// Where a served configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Composed from the objects.
    Composed,
    /// A paused DeviceConfig, as the user wrote it.
    Paused,
    /// A paused DeviceConfig whose `spec.config` is not an EdgeDevConfig: the composed one is
    /// served, and the reason reported in the DeviceConfig's status.
    Invalid(String),
}

/// A configuration ready to serve. The configuration itself is kept once, inside the signed
/// response: [`Served::config`] reads it back for the rare caller that needs it.
#[derive(Debug)]
pub struct Served {
    /// base64url of the SHA-256 of its encoding (`configHash`).
    pub hash: String,
    /// The signed `ConfigResponse` (an envelope is as good the second time: the payload is
    /// the same, and so is what a device may conclude from it).
    pub sealed: Bytes,
    /// Where it comes from.
    pub source: Source,
    /// What the objects ask for that it could not carry ([`crate::compose::Composed`]).
    pub problems: Vec<String>,
}

impl Served {
    /// The configuration, read back from the signed response.
    pub fn config(&self) -> EdgeDevConfig {
        use eve_api::Message;
        eve_api::envelope::Opened::decode(&self.sealed)
            .ok()
            .and_then(|o| eve_api::config::ConfigResponse::decode(o.payload.as_slice()).ok())
            .and_then(|r| r.config)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Slot {
    touched: u64,
    kept: Option<Kept>,
}

/// A kept result: when its composition started, what it read of the shared objects.
struct Kept {
    at: u64,
    served: Arc<Served>,
    reads: Box<[u64]>,
}

/// Which devices' DeviceConfigs need writing.
#[derive(Debug, Default)]
pub struct Dirty {
    /// Every device (and every DeviceConfig, for orphans).
    pub all: bool,
    /// These devices.
    pub devices: HashSet<ObjectRef<Device>>,
}

/// How many read keys' last changes the tracker keeps before it folds them into a change of
/// everything.
const MOVED_KEPT: usize = 1 << 16;

/// Kept configurations and what invalidates them.
pub struct Tracker {
    clock: AtomicU64,
    everything: AtomicU64,
    slots: RwLock<HashMap<ObjectRef<Device>, Slot>>,
    /// The clock of the last change of each read key.
    moved: RwLock<HashMap<u64, u64>>,
    dirty: Mutex<Dirty>,
    notify: Notify,
    /// Configurations composed (or read from a paused DeviceConfig) and kept.
    pub compositions: prometheus_client::metrics::counter::Counter,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker {
            clock: AtomicU64::new(1),
            everything: AtomicU64::new(0),
            slots: RwLock::default(),
            moved: RwLock::default(),
            compositions: Default::default(),
            dirty: Mutex::new(Dirty {
                all: true,
                devices: HashSet::new(),
            }),
            notify: Notify::new(),
        }
    }
}

impl Tracker {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The shared object `name` of `kind` in `namespace` changed (made, edited or deleted):
    /// the devices whose kept configuration read it, or a list it is in, are marked for
    /// writing, and composed again when next asked.
    pub fn shared_changed(&self, kind: crate::compose::Shared, namespace: &str, name: &str) {
        let keys = crate::compose::moved_by(kind, namespace, name);
        {
            let mut moved = self.moved.write().expect("not poisoned");
            if moved.len() >= MOVED_KEPT {
                // Objects come and go: rather than keep a key for each forever, one change
                // of everything stands for all the changes so far.
                drop(moved);
                self.everything_changed();
                return;
            }
            let now = self.tick();
            for key in keys {
                moved.insert(key, now);
            }
        }
        let affected: Vec<ObjectRef<Device>> = self
            .slots
            .read()
            .expect("not poisoned")
            .iter()
            .filter(|(_, slot)| {
                slot.kept
                    .as_ref()
                    .is_some_and(|k| k.reads.iter().any(|r| keys.contains(r)))
            })
            .map(|(device, _)| device.clone())
            .collect();
        if !affected.is_empty() {
            self.dirty
                .lock()
                .expect("not poisoned")
                .devices
                .extend(affected);
            self.notify.notify_one();
        }
    }

    /// Something every device's configuration may be made from changed (a re-list, which
    /// does not tell what was deleted meanwhile).
    pub fn everything_changed(&self) {
        // Every key's change is older than this one, which invalidates as much.
        let mut moved = self.moved.write().expect("not poisoned");
        let now = self.tick();
        self.everything.store(now, Ordering::SeqCst);
        moved.clear();
        drop(moved);
        self.dirty.lock().expect("not poisoned").all = true;
        self.notify.notify_one();
    }

    /// Something of one device's configuration changed.
    pub fn device_changed(&self, device: ObjectRef<Device>) {
        let now = self.tick();
        self.slots
            .write()
            .expect("not poisoned")
            .entry(device.clone())
            .or_default()
            .touched = now;
        self.mark(device);
    }

    /// The device's DeviceConfig needs writing (again).
    pub fn mark(&self, device: ObjectRef<Device>) {
        self.dirty
            .lock()
            .expect("not poisoned")
            .devices
            .insert(device);
        self.notify.notify_one();
    }

    /// A device is gone: forget what was kept for it.
    pub fn forget(&self, device: &ObjectRef<Device>) {
        self.slots.write().expect("not poisoned").remove(device);
        self.mark(device.clone());
    }

    /// The time to stamp a composition that starts now.
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// The kept configuration of `device`, if nothing changed since it was composed.
    pub fn kept(&self, device: &ObjectRef<Device>) -> Option<Arc<Served>> {
        let everything = self.everything.load(Ordering::SeqCst);
        let slots = self.slots.read().expect("not poisoned");
        let slot = slots.get(device)?;
        let kept = slot.kept.as_ref()?;
        if kept.at < everything || kept.at < slot.touched {
            return None;
        }
        let moved = self.moved.read().expect("not poisoned");
        kept.reads
            .iter()
            .all(|read| moved.get(read).is_none_or(|at| kept.at >= *at))
            .then(|| kept.served.clone())
    }

    /// Keeps `served`, composed from what the caches held at `at`, having read `reads`
    /// ([`crate::compose::Recording`]).
    pub fn keep(&self, device: ObjectRef<Device>, at: u64, served: Arc<Served>, reads: Box<[u64]>) {
        self.compositions.inc();
        // Something it read changed while it was composed: its DeviceConfig is written again
        // (the change's own marking came before this result was kept).
        let stale = {
            let moved = self.moved.read().expect("not poisoned");
            reads
                .iter()
                .any(|read| moved.get(read).is_some_and(|changed| *changed > at))
        };
        {
            let mut slots = self.slots.write().expect("not poisoned");
            let slot = slots.entry(device.clone()).or_default();
            if slot.kept.as_ref().is_none_or(|before| before.at <= at) {
                slot.kept = Some(Kept { at, served, reads });
            }
        }
        if stale {
            self.mark(device);
        }
    }

    /// Waits for devices whose DeviceConfig needs writing, and takes them.
    pub async fn dirty(&self) -> Dirty {
        loop {
            let notified = self.notify.notified();
            {
                let mut dirty = self.dirty.lock().expect("not poisoned");
                if dirty.all || !dirty.devices.is_empty() {
                    return std::mem::take(&mut *dirty);
                }
            }
            notified.await;
        }
    }
}

/// A configuration from its JSON form (a DeviceConfig's `spec.config`), for the device with
/// `uuid`: the device's identity and the controller certificates' hash are the controller's and
/// are set whatever the JSON says.
pub fn from_json(
    json: Option<&serde_json::Value>,
    uuid: &str,
    controllercert_confighash: &str,
) -> Result<(EdgeDevConfig, String), String> {
    let json =
        json.ok_or("spec.config is missing: write the EdgeDevConfig to serve, or unpause")?;
    let mut config: EdgeDevConfig = serde_json::from_value(json.clone())
        .map_err(|e| format!("spec.config is not an EdgeDevConfig in proto3 JSON form: {e}"))?;
    let id = config.id.get_or_insert_with(Default::default);
    id.uuid = uuid.to_string();
    config.controllercert_confighash = controllercert_confighash.to_string();
    let hash = crate::compose::hash_of(&config);
    Ok((config, hash))
}

/// What a DeviceConfig shows in place of a password sent in the clear (to a device that has not
/// uploaded its ECDH certificate): who may read DeviceConfigs may not read Secrets.
pub const REDACTED: &str = "(from its Secret; not shown)";

/// The JSON form of a configuration (proto3 JSON mapping), passwords in clear fields
/// [`REDACTED`] (encrypted ones are shown: only the device can read them).
pub fn to_json(config: &EdgeDevConfig) -> serde_json::Value {
    let in_clear = config.datastores.iter().any(|s| !s.password.is_empty())
        || config
            .networks
            .iter()
            .flat_map(|n| n.wireless.iter().flat_map(|w| &w.wifi_cfg))
            .any(|w| !w.password.is_empty());
    if !in_clear {
        return serde_json::to_value(config).unwrap_or(serde_json::Value::Null);
    }
    let mut shown = config.clone();
    for store in &mut shown.datastores {
        if !store.password.is_empty() {
            store.password = REDACTED.into();
        }
    }
    for network in &mut shown.networks {
        for wifi in network
            .wireless
            .iter_mut()
            .flat_map(|w| w.wifi_cfg.iter_mut())
        {
            if !wifi.password.is_empty() {
                wifi.password = REDACTED.into();
            }
        }
    }
    serde_json::to_value(&shown).unwrap_or(serde_json::Value::Null)
}

/// A hash of what an Application contributes to its device's configuration (its state
/// reports leave it alone).
pub fn application_fingerprint(app: &eve_model::Application) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    app.metadata.generation.hash(&mut h);
    app.metadata.uid.hash(&mut h);
    app.metadata.labels.hash(&mut h);
    app.metadata.annotations.hash(&mut h);
    app.metadata.deletion_timestamp.is_some().hash(&mut h);
    app.spec.node_name.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(hash: &str) -> Arc<Served> {
        Arc::new(Served {
            problems: Vec::new(),
            hash: hash.into(),
            sealed: Bytes::new(),
            source: Source::Composed,
        })
    }

    #[test]
    fn kept_until_something_it_was_made_from_changes() {
        let tracker = Tracker::default();
        let a = ObjectRef::<Device>::new("a").within("ns");
        let b = ObjectRef::<Device>::new("b").within("ns");
        assert!(tracker.kept(&a).is_none());
        let at = tracker.now();
        tracker.keep(a.clone(), at, served("1"), Box::new([]));
        tracker.keep(b.clone(), at, served("2"), Box::new([]));
        assert_eq!(tracker.kept(&a).unwrap().hash, "1");
        // A change of b leaves a's kept.
        tracker.device_changed(b.clone());
        assert!(tracker.kept(&b).is_none());
        assert_eq!(tracker.kept(&a).unwrap().hash, "1");
        // A composition that started before a change is not kept as current.
        let before = tracker.now();
        tracker.device_changed(a.clone());
        tracker.keep(a.clone(), before, served("stale"), Box::new([]));
        assert!(tracker.kept(&a).is_none());
        let at = tracker.now();
        tracker.keep(a.clone(), at, served("3"), Box::new([]));
        assert_eq!(tracker.kept(&a).unwrap().hash, "3");
        // A shared change invalidates every device.
        tracker.everything_changed();
        assert!(tracker.kept(&a).is_none());
    }

    #[tokio::test]
    async fn a_shared_change_reaches_only_the_devices_that_read_it() {
        use crate::compose::{Recording, Shared, Snapshot};
        let tracker = Tracker::default();
        drop(tracker.dirty().await);
        // What composing each device read, through a recording of an empty snapshot.
        let empty = crate::compose::fixture::Objects::default();
        let read = |f: &dyn Fn(&dyn Snapshot)| {
            let recording = Recording::new(&empty);
            f(&recording);
            recording.reads()
        };
        let device = |name: &str| ObjectRef::<Device>::new(name).within("ns");
        let devices = [
            (device("ubuntu"), read(&|s| drop(s.image("ns", "ubuntu")))),
            (device("alpine"), read(&|s| drop(s.image("ns", "alpine")))),
            (device("base-os"), read(&|s| drop(s.base_os_images("ns")))),
            (device("options"), read(&|s| drop(s.global_options()))),
            (
                device("elsewhere"),
                read(&|s| drop(s.image("other", "ubuntu"))),
            ),
        ];
        let at = tracker.now();
        for (d, reads) in devices {
            tracker.keep(d, at, served("x"), reads);
        }
        let kept = |name: &str| tracker.kept(&device(name)).is_some();
        // The Image ubuntu of ns: its reader, no one else.
        tracker.shared_changed(Shared::Image, "ns", "ubuntu");
        let dirty = tracker.dirty().await;
        assert!(!dirty.all);
        assert_eq!(dirty.devices, HashSet::from([device("ubuntu")]));
        assert!(!kept("ubuntu"));
        assert!(kept("alpine") && kept("base-os") && kept("options") && kept("elsewhere"));
        // A base OS image of ns: the lister of ns's base OS images (by the list's key).
        tracker.shared_changed(Shared::BaseOsImage, "ns", "eve-14.5");
        assert_eq!(
            tracker.dirty().await.devices,
            HashSet::from([device("base-os")])
        );
        assert!(kept("alpine") && kept("options"));
        // Options of any namespace reach every reader of the global options.
        tracker.shared_changed(Shared::GlobalOptions, "tenant", "adamant-global-options");
        assert_eq!(
            tracker.dirty().await.devices,
            HashSet::from([device("options")])
        );
        assert!(kept("alpine") && kept("elsewhere"));
        // A re-list reaches everyone.
        tracker.everything_changed();
        assert!(tracker.dirty().await.all);
        assert!(!kept("alpine"));
    }

    #[tokio::test]
    async fn the_changes_kept_are_bounded_folded_into_a_change_of_everything() {
        use crate::compose::Shared;
        let tracker = Tracker::default();
        drop(tracker.dirty().await);
        // Each change keeps its claim's key; the namespace's and every namespace's list keys
        // are shared.
        for n in 0..MOVED_KEPT - 2 {
            tracker.shared_changed(Shared::Claim, "ns", &format!("claim-{n}"));
        }
        assert_eq!(tracker.moved.read().unwrap().len(), MOVED_KEPT);
        let everything = tracker.everything.load(Ordering::SeqCst);
        tracker.shared_changed(Shared::Claim, "ns", "one-more");
        assert!(tracker.everything.load(Ordering::SeqCst) > everything);
        assert!(tracker.moved.read().unwrap().is_empty());
        assert!(
            tracker.dirty().await.all,
            "folded into a change of everything"
        );
    }

    #[tokio::test]
    async fn dirty_devices_are_taken_once() {
        let tracker = Tracker::default();
        let first = tracker.dirty().await;
        assert!(first.all, "everything is written once at start");
        let a = ObjectRef::<Device>::new("a").within("ns");
        tracker.device_changed(a.clone());
        tracker.mark(a.clone());
        let next = tracker.dirty().await;
        assert!(!next.all);
        assert_eq!(next.devices, HashSet::from([a]));
    }
}
