//! The envelope of a body: the magic `k8s\0`, then a `runtime.Unknown` holding the object's
//! apiVersion and kind (`typeMeta`) and its own message (`raw`).

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value as Field};
use serde_json::{Map, Value};

use super::descriptors::{bytes_field, descriptor, set, string_field};
use super::from_json::json_to_message;
use super::kinds::message_for;
use super::locate::locate;
use super::path::Path;
use super::to_json::message_to_json;
use super::{MAGIC, MAX_DEPTH, MEDIA_TYPE, ProtobufError};

pub(super) const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
pub(super) const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

/// Reads a protobuf body (magic, envelope, object) as the JSON object it stands for, with
/// `apiVersion` and `kind` set from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_at(body, 0)
}

/// Writes a JSON object (with `apiVersion` and `kind`) as a protobuf body: magic and envelope.
/// JSON fields the kind's message does not have are ignored.
pub fn encode(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let (api_version, kind) = type_meta(object)?;
    let name = message_for(api_version, kind).ok_or_else(|| ProtobufError::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    let message = json_to_message(&descriptor(name)?, object, &Path::Root, 0)?;
    envelope(api_version, kind, message.encode_to_vec())
}

/// [`decode`] of a body embedded `depth` levels deep (in a watch event or a `RawExtension`).
pub(super) fn decode_at(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep {
            path: "an embedded object".into(),
        });
    }
    let data = match body.strip_prefix(MAGIC.as_slice()) {
        Some([]) => return Err(ProtobufError::Truncated("nothing follows the magic")),
        Some(data) => data,
        None if body.is_empty() => return Err(ProtobufError::Truncated("empty body")),
        None if MAGIC.starts_with(body) => {
            return Err(ProtobufError::Truncated("the body ends inside the magic"));
        }
        None => return Err(ProtobufError::NotProtobuf),
    };
    let envelope =
        DynamicMessage::decode(descriptor(UNKNOWN)?, data).map_err(ProtobufError::Envelope)?;
    let (api_version, kind) = match envelope.get_field_by_name("typeMeta") {
        Some(type_meta) => match type_meta.as_message() {
            Some(m) => (string_field(m, "apiVersion"), string_field(m, "kind")),
            None => Default::default(),
        },
        None => Default::default(),
    };
    if kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta("kind"));
    }
    if api_version.is_empty() {
        return Err(ProtobufError::MissingTypeMeta("apiVersion"));
    }
    let content_encoding = string_field(&envelope, "contentEncoding");
    if !content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(content_encoding));
    }
    let content_type = string_field(&envelope, "contentType");
    if !content_type.is_empty() && content_type != MEDIA_TYPE {
        return Err(ProtobufError::ContentType(content_type));
    }
    let Some(name) = message_for(&api_version, &kind) else {
        return Err(ProtobufError::UnknownKind { api_version, kind });
    };
    let raw = bytes_field(&envelope, "raw");
    let desc = descriptor(name)?;
    let message = match DynamicMessage::decode(desc.clone(), raw.as_slice()) {
        Ok(message) => message,
        Err(source) => {
            let field = locate(&desc, &raw, String::new(), 0);
            return Err(ProtobufError::InvalidBytes {
                api_version,
                kind,
                field: if field.is_empty() {
                    "the object".into()
                } else {
                    field
                },
                source,
            });
        }
    };
    let mut object = match message_to_json(&message, &Path::Root, depth)? {
        Some(Value::Object(object)) => object,
        _ => Map::new(),
    };
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

/// The apiVersion and kind of a JSON object to encode.
fn type_meta(object: &Value) -> Result<(&str, &str), ProtobufError> {
    let Value::Object(object) = object else {
        return Err(ProtobufError::NotAnObject("not a JSON object"));
    };
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(ProtobufError::NotAnObject("no apiVersion"))?;
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(ProtobufError::NotAnObject("no kind"))?;
    Ok((api_version, kind))
}

/// A body: the magic, then the envelope around `raw`.
pub(super) fn envelope(
    api_version: &str,
    kind: &str,
    raw: Vec<u8>,
) -> Result<Vec<u8>, ProtobufError> {
    let mut type_meta = DynamicMessage::new(descriptor(TYPE_META)?);
    set(
        &mut type_meta,
        "apiVersion",
        Field::String(api_version.to_owned()),
    )?;
    set(&mut type_meta, "kind", Field::String(kind.to_owned()))?;
    let mut unknown = DynamicMessage::new(descriptor(UNKNOWN)?);
    set(&mut unknown, "typeMeta", Field::Message(type_meta))?;
    set(&mut unknown, "raw", Field::Bytes(raw.into()))?;
    let mut body = Vec::with_capacity(MAGIC.len() + unknown.encoded_len());
    body.extend_from_slice(&MAGIC);
    body.extend_from_slice(&unknown.encode_to_vec());
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protobuf::fixtures::every_kind;

    /// A body as a client may send it: `raw` in the envelope of this apiVersion and kind, then
    /// (a later record of a field overriding an earlier one) this `contentEncoding`.
    fn body(api_version: &str, kind: &str, raw: &[u8], encoding: &str) -> Vec<u8> {
        let mut unknown = DynamicMessage::new(descriptor(UNKNOWN).unwrap());
        set(
            &mut unknown,
            "contentEncoding",
            Field::String(encoding.into()),
        )
        .unwrap();
        [
            envelope(api_version, kind, raw.to_vec()).unwrap(),
            unknown.encode_to_vec(),
        ]
        .concat()
    }

    #[test]
    fn encoding_needs_a_kubernetes_object_of_a_known_kind() {
        let error = |v: Value| encode(&v).unwrap_err().to_string();
        assert!(error(json!([1])).contains("not a JSON object"));
        assert!(error(json!({"kind": "ConfigMap"})).contains("no apiVersion"));
        assert!(error(json!({"apiVersion": "v1"})).contains("no kind"));
        assert_eq!(
            error(json!({"apiVersion": "v1", "kind": "Pod"})),
            "no protobuf form for Pod in v1"
        );
    }

    #[test]
    fn decoding_refuses_what_is_not_a_known_object() {
        let error = |b: &[u8]| decode(b).unwrap_err().to_string();
        assert!(error(b"{\"kind\":\"ConfigMap\"}").contains("does not start with the magic"));
        assert!(error(b"k8s\x01\x0a\x00").contains("does not start with the magic"));
        assert!(error(b"").contains("empty body"));
        assert!(error(b"k8").contains("ends inside the magic"));
        assert!(error(b"k8s\0").contains("nothing follows the magic"));
        assert_eq!(
            error(&body("v1", "Pod", b"", "")),
            "no protobuf form for Pod in v1"
        );
        assert!(error(&body("v1", "ConfigMap", b"", "gzip")).contains("content encoding \"gzip\""));
        assert!(error(&body("", "ConfigMap", b"", "")).contains("names no apiVersion"));
        assert!(error(&body("v1", "", b"", "")).contains("names no kind"));
        // A string that is not UTF-8 (field 1 of ObjectMeta, inside field 1 of ConfigMap).
        let error = error(&body("v1", "ConfigMap", b"\x0a\x03\x0a\x01\xff", ""));
        assert!(
            error.contains("invalid protobuf bytes at metadata.name of ConfigMap in v1"),
            "{error}"
        );
        let error = decode(&body(
            "v1",
            "ConfigMap",
            b"\x12\x07\x0a\x01k\x12\x02\xc3\x28",
            "",
        ))
        .unwrap_err();
        assert!(
            error.to_string().contains("at data of ConfigMap"),
            "{error}"
        );
        // The second item's metadata.name: an item with a name, then one whose name is cut.
        let list = b"\x12\x05\x0a\x03\x0a\x01a\x12\x05\x0a\x03\x0a\x05a";
        let error = decode(&body("v1", "ConfigMapList", list, "")).unwrap_err();
        assert!(
            error.to_string().contains("at items[1].metadata.name of"),
            "{error}"
        );
        // An empty object is still an object.
        assert_eq!(
            decode(&body("v1", "ConfigMap", b"", "")).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap"})
        );
    }

    #[test]
    fn truncated_and_damaged_bodies_never_panic() {
        for object in every_kind() {
            let body = encode(&object).unwrap();
            for end in 0..body.len() {
                let result = decode(&body[..end]);
                if end <= MAGIC.len() {
                    assert!(result.is_err());
                }
            }
            // Flip each byte in turn (a cheap deterministic fuzz).
            let mut damaged = body.clone();
            for i in MAGIC.len()..damaged.len() {
                damaged[i] ^= 0xa5;
                let _ = decode(&damaged);
                damaged[i] ^= 0xa5;
            }
            assert_eq!(decode(&body).unwrap(), object);
        }
    }
}
