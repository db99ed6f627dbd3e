//! The HTTP layer: paths, verbs, query parameters, content types, the Kubernetes wire format
//! (lists, tables, watch streams, `Status` errors, `Warning` headers). The only part of the
//! server that knows HTTP.

use std::sync::Arc;
use std::time::Duration;

use apimachinery::{FieldError, fields, labels};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::Frame;

/// A request body the server can read: hyper's, or an in-process client's.
pub trait RequestBody:
    hyper::body::Body<Data = Bytes, Error = Self::Failure> + Send + 'static
{
    /// The body's error.
    type Failure: std::error::Error + Send + Sync + 'static;
}

impl<B> RequestBody for B
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Failure = B::Error;
}
use registry::{ApiError, ListOptions, Start, WatchEvent, WriteOptions};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::admission::{Chain, Operation, Request as AdmissionRequest};
use crate::auth::{Attributes, PUBLIC_PATHS, User};
use crate::catalog::{Kind, group_version};
use crate::server::{ApiServer, SYSTEM_NAMESPACES};
use crate::status::{Subject, failure, status};
use crate::table::{self, Include};
use crate::{discovery, native, openapi};

/// A response body.
/// A response body.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;
pub(crate) type Body = ResponseBody;

/// The largest request body (kube-apiserver's limit).
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// How long a watch without `timeoutSeconds` lasts.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

const TABLE_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn respond(
    code: u16,
    content_type: &str,
    body: impl Into<Bytes>,
    warnings: &[String],
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).unwrap_or_default()
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.append(header::WARNING, value);
        }
    }
    response
}

fn json_response(code: u16, value: &Value, warnings: &[String]) -> Response<Body> {
    respond(
        code,
        "application/json",
        serde_json::to_vec(value).expect("JSON serializes"),
        warnings,
    )
}

fn error_response(error: &ApiError, subject: &Subject, warnings: &[String]) -> Response<Body> {
    let body = status(error, subject);
    let code = body["code"].as_u64().unwrap_or(500) as u16;
    json_response(code, &body, warnings)
}

fn not_found() -> Response<Body> {
    json_response(
        404,
        &failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
        &[],
    )
}

/// Query parameters, percent-decoded.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses a query string.
    pub(crate) fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (percent_decode(k), percent_decode(v)),
                    None => (percent_decode(pair), String::new()),
                })
                .collect(),
        )
    }

    /// A parameter's first value.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0",
        "gitCommit": "adamant",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other }),
    })
}

/// Whether an `Accept` header takes JSON (an empty one takes anything).
fn accepts_json(accept: &str) -> bool {
    accept.is_empty()
        || accept.split(',').any(|a| {
            let a = a.split(';').next().unwrap_or("").trim();
            matches!(a, "application/json" | "*/*" | "application/*")
        })
}

/// Serves one request.
pub(crate) async fn handle<B: RequestBody>(
    server: Arc<ApiServer>,
    user: User,
    request: Request<B>,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = Query::parse(request.uri().query().unwrap_or(""));
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if user.is_anonymous() && !PUBLIC_PATHS.contains(&path.as_str()) {
        return json_response(401, &failure(401, "Unauthorized", "Unauthorized"), &[]);
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let resource_path = matches!(
        segments.as_slice(),
        ["api", "v1", _, ..] | ["apis", _, _, _, ..]
    );
    if !resource_path {
        let attributes = Attributes {
            verb: request.method().as_str().to_lowercase(),
            resource_request: false,
            path: path.clone(),
            ..Default::default()
        };
        if let Err(reason) = server.authorizer.authorize(&user, &attributes) {
            return json_response(
                403,
                &failure(
                    403,
                    "Forbidden",
                    &format!(
                        "forbidden: User \"{}\" cannot {} path \"{path}\": {reason}",
                        user.name, attributes.verb
                    ),
                ),
                &[],
            );
        }
    }
    if request.method() != Method::GET && !resource_path {
        return json_response(
            405,
            &failure(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ),
            &[],
        );
    }
    let catalog = server.catalog();
    match segments.as_slice() {
        ["version"] => json_response(200, &version_info(), &[]),
        ["livez" | "readyz" | "healthz"] => respond(200, "text/plain; charset=utf-8", "ok", &[]),
        ["api"] if discovery::wants_aggregated(&accept) => respond(
            200,
            discovery::AGGREGATED,
            serde_json::to_vec(&discovery::aggregated(&catalog, true)).expect("JSON"),
            &[],
        ),
        ["apis"] if discovery::wants_aggregated(&accept) => respond(
            200,
            discovery::AGGREGATED,
            serde_json::to_vec(&discovery::aggregated(&catalog, false)).expect("JSON"),
            &[],
        ),
        ["api"] => {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| request.uri().authority().map(|a| a.as_str()))
                .unwrap_or("")
                .to_string();
            json_response(200, &discovery::api_versions(&host), &[])
        }
        ["apis"] => json_response(200, &discovery::api_group_list(&catalog), &[]),
        ["api", "v1"] => match discovery::resource_list(&catalog, "", "v1") {
            Some(list) => json_response(200, &list, &[]),
            None => not_found(),
        },
        ["apis", group] => match discovery::api_group(&catalog, group) {
            Some(group) => json_response(200, &group, &[]),
            None => not_found(),
        },
        ["apis", group, version] => match discovery::resource_list(&catalog, group, version) {
            Some(list) => json_response(200, &list, &[]),
            None => not_found(),
        },
        ["openapi", "v3"] => {
            let documents = catalog.openapi.get_or_init(|| openapi::documents(&catalog));
            json_response(200, &openapi::index(documents), &[])
        }
        ["openapi", "v3", rest @ ..] => {
            let key = rest.join("/");
            let documents = catalog.openapi.get_or_init(|| openapi::documents(&catalog));
            let Some(document) = documents.get(&key) else {
                return not_found();
            };
            if !accepts_json(&accept) {
                return json_response(
                    406,
                    &failure(406, "NotAcceptable", "only application/json is served"),
                    &[],
                );
            }
            match query.get("hash") {
                Some(hash) if hash != document.hash => {
                    let mut response = respond(301, "application/json", "", &[]);
                    if let Ok(location) =
                        HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={}", document.hash))
                    {
                        response.headers_mut().insert(header::LOCATION, location);
                    }
                    response
                }
                hash => {
                    let mut response = respond(200, "application/json", document.body.clone(), &[]);
                    let headers = response.headers_mut();
                    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", document.hash)) {
                        headers.insert(header::ETAG, etag);
                    }
                    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
                    if hash.is_some() {
                        headers.insert(
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("public, immutable"),
                        );
                    }
                    response
                }
            }
        }
        ["openapi", "v2"] => {
            if !accepts_json(&accept) {
                return json_response(
                    406,
                    &failure(
                        406,
                        "NotAcceptable",
                        "/openapi/v2 is served as application/json only",
                    ),
                    &[],
                );
            }
            let body = catalog.swagger.get_or_init(|| {
                serde_json::to_vec(&openapi::swagger(&catalog))
                    .expect("JSON")
                    .into()
            });
            respond(200, "application/json", body.clone(), &[])
        }
        ["api", "v1", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource(
                server, user, request, "", "v1", rest, query, accept, shutdown,
            )
            .await
        }
        ["apis", group, version, rest @ ..] => {
            let (group, version) = (group.to_string(), version.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource(
                server, user, request, &group, &version, rest, query, accept, shutdown,
            )
            .await
        }
        _ => not_found(),
    }
}

/// One request on a resource.
struct Call {
    server: Arc<ApiServer>,
    user: User,
    kind: Arc<Kind>,
    namespace: String,
    name: String,
    subresource: String,
    query: Query,
    accept: String,
    subject: Subject,
    finalize: registry::Resource,
}

#[allow(clippy::too_many_arguments)]
async fn resource<B: RequestBody>(
    server: Arc<ApiServer>,
    user: User,
    request: Request<B>,
    group: &str,
    version: &str,
    rest: Vec<String>,
    query: Query,
    accept: String,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let catalog = server.catalog();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    // kube-apiserver's RequestInfo: `namespaces/{ns}/...` unless it is a namespace's own
    // subresource.
    let (namespace, parts): (Option<&str>, &[&str]) = match rest.as_slice() {
        ["namespaces", ns, next, more @ ..]
            if !matches!(*next, "status" | "finalize") || !more.is_empty() =>
        {
            (Some(*ns), &rest[2..])
        }
        _ => (None, &rest[..]),
    };
    let (resource_name, name, subresource) = match parts {
        [resource] => (*resource, "", ""),
        [resource, name] => (*resource, *name, ""),
        [resource, name, sub] => (*resource, *name, *sub),
        _ => return not_found(),
    };
    let Some(kind) = catalog.find(group, version, resource_name).cloned() else {
        return not_found();
    };
    if namespace.is_some() && !kind.namespaced {
        return not_found();
    }
    let subject = Subject {
        group: group.into(),
        resource: resource_name.into(),
        kind: kind.kind.clone(),
        name: name.into(),
    };
    let method = request.method().clone();
    let watching = method == Method::GET && name.is_empty() && query.flag("watch");
    let verb = match (&method, name.is_empty()) {
        (&Method::GET, true) if watching => "watch",
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "deletecollection",
        (&Method::DELETE, false) => "delete",
        _ => "",
    };
    let attributes = Attributes {
        verb: verb.into(),
        resource_request: true,
        group: group.into(),
        resource: resource_name.into(),
        subresource: subresource.into(),
        namespace: namespace.unwrap_or("").into(),
        name: name.into(),
        path: String::new(),
    };
    if let Err(reason) = server.authorizer.authorize(&user, &attributes) {
        let error = ApiError::Forbidden(format!(
            "{} \"{name}\" is forbidden: User \"{}\" cannot {verb} resource \"{resource_name}\" in API group \"{group}\": {reason}",
            kind.main.qualified(),
            user.name
        ));
        return error_response(&error, &subject, &[]);
    }
    let sub_ok = match subresource {
        "" => true,
        "status" => kind.status.is_some(),
        "scale" => kind.scale.is_some(),
        "finalize" => kind.native && kind.resource == "namespaces" && verb == "update",
        _ => false,
    };
    if !sub_ok || (!subresource.is_empty() && !matches!(verb, "get" | "update" | "patch")) {
        return not_found();
    }
    let call = Call {
        server,
        user,
        kind,
        namespace: namespace.unwrap_or("").to_string(),
        name: name.to_string(),
        subresource: subresource.to_string(),
        query,
        accept,
        subject,
        finalize: native::namespace_finalize_resource(),
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let result = match verb {
        "watch" => return call.watch(shutdown).await,
        "list" => call.list().await,
        "get" => call.get().await,
        "create" | "update" | "patch" | "delete" | "deletecollection" => {
            let body = match read_body(request).await {
                Ok(body) => body,
                Err(e) => return error_response(&e, &call.subject, &[]),
            };
            match verb {
                "create" => call.create(&content_type, body).await,
                "update" => call.update(&content_type, body).await,
                "patch" => call.patch(&content_type, body).await,
                "delete" => call.delete(body).await,
                _ => call.delete_collection(body).await,
            }
        }
        _ => Err((
            ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )),
            Vec::new(),
        )),
    };
    match result {
        Ok(response) => response,
        Err((error, warnings)) => error_response(&error, &call.subject, &warnings),
    }
}

async fn read_body<B: RequestBody>(request: Request<B>) -> Result<Bytes, ApiError> {
    match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge(format!(
            "Request entity too large: limit is {MAX_BODY}"
        ))),
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

type Outcome = Result<Response<Body>, (ApiError, Vec<String>)>;

fn fail<T>(error: ApiError) -> Result<T, (ApiError, Vec<String>)> {
    Err((error, Vec::new()))
}

/// How to treat unknown fields (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl Call {
    fn wants_table(&self) -> bool {
        self.accept.split(',').any(|part| {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
        })
    }

    fn include(&self) -> Result<Include, (ApiError, Vec<String>)> {
        Include::parse(self.query.get("includeObject"))
            .map_err(|e| (ApiError::BadRequest(e), Vec::new()))
    }

    fn dry_run(&self) -> Result<bool, (ApiError, Vec<String>)> {
        match self.query.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => fail(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    fn field_validation(&self) -> Result<FieldValidation, (ApiError, Vec<String>)> {
        match self.query.get("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => fail(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }

    /// The object as served at the requested version.
    fn served(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), self.kind.api_version().into());
            map.insert("kind".into(), self.kind.kind.clone().into());
        }
        object
    }

    /// The object as stored (custom resources at their storage version).
    fn stored(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                group_version(&self.kind.group, &self.kind.storage_version).into(),
            );
            map.insert("kind".into(), self.kind.kind.clone().into());
        }
        object
    }

    fn registry_resource(&self) -> &registry::Resource {
        match self.subresource.as_str() {
            "status" => self.kind.status.as_ref().unwrap_or(&self.kind.main),
            "finalize" => &self.finalize,
            _ => &self.kind.main,
        }
    }

    fn cannot_handle(&self, detail: &str) -> ApiError {
        let kind = &self.kind.kind;
        ApiError::BadRequest(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {detail}",
            self.kind.version
        ))
    }

    /// Parses a request body (JSON) and checks its type fields.
    fn decode(&self, content_type: &str, body: &[u8]) -> Result<Value, (ApiError, Vec<String>)> {
        if !matches!(content_type, "" | "application/json" | "*/*") {
            return fail(ApiError::UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json".into()));
        }
        let object: Value = serde_json::from_slice(body).map_err(|e| {
            (
                ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}")),
                Vec::new(),
            )
        })?;
        if !object.is_object() {
            return fail(ApiError::BadRequest(format!(
                "couldn't get version/kind; json parse error: the body is not a JSON object: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )));
        }
        self.check_type(&object)?;
        let mut object = object;
        if self.subresource != "scale" {
            object = self.served(object);
        }
        Ok(object)
    }

    fn check_type(&self, object: &Value) -> Result<(), (ApiError, Vec<String>)> {
        let (expected_version, expected_kind) = if self.subresource == "scale" {
            ("autoscaling/v1".to_string(), "Scale".to_string())
        } else {
            (self.kind.api_version(), self.kind.kind.clone())
        };
        // Missing type fields are taken from the URL, as kube-apiserver does.
        let api_version = object["apiVersion"].as_str().unwrap_or(&expected_version);
        let kind = object["kind"].as_str().unwrap_or(&expected_kind);
        if api_version != expected_version {
            return fail(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({expected_version})"
            )));
        }
        if kind != expected_kind {
            return fail(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind ({expected_kind})"
            )));
        }
        Ok(())
    }

    /// Prunes unknown fields (refusing them under Strict, warning under Warn), checks the
    /// types of native kinds, and applies defaults.
    fn normalize(
        &self,
        object: &mut Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let unknown = self.kind.schema.prune(object);
        let described: Vec<String> = unknown
            .iter()
            .map(|path| format!("unknown field \"{}\"", path.trim_start_matches('.')))
            .collect();
        match validation {
            FieldValidation::Strict if !described.is_empty() => {
                return Err(
                    self.cannot_handle(&format!("strict decoding error: {}", described.join(", ")))
                );
            }
            FieldValidation::Warn => warnings.extend(described),
            _ => {}
        }
        if self.kind.native {
            let errors = self.kind.schema.type_errors(object);
            if let Some(first) = errors.first() {
                return Err(self.cannot_handle(&format!(
                    "json: cannot unmarshal {} into Go struct field {}.{}",
                    match &first.kind {
                        apimachinery::FieldErrorKind::TypeInvalid(t) => t.clone(),
                        _ => "value".into(),
                    },
                    self.kind.kind,
                    first.path
                )));
            }
        } else {
            self.kind.schema.default(object);
        }
        Ok(())
    }

    fn write_options(
        &self,
        operation: Operation,
        name: &str,
        dry_run: bool,
    ) -> (WriteOptions, Arc<Chain>) {
        let chain = Arc::new(Chain::new(
            self.server.plugins.clone(),
            AdmissionRequest {
                operation,
                group: self.kind.group.clone(),
                version: self.kind.version.clone(),
                resource: self.kind.resource.clone(),
                subresource: self.subresource.clone(),
                kind: self.kind.kind.clone(),
                namespace: self.namespace.clone(),
                name: name.to_string(),
                user: self.user.clone(),
                dry_run,
            },
        ));
        let options = WriteOptions {
            dry_run,
            admission: Some(chain.clone() as Arc<dyn registry::Admit>),
        };
        (options, chain)
    }

    async fn check_namespace(&self, name: &str) -> Result<(), ApiError> {
        if !self.kind.namespaced {
            return Ok(());
        }
        if self.namespace.is_empty() {
            return Err(ApiError::BadRequest("the namespace of the request is missing: create namespaced objects under /namespaces/{namespace}/".into()));
        }
        let namespaces = native::namespace_resource();
        match self
            .server
            .registry
            .get(&namespaces, "", &self.namespace)
            .await
        {
            Ok(ns) => {
                if !registry::object::meta_str(&ns, "deletionTimestamp").is_empty() {
                    return Err(ApiError::Forbidden(format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                        self.kind.main.qualified(),
                        self.namespace
                    )));
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn after_write(&self, object: &Value) {
        if self.kind.group == "apiextensions.k8s.io"
            && self.kind.resource == "customresourcedefinitions"
            && let Err(e) = self.server.reconcile_written_crd(object).await
        {
            tracing::warn!(error = %e, "establishing a CRD failed");
        }
    }

    async fn get(&self) -> Outcome {
        let object = self
            .server
            .registry
            .get(&self.kind.main, &self.namespace, &self.name)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if self.subresource == "scale" {
            return Ok(json_response(200, &self.scale_of(&object)?, &[]));
        }
        let object = self.served(object);
        if self.wants_table() {
            let include = self.include()?;
            let table = table::table(
                &self.kind,
                std::slice::from_ref(&object),
                json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
                include,
                true,
            );
            return Ok(respond(
                200,
                TABLE_TYPE,
                serde_json::to_vec(&table).expect("JSON"),
                &[],
            ));
        }
        Ok(json_response(200, &object, &[]))
    }

    fn list_options(&self) -> Result<ListOptions, (ApiError, Vec<String>)> {
        let labels = labels::Selector::parse(self.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| (ApiError::BadRequest(e.to_string()), Vec::new()))?;
        let fields = fields::Selector::parse(self.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| (ApiError::BadRequest(e.to_string()), Vec::new()))?;
        let limit = match self.query.get("limit") {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| {
                    (
                        ApiError::BadRequest(format!(
                            "limit: Invalid value: {text:?}: must be an integer"
                        )),
                        Vec::new(),
                    )
                })?
                .max(0) as usize,
        };
        let continue_token = self
            .query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let rv = self.query.get("resourceVersion").unwrap_or("");
        let rv_match = self.query.get("resourceVersionMatch").unwrap_or("");
        let mut causes = Vec::new();
        if !rv_match.is_empty() {
            if rv.is_empty() {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continue_token.is_some() {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if !["NotOlderThan", "Exact"].contains(&rv_match) {
                causes.push(FieldError::not_supported(
                    "resourceVersionMatch",
                    rv_match,
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if rv_match == "Exact" && rv == "0" {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if !rv.is_empty() && rv.parse::<u64>().is_err() {
            causes.push(FieldError::invalid(
                "resourceVersion",
                rv,
                "must be a decimal number",
            ));
        }
        if self.query.get("sendInitialEvents").is_some() && !self.query.flag("watch") {
            causes.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
        if !causes.is_empty() {
            return fail(ApiError::Invalid {
                kind: "ListOptions.meta.k8s.io".into(),
                name: String::new(),
                causes,
            });
        }
        Ok(ListOptions {
            labels,
            fields,
            limit,
            continue_token,
        })
    }

    fn list_namespace(&self) -> Option<&str> {
        Some(self.namespace.as_str()).filter(|ns| !ns.is_empty() && self.kind.namespaced)
    }

    async fn list(&self) -> Outcome {
        let options = self.list_options()?;
        let list = self
            .server
            .registry
            .list(&self.kind.main, self.list_namespace(), &options)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let mut metadata = json!({"resourceVersion": list.resource_version.to_string()});
        if let Some(token) = &list.continue_token {
            metadata["continue"] = token.clone().into();
        }
        let items: Vec<Value> = list.items.into_iter().map(|o| self.served(o)).collect();
        if self.wants_table() {
            let table = table::table(&self.kind, &items, metadata, self.include()?, true);
            return Ok(respond(
                200,
                TABLE_TYPE,
                serde_json::to_vec(&table).expect("JSON"),
                &[],
            ));
        }
        let body = json!({
            "kind": format!("{}List", self.kind.kind),
            "apiVersion": self.kind.api_version(),
            "metadata": metadata,
            "items": items,
        });
        Ok(json_response(200, &body, &[]))
    }

    async fn create(&self, content_type: &str, body: Bytes) -> Outcome {
        if !self.name.is_empty() {
            return fail(ApiError::MethodNotAllowed(
                "POST is not allowed on a named object; use PUT to replace it".into(),
            ));
        }
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let mut object = self.decode(content_type, &body)?;
        let mut warnings = Vec::new();
        self.normalize(&mut object, validation, &mut warnings)
            .map_err(|e| (e, warnings.clone()))?;
        let name = registry::object::name(&object).to_string();
        if !registry::object::meta_str(&object, "resourceVersion").is_empty() {
            return Err((
                ApiError::BadRequest(
                    "resourceVersion should not be set on objects to be created".into(),
                ),
                warnings,
            ));
        }
        self.check_namespace(&name)
            .await
            .map_err(|e| (e, warnings.clone()))?;
        let (options, chain) = self.write_options(Operation::Create, &name, dry_run);
        let object = self.stored(object);
        let created = self
            .server
            .registry
            .create(&self.kind.main, &self.namespace, object, &options)
            .await;
        self.answer(201, created, warnings, &chain, dry_run).await
    }

    /// The answer to a create, update or patch: the object (at the requested version), with
    /// the warnings of field validation and admission. A dry-run create has no version yet.
    async fn answer(
        &self,
        code: u16,
        result: Result<Value, ApiError>,
        mut warnings: Vec<String>,
        chain: &Chain,
        dry_run: bool,
    ) -> Outcome {
        warnings.extend(chain.warnings());
        let mut object = result.map_err(|e| (e, warnings.clone()))?;
        if !dry_run {
            self.after_write(&object).await;
        } else if code == 201 {
            registry::object::meta_mut(&mut object).remove("resourceVersion");
        }
        Ok(json_response(code, &self.served(object), &warnings))
    }

    async fn update(&self, content_type: &str, body: Bytes) -> Outcome {
        if self.subresource == "scale" {
            let scale = self.decode(content_type, &body)?;
            return self.write_scale(move |_| Ok(scale.clone())).await;
        }
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let mut object = self.decode(content_type, &body)?;
        let mut warnings = Vec::new();
        self.normalize(&mut object, validation, &mut warnings)
            .map_err(|e| (e, warnings.clone()))?;
        if self.kind.namespaced {
            let given = registry::object::namespace(&object);
            if !given.is_empty() && given != self.namespace {
                return Err((ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into()), warnings));
            }
        }
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let object = self.stored(object);
        let updated = self
            .server
            .registry
            .update(
                self.registry_resource(),
                &self.namespace,
                &self.name,
                object,
                &options,
            )
            .await;
        self.answer(200, updated, warnings, &chain, dry_run).await
    }

    async fn patch(&self, content_type: &str, body: Bytes) -> Outcome {
        enum Kind {
            Json(json_patch::Patch),
            Merge(Value),
        }
        let patch = match content_type {
            "application/json-patch+json" => {
                Kind::Json(serde_json::from_slice(&body).map_err(|e| {
                    (
                        ApiError::BadRequest(format!("the JSON patch is not valid: {e}")),
                        Vec::new(),
                    )
                })?)
            }
            "application/merge-patch+json" => {
                Kind::Merge(serde_json::from_slice(&body).map_err(|e| {
                    (
                        ApiError::BadRequest(format!("the merge patch is not valid JSON: {e}")),
                        Vec::new(),
                    )
                })?)
            }
            _ => {
                return fail(ApiError::UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json".into()));
            }
        };
        let apply = move |target: &mut Value| -> Result<(), ApiError> {
            match &patch {
                Kind::Json(operations) => {
                    json_patch::patch(target, operations).map_err(|e| ApiError::Invalid {
                        kind: String::new(),
                        name: String::new(),
                        causes: vec![FieldError::invalid(
                            "patch",
                            String::from_utf8_lossy(&body).to_string(),
                            e.to_string(),
                        )],
                    })
                }
                Kind::Merge(merge) => {
                    json_patch::merge(target, merge);
                    Ok(())
                }
            }
        };
        if self.subresource == "scale" {
            return self
                .write_scale(move |current| {
                    let mut scale = current.clone();
                    apply(&mut scale)?;
                    Ok(scale)
                })
                .await;
        }
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let mut warnings = Vec::new();
        let patched = self
            .server
            .registry
            .update_with(
                self.registry_resource(),
                &self.namespace,
                &self.name,
                &options,
                |current| {
                    let mut object = self.served(current.clone());
                    apply(&mut object)?;
                    if !object.is_object() {
                        return Err(ApiError::BadRequest(
                            "the patch made the object something other than a JSON object".into(),
                        ));
                    }
                    if let Err((e, _)) = self.check_type(&object) {
                        return Err(e);
                    }
                    warnings.clear();
                    self.normalize(&mut object, validation, &mut warnings)?;
                    Ok(self.stored(object))
                },
            )
            .await;
        self.answer(200, patched, warnings, &chain, dry_run).await
    }

    fn scale_paths(&self) -> &crate::catalog::ScalePaths {
        self.kind.scale.as_ref().expect("checked before")
    }

    fn scale_of(&self, object: &Value) -> Result<Value, (ApiError, Vec<String>)> {
        let paths = self.scale_paths();
        let first = |path: &str| table::jsonpath(object, path).into_iter().next();
        let mut scale = json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": object["metadata"]["name"],
                "uid": object["metadata"]["uid"],
                "resourceVersion": object["metadata"]["resourceVersion"],
                "creationTimestamp": object["metadata"]["creationTimestamp"],
            },
            "spec": {"replicas": first(&paths.spec_replicas).unwrap_or(json!(0))},
            "status": {"replicas": first(&paths.status_replicas).unwrap_or(json!(0))},
        });
        if self.kind.namespaced {
            scale["metadata"]["namespace"] = object["metadata"]["namespace"].clone();
        }
        if let Some(selector) = paths.label_selector.as_deref().and_then(first) {
            scale["status"]["selector"] = selector;
        }
        Ok(scale)
    }

    async fn write_scale(&self, change: impl Fn(&Value) -> Result<Value, ApiError>) -> Outcome {
        let dry_run = self.dry_run()?;
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let paths = self.scale_paths().clone();
        let written =
            self.server
                .registry
                .update_with(
                    &self.kind.main,
                    &self.namespace,
                    &self.name,
                    &options,
                    |current| {
                        let scale = self.scale_of(current).map_err(|(e, _)| e)?;
                        let wanted = change(&scale)?;
                        let replicas = wanted["spec"]["replicas"].as_i64().ok_or_else(|| {
                            ApiError::Invalid {
                                kind: "Scale.autoscaling".into(),
                                name: self.name.clone(),
                                causes: vec![FieldError::required("spec.replicas", "")],
                            }
                        })?;
                        if replicas < 0 {
                            return Err(ApiError::Invalid {
                                kind: "Scale.autoscaling".into(),
                                name: self.name.clone(),
                                causes: vec![FieldError::invalid(
                                    "spec.replicas",
                                    replicas.to_string(),
                                    "must be greater than or equal to 0",
                                )],
                            });
                        }
                        let mut next = current.clone();
                        let mut node = &mut next;
                        for part in paths.spec_replicas.trim_start_matches('.').split('.') {
                            if !node[part].is_object()
                                && part != paths.spec_replicas.rsplit('.').next().unwrap_or("")
                            {
                                node[part] = json!({});
                            }
                            node = &mut node[part];
                        }
                        *node = json!(replicas);
                        let rv = wanted["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        registry::object::meta_mut(&mut next)
                            .insert("resourceVersion".into(), rv.into());
                        Ok(next)
                    },
                )
                .await;
        let warnings = chain.warnings();
        let written = written.map_err(|e| (e, warnings.clone()))?;
        Ok(json_response(200, &self.scale_of(&written)?, &warnings))
    }

    fn delete_options(&self, body: &[u8]) -> Result<(Option<i64>, bool), (ApiError, Vec<String>)> {
        let mut dry_run = self.dry_run()?;
        let mut precondition = None;
        if !body.is_empty() {
            let options: Value = serde_json::from_slice(body).map_err(|e| {
                (
                    ApiError::BadRequest(format!("the DeleteOptions body is not valid JSON: {e}")),
                    Vec::new(),
                )
            })?;
            if let Some(rv) = options["preconditions"]["resourceVersion"].as_str() {
                precondition = Some(rv.parse::<i64>().map_err(|_| {
                    (
                        ApiError::BadRequest(format!(
                            "preconditions.resourceVersion {rv:?} is not a resource version"
                        )),
                        Vec::new(),
                    )
                })?);
            }
            if options["dryRun"]
                .as_array()
                .is_some_and(|d| d.iter().any(|v| v == "All"))
            {
                dry_run = true;
            }
        }
        Ok((precondition, dry_run))
    }

    async fn delete_one(
        &self,
        name: &str,
        precondition: Option<i64>,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let options = WriteOptions {
            dry_run,
            admission: None,
        };
        if self.kind.group.is_empty()
            && self.kind.resource == "namespaces"
            && SYSTEM_NAMESPACES.contains(&name)
        {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let deleted = self
            .server
            .registry
            .delete(
                &self.kind.main,
                &self.namespace,
                name,
                precondition,
                &options,
            )
            .await?;
        let pending = !registry::object::meta_str(&deleted, "deletionTimestamp").is_empty();
        Ok((deleted, pending))
    }

    async fn delete(&self, body: Bytes) -> Outcome {
        let (precondition, dry_run) = self.delete_options(&body)?;
        let (object, pending) = self
            .delete_one(&self.name, precondition, dry_run)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if !dry_run {
            self.after_write(&object).await;
        }
        if pending || !self.kind.native {
            return Ok(json_response(200, &self.served(object), &[]));
        }
        let mut details = json!({"name": self.name, "kind": self.kind.resource, "uid": object["metadata"]["uid"]});
        if !self.kind.group.is_empty() {
            details["group"] = self.kind.group.clone().into();
        }
        Ok(json_response(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            &[],
        ))
    }

    async fn delete_collection(&self, body: Bytes) -> Outcome {
        let (_, dry_run) = self.delete_options(&body)?;
        let mut options = self.list_options()?;
        options.limit = 0;
        options.continue_token = None;
        let list = self
            .server
            .registry
            .list(&self.kind.main, self.list_namespace(), &options)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let mut items = Vec::new();
        for object in list.items {
            let name = registry::object::name(&object).to_string();
            let namespace = registry::object::namespace(&object).to_string();
            let call = Call {
                namespace,
                ..self.clone_shallow()
            };
            match call.delete_one(&name, None, dry_run).await {
                Ok((deleted, _)) => items.push(self.served(deleted)),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return fail(e),
            }
        }
        let body = json!({
            "kind": format!("{}List", self.kind.kind),
            "apiVersion": self.kind.api_version(),
            "metadata": {"resourceVersion": list.resource_version.to_string()},
            "items": items,
        });
        Ok(json_response(200, &body, &[]))
    }

    fn clone_shallow(&self) -> Call {
        Call {
            server: self.server.clone(),
            user: self.user.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            subresource: self.subresource.clone(),
            query: self.query.clone(),
            accept: self.accept.clone(),
            subject: self.subject.clone(),
            finalize: self.finalize.clone(),
        }
    }

    async fn watch(self, mut shutdown: watch::Receiver<bool>) -> Response<Body> {
        let options = match self.list_options() {
            Ok(mut options) => {
                options.limit = 0;
                options.continue_token = None;
                options
            }
            Err((e, _)) => return error_response(&e, &self.subject, &[]),
        };
        let rv = self.query.get("resourceVersion").unwrap_or("").to_string();
        let bookmarks = self.query.flag("allowWatchBookmarks");
        let initial_events = self
            .query
            .get("sendInitialEvents")
            .map(|v| v == "true" || v == "1");
        if initial_events == Some(true) {
            let mut causes = Vec::new();
            if self.query.get("resourceVersionMatch") != Some("NotOlderThan") {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                causes.push(FieldError::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
            if !causes.is_empty() {
                return error_response(
                    &ApiError::Invalid {
                        kind: "ListOptions.meta.k8s.io".into(),
                        name: String::new(),
                        causes,
                    },
                    &self.subject,
                    &[],
                );
            }
        }
        let timeout = self
            .query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT);
        let table = self.wants_table();
        let include = match self.include() {
            Ok(include) => include,
            Err((e, _)) => return error_response(&e, &self.subject, &[]),
        };
        let namespace = self.list_namespace().map(str::to_string);
        // Where the watch starts: after a list (initial events) or after a given version.
        let send_initial = match initial_events {
            Some(send) => send,
            None => rv.is_empty() || rv == "0",
        };
        let (initial, start) = if send_initial {
            match self
                .server
                .registry
                .list(&self.kind.main, namespace.as_deref(), &options)
                .await
            {
                Ok(list) => (list.items, list.resource_version),
                Err(e) => return error_response(&e, &self.subject, &[]),
            }
        } else {
            (Vec::new(), rv.parse().unwrap_or(0))
        };
        let events = match self
            .server
            .registry
            .watch(
                &self.kind.main,
                namespace.as_deref(),
                &options,
                Start::After(start),
            )
            .await
        {
            Ok(events) => events,
            Err(e) => return error_response(&e, &self.subject, &[]),
        };
        let (sender, receiver) = mpsc::channel::<Bytes>(64);
        let kind = self.kind.clone();
        let call = self;
        tokio::spawn(async move {
            let mut events = Box::pin(events);
            let mut first_row = true;
            let mut last = start;
            let encode = |event_type: &str, object: Value, first_row: &mut bool| -> Bytes {
                let object = if table && event_type != "ERROR" && event_type != "BOOKMARK" {
                    let rv = object["metadata"]["resourceVersion"].clone();
                    let t = table::table(
                        &kind,
                        &[object],
                        json!({"resourceVersion": rv}),
                        include,
                        *first_row,
                    );
                    *first_row = false;
                    t
                } else {
                    object
                };
                let mut line = serde_json::to_vec(&json!({"type": event_type, "object": object}))
                    .expect("JSON");
                line.push(b'\n');
                Bytes::from(line)
            };
            let bookmark = |rv: i64, end: bool| -> Value {
                let mut object = json!({"kind": kind.kind, "apiVersion": kind.api_version(), "metadata": {"resourceVersion": rv.to_string()}});
                if end {
                    object["metadata"]["annotations"] =
                        json!({"k8s.io/initial-events-end": "true"});
                }
                object
            };
            for object in initial {
                if sender
                    .send(encode("ADDED", call.served(object), &mut first_row))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if initial_events == Some(true)
                && sender
                    .send(encode("BOOKMARK", bookmark(start, true), &mut first_row))
                    .await
                    .is_err()
            {
                return;
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut ticker = tokio::time::interval_at(
                tokio::time::Instant::now() + BOOKMARK_INTERVAL,
                BOOKMARK_INTERVAL,
            );
            loop {
                let line = tokio::select! {
                    event = events.next() => match event {
                        Some(WatchEvent::Added(o)) => { last = revision_of(&o, last); encode("ADDED", call.served(o), &mut first_row) }
                        Some(WatchEvent::Modified(o)) => { last = revision_of(&o, last); encode("MODIFIED", call.served(o), &mut first_row) }
                        Some(WatchEvent::Deleted(o)) => { last = revision_of(&o, last); encode("DELETED", call.served(o), &mut first_row) }
                        Some(WatchEvent::Bookmark(rv)) => {
                            last = last.max(rv);
                            if !bookmarks || table { continue; }
                            encode("BOOKMARK", bookmark(last, false), &mut first_row)
                        }
                        Some(WatchEvent::Error(e)) => {
                            let _ = sender.send(encode("ERROR", status(&e, &call.subject), &mut first_row)).await;
                            return;
                        }
                        None => return,
                    },
                    _ = ticker.tick() => {
                        if !bookmarks || table { continue; }
                        encode("BOOKMARK", bookmark(last, false), &mut first_row)
                    }
                    _ = &mut deadline => {
                        if bookmarks && !table {
                            let _ = sender.send(encode("BOOKMARK", bookmark(last, false), &mut first_row)).await;
                        }
                        return;
                    }
                    _ = shutdown.changed() => return,
                    _ = sender.closed() => return,
                };
                if sender.send(line).await.is_err() {
                    return;
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver
                .recv()
                .await
                .map(|bytes| (Ok::<_, std::io::Error>(Frame::data(bytes)), receiver))
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        let content_type = if table {
            TABLE_TYPE
        } else {
            "application/json"
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        response
    }
}

fn revision_of(object: &Value, last: i64) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(last)
        .max(last)
}
