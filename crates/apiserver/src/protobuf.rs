//! The Kubernetes protobuf wire form of the native kinds (`application/vnd.kubernetes.protobuf`,
//! what kubectl and client-go send for built-in kinds), converted to and from the JSON objects
//! the server works with.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope: `typeMeta` (apiVersion
//! and kind), `raw` (the object's own message), `contentEncoding` (which must be empty) and
//! `contentType`. A watch stream (`;stream=watch`) is a run of `meta.v1.WatchEvent` messages,
//! each after its length as 4 big-endian bytes, whose `object.raw` holds a whole envelope.
//!
//! The messages are described by our own `proto/k8s/*.proto`, compiled by the build script (with
//! protox: no `protoc`) into a descriptor set that is walked generically here with
//! [`prost_reflect`]. JSON names are the field names; a few messages have a JSON form of their
//! own: `meta.v1.Time` (RFC 3339, seconds), `MicroTime` (RFC 3339, 6 fractional digits),
//! `Duration` (a Go duration string), `resource.Quantity` (a string), `intstr.IntOrString` (a
//! number or a string), `FieldsV1` and `runtime.RawExtension` (the JSON they embed) and
//! `authentication.v1.AttestationValue` (an array of strings). `bytes` are base64, and
//! `admissionregistration.v1.RuleWithOperations.rule` is inlined into its parent, as Go's
//! embedded struct is.
//!
//! Presence follows Go: Go writes every non-pointer field even when it is zero, and its JSON
//! omits those zeros (`omitempty`), so such fields (plain proto3 scalars in our files) are left
//! out of the JSON when zero; fields that are pointers in Go (`optional` in our files) are kept
//! whenever present, zero or not. Empty lists and maps are left out; an empty `Time` (Go's zero
//! time) too. List items carry no apiVersion or kind, as in Go.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage as _, Value as Field,
};
use serde_json::{Map, Number, Value};

/// The media type of a Kubernetes protobuf body.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream: length-framed `WatchEvent`s.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// How deep messages (and envelopes embedded in them) may nest before conversion gives up: far
/// beyond any Kubernetes kind, and far below what would threaten the stack.
const MAX_DEPTH: usize = 64;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s_descriptors.bin"));

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()));

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";
const STATUS: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const ATTESTATION_VALUE: &str = "k8s.io.api.authentication.v1.AttestationValue";

/// Message fields whose JSON is inlined into their parent's object (Go's embedded structs).
const INLINE: &[(&str, &str)] = &[(
    "k8s.io.api.admissionregistration.v1.RuleWithOperations",
    "rule",
)];

/// Every kind with a protobuf form: apiVersion, kind, and the full name of its message.
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "k8s.io.api.core.v1.Namespace"),
    ("v1", "NamespaceList", "k8s.io.api.core.v1.NamespaceList"),
    ("v1", "ConfigMap", "k8s.io.api.core.v1.ConfigMap"),
    ("v1", "ConfigMapList", "k8s.io.api.core.v1.ConfigMapList"),
    ("v1", "Secret", "k8s.io.api.core.v1.Secret"),
    ("v1", "SecretList", "k8s.io.api.core.v1.SecretList"),
    ("v1", "ServiceAccount", "k8s.io.api.core.v1.ServiceAccount"),
    (
        "v1",
        "ServiceAccountList",
        "k8s.io.api.core.v1.ServiceAccountList",
    ),
    (
        "v1",
        "PersistentVolumeClaim",
        "k8s.io.api.core.v1.PersistentVolumeClaim",
    ),
    (
        "v1",
        "PersistentVolumeClaimList",
        "k8s.io.api.core.v1.PersistentVolumeClaimList",
    ),
    ("v1", "Event", "k8s.io.api.core.v1.Event"),
    ("v1", "EventList", "k8s.io.api.core.v1.EventList"),
    ("v1", "Status", STATUS),
    ("v1", "DeleteOptions", DELETE_OPTIONS),
    ("meta.k8s.io/v1", "Status", STATUS),
    ("meta.k8s.io/v1", "DeleteOptions", DELETE_OPTIONS),
    ("events.k8s.io/v1", "Event", "k8s.io.api.events.v1.Event"),
    (
        "events.k8s.io/v1",
        "EventList",
        "k8s.io.api.events.v1.EventList",
    ),
    (
        "coordination.k8s.io/v1",
        "Lease",
        "k8s.io.api.coordination.v1.Lease",
    ),
    (
        "coordination.k8s.io/v1",
        "LeaseList",
        "k8s.io.api.coordination.v1.LeaseList",
    ),
    (
        "storage.k8s.io/v1",
        "StorageClass",
        "k8s.io.api.storage.v1.StorageClass",
    ),
    (
        "storage.k8s.io/v1",
        "StorageClassList",
        "k8s.io.api.storage.v1.StorageClassList",
    ),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    (
        "rbac.authorization.k8s.io/v1",
        "Role",
        "k8s.io.api.rbac.v1.Role",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleList",
        "k8s.io.api.rbac.v1.RoleList",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "k8s.io.api.rbac.v1.ClusterRole",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleList",
        "k8s.io.api.rbac.v1.ClusterRoleList",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "k8s.io.api.rbac.v1.RoleBinding",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBindingList",
        "k8s.io.api.rbac.v1.RoleBindingList",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "k8s.io.api.rbac.v1.ClusterRoleBinding",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBindingList",
        "k8s.io.api.rbac.v1.ClusterRoleBindingList",
    ),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        "k8s.io.api.authentication.v1.TokenRequest",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfigurationList",
        "k8s.io.api.admissionregistration.v1.ValidatingWebhookConfigurationList",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "k8s.io.api.admissionregistration.v1.MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfigurationList",
        "k8s.io.api.admissionregistration.v1.MutatingWebhookConfigurationList",
    ),
];

/// Why a body could not be read as, or an object could not be written as, Kubernetes protobuf.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with the magic `k8s\0`.
    #[error("not a Kubernetes protobuf body: it does not start with the magic k8s\\0")]
    NotProtobuf,
    /// The body ends before the envelope starts.
    #[error("truncated protobuf body: {0}")]
    Truncated(&'static str),
    /// The `runtime.Unknown` envelope (or a watch event) is cut short or malformed.
    #[error("truncated or malformed protobuf envelope: {0}")]
    Envelope(#[source] prost::DecodeError),
    /// The envelope's TypeMeta lacks the apiVersion or the kind.
    #[error("the protobuf envelope names no {0}")]
    MissingTypeMeta(&'static str),
    /// No message is known for this kind.
    #[error("no protobuf form for {kind} in {api_version}")]
    UnknownKind {
        /// The apiVersion asked for.
        api_version: String,
        /// The kind asked for.
        kind: String,
    },
    /// The envelope's content is encoded (compressed) in a way this codec does not read.
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    /// The envelope says its content is something other than protobuf.
    #[error("unsupported content type {0:?} inside the protobuf envelope")]
    ContentType(String),
    /// The object's own message is malformed.
    #[error("invalid protobuf bytes at {field} of {kind} in {api_version}: {source}")]
    InvalidBytes {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
        /// The field at fault, as a JSON path (`metadata.name`).
        field: String,
        /// What was wrong with the bytes.
        #[source]
        source: prost::DecodeError,
    },
    /// A value is well-formed on the wire or in JSON but means nothing valid.
    #[error("invalid value at {path}: {reason}")]
    InvalidValue {
        /// Where, as a JSON path (`metadata.creationTimestamp`).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON value has the wrong type for its field.
    #[error("{path}: expected {expected}")]
    WrongType {
        /// Where, as a JSON path (`data[key]`, `items[0].metadata`).
        path: String,
        /// What the field takes.
        expected: &'static str,
    },
    /// Messages nest deeper than any Kubernetes kind does.
    #[error("nesting deeper than {MAX_DEPTH} levels at {path}")]
    TooDeep {
        /// Where the limit was reached.
        path: String,
    },
    /// The JSON to encode is not an object with string `apiVersion` and `kind`.
    #[error("not a Kubernetes object: {0}")]
    NotAnObject(&'static str),
    /// A watch frame's length prefix does not match its contents.
    #[error("malformed watch frame: {0}")]
    Frame(String),
    /// A watch event is larger than its 4-byte length prefix can say.
    #[error("a watch event of {0} bytes is too large for its frame")]
    TooLarge(usize),
    /// Our own descriptors are broken (a bug, never the input's fault).
    #[error("internal protobuf schema error: {0}")]
    Schema(String),
}

/// The message full name of a kind, if it has a protobuf form. `Status` and `DeleteOptions`
/// (meta.k8s.io/v1 messages registered in every group version) resolve for `meta.k8s.io/v1`
/// and every group version listed here.
pub fn message_for(api_version: &str, kind: &str) -> Option<&'static str> {
    if let Some(&(_, _, message)) = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    {
        return Some(message);
    }
    let message = match kind {
        "Status" => STATUS,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    };
    KINDS
        .iter()
        .any(|(v, _, _)| *v == api_version)
        .then_some(message)
}

/// Whether objects of this apiVersion and kind have a protobuf form here.
pub fn supports(api_version: &str, kind: &str) -> bool {
    message_for(api_version, kind).is_some()
}

/// Every (apiVersion, kind) with a protobuf form (besides `Status` and `DeleteOptions` in the
/// other group versions, see [`message_for`]).
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|&(v, k, _)| (v, k))
}

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

/// Writes one watch event as a frame of a protobuf watch stream: the length (4 bytes, big
/// endian), then a `WatchEvent` whose object is the object's whole envelope.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let mut raw = DynamicMessage::new(descriptor(RAW_EXTENSION)?);
    set(&mut raw, "raw", Field::Bytes(encode(object)?.into()))?;
    let mut event = DynamicMessage::new(descriptor(WATCH_EVENT)?);
    set(&mut event, "type", Field::String(event_type.to_owned()))?;
    set(&mut event, "object", Field::Message(raw))?;
    let body = event.encode_to_vec();
    let length = u32::try_from(body.len()).map_err(|_| ProtobufError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads one frame of a protobuf watch stream (length prefix included): the event's type and
/// its object as JSON.
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), ProtobufError> {
    let Some((length, body)) = frame.split_first_chunk::<4>() else {
        return Err(ProtobufError::Frame(format!(
            "{} bytes, fewer than the 4 of the length prefix",
            frame.len()
        )));
    };
    let length = u32::from_be_bytes(*length);
    if usize::try_from(length).ok() != Some(body.len()) {
        return Err(ProtobufError::Frame(format!(
            "the prefix says {length} bytes, {} follow",
            body.len()
        )));
    }
    let event =
        DynamicMessage::decode(descriptor(WATCH_EVENT)?, body).map_err(ProtobufError::Envelope)?;
    let event_type = string_field(&event, "type");
    let raw = match event.get_field_by_name("object") {
        Some(object) => object
            .as_message()
            .map(|m| bytes_field(m, "raw"))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok((event_type, decode_at(&raw, 1)?))
}

fn decode_at(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
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

/// Which field of a message that failed to decode is at fault, as a JSON path: the first field
/// record that fails alone, followed down into messages.
fn locate(desc: &MessageDescriptor, mut bytes: &[u8], path: String, depth: usize) -> String {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    fn advance<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(taken)
    }
    let mut seen: HashMap<u32, usize> = HashMap::new();
    while depth <= MAX_DEPTH && !bytes.is_empty() {
        let start = bytes;
        let Some(key) = varint(&mut bytes) else {
            return path;
        };
        let number = u32::try_from(key >> 3).unwrap_or(0);
        let field = desc.get_field(number);
        let index = seen.entry(number).or_default();
        let here = match &field {
            Some(f) if desc.is_map_entry() && f.name() == "value" => path.clone(),
            Some(_) if desc.is_map_entry() => format!("a key of {path}"),
            Some(f) => {
                let name = f.json_name();
                let mut here = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                if f.is_list() {
                    here = format!("{here}[{index}]");
                }
                here
            }
            None => format!(
                "field {number} of {}",
                if path.is_empty() { "the object" } else { &path }
            ),
        };
        *index += 1;
        let payload = match key & 7 {
            0 => varint(&mut bytes).map(|_| &[][..]),
            1 => advance(&mut bytes, 8),
            2 => varint(&mut bytes)
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| advance(&mut bytes, n)),
            5 => advance(&mut bytes, 4),
            _ => None,
        };
        let Some(payload) = payload else {
            return here;
        };
        let record = &start[..start.len() - bytes.len()];
        if DynamicMessage::decode(desc.clone(), record).is_err() {
            return match field.map(|f| f.kind()) {
                Some(Kind::Message(inner)) if key & 7 == 2 => {
                    locate(&inner, payload, here, depth + 1)
                }
                _ => here,
            };
        }
    }
    path
}

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

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Result<Vec<u8>, ProtobufError> {
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

fn descriptor(name: &str) -> Result<MessageDescriptor, ProtobufError> {
    let pool = POOL
        .as_ref()
        .map_err(|e| ProtobufError::Schema(e.clone()))?;
    pool.get_message_by_name(name)
        .ok_or_else(|| ProtobufError::Schema(format!("no message {name}")))
}

/// Sets a field of one of our own messages by name.
fn set(message: &mut DynamicMessage, name: &str, value: Field) -> Result<(), ProtobufError> {
    let field = message
        .descriptor()
        .get_field_by_name(name)
        .ok_or_else(|| ProtobufError::Schema(format!("no field {name}")))?;
    message
        .try_set_field(&field, value)
        .map_err(|e| ProtobufError::Schema(e.to_string()))
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn bytes_field(message: &DynamicMessage, name: &str) -> Vec<u8> {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default()
}

fn has(message: &DynamicMessage, name: &str) -> bool {
    message
        .descriptor()
        .get_field_by_name(name)
        .is_some_and(|f| message.has_field(&f))
}

fn number_field(message: &DynamicMessage, name: &str) -> i64 {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_i32().map(i64::from)))
        .unwrap_or_default()
}

fn is_inline(message: &MessageDescriptor, field: &FieldDescriptor) -> bool {
    INLINE
        .iter()
        .any(|(m, f)| *m == message.full_name() && *f == field.name())
}

/// Where a value sits in the JSON object, rendered only for errors.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Field(parent, _) | Path::Index(parent, _) | Path::Key(parent, _) => {
                    steps.push(at);
                    at = parent;
                }
            }
        }
        if steps.is_empty() {
            return f.write_str("the object");
        }
        for (i, step) in steps.iter().rev().enumerate() {
            match step {
                Path::Field(_, name) if i == 0 => f.write_str(name)?,
                Path::Field(_, name) => write!(f, ".{name}")?,
                Path::Index(_, index) => write!(f, "[{index}]")?,
                Path::Key(_, key) => write!(f, "[{key}]")?,
                Path::Root => {}
            }
        }
        Ok(())
    }
}

fn too_deep(path: &Path<'_>) -> ProtobufError {
    ProtobufError::TooDeep {
        path: path.to_string(),
    }
}

fn invalid(path: &Path<'_>, reason: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidValue {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn wrong(path: &Path<'_>, expected: &'static str) -> ProtobufError {
    ProtobufError::WrongType {
        path: path.to_string(),
        expected,
    }
}

// ---- protobuf to JSON ----

/// A message as JSON, or `None` where the message stands for "unset" (Go's zero time, no
/// embedded JSON).
fn message_to_json(
    message: &DynamicMessage,
    path: &Path<'_>,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let desc = message.descriptor();
    match desc.full_name() {
        TIME => return time_to_json(message, false, path),
        MICRO_TIME => return time_to_json(message, true, path),
        DURATION => {
            return Ok(Some(Value::String(format_duration(number_field(
                message, "duration",
            )))));
        }
        QUANTITY => {
            let quantity = string_field(message, "string");
            // Go reads an empty quantity as zero.
            return Ok(Some(Value::String(if quantity.is_empty() {
                "0".into()
            } else {
                quantity
            })));
        }
        INT_OR_STRING => {
            return Ok(Some(if number_field(message, "type") == 1 {
                Value::String(string_field(message, "strVal"))
            } else {
                Value::from(number_field(message, "intVal"))
            }));
        }
        FIELDS_V1 => return embedded_json(&bytes_field(message, "Raw"), path, depth),
        RAW_EXTENSION => return embedded_json(&bytes_field(message, "raw"), path, depth),
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
            return Ok(Some(Value::Array(items)));
        }
        _ => {}
    }
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

// ---- JSON to protobuf ----

fn json_to_message(
    desc: &MessageDescriptor,
    json: &Value,
    path: &Path<'_>,
    depth: usize,
) -> Result<DynamicMessage, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
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
            return Ok(message);
        }
        DURATION => {
            let text = json
                .as_str()
                .ok_or_else(|| wrong(path, "a duration string"))?;
            let nanos = parse_duration(text)
                .ok_or_else(|| invalid(path, format!("{text:?} is not a duration")))?;
            set(&mut message, "duration", Field::I64(nanos))?;
            return Ok(message);
        }
        QUANTITY => {
            let text = match json {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(wrong(path, "a quantity (a string or a number)")),
            };
            set(&mut message, "string", Field::String(text))?;
            return Ok(message);
        }
        INT_OR_STRING => {
            match json {
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
            }
            return Ok(message);
        }
        name @ (FIELDS_V1 | RAW_EXTENSION) => {
            let raw = serde_json::to_vec(json).map_err(|e| invalid(path, e.to_string()))?;
            set(
                &mut message,
                if name == FIELDS_V1 { "Raw" } else { "raw" },
                Field::Bytes(raw.into()),
            )?;
            return Ok(message);
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
            return Ok(message);
        }
        _ => {}
    }
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
fn integer(json: &Value) -> Option<i128> {
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
    use super::*;
    use serde_json::json;

    const TEN: &str = "2026-11-29T10:00:00Z";
    const ELEVEN: &str = "2026-11-29T11:00:00Z";

    fn typed(api_version: &str, kind: &str, mut object: Value) -> Value {
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        object
    }

    fn round_trip(object: &Value) {
        let body = encode(object).unwrap_or_else(|e| panic!("encoding {object}: {e}"));
        assert!(body.starts_with(&MAGIC));
        let back = decode(&body).unwrap_or_else(|e| panic!("decoding {object}: {e}"));
        assert_eq!(&back, object);
    }

    /// Object metadata exercising every field, times, maps, owner references, FieldsV1.
    fn meta(name: &str, namespace: Option<&str>) -> Value {
        let mut meta = json!({
            "name": name,
            "generateName": "gen-",
            "uid": "6c1b8e1e-4b1e-4a55-9d5c-0d5a2e1f9c11",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": TEN,
            "deletionTimestamp": ELEVEN,
            "deletionGracePeriodSeconds": 0,
            "labels": {"app": "demo", "empty": ""},
            "annotations": {"example.com/note": "a \"quoted\" note"},
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": "u-1",
                "controller": true,
                "blockOwnerDeletion": false,
            }],
            "finalizers": ["example.com/keep"],
            "managedFields": [{
                "manager": "kubectl",
                "operation": "Apply",
                "apiVersion": "v1",
                "time": TEN,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {".": {}}},
                "subresource": "status",
            }],
        });
        if let Some(namespace) = namespace {
            meta["namespace"] = json!(namespace);
        }
        meta
    }

    fn selector() -> Value {
        json!({
            "matchLabels": {"app": "demo"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
        })
    }

    fn reference() -> Value {
        json!({
            "kind": "Pod",
            "namespace": "default",
            "name": "web-0",
            "uid": "u-2",
            "apiVersion": "v1",
            "resourceVersion": "7",
            "fieldPath": "spec.containers{web}",
        })
    }

    fn webhook(mutating: bool) -> Value {
        let mut webhook = json!({
            "name": "check.example.com",
            "clientConfig": {
                "service": {"namespace": "system", "name": "hook", "path": "/check", "port": 8443},
                "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
            },
            "rules": [{
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "scope": "Namespaced",
            }],
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "namespaceSelector": selector(),
            "objectSelector": {"matchLabels": {"checked": "true"}},
            "sideEffects": "None",
            "timeoutSeconds": 0,
            "admissionReviewVersions": ["v1"],
            "matchConditions": [{"name": "not-system", "expression": "request.userInfo.username != 'system'"}],
        });
        if mutating {
            webhook["reinvocationPolicy"] = json!("IfNeeded");
            webhook["clientConfig"] = json!({"url": "https://hook.example.com/mutate"});
        }
        webhook
    }

    /// An object of each kind (without apiVersion and kind), every field set.
    fn fixture(kind: &str) -> Option<Value> {
        Some(match kind {
            "Namespace" => json!({
                "metadata": meta("team-a", None),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {
                    "phase": "Terminating",
                    "conditions": [{
                        "type": "NamespaceDeletionContentFailure",
                        "status": "True",
                        "lastTransitionTime": TEN,
                        "reason": "ContentDeletionFailed",
                        "message": "failed",
                    }],
                },
            }),
            "ConfigMap" => json!({
                "metadata": meta("settings", Some("default")),
                "data": {"key": "value", "multi": "line\nline"},
                "binaryData": {"blob": "AAEC/w=="},
                "immutable": false,
            }),
            "Secret" => json!({
                "metadata": meta("creds", Some("default")),
                "data": {"password": "czNjcjN0", "empty": ""},
                "stringData": {"user": "admin"},
                "type": "Opaque",
                "immutable": true,
            }),
            "ServiceAccount" => json!({
                "metadata": meta("robot", Some("default")),
                "secrets": [{"name": "robot-token"}],
                "imagePullSecrets": [{"name": "registry"}],
                "automountServiceAccountToken": false,
            }),
            "PersistentVolumeClaim" => json!({
                "metadata": meta("data", Some("default")),
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "selector": selector(),
                    "resources": {"requests": {"storage": "10Gi"}, "limits": {"storage": "20Gi"}},
                    "volumeName": "pv-1",
                    "storageClassName": "",
                    "volumeMode": "Filesystem",
                    "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
                    "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap", "namespace": "other"},
                    "volumeAttributesClassName": "fast",
                },
                "status": {
                    "phase": "Bound",
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": "10Gi"},
                    "conditions": [{
                        "type": "Resizing",
                        "status": "True",
                        "lastProbeTime": TEN,
                        "lastTransitionTime": ELEVEN,
                        "reason": "Expanding",
                        "message": "growing",
                    }],
                    "allocatedResources": {"storage": "12Gi"},
                    "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
                    "currentVolumeAttributesClassName": "slow",
                    "modifyVolumeStatus": {"targetVolumeAttributesClassName": "fast", "status": "InProgress"},
                    "healthStatus": {
                        "healthConditions": [{"status": "Inaccessible", "reason": "Gone", "message": "lost"}],
                        "lastTransitionTime": TEN,
                    },
                },
            }),
            "Event" => json!({
                "metadata": meta("web-0.1", Some("default")),
                "involvedObject": reference(),
                "reason": "BackOff",
                "message": "Back-off restarting",
                "source": {"component": "kubelet", "host": "node-1"},
                "firstTimestamp": TEN,
                "lastTimestamp": ELEVEN,
                "count": 3,
                "type": "Warning",
                "eventTime": "2026-11-29T10:00:00.123456Z",
                "series": {"count": 2, "lastObservedTime": "2026-11-29T10:30:00.000001Z"},
                "action": "Restarting",
                "related": reference(),
                "reportingComponent": "kubelet",
                "reportingInstance": "node-1",
            }),
            "events.k8s.io/Event" => json!({
                "metadata": meta("web-0.2", Some("default")),
                "eventTime": "2026-11-29T10:00:00.000000Z",
                "series": {"count": 5, "lastObservedTime": "2026-11-29T10:30:00.500000Z"},
                "reportingController": "example.com/controller",
                "reportingInstance": "controller-0",
                "action": "Reconcile",
                "reason": "Synced",
                "regarding": reference(),
                "related": reference(),
                "note": "synced",
                "type": "Normal",
                "deprecatedSource": {"component": "c", "host": "h"},
                "deprecatedFirstTimestamp": TEN,
                "deprecatedLastTimestamp": ELEVEN,
                "deprecatedCount": 9,
            }),
            "Lease" => json!({
                "metadata": meta("leader", Some("kube-system")),
                "spec": {
                    "holderIdentity": "node-1",
                    "leaseDurationSeconds": 0,
                    "acquireTime": "2026-11-29T10:00:00.250000Z",
                    "renewTime": "2026-11-29T10:00:15.000007Z",
                    "leaseTransitions": 4,
                    "strategy": "OldestEmulationVersion",
                    "preferredHolder": "node-2",
                },
            }),
            "StorageClass" => json!({
                "metadata": meta("local", None),
                "provisioner": "example.com/local",
                "parameters": {"fsType": "ext4"},
                "reclaimPolicy": "Retain",
                "mountOptions": ["noatime"],
                "allowVolumeExpansion": true,
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowedTopologies": [{
                    "matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}],
                }],
            }),
            "Scale" => json!({
                "metadata": meta("web", Some("default")),
                "spec": {"replicas": 3},
                "status": {"replicas": 2, "selector": "app=web"},
            }),
            "Role" => json!({
                "metadata": meta("reader", Some("default")),
                "rules": [{
                    "verbs": ["get", "list"],
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["settings"],
                }],
            }),
            "ClusterRole" => json!({
                "metadata": meta("aggregate", None),
                "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
                "aggregationRule": {"clusterRoleSelectors": [selector()]},
            }),
            "RoleBinding" | "ClusterRoleBinding" => json!({
                "metadata": meta("bind", (kind == "RoleBinding").then_some("default")),
                "subjects": [
                    {"kind": "ServiceAccount", "name": "robot", "namespace": "default"},
                    {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
                ],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            }),
            "TokenRequest" => json!({
                "metadata": meta("robot", Some("default")),
                "spec": {
                    "audiences": ["https://kubernetes.default.svc"],
                    "expirationSeconds": 3600,
                    "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "u-3"},
                    "attestations": {"example.com/claim": ["a", "b"]},
                },
                "status": {"token": "eyJhbGciOi.x.y", "expirationTimestamp": ELEVEN},
            }),
            "ValidatingWebhookConfiguration" => json!({
                "metadata": meta("checks", None),
                "webhooks": [webhook(false)],
            }),
            "MutatingWebhookConfiguration" => json!({
                "metadata": meta("defaults", None),
                "webhooks": [webhook(true)],
            }),
            "Status" => json!({
                "metadata": {"resourceVersion": "9", "continue": "token", "remainingItemCount": 0},
                "status": "Failure",
                "message": "configmaps \"x\" not found",
                "reason": "NotFound",
                "details": {
                    "name": "x",
                    "group": "apps",
                    "kind": "configmaps",
                    "uid": "u-4",
                    "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "data"}],
                    "retryAfterSeconds": 5,
                },
                "code": 404,
            }),
            "DeleteOptions" => json!({
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "u-5", "resourceVersion": ""},
                "orphanDependents": false,
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
                "ignoreStoreReadErrorWithClusterBreakingPotential": true,
            }),
            _ => return None,
        })
    }

    /// Every supported kind as a full object: lists hold two items of their kind.
    fn every_kind() -> Vec<Value> {
        supported_kinds()
            .map(|(api_version, kind)| {
                let key = |k: &str| {
                    if api_version == "events.k8s.io/v1" {
                        format!("events.k8s.io/{k}")
                    } else {
                        k.to_owned()
                    }
                };
                let object = match kind.strip_suffix("List").and_then(|k| fixture(&key(k))) {
                    Some(item) => json!({
                        "metadata": {"resourceVersion": "7", "continue": "abc", "remainingItemCount": 0},
                        "items": [item.clone(), item],
                    }),
                    None => fixture(&key(kind))
                        .unwrap_or_else(|| panic!("no fixture for {api_version} {kind}")),
                };
                typed(api_version, kind, object)
            })
            .collect()
    }

    #[test]
    fn every_kind_round_trips() {
        let all = every_kind();
        assert_eq!(all.len(), KINDS.len());
        for object in &all {
            round_trip(object);
        }
    }

    #[test]
    fn every_message_in_the_table_is_described() {
        for (_, _, message) in KINDS {
            descriptor(message).unwrap();
        }
        for name in [
            UNKNOWN,
            TYPE_META,
            RAW_EXTENSION,
            TIME,
            MICRO_TIME,
            DURATION,
            FIELDS_V1,
            WATCH_EVENT,
            QUANTITY,
            INT_OR_STRING,
            ATTESTATION_VALUE,
        ] {
            descriptor(name).unwrap();
        }
        for (message, field) in INLINE {
            assert!(
                descriptor(message)
                    .unwrap()
                    .get_field_by_name(field)
                    .is_some()
            );
        }
    }

    #[test]
    fn supports_names_the_table() {
        assert!(supports("v1", "ConfigMap"));
        assert!(supports("v1", "SecretList"));
        assert!(supports(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding"
        ));
        assert!(supports("rbac.authorization.k8s.io/v1", "Status"));
        assert!(supports("coordination.k8s.io/v1", "DeleteOptions"));
        assert!(supports("meta.k8s.io/v1", "Status"));
        assert!(!supports("v1", "Pod"));
        assert!(!supports("v2", "ConfigMap"));
        assert!(!supports("example.com/v1", "Status"));
        assert_eq!(
            message_for("v1", "ConfigMap"),
            Some("k8s.io.api.core.v1.ConfigMap")
        );
        assert_eq!(
            message_for("events.k8s.io/v1", "Event"),
            Some("k8s.io.api.events.v1.Event")
        );
    }

    #[test]
    fn status_decodes_for_any_served_group_version() {
        let status = typed(
            "rbac.authorization.k8s.io/v1",
            "Status",
            json!({"status": "Success", "code": 200}),
        );
        round_trip(&status);
    }

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

    fn body(api_version: &str, kind: &str, raw: &[u8], encoding: &str) -> Vec<u8> {
        let mut type_meta = DynamicMessage::new(descriptor(TYPE_META).unwrap());
        set(
            &mut type_meta,
            "apiVersion",
            Field::String(api_version.into()),
        )
        .unwrap();
        set(&mut type_meta, "kind", Field::String(kind.into())).unwrap();
        let mut unknown = DynamicMessage::new(descriptor(UNKNOWN).unwrap());
        set(&mut unknown, "typeMeta", Field::Message(type_meta)).unwrap();
        set(&mut unknown, "raw", Field::Bytes(raw.to_vec().into())).unwrap();
        set(
            &mut unknown,
            "contentEncoding",
            Field::String(encoding.into()),
        )
        .unwrap();
        [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
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

    #[test]
    fn watch_events_are_length_framed_envelopes() {
        let object = typed("v1", "ConfigMap", fixture("ConfigMap").unwrap());
        let frame = encode_watch_event("MODIFIED", &object).unwrap();
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 4);
        assert_eq!(
            decode_watch_event(&frame).unwrap(),
            ("MODIFIED".to_owned(), object)
        );
        let status = typed(
            "v1",
            "Status",
            json!({"status": "Failure", "code": 410, "reason": "Expired"}),
        );
        let frame = encode_watch_event("ERROR", &status).unwrap();
        assert_eq!(decode_watch_event(&frame).unwrap().1, status);
        assert!(decode_watch_event(&frame[..frame.len() - 1]).is_err());
        assert!(decode_watch_event(&frame[..3]).is_err());
        assert!(encode_watch_event("ADDED", &json!({"apiVersion": "v1", "kind": "Pod"})).is_err());
    }

    /// Cross-checks against k8s-pb: prost structs generated from the upstream `.proto` files by
    /// another project, so that a wrong field number or type in our own files shows.
    mod cross_check {
        use super::*;
        use k8s_pb::api::admissionregistration::v1 as admission;
        use k8s_pb::api::authentication::v1 as authentication;
        use k8s_pb::api::coordination::v1 as coordination;
        use k8s_pb::api::core::v1 as core;
        use k8s_pb::api::events::v1 as events;
        use k8s_pb::api::rbac::v1 as rbac;
        use k8s_pb::api::storage::v1 as storage;
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
        use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
        use prost::Message;
        use std::collections::BTreeMap;
        use std::fmt::Debug;

        const TEN_SECONDS: i64 = 1_795_946_400;
        const ELEVEN_SECONDS: i64 = 1_795_950_000;

        fn s(text: &str) -> Option<String> {
            Some(text.to_owned())
        }

        fn strings(items: &[&str]) -> Vec<String> {
            items.iter().map(|s| s.to_string()).collect()
        }

        fn map<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        }

        fn time(seconds: i64) -> Option<meta::Time> {
            Some(meta::Time {
                seconds: Some(seconds),
                nanos: None,
            })
        }

        fn micro(seconds: i64, nanos: i32) -> Option<meta::MicroTime> {
            Some(meta::MicroTime {
                seconds: Some(seconds),
                nanos: Some(nanos),
            })
        }

        fn quantity(text: &str) -> Quantity {
            Quantity { string: s(text) }
        }

        /// The envelope as Go writes it: the content fields present but empty.
        fn go_body(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
            let unknown = Unknown {
                type_meta: Some(TypeMeta {
                    api_version: s(api_version),
                    kind: s(kind),
                }),
                raw: Some(raw),
                content_encoding: s(""),
                content_type: s(""),
            };
            [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
        }

        /// k8s-pb's bytes decode to `expected`, and our encoding of `expected` decodes with
        /// k8s-pb to the same struct.
        fn check<M: Message + Default + PartialEq + Debug>(message: &M, expected: Value) {
            let api_version = expected["apiVersion"].as_str().unwrap();
            let kind = expected["kind"].as_str().unwrap();
            let body = go_body(api_version, kind, message.encode_to_vec());
            assert_eq!(decode(&body).unwrap(), expected, "decoding {kind}");
            let ours = encode(&expected).unwrap();
            let unknown = Unknown::decode(&ours[MAGIC.len()..]).unwrap();
            let type_meta = unknown.type_meta.unwrap();
            assert_eq!(type_meta.api_version.as_deref(), Some(api_version));
            assert_eq!(type_meta.kind.as_deref(), Some(kind));
            assert_eq!(unknown.content_encoding, None);
            let back = M::decode(unknown.raw.unwrap_or_default().as_slice()).unwrap();
            assert_eq!(&back, message, "re-encoding {kind}");
        }

        fn object_meta() -> Option<meta::ObjectMeta> {
            Some(meta::ObjectMeta {
                name: s("demo"),
                generate_name: s("de-"),
                namespace: s("default"),
                uid: s("u-1"),
                resource_version: s("42"),
                generation: Some(3),
                creation_timestamp: time(TEN_SECONDS),
                deletion_timestamp: time(ELEVEN_SECONDS),
                deletion_grace_period_seconds: Some(0),
                labels: map(&[("app", "demo".to_owned())]),
                annotations: map(&[("note", "x".to_owned())]),
                owner_references: vec![meta::OwnerReference {
                    api_version: s("v1"),
                    kind: s("ConfigMap"),
                    name: s("owner"),
                    uid: s("u-0"),
                    controller: Some(true),
                    block_owner_deletion: Some(false),
                }],
                finalizers: strings(&["example.com/keep"]),
                managed_fields: vec![meta::ManagedFieldsEntry {
                    manager: s("kubectl"),
                    operation: s("Update"),
                    api_version: s("v1"),
                    time: time(TEN_SECONDS),
                    fields_type: s("FieldsV1"),
                    fields_v1: Some(meta::FieldsV1 {
                        raw: Some(br#"{"f:data":{}}"#.to_vec()),
                    }),
                    subresource: s("status"),
                }],
                ..Default::default()
            })
        }

        fn object_meta_json() -> Value {
            json!({
                "name": "demo",
                "generateName": "de-",
                "namespace": "default",
                "uid": "u-1",
                "resourceVersion": "42",
                "generation": 3,
                "creationTimestamp": TEN,
                "deletionTimestamp": ELEVEN,
                "deletionGracePeriodSeconds": 0,
                "labels": {"app": "demo"},
                "annotations": {"note": "x"},
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-0",
                    "controller": true, "blockOwnerDeletion": false,
                }],
                "finalizers": ["example.com/keep"],
                "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": TEN,
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}, "subresource": "status",
                }],
            })
        }

        fn label_selector() -> Option<meta::LabelSelector> {
            Some(meta::LabelSelector {
                match_labels: map(&[("app", "demo".to_owned())]),
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("tier"),
                    operator: s("In"),
                    values: strings(&["a", "b"]),
                }],
            })
        }

        fn object_reference() -> Option<core::ObjectReference> {
            Some(core::ObjectReference {
                kind: s("Pod"),
                namespace: s("default"),
                name: s("web-0"),
                uid: s("u-2"),
                api_version: s("v1"),
                resource_version: s("7"),
                field_path: s("spec.containers{web}"),
            })
        }

        #[test]
        fn config_map() {
            let message = core::ConfigMap {
                metadata: object_meta(),
                immutable: Some(false),
                data: map(&[("key", "value".to_owned())]),
                binary_data: map(&[("blob", vec![0u8, 1, 2, 255])]),
            };
            check(
                &message,
                json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": object_meta_json(),
                    "immutable": false,
                    "data": {"key": "value"},
                    "binaryData": {"blob": "AAEC/w=="},
                }),
            );
        }

        #[test]
        fn a_body_as_client_go_writes_it_reads_as_kubectl_json() {
            // Go writes every non-pointer field, zero or not, and an empty message for a zero
            // time: the JSON must leave them out, as kubectl's JSON does.
            let message = core::ConfigMap {
                metadata: Some(meta::ObjectMeta {
                    name: s("settings"),
                    generate_name: s(""),
                    namespace: s(""),
                    self_link: s(""),
                    uid: s(""),
                    resource_version: s(""),
                    generation: Some(0),
                    creation_timestamp: Some(meta::Time::default()),
                    ..Default::default()
                }),
                data: map(&[("key", "value".to_owned())]),
                ..Default::default()
            };
            let body = go_body("v1", "ConfigMap", message.encode_to_vec());
            assert_eq!(
                decode(&body).unwrap(),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"key": "value"}})
            );
        }

        #[test]
        fn secret_bytes() {
            let message = core::Secret {
                metadata: object_meta(),
                immutable: Some(true),
                data: map(&[("password", b"s3cr3t".to_vec()), ("empty", Vec::new())]),
                string_data: map(&[("user", "admin".to_owned())]),
                r#type: s("kubernetes.io/basic-auth"),
            };
            check(
                &message,
                json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": object_meta_json(),
                    "immutable": true,
                    "data": {"password": "czNjcjN0", "empty": ""},
                    "stringData": {"user": "admin"},
                    "type": "kubernetes.io/basic-auth",
                }),
            );
        }

        #[test]
        fn namespace() {
            let message = core::Namespace {
                metadata: Some(meta::ObjectMeta {
                    name: s("team-a"),
                    ..Default::default()
                }),
                spec: Some(core::NamespaceSpec {
                    finalizers: strings(&["kubernetes"]),
                }),
                status: Some(core::NamespaceStatus {
                    phase: s("Active"),
                    conditions: vec![core::NamespaceCondition {
                        r#type: s("NamespaceDeletionDiscoveryFailure"),
                        status: s("False"),
                        last_transition_time: time(TEN_SECONDS),
                        reason: s("ResourcesDiscovered"),
                        message: s("ok"),
                    }],
                }),
            };
            check(
                &message,
                json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "team-a"},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {
                        "phase": "Active",
                        "conditions": [{
                            "type": "NamespaceDeletionDiscoveryFailure", "status": "False",
                            "lastTransitionTime": TEN, "reason": "ResourcesDiscovered", "message": "ok",
                        }],
                    },
                }),
            );
        }

        #[test]
        fn service_account() {
            let message = core::ServiceAccount {
                metadata: object_meta(),
                secrets: vec![core::ObjectReference {
                    name: s("robot-token"),
                    ..Default::default()
                }],
                image_pull_secrets: vec![core::LocalObjectReference {
                    name: s("registry"),
                }],
                automount_service_account_token: Some(false),
            };
            check(
                &message,
                json!({
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": object_meta_json(),
                    "secrets": [{"name": "robot-token"}],
                    "imagePullSecrets": [{"name": "registry"}],
                    "automountServiceAccountToken": false,
                }),
            );
        }

        #[test]
        fn persistent_volume_claim() {
            let message = core::PersistentVolumeClaim {
                metadata: object_meta(),
                spec: Some(core::PersistentVolumeClaimSpec {
                    access_modes: strings(&["ReadWriteOnce"]),
                    selector: label_selector(),
                    resources: Some(core::VolumeResourceRequirements {
                        limits: map(&[("storage", quantity("20Gi"))]),
                        requests: map(&[("storage", quantity("10Gi"))]),
                    }),
                    volume_name: s("pv-1"),
                    storage_class_name: s(""),
                    volume_mode: s("Block"),
                    data_source: Some(core::TypedLocalObjectReference {
                        api_group: s("snapshot.storage.k8s.io"),
                        kind: s("VolumeSnapshot"),
                        name: s("snap"),
                    }),
                    data_source_ref: Some(core::TypedObjectReference {
                        api_group: s(""),
                        kind: s("PersistentVolumeClaim"),
                        name: s("source"),
                        namespace: s("other"),
                    }),
                    volume_attributes_class_name: s("fast"),
                }),
                status: Some(core::PersistentVolumeClaimStatus {
                    phase: s("Bound"),
                    access_modes: strings(&["ReadWriteOnce"]),
                    capacity: map(&[("storage", quantity("10Gi"))]),
                    conditions: vec![core::PersistentVolumeClaimCondition {
                        r#type: s("Resizing"),
                        status: s("True"),
                        last_probe_time: time(TEN_SECONDS),
                        last_transition_time: time(ELEVEN_SECONDS),
                        reason: s("Expanding"),
                        message: s("growing"),
                    }],
                    allocated_resources: map(&[("storage", quantity("12Gi"))]),
                    allocated_resource_statuses: map(&[(
                        "storage",
                        "ControllerResizeInProgress".to_owned(),
                    )]),
                    current_volume_attributes_class_name: s("slow"),
                    modify_volume_status: Some(core::ModifyVolumeStatus {
                        target_volume_attributes_class_name: s("fast"),
                        status: s("InProgress"),
                    }),
                }),
            };
            check(
                &message,
                json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": object_meta_json(),
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "selector": {
                            "matchLabels": {"app": "demo"},
                            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
                        },
                        "resources": {"limits": {"storage": "20Gi"}, "requests": {"storage": "10Gi"}},
                        "volumeName": "pv-1",
                        "storageClassName": "",
                        "volumeMode": "Block",
                        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
                        "dataSourceRef": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": "source", "namespace": "other"},
                        "volumeAttributesClassName": "fast",
                    },
                    "status": {
                        "phase": "Bound",
                        "accessModes": ["ReadWriteOnce"],
                        "capacity": {"storage": "10Gi"},
                        "conditions": [{
                            "type": "Resizing", "status": "True", "lastProbeTime": TEN,
                            "lastTransitionTime": ELEVEN, "reason": "Expanding", "message": "growing",
                        }],
                        "allocatedResources": {"storage": "12Gi"},
                        "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
                        "currentVolumeAttributesClassName": "slow",
                        "modifyVolumeStatus": {"targetVolumeAttributesClassName": "fast", "status": "InProgress"},
                    },
                }),
            );
        }

        #[test]
        fn storage_class() {
            let message = storage::StorageClass {
                metadata: Some(meta::ObjectMeta {
                    name: s("local"),
                    ..Default::default()
                }),
                provisioner: s("example.com/local"),
                parameters: map(&[("fsType", "ext4".to_owned())]),
                reclaim_policy: s("Retain"),
                mount_options: strings(&["noatime"]),
                allow_volume_expansion: Some(true),
                volume_binding_mode: s("WaitForFirstConsumer"),
                allowed_topologies: vec![core::TopologySelectorTerm {
                    match_label_expressions: vec![core::TopologySelectorLabelRequirement {
                        key: s("topology.kubernetes.io/zone"),
                        values: strings(&["a", "b"]),
                    }],
                }],
            };
            check(
                &message,
                json!({
                    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": "local"},
                    "provisioner": "example.com/local",
                    "parameters": {"fsType": "ext4"},
                    "reclaimPolicy": "Retain",
                    "mountOptions": ["noatime"],
                    "allowVolumeExpansion": true,
                    "volumeBindingMode": "WaitForFirstConsumer",
                    "allowedTopologies": [{
                        "matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}],
                    }],
                }),
            );
        }

        #[test]
        fn core_event() {
            let message = core::Event {
                metadata: object_meta(),
                involved_object: object_reference(),
                reason: s("BackOff"),
                message: s("Back-off restarting"),
                source: Some(core::EventSource {
                    component: s("kubelet"),
                    host: s("node-1"),
                }),
                first_timestamp: time(TEN_SECONDS),
                last_timestamp: time(ELEVEN_SECONDS),
                count: Some(3),
                r#type: s("Warning"),
                event_time: micro(TEN_SECONDS, 123_456_000),
                series: Some(core::EventSeries {
                    count: Some(2),
                    last_observed_time: micro(ELEVEN_SECONDS, 1_000),
                }),
                action: s("Restarting"),
                related: object_reference(),
                reporting_component: s("kubelet"),
                reporting_instance: s("node-1"),
            };
            let reference = json!({
                "kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u-2",
                "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{web}",
            });
            check(
                &message,
                json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": object_meta_json(),
                    "involvedObject": reference,
                    "reason": "BackOff",
                    "message": "Back-off restarting",
                    "source": {"component": "kubelet", "host": "node-1"},
                    "firstTimestamp": TEN,
                    "lastTimestamp": ELEVEN,
                    "count": 3,
                    "type": "Warning",
                    "eventTime": "2026-11-29T10:00:00.123456Z",
                    "series": {"count": 2, "lastObservedTime": "2026-11-29T11:00:00.000001Z"},
                    "action": "Restarting",
                    "related": reference,
                    "reportingComponent": "kubelet",
                    "reportingInstance": "node-1",
                }),
            );
        }

        #[test]
        fn events_event() {
            let message = events::Event {
                metadata: object_meta(),
                event_time: micro(TEN_SECONDS, 500_000_000),
                series: Some(events::EventSeries {
                    count: Some(4),
                    last_observed_time: micro(ELEVEN_SECONDS, 7_000),
                }),
                reporting_controller: s("example.com/c"),
                reporting_instance: s("c-0"),
                action: s("Reconcile"),
                reason: s("Synced"),
                regarding: object_reference(),
                related: None,
                note: s("synced"),
                r#type: s("Normal"),
                deprecated_source: Some(core::EventSource {
                    component: s("c"),
                    host: None,
                }),
                deprecated_first_timestamp: time(TEN_SECONDS),
                deprecated_last_timestamp: time(ELEVEN_SECONDS),
                deprecated_count: Some(9),
            };
            check(
                &message,
                json!({
                    "apiVersion": "events.k8s.io/v1", "kind": "Event",
                    "metadata": object_meta_json(),
                    "eventTime": "2026-11-29T10:00:00.500000Z",
                    "series": {"count": 4, "lastObservedTime": "2026-11-29T11:00:00.000007Z"},
                    "reportingController": "example.com/c",
                    "reportingInstance": "c-0",
                    "action": "Reconcile",
                    "reason": "Synced",
                    "regarding": {
                        "kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u-2",
                        "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{web}",
                    },
                    "note": "synced",
                    "type": "Normal",
                    "deprecatedSource": {"component": "c"},
                    "deprecatedFirstTimestamp": TEN,
                    "deprecatedLastTimestamp": ELEVEN,
                    "deprecatedCount": 9,
                }),
            );
        }

        #[test]
        fn lease() {
            let message = coordination::Lease {
                metadata: object_meta(),
                spec: Some(coordination::LeaseSpec {
                    holder_identity: s("node-1"),
                    lease_duration_seconds: Some(15),
                    acquire_time: micro(TEN_SECONDS, 250_000_000),
                    renew_time: micro(ELEVEN_SECONDS, 999_999_000),
                    lease_transitions: Some(0),
                    strategy: s("OldestEmulationVersion"),
                    preferred_holder: s("node-2"),
                }),
            };
            check(
                &message,
                json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": object_meta_json(),
                    "spec": {
                        "holderIdentity": "node-1",
                        "leaseDurationSeconds": 15,
                        "acquireTime": "2026-11-29T10:00:00.250000Z",
                        "renewTime": "2026-11-29T11:00:00.999999Z",
                        "leaseTransitions": 0,
                        "strategy": "OldestEmulationVersion",
                        "preferredHolder": "node-2",
                    },
                }),
            );
        }

        #[test]
        fn role_and_bindings() {
            let role = rbac::Role {
                metadata: object_meta(),
                rules: vec![rbac::PolicyRule {
                    verbs: strings(&["get", "list"]),
                    api_groups: strings(&[""]),
                    resources: strings(&["configmaps"]),
                    resource_names: strings(&["settings"]),
                    non_resource_ur_ls: strings(&["/healthz"]),
                }],
            };
            check(
                &role,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": object_meta_json(),
                    "rules": [{
                        "verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"],
                        "resourceNames": ["settings"], "nonResourceURLs": ["/healthz"],
                    }],
                }),
            );
            let cluster_role = rbac::ClusterRole {
                metadata: Some(meta::ObjectMeta {
                    name: s("view"),
                    ..Default::default()
                }),
                rules: Vec::new(),
                aggregation_rule: Some(rbac::AggregationRule {
                    cluster_role_selectors: vec![label_selector().unwrap()],
                }),
            };
            check(
                &cluster_role,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "view"},
                    "aggregationRule": {"clusterRoleSelectors": [{
                        "matchLabels": {"app": "demo"},
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
                    }]},
                }),
            );
            let binding = rbac::RoleBinding {
                metadata: object_meta(),
                subjects: vec![rbac::Subject {
                    kind: s("ServiceAccount"),
                    api_group: s("rbac.authorization.k8s.io"),
                    name: s("robot"),
                    namespace: s("default"),
                }],
                role_ref: Some(rbac::RoleRef {
                    api_group: s("rbac.authorization.k8s.io"),
                    kind: s("Role"),
                    name: s("reader"),
                }),
            };
            check(
                &binding,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": object_meta_json(),
                    "subjects": [{
                        "kind": "ServiceAccount", "apiGroup": "rbac.authorization.k8s.io",
                        "name": "robot", "namespace": "default",
                    }],
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                }),
            );
        }

        #[test]
        fn validating_webhook_configuration() {
            let message = admission::ValidatingWebhookConfiguration {
                metadata: Some(meta::ObjectMeta {
                    name: s("checks"),
                    ..Default::default()
                }),
                webhooks: vec![admission::ValidatingWebhook {
                    name: s("check.example.com"),
                    client_config: Some(admission::WebhookClientConfig {
                        url: None,
                        service: Some(admission::ServiceReference {
                            namespace: s("system"),
                            name: s("hook"),
                            path: s("/check"),
                            port: Some(8443),
                        }),
                        ca_bundle: Some(b"-----BEGIN CERTIFICATE-----\n".to_vec()),
                    }),
                    rules: vec![admission::RuleWithOperations {
                        operations: strings(&["CREATE", "UPDATE"]),
                        rule: Some(admission::Rule {
                            api_groups: strings(&[""]),
                            api_versions: strings(&["v1"]),
                            resources: strings(&["configmaps"]),
                            scope: s("Namespaced"),
                        }),
                    }],
                    failure_policy: s("Fail"),
                    match_policy: s("Equivalent"),
                    namespace_selector: label_selector(),
                    object_selector: Some(meta::LabelSelector {
                        match_labels: map(&[("checked", "true".to_owned())]),
                        match_expressions: Vec::new(),
                    }),
                    side_effects: s("None"),
                    timeout_seconds: Some(5),
                    admission_review_versions: strings(&["v1"]),
                    match_conditions: vec![admission::MatchCondition {
                        name: s("not-system"),
                        expression: s("request.userInfo.username != 'system'"),
                    }],
                }],
            };
            check(
                &message,
                json!({
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": "checks"},
                    "webhooks": [{
                        "name": "check.example.com",
                        "clientConfig": {
                            "service": {"namespace": "system", "name": "hook", "path": "/check", "port": 8443},
                            "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
                        },
                        "rules": [{
                            "operations": ["CREATE", "UPDATE"],
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "resources": ["configmaps"],
                            "scope": "Namespaced",
                        }],
                        "failurePolicy": "Fail",
                        "matchPolicy": "Equivalent",
                        "namespaceSelector": {
                            "matchLabels": {"app": "demo"},
                            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
                        },
                        "objectSelector": {"matchLabels": {"checked": "true"}},
                        "sideEffects": "None",
                        "timeoutSeconds": 5,
                        "admissionReviewVersions": ["v1"],
                        "matchConditions": [{"name": "not-system", "expression": "request.userInfo.username != 'system'"}],
                    }],
                }),
            );
        }

        #[test]
        fn mutating_webhook_configuration() {
            let message = admission::MutatingWebhookConfiguration {
                metadata: Some(meta::ObjectMeta {
                    name: s("defaults"),
                    ..Default::default()
                }),
                webhooks: vec![admission::MutatingWebhook {
                    name: s("default.example.com"),
                    client_config: Some(admission::WebhookClientConfig {
                        url: s("https://hook.example.com/mutate"),
                        ..Default::default()
                    }),
                    reinvocation_policy: s("IfNeeded"),
                    side_effects: s("NoneOnDryRun"),
                    object_selector: Some(meta::LabelSelector::default()),
                    ..Default::default()
                }],
            };
            check(
                &message,
                json!({
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "defaults"},
                    "webhooks": [{
                        "name": "default.example.com",
                        "clientConfig": {"url": "https://hook.example.com/mutate"},
                        "reinvocationPolicy": "IfNeeded",
                        "sideEffects": "NoneOnDryRun",
                        "objectSelector": {},
                    }],
                }),
            );
        }

        #[test]
        fn token_request() {
            let message = authentication::TokenRequest {
                metadata: object_meta(),
                spec: Some(authentication::TokenRequestSpec {
                    audiences: strings(&["https://kubernetes.default.svc"]),
                    expiration_seconds: Some(3600),
                    bound_object_ref: Some(authentication::BoundObjectReference {
                        kind: s("Pod"),
                        api_version: s("v1"),
                        name: s("web-0"),
                        u_id: s("u-3"),
                    }),
                }),
                status: Some(authentication::TokenRequestStatus {
                    token: s("eyJhbGciOi.x.y"),
                    expiration_timestamp: time(ELEVEN_SECONDS),
                }),
            };
            check(
                &message,
                json!({
                    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "metadata": object_meta_json(),
                    "spec": {
                        "audiences": ["https://kubernetes.default.svc"],
                        "expirationSeconds": 3600,
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "u-3"},
                    },
                    "status": {"token": "eyJhbGciOi.x.y", "expirationTimestamp": ELEVEN},
                }),
            );
        }

        #[test]
        fn status_delete_options_and_lists() {
            let status = meta::Status {
                metadata: Some(meta::ListMeta {
                    resource_version: s("9"),
                    r#continue: s("next"),
                    remaining_item_count: Some(0),
                    ..Default::default()
                }),
                status: s("Failure"),
                message: s("not found"),
                reason: s("NotFound"),
                details: Some(meta::StatusDetails {
                    name: s("x"),
                    group: s("apps"),
                    kind: s("deployments"),
                    uid: s("u-4"),
                    causes: vec![meta::StatusCause {
                        reason: s("FieldValueInvalid"),
                        message: s("bad"),
                        field: s("spec"),
                    }],
                    retry_after_seconds: Some(5),
                }),
                code: Some(404),
            };
            check(
                &status,
                json!({
                    "apiVersion": "v1", "kind": "Status",
                    "metadata": {"resourceVersion": "9", "continue": "next", "remainingItemCount": 0},
                    "status": "Failure",
                    "message": "not found",
                    "reason": "NotFound",
                    "details": {
                        "name": "x", "group": "apps", "kind": "deployments", "uid": "u-4",
                        "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "spec"}],
                        "retryAfterSeconds": 5,
                    },
                    "code": 404,
                }),
            );
            let options = meta::DeleteOptions {
                grace_period_seconds: Some(0),
                preconditions: Some(meta::Preconditions {
                    uid: s("u-5"),
                    resource_version: s("12"),
                }),
                orphan_dependents: Some(false),
                propagation_policy: s("Background"),
                dry_run: strings(&["All"]),
                ignore_store_read_error_with_cluster_breaking_potential: Some(true),
            };
            check(
                &options,
                json!({
                    "apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": "u-5", "resourceVersion": "12"},
                    "orphanDependents": false,
                    "propagationPolicy": "Background",
                    "dryRun": ["All"],
                    "ignoreStoreReadErrorWithClusterBreakingPotential": true,
                }),
            );
            let list = core::ConfigMapList {
                metadata: Some(meta::ListMeta {
                    resource_version: s("10"),
                    ..Default::default()
                }),
                items: vec![
                    core::ConfigMap {
                        metadata: Some(meta::ObjectMeta {
                            name: s("a"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    core::ConfigMap {
                        data: map(&[("k", "v".to_owned())]),
                        ..Default::default()
                    },
                ],
            };
            check(
                &list,
                json!({
                    "apiVersion": "v1", "kind": "ConfigMapList",
                    "metadata": {"resourceVersion": "10"},
                    "items": [{"metadata": {"name": "a"}}, {"data": {"k": "v"}}],
                }),
            );
        }

        #[test]
        fn watch_event_frames_read_with_k8s_pb() {
            let object =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
            let frame = encode_watch_event("ADDED", &object).unwrap();
            let event = meta::WatchEvent::decode(&frame[4..]).unwrap();
            assert_eq!(event.r#type.as_deref(), Some("ADDED"));
            let raw = event.object.unwrap().raw.unwrap();
            let unknown = Unknown::decode(&raw[MAGIC.len()..]).unwrap();
            assert_eq!(
                unknown.type_meta.unwrap().kind.as_deref(),
                Some("ConfigMap")
            );
            let config_map = core::ConfigMap::decode(unknown.raw.unwrap().as_slice()).unwrap();
            assert_eq!(config_map.metadata.unwrap().name.as_deref(), Some("cm"));
        }
    }
}
