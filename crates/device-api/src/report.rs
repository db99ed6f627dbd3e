//! Status from devices: `info` messages applied to `Device.status` (node info, capacity,
//! addresses, EVE-OS version, a Ready condition with heartbeat semantics) and
//! `Application.status` (EVE's state and its history, the states of its volumes and of the
//! Images it uses). A Device is written when what it reports changes, not on every message (as
//! kubelets do with node status). Liveness is apart, in [`crate::liveness`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use eve_api::info::{ZInfoContentTree, ZInfoDevice, ZInfoMsg, ZSwState, z_info_msg::InfoContent};
use eve_model::{Application, ContentTreeStatus, Device, VolumeStatus};
use http::StatusCode;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::Refused;
use crate::compose::ImageName;
use crate::fleet::Fleet;
use crate::liveness::{
    Due, Liveness, MIN_WRITE_INTERVAL, heartbeat_due, heartbeat_interval, key_of, shown_heartbeat,
    shows_ready,
};

/// How many state changes an Application's `status.statuses` keeps.
pub const HISTORY: usize = 20;

/// Applies reports to the objects.
pub struct Reporter {
    client: Client,
    /// What was last written of each Device's report (a digest) and when.
    last: Mutex<HashMap<String, (u64, Instant)>>,
    liveness: std::sync::Arc<Liveness>,
}

/// A digest of `value` (a report's text, a configuration hash, a UID), to tell whether it
/// changed without keeping it.
pub(crate) fn digest(value: &(impl std::hash::Hash + ?Sized)) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

pub(crate) fn now() -> String {
    seconds(jiff::Timestamp::now()).to_string()
}

/// `status.conditions` of `device` with `Ready` set by `update` at `at`, through
/// [`eve_model::conditions::set_device`] (its transition time moves only when it turns), as
/// the JSON of a merge patch.
pub(crate) fn ready_conditions(
    device: &Device,
    update: eve_model::conditions::DeviceConditionUpdate<'_>,
    at: jiff::Timestamp,
) -> Value {
    let mut conditions = device
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    eve_model::conditions::set_device(
        &mut conditions,
        "Ready",
        update,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(seconds(at)),
    );
    serde_json::to_value(conditions).unwrap_or_default()
}

/// `at` to the second, as status times are written.
fn seconds(at: jiff::Timestamp) -> jiff::Timestamp {
    at.round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))
        .unwrap_or(at)
}

/// The most addresses a Device's status lists.
pub const MAX_ADDRESSES: usize = 32;
/// The longest text a device's report puts in a status field (a host name: 253).
pub const MAX_TEXT: usize = 256;

/// The most adapters (and members of one) a Device's status lists.
pub const MAX_ADAPTERS: usize = 64;

/// The longest error a device's report puts in a volume's or an Image's status.
pub const MAX_ERROR: usize = 1024;

/// `text` cut to [`MAX_TEXT`] bytes.
fn text(text: &str) -> String {
    crate::telemetry::ingest::bounded(text, MAX_TEXT).0
}

/// What a device's `ZInfoDevice` says, as Device status fields (without times), every field
/// bounded (a device may send anything).
pub fn device_status(info: &ZInfoDevice) -> Value {
    let mut status = serde_json::Map::new();
    let version = info
        .sw_list
        .iter()
        .find(|s| s.activated)
        .map(|s| text(&s.short_version));
    if let Some(version) = &version {
        status.insert("eve-os-version".into(), version.clone().into());
    }
    let mut addresses = Vec::new();
    if !info.host_name.is_empty() {
        addresses.push(json!({"type": "Hostname", "address": text(&info.host_name)}));
    }
    for network in &info.network {
        for address in &network.ip_addrs {
            let address = address.split('/').next().unwrap_or(address);
            addresses.push(json!({"type": "InternalIP", "address": text(address)}));
        }
    }
    addresses.truncate(MAX_ADDRESSES);
    status.insert("addresses".into(), addresses.into());
    let mut capacity = serde_json::Map::new();
    if info.ncpu > 0 {
        capacity.insert("cpu".into(), info.ncpu.to_string().into());
    }
    if info.memory > 0 {
        capacity.insert("memory".into(), format!("{}Mi", info.memory).into());
    }
    if info.storage > 0 {
        capacity.insert(
            "ephemeral-storage".into(),
            format!("{}Mi", info.storage).into(),
        );
    }
    // EVE reserves nothing it reports apart: what a device has is what it can give.
    status.insert("allocatable".into(), capacity.clone().into());
    status.insert("capacity".into(), capacity.into());
    let adapters: Vec<Value> = info
        .assignable_adapters
        .iter()
        .take(MAX_ADAPTERS)
        .map(|bundle| {
            let mut adapter = json!({
                "name": text(&bundle.name),
                "type": eve_api::common::PhyIoType::try_from(bundle.r#type)
                    .map_or_else(|_| bundle.r#type.to_string(), |t| t.as_str_name().to_string()),
                "members": bundle.members.iter().take(MAX_ADAPTERS).map(|m| text(m)).collect::<Vec<_>>(),
            });
            if !bundle.used_by_app_uuid.is_empty() {
                adapter["usedBy"] = text(&bundle.used_by_app_uuid).into();
            }
            if let Some(error) = bundle.err.as_ref().filter(|e| !e.description.is_empty()) {
                adapter["error"] = text(&error.description).into();
            }
            adapter
        })
        .collect();
    status.insert("adapters".into(), adapters.into());
    let minfo = info.minfo.clone().unwrap_or_default();
    let version = version.unwrap_or_default();
    status.insert(
        "nodeInfo".into(),
        json!({
            "architecture": text(&info.machine_arch),
            "operatingSystem": "eve",
            "osImage": format!("EVE-OS {version}"),
            "manufacturer": text(&minfo.manufacturer),
            "productName": text(&minfo.product_name),
            "systemUUID": text(&minfo.uuid),
        }),
    );
    Value::Object(status)
}

impl Reporter {
    /// A reporter writing through `client`, noting devices heard in `liveness`.
    pub fn new(client: Client, liveness: std::sync::Arc<Liveness>) -> Reporter {
        Reporter {
            client,
            last: Mutex::new(HashMap::new()),
            liveness,
        }
    }

    /// Whether `device`'s status needs writing for `reported`: changed, or the Device not
    /// showing Ready (another writer marked it silent).
    fn due(&self, device: &Device, key: &str, reported: &Value) -> bool {
        due_at(
            &mut self.last.lock().expect("not poisoned"),
            key,
            digest(&reported.to_string()),
            shows_ready(device),
            Instant::now(),
        )
    }

    async fn write_device(&self, device: &Device, status: Value) -> Result<(), Refused> {
        self.write_device_at(device, status, None).await
    }

    /// Writes `status` on `device` with `Ready=True`, its heartbeat and `lastSeen` at `heard`
    /// (by default now).
    async fn write_device_at(
        &self,
        device: &Device,
        mut status: Value,
        heard: Option<jiff::Timestamp>,
    ) -> Result<(), Refused> {
        let at = seconds(heard.unwrap_or_else(jiff::Timestamp::now));
        let update = eve_model::conditions::DeviceConditionUpdate {
            status: "True",
            reason: "DeviceReporting",
            message: "the device reports its status to the controller",
            heartbeat: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at)),
        };
        status["conditions"] = ready_conditions(device, update, at);
        status["lastSeen"] = at.to_string().into();
        if let Some(uid) = device.uid()
            && device
                .status
                .as_ref()
                .and_then(|s| s.uuid.as_ref())
                .is_none()
        {
            status["uuid"] = uid.into();
        }
        let api: Api<Device> =
            Api::namespaced(self.client.clone(), &device.namespace().unwrap_or_default());
        api.patch_status(
            &device.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map_err(|e| Refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        // Every write carries the heartbeat: the next one is due a full interval later.
        self.liveness.written(&key_of(device), Instant::now());
        Ok(())
    }

    /// Writes the heartbeat of the Device `key` if it is still due (its Device, as cached now,
    /// not showing `Ready=True`, or showing a heartbeat older than the interval; the device
    /// heard within the grace period).
    pub async fn heartbeat(&self, fleet: &Fleet, key: &str) {
        let Some((namespace, name)) = key.split_once('/') else {
            return;
        };
        let reference = kube::runtime::reflector::ObjectRef::new(name).within(namespace);
        let Some(device) = fleet.object(&reference) else {
            return;
        };
        let now = Instant::now();
        if !self.liveness.alive(key, now, self.liveness.grace()) {
            return;
        }
        let wall = jiff::Timestamp::now();
        let heard = match heartbeat_due(
            shown_heartbeat(&device),
            wall,
            self.liveness.last_written(key),
            now,
            heartbeat_interval(self.liveness.grace()),
        ) {
            Due::No => return,
            Due::Now => None,
            // When the device was heard, not when the budget allowed the write.
            Due::Refresh => self.liveness.heard_at(key, now, wall),
        };
        if let Err(e) = self.write_device_at(&device, json!({}), heard).await {
            tracing::debug!(device = key, error = %e.1, "cannot write a device's heartbeat; its next request queues it again");
        }
    }

    /// Forgets what was last written for a deleted Device.
    pub fn forget(&self, device: &kube::runtime::reflector::ObjectRef<Device>) {
        let key = crate::liveness::key(
            device.namespace.as_deref().unwrap_or_default(),
            &device.name,
        );
        self.last.lock().expect("not poisoned").remove(&key);
        self.liveness.forget(&key);
    }

    /// A report (an `info` or a metrics post): noted in memory; the Device's heartbeat queued
    /// when due ([`heartbeat_due`]), never written on the request's path.
    pub fn seen(&self, device: &Device) {
        self.liveness.heard(device, Instant::now());
    }

    /// A config poll: noted in memory (the device is alive; its heartbeat refreshed when due),
    /// never turning its Device `Ready`.
    pub fn polled(&self, device: &Device) {
        self.liveness.polled(device, Instant::now());
    }

    /// Applies one `ZInfoMsg`.
    pub async fn info(
        &self,
        fleet: &Fleet,
        device: &Device,
        message: ZInfoMsg,
    ) -> Result<(), Refused> {
        match message.info_content {
            Some(InfoContent::Dinfo(info)) => {
                let status = device_status(&info);
                if self.due(device, &key_of(device), &status) {
                    self.write_device(device, status).await?;
                }
            }
            Some(InfoContent::Ainfo(info)) => {
                let state = state_name(info.state);
                let namespace = device.namespace().unwrap_or_default();
                // A device reports only on the Applications placed on it.
                let app = fleet.application(&info.app_id).filter(|a| {
                    a.metadata.namespace.as_deref() == Some(namespace.as_str())
                        && a.spec.node_name.as_deref() == Some(device.name_any().as_str())
                });
                if let Some(app) = app {
                    self.app_state(&namespace, (*app).clone(), &state).await?;
                }
            }
            Some(InfoContent::Vinfo(info)) => self.volume(fleet, device, &info).await?,
            Some(InfoContent::Cinfo(info)) => self.content_tree(fleet, device, &info).await?,
            _ => {}
        }
        self.seen(device);
        Ok(())
    }

    /// Records an Application's new state and its history. The history is read, extended and
    /// written at the Application's `resourceVersion`, read again on a conflict, so that quick
    /// reports (DOWNLOADED, BOOTING, RUNNING) never lose one to a cache not yet caught up.
    async fn app_state(
        &self,
        namespace: &str,
        app: Application,
        state: &str,
    ) -> Result<(), Refused> {
        self.write_app_status(namespace, app, "state", |app| {
            let status = app.status.as_ref();
            if status.and_then(|s| s.state.as_deref()) == Some(state) {
                return None;
            }
            let mut history: Vec<Value> = status
                .map(|s| {
                    s.statuses
                        .iter()
                        .filter_map(|r| serde_json::to_value(r).ok())
                        .collect()
                })
                .unwrap_or_default();
            history.push(json!({"state": state, "timestamp": now()}));
            let skip = history.len().saturating_sub(HISTORY);
            let history: Vec<Value> = history.into_iter().skip(skip).collect();
            Some(json!({"state": state, "statuses": history}))
        })
        .await
    }

    /// Writes what `change` makes of `app`'s status (`None`: nothing to write) at the
    /// Application's resourceVersion, reading it again on a conflict, so that quick reports
    /// (DOWNLOADED, BOOTING, RUNNING; two volumes; two Images) never lose one to a cache not
    /// yet caught up. `what` names the part written, for the refusal after five conflicts.
    async fn write_app_status(
        &self,
        namespace: &str,
        mut app: Application,
        what: &str,
        change: impl Fn(&Application) -> Option<Value>,
    ) -> Result<(), Refused> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), namespace);
        let unavailable = |e: kube::Error| Refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        for _ in 0..5 {
            let Some(status) = change(&app) else {
                return Ok(());
            };
            let patch = json!({
                "metadata": {"resourceVersion": app.resource_version()},
                "status": status,
            });
            match api
                .patch_status(
                    &app.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    app = api.get_status(&app.name_any()).await.map_err(unavailable)?;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the Application kept changing while its status ({what}) was written; report again"
            ),
        ))
    }

    /// A volume's state, written into the status of the application on `device` that has it
    /// (only when it changed).
    async fn volume(
        &self,
        fleet: &Fleet,
        device: &Device,
        info: &eve_api::info::ZInfoVolume,
    ) -> Result<(), Refused> {
        let namespace = device.namespace().unwrap_or_default();
        for app in fleet.applications_on(&namespace, &device.name_any()) {
            let Some(volume) = crate::compose::volume_names(fleet, &app)
                .into_iter()
                .find(|v| v.uuid == info.uuid)
            else {
                continue;
            };
            let entry = VolumeStatus {
                name: volume.name,
                claim_name: volume.claim,
                state: state_name(info.state),
                progress: (info.progress_percentage > 0).then_some(info.progress_percentage),
                message: info
                    .volume_err
                    .as_ref()
                    .map(|e| crate::telemetry::ingest::bounded(&e.description, MAX_ERROR).0)
                    .filter(|d| !d.is_empty()),
            };
            return self
                .write_app_status(&namespace, (*app).clone(), "volumes", |app| {
                    let mut volumes = app
                        .status
                        .as_ref()
                        .map(|s| s.volumes.clone())
                        .unwrap_or_default();
                    match volumes.iter_mut().find(|v| v.name == entry.name) {
                        Some(v) if *v == entry => return None,
                        Some(v) => *v = entry.clone(),
                        None => volumes.push(entry.clone()),
                    }
                    Some(json!({"volumes": volumes}))
                })
                .await;
        }
        Ok(())
    }

    /// A content tree's state, written into `status.images` of each application on `device`
    /// that uses its Image (only when it changed). A content tree of no such application (the
    /// EVE-OS image, an Image no longer used, a UUID never sent) is ignored.
    async fn content_tree(
        &self,
        fleet: &Fleet,
        device: &Device,
        info: &ZInfoContentTree,
    ) -> Result<(), Refused> {
        let namespace = device.namespace().unwrap_or_default();
        for app in fleet.applications_on(&namespace, &device.name_any()) {
            let names = crate::compose::image_names(fleet, &app);
            let Some(image) = names.iter().find(|n| n.uuid == info.uuid) else {
                continue;
            };
            let entry = image_status(&image.name, info);
            self.write_app_status(&namespace, (*app).clone(), "images", |app| {
                let current = app
                    .status
                    .as_ref()
                    .map(|s| s.images.clone())
                    .unwrap_or_default();
                let images = with_image(&current, entry.clone(), &names)?;
                Some(json!({"images": images}))
            })
            .await?;
        }
        Ok(())
    }
}

/// Whether `reported` under `key` needs writing at `now`, given what was last written (kept
/// in `last` when it does): however often a device reports, one write per
/// [`MIN_WRITE_INTERVAL`] (a change reported within it is written with the next report after
/// it); an unchanged report of a Ready device not at all (its heartbeat is [`heartbeat_due`]'s).
fn due_at(
    last: &mut HashMap<String, (u64, Instant)>,
    key: &str,
    reported: u64,
    ready: bool,
    now: Instant,
) -> bool {
    let since = |at: &Instant| now.saturating_duration_since(*at);
    match last.get(key) {
        Some((_, at)) if since(at) < MIN_WRITE_INTERVAL => false,
        Some((previous, _)) if ready && *previous == reported => false,
        _ => {
            last.insert(key.to_string(), (reported, now));
            true
        }
    }
}

/// EVE's name of a `ZSwState` (`STATE_<n>` for a number it does not define).
fn state_name(state: i32) -> String {
    ZSwState::try_from(state)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| format!("STATE_{state}"))
}

/// What a `ZInfoContentTree` says of the Image `name`: its state, progress (at most 100, none
/// when 0) and error (at most [`MAX_ERROR`] bytes, none when empty).
pub fn image_status(name: &str, info: &ZInfoContentTree) -> ContentTreeStatus {
    ContentTreeStatus {
        name: name.to_string(),
        state: state_name(info.state),
        progress: (info.progress_percentage > 0).then_some(info.progress_percentage.min(100)),
        message: info
            .err
            .as_ref()
            .map(|e| crate::telemetry::ingest::bounded(&e.description, MAX_ERROR).0)
            .filter(|d| !d.is_empty()),
    }
}

/// An application's `status.images` with `entry` recorded: in the order of `names` (the Images
/// it uses now), without entries of Images it no longer uses. None when nothing changes.
pub fn with_image(
    images: &[ContentTreeStatus],
    entry: ContentTreeStatus,
    names: &[ImageName],
) -> Option<Vec<ContentTreeStatus>> {
    let updated: Vec<ContentTreeStatus> = names
        .iter()
        .filter_map(|n| {
            if n.name == entry.name {
                Some(entry.clone())
            } else {
                images.iter().find(|i| i.name == n.name).cloned()
            }
        })
        .collect();
    (updated != images).then_some(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_device_s_report_is_bounded_whatever_it_sends() {
        let info = ZInfoDevice {
            host_name: "h".repeat(100_000),
            machine_arch: "a".repeat(5_000),
            network: (0..1_000)
                .map(|i| eve_api::info::ZInfoNetwork {
                    ip_addrs: vec![format!("10.0.{}.{}/24", i / 256, i % 256)],
                    ..Default::default()
                })
                .collect(),
            ..ZInfoDevice::default()
        };
        let status = device_status(&info);
        let addresses = status["addresses"].as_array().unwrap();
        assert_eq!(addresses.len(), MAX_ADDRESSES);
        assert_eq!(addresses[0]["address"].as_str().unwrap().len(), MAX_TEXT);
        assert_eq!(addresses[1]["address"], "10.0.0.0");
        assert_eq!(
            status["nodeInfo"]["architecture"].as_str().unwrap().len(),
            MAX_TEXT
        );
    }

    #[test]
    fn the_adapters_a_device_reports_are_listed_bounded() {
        let bundle = |name: &str| eve_api::info::ZioBundle {
            r#type: eve_api::common::PhyIoType::PhyIoUsb as i32,
            name: name.into(),
            members: vec!["usb1".into(), "usb2".into()],
            used_by_app_uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
            err: Some(eve_api::info::ErrorInfo {
                description: "in use by the host".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = ZInfoDevice {
            assignable_adapters: (0..1_000).map(|i| bundle(&format!("USB{i}"))).collect(),
            ..ZInfoDevice::default()
        };
        let status = device_status(&info);
        let adapters = status["adapters"].as_array().unwrap();
        assert_eq!(adapters.len(), MAX_ADAPTERS);
        assert_eq!(
            adapters[0],
            json!({"name": "USB0", "type": "PhyIoUSB", "members": ["usb1", "usb2"], "usedBy": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "error": "in use by the host"})
        );
        let typed: eve_model::DeviceStatus = serde_json::from_value(status).unwrap();
        assert_eq!(typed.adapters[0].type_, "PhyIoUSB");
    }

    fn tree(state: ZSwState, progress: u32, error: &str) -> ZInfoContentTree {
        ZInfoContentTree {
            uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
            state: state as i32,
            progress_percentage: progress,
            err: Some(eve_api::info::ErrorInfo {
                description: error.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_content_tree_report_becomes_an_image_status_with_its_error_cut_to_1_kib() {
        let status = image_status(
            "golden",
            &tree(ZSwState::DownloadStarted, 40, "registry refused: 401"),
        );
        assert_eq!(
            status,
            ContentTreeStatus {
                name: "golden".into(),
                state: "DOWNLOAD_STARTED".into(),
                progress: Some(40),
                message: Some("registry refused: 401".into()),
            }
        );
        // A long error (of multi-byte characters) is cut at a character boundary.
        let long = "é".repeat(5_000);
        let status = image_status("golden", &tree(ZSwState::Error, 0, &long));
        let message = status.message.unwrap();
        assert!(message.len() <= MAX_ERROR && message.len() > MAX_ERROR - 2);
        assert!(long.starts_with(&message));
        assert_eq!(status.state, "ERROR");
        assert_eq!(status.progress, None, "no progress is no progress shown");
        // Nonsense from a device: progress beyond 100 %, a state EVE does not define.
        let status = image_status("golden", &tree(ZSwState::Loaded, 250, ""));
        assert_eq!((status.progress, status.message), (Some(100), None));
        let mut odd = tree(ZSwState::Loaded, 100, "");
        odd.state = 99;
        assert_eq!(image_status("golden", &odd).state, "STATE_99");
    }

    #[test]
    fn image_statuses_are_in_the_images_order_and_change_only_when_reported_different() {
        let names: Vec<ImageName> = ["boot", "disk"]
            .iter()
            .map(|n| ImageName {
                uuid: format!("uuid-{n}"),
                name: n.to_string(),
            })
            .collect();
        let entry = |name: &str, state: &str| ContentTreeStatus {
            name: name.into(),
            state: state.into(),
            ..Default::default()
        };
        // The first report adds its Image; a second one comes in the order of the Images.
        let images = with_image(&[], entry("disk", "DOWNLOAD_STARTED"), &names).unwrap();
        let images = with_image(&images, entry("boot", "LOADED"), &names).unwrap();
        assert_eq!(
            images,
            [entry("boot", "LOADED"), entry("disk", "DOWNLOAD_STARTED")]
        );
        // The same report again: nothing to write.
        assert_eq!(with_image(&images, entry("boot", "LOADED"), &names), None);
        // An Image the application no longer uses is dropped with the next change.
        let images = with_image(&images, entry("boot", "ERROR"), &names[..1]).unwrap();
        assert_eq!(images, [entry("boot", "ERROR")]);
    }

    #[test]
    fn a_device_s_status_is_written_at_most_once_an_interval_and_as_a_heartbeat() {
        let mut last = HashMap::new();
        let t0 = Instant::now();
        let (a, b) = (
            digest(&json!({"v": 1}).to_string()),
            digest(&json!({"v": 2}).to_string()),
        );
        assert!(due_at(&mut last, "d", a, true, t0), "the first report");
        let soon = t0 + Duration::from_secs(1);
        assert!(
            !due_at(&mut last, "d", b, true, soon),
            "a change within the interval waits"
        );
        let later = t0 + MIN_WRITE_INTERVAL + Duration::from_millis(1);
        assert!(
            due_at(&mut last, "d", b, true, later),
            "then the next report writes it"
        );
        let quiet = later + Duration::from_secs(10);
        assert!(
            !due_at(&mut last, "d", b, true, quiet),
            "unchanged and Ready: no write"
        );
        assert!(
            due_at(&mut last, "d", b, false, quiet),
            "not shown Ready: written"
        );
        let hour = quiet + Duration::from_secs(3600);
        assert!(
            !due_at(&mut last, "d", b, true, hour),
            "an unchanged report is never written again (the heartbeat is apart)"
        );
    }
}
