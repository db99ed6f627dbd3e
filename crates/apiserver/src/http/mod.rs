//! The HTTP layer: the Kubernetes REST wire over HTTP, the only part of the server that knows
//! HTTP. Shaped as kube-apiserver's `endpoints/handlers`: this router (discovery, OpenAPI,
//! health, and resource paths), a typed request info (`request`), query options (`query`),
//! negotiation in one place (`negotiate`), responses and HTTP-only refusals (`respond`), and a
//! module per handler (`get`, `list`, `create`, `update`, `patch`, `delete`, `watch`, `scale`)
//! over the shared per-request state of `resource`.

mod apply;
mod create;
mod delete;
mod get;
mod list;
mod negotiate;
mod patch;
pub(crate) mod query;
mod request;
mod resource;
mod respond;
mod scale;
mod update;
mod watch;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::combinators::BoxBody;
use serde_json::{Value, json};
use tokio::sync::watch as signal;

use crate::auth::{Attributes, PUBLIC_PATHS, User, forbidden_message};
use crate::server::ApiServer;
use crate::status::{Subject, failure};
use crate::{discovery, metrics, openapi};
use negotiate::accepts_json;
pub(crate) use query::Query;
use respond::{Refusal, error_response, json_response, method_not_allowed, not_found, respond};

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

/// A response body.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;
pub(crate) type Body = ResponseBody;

/// The largest request body (kube-apiserver's limit).
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;
/// The deepest nesting of objects and arrays an object may have once patched (serde_json reads
/// no deeper than 128: an object stored deeper could never be read back).
pub(crate) const MAX_DEPTH: usize = 100;

/// How deeply `value` nests objects and arrays.
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(list) => 1 + list.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// How long a request body may take to arrive (a client trickling one holds no handler for
/// longer).
pub(crate) const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

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

/// Serves one request.
pub(crate) async fn handle<B: RequestBody>(
    server: Arc<ApiServer>,
    user: User,
    request: Request<B>,
    shutdown: signal::Receiver<bool>,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = Query::parse(request.uri().query().unwrap_or(""));
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Without a client certificate, a bearer token may say who it is; an unknown one is 401.
    let user = match (
        user.is_anonymous(),
        crate::tokens::bearer(request.headers()),
    ) {
        (true, Some(token)) => match server.token_user(token).await {
            Ok(user) => user,
            Err(refusals) => {
                // As kube-apiserver: the client learns only that it is not authenticated; the
                // reasons go to the log.
                if !refusals.is_empty() {
                    tracing::info!(reasons = ?refusals, "a bearer token was refused");
                }
                return json_response(401, &failure(401, "Unauthorized", "Unauthorized"), &[]);
            }
        },
        _ => user,
    };
    if user.is_anonymous() && !PUBLIC_PATHS.contains(&path.as_str()) {
        return json_response(401, &failure(401, "Unauthorized", "Unauthorized"), &[]);
    }
    // Impersonation (`Impersonate-User`, `-Group`, `-Uid`): from here on the request runs as
    // the user impersonated.
    let user = match crate::rbac::impersonate(&server, user, request.headers()) {
        Ok(user) => user,
        Err(refused) => return error_response(&refused.0, &refused.1, &[]),
    };
    let segments = query::segments(&path);
    // A place in flight for the request's class (429 when none is free); masters and health
    // checks need none.
    let place = if PUBLIC_PATHS.contains(&path.as_str())
        || user.groups.iter().any(|g| g == "system:masters")
    {
        None
    } else {
        let class = crate::inflight::Class::of(request.method(), &segments, &query);
        match server.inflight().admit(class) {
            Some(place) => Some(place),
            None => return too_many_requests(),
        }
    };
    let response = dispatch(
        server, user, request, shutdown, path, query, accept, segments,
    )
    .await;
    match place {
        Some(place) => response
            .map(|body| http_body_util::BodyExt::boxed(crate::inflight::Holding::new(body, place))),
        None => response,
    }
}

/// 429 as kube-apiserver answers it: retry in a second.
fn too_many_requests() -> Response<Body> {
    let mut status = failure(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
    );
    status["details"] = json!({"retryAfterSeconds": 1});
    let mut response = json_response(429, &status, &[]);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Serves an authenticated request.
#[allow(clippy::too_many_arguments)]
async fn dispatch<B: RequestBody>(
    server: Arc<ApiServer>,
    user: User,
    request: Request<B>,
    shutdown: signal::Receiver<bool>,
    path: String,
    query: Query,
    accept: String,
    segments: Vec<String>,
) -> Response<Body> {
    if let Some((first, rest)) = segments.split_first()
        && let Some(handler) = server.mounted(first)
    {
        let (parts, _) = request.into_parts();
        let request = Request::from_parts(parts, ());
        let authorizer = server.authorizer.clone();
        let asker = user.clone();
        let authorize = move |attributes: &Attributes| {
            authorizer
                .authorize(&asker, attributes)
                .map_err(|reason| forbidden_message(&asker, attributes, &reason))
        };
        return handler
            .serve(&user, &authorize, request, rest.to_vec())
            .await;
    }
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
            let message = forbidden_message(&user, &attributes, &reason);
            return json_response(403, &failure(403, "Forbidden", &message), &[]);
        }
    }
    if request.method() != Method::GET && !resource_path {
        return method_not_allowed();
    }
    let catalog = server.catalog();
    match segments.as_slice() {
        ["version"] => json_response(200, &version_info(), &[]),
        ["livez" | "readyz" | "healthz"] => respond(200, "text/plain; charset=utf-8", "ok", &[]),
        ["metrics"] => respond(200, metrics::CONTENT_TYPE, server.metrics.encode(), &[]),
        ["metrics", page] => match server.metrics.encode_page(page) {
            Some(text) => respond(200, metrics::CONTENT_TYPE, text, &[]),
            None => not_found(),
        },
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
                return Refusal::NotAcceptable("only application/json is served".into())
                    .response(&Subject::default());
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
            use crate::openapi_proto::{CONTENT_TYPE, Format, MEDIA_TYPE, encode, negotiate};
            let (content_type, body) = match negotiate(&accept) {
                Some(Format::Json) => (
                    "application/json",
                    catalog.swagger.get_or_init(|| {
                        serde_json::to_vec(&openapi::swagger(&catalog))
                            .expect("JSON")
                            .into()
                    }),
                ),
                Some(Format::Protobuf) => {
                    let encoded = catalog
                        .swagger_protobuf
                        .get_or_init(|| encode(&openapi::swagger(&catalog)).map(Bytes::from));
                    match encoded {
                        Ok(body) => (CONTENT_TYPE, body),
                        Err(error) => {
                            let status = failure(500, "InternalError", &error.to_string());
                            return json_response(500, &status, &[]);
                        }
                    }
                }
                None => {
                    return Refusal::NotAcceptable(format!(
                        "/openapi/v2 is served as application/json and {MEDIA_TYPE}"
                    ))
                    .response(&Subject::default());
                }
            };
            let mut response = respond(200, content_type, body.clone(), &[]);
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            response
        }
        ["api", "v1", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource::serve(
                server, user, request, "", "v1", rest, query, accept, shutdown,
            )
            .await
        }
        ["apis", group, version, rest @ ..] => {
            let (group, version) = (group.to_string(), version.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource::serve(
                server, user, request, &group, &version, rest, query, accept, shutdown,
            )
            .await
        }
        _ => not_found(),
    }
}
