//! The messages with a JSON form of their own, each converted as a whole rather than field by
//! field: `meta.v1.Time` and `MicroTime` (RFC 3339 text), `Duration` (Go's duration text),
//! `resource.Quantity` (a string), `intstr.IntOrString` (a number or a string), `FieldsV1` and
//! `runtime.RawExtension` (the JSON they embed), `authentication.v1.AttestationValue` (an array
//! of strings); and the message fields whose JSON is inlined into their parent's object.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage as _, Value as Field,
};
use serde_json::Value;

use super::descriptors::{bytes_field, has, number_field, set, string_field};
use super::envelope::decode_at;
use super::from_json::integer;
use super::path::{Path, invalid, wrong};
use super::{MAGIC, ProtobufError};

pub(super) const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
pub(super) const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
pub(super) const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
pub(super) const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
pub(super) const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
pub(super) const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
pub(super) const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
pub(super) const ATTESTATION_VALUE: &str = "k8s.io.api.authentication.v1.AttestationValue";

/// Message fields whose JSON is inlined into their parent's object (Go's embedded structs).
pub(super) const INLINE: &[(&str, &str)] = &[(
    "k8s.io.api.admissionregistration.v1.RuleWithOperations",
    "rule",
)];

/// Whether the JSON of `field` of `message` is inlined into the message's own object.
pub(super) fn is_inline(message: &MessageDescriptor, field: &FieldDescriptor) -> bool {
    INLINE
        .iter()
        .any(|(m, f)| *m == message.full_name() && *f == field.name())
}

/// The JSON of a message with a JSON form of its own (`None` inside where the message stands
/// for "unset": Go's zero time, no embedded JSON); `None` for any other message, converted
/// field by field.
pub(super) fn to_json(
    message: &DynamicMessage,
    path: &Path<'_>,
    depth: usize,
) -> Option<Result<Option<Value>, ProtobufError>> {
    Some(match message.descriptor().full_name() {
        TIME => time_to_json(message, false, path),
        MICRO_TIME => time_to_json(message, true, path),
        DURATION => Ok(Some(Value::String(format_duration(number_field(
            message, "duration",
        ))))),
        QUANTITY => {
            let quantity = string_field(message, "string");
            // Go reads an empty quantity as zero.
            Ok(Some(Value::String(if quantity.is_empty() {
                "0".into()
            } else {
                quantity
            })))
        }
        INT_OR_STRING => Ok(Some(if number_field(message, "type") == 1 {
            Value::String(string_field(message, "strVal"))
        } else {
            Value::from(number_field(message, "intVal"))
        })),
        FIELDS_V1 => embedded_json(&bytes_field(message, "Raw"), path, depth),
        RAW_EXTENSION => embedded_json(&bytes_field(message, "raw"), path, depth),
        ATTESTATION_VALUE => {
            let items = message
                .get_field_by_name("items")
                .and_then(|v| {
                    v.as_list().map(|l| {
                        l.iter()
                            .filter_map(|i| i.as_str().map(|s| Value::String(s.to_owned())))
                            .collect::<Vec<_>>()
                    })
                })
                .unwrap_or_default();
            Ok(Some(Value::Array(items)))
        }
        _ => return None,
    })
}

/// The message `desc` of a JSON value, when the message has a JSON form of its own; `None` for
/// any other message, converted field by field.
pub(super) fn from_json(
    desc: &MessageDescriptor,
    json: &Value,
    path: &Path<'_>,
) -> Result<Option<DynamicMessage>, ProtobufError> {
    let mut message = DynamicMessage::new(desc.clone());
    match desc.full_name() {
        name @ (TIME | MICRO_TIME) => {
            let text = json
                .as_str()
                .ok_or_else(|| wrong(path, "an RFC 3339 time"))?;
            let time: jiff::Timestamp = text
                .parse()
                .map_err(|e| invalid(path, format!("not an RFC 3339 time: {e}")))?;
            let (mut seconds, mut nanos) = (time.as_second(), time.subsec_nanosecond());
            if nanos < 0 {
                seconds -= 1;
                nanos += 1_000_000_000;
            }
            set(&mut message, "seconds", Field::I64(seconds))?;
            if name == MICRO_TIME && nanos >= 1_000 {
                set(&mut message, "nanos", Field::I32(nanos / 1_000 * 1_000))?;
            }
        }
        DURATION => {
            let text = json
                .as_str()
                .ok_or_else(|| wrong(path, "a duration string"))?;
            let nanos = parse_duration(text)
                .ok_or_else(|| invalid(path, format!("{text:?} is not a duration")))?;
            set(&mut message, "duration", Field::I64(nanos))?;
        }
        QUANTITY => {
            let text = match json {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(wrong(path, "a quantity (a string or a number)")),
            };
            set(&mut message, "string", Field::String(text))?;
        }
        INT_OR_STRING => match json {
            Value::String(s) => {
                set(&mut message, "type", Field::I64(1))?;
                set(&mut message, "strVal", Field::String(s.clone()))?;
            }
            _ => {
                let n = integer(json)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| wrong(path, "a 32-bit integer or a string"))?;
                set(&mut message, "intVal", Field::I32(n))?;
            }
        },
        name @ (FIELDS_V1 | RAW_EXTENSION) => {
            let raw = serde_json::to_vec(json).map_err(|e| invalid(path, e.to_string()))?;
            set(
                &mut message,
                if name == FIELDS_V1 { "Raw" } else { "raw" },
                Field::Bytes(raw.into()),
            )?;
        }
        ATTESTATION_VALUE => {
            let Value::Array(items) = json else {
                return Err(wrong(path, "an array of strings"));
            };
            let items = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str()
                        .map(|s| Field::String(s.to_owned()))
                        .ok_or_else(|| wrong(&Path::Index(path, i), "a string"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            set(&mut message, "items", Field::List(items))?;
        }
        _ => return Ok(None),
    }
    Ok(Some(message))
}

/// The JSON embedded in a `FieldsV1` or `RawExtension`; an envelope (magic first) is read as the
/// object it holds.
fn embedded_json(
    raw: &[u8],
    path: &Path<'_>,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.starts_with(&MAGIC) {
        return decode_at(raw, depth + 1).map(Some);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|e| invalid(path, format!("the embedded bytes are not JSON: {e}")))
}

/// A `Time` (whole seconds) or `MicroTime` (`micro`: microseconds) as RFC 3339 text.
fn time_to_json(
    message: &DynamicMessage,
    micro: bool,
    path: &Path<'_>,
) -> Result<Option<Value>, ProtobufError> {
    if !has(message, "seconds") && !has(message, "nanos") {
        return Ok(None); // Go's zero time: `null` in its JSON, absent in ours
    }
    let seconds = number_field(message, "seconds");
    // Time keeps whole seconds; MicroTime truncates to microseconds.
    let nanos = if micro {
        number_field(message, "nanos") / 1_000 * 1_000
    } else {
        0
    };
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(invalid(path, format!("nanoseconds {nanos} out of range")));
    }
    let time = jiff::Timestamp::from_second(seconds)
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_nanos(nanos)))
        .map_err(|e| invalid(path, format!("a time out of range: {e}")))?;
    let civil = jiff::tz::Offset::UTC.to_datetime(time);
    let whole = civil.strftime("%Y-%m-%dT%H:%M:%S");
    Ok(Some(Value::String(if micro {
        format!("{whole}.{:06}Z", civil.subsec_nanosecond() / 1_000)
    } else {
        format!("{whole}Z")
    })))
}

/// A Go `time.Duration` (nanoseconds) as Go prints it: `1h2m3.5s`, `1.5ms`, `0s`.
fn format_duration(nanos: i64) -> String {
    fn fraction(v: u64, digits: u32) -> (u64, String) {
        let scale = 10u64.pow(digits);
        let rest = v % scale;
        if rest == 0 {
            return (v / scale, String::new());
        }
        let text = format!("{rest:0width$}", width = digits as usize);
        (v / scale, format!(".{}", text.trim_end_matches('0')))
    }
    let mut u = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (unit, digits) = match u {
            ..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (whole, fraction) = fraction(u, digits);
        return format!("{sign}{whole}{fraction}{unit}");
    }
    let (seconds, fraction) = fraction(u, 9);
    u = seconds;
    let mut out = format!("{}{fraction}s", u % 60);
    u /= 60;
    if u > 0 {
        out = format!("{}m{out}", u % 60);
        u /= 60;
        if u > 0 {
            out = format!("{u}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// A Go duration string (`time.ParseDuration`) as nanoseconds.
fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let n = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                after.split_at(n)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            value += u128::from(digit - b'0') * place;
        }
        total = total.checked_add(value)?;
        if total > 1 << 63 {
            return None;
        }
        rest = after;
    }
    let total = i128::try_from(total).ok()?;
    i64::try_from(if negative { -total } else { total }).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protobuf::fixtures::{TEN, round_trip, typed};
    use crate::protobuf::from_json::json_to_message;
    use crate::protobuf::to_json::message_to_json;
    use crate::protobuf::{decode, descriptors::descriptor, encode};

    #[test]
    fn times_keep_seconds_and_micro_times_microseconds() {
        // Time drops what is below a second and any offset, as Go's does.
        let written = typed(
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "t", "creationTimestamp": "2026-11-29T11:00:00.987+01:00"}}),
        );
        let back = decode(&encode(&written).unwrap()).unwrap();
        assert_eq!(back["metadata"]["creationTimestamp"], json!(TEN));
        // The epoch is a time, not "unset".
        round_trip(&typed(
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "t", "creationTimestamp": "1970-01-01T00:00:00Z"}}),
        ));
        // MicroTime truncates nanoseconds and keeps six digits even when zero.
        let lease = typed(
            "coordination.k8s.io/v1",
            "Lease",
            json!({"spec": {"renewTime": "2026-11-29T10:00:00.1234569Z", "acquireTime": TEN}}),
        );
        let back = decode(&encode(&lease).unwrap()).unwrap();
        assert_eq!(
            back["spec"],
            json!({"renewTime": "2026-11-29T10:00:00.123456Z", "acquireTime": "2026-11-29T10:00:00.000000Z"})
        );
        // Before the epoch, the fraction still counts forward.
        round_trip(&typed(
            "coordination.k8s.io/v1",
            "Lease",
            json!({"spec": {"renewTime": "1969-12-31T23:59:59.500000Z"}}),
        ));
        let bad = typed(
            "v1",
            "ConfigMap",
            json!({"metadata": {"creationTimestamp": "yesterday"}}),
        );
        let error = encode(&bad).unwrap_err().to_string();
        assert!(
            error.contains("metadata.creationTimestamp") && error.contains("RFC 3339"),
            "{error}"
        );
    }

    #[test]
    fn durations_print_and_parse_as_go_does() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_500_000_000, "1.5s"),
            (61_000_000_000, "1m1s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(format_duration(nanos), text);
            assert_eq!(parse_duration(text), Some(nanos), "{text}");
        }
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("2us"), Some(2_000));
        assert_eq!(parse_duration("+.5s"), Some(500_000_000));
        for bad in ["", "1", "h", "1x", "-", ".s", "9999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let desc = descriptor(DURATION).unwrap();
        let message = json_to_message(&desc, &json!("1m30s"), &Path::Root, 0).unwrap();
        assert_eq!(
            message_to_json(&message, &Path::Root, 0).unwrap(),
            Some(json!("1m30s"))
        );
    }

    #[test]
    fn int_or_string_is_a_number_or_a_string() {
        let desc = descriptor(INT_OR_STRING).unwrap();
        for value in [
            json!(8080),
            json!(0),
            json!("http"),
            json!(""),
            json!("25%"),
        ] {
            let message = json_to_message(&desc, &value, &Path::Root, 0).unwrap();
            let back = message_to_json(&message, &Path::Root, 0).unwrap();
            assert_eq!(back, Some(value));
        }
        assert!(json_to_message(&desc, &json!(1u64 << 40), &Path::Root, 0).is_err());
        assert!(json_to_message(&desc, &json!(true), &Path::Root, 0).is_err());
    }

    #[test]
    fn quantities_may_be_written_as_numbers() {
        let pvc = typed(
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"resources": {"requests": {"storage": 1, "cpu": 0.5}}}}),
        );
        let back = decode(&encode(&pvc).unwrap()).unwrap();
        assert_eq!(
            back["spec"]["resources"]["requests"],
            json!({"storage": "1", "cpu": "0.5"})
        );
    }
}
