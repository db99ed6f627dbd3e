//! Static bearer tokens from a file, as kube-apiserver's `--token-auth-file` reads it: one CSV
//! line a token, `token,user,uid[,"group1,group2"]`. A request without a client certificate
//! that carries `Authorization: Bearer TOKEN` is that user; an unknown token is 401.

use std::collections::HashMap;
use std::path::Path;

use crate::auth::User;

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `token,user,uid[,"groups"]`.
    #[error(
        "the token file {path}, line {line}: {why}; each line is token,user,uid[,\"group1,group2\"]"
    )]
    Line {
        /// The file.
        path: String,
        /// The line number (from 1).
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The tokens of a token file.
#[derive(Clone, Debug, Default)]
pub struct StaticTokens {
    users: HashMap<String, User>,
}

/// Splits a CSV line (fields may be double-quoted, `""` is a quote inside one).
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    out.push(field);
    Ok(out)
}

impl StaticTokens {
    /// Parses a token file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<StaticTokens, TokenFileError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |why: String| TokenFileError::Line {
                path: path.into(),
                line: i + 1,
                why,
            };
            let parts = fields(line).map_err(error)?;
            if parts.len() < 3 {
                return Err(error(format!("{} fields, at least 3 needed", parts.len())));
            }
            let (token, name) = (parts[0].trim(), parts[1].trim());
            if token.is_empty() || name.is_empty() {
                return Err(error("the token and the user must not be empty".into()));
            }
            let mut groups: Vec<String> = parts
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            groups.push("system:authenticated".into());
            if users
                .insert(
                    token.to_string(),
                    User {
                        name: name.to_string(),
                        uid: parts[2].trim().to_string(),
                        groups,
                        ..User::default()
                    },
                )
                .is_some()
            {
                return Err(error("this token is on an earlier line too".into()));
            }
        }
        Ok(StaticTokens { users })
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<StaticTokens, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        StaticTokens::parse(&text, &path.display().to_string())
    }

    /// The user of a token.
    pub fn user(&self, token: &str) -> Option<User> {
        self.users.get(token).cloned()
    }
}

#[async_trait::async_trait]
impl crate::auth::TokenAuthenticator for StaticTokens {
    async fn authenticate(&self, token: &str) -> Result<Option<User>, String> {
        Ok(self.user(token))
    }
}

/// The bearer token of a request, if it carries one.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_as_kube_apiserver_reads_them() {
        let tokens = StaticTokens::parse(
            "# comment\nt1,alice,u1\nt2,bob,u2,\"ops,eve:fleet\"\n\nt3,\"carol, jr\",u3,dev\n",
            "tokens.csv",
        )
        .unwrap();
        let alice = tokens.user("t1").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["system:authenticated"]);
        let bob = tokens.user("t2").unwrap();
        assert_eq!(bob.groups, ["ops", "eve:fleet", "system:authenticated"]);
        assert_eq!(tokens.user("t3").unwrap().name, "carol, jr");
        assert!(tokens.user("nope").is_none());
        for (text, words) in [
            ("t1,alice\n", "line 1: 2 fields, at least 3 needed"),
            (
                "t1,alice,u1\nt1,bob,u2\n",
                "line 2: this token is on an earlier line too",
            ),
            ("t1,\"alice,u1\n", "a quoted field is not closed"),
            (",alice,u1\n", "must not be empty"),
        ] {
            let error = StaticTokens::parse(text, "tokens.csv")
                .unwrap_err()
                .to_string();
            assert!(error.contains(words), "{text:?}: {error}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, "Bearer  t1 ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("t1"));
        headers.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
