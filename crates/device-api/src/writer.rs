//! The DeviceConfig writer: each device's configuration written as its DeviceConfig, owned by
//! its Device, with a `Valid` condition saying where the served configuration comes from.

use std::collections::HashSet;
use std::sync::Arc;

use eve_model::{Condition, Device, DeviceConfig, DeviceConfigSpec, DeviceConfigStatus};
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
            let spec = DeviceConfigSpec {
                device: key.name.clone(),
                paused: current.as_ref().and_then(|c| c.spec.paused),
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
                    let mut next = DeviceConfig::new(&key.name, spec);
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
                    let mut next = DeviceConfig::new(&key.name, spec);
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
        let (state, reason, message) = match &served.source {
            Source::Composed => ("True", "Composed", "composed from the objects".to_string()),
            Source::Paused => (
                "True",
                "Paused",
                "paused: served as written, the composer leaves it alone".to_string(),
            ),
            Source::Invalid(why) => (
                "False",
                "InvalidConfig",
                format!("{why}; the device gets the composed configuration until this is fixed"),
            ),
        };
        let old = current.status.clone().unwrap_or_default();
        let same_condition = old.conditions.iter().any(|c| {
            c.type_ == "Valid" && c.status == state && c.reason == reason && c.message == message
        });
        if old.config_hash.as_deref() == Some(served.hash.as_str())
            && old.observed_generation == current.metadata.generation
            && same_condition
        {
            return Ok(());
        }
        let status = DeviceConfigStatus {
            config_hash: Some(served.hash.clone()),
            observed_generation: current.metadata.generation,
            conditions: vec![Condition {
                type_: "Valid".into(),
                status: state.into(),
                reason: reason.into(),
                message,
                observed_generation: current.metadata.generation,
                last_transition_time: Time(jiff::Timestamp::now()),
            }],
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
