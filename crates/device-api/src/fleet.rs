//! What the device API knows of the objects: reflector caches kept current by watch, and an
//! index of Devices by the SHA-256 of their certificate's DER (how devices name themselves), so
//! a request finds its device without a scan.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use eve_model::{
    Application, Device, DeviceCertificateAuthority, DeviceNetwork, Image, NetworkConfig,
    OnboardCertificate, OnboardCertificateAuthority,
};

use crate::compose::Shared;
use crate::configs::{Tracker, application_fingerprint};
use crate::secrets::Secrets;
use crate::written::Written;
use eve_controllers::informers::Informers;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

/// The name of the ConfigMaps of global options, watched in every namespace.
pub const GLOBAL_OPTIONS: &str = "adamant-global-options";

/// A Device as the device API needs it at hand.
#[derive(Clone, Debug)]
pub struct Known {
    /// Where the object is.
    pub reference: ObjectRef<Device>,
    /// The device's UUID.
    pub uuid: String,
    /// Its certificate's public key (uncompressed P-256 point).
    pub public_key: Vec<u8>,
}

/// Devices by certificate hash, and by (onboarding certificate hash, serial).
#[derive(Default)]
struct Index {
    by_hash: HashMap<[u8; 32], Known>,
    by_key: HashMap<ObjectRef<Device>, [u8; 32]>,
    by_onboard: HashMap<([u8; 32], String), ObjectRef<Device>>,
    onboard_of: HashMap<ObjectRef<Device>, ([u8; 32], String)>,
    /// Devices with an onboarding certificate and neither serial nor device certificate, by the
    /// onboarding certificate's DER hash, by namespace/name: waiting for the first device
    /// presenting it.
    onboard_only: HashMap<[u8; 32], std::collections::BTreeMap<String, ObjectRef<Device>>>,
    onboard_only_of: HashMap<ObjectRef<Device>, [u8; 32]>,
    /// Devices this process wrote whose watch event has not come yet.
    learned: HashMap<ObjectRef<Device>, Arc<Device>>,
    /// Devices by UUID (`metadata.uid`), and each Device's.
    by_uuid: HashMap<String, ObjectRef<Device>>,
    uuid_of: HashMap<ObjectRef<Device>, String>,
}

/// A Device's (onboarding certificate DER hash, serial), when it has both.
fn onboard_key(device: &Device) -> Option<([u8; 32], String)> {
    let der = certificate_der(device.spec.onboard.as_deref()?)?;
    let serial = device.spec.serial.clone().filter(|s| !s.is_empty())?;
    Some((eve_api::envelope::sha256(&der), serial))
}

/// The DER hash of a Device's onboarding certificate, when it has one and neither a serial nor
/// a device certificate: a Device waiting for whichever device presents that certificate.
fn onboard_only_key(device: &Device) -> Option<[u8; 32]> {
    let empty = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    if !empty(&device.spec.serial) || !empty(&device.spec.certificate) {
        return None;
    }
    let der = certificate_der(device.spec.onboard.as_deref()?)?;
    Some(eve_api::envelope::sha256(&der))
}

/// Applications by UID and by the device they are bound to (namespace, device name).
#[derive(Default)]
struct AppIndex {
    by_uid: HashMap<String, ObjectRef<Application>>,
    by_device:
        HashMap<(String, String), std::collections::BTreeMap<String, ObjectRef<Application>>>,
    device_of: HashMap<ObjectRef<Application>, (String, String)>,
}

impl AppIndex {
    fn remove(&mut self, app: &Application) {
        let key = eve_controllers::informers::key(app);
        if let Some(uid) = app.uid() {
            self.by_uid.remove(&uid);
        }
        if let Some(device) = self.device_of.remove(&key)
            && let Some(set) = self.by_device.get_mut(&device)
        {
            set.remove(&key.name);
            if set.is_empty() {
                self.by_device.remove(&device);
            }
        }
    }

    fn apply(&mut self, app: &Application) {
        self.remove(app);
        let key = eve_controllers::informers::key(app);
        if let Some(uid) = app.uid() {
            self.by_uid.insert(uid, key.clone());
        }
        if let (Some(ns), Some(node)) = (app.namespace(), app.spec.node_name.clone()) {
            self.device_of
                .insert(key.clone(), (ns.clone(), node.clone()));
            self.by_device
                .entry((ns, node))
                .or_default()
                .insert(key.name.clone(), key);
        }
    }
}

/// The caches.
#[derive(Clone)]
pub struct Fleet {
    /// Devices.
    pub devices: Store<Device>,
    /// Applications.
    pub applications: Store<Application>,
    /// Images.
    pub images: Store<Image>,
    /// Claims.
    pub claims: Store<PersistentVolumeClaim>,
    /// Data stores.
    pub classes: Store<StorageClass>,
    /// Networks on devices.
    pub networks: Store<DeviceNetwork>,
    /// Network configurations.
    pub network_configs: Store<NetworkConfig>,
    /// Onboarding certificates.
    pub onboard_certificates: Store<OnboardCertificate>,
    /// Onboarding certificate authorities.
    pub onboard_authorities: Store<OnboardCertificateAuthority>,
    /// Device certificate authorities.
    pub device_authorities: Store<DeviceCertificateAuthority>,
    /// Global options (ConfigMaps named `adamant-global-options`).
    pub options: Store<ConfigMap>,
    /// Device models (the ConfigMaps named `adamant-device-models`).
    pub models: Store<ConfigMap>,
    /// The credentials Secrets the objects name, read by name ([`crate::secrets`]).
    pub secrets: Arc<Secrets>,
    /// The written configurations (named after their Devices), without the configuration of
    /// unpaused ones ([`crate::written`]).
    pub device_configs: Store<Written>,
    /// What invalidates kept configurations, fed by these caches.
    pub configs: Arc<Tracker>,
    /// The UUIDs of Devices deleted (their telemetry goes too), taken once by
    /// [`Fleet::departures`].
    departures: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Departed>>>>,
    index: Arc<RwLock<Index>>,
    apps: Arc<RwLock<AppIndex>>,
}

/// The DER of a certificate field (base64 PEM), as admission reads it.
pub fn certificate_der(base64_pem: &str) -> Option<Vec<u8>> {
    eve_model::certs::der(base64_pem).ok()
}

/// A Device deleted: its UUID and its reference.
#[derive(Clone, Debug)]
pub struct Departed {
    /// The UUID it was known by.
    pub uuid: String,
    /// The Device.
    pub device: ObjectRef<Device>,
}

/// Deleted Devices waiting for their telemetry to be forgotten; past it, a deletion's
/// telemetry is left to retention.
const DEPARTURES: usize = 4096;

/// The UUID a device is told and known by: its object's UID, which no user can write (a
/// `status.uuid` written through the API never changes who a device is).
pub fn uuid_of(device: &Device) -> Option<String> {
    device.uid()
}

fn known(device: &Device) -> Option<([u8; 32], Known)> {
    let der = certificate_der(device.spec.certificate.as_deref()?)?;
    let public_key = eve_api::envelope::public_key(&der).ok()?;
    let uuid = uuid_of(device)?;
    Some((
        eve_api::envelope::sha256(&der),
        Known {
            reference: eve_controllers::informers::key(device),
            uuid,
            public_key,
        },
    ))
}

impl Index {
    fn remove(&mut self, key: &ObjectRef<Device>) {
        if let Some(uuid) = self.uuid_of.remove(key) {
            self.by_uuid.remove(&uuid);
        }
        if let Some(hash) = self.by_key.remove(key) {
            self.by_hash.remove(&hash);
        }
        if let Some(pair) = self.onboard_of.remove(key) {
            self.by_onboard.remove(&pair);
        }
        if let Some(hash) = self.onboard_only_of.remove(key)
            && let Some(waiting) = self.onboard_only.get_mut(&hash)
        {
            waiting.retain(|_, r| r != key);
            if waiting.is_empty() {
                self.onboard_only.remove(&hash);
            }
        }
    }

    fn apply(&mut self, device: &Device) {
        let key = eve_controllers::informers::key(device);
        self.remove(&key);
        if let Some(uuid) = uuid_of(device) {
            self.uuid_of.insert(key.clone(), uuid.clone());
            self.by_uuid.insert(uuid, key.clone());
        }
        if let Some(pair) = onboard_key(device) {
            self.onboard_of.insert(key.clone(), pair.clone());
            self.by_onboard.insert(pair, key.clone());
        }
        if let Some(hash) = onboard_only_key(device) {
            let name = format!("{}/{}", key.namespace.clone().unwrap_or_default(), key.name);
            self.onboard_only_of.insert(key.clone(), hash);
            self.onboard_only
                .entry(hash)
                .or_default()
                .insert(name, key.clone());
        }
        if let Some((hash, known)) = known(device) {
            self.by_key.insert(key, hash);
            self.by_hash.insert(hash, known);
        }
    }
}

impl Fleet {
    /// Starts the caches, with informers of their own; returns once every one has its first
    /// list.
    pub async fn start(client: Client, stop: watch::Receiver<bool>) -> Fleet {
        let informers = Informers::new(client, stop);
        let fleet = Fleet::register(&informers);
        informers.start();
        fleet.ready().await;
        fleet
    }

    /// Registers the caches with `informers`; they fill once the informers start (see
    /// [`Fleet::ready`]).
    pub fn register(informers: &Informers) -> Fleet {
        let tracker = Arc::new(Tracker::default());
        let index = Arc::new(RwLock::new(Index::default()));
        let writer = index.clone();
        let configs = tracker.clone();
        let mut prints = HashMap::new();
        let (departed, departures) = tokio::sync::mpsc::channel(DEPARTURES);
        let mut relisting: Option<Index> = None;
        let devices = informers.watch(move |event: &watcher::Event<Device>| {
                // A Device gone: its kept configuration forgotten, its telemetry to be.
                let depart = |key: ObjectRef<Device>, uuid: Option<String>| {
                    configs.forget(&key);
                    if let Some(uuid) = uuid
                        && departed
                            .try_send(Departed {
                                uuid,
                                device: key.clone(),
                            })
                            .is_err()
                    {
                        tracing::warn!(device = %key, "too many deletions at once: this Device's telemetry stays until retention removes it");
                    }
                };
                // A heartbeat (a change of status only) leaves the configuration and the
                // index alone: neither reads the status.
                let mut changed = true;
                match event {
                    watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                        let key = eve_controllers::informers::key(d);
                        let print = d.fingerprint();
                        changed = prints.insert(key.clone(), print) != Some(print);
                        if changed {
                            configs.device_changed(key);
                        }
                    }
                    watcher::Event::Delete(d) => {
                        let key = eve_controllers::informers::key(d);
                        prints.remove(&key);
                        depart(key, uuid_of(d));
                    }
                    // A re-list rebuilds the index from scratch.
                    watcher::Event::Init => prints.clear(),
                    watcher::Event::InitDone => configs.everything_changed(),
                }
                // A re-list builds a new index on the side, swapped in once complete, as the
                // reflector does with its cache: devices are known throughout.
                match event {
                    watcher::Event::Init => relisting = Some(Index::default()),
                    watcher::Event::InitApply(d) => {
                        if let Some(next) = relisting.as_mut() {
                            next.apply(d);
                        }
                        writer
                            .write()
                            .expect("not poisoned")
                            .learned
                            .remove(&eve_controllers::informers::key(d));
                    }
                    watcher::Event::InitDone => {
                        if let Some(next) = relisting.take() {
                            let mut index = writer.write().expect("not poisoned");
                            // Devices deleted while the watch was behind are in no list,
                            // or listed again under another UUID (deleted and made again).
                            for (key, uuid) in &index.uuid_of {
                                if next.uuid_of.get(key) != Some(uuid) {
                                    depart(key.clone(), Some(uuid.clone()));
                                }
                            }
                            let learned = std::mem::take(&mut index.learned);
                            *index = Index { learned, ..next };
                        }
                    }
                    watcher::Event::Apply(d) => {
                        let mut index = writer.write().expect("not poisoned");
                        index.learned.remove(&eve_controllers::informers::key(d));
                        if changed {
                            index.apply(d)
                        }
                    }
                    watcher::Event::Delete(d) => {
                        let mut index = writer.write().expect("not poisoned");
                        index.learned.remove(&eve_controllers::informers::key(d));
                        index.remove(&eve_controllers::informers::key(d))
                    }
                }
            },
        );
        let apps = Arc::new(RwLock::new(AppIndex::default()));
        let writer = apps.clone();
        let configs = tracker.clone();
        let mut app_prints = HashMap::new();
        let mut relisting_apps: Option<AppIndex> = None;
        // Kinds many devices' configurations share: a change reaches the devices that read
        // the object; a re-list (which does not tell what was deleted meanwhile), every device.
        fn shared_for<K: kube::Resource>(
            tracker: &Arc<Tracker>,
            kind: Shared,
        ) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
            let tracker = tracker.clone();
            move |event| match event {
                watcher::Event::Apply(o) | watcher::Event::Delete(o) => tracker.shared_changed(
                    kind,
                    o.meta().namespace.as_deref().unwrap_or_default(),
                    o.meta().name.as_deref().unwrap_or_default(),
                ),
                watcher::Event::InitDone => tracker.everything_changed(),
                watcher::Event::Init | watcher::Event::InitApply(_) => {}
            }
        }
        // Kinds that name credentials Secrets: their names may have changed too.
        fn naming_secrets<K: kube::Resource>(
            tracker: &Arc<Tracker>,
            secrets: &Arc<Secrets>,
            kind: Shared,
        ) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
            let mut shared = shared_for(tracker, kind);
            let secrets = secrets.clone();
            move |event| {
                shared(event);
                secrets.names_may_have_changed();
            }
        }
        let secrets = Arc::new(Secrets::default());
        let paused_configs = tracker.clone();
        let mut paused = HashSet::new();
        Fleet {
            departures: Arc::new(std::sync::Mutex::new(Some(departures))),
            devices,
            applications: informers.watch(move |event| {
                let mut index = writer.write().expect("not poisoned");
                // The devices an application was and is bound to.
                let touch = |index: &AppIndex, app: &Application| {
                    let before = index
                        .device_of
                        .get(&eve_controllers::informers::key(app))
                        .cloned();
                    let now = app.namespace().zip(app.spec.node_name.clone());
                    for (ns, name) in before.into_iter().chain(now) {
                        configs.device_changed(ObjectRef::new(&name).within(&ns));
                    }
                };
                match event {
                    watcher::Event::Apply(a) | watcher::Event::InitApply(a) => {
                        let print = application_fingerprint(a);
                        if app_prints.insert(eve_controllers::informers::key(a), print)
                            != Some(print)
                        {
                            touch(&index, a);
                        }
                    }
                    watcher::Event::Delete(a) => {
                        app_prints.remove(&eve_controllers::informers::key(a));
                        touch(&index, a);
                    }
                    _ => {}
                }
                // A re-list builds a new index on the side, swapped in once complete: a
                // configuration composed meanwhile still has every application.
                match event {
                    watcher::Event::Init => relisting_apps = Some(AppIndex::default()),
                    watcher::Event::InitApply(a) => {
                        if let Some(next) = relisting_apps.as_mut() {
                            next.apply(a);
                        }
                    }
                    watcher::Event::InitDone => {
                        if let Some(next) = relisting_apps.take() {
                            // Applications deleted while the watch was behind are in no list:
                            // forgotten, and every configuration checked again.
                            let listed: HashSet<&ObjectRef<Application>> =
                                next.by_uid.values().collect();
                            app_prints.retain(|app, _| listed.contains(app));
                            *index = next;
                            configs.everything_changed();
                        }
                    }
                    watcher::Event::Apply(a) => index.apply(a),
                    watcher::Event::Delete(a) => index.remove(a),
                }
            }),
            images: informers.watch({
                // An Image that is or was a base OS is also a change of its namespace's base
                // OS images, which Devices asking for a version read.
                let mut images = shared_for(&tracker, Shared::Image);
                let tracker = tracker.clone();
                let mut base_os: HashSet<(String, String)> = HashSet::new();
                move |event: &watcher::Event<eve_model::Image>| {
                    images(event);
                    let (image, now) = match event {
                        watcher::Event::Apply(i) | watcher::Event::InitApply(i) => {
                            (i, eve_model::image::is_base_os(i))
                        }
                        watcher::Event::Delete(i) => (i, false),
                        watcher::Event::Init | watcher::Event::InitDone => return,
                    };
                    let key = (image.namespace().unwrap_or_default(), image.name_any());
                    let was = if now {
                        !base_os.insert(key.clone())
                    } else {
                        base_os.remove(&key)
                    };
                    if (now || was) && !matches!(event, watcher::Event::InitApply(_)) {
                        tracker.shared_changed(Shared::BaseOsImage, &key.0, &key.1);
                    }
                }
            }),
            claims: informers.watch(shared_for(&tracker, Shared::Claim)),
            classes: informers.watch(naming_secrets(&tracker, &secrets, Shared::StorageClass)),
            networks: informers.watch(shared_for(&tracker, Shared::Network)),
            network_configs: informers.watch(naming_secrets(
                &tracker,
                &secrets,
                Shared::NetworkConfig,
            )),
            secrets: secrets.clone(),
            models: informers.watch_with(
                watcher::Config::default().fields(&format!(
                    "metadata.name={}",
                    eve_model::device_model::MODELS
                )),
                shared_for(&tracker, Shared::DeviceModels),
            ),
            onboard_certificates: informers.store(),
            onboard_authorities: informers.store(),
            device_authorities: informers.store(),
            options: informers.watch_with(
                watcher::Config::default().fields(&format!("metadata.name={GLOBAL_OPTIONS}")),
                shared_for(&tracker, Shared::GlobalOptions),
            ),
            device_configs: informers.watch(move |event: &watcher::Event<Written>| {
                // A paused configuration (or one that was) is served as written: serve
                // it anew. Otherwise the writer checks it against the composed one.
                let (watcher::Event::Apply(c)
                | watcher::Event::InitApply(c)
                | watcher::Event::Delete(c)) = event
                else {
                    return;
                };
                let device =
                    ObjectRef::new(&c.name_any()).within(&c.namespace().unwrap_or_default());
                let now = c.spec.is_paused() && !matches!(event, watcher::Event::Delete(_));
                let before = if now {
                    !paused.insert(device.clone())
                } else {
                    paused.remove(&device)
                };
                if now || before {
                    paused_configs.device_changed(device);
                } else {
                    paused_configs.mark(device);
                }
            }),
            configs: tracker.clone(),
            index,
            apps,
        }
    }

    /// Returns once every cache has its first list.
    pub async fn ready(&self) {
        let fleet = self;
        let _ = futures::join!(
            fleet.devices.wait_until_ready(),
            fleet.applications.wait_until_ready(),
            fleet.images.wait_until_ready(),
            fleet.claims.wait_until_ready(),
            fleet.classes.wait_until_ready(),
            fleet.networks.wait_until_ready(),
            fleet.network_configs.wait_until_ready(),
            fleet.onboard_certificates.wait_until_ready(),
            fleet.onboard_authorities.wait_until_ready(),
            fleet.device_authorities.wait_until_ready(),
            fleet.options.wait_until_ready(),
            fleet.device_configs.wait_until_ready(),
            fleet.models.wait_until_ready(),
        );
    }

    /// The device whose certificate's DER hashes to (a prefix equal to) `hash`.
    pub fn by_hash(&self, hash: &[u8]) -> Option<Known> {
        let index = self.index.read().expect("not poisoned");
        if let Ok(full) = <[u8; 32]>::try_from(hash) {
            return index.by_hash.get(&full).cloned();
        }
        index
            .by_hash
            .iter()
            .find(|(h, _)| h.starts_with(hash))
            .map(|(_, k)| k.clone())
    }

    /// The Device claiming the onboarding certificate whose DER hashes to `onboard` with
    /// `serial`.
    pub fn by_onboard(&self, onboard: &[u8; 32], serial: &str) -> Option<Arc<Device>> {
        let index = self.index.read().expect("not poisoned");
        let key = index
            .by_onboard
            .get(&(*onboard, serial.to_string()))?
            .clone();
        drop(index);
        self.devices.get(&key)
    }

    /// The Device waiting for any device with the onboarding certificate whose DER hashes to
    /// `onboard` (it names that certificate, and neither a serial nor a device certificate);
    /// the first by namespace/name when several do.
    pub fn by_onboard_only(&self, onboard: &[u8; 32]) -> Option<Arc<Device>> {
        let index = self.index.read().expect("not poisoned");
        let key = index.onboard_only.get(onboard)?.values().next()?.clone();
        drop(index);
        self.devices.get(&key)
    }

    /// The UUIDs of Devices as they are deleted (the first caller gets them; later ones
    /// `None`).
    pub fn departures(&self) -> Option<tokio::sync::mpsc::Receiver<Departed>> {
        self.departures.lock().expect("not poisoned").take()
    }

    /// The Device whose UUID is `uuid`.
    pub fn by_uuid(&self, uuid: &str) -> Option<Arc<Device>> {
        let key = self
            .index
            .read()
            .expect("not poisoned")
            .by_uuid
            .get(uuid)?
            .clone();
        self.object(&key)
    }

    /// The application with UID `uid`.
    pub fn application(&self, uid: &str) -> Option<Arc<Application>> {
        let key = self
            .apps
            .read()
            .expect("not poisoned")
            .by_uid
            .get(uid)?
            .clone();
        self.applications.get(&key)
    }

    /// The applications bound to the device `name` in `namespace`, by name.
    pub fn applications_on(&self, namespace: &str, name: &str) -> Vec<Arc<Application>> {
        let keys: Vec<ObjectRef<Application>> = self
            .apps
            .read()
            .expect("not poisoned")
            .by_device
            .get(&(namespace.to_string(), name.to_string()))
            .map(|set| set.values().cloned().collect())
            .unwrap_or_default();
        keys.iter()
            .filter_map(|k| self.applications.get(k))
            .collect()
    }

    /// Makes a Device known at once (after this process wrote it), before its watch event.
    pub fn learn(&self, device: &Device) {
        let mut index = self.index.write().expect("not poisoned");
        index.apply(device);
        index.learned.insert(
            eve_controllers::informers::key(device),
            Arc::new(device.clone()),
        );
    }

    /// A Device from the cache, or as this process wrote it if the cache has not caught up.
    pub(crate) fn object(&self, key: &ObjectRef<Device>) -> Option<Arc<Device>> {
        let learned = self
            .index
            .read()
            .expect("not poisoned")
            .learned
            .get(key)
            .cloned();
        learned.or_else(|| self.devices.get(key))
    }

    /// The Device object of `known`.
    pub fn device(&self, known: &Known) -> Option<Arc<Device>> {
        self.object(&known.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn example(file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/keys")
            .join(file);
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
    }

    fn device(
        name: &str,
        onboard: &str,
        serial: Option<&str>,
        certificate: Option<&str>,
    ) -> Device {
        let mut d = Device::new(name, eve_model::DeviceSpec::default());
        d.metadata.namespace = Some("lab".into());
        d.spec.onboard = Some(onboard.into());
        d.spec.serial = serial.map(str::to_owned);
        d.spec.certificate = certificate.map(str::to_owned);
        d
    }

    #[test]
    fn a_device_naming_only_its_onboarding_certificate_waits_until_it_has_a_certificate() {
        let onboard = example("onboard.pem");
        let hash = eve_api::envelope::sha256(&certificate_der(&onboard).unwrap());
        let waiting = |index: &Index| {
            index
                .onboard_only
                .get(&hash)
                .map(|m| m.values().map(|r| r.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let mut index = Index::default();
        index.apply(&device("b", &onboard, None, None));
        index.apply(&device("a", &onboard, Some(""), None));
        // With a serial it is matched by the pair instead.
        index.apply(&device("c", &onboard, Some("SN"), None));
        assert_eq!(waiting(&index), ["a", "b"]);
        assert!(index.by_onboard.contains_key(&(hash, "SN".to_string())));
        // Claimed (its device certificate written): no longer waiting.
        index.apply(&device("a", &onboard, None, Some(&example("device.pem"))));
        assert_eq!(waiting(&index), ["b"]);
        index.remove(&ObjectRef::new("b").within("lab"));
        assert!(index.onboard_only.is_empty());
    }
}
