//! What devices post, turned into telemetry records: one JSON object each, every field bounded.
//!
//! - log entries (`newlogs`, the device's and its applications'): `time`, `severity`, `source`,
//!   `iid`, `content`, `msgid`, `tags`, `filename`, `function`, and `app` (the application's
//!   UUID) for application logs; `truncated: true` when a field was cut;
//! - info: `time` and `info`, the `ZInfoMsg` in proto3 JSON;
//! - metrics and flow logs: `time` and `protobuf`, the message as sent (base64), read into JSON
//!   (`metrics`, `flowlog`) when read out ([`readable`]), so what the model lacks today is not
//!   lost;
//! - certificates (attestation uploads): `time` and `certs`, the `ZCert`s in proto3 JSON.

use base64::Engine;
use bytes::Bytes;
use eve_api::newlogs::Entry;
use serde_json::{Map, Value, json};
use telemetry::{Kind, NewRecord};

/// The longest `content` kept (longer ones are cut, `truncated` set).
pub const MAX_CONTENT: usize = 16 * 1024;
/// The longest of any other text field.
pub const MAX_FIELD: usize = 256;
/// The most tags kept on an entry.
pub const MAX_TAGS: usize = 32;

pub(crate) use telemetry::now_millis;

/// RFC 3339 with nanoseconds.
fn rfc3339(seconds: i64, nanos: i32) -> String {
    jiff::Timestamp::new(seconds, nanos.clamp(0, 999_999_999))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// RFC 3339 of milliseconds since the epoch.
fn rfc3339_millis(millis: u64) -> String {
    rfc3339((millis / 1000) as i64, ((millis % 1000) * 1_000_000) as i32)
}

fn millis_of(seconds: i64, nanos: i32) -> u64 {
    (seconds.max(0) as u64)
        .saturating_mul(1000)
        .saturating_add((nanos.max(0) as u64) / 1_000_000)
}

/// `text` cut to at most `limit` bytes at a character boundary; whether it was cut.
pub(crate) fn bounded(text: &str, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text.to_string(), false);
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text[..cut].to_string(), true)
}

/// A log entry as a record: every field bounded.
pub(crate) fn log_record(entry: &Entry, app: Option<&str>, received: u64) -> NewRecord {
    let truncated = std::cell::Cell::new(false);
    let field = |text: &str, limit: usize| {
        let (kept, cut) = bounded(text, limit);
        truncated.set(truncated.get() | cut);
        Value::String(kept)
    };
    let (millis, time) = match entry.timestamp {
        Some(t) if t.seconds > 0 => (millis_of(t.seconds, t.nanos), rfc3339(t.seconds, t.nanos)),
        _ => (received, rfc3339_millis(received)),
    };
    let mut body = Map::new();
    body.insert("time".into(), time.into());
    body.insert("severity".into(), field(&entry.severity, MAX_FIELD));
    body.insert("source".into(), field(&entry.source, MAX_FIELD));
    body.insert("iid".into(), field(&entry.iid, MAX_FIELD));
    body.insert("content".into(), field(&entry.content, MAX_CONTENT));
    body.insert("msgid".into(), entry.msgid.into());
    let mut tags = Map::new();
    for (key, value) in entry.tags.iter().take(MAX_TAGS) {
        let key = field(key, MAX_FIELD);
        tags.insert(
            key.as_str().unwrap_or_default().to_string(),
            field(value, MAX_FIELD),
        );
    }
    if entry.tags.len() > MAX_TAGS {
        truncated.set(true);
    }
    body.insert("tags".into(), Value::Object(tags));
    body.insert("filename".into(), field(&entry.filename, MAX_FIELD));
    body.insert("function".into(), field(&entry.function, MAX_FIELD));
    if let Some(app) = app {
        body.insert("app".into(), field(app, MAX_FIELD));
    }
    if truncated.get() {
        body.insert("truncated".into(), true.into());
    }
    NewRecord {
        millis,
        body: Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default()),
    }
}

fn timestamped(
    at: Option<&pbjson_types::Timestamp>,
    received: u64,
    mut body: Map<String, Value>,
) -> NewRecord {
    let millis = match at {
        Some(t) if t.seconds > 0 => millis_of(t.seconds, t.nanos),
        _ => received,
    };
    body.insert("time".into(), rfc3339_millis(millis).into());
    NewRecord {
        millis,
        body: Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default()),
    }
}

/// A `ZInfoMsg` as a record.
pub(crate) fn info_record(info: &eve_api::info::ZInfoMsg, received: u64) -> NewRecord {
    let mut body = Map::new();
    body.insert(
        "info".into(),
        serde_json::to_value(info).unwrap_or(Value::Null),
    );
    timestamped(info.at_time_stamp.as_ref(), received, body)
}

/// A message kept as sent (metrics, flow logs), with the time it names if any.
pub(crate) fn raw_record(
    at: Option<&pbjson_types::Timestamp>,
    payload: &[u8],
    received: u64,
) -> NewRecord {
    let mut body = Map::new();
    body.insert(
        "protobuf".into(),
        base64::engine::general_purpose::STANDARD
            .encode(payload)
            .into(),
    );
    timestamped(at, received, body)
}

/// A kept record's body as readers get it: a metrics or flow log message as sent (`protobuf`)
/// read into its proto3 JSON (`metrics`, `flowlog`; fields not modelled are left out). `None`
/// for other kinds, and for a body that is not such a record.
pub(crate) fn readable(kind: Kind, body: &[u8]) -> Option<Vec<u8>> {
    use eve_api::Message;
    fn json<M: Message + Default + serde::Serialize>(bytes: &[u8]) -> Option<Value> {
        serde_json::to_value(M::decode(bytes).ok()?).ok()
    }
    type Reader = fn(&[u8]) -> Option<Value>;
    let (field, message): (&str, Reader) = match kind {
        Kind::Metrics => ("metrics", json::<eve_api::telemetry::ZMetricMsg>),
        Kind::FlowLog => ("flowlog", json::<eve_api::telemetry::FlowMessage>),
        _ => return None,
    };
    let mut body: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.get("protobuf")?.as_str()?)
        .ok()?;
    let message = message(&bytes)?;
    body.remove("protobuf");
    body.insert(field.into(), message);
    serde_json::to_vec(&body).ok()
}

/// Uploaded certificates as a record.
pub(crate) fn certs_record(certs: &[eve_api::certs::ZCert], received: u64) -> NewRecord {
    let mut body = Map::new();
    body.insert("certs".into(), json!(certs));
    timestamped(None, received, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_a_log_entry_is_bounded() {
        let entry = Entry {
            severity: "error".into(),
            source: "s".repeat(1000),
            content: "é".repeat(MAX_CONTENT),
            tags: (0..100).map(|i| (format!("k{i}"), "v".into())).collect(),
            timestamp: Some(eve_api::newlogs::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000_000,
            }),
            ..Entry::default()
        };
        let record = log_record(&entry, Some("app-1"), 42);
        assert_eq!(record.millis, 1_700_000_000_005);
        let body: Value = serde_json::from_slice(&record.body).unwrap();
        assert_eq!(body["time"], "2023-11-14T22:13:20.005Z");
        assert_eq!(body["severity"], "error");
        assert_eq!(body["source"].as_str().unwrap().len(), MAX_FIELD);
        assert!(body["content"].as_str().unwrap().len() <= MAX_CONTENT);
        assert_eq!(body["tags"].as_object().unwrap().len(), MAX_TAGS);
        assert_eq!(body["app"], "app-1");
        assert_eq!(body["truncated"], true);
        let plain = log_record(&Entry::default(), None, 1_000);
        let body: Value = serde_json::from_slice(&plain.body).unwrap();
        assert_eq!(plain.millis, 1_000, "no timestamp: when it was received");
        assert!(body.get("truncated").is_none() && body.get("app").is_none());
    }

    #[test]
    fn metrics_and_flow_logs_are_read_out_as_json() {
        use eve_api::Message;
        use eve_api::telemetry::{
            CpuMetric, DeviceMetric, FlowMessage, FlowRecord, IpFlow, ZMetricMsg,
            z_metric_msg::MetricContent,
        };
        let at = pbjson_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        let metrics = ZMetricMsg {
            dev_id: "d".into(),
            at_time_stamp: Some(at),
            metric_content: Some(MetricContent::Dm(DeviceMetric {
                cpu_metric: Some(CpuMetric {
                    total: 12,
                    ..CpuMetric::default()
                }),
                ..DeviceMetric::default()
            })),
            ..ZMetricMsg::default()
        };
        let record = raw_record(Some(&at), &metrics.encode_to_vec(), 0);
        let read: Value =
            serde_json::from_slice(&readable(Kind::Metrics, &record.body).unwrap()).unwrap();
        assert_eq!(
            read,
            json!({
                "time": "2023-11-14T22:13:20Z",
                "metrics": {
                    "devID": "d",
                    "atTimeStamp": "2023-11-14T22:13:20+00:00",
                    "dm": {"cpuMetric": {"total": "12"}},
                },
            })
        );
        let flows = FlowMessage {
            dev_id: "d".into(),
            flows: vec![FlowRecord {
                flow: Some(IpFlow {
                    src: "10.1.0.2".into(),
                    dest: "1.1.1.1".into(),
                    dest_port: 443,
                    protocol: 6,
                    ..IpFlow::default()
                }),
                tx_bytes: 100,
                ..FlowRecord::default()
            }],
            ..FlowMessage::default()
        };
        let record = raw_record(None, &flows.encode_to_vec(), 1_000);
        let read: Value =
            serde_json::from_slice(&readable(Kind::FlowLog, &record.body).unwrap()).unwrap();
        assert_eq!(
            read["flowlog"]["flows"][0],
            json!({
                "flow": {"src": "10.1.0.2", "dest": "1.1.1.1", "destPort": 443, "protocol": 6},
                "txBytes": "100",
            })
        );
        assert!(read.get("protobuf").is_none());
        assert_eq!(
            readable(Kind::Log, &record.body),
            None,
            "logs are JSON already"
        );
        assert_eq!(readable(Kind::Metrics, b"{}"), None, "not a kept message");
    }
}
