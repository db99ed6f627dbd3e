//! The YAML text that `Any` values (vendor extensions, defaults, examples, enums) carry.

use serde_json::Value;

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
    use serde_json::json;

    use super::*;

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
}
