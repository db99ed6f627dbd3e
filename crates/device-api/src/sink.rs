//! Where telemetry goes: metrics, logs, app logs, flow logs and hardware health are handed to a
//! [`Sink`]. Until the telemetry store exists, [`MemorySink`] keeps the latest few messages of
//! each kind per device, in bounded memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// What a device posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `ZMetricMsg`.
    Metrics,
    /// A gzip file of device log lines (`newlogs`).
    Logs,
    /// A gzip file of an application's log lines.
    AppLogs,
    /// `FlowMessage`.
    FlowLog,
    /// `ZHardwareHealth`.
    HardwareHealth,
    /// `ZInfoMsg` (also applied to the objects).
    Info,
}

/// Receives telemetry. Must not block.
pub trait Sink: Send + Sync {
    /// Takes one message of `kind` from the device `device` (its UUID); `subject` is the
    /// application for app logs.
    fn accept(&self, device: &str, kind: Kind, subject: Option<&str>, payload: Bytes);
}

/// The latest `per_kind` messages of each kind per device.
pub struct MemorySink {
    per_kind: usize,
    kept: Mutex<HashMap<(String, Kind), VecDeque<Bytes>>>,
}

impl MemorySink {
    /// A sink keeping `per_kind` messages of each kind per device.
    pub fn new(per_kind: usize) -> MemorySink {
        MemorySink {
            per_kind: per_kind.max(1),
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// The messages kept of `kind` for `device`, oldest first.
    pub fn latest(&self, device: &str, kind: Kind) -> Vec<Bytes> {
        self.kept
            .lock()
            .expect("not poisoned")
            .get(&(device.to_string(), kind))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets a device (when its Device is deleted).
    pub fn forget(&self, device: &str) {
        self.kept
            .lock()
            .expect("not poisoned")
            .retain(|(d, _), _| d != device);
    }
}

impl Sink for MemorySink {
    fn accept(&self, device: &str, kind: Kind, _subject: Option<&str>, payload: Bytes) {
        let mut kept = self.kept.lock().expect("not poisoned");
        let queue = kept.entry((device.to_string(), kind)).or_default();
        if queue.len() == self.per_kind {
            queue.pop_front();
        }
        queue.push_back(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_sink_keeps_the_latest_of_each_kind_per_device() {
        let sink = MemorySink::new(2);
        for i in 0..5u8 {
            sink.accept("a", Kind::Metrics, None, Bytes::from(vec![i]));
        }
        sink.accept("a", Kind::Logs, None, Bytes::from_static(b"log"));
        sink.accept("b", Kind::Metrics, None, Bytes::from_static(b"b"));
        assert_eq!(
            sink.latest("a", Kind::Metrics),
            [Bytes::from(vec![3]), Bytes::from(vec![4])]
        );
        assert_eq!(sink.latest("a", Kind::Logs), [Bytes::from_static(b"log")]);
        sink.forget("a");
        assert!(sink.latest("a", Kind::Metrics).is_empty());
        assert_eq!(sink.latest("b", Kind::Metrics).len(), 1);
    }
}
