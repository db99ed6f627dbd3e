//! Telemetry for people: `GET /edgenode/<uuid>/{info,metrics,log,flowlog,certs}` and
//! `/edgenode/<uuid>/apps/<app>/log` (the Device also as `namespaces/<ns>/devices/<name>`),
//! with time ranges, filters, a limit or a tail, and a follow mode that goes on from history
//! with no gap and no duplicate. JSON lines, or server-sent events. Who may read is the
//! caller's to decide (`Access`): `get` on the Device's `log`, `info` or `metrics` subresource.
//! `docs/telemetry.md` is the reference.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use telemetry::{Id, Kind, Range, Record, StreamKey};
use tokio::sync::{mpsc, watch};

use crate::DeviceApi;

/// A response body: whole, or streamed while following.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// The most records one answer holds without `follow` (and the default `limit`).
pub const MAX_RECORDS: usize = 10_000;
/// Records read from the store at a time.
const PAGE: usize = 500;
/// How long a follower waits before a keep-alive (server-sent events).
const KEEPALIVE: Duration = Duration::from_secs(20);

/// What a request reads, for the caller to authorize: `get` on `devices/<subresource>` of the
/// Device `name` in `namespace` (group `eve.lfedge.org`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The Device's namespace.
    pub namespace: String,
    /// The Device's name.
    pub name: String,
    /// `log` (logs, application logs, flow logs), `info` (info, certificates) or `metrics`.
    pub subresource: &'static str,
}

/// An authorization decision under way: allowed, or refused with a status and why.
pub type Authorizing = futures::future::BoxFuture<'static, Result<(), (StatusCode, String)>>;

/// A refusal as kube's `Status`, for callers that refuse before [`DeviceApi::serve_telemetry`]
/// (authentication).
pub fn refusal(code: StatusCode, message: impl Into<String>) -> http::Response<Body> {
    status_response(failure(code, message))
}

struct Failure(StatusCode, String);

fn failure(code: StatusCode, message: impl Into<String>) -> Failure {
    Failure(code, message.into())
}

fn respond(code: StatusCode, content_type: &'static str, body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn whole(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A Kubernetes `Status` for a refusal, so kubectl prints its message.
fn status_response(Failure(code, message): Failure) -> http::Response<Body> {
    let reason = match code {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "InternalError",
    };
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    respond(
        code,
        "application/json",
        whole(serde_json::to_vec(&body).unwrap_or_default()),
    )
}

/// Severities, lowest first; a filter keeps a level and those above it.
const SEVERITIES: [&[&str]; 7] = [
    &["trace"],
    &["debug"],
    &["info"],
    &["notice"],
    &["warning", "warn"],
    &["error", "err"],
    &["fatal", "panic", "critical", "crit", "alert", "emerg"],
];

fn severity_level(name: &str) -> Option<usize> {
    let name = name.to_ascii_lowercase();
    SEVERITIES
        .iter()
        .position(|names| names.contains(&name.as_str()))
}

/// What to read and how to answer.
#[derive(Debug, Default)]
struct Options {
    since: Option<u64>,
    until: Option<u64>,
    severity: Option<usize>,
    source: Option<String>,
    app: Option<String>,
    text: Option<String>,
    limit: usize,
    tail: Option<usize>,
    follow: bool,
    events: bool,
    /// Metrics and flow logs as kept (the message as sent, base64), not read into JSON.
    raw: bool,
    /// The kind whose messages are read into JSON on the way out (metrics, flow logs).
    read_as: Option<Kind>,
}

/// A time: RFC 3339, or a duration before now (`90s`, `1h30m`, `2d`).
fn parse_time(text: &str, now_millis: u64) -> Result<u64, String> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at.as_millisecond().max(0) as u64);
    }
    let mut rest = text.trim();
    let mut millis = 0u64;
    if rest.is_empty() {
        return Err(format!("{text:?} is not a time"));
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| {
            format!("{text:?} is neither an RFC 3339 time nor a duration such as 1h30m")
        })?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "{text:?} is neither an RFC 3339 time nor a duration such as 1h30m"
                ));
            }
        };
        millis = millis.saturating_add(number.saturating_mul(scale));
        rest = &rest[unit..];
    }
    Ok(now_millis.saturating_sub(millis))
}

fn parse_options(request: &http::Request<()>, now: u64) -> Result<Options, Failure> {
    let bad = |m: String| failure(StatusCode::BAD_REQUEST, m);
    let mut options = Options {
        limit: MAX_RECORDS,
        ..Options::default()
    };
    let query = request.uri().query().unwrap_or("");
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.to_string();
        match key.as_ref() {
            "since" => options.since = Some(parse_time(&value, now).map_err(bad)?),
            "until" => options.until = Some(parse_time(&value, now).map_err(bad)?),
            "severity" => {
                options.severity = Some(severity_level(&value).ok_or_else(|| {
                    bad(format!(
                        "unknown severity {value:?}: use trace, debug, info, notice, warning, error or fatal"
                    ))
                })?)
            }
            "source" => options.source = Some(value),
            "app" => options.app = Some(value),
            "text" | "grep" => options.text = Some(value),
            "limit" => {
                let limit: usize = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_RECORDS).contains(l))
                    .ok_or_else(|| bad(format!("limit must be 1 to {MAX_RECORDS}, not {value:?}")))?;
                options.limit = limit;
            }
            "tail" => {
                let tail: usize = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_RECORDS).contains(l))
                    .ok_or_else(|| bad(format!("tail must be 1 to {MAX_RECORDS}, not {value:?}")))?;
                options.tail = Some(tail);
            }
            "follow" => options.follow = matches!(value.as_str(), "true" | "1" | ""),
            "raw" => options.raw = matches!(value.as_str(), "true" | "1" | ""),
            other => {
                return Err(bad(format!(
                    "unknown parameter {other:?}: use since, until, severity, source, app, text, limit, tail, follow or raw"
                )));
            }
        }
    }
    if let (Some(since), Some(until)) = (options.since, options.until)
        && since > until
    {
        return Err(bad("since is after until".into()));
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    if header("x-adamant-follow") == "true" {
        options.follow = true;
    }
    options.events = header("accept").contains("text/event-stream");
    Ok(options)
}

impl Options {
    fn filters(&self) -> bool {
        self.severity.is_some()
            || self.source.is_some()
            || self.app.is_some()
            || self.text.is_some()
    }

    /// Whether a record passes the filters.
    fn keeps(&self, record: &Record) -> bool {
        if !self.filters() {
            return true;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&record.body) else {
            return false;
        };
        let field = |name: &str| body[name].as_str().unwrap_or("");
        self.severity
            .is_none_or(|min| severity_level(field("severity")).is_some_and(|level| level >= min))
            && self.source.as_deref().is_none_or(|s| field("source") == s)
            && self.app.as_deref().is_none_or(|a| field("app") == a)
            && self
                .text
                .as_deref()
                .is_none_or(|t| field("content").contains(t))
    }
}

/// One record as a line: its body (read into JSON where `options` say) with its `id` first.
fn line(record: &Record, options: &Options) -> Bytes {
    let events = options.events;
    let id = record.id.to_string();
    let readable = options
        .read_as
        .and_then(|kind| super::ingest::readable(kind, &record.body));
    let body: &[u8] = readable.as_deref().unwrap_or(&record.body);
    let mut out = Vec::with_capacity(body.len() + id.len() + 16);
    if events {
        out.extend_from_slice(format!("id: {id}\ndata: ").as_bytes());
    }
    if body.first() == Some(&b'{') {
        out.extend_from_slice(format!("{{\"id\":\"{id}\"").as_bytes());
        let rest = &body[1..];
        if rest.iter().any(|b| !b.is_ascii_whitespace() && *b != b'}') {
            out.push(b',');
        }
        out.extend_from_slice(rest);
    } else {
        out.extend_from_slice(body);
    }
    out.extend_from_slice(if events { b"\n\n" } else { b"\n" });
    Bytes::from(out)
}

fn marker(value: Value, events: bool) -> Bytes {
    let text = value.to_string();
    Bytes::from(if events {
        format!("event: marker\ndata: {text}\n\n")
    } else {
        format!("{text}\n")
    })
}

/// The records of `options` in `stream` from history: the first `limit` from `since`, or the
/// last `tail` before `until`.
async fn history(
    store: &dyn telemetry::TelemetryStore,
    stream: &StreamKey,
    options: &Options,
) -> Result<Vec<Record>, Failure> {
    let unavailable =
        |e: telemetry::TelemetryError| failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let after = options.since.and_then(|since| Id::at(since).prev());
    let until = options.until.map(Id::end_of);
    let mut kept = Vec::new();
    match options.tail {
        Some(tail) => {
            let mut before = until;
            loop {
                let page = store
                    .read(
                        stream,
                        &Range {
                            after,
                            until: before,
                            limit: PAGE,
                            tail: true,
                        },
                    )
                    .await
                    .map_err(unavailable)?;
                let Some(oldest) = page.first().map(|r| r.id) else {
                    break;
                };
                let full = page.len() == PAGE;
                for record in page.into_iter().rev() {
                    if options.keeps(&record) && kept.len() < tail {
                        kept.push(record);
                    }
                }
                if kept.len() >= tail || !full {
                    break;
                }
                before = match oldest.prev() {
                    Some(before) => Some(before),
                    None => break,
                };
            }
            kept.reverse();
        }
        None => {
            let mut from = after;
            loop {
                let page = store
                    .read(
                        stream,
                        &Range {
                            after: from,
                            until,
                            limit: PAGE,
                            tail: false,
                        },
                    )
                    .await
                    .map_err(unavailable)?;
                let full = page.len() == PAGE;
                from = page.last().map(|r| r.id).or(from);
                kept.extend(page.into_iter().filter(|r| options.keeps(r)));
                if kept.len() >= options.limit || !full {
                    break;
                }
            }
            kept.truncate(options.limit);
        }
    }
    Ok(kept)
}

/// Where a request points: the device's UUID and Device, the kind, and the application.
struct Target {
    uuid: String,
    namespace: String,
    name: String,
    kind: Kind,
    app: Option<String>,
}

impl DeviceApi {
    fn target(&self, segments: &[&str]) -> Result<Target, Failure> {
        let not_found = |m: String| failure(StatusCode::NOT_FOUND, m);
        let (device, rest) = match segments {
            ["namespaces", namespace, "devices", name, rest @ ..] => {
                let device = self
                    .fleet
                    .devices
                    .get(&ObjectRef::new(name).within(namespace))
                    .ok_or_else(|| {
                        not_found(format!(
                            "devices.eve.lfedge.org \"{name}\" not found in namespace {namespace:?}"
                        ))
                    })?;
                (device, rest)
            }
            [uuid, rest @ ..] => {
                let device = self
                    .fleet
                    .by_uuid(uuid)
                    .ok_or_else(|| not_found(format!("no Device has the UUID {uuid:?}")))?;
                (device, rest)
            }
            [] => return Err(not_found("no device named: /edgenode/<uuid>/<kind>".into())),
        };
        let uuid = crate::fleet::uuid_of(&device).unwrap_or_default();
        let namespace = device.namespace().unwrap_or_default();
        let name = device.name_any();
        let (kind, app) = match rest {
            ["apps", app, "log"] => {
                let application = self
                    .fleet
                    .application(app)
                    .or_else(|| {
                        self.fleet
                            .applications
                            .get(&ObjectRef::new(app).within(&namespace))
                    })
                    .ok_or_else(|| not_found(format!("applications.eve.lfedge.org \"{app}\" not found in namespace {namespace:?}")))?;
                (Kind::AppLog, Some(application.uid().unwrap_or_default()))
            }
            [kind] => {
                let kind = match *kind {
                    "log" => Kind::Log,
                    "info" => Kind::Info,
                    "metrics" => Kind::Metrics,
                    "flowlog" => Kind::FlowLog,
                    "certs" => Kind::Certs,
                    other => return Err(not_found(format!("no telemetry {other:?}: use info, metrics, log, flowlog, certs or apps/<app>/log"))),
                };
                (kind, None)
            }
            _ => return Err(not_found("use /edgenode/<uuid>/{info,metrics,log,flowlog,certs} or /edgenode/<uuid>/apps/<app>/log".into())),
        };
        Ok(Target {
            uuid,
            namespace,
            name,
            kind,
            app,
        })
    }

    /// Serves `GET /edgenode/...` (`segments` are the path's after `edgenode`) once `authorize`
    /// allows the [`Access`] it needs; a refusal is answered with its status and message.
    pub async fn serve_telemetry(
        self: &Arc<Self>,
        request: http::Request<()>,
        segments: &[&str],
        authorize: impl FnOnce(Access) -> Authorizing,
    ) -> http::Response<Body> {
        match self.telemetry_answer(request, segments, authorize).await {
            Ok(response) => response,
            Err(refused) => status_response(refused),
        }
    }

    async fn telemetry_answer(
        self: &Arc<Self>,
        request: http::Request<()>,
        segments: &[&str],
        authorize: impl FnOnce(Access) -> Authorizing,
    ) -> Result<http::Response<Body>, Failure> {
        if request.method() != http::Method::GET {
            return Err(failure(
                StatusCode::METHOD_NOT_ALLOWED,
                "telemetry is read with GET",
            ));
        }
        let target = self.target(segments)?;
        let subresource = match target.kind {
            Kind::Log | Kind::AppLog | Kind::FlowLog => "log",
            Kind::Info | Kind::Certs => "info",
            Kind::Metrics => "metrics",
        };
        authorize(Access {
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            subresource,
        })
        .await
        .map_err(|(code, message)| Failure(code, message))?;
        let mut options = parse_options(&request, super::ingest::now_millis())?;
        if target.app.is_some() {
            options.app = target.app.clone();
        }
        if !options.raw {
            options.read_as = Some(target.kind);
        }
        let stream = StreamKey::new(target.uuid.clone(), target.kind);
        let store = self.telemetry.store().clone();
        let records = history(store.as_ref(), &stream, &options).await?;
        let content_type = if options.events {
            "text/event-stream"
        } else {
            "application/jsonl; charset=utf-8"
        };
        if !options.follow {
            let mut out = Vec::new();
            for record in &records {
                out.extend_from_slice(&line(record, &options));
            }
            return Ok(respond(StatusCode::OK, content_type, whole(out)));
        }
        // Follow: history, then what comes, through a small channel (a slow reader holds the
        // producer back, not memory).
        let (sender, receiver) =
            mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(8);
        let stop = self.stop.clone();
        let cursor = records.last().map(|r| r.id);
        tokio::spawn(follow(
            store, stream, options, records, cursor, sender, stop,
        ));
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        Ok(respond(StatusCode::OK, content_type, BodyExt::boxed(body)))
    }
}

/// Sends `records`, then every record after `cursor` (the last record the reader has; none:
/// from `since`, or from now) as it arrives, until the reader goes away, the server stops, or
/// `until` passes.
async fn follow(
    store: Arc<dyn telemetry::TelemetryStore>,
    stream: StreamKey,
    options: Options,
    records: Vec<Record>,
    cursor: Option<Id>,
    sender: mpsc::Sender<Result<http_body::Frame<Bytes>, std::io::Error>>,
    mut stop: watch::Receiver<bool>,
) {
    let send = |bytes: Bytes| sender.send(Ok(http_body::Frame::data(bytes)));
    for record in &records {
        if send(line(record, &options)).await.is_err() {
            return;
        }
    }
    // Whether the cursor is a record the reader had (only then can records after it have been
    // removed unread).
    let (mut cursor, mut had) = match (cursor, options.since) {
        (Some(cursor), _) => (cursor, true),
        (None, Some(since)) => (Id::at(since).prev().unwrap_or_default(), false),
        (None, None) => match store
            .read(
                &stream,
                &Range {
                    tail: true,
                    limit: 1,
                    ..Range::default()
                },
            )
            .await
        {
            Ok(last) => match last.last() {
                Some(record) => (record.id, true),
                None => (Id::default(), false),
            },
            Err(_) => return,
        },
    };
    let until = options.until.map(Id::end_of);
    loop {
        if *stop.borrow() || until.is_some_and(|u| cursor >= u) {
            return;
        }
        let woke = tokio::select! {
            woke = store.wait(&stream, cursor, KEEPALIVE) => woke,
            _ = stop.changed() => return,
        };
        match woke {
            Ok(true) => {}
            Ok(false) => {
                if options.events && send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        // Records trimmed before this reader got to them: say so, and go on from what is kept.
        if had
            && let Ok(Some(first)) = store.first(&stream).await
            && first > cursor.next()
        {
            let skipped = json!({"fellBehind": true, "resumedAt": first.to_string()});
            if send(marker(skipped, options.events)).await.is_err() {
                return;
            }
        }
        let page = match store
            .read(
                &stream,
                &Range {
                    after: Some(cursor),
                    until,
                    limit: PAGE,
                    tail: false,
                },
            )
            .await
        {
            Ok(page) => page,
            Err(_) => return,
        };
        for record in page {
            cursor = record.id;
            had = true;
            if options.keeps(&record) && send(line(&record, &options)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        let now = 10_000_000;
        assert_eq!(parse_time("90s", now), Ok(now - 90_000));
        assert_eq!(parse_time("1h30m", now), Ok(now - 5_400_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.005Z", now),
            Ok(1_700_000_000_005)
        );
        for bad in ["", "yesterday", "5y", "1.5h"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        assert_eq!(severity_level("WARN"), Some(4));
        assert_eq!(severity_level("bogus"), None);
    }

    #[tokio::test]
    async fn a_follower_whose_records_retention_removed_is_told_and_goes_on() {
        use telemetry::{MemoryTelemetry, NewRecord, Retention, TelemetryStore};
        let store: Arc<dyn TelemetryStore> = Arc::new(MemoryTelemetry::new());
        let stream = StreamKey::new("d", Kind::Log);
        let record = |millis: u64, text: &str| NewRecord {
            millis,
            body: Bytes::from(format!("{{\"content\":\"{text}\"}}")),
        };
        store
            .append(
                &stream,
                vec![record(1_000, "read"), record(2_000, "unread")],
            )
            .await
            .unwrap();
        // The follower has read the first record; retention then removes both.
        let retention = Retention {
            max_age: Duration::from_secs(1),
            max_bytes: u64::MAX,
        };
        store.trim(&retention, 100_000).await.unwrap();
        let (sender, mut receiver) = mpsc::channel(8);
        let (_stop, stop) = watch::channel(false);
        let follower = tokio::spawn(follow(
            store.clone(),
            stream.clone(),
            Options::default(),
            Vec::new(),
            Some(Id::at(1_000)),
            sender,
            stop,
        ));
        store
            .append(&stream, vec![record(5_000, "new")])
            .await
            .unwrap();
        let mut lines = Vec::new();
        while lines.len() < 2 {
            let frame = receiver.recv().await.unwrap().unwrap();
            lines.push(String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap());
        }
        assert_eq!(
            lines,
            [
                "{\"fellBehind\":true,\"resumedAt\":\"5000-0\"}\n",
                "{\"id\":\"5000-0\",\"content\":\"new\"}\n"
            ]
        );
        follower.abort();

        // A follower from a time before everything kept has missed nothing: no marker.
        let (sender, mut receiver) = mpsc::channel(8);
        let (_stop, stop) = watch::channel(false);
        let options = Options {
            since: Some(0),
            ..Options::default()
        };
        let follower = tokio::spawn(follow(
            store.clone(),
            stream,
            options,
            Vec::new(),
            None,
            sender,
            stop,
        ));
        let frame = receiver.recv().await.unwrap().unwrap();
        assert_eq!(
            frame.into_data().unwrap(),
            "{\"id\":\"5000-0\",\"content\":\"new\"}\n"
        );
        follower.abort();
    }

    #[test]
    fn lines_carry_the_id_first() {
        let record = |body: &str| Record {
            id: Id { millis: 5, seq: 1 },
            body: Bytes::from(body.to_string()),
        };
        let lines = Options::default();
        let events = Options {
            events: true,
            ..Options::default()
        };
        assert_eq!(
            line(&record(r#"{"a":1}"#), &lines),
            r#"{"id":"5-1","a":1}"#.to_string() + "\n"
        );
        assert_eq!(line(&record("{}"), &lines), "{\"id\":\"5-1\"}\n");
        assert_eq!(
            line(&record(r#"{"a":1}"#), &events),
            "id: 5-1\ndata: {\"id\":\"5-1\",\"a\":1}\n\n"
        );
    }
}
