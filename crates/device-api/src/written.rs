//! DeviceConfig objects as the device API keeps them in memory. Every device's composed
//! configuration is already kept once, signed (`configs`); a cache of whole DeviceConfigs would
//! hold each a second time, as a JSON tree several times its size. So the cache keeps of a
//! DeviceConfig its metadata, its status and whether it is paused, and its `spec.config` only
//! when it is paused (then it is what the device gets). Whether an unpaused one still holds the
//! composed configuration is told by its status: the writer records the hash it wrote at the
//! generation it wrote it, and any edit moves the generation.

use std::borrow::Cow;

use eve_model::{DeviceConfig, DeviceConfigSpec, DeviceConfigStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// A DeviceConfig, without the configuration of an unpaused one.
#[derive(Clone, Debug, Deserialize)]
pub struct Written {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// What the cache keeps of its spec.
    #[serde(default)]
    pub spec: WrittenSpec,
    /// Its status.
    #[serde(default)]
    pub status: Option<DeviceConfigStatus>,
}

/// What the cache keeps of a DeviceConfig's spec.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "DeviceConfigSpec")]
pub struct WrittenSpec {
    /// `spec.paused`, as written.
    pub paused: Option<bool>,
    /// `spec.config`, when paused.
    pub config: Option<serde_json::Value>,
}

impl WrittenSpec {
    /// Whether the user holds this configuration (`spec.paused: true`).
    pub fn is_paused(&self) -> bool {
        self.paused == Some(true)
    }
}

impl From<DeviceConfigSpec> for WrittenSpec {
    fn from(spec: DeviceConfigSpec) -> WrittenSpec {
        let paused = spec.is_paused();
        WrittenSpec {
            paused: spec.paused,
            config: spec.config.filter(|_| paused),
        }
    }
}

impl From<DeviceConfig> for Written {
    fn from(config: DeviceConfig) -> Written {
        Written {
            metadata: config.metadata,
            spec: config.spec.into(),
            status: config.status,
        }
    }
}

impl Written {
    /// Whether the writer's last write is what it holds: its status records `hash` at its
    /// current generation.
    pub fn holds(&self, hash: &str) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.config_hash.as_deref() == Some(hash)
                && s.observed_generation.is_some()
                && s.observed_generation == self.metadata.generation
        })
    }
}

impl kube::Resource for Written {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        DeviceConfig::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        DeviceConfig::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        DeviceConfig::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        DeviceConfig::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: serde_json::Value) -> Written {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn an_unpaused_configuration_is_dropped_and_a_paused_one_kept() {
        let config = json!({"id": {"uuid": "u", "version": "1"}});
        let object = |paused: Option<bool>| {
            json!({
                "apiVersion": "eve.lfedge.org/v1beta1",
                "kind": "DeviceConfig",
                "metadata": {"name": "d", "namespace": "ns", "generation": 3},
                "spec": {"device": "d", "paused": paused, "config": config},
                "status": {"configHash": "h", "observedGeneration": 3},
            })
        };
        let composed = read(object(None));
        assert_eq!(composed.spec.config, None);
        assert!(!composed.spec.is_paused());
        assert!(composed.holds("h"));
        assert!(!composed.holds("other"));
        let held = read(object(Some(true)));
        assert!(held.spec.is_paused());
        assert_eq!(held.spec.config, Some(config.clone()));
        // An edit moves the generation past what the writer wrote.
        let mut edited = object(None);
        edited["metadata"]["generation"] = 4.into();
        assert!(!read(edited).holds("h"));
        // Nothing written yet.
        let mut fresh = object(None);
        fresh.as_object_mut().unwrap().remove("status");
        assert!(!read(fresh).holds("h"));
    }
}
