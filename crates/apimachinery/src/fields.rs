//! Field selectors: `?fieldSelector=metadata.name=a,status.phase!=Done`, with kube-apiserver's
//! grammar (`=`, `==`, `!=`; `\`, `,` and `=` escaped with a backslash in values) and messages.
//! Which fields a kind supports is the registry's business, not this module's.

use std::fmt;

pub use crate::ParseError;

/// One condition on one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The field, as written (`metadata.name`).
    pub field: String,
    /// Whether the field must equal the value (or differ from it).
    pub equal: bool,
    /// The value, unescaped.
    pub value: String,
}

/// A parsed field selector: terms that must all hold, sorted as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// Parses a selector.
    pub fn parse(text: &str) -> Result<Selector, ParseError> {
        let mut parts = split_terms(text);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, op, raw)) = split_term(&part) else {
                return Err(ParseError(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            terms.push(Term {
                field: field.to_string(),
                equal: op != "!=",
                value: unescape(raw)?,
            });
        }
        Ok(Selector { terms })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Whether an object's fields (looked up by `get`; a missing field counts as "") satisfy
    /// every term.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.terms
            .iter()
            .all(|t| (get(&t.field).unwrap_or("") == t.value) == t.equal)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equal { "=" } else { "!=" };
            write!(f, "{}{op}{}", t.field, escape(&t.value))?;
        }
        Ok(())
    }
}

/// Escapes a value for a field selector.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

/// Splits at commas not escaped with a backslash (escapes are kept for `unescape`).
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let term = terms.last_mut().expect("never empty");
        match c {
            '\\' => {
                term.push(c);
                if let Some(next) = chars.next() {
                    term.push(next);
                }
            }
            ',' => terms.push(String::new()),
            _ => term.push(c),
        }
    }
    if text.is_empty() { Vec::new() } else { terms }
}

/// Splits a term at its first operator; the field part cannot escape anything.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape(raw: &str) -> Result<String, ParseError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                other => {
                    let sequence: String = std::iter::once('\\').chain(other).collect();
                    return Err(ParseError(format!(
                        "invalid field selector: invalid escape sequence: {sequence}"
                    )));
                }
            },
            ',' | '=' => {
                return Err(ParseError(format!("invalid field selector: unescaped {c}")));
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    #[track_caller]
    fn check(selector: &str, expected: Expect) {
        let shown = match Selector::parse(selector) {
            Ok(s) => format!("ok: {s}"),
            Err(e) => format!("error: {e}"),
        };
        expected.assert_eq(&shown);
    }

    #[test]
    fn grammar_and_errors() {
        check("", expect!["ok: "]);
        check("metadata.name=a", expect!["ok: metadata.name=a"]);
        check(
            "metadata.name==a,metadata.namespace!=b",
            expect!["ok: metadata.name=a,metadata.namespace!=b"],
        );
        check("a=,b!=", expect!["ok: a=,b!="]);
        check(r"a=x\,y\=z\\", expect![[r"ok: a=x\,y\=z\\"]]);
        check(
            "a",
            expect!["error: invalid selector: 'a'; can't understand 'a'"],
        );
        check(
            "a=b=c",
            expect!["error: invalid field selector: unescaped ="],
        );
        check(
            r"a=\q",
            expect![[r"error: invalid field selector: invalid escape sequence: \q"]],
        );
        check(
            r"a=b\",
            expect![[r"error: invalid field selector: invalid escape sequence: \"]],
        );
    }

    #[test]
    fn matching() {
        let s = Selector::parse("metadata.name=a,status.phase!=Done").unwrap();
        let fields = |name: &'static str, phase: Option<&'static str>| {
            move |f: &str| match f {
                "metadata.name" => Some(name),
                "status.phase" => phase,
                _ => None,
            }
        };
        assert!(s.matches(fields("a", None)));
        assert!(s.matches(fields("a", Some("Running"))));
        assert!(!s.matches(fields("a", Some("Done"))));
        assert!(!s.matches(fields("b", None)));
    }
}
