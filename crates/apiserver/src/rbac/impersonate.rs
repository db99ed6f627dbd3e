//! Impersonation, as kube-apiserver's filter does it: `Impersonate-User` (a service account as
//! `system:serviceaccount:NS:NAME`), `Impersonate-Group` (repeated), `Impersonate-Uid` and
//! `Impersonate-Extra-KEY` (what kubectl's `--as`, `--as-group` and `--as-uid` send) are each
//! authorized as the `impersonate` verb on `users` (or `serviceaccounts`), `groups`, `uids` and
//! `userextras/KEY`; then the request runs as the user impersonated, with
//! `system:authenticated` (or a service account's groups). A refusal is a 403 naming the
//! target. The uid and the extras (their keys percent-decoded, as kube-apiserver reads them)
//! are carried to the user impersonated.

use http::HeaderMap;
use registry::ApiError;

use crate::auth::{Attributes, User, forbidden_message};
use crate::server::ApiServer;
use crate::status::Subject;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

fn values(headers: &HeaderMap, name: &str) -> Result<Vec<String>, ApiError> {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::BadRequest(format!("the {name} header is not text")))
        })
        .collect()
}

fn impersonating(group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        verb: "impersonate".into(),
        resource_request: true,
        group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        path: String::new(),
    }
}

/// The user a request runs as: `user`, or whom it impersonates if `user` may. The error is the
/// refusal and what it is about.
pub(crate) fn impersonate(
    server: &ApiServer,
    user: User,
    headers: &HeaderMap,
) -> Result<User, Box<(ApiError, Subject)>> {
    let plain = |e: ApiError| Box::new((e, Subject::default()));
    let names = values(headers, USER).map_err(plain)?;
    let groups = values(headers, GROUP).map_err(plain)?;
    let uids = values(headers, UID).map_err(plain)?;
    if uids.len() > 1 {
        return Err(plain(ApiError::BadRequest(
            "more than one Impersonate-Uid header: a user has one uid".into(),
        )));
    }
    let mut extras = Vec::new();
    for name in headers.keys() {
        if let Some(key) = name.as_str().strip_prefix(EXTRA) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8()
                .map_err(|_| {
                    plain(ApiError::BadRequest(format!(
                        "the header {name} does not name a UTF-8 extra key once percent-decoded"
                    )))
                })?
                .into_owned();
            for value in values(headers, name.as_str()).map_err(plain)? {
                extras.push((key.clone(), value));
            }
        }
    }
    let Some(name) = names.first() else {
        if groups.is_empty() && uids.is_empty() && extras.is_empty() {
            return Ok(user);
        }
        return Err(plain(ApiError::BadRequest(
            "requested Impersonate-Group, Impersonate-Uid or Impersonate-Extra without impersonating a user".into(),
        )));
    };
    let mut checks = Vec::new();
    let service_account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, account)| !ns.is_empty() && !account.is_empty());
    match service_account {
        Some((ns, account)) => {
            checks.push(impersonating("", "serviceaccounts", "", ns, account));
        }
        None => checks.push(impersonating("", "users", "", "", name)),
    }
    for group in &groups {
        checks.push(impersonating("", "groups", "", "", group));
    }
    for (key, value) in &extras {
        checks.push(impersonating(
            "authentication.k8s.io",
            "userextras",
            key,
            "",
            value,
        ));
    }
    for uid in &uids {
        checks.push(impersonating("authentication.k8s.io", "uids", "", "", uid));
    }
    for attributes in &checks {
        if let Err(reason) = server.authorizer.authorize(&user, attributes) {
            let subject = Subject {
                group: attributes.group.clone(),
                resource: attributes.resource.clone(),
                kind: String::new(),
                name: attributes.name.clone(),
            };
            let message = forbidden_message(&user, attributes, &reason);
            return Err(Box::new((ApiError::Forbidden(message), subject)));
        }
    }
    let mut impersonated = groups;
    if let Some((ns, _)) = service_account
        && impersonated.is_empty()
    {
        impersonated = vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    if name == "system:anonymous" {
        if !impersonated.iter().any(|g| g == "system:unauthenticated") {
            impersonated.push("system:unauthenticated".into());
        }
    } else if !impersonated
        .iter()
        .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
    {
        impersonated.push("system:authenticated".into());
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (key, value) in extras {
        extra.entry(key).or_default().push(value);
    }
    Ok(User {
        name: name.clone(),
        uid: uids.into_iter().next().unwrap_or_default(),
        groups: impersonated,
        extra,
    })
}
