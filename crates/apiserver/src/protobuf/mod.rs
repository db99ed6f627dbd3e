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
//!
//! The parts: `kinds` (which kinds have a protobuf form, and their messages), `envelope`
//! (the magic and `runtime.Unknown` around a body), `watch` (the framing of a watch stream),
//! `to_json` and `from_json` (the generic walk of a message either way), `special` (the
//! messages and fields with a JSON form of their own), `locate` (which field of a malformed
//! message is at fault), `descriptors` (the compiled descriptor set and field access) and
//! `path` (where a value sits, for errors).

mod descriptors;
mod envelope;
mod from_json;
mod kinds;
mod locate;
mod path;
mod special;
mod to_json;
mod watch;

#[cfg(test)]
mod cross_check;
#[cfg(test)]
mod fixtures;

pub use envelope::{decode, encode};
pub use kinds::{message_for, supported_kinds, supports};
pub use watch::{decode_watch_event, encode_watch_event};

/// The media type of a Kubernetes protobuf body.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream: length-framed `WatchEvent`s.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// How deep messages (and envelopes embedded in them) may nest before conversion gives up: far
/// beyond any Kubernetes kind, and far below what would threaten the stack.
const MAX_DEPTH: usize = 64;

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
