//! Events the EVE half records for people (`kubectl describe`, `kubectl events --for`), through
//! kube-runtime's [`Recorder`] (`events.k8s.io/v1`; the same event again within minutes becomes
//! a series on the first one).
//!
//! Recording never holds its caller up: [`Events::record`] only queues (a bounded queue; when it
//! is full the event is dropped), and one background task publishes. That task lets through at
//! most one event per object and reason every [`MIN_INTERVAL`]: one coming sooner waits until
//! the interval is over, replacing any that was waiting. An event whose note differs from the
//! last one of its object and reason is published as a new Event rather than counted in the
//! series of the old one (whose note would then be stale).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How many events may wait for the background task.
pub const QUEUE: usize = 1024;
/// The least time between two events of one object and reason.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// How long the pacing of an object and reason is remembered after its last event (longer than
/// the recorder's own aggregation, six minutes).
const REMEMBER: Duration = Duration::from_secs(10 * 60);
/// How many objects and reasons are paced at once; events of more are dropped.
const MAX_KEYS: usize = 50_000;
/// The longest note the API accepts, in bytes.
const NOTE_LIMIT: usize = 1024;
/// The longest reporting instance the API accepts.
const INSTANCE_LIMIT: usize = 128;

/// One event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The object the event is about.
    pub regarding: ObjectReference,
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Why (`PascalCase`, at most 128 characters): `kubectl describe`'s Reason.
    pub reason: String,
    /// What was done (`PascalCase`, at most 128 characters).
    pub action: String,
    /// What happened, for people (at most 1 KiB; longer notes are cut).
    pub note: String,
}

impl Record {
    /// A `Normal` event.
    pub fn normal(regarding: ObjectReference, reason: &str, action: &str, note: String) -> Record {
        Record {
            regarding,
            type_: EventType::Normal,
            reason: reason.into(),
            action: action.into(),
            note,
        }
    }

    /// A `Warning` event.
    pub fn warning(regarding: ObjectReference, reason: &str, action: &str, note: String) -> Record {
        Record {
            type_: EventType::Warning,
            ..Record::normal(regarding, reason, action, note)
        }
    }

    /// The object and reason events are paced by.
    fn key(&self) -> Key {
        let r = &self.regarding;
        Key {
            kind: r.kind.clone().unwrap_or_default(),
            namespace: r.namespace.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
            uid: r.uid.clone().unwrap_or_default(),
            reason: self.reason.clone(),
        }
    }
}

/// A reference to `object` for its events: without its `resourceVersion`, so that the events of
/// an object aggregate across its updates.
pub fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    ObjectReference {
        resource_version: None,
        ..object.object_ref(&())
    }
}

/// The object and reason events are paced by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    reason: String,
}

/// The queue of the background task that publishes events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Events {
    queue: mpsc::Sender<Record>,
}

impl Events {
    /// Starts publishing, as `controller` (a qualified name such as `eve.lfedge.org/device-api`)
    /// on this host, until `stop` turns true.
    pub fn start(client: Client, controller: &str, stop: watch::Receiver<bool>) -> Events {
        let (queue, records) = mpsc::channel(QUEUE);
        let mut reporter = Reporter::from(controller);
        reporter.instance = reporter
            .instance
            .map(|i| i.chars().take(INSTANCE_LIMIT).collect());
        tokio::spawn(publish(client, reporter, records, stop));
        Events { queue }
    }

    /// Queues an event; drops it if the queue is full (or publishing has stopped).
    pub fn record(&self, record: Record) {
        if let Err(e) = self.queue.try_send(record) {
            tracing::debug!(error = %e, "an event was dropped");
        }
    }
}

/// Which events go out when: at most one per key every [`MIN_INTERVAL`], the latest waiting.
#[derive(Default)]
struct Pacer {
    /// When each key's last event went out.
    last: HashMap<Key, Instant>,
    /// The latest event of each key that came too soon.
    waiting: HashMap<Key, Record>,
}

impl Pacer {
    /// Takes an event at `now`: returns it if it may go out now, or keeps it waiting.
    fn offer(&mut self, record: Record, now: Instant) -> Option<Record> {
        let key = record.key();
        match self.last.get(&key) {
            Some(at) if now.duration_since(*at) < MIN_INTERVAL => {
                self.waiting.insert(key, record);
                None
            }
            None if self.last.len() >= MAX_KEYS => {
                tracing::debug!(reason = %record.reason, "too many objects with events; dropped");
                None
            }
            _ => {
                self.last.insert(key, now);
                Some(record)
            }
        }
    }

    /// The waiting events whose interval is over at `now`; forgets keys idle for long.
    fn due(&mut self, now: Instant) -> Vec<Record> {
        let last = &mut self.last;
        let mut due = Vec::new();
        self.waiting.retain(|key, record| {
            let ready = last
                .get(key)
                .is_none_or(|at| now.duration_since(*at) >= MIN_INTERVAL);
            if ready {
                last.insert(key.clone(), now);
                due.push(record.clone());
            }
            !ready
        });
        let waiting = &self.waiting;
        last.retain(|key, at| waiting.contains_key(key) || now.duration_since(*at) < REMEMBER);
        due
    }
}

/// A note the API accepts: at most [`NOTE_LIMIT`] bytes, cut at a character boundary.
fn note_of(note: &str) -> String {
    let mut end = note.len().min(NOTE_LIMIT);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note[..end].to_string()
}

/// The background task: paces the queued events and publishes them, one recorder per key with
/// the note it last published.
async fn publish(
    client: Client,
    reporter: Reporter,
    mut records: mpsc::Receiver<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pacer = Pacer::default();
    let mut recorders: HashMap<Key, (Recorder, String)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let ready = tokio::select! {
            record = records.recv() => match record {
                Some(record) => pacer.offer(record, Instant::now()).into_iter().collect(),
                None => return,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                recorders.retain(|key, _| pacer.last.contains_key(key));
                pacer.due(now)
            }
            _ = stop.changed() => return,
        };
        for record in ready {
            let key = record.key();
            let note = note_of(&record.note);
            let fresh = || {
                (
                    Recorder::new(client.clone(), reporter.clone()),
                    note.clone(),
                )
            };
            let slot = recorders.entry(key).or_insert_with(fresh);
            if slot.1 != note {
                // A new note is a new Event, not the old one's series.
                *slot = fresh();
            }
            let event = Event {
                type_: record.type_,
                reason: record.reason.clone(),
                note: Some(note.clone()),
                action: record.action.clone(),
                secondary: None,
            };
            let mut result = slot.0.publish(&event, &record.regarding).await;
            if let Err(kube::Error::Api(e)) = &result
                && e.code == 404
            {
                // The Event of the series expired: start another.
                *slot = fresh();
                result = slot.0.publish(&event, &record.regarding).await;
            }
            if let Err(e) = result {
                tracing::debug!(reason = %record.reason, error = %e, "an event was not recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, reason: &str, note: &str) -> Record {
        Record::normal(
            ObjectReference {
                kind: Some("Device".into()),
                namespace: Some("ns".into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            reason,
            "Act",
            note.into(),
        )
    }

    #[test]
    fn one_event_per_object_and_reason_per_interval_the_latest_waiting() {
        let start = Instant::now();
        let mut pacer = Pacer::default();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(pacer.offer(record("a", "R", "1"), at(0)).is_some());
        // Another object or reason is not held up.
        assert!(pacer.offer(record("b", "R", "1"), at(0)).is_some());
        assert!(pacer.offer(record("a", "S", "1"), at(0)).is_some());
        // Too soon: waits, and a later one replaces it.
        assert!(pacer.offer(record("a", "R", "2"), at(1)).is_none());
        assert!(pacer.offer(record("a", "R", "3"), at(2)).is_none());
        assert!(pacer.due(at(3)).is_empty());
        assert_eq!(pacer.due(at(5)), [record("a", "R", "3")]);
        assert!(pacer.due(at(6)).is_empty());
        // The interval counts from the last event out.
        assert!(pacer.offer(record("a", "R", "4"), at(9)).is_none());
        assert_eq!(pacer.due(at(10)), [record("a", "R", "4")]);
        assert!(pacer.offer(record("a", "R", "5"), at(16)).is_some());
        // Idle keys are forgotten.
        pacer.due(at(16) + REMEMBER);
        assert!(pacer.last.is_empty());
    }

    #[test]
    fn notes_are_cut_at_the_limit_on_a_character_boundary() {
        assert_eq!(note_of("short"), "short");
        let long = "é".repeat(NOTE_LIMIT);
        let cut = note_of(&long);
        assert!(cut.len() <= NOTE_LIMIT && cut.len() >= NOTE_LIMIT - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
