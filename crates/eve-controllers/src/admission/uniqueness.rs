//! The keys that must be unique among Devices, and the index of the Devices holding them that
//! the device watch feeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use eve_model::{Device, DeviceSpec, certs};
use kube::runtime::reflector::{ObjectRef, Store};

/// A key that must be unique among Devices: the device certificate, or the (serial,
/// onboarding certificate) pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum UniqueKey {
    Certificate(Vec<u8>),
    Serial(String, Vec<u8>),
}

impl UniqueKey {
    /// The field the key is reported at.
    pub(super) fn path(&self) -> &'static str {
        match self {
            UniqueKey::Certificate(_) => "spec.certificate",
            UniqueKey::Serial(..) => "spec.serial",
        }
    }

    /// What the key is, for people.
    pub(super) fn what(&self) -> &'static str {
        match self {
            UniqueKey::Certificate(_) => "device certificate",
            UniqueKey::Serial(..) => "serial and onboarding certificate",
        }
    }

    /// A short hash of the key.
    pub(super) fn short(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// The unique keys of a Device's spec (those whose certificates read).
pub(super) fn unique_keys(spec: &DeviceSpec) -> Vec<UniqueKey> {
    let decode = |field: &Option<String>| field.as_deref().and_then(|c| certs::decode(c).ok());
    let mut keys = Vec::new();
    if let Some(cert) = decode(&spec.certificate) {
        keys.push(UniqueKey::Certificate(cert.der));
    }
    if let (Some(serial), Some(onboard)) = (
        spec.serial.as_deref().filter(|s| !s.is_empty()),
        decode(&spec.onboard),
    ) {
        keys.push(UniqueKey::Serial(serial.to_owned(), onboard.der));
    }
    keys
}

/// Devices by a short hash of their unique keys, fed by the device watch. Entries are hints:
/// a lookup checks each candidate against the cache and drops those that no longer hold, so a
/// Device changed or deleted while the watch was re-listing leaves nothing wrong behind.
#[derive(Default)]
pub struct DeviceKeys {
    map: Mutex<HashMap<u64, Vec<ObjectRef<Device>>>>,
}

impl DeviceKeys {
    /// Records the keys of a Device the watch delivered.
    pub fn observe(&self, device: &Device) {
        let reference = crate::informers::key(device);
        let mut map = self.map.lock().expect("not poisoned");
        for key in unique_keys(&device.spec) {
            // Almost every key has one holder: room for one, not the four a first push makes.
            let owners = map
                .entry(key.short())
                .or_insert_with(|| Vec::with_capacity(1));
            if !owners.contains(&reference) {
                owners.push(reference.clone());
            }
        }
    }

    /// The Devices in `store` that hold `key`.
    pub(super) fn holders(&self, store: &Store<Device>, key: &UniqueKey) -> Vec<ObjectRef<Device>> {
        let short = key.short();
        let candidates = self
            .map
            .lock()
            .expect("not poisoned")
            .get(&short)
            .cloned()
            .unwrap_or_default();
        let (holders, stale): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|r| {
            store
                .get(r)
                .is_some_and(|d| unique_keys(&d.spec).contains(key))
        });
        if !stale.is_empty() {
            let mut map = self.map.lock().expect("not poisoned");
            if let Some(owners) = map.get_mut(&short) {
                owners.retain(|r| !stale.contains(r));
                if owners.is_empty() {
                    map.remove(&short);
                }
            }
        }
        holders
    }
}

/// The device cache admission consults for uniqueness.
#[derive(Clone)]
pub struct DeviceLookup {
    /// The Devices.
    pub store: Store<Device>,
    /// Their unique keys.
    pub keys: Arc<DeviceKeys>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};

    use crate::admission::testing::example_certificate;

    fn device(name: &str, certificate: Option<&str>, serial: Option<(&str, &str)>) -> Device {
        let mut d = Device::new(name, DeviceSpec::default());
        d.metadata.namespace = Some("fleet".into());
        d.spec.certificate = certificate.map(str::to_owned);
        if let Some((serial, onboard)) = serial {
            d.spec.serial = Some(serial.into());
            d.spec.onboard = Some(onboard.into());
        }
        d
    }

    #[test]
    fn device_keys_find_holders_and_forget_what_no_longer_holds() {
        let cert = example_certificate("device.pem");
        let onboard = example_certificate("onboard.pem");
        let (store, mut writer) = reflector::store();
        let keys = DeviceKeys::default();
        let apply = |writer: &mut reflector::store::Writer<Device>, d: &Device| {
            writer.apply_watcher_event(&watcher::Event::Apply(d.clone()));
            keys.observe(d);
        };
        let a = device("a", Some(&cert), None);
        let b = device("b", None, Some(("s1", &onboard)));
        apply(&mut writer, &a);
        apply(&mut writer, &b);
        let names = |key: &UniqueKey| -> Vec<String> {
            keys.holders(&store, key)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        let by_cert = unique_keys(&device("x", Some(&cert), None).spec);
        let by_serial = unique_keys(&device("x", None, Some(("s1", &onboard))).spec);
        let other_serial = unique_keys(&device("x", None, Some(("s2", &onboard))).spec);
        assert_eq!(names(&by_cert[0]), ["a"]);
        assert_eq!(names(&by_serial[0]), ["b"]);
        assert!(names(&other_serial[0]).is_empty());
        // a changes its certificate away, b is deleted: neither holds its key any more, and
        // the stale hints are dropped on lookup.
        let a2 = device("a", None, None);
        apply(&mut writer, &a2);
        writer.apply_watcher_event(&watcher::Event::Delete(b.clone()));
        assert!(names(&by_cert[0]).is_empty());
        assert!(names(&by_serial[0]).is_empty());
        assert!(keys.map.lock().unwrap().is_empty());
    }
}
