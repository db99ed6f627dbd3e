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

use std::sync::LazyLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _,
};
use serde_json::Value;

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

/// What `/openapi/v2` answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The JSON document.
    Json,
    /// The `openapi.v2.Document` protobuf ([`MEDIA_TYPE`], served as [`CONTENT_TYPE`]).
    Protobuf,
}

/// The format of the most preferred type of `accept` the server produces (by quality, then
/// order): JSON for `application/json`, `application/*`, `*/*` or an empty header, protobuf for
/// [`MEDIA_TYPE`] or [`CONTENT_TYPE`]; `None` (406) when there is none.
pub fn negotiate(accept: &str) -> Option<Format> {
    if accept.trim().is_empty() {
        return Some(Format::Json);
    }
    let mut best: Option<(f32, Format)> = None;
    for entry in accept.split(',') {
        let mut params = entry.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let quality = params
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "application/json" | "application/*" | "*/*" => Format::Json,
            MEDIA_TYPE | CONTENT_TYPE => Format::Protobuf,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
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

/// One step of the path to the value being converted.
enum Segment<'v> {
    Key(&'v str),
    Index(usize),
}

/// The conversion, with the path to the current value for errors.
#[derive(Default)]
struct Walker<'v> {
    path: Vec<Segment<'v>>,
}

impl<'v> Walker<'v> {
    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for segment in &self.path {
            pointer.push('/');
            match segment {
                Segment::Key(key) => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Segment::Index(index) => pointer.push_str(&index.to_string()),
            }
        }
        pointer
    }

    fn unexpected(&self, expected: &'static str) -> OpenApiProtoError {
        OpenApiProtoError::Unexpected {
            path: self.pointer(),
            expected,
        }
    }

    fn object(
        &self,
        json: &'v Value,
    ) -> Result<&'v serde_json::Map<String, Value>, OpenApiProtoError> {
        json.as_object().ok_or_else(|| self.unexpected("an object"))
    }

    /// `json` as the message `descriptor`.
    fn message(
        &mut self,
        descriptor: &MessageDescriptor,
        json: &'v Value,
    ) -> Result<DynamicMessage, OpenApiProtoError> {
        if self.path.len() > MAX_DEPTH {
            return Err(OpenApiProtoError::TooDeep {
                path: self.pointer(),
            });
        }
        let mut message = DynamicMessage::new(descriptor.clone());
        match descriptor.name() {
            "Any" => {
                let field = field(descriptor, "yaml")?;
                message.set_field(&field, prost_reflect::Value::String(yaml(json)));
            }
            "TypeItem" | "StringArray" => {
                let field = field(descriptor, "value")?;
                let values = match json {
                    Value::String(value) => vec![prost_reflect::Value::String(value.clone())],
                    Value::Array(_) => {
                        self.set(&mut message, &field, json)?;
                        return Ok(message);
                    }
                    _ => return Err(self.unexpected("a string or an array of strings")),
                };
                message.set_field(&field, prost_reflect::Value::List(values));
            }
            "ItemsItem" => {
                let field = field(descriptor, "schema")?;
                if json.is_object() {
                    let schema = self.message(&message_of(&field)?, json)?;
                    message.set_field(
                        &field,
                        prost_reflect::Value::List(vec![prost_reflect::Value::Message(schema)]),
                    );
                } else if json.is_array() {
                    self.set(&mut message, &field, json)?;
                } else {
                    return Err(self.unexpected("a schema or an array of schemas"));
                }
            }
            "AdditionalPropertiesItem" => match json {
                Value::Bool(allowed) => {
                    let field = field(descriptor, "boolean")?;
                    message.set_field(&field, prost_reflect::Value::Bool(*allowed));
                }
                Value::Object(_) => {
                    let field = field(descriptor, "schema")?;
                    self.set_one(&mut message, &field, json)?;
                }
                _ => return Err(self.unexpected("a schema or a boolean")),
            },
            "Parameter"
            | "NonBodyParameter"
            | "ParametersItem"
            | "ResponseValue"
            | "SchemaItem"
            | "SecurityDefinitionsItem" => {
                let choice = self.choice(descriptor.name(), self.object(json)?)?;
                let field = field(descriptor, choice)?;
                self.set_one(&mut message, &field, json)?;
            }
            "Paths" => {
                let paths = field(descriptor, "path")?;
                let extensions = field(descriptor, "vendor_extension")?;
                let object = self.object(json)?;
                self.named(&mut message, &paths, object, |key| key.starts_with('/'))?;
                self.named(&mut message, &extensions, object, is_extension)?;
            }
            "Responses" => {
                let codes = field(descriptor, "response_code")?;
                let extensions = field(descriptor, "vendor_extension")?;
                let object = self.object(json)?;
                self.named(&mut message, &codes, object, |key| !is_extension(key))?;
                self.named(&mut message, &extensions, object, is_extension)?;
            }
            _ => match descriptor.get_field_by_name("additional_properties") {
                Some(entries) if entries.is_list() => {
                    let object = self.object(json)?;
                    self.named(&mut message, &entries, object, |_| true)?;
                }
                _ => self.fields(&mut message, json)?,
            },
        }
        Ok(message)
    }

    /// An object of fixed keys: each key is the field of its name, `x-` keys are vendor
    /// extensions.
    fn fields(
        &mut self,
        message: &mut DynamicMessage,
        json: &'v Value,
    ) -> Result<(), OpenApiProtoError> {
        let descriptor = message.descriptor();
        let object = self.object(json)?;
        if let Some(extensions) = descriptor.get_field_by_name("vendor_extension") {
            self.named(message, &extensions, object, is_extension)?;
        }
        for (key, value) in object {
            if is_extension(key) || value.is_null() {
                continue;
            }
            let Some(field) = field_for_key(&descriptor, key) else {
                continue;
            };
            self.path.push(Segment::Key(key));
            self.set(message, &field, value)?;
            self.path.pop();
        }
        Ok(())
    }

    /// Sets `field` (repeated or not) of `message` from `json`.
    fn set(
        &mut self,
        message: &mut DynamicMessage,
        field: &FieldDescriptor,
        json: &'v Value,
    ) -> Result<(), OpenApiProtoError> {
        if !field.is_list() {
            return self.set_one(message, field, json);
        }
        let items = json.as_array().ok_or_else(|| self.unexpected("an array"))?;
        let mut values = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            self.path.push(Segment::Index(index));
            values.push(self.single(&field.kind(), item)?);
            self.path.pop();
        }
        message.set_field(field, prost_reflect::Value::List(values));
        Ok(())
    }

    fn set_one(
        &mut self,
        message: &mut DynamicMessage,
        field: &FieldDescriptor,
        json: &'v Value,
    ) -> Result<(), OpenApiProtoError> {
        let value = self.single(&field.kind(), json)?;
        message.set_field(field, value);
        Ok(())
    }

    /// One value of a field of `kind`.
    fn single(
        &mut self,
        kind: &Kind,
        json: &'v Value,
    ) -> Result<prost_reflect::Value, OpenApiProtoError> {
        Ok(match kind {
            Kind::String => prost_reflect::Value::String(
                json.as_str()
                    .ok_or_else(|| self.unexpected("a string"))?
                    .to_string(),
            ),
            Kind::Bool => prost_reflect::Value::Bool(
                json.as_bool().ok_or_else(|| self.unexpected("a boolean"))?,
            ),
            Kind::Double => {
                prost_reflect::Value::F64(json.as_f64().ok_or_else(|| self.unexpected("a number"))?)
            }
            Kind::Int64 => prost_reflect::Value::I64(
                json.as_i64()
                    .or_else(|| {
                        json.as_f64()
                            .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
                            .map(|n| n as i64)
                    })
                    .ok_or_else(|| self.unexpected("an integer"))?,
            ),
            Kind::Message(descriptor) => {
                prost_reflect::Value::Message(self.message(descriptor, json)?)
            }
            _ => return Err(self.unexpected("a field type the encoder knows")),
        })
    }

    /// The entries of `object` whose keys pass `wanted`, as the `Named*` pairs of `field`.
    fn named(
        &mut self,
        message: &mut DynamicMessage,
        field: &FieldDescriptor,
        object: &'v serde_json::Map<String, Value>,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<(), OpenApiProtoError> {
        let pair = message_of(field)?;
        let name = self::field(&pair, "name")?;
        let value_field = self::field(&pair, "value")?;
        let mut entries = Vec::new();
        for (key, value) in object {
            if !wanted(key) {
                continue;
            }
            self.path.push(Segment::Key(key));
            let mut entry = DynamicMessage::new(pair.clone());
            entry.set_field(&name, prost_reflect::Value::String(key.clone()));
            self.set_one(&mut entry, &value_field, value)?;
            entries.push(prost_reflect::Value::Message(entry));
            self.path.pop();
        }
        if !entries.is_empty() {
            message.set_field(field, prost_reflect::Value::List(entries));
        }
        Ok(())
    }

    /// Which member of the `oneof` of the message `name` an object is.
    fn choice(
        &self,
        name: &str,
        object: &serde_json::Map<String, Value>,
    ) -> Result<&'static str, OpenApiProtoError> {
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        Ok(match name {
            "Parameter" if text("in") == Some("body") => "body_parameter",
            "Parameter" => "non_body_parameter",
            "NonBodyParameter" => match text("in") {
                Some("header") => "header_parameter_sub_schema",
                Some("formData") => "form_data_parameter_sub_schema",
                Some("query") => "query_parameter_sub_schema",
                Some("path") => "path_parameter_sub_schema",
                _ => {
                    return Err(
                        self.unexpected("a parameter `in` body, header, formData, query or path")
                    );
                }
            },
            "ParametersItem" if object.contains_key("$ref") => "json_reference",
            "ParametersItem" => "parameter",
            "ResponseValue" if object.contains_key("$ref") => "json_reference",
            "ResponseValue" => "response",
            "SchemaItem" if text("type") == Some("file") => "file_schema",
            "SchemaItem" => "schema",
            _ => match (text("type"), text("flow")) {
                (Some("basic"), _) => "basic_authentication_security",
                (Some("apiKey"), _) => "api_key_security",
                (Some("oauth2"), Some("implicit")) => "oauth2_implicit_security",
                (Some("oauth2"), Some("password")) => "oauth2_password_security",
                (Some("oauth2"), Some("application")) => "oauth2_application_security",
                (Some("oauth2"), Some("accessCode")) => "oauth2_access_code_security",
                _ => {
                    return Err(self.unexpected(
                        "a security definition of type basic, apiKey or oauth2 (with a flow)",
                    ));
                }
            },
        })
    }
}

fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

fn field(descriptor: &MessageDescriptor, name: &str) -> Result<FieldDescriptor, OpenApiProtoError> {
    descriptor.get_field_by_name(name).ok_or_else(|| {
        OpenApiProtoError::Descriptors(format!("{} has no field {name}", descriptor.full_name()))
    })
}

fn message_of(field: &FieldDescriptor) -> Result<MessageDescriptor, OpenApiProtoError> {
    match field.kind() {
        Kind::Message(descriptor) => Ok(descriptor),
        _ => Err(OpenApiProtoError::Descriptors(format!(
            "{} is not a message field",
            field.full_name()
        ))),
    }
}

/// The field a JSON key names: `$ref` is `_ref`, a camelCase key its snake_case field. The
/// lists built from free keys (`vendor_extension`, `additional_properties` of the `Named*`
/// holders) are not named by keys, and keys are never snake case themselves.
fn field_for_key(descriptor: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    if key == "$ref" {
        return descriptor.get_field_by_name("_ref");
    }
    if key.contains('_') || key.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    if name == "vendor_extension" {
        return None;
    }
    descriptor.get_field_by_name(&name)
}

/// `value` as a YAML document: block style with two-space indentation, scalars plain where
/// that reads back as the same string, double-quoted (with JSON-compatible escapes) otherwise.
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    if is_block(value) {
        block(value, 0, &mut out);
    } else {
        out.push_str(&scalar(value));
        out.push('\n');
    }
    out
}

/// Whether a value is written as indented lines (a non-empty object or array).
fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn block(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                out.push_str(&" ".repeat(indent));
                out.push_str(&string(key));
                out.push(':');
                if is_block(value) {
                    out.push('\n');
                    block(value, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(value));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_block(item) {
                    // The item's first line moves up beside its dash.
                    let mut nested = String::new();
                    block(item, indent + 2, &mut nested);
                    out.push_str(&" ".repeat(indent));
                    out.push_str("- ");
                    out.push_str(&nested[indent + 2..]);
                } else {
                    out.push_str(&" ".repeat(indent));
                    out.push_str("- ");
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        scalar_value => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&scalar(scalar_value));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// A string scalar: plain when it is a simple word YAML 1.1 and 1.2 both read as a string,
/// double-quoted otherwise.
fn string(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
        );
    if plain {
        return text.to_string();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                quoted.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost_reflect::Value as Field;
    use serde_json::json;

    use super::*;

    fn decode(bytes: &[u8]) -> DynamicMessage {
        let descriptor = pool().unwrap().get_message_by_name(DOCUMENT).unwrap();
        DynamicMessage::decode(descriptor, bytes).unwrap()
    }

    /// A field of `message` (a default when absent).
    fn get(message: &DynamicMessage, name: &str) -> Field {
        message.get_field_by_name(name).unwrap().into_owned()
    }

    fn child(message: &DynamicMessage, name: &str) -> DynamicMessage {
        assert!(message.has_field_by_name(name), "{name} is set");
        get(message, name).as_message().unwrap().clone()
    }

    fn text(message: &DynamicMessage, name: &str) -> String {
        get(message, name).as_str().unwrap().to_string()
    }

    fn list(message: &DynamicMessage, name: &str) -> Vec<Field> {
        get(message, name).as_list().unwrap().to_vec()
    }

    /// The value of the `Named*` pair called `key` in the list `name`.
    fn entry(message: &DynamicMessage, name: &str, key: &str) -> DynamicMessage {
        list(message, name)
            .iter()
            .map(|v| v.as_message().unwrap().clone())
            .find(|pair| text(pair, "name") == key)
            .map(|pair| child(&pair, "value"))
            .unwrap_or_else(|| panic!("no {key} in {name}"))
    }

    fn names(message: &DynamicMessage, name: &str) -> Vec<String> {
        list(message, name)
            .iter()
            .map(|v| text(v.as_message().unwrap(), "name"))
            .collect()
    }

    fn strings(message: &DynamicMessage, name: &str) -> Vec<String> {
        list(message, name)
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn small() -> Value {
        json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {
                "/api/v1/namespaces/{namespace}/configmaps/{name}": {
                    "parameters": [
                        {"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true},
                        {"$ref": "#/parameters/pretty"}
                    ],
                    "get": {
                        "operationId": "readCoreV1NamespacedConfigMap",
                        "consumes": ["*/*"],
                        "tags": ["core_v1"],
                        "parameters": [
                            {"name": "limit", "in": "query", "type": "integer", "default": 500},
                            {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}}
                        ],
                        "responses": {
                            "200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}},
                            "401": {"description": "Unauthorized"}
                        },
                        "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"}
                    }
                }
            },
            "definitions": {
                "io.k8s.api.core.v1.ConfigMap": {
                    "description": "ConfigMap holds configuration data for pods to consume.",
                    "type": "object",
                    "required": ["metadata"],
                    "properties": {
                        "data": {"type": "object", "additionalProperties": {"type": "string"}},
                        "immutable": {"type": "boolean"},
                        "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "default": {}},
                        "finalizers": {
                            "type": "array",
                            "items": {"type": "string", "default": ""},
                            "x-kubernetes-list-type": "set",
                            "x-kubernetes-patch-strategy": "merge"
                        },
                        "phase": {"type": "string", "enum": ["Active", "Terminating"]}
                    },
                    "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]
                },
                "io.k8s.apimachinery.pkg.runtime.RawExtension": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "additionalProperties": false
                }
            },
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
            "security": [{"BearerToken": []}]
        })
    }

    #[test]
    fn a_document_reads_back_as_the_reference_reader_would_build_it() {
        let document = decode(&encode(&small()).unwrap());
        assert_eq!(text(&document, "swagger"), "2.0");
        assert_eq!(text(&child(&document, "info"), "title"), "Kubernetes");

        let definitions = child(&document, "definitions");
        assert_eq!(
            names(&definitions, "additional_properties"),
            [
                "io.k8s.api.core.v1.ConfigMap",
                "io.k8s.apimachinery.pkg.runtime.RawExtension"
            ]
        );
        let config_map = entry(
            &definitions,
            "additional_properties",
            "io.k8s.api.core.v1.ConfigMap",
        );
        assert_eq!(strings(&child(&config_map, "type"), "value"), ["object"]);
        assert_eq!(strings(&config_map, "required"), ["metadata"]);
        assert_eq!(
            entry(
                &config_map,
                "vendor_extension",
                "x-kubernetes-group-version-kind"
            )
            .get_field_by_name("yaml")
            .unwrap()
            .as_str(),
            Some("- group: \"\"\n  kind: ConfigMap\n  version: v1\n")
        );

        let properties = child(&config_map, "properties");
        assert_eq!(
            names(&properties, "additional_properties"),
            ["data", "finalizers", "immutable", "metadata", "phase"]
        );
        let data = entry(&properties, "additional_properties", "data");
        let values = child(&child(&data, "additional_properties"), "schema");
        assert_eq!(strings(&child(&values, "type"), "value"), ["string"]);
        let metadata = entry(&properties, "additional_properties", "metadata");
        assert_eq!(
            text(&metadata, "_ref"),
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(text(&child(&metadata, "default"), "yaml"), "{}\n");
        let finalizers = entry(&properties, "additional_properties", "finalizers");
        let items = list(&child(&finalizers, "items"), "schema");
        assert_eq!(items.len(), 1);
        let item = items[0].as_message().unwrap();
        assert_eq!(strings(&child(item, "type"), "value"), ["string"]);
        assert_eq!(text(&child(item, "default"), "yaml"), "\"\"\n");
        assert_eq!(
            names(&finalizers, "vendor_extension"),
            ["x-kubernetes-list-type", "x-kubernetes-patch-strategy"]
        );
        assert_eq!(
            text(
                &entry(
                    &finalizers,
                    "vendor_extension",
                    "x-kubernetes-patch-strategy"
                ),
                "yaml"
            ),
            "merge\n"
        );
        let phase = entry(&properties, "additional_properties", "phase");
        let values: Vec<String> = list(&phase, "enum")
            .iter()
            .map(|v| text(v.as_message().unwrap(), "yaml"))
            .collect();
        assert_eq!(values, ["Active\n", "Terminating\n"]);

        let raw = entry(
            &definitions,
            "additional_properties",
            "io.k8s.apimachinery.pkg.runtime.RawExtension",
        );
        assert_eq!(
            get(&child(&raw, "additional_properties"), "boolean").as_bool(),
            Some(false)
        );
        assert!(!raw.has_field_by_name("properties"));
        assert_eq!(
            text(
                &entry(
                    &raw,
                    "vendor_extension",
                    "x-kubernetes-preserve-unknown-fields"
                ),
                "yaml"
            ),
            "true\n"
        );

        let security = child(&document, "security_definitions");
        let bearer = entry(&security, "additional_properties", "BearerToken");
        assert_eq!(text(&child(&bearer, "api_key_security"), "in"), "header");
        let requirement = list(&document, "security");
        assert_eq!(
            names(
                requirement[0].as_message().unwrap(),
                "additional_properties"
            ),
            ["BearerToken"]
        );
    }

    #[test]
    fn paths_carry_operations_parameters_and_responses() {
        let document = decode(&encode(&small()).unwrap());
        let paths = child(&document, "paths");
        assert_eq!(
            names(&paths, "path"),
            ["/api/v1/namespaces/{namespace}/configmaps/{name}"]
        );
        let item = entry(
            &paths,
            "path",
            "/api/v1/namespaces/{namespace}/configmaps/{name}",
        );
        let common = list(&item, "parameters");
        let name = child(
            &child(common[0].as_message().unwrap(), "parameter"),
            "non_body_parameter",
        );
        let name = child(&name, "path_parameter_sub_schema");
        assert_eq!(text(&name, "name"), "name");
        assert_eq!(get(&name, "required").as_bool(), Some(true));
        assert_eq!(get(&name, "unique_items").as_bool(), Some(true));
        let reference = child(common[1].as_message().unwrap(), "json_reference");
        assert_eq!(text(&reference, "_ref"), "#/parameters/pretty");

        let get_op = child(&item, "get");
        assert!(!item.has_field_by_name("put"));
        assert_eq!(
            text(&get_op, "operation_id"),
            "readCoreV1NamespacedConfigMap"
        );
        assert_eq!(strings(&get_op, "consumes"), ["*/*"]);
        assert_eq!(strings(&get_op, "tags"), ["core_v1"]);
        let parameters = list(&get_op, "parameters");
        let limit = child(
            &child(
                &child(parameters[0].as_message().unwrap(), "parameter"),
                "non_body_parameter",
            ),
            "query_parameter_sub_schema",
        );
        assert_eq!(text(&limit, "type"), "integer");
        assert_eq!(text(&child(&limit, "default"), "yaml"), "500\n");
        let body = child(
            &child(parameters[1].as_message().unwrap(), "parameter"),
            "body_parameter",
        );
        assert_eq!(
            text(&child(&body, "schema"), "_ref"),
            "#/definitions/io.k8s.api.core.v1.ConfigMap"
        );

        let responses = child(&get_op, "responses");
        assert_eq!(names(&responses, "response_code"), ["200", "401"]);
        let ok = child(&entry(&responses, "response_code", "200"), "response");
        assert_eq!(text(&ok, "description"), "OK");
        assert_eq!(
            text(&child(&child(&ok, "schema"), "schema"), "_ref"),
            "#/definitions/io.k8s.api.core.v1.ConfigMap"
        );
        assert_eq!(
            names(&get_op, "vendor_extension"),
            ["x-kubernetes-action", "x-kubernetes-group-version-kind"]
        );
        assert_eq!(
            text(
                &entry(
                    &get_op,
                    "vendor_extension",
                    "x-kubernetes-group-version-kind"
                ),
                "yaml"
            ),
            yaml(&json!({"group": "", "version": "v1", "kind": "ConfigMap"}))
        );
    }

    #[test]
    fn wrong_types_are_errors_with_their_path() {
        let mut document = small();
        document["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["data"]["type"] =
            json!(3);
        assert_eq!(
            encode(&document),
            Err(OpenApiProtoError::Unexpected {
                path: "/definitions/io.k8s.api.core.v1.ConfigMap/properties/data/type".into(),
                expected: "a string or an array of strings",
            })
        );
        let mut document = small();
        document["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["parameters"][0]["in"] =
            json!("cookie");
        assert!(matches!(
            encode(&document),
            Err(OpenApiProtoError::Unexpected { path, .. })
                if path == "/paths/~1api~1v1~1namespaces~1{namespace}~1configmaps~1{name}/parameters/0"
        ));
        assert!(encode(&json!([])).is_err());
    }

    #[test]
    fn yaml_is_block_style_and_quotes_what_would_read_back_differently() {
        assert_eq!(yaml(&json!("merge")), "merge\n");
        assert_eq!(yaml(&json!("retainKeys,merge")), "\"retainKeys,merge\"\n");
        assert_eq!(yaml(&json!("true")), "\"true\"\n");
        assert_eq!(yaml(&json!("1")), "\"1\"\n");
        assert_eq!(yaml(&json!("")), "\"\"\n");
        assert_eq!(
            yaml(&json!("a \"b\"\n\u{85}")),
            "\"a \\\"b\\\"\\n\\u0085\"\n"
        );
        assert_eq!(yaml(&json!(null)), "null\n");
        assert_eq!(yaml(&json!(1.5)), "1.5\n");
        assert_eq!(
            yaml(&json!(["a", ["b", "c"], {}])),
            "- a\n- - b\n  - c\n- {}\n"
        );
        assert_eq!(
            yaml(&json!({"a": {"b": [1, {"c": "d", "e": []}]}})),
            "a:\n  b:\n    - 1\n    - c: d\n      e: []\n"
        );
    }

    #[test]
    fn negotiation_takes_the_most_preferred_type_served() {
        assert_eq!(negotiate(""), Some(Format::Json));
        assert_eq!(negotiate(MEDIA_TYPE), Some(Format::Protobuf));
        assert_eq!(negotiate(CONTENT_TYPE), Some(Format::Protobuf));
        assert_eq!(
            negotiate(&format!("{MEDIA_TYPE}, application/json")),
            Some(Format::Protobuf)
        );
        assert_eq!(
            negotiate(&format!("application/json, {MEDIA_TYPE}")),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(&format!("application/json;q=0.5, {MEDIA_TYPE}")),
            Some(Format::Protobuf)
        );
        assert_eq!(negotiate("*/*"), Some(Format::Json));
        assert_eq!(negotiate("application/json;q=0"), None);
        assert_eq!(negotiate("application/vnd.kubernetes.protobuf"), None);
        assert_eq!(negotiate("text/html"), None);
    }

    #[test]
    fn the_served_swagger_document_encodes() {
        let components = Arc::new(crate::native::components());
        let kinds = crate::native::kinds(&components);
        let catalog = crate::catalog::Catalog::new(kinds, components);
        let swagger = crate::openapi::swagger(&catalog);
        let document = decode(&encode(&swagger).unwrap());
        let definitions = child(&document, "definitions");
        assert_eq!(
            names(&definitions, "additional_properties").len(),
            swagger["definitions"].as_object().unwrap().len()
        );
        let config_map = entry(
            &definitions,
            "additional_properties",
            "io.k8s.api.core.v1.ConfigMap",
        );
        let data = entry(
            &child(&config_map, "properties"),
            "additional_properties",
            "data",
        );
        assert!(child(&child(&data, "additional_properties"), "schema").has_field_by_name("type"));
        assert!(
            names(&config_map, "vendor_extension")
                .contains(&"x-kubernetes-group-version-kind".to_string())
        );
        assert_eq!(
            names(&child(&document, "paths"), "path").len(),
            swagger["paths"].as_object().unwrap().len()
        );
        assert_eq!(document.descriptor().full_name(), DOCUMENT);
    }
}
