//! Structural schemas: pruning unknown fields, defaulting and validating objects against the
//! OpenAPI v3 schema of their kind (a CustomResourceDefinition's, or a native kind's).
//!
//! Schemas are the JSON of OpenAPI v3 schema objects. `$ref`s point into a shared map of
//! component schemas (`#/components/schemas/NAME`), as in the published OpenAPI documents, so
//! the same values serve both `/openapi/v3` and validation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use apimachinery::{FieldError, FieldErrorKind};
use serde_json::{Map, Value};

/// Component schemas by name.
pub type Components = BTreeMap<String, Value>;

/// A kind's schema with the components its `$ref`s resolve in.
#[derive(Clone, Debug)]
pub struct Schema {
    /// The schema of the whole object.
    pub root: Value,
    /// What `$ref`s resolve to.
    pub components: Arc<Components>,
    /// Whether an object schema without `properties` or `additionalProperties` drops every
    /// field (a CustomResourceDefinition's structural schema), rather than taking any (the
    /// free-form maps of native kinds).
    pub prune_empty_objects: bool,
}

const REF_PREFIX: &str = "#/components/schemas/";

/// How many compiled `pattern`s are kept (the schemas' authors choose them; beyond this many,
/// the others are compiled for each use).
const MAX_PATTERNS: usize = 1024;

/// `pattern` compiled, from a process-wide cache: compiling one cost more than the rest of
/// validating an object (a tenth of a millisecond), on every write of a kind that has one.
/// `None` for a pattern that does not compile, which validation skips.
fn compiled(pattern: &str) -> Option<Arc<regex::Regex>> {
    type Cache = std::sync::Mutex<std::collections::HashMap<String, Option<Arc<regex::Regex>>>>;
    static PATTERNS: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Default::default);
    let mut cache = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(re) = cache.get(pattern) {
        return re.clone();
    }
    let re = regex::Regex::new(pattern).ok().map(Arc::new);
    if cache.len() < MAX_PATTERNS {
        cache.insert(pattern.to_string(), re.clone());
    }
    re
}

/// A path as kube-apiserver writes it in field errors (`spec.ports[0].name`).
fn child(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

impl Schema {
    /// A schema over `components`.
    pub fn new(root: Value, components: Arc<Components>, prune_empty_objects: bool) -> Schema {
        Schema {
            root,
            components,
            prune_empty_objects,
        }
    }

    /// The schema `node` stands for: `$ref`s (also a lone `$ref` under `allOf`) followed.
    pub(crate) fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..32 {
            if let Some(name) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                match self.components.get(name) {
                    Some(target) => node = target,
                    None => return node,
                }
            } else if let Some([only]) = node
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                && only.get("$ref").is_some()
                && node.get("properties").is_none()
            {
                node = only;
            } else {
                return node;
            }
        }
        node
    }

    /// Drops the fields the schema does not know, returning their paths (`.spec.colour`) for
    /// strict and warning field validation; drops `null`s of fields that are not nullable.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let mut unknown = Vec::new();
        self.prune_at(object, &self.root, &mut String::new(), true, &mut unknown);
        unknown
    }

    /// Prunes `value` at `path`, a buffer each level extends and restores: nothing is
    /// allocated for a field that is kept (every write of every kind is pruned).
    fn prune_at(
        &self,
        value: &mut Value,
        schema: &Value,
        path: &mut String,
        root: bool,
        unknown: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        match value {
            Value::Object(map) => {
                let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
                let free = preserve
                    || additional == Some(&Value::Bool(true))
                    || (properties.is_none()
                        && additional.is_none()
                        && (!self.prune_empty_objects || schema.get("type").is_none()));
                map.retain(|key, entry| {
                    let at = path.len();
                    path.push('.');
                    path.push_str(key);
                    let keep = if let Some(sub) = properties.and_then(|p| p.get(key)) {
                        let nulled = entry.is_null() && !flag(self.resolve(sub), "nullable");
                        if !nulled {
                            self.prune_at(entry, sub, path, false, unknown);
                        }
                        !nulled
                    } else if let Some(sub) = additional.filter(|a| a.is_object()) {
                        self.prune_at(entry, sub, path, false, unknown);
                        true
                    } else if free || (embedded && matches!(key.as_str(), "apiVersion" | "kind")) {
                        // Kept: type fields, preserved or free-form objects.
                        true
                    } else {
                        unknown.push(path.clone());
                        false
                    };
                    path.truncate(at);
                    keep
                });
            }
            Value::Array(items) => {
                if let Some(sub) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        let at = path.len();
                        let _ = write!(path, "[{i}]");
                        self.prune_at(item, sub, path, false, unknown);
                        path.truncate(at);
                    }
                }
            }
            _ => {}
        }
    }

    /// Fills in the `default`s of absent fields, as kube-apiserver does after pruning.
    pub fn default(&self, object: &mut Value) {
        self.default_at(object, &self.root);
    }

    fn default_at(&self, value: &mut Value, schema: &Value) {
        let schema = self.resolve(schema);
        match value {
            Value::Object(map) => {
                if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                    for (key, sub) in properties {
                        let sub_resolved = self.resolve(sub);
                        if let Some(default) = sub.get("default").or(sub_resolved.get("default")) {
                            let missing = match map.get(key) {
                                None => true,
                                Some(Value::Null) => !flag(sub_resolved, "nullable"),
                                Some(_) => false,
                            };
                            if missing {
                                map.insert(key.clone(), default.clone());
                            }
                        }
                    }
                    for (key, sub) in properties {
                        if let Some(entry) = map.get_mut(key) {
                            self.default_at(entry, sub);
                        }
                    }
                } else if let Some(sub) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    for entry in map.values_mut() {
                        self.default_at(entry, sub);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(sub) = schema.get("items") {
                    for item in items {
                        self.default_at(item, sub);
                    }
                }
            }
            _ => {}
        }
    }

    /// What is wrong with `object`, field by field, with kube-apiserver's messages. `metadata`
    /// is left to the metadata rules.
    pub fn validate(&self, object: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let schema = self.resolve(&self.root);
        if let (Some(map), Some(properties)) = (
            object.as_object(),
            schema.get("properties").and_then(Value::as_object),
        ) {
            for (key, sub) in properties {
                if matches!(key.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                if let Some(value) = map.get(key) {
                    self.validate_at(value, sub, key, &mut errors);
                }
            }
            self.check_required(map, schema, "", &mut errors);
        }
        errors
    }

    fn check_required(
        &self,
        map: &Map<String, Value>,
        schema: &Value,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) {
        for field in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if path.is_empty() && field == "metadata" {
                continue;
            }
            if !map.contains_key(field) {
                errors.push(FieldError::required(child(path, field), ""));
            }
        }
    }

    fn validate_at(&self, value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            if !flag(schema, "nullable") && schema.get("type").is_some() {
                errors.push(type_error(path, value, schema));
            }
            return;
        }
        if flag(schema, "x-kubernetes-int-or-string") {
            if !(value.is_string() || value.is_i64() || value.is_u64()) {
                errors.push(FieldError {
                    path: path.to_string(),
                    kind: FieldErrorKind::TypeInvalid(type_name(value).into()),
                    detail: format!(
                        "{path} in body must be of type integer,string: {:?}",
                        type_name(value)
                    ),
                });
                return;
            }
        } else if let Some(expected) = schema.get("type").and_then(Value::as_str) {
            let actual = type_name(value);
            let ok = match expected {
                "number" => value.is_number(),
                "integer" => {
                    value.is_i64()
                        || value.is_u64()
                        || value.as_f64().is_some_and(|f| f.fract() == 0.0)
                }
                other => other == actual,
            };
            if !ok {
                errors.push(type_error(path, value, schema));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let supported: Vec<String> = allowed.iter().map(Value::to_string).collect();
            errors.push(FieldError {
                path: path.to_string(),
                kind: FieldErrorKind::NotSupported(show(value)),
                detail: format!("supported values: {}", supported.join(", ")),
            });
        }
        match value {
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(0.0);
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                    let exclusive = flag(schema, "exclusiveMinimum");
                    if n < min || (exclusive && n == min) {
                        let relation = if exclusive {
                            "greater than"
                        } else {
                            "greater than or equal to"
                        };
                        errors.push(FieldError::invalid(
                            path,
                            show(value),
                            format!("{path} in body should be {relation} {}", show_number(min)),
                        ));
                    }
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                    let exclusive = flag(schema, "exclusiveMaximum");
                    if n > max || (exclusive && n == max) {
                        let relation = if exclusive {
                            "less than"
                        } else {
                            "less than or equal to"
                        };
                        errors.push(FieldError::invalid(
                            path,
                            show(value),
                            format!("{path} in body should be {relation} {}", show_number(max)),
                        ));
                    }
                }
                if let Some(multiple) = schema.get("multipleOf").and_then(Value::as_f64)
                    && multiple > 0.0
                    && (n / multiple).fract() != 0.0
                {
                    errors.push(FieldError::invalid(
                        path,
                        show(value),
                        format!(
                            "{path} in body should be a multiple of {}",
                            show_number(multiple)
                        ),
                    ));
                }
            }
            Value::String(s) => {
                let length = s.chars().count();
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && length as u64 > max
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorKind::TooLong,
                        detail: format!("may not be more than {max} bytes"),
                    });
                }
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && (length as u64) < min
                {
                    errors.push(FieldError::invalid(
                        path,
                        s.clone(),
                        format!("{path} in body should be at least {min} chars long"),
                    ));
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                    && let Some(re) = compiled(pattern)
                    && !re.is_match(s)
                {
                    errors.push(FieldError::invalid(
                        path,
                        s.clone(),
                        format!("{path} in body should match '{pattern}'"),
                    ));
                }
            }
            Value::Array(items) => {
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && items.len() as u64 > max
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorKind::TooMany,
                        detail: format!("must have at most {max} items"),
                    });
                }
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    errors.push(FieldError::invalid(
                        path,
                        format!("{} items", items.len()),
                        format!("{path} in body should have at least {min} items"),
                    ));
                }
                let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
                if list_type == Some("set") || flag(schema, "uniqueItems") {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            errors.push(FieldError::duplicate(index(path, i), show(item)));
                        }
                    }
                }
                if list_type == Some("map") {
                    let keys: Vec<&str> = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let key_of = |item: &Value| -> Vec<Value> {
                        keys.iter()
                            .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                            .collect()
                    };
                    for (i, item) in items.iter().enumerate() {
                        let key = key_of(item);
                        if items[..i].iter().any(|other| key_of(other) == key) {
                            let shown: Vec<String> = keys
                                .iter()
                                .zip(&key)
                                .map(|(k, v)| format!("\"{k}\":{v}"))
                                .collect();
                            errors.push(FieldError::duplicate(
                                index(path, i),
                                format!("map[{}]", shown.join(" ")),
                            ));
                        }
                    }
                }
                if let Some(sub) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.validate_at(item, sub, &index(path, i), errors);
                    }
                }
            }
            Value::Object(map) => {
                if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                    && map.len() as u64 > max
                {
                    errors.push(FieldError {
                        path: path.to_string(),
                        kind: FieldErrorKind::TooMany,
                        detail: format!("must have at most {max} items"),
                    });
                }
                if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                    && (map.len() as u64) < min
                {
                    errors.push(FieldError::invalid(
                        path,
                        format!("{} properties", map.len()),
                        format!("{path} in body should have at least {min} properties"),
                    ));
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                for (key, entry) in map {
                    if let Some(sub) = properties.and_then(|p| p.get(key)) {
                        self.validate_at(entry, sub, &child(path, key), errors);
                    } else if let Some(sub) = additional {
                        self.validate_at(entry, sub, &child(path, key), errors);
                    }
                }
                self.check_required(map, schema, path, errors);
            }
            _ => {}
        }
        // `allOf` parts other than the `$ref` already followed all apply.
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("$ref").is_none())
        {
            self.validate_at(value, part, path, errors);
        }
        for combinator in ["anyOf", "oneOf"] {
            if let Some(parts) = schema.get(combinator).and_then(Value::as_array) {
                let passing = parts
                    .iter()
                    .filter(|part| {
                        let mut sub = Vec::new();
                        self.validate_at(value, part, path, &mut sub);
                        sub.is_empty()
                    })
                    .count();
                let ok = if combinator == "anyOf" {
                    passing > 0
                } else {
                    passing == 1
                };
                if !ok {
                    let what = if combinator == "anyOf" {
                        "must validate at least one schema (anyOf)"
                    } else {
                        "must validate one and only one schema (oneOf)"
                    };
                    errors.push(FieldError::invalid(path, show(value), what));
                }
            }
        }
        if let Some(not) = schema.get("not") {
            let mut sub = Vec::new();
            self.validate_at(value, not, path, &mut sub);
            if sub.is_empty() {
                errors.push(FieldError::invalid(
                    path,
                    show(value),
                    "must not validate the schema (not)",
                ));
            }
        }
    }

    /// The schema of a field path (`.spec.replicas`), when the schema declares it.
    pub fn at_path(&self, path: &str) -> Option<&Value> {
        let mut node = self.resolve(&self.root);
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
        {
            node = self.resolve(node.get("properties")?.get(part)?);
        }
        Some(node)
    }

    /// The type errors of `object` only, for native kinds, whose bodies are decoded into typed
    /// structures by kube-apiserver.
    pub fn type_errors(&self, object: &Value) -> Vec<FieldError> {
        self.validate(object)
            .into_iter()
            .filter(|e| matches!(e.kind, FieldErrorKind::TypeInvalid(_)))
            .collect()
    }
}

fn type_error(path: &str, value: &Value, schema: &Value) -> FieldError {
    let expected = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    FieldError {
        path: path.to_string(),
        kind: FieldErrorKind::TypeInvalid(type_name(value).into()),
        detail: format!(
            "{path} in body must be of type {expected}: {:?}",
            type_name(value)
        ),
    }
}

/// A value as kube-apiserver shows it in messages.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn show_number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_compiled_once() {
        let first = compiled("^[a-z]+-once$").unwrap();
        let again = compiled("^[a-z]+-once$").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second use takes the compiled one"
        );
        assert!(compiled("(unclosed").is_none());
    }
    use expect_test::{Expect, expect};
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(
            json!({
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
                            "port": {"x-kubernetes-int-or-string": true},
                            "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "opt": {"type": "string", "nullable": true}
                        }
                    },
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                }
            }),
            Arc::new(Components::new()),
            true,
        )
    }

    #[track_caller]
    fn check(object: Value, expected: Expect) {
        let schema = schema();
        let mut object = object;
        let unknown = schema.prune(&mut object);
        schema.default(&mut object);
        let errors: Vec<String> = schema
            .validate(&object)
            .iter()
            .map(|e| format!("{} ({})", e, e.reason()))
            .collect();
        expected.assert_eq(&format!(
            "object: {object}\nunknown: {unknown:?}\nerrors:\n{}",
            errors.join("\n")
        ));
    }

    #[test]
    fn prunes_defaults_and_validates() {
        check(
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {}, "spec": {"size": 3, "colour": "x", "free": {"a": {"b": 1}}, "labels": {"a": "b"}, "opt": null, "name": null}, "extra": 1}),
            expect![[r#"
                object: {"apiVersion":"x/v1","kind":"W","metadata":{},"spec":{"color":"red","free":{"a":{"b":1}},"labels":{"a":"b"},"opt":null,"size":3}}
                unknown: [".extra", ".spec.colour"]
                errors:
            "#]],
        );
        check(
            json!({"spec": {"size": "big", "color": "blue", "port": 1.5, "name": "Abcdefg", "tags": ["a", "a"], "labels": {"a": 1}}}),
            expect![[r#"
                object: {"spec":{"color":"blue","labels":{"a":1},"name":"Abcdefg","port":1.5,"size":"big","tags":["a","a"]}}
                unknown: []
                errors:
                spec.color: Unsupported value: "blue": supported values: "red", "green" (FieldValueNotSupported)
                spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer" (FieldValueTypeInvalid)
                spec.name: Too long: may not be more than 5 bytes (FieldValueTooLong)
                spec.name: Invalid value: "Abcdefg": spec.name in body should match '^[a-z]+$' (FieldValueInvalid)
                spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number" (FieldValueTypeInvalid)
                spec.size: Invalid value: "string": spec.size in body must be of type integer: "string" (FieldValueTypeInvalid)
                spec.tags[1]: Duplicate value: "a" (FieldValueDuplicate)"#]],
        );
        check(
            json!({"spec": {"size": 0}}),
            expect![[r#"
                object: {"spec":{"color":"red","size":0}}
                unknown: []
                errors:
                spec.size: Invalid value: "0": spec.size in body should be greater than or equal to 1 (FieldValueInvalid)"#]],
        );
        check(
            json!({"spec": {}}),
            expect![[r#"
                object: {"spec":{"color":"red"}}
                unknown: []
                errors:
                spec.size: Required value (FieldValueRequired)"#]],
        );
    }
}
