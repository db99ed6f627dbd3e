//! Authentication (who asks: client certificates, CN = user and O = groups) and authorization
//! (may they: a layer with its own interface, which RBAC implements (`rbac/`); refusals worded
//! as kube-apiserver words them).

use std::collections::BTreeMap;

use x509_parser::prelude::{FromDer, X509Certificate};

/// An authenticated user, as Kubernetes' `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// A unique identifier, when the authenticator knows one (a ServiceAccount's uid, a token
    /// file's uid column); empty otherwise.
    pub uid: String,
    /// The groups, `system:authenticated` included.
    pub groups: Vec<String>,
    /// What else the authenticator says (`authentication.kubernetes.io/credential-id`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Says who a bearer token stands for: `Ok(Some(user))` for a valid token of this
/// authenticator's, `Ok(None)` for a token it does not recognise (another may), `Err(why)` for
/// one it recognises as its own but refuses (expired, badly signed, wrong audience). A request
/// whose token no authenticator accepts is 401.
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync {
    /// Authenticates `token`.
    async fn authenticate(&self, token: &str) -> Result<Option<User>, String>;
}

impl User {
    /// The user a verified client certificate names, if it names one and is for client
    /// authentication (the clientAuth extended key usage; a certificate without it, such as a
    /// serving certificate from the same authority, authenticates no one).
    pub fn from_certificate(der: &[u8]) -> Option<User> {
        let (_, certificate) = X509Certificate::from_der(der).ok()?;
        let usage = certificate.extended_key_usage().ok()??;
        if !usage.value.client_auth {
            return None;
        }
        let subject = certificate.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?
            .to_string();
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect();
        groups.push("system:authenticated".into());
        Some(User {
            name,
            groups,
            ..User::default()
        })
    }

    /// The user as Kubernetes' `UserInfo` (`username`, `uid`, `groups`, `extra`; empty ones
    /// left out).
    pub fn info(&self) -> serde_json::Value {
        let mut info = serde_json::json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = self.uid.clone().into();
        }
        if !self.extra.is_empty() {
            info["extra"] = serde_json::json!(self.extra);
        }
        info
    }

    /// The anonymous user.
    pub fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..User::default()
        }
    }

    /// Whether the user is anonymous.
    pub fn is_anonymous(&self) -> bool {
        self.name == "system:anonymous"
    }
}

/// What a request wants to do, as Kubernetes' authorizers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// the lower-cased HTTP method for non-resource requests.
    pub verb: String,
    /// Whether the request is about a resource (else about a path).
    pub resource_request: bool,
    /// The API group.
    pub group: String,
    /// The plural resource.
    pub resource: String,
    /// The subresource.
    pub subresource: String,
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The path of a non-resource request.
    pub path: String,
}

/// kube-apiserver's message refusing a request: `configmaps "x" is forbidden: User "u" cannot
/// get resource "configmaps" in API group "" in the namespace "ns"`, with `: REASON` when the
/// authorizer gave one.
pub fn forbidden_message(user: &User, attributes: &Attributes, reason: &str) -> String {
    let a = attributes;
    let mut message = if !a.resource_request {
        format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name, a.verb, a.path
        )
    } else {
        let qualified = match a.group.as_str() {
            "" => a.resource.clone(),
            group => format!("{}.{group}", a.resource),
        };
        let object = match a.name.as_str() {
            "" => qualified,
            name => format!("{qualified} \"{name}\""),
        };
        let resource = match a.subresource.as_str() {
            "" => a.resource.clone(),
            sub => format!("{}/{sub}", a.resource),
        };
        let scope = match a.namespace.as_str() {
            "" => "at the cluster scope".to_string(),
            ns => format!("in the namespace \"{ns}\""),
        };
        format!(
            "{object} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            user.name, a.verb, a.group
        )
    };
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    message
}

/// Asks the server's authorizer about a request of the user it was made for; `Err` is kube's
/// Forbidden message.
pub type Authorize = dyn for<'a> Fn(&'a Attributes) -> Result<(), String> + Send + Sync;

/// A handler of the paths under `/PREFIX/` (beside the Kubernetes API, on its port): it gets
/// requests once they are authenticated (anonymous ones are 401 before), and decides itself
/// what to ask `authorize` (the server's authorizer for the request's user). The EVE half
/// mounts the telemetry endpoints (`/edgenode/`) this way.
#[async_trait::async_trait]
pub trait Mounted: Send + Sync {
    /// Answers `request` (its body left out), whose path is `/PREFIX/` + `segments`
    /// (percent-decoded), made by `user`.
    async fn serve(
        &self,
        user: &User,
        authorize: &Authorize,
        request: http::Request<()>,
        segments: Vec<String>,
    ) -> http::Response<crate::http::ResponseBody>;
}

/// The paths anyone may read (kube-apiserver's `system:public-info-viewer`).
pub const PUBLIC_PATHS: &[&str] = &["/livez", "/readyz", "/healthz", "/version"];

/// Decides whether a user may do what they ask.
pub trait Authorizer: Send + Sync {
    /// `Ok(())` to allow; `Err(reason)` to refuse with 403.
    fn authorize(&self, user: &User, attributes: &Attributes) -> Result<(), String>;
}

/// Allows every authenticated user everything, and anonymous users the public paths.
pub struct AllowAuthenticated;

impl Authorizer for AllowAuthenticated {
    fn authorize(&self, user: &User, attributes: &Attributes) -> Result<(), String> {
        if !user.is_anonymous()
            || (!attributes.resource_request && PUBLIC_PATHS.contains(&attributes.path.as_str()))
        {
            Ok(())
        } else {
            Err("anonymous requests may only read /livez, /readyz, /healthz and /version".into())
        }
    }
}
