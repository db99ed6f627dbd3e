//! Liveness, kept apart from Devices as Kubernetes keeps node leases apart from Nodes.
//!
//! Every request a device makes is noted in this process's memory ([`Liveness`]); nothing is
//! written on a request's path. A report (an `info` or a metrics post) heard while the Device
//! does not show `Ready=True` turns it `Ready` at once, in the background; a config poll keeps a
//! device alive but turns nothing `Ready`. Three things read liveness, each from where it is cheapest:
//!
//! - **This process** marks a Device silent ([`watch_silence`]) only if it has not heard the
//!   device within the grace period, and no other replica has either.
//! - **Other replicas** (and this process after a restart) read what this one heard from the
//!   shared records ([`share`]): a few ConfigMaps in `kube-system` labelled [`LABEL`], each
//!   listing up to [`PER_RECORD`] devices with when they were last heard, rewritten every
//!   quarter of the grace period. At 100,000 devices that is 50 writes a minute, where a write
//!   per device every half grace period was 670 a second.
//! - **Users** read `Ready`'s `lastHeartbeatTime` and `lastSeen` on the Device: written when it
//!   turns `Ready`, with each changed report, and refreshed in the background every half grace
//!   period at most, [`REFRESHES_PER_SECOND`] Devices a second at most (so every half grace
//!   period up to 3,000 devices, every 83 minutes at 100,000).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use eve_model::Device;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// How long a device may be silent before `Ready` turns `Unknown` (EVE posts metrics every 18
/// to 60 s).
pub const GRACE: Duration = Duration::from_secs(300);

/// How old a live device's heartbeat on its Device may grow before it is refreshed (at most
/// [`REFRESHES_PER_SECOND`] a second): half the grace period.
pub fn heartbeat_interval(grace: Duration) -> Duration {
    grace / 2
}

/// The most background refreshes of Devices' heartbeats a second (transitions to `Ready` are
/// not counted: they are written at once).
pub const REFRESHES_PER_SECOND: u32 = 20;

/// The least time between two writes of a Device's status from its reports.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(2);

/// The label of the shared liveness records; its value is the writing replica.
pub const LABEL: &str = "adamant.io/liveness";
/// Where the shared liveness records are kept.
pub const NAMESPACE: &str = "kube-system";
/// The key of a record's list, one `namespace/name unix-seconds` line per device.
pub const KEY: &str = "heard";
/// Devices listed in one shared record (about 70 KiB).
pub const PER_RECORD: usize = 2_000;

/// `namespace/name` of a Device.
pub fn key_of(device: &Device) -> String {
    key(
        device.metadata.namespace.as_deref().unwrap_or_default(),
        device.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// `namespace/name`: how liveness names a Device.
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// What this process knows of each device's liveness, in memory only, and the Devices whose
/// heartbeat is to be written.
pub struct Liveness {
    state: Mutex<State>,
    /// Rings when a transition is queued.
    wake: tokio::sync::Notify,
    /// This process's name in the shared records.
    replica: String,
    grace: Duration,
}

#[derive(Default)]
struct State {
    heard: HashMap<String, Heard>,
    /// Devices heard while their Device did not show `Ready=True`: written at once.
    transitions: VecDeque<String>,
    /// Devices whose Device shows a heartbeat older than the interval: refreshed at a bounded
    /// rate.
    refreshes: VecDeque<String>,
}

struct Heard {
    at: Instant,
    /// When this process last wrote the Device's heartbeat.
    written: Option<Instant>,
    /// Which queue the device waits in, if any (each once at most).
    queued: Queued,
}

/// Which queue a device waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queued {
    No,
    Transition,
    Refresh,
}

/// What a request asks of the Device's heartbeat.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing.
    No,
    /// Write it now: the Device does not show `Ready=True`.
    Now,
    /// Refresh it when the budget allows.
    Refresh,
}

impl Liveness {
    /// Liveness for devices silent after `grace`, named `replica` in the shared records.
    pub fn new(replica: String, grace: Duration) -> Liveness {
        Liveness {
            state: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            replica,
            grace,
        }
    }

    /// A fresh replica name: eight random hex digits.
    pub fn random_replica() -> String {
        let mut bytes = [0u8; 4];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .expect("the system's random source works");
        crate::hex::encode(&bytes)
    }

    /// How long a device may be silent.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// This process's name in the shared records.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Notes a report (an `info` or a metrics post) from `device` at `now`, queueing its
    /// heartbeat if one is due: a transition to `Ready`, or a refresh.
    pub fn heard(&self, device: &Device, now: Instant) {
        self.note(device, now, true);
    }

    /// Notes a config poll from `device` at `now`: it keeps a device alive, and refreshes its
    /// heartbeat, but turns no Device `Ready` (its `info`, which follows, does).
    pub fn polled(&self, device: &Device, now: Instant) {
        self.note(device, now, false);
    }

    fn note(&self, device: &Device, now: Instant, reported: bool) {
        let due = {
            let mut state = self.state.lock().expect("not poisoned");
            let key = key_of(device);
            if !state.heard.contains_key(&key) {
                let first = Heard {
                    at: now,
                    written: None,
                    queued: Queued::No,
                };
                state.heard.insert(key.clone(), first);
            }
            let heard = state.heard.get_mut(&key).expect("inserted above");
            heard.at = now;
            // A transition is queued already: nothing more to ask.
            if heard.queued == Queued::Transition {
                return;
            }
            let due = heartbeat_due(
                shown_heartbeat(device),
                jiff::Timestamp::now(),
                heard.written,
                now,
                heartbeat_interval(self.grace),
            );
            let due = match (due, heard.queued) {
                (Due::Now, _) if !reported => Due::No,
                // Waiting for a refresh already.
                (Due::Refresh, Queued::Refresh) => Due::No,
                (due, _) => due,
            };
            match due {
                // Also when it waits for a refresh: a transition does not wait for the budget
                // (the refresh, taken later, finds nothing to do).
                Due::Now => {
                    heard.queued = Queued::Transition;
                    state.transitions.push_back(key);
                }
                Due::Refresh => {
                    heard.queued = Queued::Refresh;
                    state.refreshes.push_back(key);
                }
                Due::No => {}
            }
            due
        };
        if due == Due::Now {
            self.wake.notify_one();
        }
    }

    /// Notes that this process wrote the heartbeat of the Device `key` at `now`.
    pub fn written(&self, key: &str, now: Instant) {
        if let Some(heard) = self.state.lock().expect("not poisoned").heard.get_mut(key) {
            heard.written = Some(now);
        }
    }

    /// When this process last wrote the heartbeat of the Device `key`.
    pub fn last_written(&self, key: &str) -> Option<Instant> {
        self.state
            .lock()
            .expect("not poisoned")
            .heard
            .get(key)
            .and_then(|h| h.written)
    }

    /// The next Device whose heartbeat is due: a transition, or (when `refresh`) a refresh.
    fn next(&self, refresh: bool) -> Option<String> {
        let mut state = self.state.lock().expect("not poisoned");
        let (key, from) = match state.transitions.pop_front() {
            Some(key) => (key, Queued::Transition),
            None if refresh => (state.refreshes.pop_front()?, Queued::Refresh),
            None => return None,
        };
        if let Some(heard) = state.heard.get_mut(&key)
            && heard.queued == from
        {
            heard.queued = Queued::No;
        }
        Some(key)
    }

    /// When this process last heard from the Device `key`, on the wall clock (`wall` at `now`).
    pub fn heard_at(
        &self,
        key: &str,
        now: Instant,
        wall: jiff::Timestamp,
    ) -> Option<jiff::Timestamp> {
        let at = self.state.lock().expect("not poisoned").heard.get(key)?.at;
        let ago = jiff::SignedDuration::try_from(now.saturating_duration_since(at)).ok()?;
        wall.checked_sub(ago).ok()
    }

    /// Whether this process heard from the Device `key` within `grace` of `now`.
    pub fn alive(&self, key: &str, now: Instant, grace: Duration) -> bool {
        self.state
            .lock()
            .expect("not poisoned")
            .heard
            .get(key)
            .is_some_and(|h| now.saturating_duration_since(h.at) < grace)
    }

    /// Forgets the Device `key` (deleted).
    pub fn forget(&self, key: &str) {
        let mut state = self.state.lock().expect("not poisoned");
        state.heard.remove(key);
        // A queued key is skipped when taken: it is no longer heard.
    }

    /// The devices heard within the grace period of `now` (`wall` on the clock), with when,
    /// in Unix seconds, sorted.
    fn heard_within(&self, now: Instant, wall: jiff::Timestamp) -> Vec<(String, i64)> {
        let state = self.state.lock().expect("not poisoned");
        let mut heard: Vec<(String, i64)> = state
            .heard
            .iter()
            .filter_map(|(key, h)| {
                let ago = now.saturating_duration_since(h.at);
                (ago < self.grace).then(|| (key.clone(), wall.as_second() - ago.as_secs() as i64))
            })
            .collect();
        drop(state);
        heard.sort_unstable();
        heard
    }
}

/// What `device` shows of its liveness: whether `Ready` is `True`, and its heartbeat time.
pub fn shown_heartbeat(device: &Device) -> Option<(bool, Option<jiff::Timestamp>)> {
    let ready = device
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        ready.status == "True",
        ready.last_heartbeat_time.as_ref().map(|t| t.0),
    ))
}

/// Whether `device` shows `Ready=True`.
pub fn shows_ready(device: &Device) -> bool {
    shown_heartbeat(device).is_some_and(|(ready, _)| ready)
}

/// What a device heard from at `now` (`wall` on the clock) needs of its heartbeat: written at
/// once if its Device does not show `Ready=True` (at most once per [`MIN_WRITE_INTERVAL`]);
/// refreshed if it shows a heartbeat older than `interval` that this process did not write
/// within `interval` (its cache not having caught up with its own write); else nothing.
pub fn heartbeat_due(
    shown: Option<(bool, Option<jiff::Timestamp>)>,
    wall: jiff::Timestamp,
    written: Option<Instant>,
    now: Instant,
    interval: Duration,
) -> Due {
    let written_within =
        |d: Duration| written.is_some_and(|at| now.saturating_duration_since(at) < d);
    match shown {
        Some((true, Some(beat))) => {
            let age = wall.duration_since(beat).as_secs();
            if age >= interval.as_secs() as i64 && !written_within(interval) {
                Due::Refresh
            } else {
                Due::No
            }
        }
        _ if written_within(MIN_WRITE_INTERVAL) => Due::No,
        _ => Due::Now,
    }
}

/// Writes the heartbeats queued in `liveness` (through `write`, given the Device's key): each
/// transition at once, refreshes at most [`REFRESHES_PER_SECOND`] a second.
pub async fn write_heartbeats<F, Fut>(
    liveness: std::sync::Arc<Liveness>,
    write: F,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut budget = tokio::time::interval(Duration::from_secs(1) / REFRESHES_PER_SECOND);
    budget.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while let Some(key) = liveness.next(false) {
            write(key).await;
        }
        tokio::select! {
            _ = liveness.wake.notified() => {}
            _ = budget.tick() => {
                if let Some(key) = liveness.next(true) {
                    write(key).await;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The shared records of a list of (device, Unix seconds): one text per [`PER_RECORD`] devices.
pub fn records(heard: &[(String, i64)]) -> Vec<String> {
    heard
        .chunks(PER_RECORD)
        .map(|chunk| {
            let mut text = String::with_capacity(chunk.len() * 40);
            for (key, at) in chunk {
                text.push_str(key);
                text.push(' ');
                text.push_str(&at.to_string());
                text.push('\n');
            }
            text
        })
        .collect()
}

/// The (device, Unix seconds) a shared record lists; lines it cannot read are skipped.
pub fn parse_record(text: &str) -> impl Iterator<Item = (&str, i64)> {
    text.lines().filter_map(|line| {
        let (key, at) = line.split_once(' ')?;
        Some((key, at.trim().parse().ok()?))
    })
}

/// The name of record `index` of `replica`.
fn record_name(replica: &str, index: usize) -> String {
    format!("adamant-liveness-{replica}-{index}")
}

/// Writes what this process heard within the grace period to the shared records, every
/// quarter of the grace period (at least every 500 ms), deleting the records it no longer needs.
pub async fn share(
    client: Client,
    liveness: std::sync::Arc<Liveness>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let period = (liveness.grace / 4).max(Duration::from_millis(500));
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let params = PatchParams::apply("adamant-liveness").force();
    let mut written = 0;
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let heard = liveness.heard_within(Instant::now(), jiff::Timestamp::now());
        let records = records(&heard);
        let mut failed = None;
        for (index, text) in records.iter().enumerate() {
            let name = record_name(&liveness.replica, index);
            let record = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {LABEL: liveness.replica}},
                "data": {KEY: text},
            });
            if let Err(e) = api.patch(&name, &params, &Patch::Apply(&record)).await {
                failed = Some(e);
            }
        }
        for index in records.len()..written {
            let name = record_name(&liveness.replica, index);
            if let Err(e) = api.delete(&name, &DeleteParams::default()).await
                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
            {
                failed = Some(e);
            }
        }
        written = records.len();
        match failed {
            Some(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "cannot share this process's device liveness in ConfigMaps of {NAMESPACE}: other replicas (and this one after a restart) may mark devices it hears silent; allow it get, create, patch and delete on configmaps there");
            }
            Some(_) => {}
            None => warned = false,
        }
    }
}

/// When other replicas last heard from the devices `wanted`, from the shared records (the
/// newest of all records), in Unix seconds. Deletes the records of other replicas that list
/// nothing heard within twice the grace period (`at` on the clock): replicas gone.
async fn shared(
    api: &Api<ConfigMap>,
    liveness: &Liveness,
    wanted: &std::collections::HashSet<String>,
    at: jiff::Timestamp,
) -> Result<BTreeMap<String, i64>, kube::Error> {
    let list = api.list(&ListParams::default().labels(LABEL)).await?;
    let mut newest = BTreeMap::new();
    let gone = at.as_second() - 2 * liveness.grace.as_secs() as i64;
    for record in list {
        if record.labels().get(LABEL).map(String::as_str) == Some(liveness.replica.as_str()) {
            continue;
        }
        let text = record
            .data
            .as_ref()
            .and_then(|d| d.get(KEY))
            .map(String::as_str)
            .unwrap_or_default();
        let mut latest = i64::MIN;
        for (key, heard) in parse_record(text) {
            latest = latest.max(heard);
            if wanted.contains(key) {
                let entry = newest.entry(key.to_string()).or_insert(heard);
                *entry = (*entry).max(heard);
            }
        }
        if latest < gone {
            let _ = api
                .delete(&record.name_any(), &DeleteParams::default())
                .await;
        }
    }
    Ok(newest)
}

/// Whether `device` says it is Ready but its heartbeat is older than `grace` at `now`.
pub fn silent(device: &Device, now: jiff::Timestamp, grace: Duration) -> bool {
    device
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .is_some_and(|beat| {
            let silence = now.duration_since(beat.0);
            silence.as_secs() >= grace.as_secs() as i64
        })
}

/// Turns `Ready` to `Unknown` on devices silent for longer than the grace period (heard
/// neither by this process, nor by another in the shared records, nor with a younger heartbeat
/// on the Device), as Kubernetes' node lifecycle controller does for nodes. Checks every fifth
/// of the grace period (at least every second); reads the shared records when a device may be
/// silent, and at least every grace period to delete those of replicas gone.
pub async fn watch_silence(
    client: Client,
    devices: kube::runtime::reflector::Store<Device>,
    liveness: std::sync::Arc<Liveness>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let grace = liveness.grace;
    let period = (grace / 5).max(Duration::from_secs(1));
    let records: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    // Records of replicas gone are deleted when the records are read, at least every grace
    // period.
    let mut swept = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let at = jiff::Timestamp::now();
        let instant = Instant::now();
        let candidates: Vec<_> = devices
            .state()
            .into_iter()
            .filter(|d| silent(d, at, grace) && !liveness.alive(&key_of(d), instant, grace))
            .collect();
        if candidates.is_empty() && instant.saturating_duration_since(swept) < grace {
            continue;
        }
        swept = instant;
        let wanted = candidates.iter().map(|d| key_of(d)).collect();
        let heard = match shared(&records, &liveness, &wanted, at).await {
            Ok(heard) => heard,
            Err(e) => {
                // Devices heard by other replicas show old heartbeats: marking every one this
                // process has not heard would flap them all on one failed read.
                tracing::warn!(error = %e, "cannot read the shared device liveness in ConfigMaps of {NAMESPACE}: no device is marked silent until it can be read; allow this process list and delete on configmaps there");
                continue;
            }
        };
        for device in candidates {
            let seconds = heard.get(&key_of(&device)).copied();
            if seconds.is_some_and(|s| at.as_second() - s < grace.as_secs() as i64) {
                continue;
            }
            mark_silent(&client, &device, grace).await;
        }
    }
}

async fn mark_silent(client: &Client, device: &Device, grace: Duration) {
    let minutes = grace.as_secs() / 60;
    let seconds = grace.as_secs() % 60;
    let message = format!("the device has not reported for {minutes}m{seconds}s");
    let update = eve_model::conditions::DeviceConditionUpdate {
        status: "Unknown",
        reason: "DeviceStoppedReporting",
        message: &message,
        heartbeat: None,
    };
    let conditions = crate::report::ready_conditions(device, update, jiff::Timestamp::now());
    let patch = json!({"status": {"conditions": conditions}});
    let api: Api<Device> = Api::namespaced(client.clone(), &device.namespace().unwrap_or_default());
    if let Err(e) = api
        .patch_status(
            &device.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(device = %device.name_any(), error = %e, "cannot mark a silent device");
    }
}

#[cfg(test)]
mod tests;
