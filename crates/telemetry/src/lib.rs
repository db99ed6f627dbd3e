//! The telemetry store contract. What devices report over time (info, metrics, their logs,
//! their applications' logs, flow logs, the certificates they upload) is kept as a *stream* per
//! device and kind: records ordered by an [`Id`] made from the time the device gave them
//! (milliseconds, and a sequence number for records of the same millisecond), each record one
//! JSON object. Every backend keeps these promises, which the conformance suite
//! ([`testing`], feature `testing`) checks:
//!
//! - [`TelemetryStore::append`] returns only once the records are durable (for a persistent
//!   backend: a crash afterwards loses none of them; a backend may sync [`Kind::Metrics`]
//!   records a bounded while later and must say how long), and gives ids that increase strictly
//!   within the stream, also after retention emptied it: a record whose time is at or before the
//!   stream's last id goes just after it, so a device with a clock that steps back loses nothing.
//! - [`TelemetryStore::read`] returns the records of a range, oldest first, from the start of
//!   the range or from its end (`tail`), at most `limit`.
//! - [`TelemetryStore::wait`] returns once the stream has a record after an id, or at a
//!   deadline: followers read what is new from the store at their own pace, so a slow reader
//!   costs no memory, and one whose position was trimmed away learns it from
//!   [`TelemetryStore::first`].
//! - [`TelemetryStore::trim`] drops records older than the retention's age, and the oldest of a
//!   stream beyond its byte budget.
//!
//! Streams are independent: nothing a device appends is visible in another device's streams.

mod memory;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;

pub use memory::MemoryTelemetry;

/// What kind of telemetry a stream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `ZInfoMsg`s, as JSON.
    Info,
    /// `ZMetricMsg`s, as JSON.
    Metrics,
    /// The device's own log entries.
    Log,
    /// Its applications' log entries.
    AppLog,
    /// `FlowMessage`s, as JSON.
    FlowLog,
    /// The certificates the device uploaded (attestation).
    Certs,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Info,
        Kind::Metrics,
        Kind::Log,
        Kind::AppLog,
        Kind::FlowLog,
        Kind::Certs,
    ];

    /// The kind's name in keys and paths (`info`, `metrics`, `log`, `applog`, `flowlog`,
    /// `certs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Info => "info",
            Kind::Metrics => "metrics",
            Kind::Log => "log",
            Kind::AppLog => "applog",
            Kind::FlowLog => "flowlog",
            Kind::Certs => "certs",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown telemetry kind {s:?}: use info, metrics, log, applog, flowlog or certs"
                )
            })
    }
}

/// A stream: one device's telemetry of one kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    /// The device's UUID.
    pub device: String,
    /// The kind.
    pub kind: Kind,
}

impl StreamKey {
    /// The stream of `kind` of `device`.
    pub fn new(device: impl Into<String>, kind: Kind) -> StreamKey {
        StreamKey {
            device: device.into(),
            kind,
        }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.device, self.kind)
    }
}

/// A record's place in its stream: milliseconds since the epoch, then a sequence number among
/// the records of that millisecond. Written `MILLIS-SEQ`, as Redis writes stream ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    /// Milliseconds since the epoch.
    pub millis: u64,
    /// The sequence number within the millisecond.
    pub seq: u64,
}

impl Id {
    /// The first id of a millisecond.
    pub fn at(millis: u64) -> Id {
        Id { millis, seq: 0 }
    }

    /// The id just after this one.
    pub fn next(self) -> Id {
        match self.seq.checked_add(1) {
            Some(seq) => Id {
                millis: self.millis,
                seq,
            },
            None => Id::at(self.millis.saturating_add(1)),
        }
    }

    /// The id just before this one, if any.
    pub fn prev(self) -> Option<Id> {
        match (self.millis, self.seq) {
            (0, 0) => None,
            (millis, 0) => Some(Id::end_of(millis - 1)),
            (millis, seq) => Some(Id {
                millis,
                seq: seq - 1,
            }),
        }
    }

    /// The last id of a millisecond.
    pub fn end_of(millis: u64) -> Id {
        Id {
            millis,
            seq: u64::MAX,
        }
    }

    /// The id a record of `millis` gets in a stream whose last id is `last`.
    pub fn assign(millis: u64, last: Option<Id>) -> Id {
        match last {
            Some(last) if Id::at(millis) <= last => last.next(),
            _ => Id::at(millis),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

impl FromStr for Id {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Id, String> {
        let bad = || format!("{s:?} is not a record id (MILLIS-SEQ)");
        let (millis, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(Id {
            millis: millis.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// A record to append: its time (milliseconds since the epoch, the device's) and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecord {
    /// When the device says it happened.
    pub millis: u64,
    /// One JSON object.
    pub body: Bytes,
}

/// A stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its place in the stream.
    pub id: Id,
    /// One JSON object.
    pub body: Bytes,
}

/// Which records to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// Only records after this id.
    pub after: Option<Id>,
    /// Only records at or before this id.
    pub until: Option<Id>,
    /// At most this many (0: no limit).
    pub limit: usize,
    /// The last `limit` records of the range rather than the first.
    pub tail: bool,
}

/// How long, and how much, is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this go.
    pub max_age: Duration,
    /// A stream's oldest records go while it holds more than this many bytes of bodies.
    pub max_bytes: u64,
}

/// The largest record body a store takes.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The backend cannot be reached or failed.
    #[error("the telemetry store is unavailable: {0}")]
    Unavailable(String),
    /// A record is larger than [`MAX_RECORD_BYTES`].
    #[error("a telemetry record of {0} bytes is larger than the {MAX_RECORD_BYTES} bytes kept")]
    TooLarge(usize),
    /// Stored data cannot be read.
    #[error("stored telemetry is damaged: {0}")]
    Damaged(String),
}

/// Milliseconds since the epoch, now (what `trim` is given, and the time of a record a device
/// sent without one).
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, TelemetryError>;

/// Refuses records larger than [`MAX_RECORD_BYTES`]; backends call it before writing anything.
pub fn check(records: &[NewRecord]) -> Result<()> {
    match records.iter().find(|r| r.body.len() > MAX_RECORD_BYTES) {
        Some(record) => Err(TelemetryError::TooLarge(record.body.len())),
        None => Ok(()),
    }
}

/// The telemetry store contract. See the crate documentation for the promises.
#[async_trait::async_trait]
pub trait TelemetryStore: Send + Sync + 'static {
    /// Appends `records` to `stream`, in order; durable when it returns; their ids.
    async fn append(&self, stream: &StreamKey, records: Vec<NewRecord>) -> Result<Vec<Id>>;

    /// The records of `range` in `stream`, oldest first.
    async fn read(&self, stream: &StreamKey, range: &Range) -> Result<Vec<Record>>;

    /// The id of the oldest record kept in `stream`, if any.
    async fn first(&self, stream: &StreamKey) -> Result<Option<Id>>;

    /// Returns `true` once `stream` holds a record after `after`, `false` at `timeout`.
    async fn wait(&self, stream: &StreamKey, after: Id, timeout: Duration) -> Result<bool>;

    /// Drops what `retention` does not keep, as of `now_millis`; how many records went.
    async fn trim(&self, retention: &Retention, now_millis: u64) -> Result<u64>;

    /// Drops every stream of `device`.
    async fn forget(&self, device: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_read_and_print_as_redis_writes_them() {
        assert!(Id::at(5) < Id { millis: 5, seq: 1 });
        assert!(Id { millis: 5, seq: 9 } < Id::at(6));
        assert_eq!(Id { millis: 12, seq: 3 }.to_string(), "12-3");
        assert_eq!("12-3".parse::<Id>(), Ok(Id { millis: 12, seq: 3 }));
        assert_eq!("12".parse::<Id>(), Ok(Id::at(12)));
        assert!("x-1".parse::<Id>().is_err());
        assert_eq!(Id::at(5).prev(), Some(Id::end_of(4)));
        assert_eq!(
            Id { millis: 5, seq: 2 }.prev(),
            Some(Id { millis: 5, seq: 1 })
        );
        assert_eq!(Id::default().prev(), None);
        assert_eq!(Id::assign(10, None), Id::at(10));
        assert_eq!(Id::assign(10, Some(Id::at(9))), Id::at(10));
        assert_eq!(Id::assign(10, Some(Id::at(10))), Id { millis: 10, seq: 1 });
        assert_eq!(
            Id::assign(3, Some(Id { millis: 10, seq: 4 })),
            Id { millis: 10, seq: 5 },
            "a clock that steps back"
        );
        assert_eq!("applog".parse::<Kind>(), Ok(Kind::AppLog));
        assert!("logs".parse::<Kind>().is_err());
    }
}
