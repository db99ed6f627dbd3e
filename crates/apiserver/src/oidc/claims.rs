//! From a verified ID token's claims to a [`User`], as kube-apiserver maps them: the user name
//! is the username claim behind a prefix, the groups the groups claim (a string or an array of
//! strings) each behind the groups prefix, plus `system:authenticated`; required claims must be
//! present with their value; an `email` username needs `email_verified` true when the token
//! carries it.

use serde_json::{Map, Value};

use crate::auth::User;

/// How claims become a user (the resolved `--oidc-username-*`, `--oidc-groups-*` and
/// `--oidc-required-claim` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The claim holding the user name (`sub` by default).
    pub username_claim: String,
    /// What goes before the user name (already resolved: `ISSUER#` by default for a claim other
    /// than `email`, empty for `-`).
    pub username_prefix: String,
    /// The claim holding the groups, if groups are read at all.
    pub groups_claim: Option<String>,
    /// What goes before each group.
    pub groups_prefix: String,
    /// Claims the token must carry, each with exactly this string value.
    pub required_claims: Vec<(String, String)>,
}

impl ClaimMapping {
    /// The user `claims` name, or why they name none (a missing or non-string username claim,
    /// an unverified email, a groups claim of another shape, a required claim absent or
    /// different).
    pub fn user(&self, claims: &Map<String, Value>) -> Result<User, String> {
        for (key, value) in &self.required_claims {
            match claims.get(key) {
                None => return Err(format!("the required claim {key:?} is missing")),
                Some(Value::String(found)) if found == value => {}
                Some(found) => {
                    return Err(format!(
                        "the required claim {key:?} is {found}, not {value:?}"
                    ));
                }
            }
        }
        let claim = &self.username_claim;
        let name = match claims.get(claim) {
            None => {
                return Err(format!(
                    "the username claim {claim:?} (--oidc-username-claim) is missing"
                ));
            }
            Some(Value::String(name)) if !name.is_empty() => name,
            Some(Value::String(_)) => {
                return Err(format!("the username claim {claim:?} is empty"));
            }
            Some(other) => {
                return Err(format!(
                    "the username claim {claim:?} is {other}, not a string"
                ));
            }
        };
        if claim == "email" {
            match claims.get("email_verified") {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => {
                    return Err(format!(
                        "the email {name:?} is not verified (email_verified is false)"
                    ));
                }
                Some(other) => {
                    return Err(format!("email_verified is {other}, not a boolean"));
                }
            }
        }
        let mut groups = Vec::new();
        if let Some(groups_claim) = &self.groups_claim {
            let prefixed = |group: &str| format!("{}{group}", self.groups_prefix);
            match claims.get(groups_claim) {
                None | Some(Value::Null) => {}
                Some(Value::String(group)) => groups.push(prefixed(group)),
                Some(Value::Array(items)) => {
                    for item in items {
                        let Some(group) = item.as_str() else {
                            return Err(format!(
                                "the groups claim {groups_claim:?} holds {item}, not only strings"
                            ));
                        };
                        groups.push(prefixed(group));
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "the groups claim {groups_claim:?} is {other}, neither a string nor an array of strings"
                    ));
                }
            }
        }
        groups.push("system:authenticated".into());
        Ok(User {
            name: format!("{}{name}", self.username_prefix),
            groups,
            ..User::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            username_claim: "sub".into(),
            username_prefix: "https://issuer#".into(),
            groups_claim: Some("groups".into()),
            groups_prefix: "oidc:".into(),
            required_claims: Vec::new(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn oidc_claims_map_to_a_prefixed_user_and_groups() {
        let user = mapping()
            .user(&claims(json!({"sub": "alice", "groups": ["ops", "eve"]})))
            .unwrap();
        assert_eq!(user.name, "https://issuer#alice");
        assert_eq!(
            user.groups,
            ["oidc:ops", "oidc:eve", "system:authenticated"]
        );
        assert!(user.uid.is_empty() && user.extra.is_empty());
        // One group as a string; no groups claim at all.
        let user = mapping()
            .user(&claims(json!({"sub": "bob", "groups": "ops"})))
            .unwrap();
        assert_eq!(user.groups, ["oidc:ops", "system:authenticated"]);
        let user = mapping().user(&claims(json!({"sub": "bob"}))).unwrap();
        assert_eq!(user.groups, ["system:authenticated"]);
        // Without a groups claim configured, groups in the token are ignored.
        let user = ClaimMapping {
            groups_claim: None,
            ..mapping()
        }
        .user(&claims(json!({"sub": "bob", "groups": ["ops"]})))
        .unwrap();
        assert_eq!(user.groups, ["system:authenticated"]);
    }

    #[test]
    fn oidc_email_usernames_need_a_verified_email() {
        let email = ClaimMapping {
            username_claim: "email".into(),
            username_prefix: String::new(),
            ..mapping()
        };
        let user = email
            .user(&claims(
                json!({"email": "a@example.com", "email_verified": true}),
            ))
            .unwrap();
        assert_eq!(user.name, "a@example.com");
        // Absent email_verified is accepted, as kube-apiserver accepts it.
        assert!(
            email
                .user(&claims(json!({"email": "a@example.com"})))
                .is_ok()
        );
        let error = email
            .user(&claims(
                json!({"email": "a@example.com", "email_verified": false}),
            ))
            .unwrap_err();
        assert!(error.contains("not verified"), "{error}");
        let error = email
            .user(&claims(
                json!({"email": "a@example.com", "email_verified": "true"}),
            ))
            .unwrap_err();
        assert!(error.contains("not a boolean"), "{error}");
        // Another username claim does not look at email_verified.
        assert!(
            mapping()
                .user(&claims(json!({"sub": "a", "email_verified": false})))
                .is_ok()
        );
    }

    #[test]
    fn oidc_claims_that_name_nobody_are_refused() {
        let required = ClaimMapping {
            required_claims: vec![("tenant".into(), "a".into())],
            ..mapping()
        };
        for (mapping, claims_value, words) in [
            (
                mapping(),
                json!({}),
                "\"sub\" (--oidc-username-claim) is missing",
            ),
            (mapping(), json!({"sub": 5}), "is 5, not a string"),
            (mapping(), json!({"sub": ""}), "is empty"),
            (
                mapping(),
                json!({"sub": "a", "groups": {"x": 1}}),
                "neither a string nor an array of strings",
            ),
            (
                mapping(),
                json!({"sub": "a", "groups": ["ops", 3]}),
                "holds 3, not only strings",
            ),
            (
                required.clone(),
                json!({"sub": "a"}),
                "the required claim \"tenant\" is missing",
            ),
            (
                required.clone(),
                json!({"sub": "a", "tenant": "b"}),
                "is \"b\", not \"a\"",
            ),
        ] {
            let error = mapping.user(&claims(claims_value.clone())).unwrap_err();
            assert!(error.contains(words), "{claims_value}: {error}");
        }
        assert!(
            required
                .user(&claims(json!({"sub": "a", "tenant": "a"})))
                .is_ok()
        );
    }
}
