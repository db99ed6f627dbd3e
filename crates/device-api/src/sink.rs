//! Where telemetry goes: metrics, logs, app logs, flow logs and hardware health are handed to a
//! [`Sink`]. Until the telemetry store exists, [`MemorySink`] keeps the latest few messages of
//! each kind per device, in bounded memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

pub use eve_api::newlogs::{Bundle, Entry};

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

    /// Takes one `newlogs` file, read: the device's own logs (`app` is `None`) or an
    /// application's (its UUID).
    fn accept_logs(&self, device: &str, app: Option<&str>, bundle: Bundle);
}

/// At most this many log lines are kept per device and kind (device logs, application logs).
pub const LOG_LINES: usize = 1000;
/// A kept log line's content is cut to this many bytes.
pub const LOG_LINE_BYTES: usize = 4096;

/// A kept log line, with the application it came from (none: the device's own).
pub type LogLine = (Option<String>, Entry);

/// The latest `per_kind` messages of each kind per device, and the latest [`LOG_LINES`] log
/// lines.
pub struct MemorySink {
    per_kind: usize,
    kept: Mutex<HashMap<(String, Kind), VecDeque<Bytes>>>,
    lines: Mutex<HashMap<(String, Kind), VecDeque<LogLine>>>,
}

impl MemorySink {
    /// A sink keeping `per_kind` messages of each kind per device.
    pub fn new(per_kind: usize) -> MemorySink {
        MemorySink {
            per_kind: per_kind.max(1),
            kept: Mutex::new(HashMap::new()),
            lines: Mutex::new(HashMap::new()),
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

    /// The log lines kept of `kind` (`Logs` or `AppLogs`) for `device`, oldest first, with the
    /// application they came from.
    pub fn log_lines(&self, device: &str, kind: Kind) -> Vec<LogLine> {
        self.lines
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
        self.lines
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

    fn accept_logs(&self, device: &str, app: Option<&str>, bundle: Bundle) {
        let kind = if app.is_some() {
            Kind::AppLogs
        } else {
            Kind::Logs
        };
        let mut lines = self.lines.lock().expect("not poisoned");
        let queue = lines.entry((device.to_string(), kind)).or_default();
        let skip = bundle.entries.len().saturating_sub(LOG_LINES);
        for mut entry in bundle.entries.into_iter().skip(skip) {
            if entry.content.len() > LOG_LINE_BYTES {
                let mut cut = LOG_LINE_BYTES;
                while !entry.content.is_char_boundary(cut) {
                    cut -= 1;
                }
                entry.content.truncate(cut);
            }
            if queue.len() == LOG_LINES {
                queue.pop_front();
            }
            queue.push_back((app.map(str::to_owned), entry));
        }
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
        let entry = |content: &str| Entry {
            content: content.into(),
            ..Entry::default()
        };
        let many = Bundle {
            entries: (0..LOG_LINES + 5)
                .map(|i| entry(&i.to_string()))
                .chain([entry(&"é".repeat(LOG_LINE_BYTES))])
                .collect(),
            ..Bundle::default()
        };
        sink.accept_logs("a", None, many);
        sink.accept_logs(
            "a",
            Some("app"),
            Bundle {
                entries: vec![entry("app line")],
                ..Bundle::default()
            },
        );
        let lines = sink.log_lines("a", Kind::Logs);
        assert_eq!(lines.len(), LOG_LINES);
        assert_eq!(lines[0].1.content, "6", "the oldest went first");
        assert_eq!(lines.last().unwrap().1.content.len(), LOG_LINE_BYTES);
        assert_eq!(
            sink.log_lines("a", Kind::AppLogs),
            [(Some("app".to_string()), entry("app line"))]
        );
        sink.forget("a");
        assert!(sink.log_lines("a", Kind::Logs).is_empty());
        assert!(sink.latest("a", Kind::Metrics).is_empty());
        assert_eq!(sink.latest("b", Kind::Metrics).len(), 1);
    }
}
