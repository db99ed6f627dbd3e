//! Events: `core/v1` and `events.k8s.io/v1` Event, two views of one set of stored objects, as
//! kube-apiserver serves them.
//!
//! Objects are stored in the `core/v1` form under the core group's keys; the
//! `events.k8s.io/v1` view converts every object it reads and writes ([`to_events_v1`],
//! [`to_core_v1`]: `involvedObject` is `regarding`, `message` is `note`, `source`, `count` and
//! the first and last timestamps are the `deprecated` ones, `reportingComponent` is
//! `reportingController`; the rest keeps its name). Both views check kube-apiserver's rules
//! (the strict ones only on `events.k8s.io/v1` writes), offer the field selectors kubectl uses
//! (`kubectl describe` and `kubectl events --for` find an object's Events by
//! `involvedObject.*`), print kube-apiserver's columns, and expire a time to live after their
//! last write ([`DEFAULT_TTL`], or [`set_ttl`]: `adamant serve --event-ttl`).

use std::sync::Arc;
use std::time::Duration;

use apimachinery::FieldError;
use apimachinery::validation::is_qualified_name;
use registry::{Resource, Strategy};
use serde_json::{Value, json};

use crate::ApiServer;
use crate::catalog::{Column, Kind};
use crate::native::{kind, plain, str_at};
use crate::schema::Components;
use crate::table::human_duration;

/// How long an Event lives after its last write unless [`set_ttl`] says otherwise
/// (kube-apiserver's `--event-ttl` default).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);

/// The fields the two versions name differently: (`core/v1`, `events.k8s.io/v1`).
pub const RENAMED: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// The field selectors of `core/v1` Events, besides `metadata.name` and `metadata.namespace`.
pub const CORE_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The field selectors of `events.k8s.io/v1` Events, besides `metadata.name` and
/// `metadata.namespace`.
pub const EVENTS_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// What an `events.k8s.io/v1` update may not change (kube-apiserver's `ValidateEventUpdate`), by
/// their `core/v1` names.
const IMMUTABLE: &[&str] = &[
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
];

/// The longest `reportingInstance`, `action` and `reason` of a new-style Event, in bytes.
const SHORT_LIMIT: usize = 128;
/// The longest message (`note`) of a new-style Event, in bytes.
const NOTE_LIMIT: usize = 1024;

/// Why a time to live cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TtlError {
    /// Not a duration.
    #[error("{0:?} is not a duration: write it as Go does (1h, 30m, 1h30m, 90s)")]
    Syntax(String),
    /// Zero or less.
    #[error("{0:?} is not a time to live: it must be longer than zero")]
    NotPositive(String),
}

/// Reads a time to live as kube-apiserver's flags take durations (Go's syntax: `1h`, `30m`,
/// `1h30m`, `1.5h`, `90s`, `500ms`).
pub fn parse_ttl(text: &str) -> Result<Duration, TtlError> {
    let syntax = || TtlError::Syntax(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(syntax());
    }
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().map_err(|_| syntax())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(syntax()),
        };
        rest = &rest[unit_end..];
        seconds += number * scale;
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(ttl) if !ttl.is_zero() => Ok(ttl),
        _ => Err(TtlError::NotPositive(text.to_string())),
    }
}

/// Makes the Events of `server` (both views) expire `ttl` after their last write.
pub fn set_ttl(server: &ApiServer, ttl: Duration) {
    server.registry().set_ttl(&resource(), ttl);
}

/// The registry resource of `core/v1` Events (whose keys hold both views).
pub fn resource() -> Resource {
    plain("", "events", "Event", true, Arc::new(CoreEvents))
}

fn renamed(mut object: Value, api_version: &str, to_events: bool) -> Value {
    if let Some(map) = object.as_object_mut() {
        for (core, events) in RENAMED {
            let (from, to) = if to_events {
                (core, events)
            } else {
                (events, core)
            };
            if let Some(value) = map.remove(from) {
                map.insert(to.into(), value);
            }
        }
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), "Event".into());
    }
    object
}

/// A `core/v1` Event as `events.k8s.io/v1` serves it.
pub fn to_events_v1(core: Value) -> Value {
    renamed(core, "events.k8s.io/v1", true)
}

/// An `events.k8s.io/v1` Event as `core/v1` serves (and the store keeps) it.
pub fn to_core_v1(events: Value) -> Value {
    renamed(events, "v1", false)
}

/// A field error's path in `events.k8s.io/v1` terms, from its `core/v1` one.
fn events_path(path: &str) -> String {
    for (core, events) in RENAMED {
        if let Some(rest) = path.strip_prefix(core)
            && (rest.is_empty() || rest.starts_with(['.', '[']))
        {
            return format!("{events}{rest}");
        }
    }
    path.to_string()
}

fn in_events_terms(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    for error in &mut errors {
        error.path = events_path(&error.path);
    }
    errors
}

/// Whether a field holds nothing: absent, null, `""`, `0` or an object of nothing.
fn unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Object(map) => map.values().all(unset),
        _ => false,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A text of a new-style Event: present if `required`, and at most `limit` characters.
fn check_text(
    errors: &mut Vec<FieldError>,
    event: &Value,
    field: &str,
    required: bool,
    limit: Option<usize>,
) {
    let value = str_at(event, &[field]);
    if required && value.is_empty() {
        errors.push(FieldError::required(field, ""));
    }
    if let Some(limit) = limit
        && value.len() > limit
    {
        errors.push(FieldError::invalid(
            field,
            "",
            format!("can have at most {limit} characters"),
        ));
    }
}

/// kube-apiserver's rules for every Event, of either version (its `legacyValidateEvent`), on
/// the `core/v1` form: the namespace agrees with the involved object's; a new-style Event (with
/// an `eventTime`) names its reporter, action and reason within their limits.
fn validate_any(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let namespace = registry::object::namespace(event);
    let involved = str_at(event, &["involvedObject", "namespace"]);
    let new_style = !unset(&event["eventTime"]);
    let agrees = if !involved.is_empty() {
        involved == namespace
    } else if new_style {
        ["default", "kube-system"].contains(&namespace)
    } else {
        ["", "default"].contains(&namespace)
    };
    if !agrees {
        errors.push(FieldError::invalid(
            "involvedObject.namespace",
            involved,
            "does not match event.namespace",
        ));
    }
    if new_style {
        let controller = str_at(event, &["reportingComponent"]);
        check_text(&mut errors, event, "reportingComponent", true, None);
        if !controller.is_empty() {
            for message in is_qualified_name(controller) {
                errors.push(FieldError::invalid(
                    "reportingComponent",
                    controller,
                    message,
                ));
            }
        }
        check_text(
            &mut errors,
            event,
            "reportingInstance",
            true,
            Some(SHORT_LIMIT),
        );
        check_text(&mut errors, event, "action", true, Some(SHORT_LIMIT));
        check_text(&mut errors, event, "reason", true, Some(SHORT_LIMIT));
        check_text(&mut errors, event, "message", false, Some(NOTE_LIMIT));
    }
    errors
}

/// The rules of a `series` (`events.k8s.io/v1` writes).
fn validate_series(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let series = &event["series"];
    if series.is_object() {
        if series["count"].as_i64().unwrap_or(0) < 2 {
            errors.push(FieldError::invalid(
                "series.count",
                text(&series["count"]),
                "should be at least 2",
            ));
        }
        if unset(&series["lastObservedTime"]) {
            errors.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errors
}

/// The rules of a new `events.k8s.io/v1` Event, on its `core/v1` form: it has an `eventTime`,
/// a type of `Normal` or `Warning`, a reporter, and none of the deprecated fields.
fn validate_new_events_v1(event: &Value) -> Vec<FieldError> {
    let mut errors = validate_series(event);
    if unset(&event["eventTime"]) {
        errors.push(FieldError::required("eventTime", ""));
        // Without an eventTime the rules of new-style Events do not run: the reporter is still
        // required.
        for field in ["reportingComponent", "reportingInstance"] {
            if str_at(event, &[field]).is_empty() {
                errors.push(FieldError::required(field, ""));
            }
        }
    }
    let type_ = str_at(event, &["type"]);
    if !["Normal", "Warning"].contains(&type_) {
        errors.push(FieldError::not_supported(
            "type",
            type_,
            &["Normal", "Warning"],
        ));
    }
    for field in ["firstTimestamp", "lastTimestamp", "count", "source"] {
        if !unset(&event[field]) {
            errors.push(FieldError::invalid(field, "", "needs to be unset"));
        }
    }
    errors
}

/// The rules of an `events.k8s.io/v1` update, on the `core/v1` forms: a changed series is
/// checked, and what happened (object, reason, message, times, reporter) may not change.
fn validate_events_v1_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if new["series"] != old["series"] {
        errors.extend(validate_series(new));
    }
    for field in IMMUTABLE {
        let (was, is) = (&old[*field], &new[*field]);
        if was != is && !(unset(was) && unset(is)) {
            errors.push(FieldError::invalid(*field, text(is), "field is immutable"));
        }
    }
    errors
}

/// The value of a field selector, on the `core/v1` or `events.k8s.io/v1` form.
fn field(object: &Value, field: &str) -> String {
    if field == "source" {
        // The reporter: the deprecated source's component, or the new-style reporter.
        return match str_at(object, &["source", "component"]) {
            "" => str_at(object, &["reportingComponent"]),
            component => component,
        }
        .to_string();
    }
    let path: Vec<&str> = field.split('.').collect();
    str_at(object, &path).to_string()
}

/// The strategy of `core/v1` Events: the rules every Event follows.
pub struct CoreEvents;

impl Strategy for CoreEvents {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        validate_any(object)
    }

    fn selectable_fields(&self) -> Vec<String> {
        CORE_FIELDS.iter().map(|f| f.to_string()).collect()
    }

    fn field(&self, object: &Value, name: &str) -> Option<String> {
        CORE_FIELDS.contains(&name).then(|| field(object, name))
    }

    fn ttl(&self) -> Option<Duration> {
        Some(DEFAULT_TTL)
    }
}

/// The strategy of `events.k8s.io/v1` Events: the same objects as `core/v1`, converted on every
/// read and write, with the stricter rules of the new API.
pub struct EventsV1;

impl Strategy for EventsV1 {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        in_events_terms(validate_any(&to_core_v1(object.clone())))
    }

    fn validate_create(&self, object: &Value) -> Vec<FieldError> {
        in_events_terms(validate_new_events_v1(&to_core_v1(object.clone())))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        in_events_terms(validate_events_v1_update(
            &to_core_v1(new.clone()),
            &to_core_v1(old.clone()),
        ))
    }

    fn storage_group(&self) -> Option<&str> {
        Some("")
    }

    fn convert_for_storage(&self, object: Value) -> Value {
        to_core_v1(object)
    }

    fn convert_from_storage(&self, object: Value) -> Value {
        to_events_v1(object)
    }

    fn selectable_fields(&self) -> Vec<String> {
        EVENTS_FIELDS.iter().map(|f| f.to_string()).collect()
    }

    fn field(&self, object: &Value, name: &str) -> Option<String> {
        EVENTS_FIELDS.contains(&name).then(|| field(object, name))
    }

    fn ttl(&self) -> Option<Duration> {
        Some(DEFAULT_TTL)
    }
}

/// kube-apiserver's Event columns (the name comes last, and only wide).
fn columns() -> Vec<Column> {
    let mut name = Column::new(
        "Name",
        "string",
        1,
        "Name must be unique within a namespace.",
    );
    name.format = "name".into();
    vec![
        Column::new(
            "Last Seen",
            "string",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        Column::new("Type", "string", 0, "Type of this event (Normal, Warning)."),
        Column::new(
            "Reason",
            "string",
            0,
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        Column::new(
            "Object",
            "string",
            0,
            "The object that this event is about.",
        ),
        Column::new(
            "Subobject",
            "string",
            1,
            "The part of the object this event is about (its fieldPath).",
        ),
        Column::new("Source", "string", 1, "The component reporting this event."),
        Column::new(
            "Message",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        Column::new(
            "First Seen",
            "string",
            1,
            "The time at which the event was first recorded.",
        ),
        Column::new(
            "Count",
            "string",
            1,
            "The number of times this event has occurred.",
        ),
        name,
    ]
}

/// How long ago a timestamp was, as kubectl shows it (`<unknown>` when there is none).
fn since(time: &Value) -> String {
    time.as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or_else(
            || "<unknown>".to_string(),
            |t| human_duration(jiff::Timestamp::now().duration_since(t)),
        )
}

/// The cells of one `core/v1` Event, as kube-apiserver's `printEvent` makes them.
fn cells(event: &Value) -> Vec<Value> {
    let first = if unset(&event["firstTimestamp"]) {
        since(&event["eventTime"])
    } else {
        since(&event["firstTimestamp"])
    };
    let mut last = if unset(&event["lastTimestamp"]) {
        first.clone()
    } else {
        since(&event["lastTimestamp"])
    };
    let mut count = event["count"].as_i64().unwrap_or(0);
    if event["series"].is_object() {
        last = since(&event["series"]["lastObservedTime"]);
        count = event["series"]["count"].as_i64().unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(event, &["involvedObject", "kind"]).to_lowercase();
    let target = match str_at(event, &["involvedObject", "name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = match str_at(event, &["source", "component"]) {
        "" => str_at(event, &["reportingComponent"]),
        c => c,
    };
    let instance = match str_at(event, &["source", "host"]) {
        "" => str_at(event, &["reportingInstance"]),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(str_at(event, &["type"])),
        json!(str_at(event, &["reason"])),
        json!(target),
        json!(str_at(event, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(str_at(event, &["message"]).trim()),
        json!(first),
        json!(count),
        json!(registry::object::name(event)),
    ]
}

/// The `core/v1` Event kind.
pub(crate) fn core_kind(components: &Arc<Components>) -> Kind {
    kind(
        components,
        "",
        "events",
        "Event",
        &["ev"],
        true,
        Arc::new(CoreEvents),
        None,
        columns(),
        cells,
        CORE_FIELDS,
    )
}

/// The `events.k8s.io/v1` Event kind: the same objects as [`core_kind`]'s.
pub(crate) fn events_kind(components: &Arc<Components>) -> Kind {
    kind(
        components,
        "events.k8s.io",
        "events",
        "Event",
        &["ev"],
        true,
        Arc::new(EventsV1),
        None,
        columns(),
        |event| cells(&to_core_v1(event.clone())),
        EVENTS_FIELDS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_round_trips_both_ways() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Device", "name": "d", "namespace": "ns"},
            "message": "hello", "reason": "Onboarded", "type": "Normal",
            "source": {"component": "c", "host": "h"},
            "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:01:00Z",
            "count": 3, "reportingComponent": "x.io/y", "reportingInstance": "i",
            "eventTime": null, "action": "Register",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"},
            "related": {"kind": "Secret", "name": "s"},
        });
        let events = to_events_v1(core.clone());
        assert_eq!(events["apiVersion"], "events.k8s.io/v1");
        assert_eq!(events["regarding"]["name"], "d");
        assert_eq!(events["note"], "hello");
        assert_eq!(events["deprecatedSource"]["component"], "c");
        assert_eq!(events["deprecatedCount"], 3);
        assert_eq!(events["reportingController"], "x.io/y");
        assert_eq!(events["series"]["count"], 2);
        assert!(events.get("involvedObject").is_none() && events.get("message").is_none());
        assert_eq!(to_core_v1(events), core);
    }

    #[test]
    fn paths_are_named_as_each_view_names_them() {
        assert_eq!(
            events_path("involvedObject.namespace"),
            "regarding.namespace"
        );
        assert_eq!(events_path("message"), "note");
        assert_eq!(events_path("reportingComponent"), "reportingController");
        assert_eq!(events_path("countless"), "countless");
        assert_eq!(events_path("series.count"), "series.count");
    }

    #[test]
    fn ttls_read_as_go_durations() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("1h0m0s"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_ttl("250ms"), Ok(Duration::from_millis(250)));
        assert!(matches!(parse_ttl("0s"), Err(TtlError::NotPositive(_))));
        for bad in ["", "1", "h", "1d", "1h-2m", "x1s"] {
            assert!(matches!(parse_ttl(bad), Err(TtlError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn rows_follow_kube_apiserver() {
        let event = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Device", "name": "d"},
            "reason": "Onboarded", "type": "Normal", "message": " hi ",
            "reportingComponent": "eve.lfedge.org/device-api", "reportingInstance": "host",
            "eventTime": "2020-01-01T00:00:00.000000Z",
        });
        let row = cells(&event);
        assert_eq!(row[1], "Normal");
        assert_eq!(row[3], "device/d");
        assert_eq!(row[5], "eve.lfedge.org/device-api, host");
        assert_eq!(row[6], "hi");
        assert_eq!(row[8], 1);
        assert_eq!(row[9], "e");
        assert_eq!(row[0], row[7], "last seen is first seen for a single event");
        assert_eq!(since(&Value::Null), "<unknown>");
    }
}
