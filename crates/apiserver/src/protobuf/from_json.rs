//! JSON to protobuf: a JSON object walked field by field into the message of its kind, each
//! value checked against its field's type.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value as Field,
};
use serde_json::Value;

use super::path::{Path, invalid, too_deep, wrong};
use super::special::{self, is_inline};
use super::{MAX_DEPTH, ProtobufError};

/// A JSON value as the message `desc`: JSON fields the message does not have, and `null`s, are
/// left out.
pub(super) fn json_to_message(
    desc: &MessageDescriptor,
    json: &Value,
    path: &Path<'_>,
    depth: usize,
) -> Result<DynamicMessage, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    if let Some(message) = special::from_json(desc, json, path)? {
        return Ok(message);
    }
    let mut message = DynamicMessage::new(desc.clone());
    let Value::Object(object) = json else {
        return Err(wrong(path, "an object"));
    };
    for field in desc.fields() {
        let value = if is_inline(desc, &field) {
            let Kind::Message(inner) = field.kind() else {
                continue;
            };
            let inner = json_to_message(&inner, json, path, depth + 1)?;
            if inner.fields().next().is_none() {
                continue;
            }
            Field::Message(inner)
        } else {
            let name = field.json_name();
            let Some(value) = object.get(name).filter(|v| !v.is_null()) else {
                continue;
            };
            field_from_json(&field, value, &Path::Field(path, name), depth)?
        };
        message
            .try_set_field(&field, value)
            .map_err(|e| invalid(path, e.to_string()))?;
    }
    Ok(message)
}

fn field_from_json(
    field: &FieldDescriptor,
    json: &Value,
    path: &Path<'_>,
    depth: usize,
) -> Result<Field, ProtobufError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(ProtobufError::Schema(format!(
                "map {} without entry",
                field.name()
            )));
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let Value::Object(object) = json else {
            return Err(wrong(path, "an object"));
        };
        let mut map = HashMap::with_capacity(object.len());
        for (key, item) in object {
            let here = Path::Key(path, key);
            let key =
                map_key(&key_kind, key).ok_or_else(|| invalid(&here, "a key of the wrong type"))?;
            let value = if item.is_null() {
                Field::default_value(&value_kind)
            } else {
                single_from_json(&value_kind, item, &here, depth)?
            };
            map.insert(key, value);
        }
        return Ok(Field::Map(map));
    }
    if field.is_list() {
        let Value::Array(items) = json else {
            return Err(wrong(path, "an array"));
        };
        let kind = field.kind();
        let items = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                if item.is_null() {
                    Ok(Field::default_value(&kind))
                } else {
                    single_from_json(&kind, item, &Path::Index(path, i), depth)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Field::List(items));
    }
    single_from_json(&field.kind(), json, path, depth)
}

fn single_from_json(
    kind: &Kind,
    json: &Value,
    path: &Path<'_>,
    depth: usize,
) -> Result<Field, ProtobufError> {
    fn ranged<T: TryFrom<i128>>(
        json: &Value,
        path: &Path<'_>,
        what: &'static str,
    ) -> Result<T, ProtobufError> {
        integer(json)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| wrong(path, what))
    }
    Ok(match kind {
        Kind::Bool => Field::Bool(json.as_bool().ok_or_else(|| wrong(path, "a boolean"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Field::I32(ranged(json, path, "a 32-bit integer")?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Field::I64(ranged(json, path, "a 64-bit integer")?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Field::U32(ranged(json, path, "an unsigned 32-bit integer")?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Field::U64(ranged(json, path, "an unsigned 64-bit integer")?)
        }
        Kind::Float => Field::F32(json.as_f64().ok_or_else(|| wrong(path, "a number"))? as f32),
        Kind::Double => Field::F64(json.as_f64().ok_or_else(|| wrong(path, "a number"))?),
        Kind::String => Field::String(
            json.as_str()
                .ok_or_else(|| wrong(path, "a string"))?
                .to_owned(),
        ),
        Kind::Bytes => {
            let text = json
                .as_str()
                .ok_or_else(|| wrong(path, "a base64 string"))?;
            let bytes = BASE64
                .decode(text)
                .map_err(|e| invalid(path, format!("not base64: {e}")))?;
            Field::Bytes(bytes.into())
        }
        Kind::Enum(_) => Field::EnumNumber(ranged(json, path, "an enum number")?),
        Kind::Message(desc) => Field::Message(json_to_message(desc, json, path, depth + 1)?),
    })
}

/// A JSON number as an integer: integral floats (`3.0`) too, as JavaScript writes them.
pub(super) fn integer(json: &Value) -> Option<i128> {
    let Value::Number(n) = json else {
        return None;
    };
    if let Some(n) = n.as_i64() {
        return Some(i128::from(n));
    }
    if let Some(n) = n.as_u64() {
        return Some(i128::from(n));
    }
    let f = n.as_f64()?;
    // Beyond 2^64 nothing fits any integer field; the bound keeps the cast exact.
    (f.fract() == 0.0 && f.abs() < 1.8e19).then_some(f as i128)
}

fn map_key(kind: &Kind, key: &str) -> Option<MapKey> {
    Some(match kind {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => MapKey::Bool(key.parse().ok()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::protobuf::decode;
    use crate::protobuf::encode;
    use crate::protobuf::fixtures::typed;

    #[test]
    fn integral_floats_are_integers() {
        let scale = typed(
            "autoscaling/v1",
            "Scale",
            json!({"spec": {"replicas": 3.0}}),
        );
        let back = decode(&encode(&scale).unwrap()).unwrap();
        assert_eq!(back["spec"]["replicas"], json!(3));
    }

    #[test]
    fn unknown_and_null_json_fields_are_ignored() {
        let object = typed(
            "v1",
            "ConfigMap",
            json!({
                "metadata": {"name": "cm", "bogus": {"deep": [1, 2]}, "labels": null},
                "spec": {"replicas": 3},
                "data": {"k": "v"},
                "immutable": null,
            }),
        );
        let back = decode(&encode(&object).unwrap()).unwrap();
        assert_eq!(
            back,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn wrong_json_types_name_the_field() {
        let cases = [
            (
                typed("v1", "ConfigMap", json!({"data": {"a": 1}})),
                "data[a]: expected a string",
            ),
            (
                typed("v1", "ConfigMap", json!({"metadata": {"labels": ["a"]}})),
                "metadata.labels: expected an object",
            ),
            (
                typed(
                    "v1",
                    "ConfigMapList",
                    json!({"items": [{}, {"metadata": {"name": 5}}]}),
                ),
                "items[1].metadata.name: expected a string",
            ),
            (
                typed("v1", "ConfigMap", json!({"immutable": "yes"})),
                "immutable: expected a boolean",
            ),
            (
                typed(
                    "autoscaling/v1",
                    "Scale",
                    json!({"spec": {"replicas": 1u64 << 40}}),
                ),
                "spec.replicas: expected a 32-bit integer",
            ),
            (
                typed("v1", "ConfigMap", json!({"metadata": "cm"})),
                "metadata: expected an object",
            ),
            (
                typed("v1", "Secret", json!({"data": {"k": "not base64!"}})),
                "invalid value at data[k]: not base64",
            ),
        ];
        for (object, expected) in cases {
            let error = encode(&object).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
    }
}
