//! `as=Table` responses: the rows `kubectl get` prints, computed by the server.

use serde_json::{Value, json};

use crate::catalog::{Kind, Printer};

/// What each row carries of its object (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// The object's metadata, as a PartialObjectMetadata (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// From the `includeObject` parameter.
    pub fn parse(value: Option<&str>) -> Result<Include, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Include::Metadata),
            "None" => Ok(Include::None),
            "Object" => Ok(Include::Object),
            other => Err(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// Whether a kind's table starts with the name, as most do; a printer that places the name
/// itself (a column of format `name`, as Events' last one) has no leading one.
fn leading_name(kind: &Kind) -> bool {
    !kind.printer.columns().iter().any(|c| c.format == "name")
}

/// The column definitions of a kind's table.
pub fn columns(kind: &Kind) -> Vec<Value> {
    let mut columns = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0,
    })];
    if !leading_name(kind) {
        columns.clear();
    }
    for column in kind.printer.columns() {
        columns.push(json!({
            "name": column.name,
            "type": column.type_,
            "format": column.format,
            "description": column.description,
            "priority": column.priority,
        }));
    }
    columns
}

/// One row of the table.
pub fn row(kind: &Kind, object: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let name = crate::native::storage_class_display_name(object)
        .filter(|_| kind.kind == "StorageClass" && kind.native)
        .unwrap_or_else(|| registry::object::name(object).to_string());
    let mut cells = vec![Value::String(name)];
    if !leading_name(kind) {
        cells.clear();
    }
    let raw: Vec<Value> = match &kind.printer {
        Printer::Native { cells, .. } => cells(object),
        Printer::Paths { columns, paths } => paths
            .iter()
            .zip(columns)
            .map(|(path, column)| {
                let found = jsonpath(object, path);
                match found.as_slice() {
                    [] => Value::Null,
                    [one] => match (column.type_.as_str(), one) {
                        ("string", Value::String(_)) => one.clone(),
                        ("string", Value::Null) => Value::Null,
                        ("string", other) => Value::String(other.to_string()),
                        _ => one.clone(),
                    },
                    many => Value::String(
                        many.iter()
                            .map(|v| match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                }
            })
            .collect(),
    };
    for (cell, column) in raw.into_iter().zip(kind.printer.columns()) {
        cells.push(if column.type_ == "date" {
            match cell
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            {
                Some(time) => Value::String(human_duration(now.duration_since(time))),
                None if cell.is_null() => Value::String("<unknown>".into()),
                None => cell,
            }
        } else {
            cell
        });
    }
    let mut row = json!({"cells": cells});
    match include {
        Include::None => {}
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"],
            });
        }
        Include::Object => row["object"] = object.clone(),
    }
    row
}

/// A table of `objects`.
pub fn table(
    kind: &Kind,
    objects: &[Value],
    metadata: Value,
    include: Include,
    with_headers: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects.iter().map(|o| row(kind, o, include, now)).collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": rows,
    });
    if with_headers {
        table["columnDefinitions"] = Value::Array(columns(kind));
    } else {
        table["columnDefinitions"] = Value::Null;
    }
    table
}

/// A duration as `kubectl get` shows ages (`45s`, `5m30s`, `3h`, `2d4h`), as kube-apiserver
/// computes them.
pub fn human_duration(duration: jiff::SignedDuration) -> String {
    let seconds = duration.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
/// `.a[?(@.type=="Ready")].status`, optionally in braces.
pub fn jsonpath(object: &Value, path: &str) -> Vec<Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut current: Vec<&Value> = vec![object];
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            rest = &after[end..];
            if field.is_empty() {
                continue;
            }
            current = current.into_iter().filter_map(|v| v.get(field)).collect();
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Vec::new();
            };
            let inner = &after[..end];
            rest = &after[end + 1..];
            if inner == "*" {
                current = current
                    .into_iter()
                    .flat_map(|v| match v {
                        Value::Array(items) => items.iter().collect::<Vec<_>>(),
                        Value::Object(map) => map.values().collect(),
                        _ => Vec::new(),
                    })
                    .collect();
            } else if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
            {
                let Some((left, right)) = filter.split_once("==") else {
                    return Vec::new();
                };
                let field = left.trim().trim_start_matches('@');
                let wanted = right.trim().trim_matches(|c| c == '"' || c == '\'');
                current = current
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter(|item| {
                        jsonpath(item, field).iter().any(|v| match v {
                            Value::String(s) => s == wanted,
                            other => *other == wanted,
                        })
                    })
                    .collect();
            } else if let Ok(i) = inner.parse::<i64>() {
                current = current
                    .into_iter()
                    .filter_map(Value::as_array)
                    .filter_map(|items| {
                        let i = if i < 0 { items.len() as i64 + i } else { i };
                        usize::try_from(i).ok().and_then(|i| items.get(i))
                    })
                    .collect();
            } else {
                let field = inner.trim_matches(|c| c == '"' || c == '\'');
                current = current.into_iter().filter_map(|v| v.get(field)).collect();
            }
        } else {
            return Vec::new();
        }
    }
    current.into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_paths() {
        let d = |s: i64| human_duration(jiff::SignedDuration::from_secs(s));
        assert_eq!(
            [
                d(5),
                d(119),
                d(150),
                d(600),
                d(3 * 3600 + 60),
                d(30 * 3600),
                d(3 * 86400 + 3600),
                d(400 * 86400),
                d(800 * 86400)
            ],
            [
                "5s", "119s", "2m30s", "10m", "3h1m", "30h", "3d1h", "400d", "2y70d"
            ]
        );
        let object = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}, "spec": {"ports": [1, 2]}});
        assert_eq!(
            jsonpath(&object, ".status.conditions[?(@.type==\"Ready\")].status"),
            [json!("True")]
        );
        assert_eq!(jsonpath(&object, "{.spec.ports[1]}"), [json!(2)]);
        assert_eq!(jsonpath(&object, ".spec.ports[*]"), [json!(1), json!(2)]);
        assert!(jsonpath(&object, ".spec.missing").is_empty());
    }
}
