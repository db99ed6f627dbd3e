//! Label selectors: kube-apiserver's grammar, checks, messages and matching.
//!
//! ```text
//! selector    ::= "" | requirement ("," requirement)*
//! requirement ::= ["!"] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=" | ">" | "<") VALUE ]
//! ```
//! `in` and `notin` are keywords only where an operator may stand: `x in (in)` is valid. A key
//! alone requires the label to exist; `!key` requires it not to. Values may be empty.

use std::collections::BTreeMap;
use std::fmt;

pub use crate::ParseError;

use crate::validation::{is_qualified_name, is_valid_label_value};
use crate::{FieldError, aggregate};

/// How a requirement relates a label to its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key=a`
    Equals,
    /// `key==a`
    DoubleEquals,
    /// `key!=a`
    NotEquals,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>1`
    GreaterThan,
    /// `key<1`
    LessThan,
}

/// One condition on one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted, without duplicates.
    values: Vec<String>,
}

/// A parsed label selector: requirements that must all hold, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Requirement {
    /// A requirement, checked as kube-apiserver checks one: a valid key, valid values, the
    /// right number of them for the operator, integers for `>` and `<`.
    pub fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, Vec<FieldError>> {
        let mut errors = Vec::new();
        let key_errors = is_qualified_name(key);
        if !key_errors.is_empty() {
            errors.push(FieldError::invalid("key", key, key_errors.join("; ")));
        }
        let shown = || format!("[{}]", values.join(" "));
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                errors.push(FieldError::invalid(
                    "values",
                    shown(),
                    "for 'in', 'notin' operators, values set can't be empty",
                ))
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errors.push(FieldError::invalid(
                    "values",
                    shown(),
                    "exact-match compatibility requires one single value",
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errors.push(FieldError::invalid(
                    "values",
                    shown(),
                    "values set must be empty for exists and does not exist",
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(FieldError::invalid(
                        "values",
                        shown(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(FieldError::invalid(
                            format!("values[{i}]"),
                            value,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let value_errors = is_valid_label_value(value);
            if !value_errors.is_empty() {
                errors.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    value,
                    value_errors.join("; "),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether labels (looked up by `get`) satisfy the requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let value = get(&self.key);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(actual)), [wanted]) = (value.map(str::parse::<i64>), &self.values[..])
                else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let values = self.values.join(",");
        match self.operator {
            Operator::Exists | Operator::DoesNotExist => Ok(()),
            Operator::Equals => write!(f, "={values}"),
            Operator::DoubleEquals => write!(f, "=={values}"),
            Operator::NotEquals => write!(f, "!={values}"),
            Operator::GreaterThan => write!(f, ">{values}"),
            Operator::LessThan => write!(f, "<{values}"),
            Operator::In => write!(f, " in ({values})"),
            Operator::NotIn => write!(f, " notin ({values})"),
        }
    }
}

impl Selector {
    /// The selector that selects everything (an empty one).
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Parses a selector, as `?labelSelector=` carries it.
    pub fn parse(text: &str) -> Result<Selector, ParseError> {
        let mut parser = Parser {
            tokens: lex(text),
            position: 0,
        };
        let mut requirements = parser.selector().map_err(ParseError)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector { requirements })
    }

    /// A selector from `matchLabels`-style pairs (every key equal to its value).
    pub fn from_pairs(pairs: &BTreeMap<String, String>) -> Result<Selector, Vec<FieldError>> {
        let requirements = pairs
            .iter()
            .map(|(k, v)| Requirement::new(k, Operator::Equals, vec![v.clone()]))
            .collect::<Result<_, _>>()?;
        Ok(Selector { requirements })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether labels (looked up by `get`) satisfy every requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        self.requirements.iter().all(|r| r.matches(get))
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches_map(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches(|k| labels.get(k).map(String::as_str))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    End,
    OpenPar,
    ClosedPar,
    Comma,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    In,
    NotIn,
    Identifier(String),
}

impl Token {
    /// The text the token stands for, as messages quote it.
    fn literal(&self) -> &str {
        match self {
            Token::End => "",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::Not => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Identifier(s) => s,
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(is_space);
        let Some(c) = rest.chars().next() else {
            tokens.push(Token::End);
            return tokens;
        };
        if is_special(c) {
            let (token, len) = match (c, rest[1..].chars().next()) {
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('!', _) => (Token::Not, 1),
                ('=', _) => (Token::Equals, 1),
                ('(', _) => (Token::OpenPar, 1),
                (')', _) => (Token::ClosedPar, 1),
                (',', _) => (Token::Comma, 1),
                ('>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            tokens.push(token);
            rest = &rest[len..];
            continue;
        }
        let end = rest
            .find(|c| is_special(c) || is_space(c))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        tokens.push(match word {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier(word.to_string()),
        });
        rest = &rest[end..];
    }
}

/// Where a token is read: `in`/`notin` are keywords only where an operator may stand.
#[derive(Clone, Copy)]
enum Context {
    Operator,
    Values,
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

type Parsed<T> = Result<T, String>;

impl Parser {
    fn peek(&self, context: Context) -> Token {
        let token = self.tokens[self.position.min(self.tokens.len() - 1)].clone();
        match (context, token) {
            (Context::Values, t @ (Token::In | Token::NotIn)) => {
                Token::Identifier(t.literal().into())
            }
            (_, t) => t,
        }
    }

    fn next(&mut self, context: Context) -> Token {
        let token = self.peek(context);
        self.position = (self.position + 1).min(self.tokens.len() - 1);
        token
    }

    fn selector(&mut self) -> Parsed<Vec<Requirement>> {
        let mut requirements = Vec::new();
        loop {
            match self.peek(Context::Values) {
                Token::Identifier(_) | Token::Not => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    match self.next(Context::Values) {
                        Token::End => return Ok(requirements),
                        Token::Comma => match self.peek(Context::Values) {
                            Token::Identifier(_) | Token::Not => {}
                            t => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        },
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Parsed<Requirement> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        let (operator, values) = match inferred {
            Some(operator) => (operator, Vec::new()),
            None => {
                let operator = self.operator()?;
                let values = match operator {
                    Operator::In | Operator::NotIn => self.value_set()?,
                    _ => self.exact_value()?,
                };
                (operator, values)
            }
        };
        Requirement::new(&key, operator, values).map_err(|errors| aggregate(&errors))
    }

    fn key_and_inferred_operator(&mut self) -> Parsed<(String, Option<Operator>)> {
        let mut operator = None;
        let mut token = self.next(Context::Values);
        if token == Token::Not {
            operator = Some(Operator::DoesNotExist);
            token = self.next(Context::Values);
        }
        let Token::Identifier(key) = token else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        let errors = is_qualified_name(&key);
        if !errors.is_empty() {
            return Err(FieldError::invalid("", &key, errors.join("; ")).to_string());
        }
        if operator.is_none() && matches!(self.peek(Context::Values), Token::End | Token::Comma) {
            operator = Some(Operator::Exists);
        }
        Ok((key, operator))
    }

    fn operator(&mut self) -> Parsed<Operator> {
        Ok(match self.next(Context::Operator) {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ));
            }
        })
    }

    /// `( VALUES )`; empty values are allowed anywhere in the list.
    fn value_set(&mut self) -> Parsed<Vec<String>> {
        let open = self.next(Context::Values);
        if open != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        let first = self.peek(Context::Values);
        match first {
            Token::Identifier(_) | Token::Comma => {
                let values = self.value_list()?;
                if self.next(Context::Values) != Token::ClosedPar {
                    return Err(format!("found '{}', expected: ')'", first.literal()));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.next(Context::Values);
                Ok(vec![String::new()])
            }
            t => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )),
        }
    }

    fn value_list(&mut self) -> Parsed<Vec<String>> {
        let mut values: Vec<String> = Vec::new();
        loop {
            match self.next(Context::Values) {
                Token::Identifier(value) => {
                    values.push(value);
                    match self.peek(Context::Values) {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(values),
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek(Context::Values) {
                        Token::ClosedPar => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.next(Context::Values);
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn exact_value(&mut self) -> Parsed<Vec<String>> {
        if matches!(self.peek(Context::Values), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.next(Context::Values) {
            Token::Identifier(value) => Ok(vec![value]),
            t => Err(format!("found '{}', expected: identifier", t.literal())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    /// Parses `selector` and shows it in canonical form, or its error.
    #[track_caller]
    fn check(selector: &str, expected: Expect) {
        let shown = match Selector::parse(selector) {
            Ok(s) => format!("ok: {s}"),
            Err(e) => format!("error: {e}"),
        };
        expected.assert_eq(&shown);
    }

    #[test]
    fn grammar() {
        check("", expect!["ok: "]);
        check("  ", expect!["ok: "]);
        check("app", expect!["ok: app"]);
        check("!app", expect!["ok: !app"]);
        check("app=web", expect!["ok: app=web"]);
        check("app == web", expect!["ok: app==web"]);
        check("app!=web", expect!["ok: app!=web"]);
        check("app=", expect!["ok: app="]);
        check(
            "tier in (b,a,a), env notin ( prod )",
            expect!["ok: env notin (prod),tier in (a,b)"],
        );
        check("x in (in)", expect!["ok: x in (in)"]);
        check(
            "x in (foo,,baz),y,z notin ()",
            expect!["ok: x in (,baz,foo),y,z notin ()"],
        );
        check("x in (,a)", expect!["ok: x in (,a)"]);
        check("x in (a,)", expect!["ok: x in (,a)"]);
        check("replicas>3,age<10", expect!["ok: age<10,replicas>3"]);
        check(
            "eve.lfedge.org/device=dev-1",
            expect!["ok: eve.lfedge.org/device=dev-1"],
        );
    }

    #[test]
    fn errors() {
        check(
            "a b",
            expect![
                "error: unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
            ],
        );
        check(
            "a in b",
            expect!["error: unable to parse requirement: found 'b' expected: '('"],
        );
        check(
            "a in (b",
            expect!["error: unable to parse requirement: found '', expected: ',' or ')'"],
        );
        check(
            "a=b c",
            expect!["error: found 'c', expected: ',' or 'end of string'"],
        );
        check(
            "a,",
            expect!["error: found '', expected: identifier after ','"],
        );
        check(
            ",a",
            expect!["error: found ',', expected: !, identifier, or 'end of string'"],
        );
        check(
            "=a",
            expect!["error: found '=', expected: !, identifier, or 'end of string'"],
        );
        check(
            "!a=b",
            expect!["error: found '=', expected: ',' or 'end of string'"],
        );
        check(
            "a=(b)",
            expect!["error: unable to parse requirement: found '(', expected: identifier"],
        );
        check(
            "a>b",
            expect![[
                r#"error: unable to parse requirement: values[0]: Invalid value: "b": for 'Gt', 'Lt' operators, the value must be an integer"#
            ]],
        );
        check(
            "-a",
            expect![[
                r#"error: unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#
            ]],
        );
        check(
            "a=b_",
            expect![[
                r#"error: unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#
            ]],
        );
    }

    #[track_caller]
    fn check_match(selector: &str, labels: &[(&str, &str)], expected: bool) {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let selector = Selector::parse(selector).unwrap();
        assert_eq!(
            selector.matches_map(&labels),
            expected,
            "{selector} on {labels:?}"
        );
    }

    #[test]
    fn matching() {
        check_match("", &[], true);
        check_match("app", &[("app", "")], true);
        check_match("app", &[], false);
        check_match("!app", &[], true);
        check_match("app=web", &[("app", "web")], true);
        check_match("app=web", &[("app", "db")], false);
        check_match("app!=web", &[], true);
        check_match("app!=web", &[("app", "db")], true);
        check_match("app in (a,b)", &[("app", "b")], true);
        check_match("app notin (a,b)", &[], true);
        check_match("app notin (a,b)", &[("app", "a")], false);
        check_match("n>3", &[("n", "4")], true);
        check_match("n>3", &[("n", "x")], false);
        check_match("n<3", &[], false);
        check_match("app=web,tier", &[("app", "web")], false);
        check_match("app=", &[("app", "")], true);
    }
}
