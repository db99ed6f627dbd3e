//! The DeviceConfig writer: each device's configuration written as its DeviceConfig, owned by
//! its Device, with a `Valid` condition saying where the served configuration comes from.

use std::collections::HashSet;
use std::sync::Arc;

use eve_model::{Device, DeviceConfig, DeviceConfigSpec, DeviceConfigStatus, conditions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::watch;

use crate::configs::Source;
use crate::{DeviceApi, configs, fleet};

/// How many DeviceConfig writes run at once.
const CONFIG_WRITERS: u16 = 8;

/// Whether `config` is controlled by `owner` (its UID), blocking its deletion in foreground.
fn owned_by(config: &ObjectMeta, owner: &OwnerReference) -> bool {
    config.owner_references.iter().flatten().any(|o| {
        o.uid == owner.uid && o.controller == Some(true) && o.block_owner_deletion == Some(true)
    })
}

impl DeviceApi {
    /// Writes each device's configuration as its DeviceConfig whenever it changes, until
    /// `stop`. A paused DeviceConfig keeps its spec (only its status is written); an edit of an
    /// unpaused one is replaced by the composed configuration. Each DeviceConfig is owned by its
    /// Device (`controller` and `blockOwnerDeletion`): the garbage collector deletes it with
    /// the Device (kube's in cluster mode, the API server's own in `adamant serve`).
    pub async fn write_device_configs(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // On kube-runtime's applier, as the controllers are: one write per device at a time, a
        // device named again while queued written once, a failure retried with back-off.
        let (queue, requests) = futures::channel::mpsc::unbounded();
        eve_controllers::runtime::applier::spawn(
            "DeviceConfig writer",
            self.fleet.devices.clone(),
            requests,
            self.clone(),
            CONFIG_WRITERS,
            |device: Arc<Device>, api: Arc<DeviceApi>| async move {
                match api
                    .write_device_config(&ObjectRef::from_obj(device.as_ref()))
                    .await
                {
                    Ok(()) => Ok(Action::await_change()),
                    // The cache has not caught up with a write (this writer's or another
                    // replica's): looked at again shortly, without the back-off of a failure.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        Ok(Action::requeue(std::time::Duration::from_millis(500)))
                    }
                    Err(e) => Err(e),
                }
            },
            stop.clone(),
        );
        loop {
            let dirty = tokio::select! {
                dirty = self.fleet.configs.dirty() => dirty,
                _ = stop.changed() => return,
            };
            let mut devices: HashSet<ObjectRef<Device>> = dirty.devices;
            if dirty.all {
                // A DeviceConfig whose Device is gone is the garbage collector's: only
                // Devices are named.
                devices.extend(
                    self.fleet
                        .devices
                        .state()
                        .iter()
                        .map(|d| ObjectRef::from_obj(d.as_ref())),
                );
            }
            for device in devices {
                if queue.unbounded_send(device).is_err() {
                    return;
                }
            }
        }
    }

    async fn write_device_config(&self, key: &ObjectRef<Device>) -> Result<(), kube::Error> {
        let namespace = key.namespace.clone().unwrap_or_default();
        let api: Api<DeviceConfig> = Api::namespaced(self.client.clone(), &namespace);
        let written = self
            .fleet
            .device_configs
            .get(&ObjectRef::new(&key.name).within(&namespace));
        let paused = written.as_ref().is_some_and(|c| c.spec.is_paused());
        let device = self
            .fleet
            .devices
            .get(key)
            .filter(|d| d.metadata.deletion_timestamp.is_none());
        // A DeviceConfig whose Device is gone is the garbage collector's.
        let Some(device) = device else {
            return Ok(());
        };
        let Some(uuid) = fleet::uuid_of(&device) else {
            return Ok(());
        };
        let served = self.served(&device, &uuid);
        let mut current = written;
        if !paused {
            // The configuration as JSON only when it is to be written: most reconciles (a
            // change that composed the same configuration) write nothing.
            let paused = current.as_ref().and_then(|c| c.spec.paused);
            let spec = || DeviceConfigSpec {
                device: key.name.clone(),
                paused,
                config: Some(configs::to_json(&served.config())),
            };
            let owner = OwnerReference {
                api_version: "eve.lfedge.org/v1beta1".into(),
                kind: "Device".into(),
                name: key.name.clone(),
                uid: device.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            };
            current = match current {
                Some(c) if c.holds(&served.hash) && owned_by(&c.metadata, &owner) => Some(c),
                Some(c) => {
                    // Put back, and adopted by this Device (one made by hand, or left by a
                    // Device of the same name that is gone).
                    let mut next = DeviceConfig::new(&key.name, spec());
                    next.metadata = c.metadata.clone();
                    let mut owners = next.metadata.owner_references.take().unwrap_or_default();
                    owners.retain(|o| !(o.kind == owner.kind && o.name == owner.name));
                    owners.retain(|o| o.controller != Some(true));
                    owners.push(owner);
                    next.metadata.owner_references = Some(owners);
                    Some(Arc::new(
                        api.replace(&key.name, &PostParams::default(), &next)
                            .await?
                            .into(),
                    ))
                }
                None => {
                    let mut next = DeviceConfig::new(&key.name, spec());
                    next.metadata.namespace = Some(namespace.clone());
                    next.metadata.owner_references = Some(vec![owner]);
                    match api.create(&PostParams::default(), &next).await {
                        Ok(created) => Some(Arc::new(created.into())),
                        // Another replica wrote it first: check it on its watch event.
                        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            };
        }
        let Some(current) = current else {
            return Ok(());
        };
        let Some(status) = status_to_write(
            current.status.as_ref(),
            current.metadata.generation,
            &served.hash,
            &served.source,
            Time(jiff::Timestamp::now()),
        ) else {
            return Ok(());
        };
        api.patch_status(
            &key.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
        Ok(())
    }
}

/// The status a DeviceConfig at `generation`, whose status is `old`, must be given when its
/// device is served the configuration `hash` from `source`; `None` when `old` says all that.
/// The `Valid` condition is set through [`conditions::set`], so its `lastTransitionTime` moves
/// only when it turns from True to False or back.
fn status_to_write(
    old: Option<&DeviceConfigStatus>,
    generation: Option<i64>,
    hash: &str,
    source: &Source,
    now: Time,
) -> Option<DeviceConfigStatus> {
    let (valid, reason, message) = match source {
        Source::Composed => (true, "Composed", "composed from the objects".to_string()),
        Source::Paused => (
            true,
            "Paused",
            "paused: served as written, the composer leaves it alone".to_string(),
        ),
        Source::Invalid(why) => (
            false,
            "InvalidConfig",
            format!("{why}; the device gets the composed configuration until this is fixed"),
        ),
    };
    let old = old.cloned().unwrap_or_default();
    let mut conditions = old.conditions.clone();
    let changed = conditions::set(&mut conditions, "Valid", valid, reason, &message, now);
    let observed =
        conditions::find(&conditions, "Valid").is_some_and(|c| c.observed_generation == generation);
    if !changed
        && observed
        && old.config_hash.as_deref() == Some(hash)
        && old.observed_generation == generation
    {
        return None;
    }
    for condition in conditions.iter_mut().filter(|c| c.type_ == "Valid") {
        condition.observed_generation = generation;
    }
    Some(DeviceConfigStatus {
        config_hash: Some(hash.to_string()),
        observed_generation: generation,
        conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn valid_moves_its_transition_time_only_when_it_turns() {
        let composed = status_to_write(None, Some(1), "h1", &Source::Composed, at(10)).unwrap();
        let valid = &composed.conditions[0];
        assert_eq!(
            (
                valid.type_.as_str(),
                valid.status.as_str(),
                valid.reason.as_str()
            ),
            ("Valid", "True", "Composed")
        );
        assert_eq!(valid.observed_generation, Some(1));
        assert_eq!(valid.last_transition_time, at(10));
        // Nothing new: nothing to write.
        assert!(
            status_to_write(Some(&composed), Some(1), "h1", &Source::Composed, at(20)).is_none()
        );
        // A new configuration at a new generation: written, still valid since 10.
        let next =
            status_to_write(Some(&composed), Some(2), "h2", &Source::Composed, at(20)).unwrap();
        assert_eq!(next.config_hash.as_deref(), Some("h2"));
        assert_eq!(next.observed_generation, Some(2));
        assert_eq!(next.conditions[0].observed_generation, Some(2));
        assert_eq!(next.conditions[0].last_transition_time, at(10));
        // Paused is valid too: the reason changes, the transition time does not.
        let paused = status_to_write(Some(&next), Some(3), "h3", &Source::Paused, at(30)).unwrap();
        assert_eq!(paused.conditions[0].reason, "Paused");
        assert_eq!(paused.conditions[0].last_transition_time, at(10));
        // Invalid turns it False, now.
        let invalid = Source::Invalid("spec.config is not an EdgeDevConfig".into());
        let refused = status_to_write(Some(&paused), Some(4), "h2", &invalid, at(40)).unwrap();
        assert_eq!(refused.conditions[0].status, "False");
        assert_eq!(refused.conditions[0].last_transition_time, at(40));
        assert!(
            refused.conditions[0]
                .message
                .contains("not an EdgeDevConfig")
        );
        assert_eq!(refused.conditions.len(), 1);
    }
}
