//! The Swagger JSON document walked into the `openapi.v2.Document` message, as the protocol's
//! reference reader reads JSON (see the [module docs](super)).

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _,
};
use serde_json::Value;

use super::yaml::yaml;
use super::{MAX_DEPTH, OpenApiProtoError};

/// One step of the path to the value being converted.
enum Segment<'v> {
    Key(&'v str),
    Index(usize),
}

/// The conversion, with the path to the current value for errors.
#[derive(Default)]
pub(super) struct Walker<'v> {
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
    pub(super) fn message(
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
