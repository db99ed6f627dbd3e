//! Protobuf to JSON: a decoded message walked field by field into the JSON object the server
//! works with, leaving out what Go's JSON leaves out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{DynamicMessage, FieldDescriptor, MapKey, ReflectMessage as _, Value as Field};
use serde_json::{Map, Number, Value};

use super::path::{Path, invalid, too_deep};
use super::special::{self, is_inline};
use super::{MAX_DEPTH, ProtobufError};

/// A message as JSON, or `None` where the message stands for "unset" (Go's zero time, no
/// embedded JSON).
pub(super) fn message_to_json(
    message: &DynamicMessage,
    path: &Path<'_>,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    if let Some(json) = special::to_json(message, path, depth) {
        return json;
    }
    let desc = message.descriptor();
    let mut object = Map::new();
    for field in desc.fields() {
        if !message.has_field(&field) {
            continue;
        }
        let value = message.get_field(&field);
        let here = Path::Field(path, field.json_name());
        let Some(json) = field_to_json(&field, &value, &here, depth)? else {
            continue;
        };
        if is_inline(&desc, &field) {
            if let Value::Object(inner) = json {
                object.extend(inner);
            }
        } else {
            object.insert(field.json_name().to_owned(), json);
        }
    }
    Ok(Some(Value::Object(object)))
}

fn field_to_json(
    field: &FieldDescriptor,
    value: &Field,
    path: &Path<'_>,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if let Some(map) = value.as_map() {
        if map.is_empty() {
            return Ok(None);
        }
        let mut object = Map::new();
        for (key, item) in map {
            let key = match key {
                MapKey::String(s) => s.clone(),
                MapKey::Bool(b) => b.to_string(),
                MapKey::I32(n) => n.to_string(),
                MapKey::I64(n) => n.to_string(),
                MapKey::U32(n) => n.to_string(),
                MapKey::U64(n) => n.to_string(),
            };
            let json = single_to_json(item, &Path::Key(path, &key), depth)?;
            object.insert(key, json.unwrap_or(Value::Null));
        }
        return Ok(Some(Value::Object(object)));
    }
    if let Some(items) = value.as_list() {
        if items.is_empty() {
            return Ok(None);
        }
        let items = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                single_to_json(item, &Path::Index(path, i), depth).map(|j| j.unwrap_or(Value::Null))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(Value::Array(items)));
    }
    debug_assert!(!field.is_list() && !field.is_map());
    single_to_json(value, path, depth)
}

fn single_to_json(
    value: &Field,
    path: &Path<'_>,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    Ok(Some(match value {
        Field::Bool(b) => Value::Bool(*b),
        Field::I32(n) => Value::from(*n),
        Field::I64(n) => Value::from(*n),
        Field::U32(n) => Value::from(*n),
        Field::U64(n) => Value::from(*n),
        Field::F32(n) => float(f64::from(*n), path)?,
        Field::F64(n) => float(*n, path)?,
        Field::String(s) => Value::String(s.clone()),
        Field::Bytes(b) => Value::String(BASE64.encode(b)),
        Field::EnumNumber(n) => Value::from(*n),
        Field::Message(m) => return message_to_json(m, path, depth + 1),
        Field::List(_) | Field::Map(_) => return Err(invalid(path, "a list or map inside a list")),
    }))
}

fn float(n: f64, path: &Path<'_>) -> Result<Value, ProtobufError> {
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| invalid(path, "a number JSON cannot hold (NaN or infinite)"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::protobuf::descriptors::{descriptor, set};
    use crate::protobuf::fixtures::typed;
    use crate::protobuf::special::{FIELDS_V1, TIME};
    use crate::protobuf::{decode, encode};

    #[test]
    fn zero_values_of_non_pointer_fields_are_left_out() {
        let object = typed(
            "v1",
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "", "generation": 0}, "type": ""}),
        );
        let back = decode(&encode(&object).unwrap()).unwrap();
        assert_eq!(
            back,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
        );
    }

    #[test]
    fn deeply_nested_embedded_json_is_refused_not_overflowed() {
        let mut entry = DynamicMessage::new(descriptor(FIELDS_V1).unwrap());
        let deep = "[".repeat(100_000);
        set(&mut entry, "Raw", Field::Bytes(deep.into_bytes().into())).unwrap();
        let path = Path::Root;
        let error = message_to_json(&entry, &Path::Field(&path, "fieldsV1"), 0).unwrap_err();
        assert!(error.to_string().contains("not JSON"), "{error}");
        let deep_value = (0..10_000).fold(json!(1), |v, _| {
            Value::Object(Map::from_iter([("a".to_owned(), v)]))
        });
        let object = Value::Object(Map::from_iter([
            ("apiVersion".to_owned(), json!("v1")),
            ("kind".to_owned(), json!("ConfigMap")),
            ("metadata".to_owned(), deep_value),
        ]));
        // Deep JSON in ignored fields is never walked; deep JSON in known ones is bounded.
        assert!(encode(&object).is_ok());
        let error = message_to_json(
            &DynamicMessage::new(descriptor(TIME).unwrap()),
            &path,
            MAX_DEPTH + 1,
        );
        assert!(matches!(error, Err(ProtobufError::TooDeep { .. })));
        std::mem::forget(object); // dropping a 10,000-deep Value recursively could itself overflow
    }
}
