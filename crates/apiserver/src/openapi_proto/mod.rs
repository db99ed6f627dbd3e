//! `/openapi/v2` as protobuf: the Swagger 2.0 document of [`crate::openapi::swagger`] in the
//! `openapi.v2.Document` message that client-go's `OpenAPISchema()` (and so kubectl's `apply`,
//! `explain` and validation) asks for with [`MEDIA_TYPE`], and that kube-apiserver answers
//! with the `Content-Type` [`CONTENT_TYPE`].
//!
//! The messages are described by our own `proto/gnostic/openapi_v2.proto`, compiled by the
//! build script (protox, no `protoc`) into a descriptor set walked here with [`prost_reflect`].
//! The JSON document is read as the protocol's reference reader reads JSON:
//!
//! - a key names the field of the same name in snake case (`operationId` is `operation_id`),
//!   `$ref` is `_ref`; keys the message has no field for are left out;
//! - `x-` keys are `vendor_extension` entries (`NamedAny`), their value an `Any` whose `yaml`
//!   holds the value as YAML text (block style, quoted where a plain scalar would be ambiguous);
//!   `default`, `example`, `enum` values and response `examples` are `Any` the same way;
//! - objects with free keys (`definitions`, `properties`, `headers`, ...) are lists of `Named*`
//!   pairs in document order; `paths` takes the keys starting with `/`, `responses` the
//!   status codes (and `default`);
//! - `type` is a `TypeItem` (a string or a list of them), `items` an `ItemsItem` (one schema, or
//!   a list), `additionalProperties` a schema or a boolean;
//! - values of several possible shapes are `oneof`s chosen as the reader does: a parameter by
//!   its `in`, a parameter or response with a `$ref` is a `JsonReference`, a response schema of
//!   `type: file` a `FileSchema`, a security definition by its `type` (and OAuth2 `flow`).
//!
//! A `null` value is an absent field. A value of the wrong JSON type for its field is an
//! [`OpenApiProtoError`], as the reference reader refuses such a document.
//!
//! The parts: `negotiate` (which format a request asks for), `convert` (the JSON document
//! walked into the message) and `yaml` (the YAML text of `Any` values).

mod convert;
mod negotiate;
mod yaml;

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use prost::Message as _;
use prost_reflect::DescriptorPool;
use serde_json::Value;

pub use self::negotiate::{Format, negotiate};
pub use self::yaml::yaml;
use convert::Walker;

/// The media type client-go asks `/openapi/v2` for: the protobuf form of the document.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The other spelling of [`MEDIA_TYPE`], the one kube-apiserver names in its `Content-Type`
/// whichever was asked for: Go's `mime.ParseMediaType` (which client-go applies to every
/// response) refuses the `@` of [`MEDIA_TYPE`].
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// How deep the JSON document may nest before encoding gives up: far beyond any schema, and far
/// below what would threaten the stack.
const MAX_DEPTH: usize = 256;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi_v2_descriptors.bin"));

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()));

const DOCUMENT: &str = "openapi.v2.Document";

/// Why a Swagger document could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenApiProtoError {
    /// The compiled message descriptors could not be loaded (a build problem).
    #[error("the OpenAPI v2 protobuf descriptors are unusable: {0}")]
    Descriptors(String),
    /// A value is not of the JSON type its field takes.
    #[error("OpenAPI v2 document at {path:?}: expected {expected}")]
    Unexpected {
        /// Where, as a JSON pointer.
        path: String,
        /// What the field takes.
        expected: &'static str,
    },
    /// The document nests deeper than [`MAX_DEPTH`].
    #[error("OpenAPI v2 document at {path:?}: nested too deeply")]
    TooDeep {
        /// Where, as a JSON pointer.
        path: String,
    },
}

/// Encodes a Swagger 2.0 JSON document as an `openapi.v2.Document` message.
pub fn encode(swagger: &Value) -> Result<Vec<u8>, OpenApiProtoError> {
    let document = pool()?
        .get_message_by_name(DOCUMENT)
        .ok_or_else(|| OpenApiProtoError::Descriptors(format!("no message {DOCUMENT}")))?;
    let message = Walker::default().message(&document, swagger)?;
    Ok(message.encode_to_vec())
}

fn pool() -> Result<&'static DescriptorPool, OpenApiProtoError> {
    POOL.as_ref()
        .map_err(|e| OpenApiProtoError::Descriptors(e.clone()))
}
