//! The configurations devices get. Each device's configuration is composed from the objects once
//! and kept, encoded and signed with its hash, until a watch event says something it was made
//! from changed: a poll is a lookup, not a composition. The same results are written as
//! DeviceConfig objects; a DeviceConfig with `spec.paused` is the user's and is served as they
//! wrote it.
//!
//! Invalidation runs on one logical clock: a change of a kind many devices share (Images,
//! claims, data stores, networks, options) moves `everything`, a change that concerns one device
//! (its Device, an Application bound to it, its DeviceConfig) moves that device's `touched`. A
//! kept result is good while it was composed after both.

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
    kept: Option<(u64, Arc<Served>)>,
}

/// Which devices' DeviceConfigs need writing.
#[derive(Debug, Default)]
pub struct Dirty {
    /// Every device (and every DeviceConfig, for orphans).
    pub all: bool,
    /// These devices.
    pub devices: HashSet<ObjectRef<Device>>,
}

/// Kept configurations and what invalidates them.
pub struct Tracker {
    clock: AtomicU64,
    everything: AtomicU64,
    slots: RwLock<HashMap<ObjectRef<Device>, Slot>>,
    dirty: Mutex<Dirty>,
    notify: Notify,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker {
            clock: AtomicU64::new(1),
            everything: AtomicU64::new(0),
            slots: RwLock::default(),
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

    /// Something many devices' configurations are made from changed.
    pub fn everything_changed(&self) {
        let now = self.tick();
        self.everything.store(now, Ordering::SeqCst);
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
        match &slot.kept {
            Some((at, served)) if *at >= everything && *at >= slot.touched => Some(served.clone()),
            _ => None,
        }
    }

    /// Keeps `served`, composed from what the caches held at `at`.
    pub fn keep(&self, device: ObjectRef<Device>, at: u64, served: Arc<Served>) {
        let mut slots = self.slots.write().expect("not poisoned");
        let slot = slots.entry(device).or_default();
        if slot.kept.as_ref().is_none_or(|(before, _)| *before <= at) {
            slot.kept = Some((at, served));
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
        tracker.keep(a.clone(), at, served("1"));
        tracker.keep(b.clone(), at, served("2"));
        assert_eq!(tracker.kept(&a).unwrap().hash, "1");
        // A change of b leaves a's kept.
        tracker.device_changed(b.clone());
        assert!(tracker.kept(&b).is_none());
        assert_eq!(tracker.kept(&a).unwrap().hash, "1");
        // A composition that started before a change is not kept as current.
        let before = tracker.now();
        tracker.device_changed(a.clone());
        tracker.keep(a.clone(), before, served("stale"));
        assert!(tracker.kept(&a).is_none());
        let at = tracker.now();
        tracker.keep(a.clone(), at, served("3"));
        assert_eq!(tracker.kept(&a).unwrap().hash, "3");
        // A shared change invalidates every device.
        tracker.everything_changed();
        assert!(tracker.kept(&a).is_none());
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
