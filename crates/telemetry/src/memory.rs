//! The memory backend: the contract's simplest model, for tests and as the reference the
//! conformance suite is written against. Nothing is durable beyond the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::{Id, NewRecord, Range, Record, Result, Retention, StreamKey, TelemetryStore, check};

#[derive(Default)]
struct Stream {
    records: BTreeMap<Id, Bytes>,
    bytes: u64,
    /// The last id given, kept when retention empties the stream (ids never go back).
    last: Option<Id>,
}

/// Telemetry in memory.
pub struct MemoryTelemetry {
    streams: Mutex<HashMap<StreamKey, Stream>>,
    /// Bumped at every append: followers wake and look.
    appended: watch::Sender<u64>,
}

impl Default for MemoryTelemetry {
    fn default() -> MemoryTelemetry {
        MemoryTelemetry {
            streams: Mutex::new(HashMap::new()),
            appended: watch::channel(0).0,
        }
    }
}

impl MemoryTelemetry {
    /// An empty store.
    pub fn new() -> MemoryTelemetry {
        MemoryTelemetry::default()
    }

    fn last(&self, stream: &StreamKey) -> Option<Id> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(stream)
            .and_then(|s| s.last)
    }
}

/// The records of `range` among `records` (any ordered map), oldest first.
pub(crate) fn select<'a>(
    records: impl DoubleEndedIterator<Item = (&'a Id, &'a Bytes)>,
    range: &Range,
) -> Vec<Record> {
    let within = |id: &Id| {
        range.after.is_none_or(|after| *id > after) && range.until.is_none_or(|until| *id <= until)
    };
    let limit = if range.limit == 0 {
        usize::MAX
    } else {
        range.limit
    };
    let record = |(id, body): (&Id, &Bytes)| Record {
        id: *id,
        body: body.clone(),
    };
    if range.tail {
        let mut picked: Vec<Record> = records
            .rev()
            .filter(|(id, _)| within(id))
            .take(limit)
            .map(record)
            .collect();
        picked.reverse();
        picked
    } else {
        records
            .filter(|(id, _)| within(id))
            .take(limit)
            .map(record)
            .collect()
    }
}

#[async_trait::async_trait]
impl TelemetryStore for MemoryTelemetry {
    async fn append(&self, stream: &StreamKey, records: Vec<NewRecord>) -> Result<Vec<Id>> {
        check(&records)?;
        let ids = {
            let mut streams = self
                .streams
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let kept = streams.entry(stream.clone()).or_default();
            let mut last = kept.last;
            let mut ids = Vec::with_capacity(records.len());
            for record in records {
                let id = Id::assign(record.millis, last);
                kept.bytes += record.body.len() as u64;
                kept.records.insert(id, record.body);
                last = Some(id);
                kept.last = last;
                ids.push(id);
            }
            ids
        };
        self.appended.send_modify(|n| *n += 1);
        Ok(ids)
    }

    async fn read(&self, stream: &StreamKey, range: &Range) -> Result<Vec<Record>> {
        let streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(streams
            .get(stream)
            .map(|s| select(s.records.iter(), range))
            .unwrap_or_default())
    }

    async fn first(&self, stream: &StreamKey) -> Result<Option<Id>> {
        let streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(streams
            .get(stream)
            .and_then(|s| s.records.keys().next().copied()))
    }

    async fn wait(&self, stream: &StreamKey, after: Id, timeout: Duration) -> Result<bool> {
        let mut appended = self.appended.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.last(stream).is_some_and(|last| last > after) {
                return Ok(true);
            }
            match tokio::time::timeout_at(deadline, appended.changed()).await {
                Ok(Ok(())) => {}
                _ => return Ok(false),
            }
        }
    }

    async fn trim(&self, retention: &Retention, now_millis: u64) -> Result<u64> {
        let oldest_kept = now_millis.saturating_sub(retention.max_age.as_millis() as u64);
        let mut removed = 0;
        let mut streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for stream in streams.values_mut() {
            while let Some(entry) = stream.records.first_entry() {
                if entry.key().millis >= oldest_kept && stream.bytes <= retention.max_bytes {
                    break;
                }
                stream.bytes -= entry.get().len() as u64;
                entry.remove();
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn forget(&self, device: &str) -> Result<()> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|key, _| key.device != device);
        Ok(())
    }
}
