//! The state shared by the handlers of one request on a resource (`Call`), and `serve`, which
//! resolves the resource, authorizes the verb, negotiates the response and hands over to the
//! handler of the verb.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use registry::{ApiError, WriteOptions};
use serde_json::Value;
use tokio::sync::watch as signal;

use super::negotiate::{self, BodyFormat, Output};
use super::query::Query;
use super::request::{ResourcePath, Verb};
use super::respond::{Outcome, Refusal, error_response, fail, json_response, not_found, respond};
use super::{Body, MAX_BODY, RequestBody};
use crate::admission::{Chain, Operation, Request as AdmissionRequest};
use crate::auth::{Attributes, User, forbidden_message};
use crate::catalog::{Kind, group_version};
use crate::server::ApiServer;
use crate::status::Subject;
use crate::table::Include;
use crate::{apply, native, protobuf};

/// One request on a resource.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) server: Arc<ApiServer>,
    pub(crate) user: User,
    pub(crate) kind: Arc<Kind>,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) subresource: String,
    pub(crate) query: Query,
    pub(crate) output: Output,
    /// The client's `User-Agent` (the field manager of writes without `fieldManager`).
    pub(crate) user_agent: String,
    pub(crate) subject: Subject,
}

/// Serves a request on a resource, counted and timed (`metrics`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<B: RequestBody>(
    server: Arc<ApiServer>,
    user: User,
    request: Request<B>,
    group: &str,
    version: &str,
    rest: Vec<String>,
    query: Query,
    accept: String,
    shutdown: signal::Receiver<bool>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let metrics = server.metrics.clone();
    let mut measured = None;
    let response = serve_resource(
        server,
        user,
        request,
        group,
        version,
        rest,
        query,
        accept,
        shutdown,
        &mut measured,
    )
    .await;
    let measured = measured.unwrap_or_else(crate::metrics::Request::unknown);
    // A watch's answer starts a stream: counted, not timed.
    let elapsed = (measured.verb != "watch").then(|| started.elapsed());
    metrics.observe(measured, response.status().as_u16(), elapsed);
    response
}

/// Serves a request on a resource; `measured` is set to what it is as soon as that is known.
#[allow(clippy::too_many_arguments)]
async fn serve_resource<B: RequestBody>(
    server: Arc<ApiServer>,
    user: User,
    request: Request<B>,
    group: &str,
    version: &str,
    rest: Vec<String>,
    query: Query,
    accept: String,
    shutdown: signal::Receiver<bool>,
    measured: &mut Option<crate::metrics::Request>,
) -> Response<Body> {
    let catalog = server.catalog();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let Some(path) = ResourcePath::parse(&rest) else {
        return not_found();
    };
    let namespace = path.namespace.as_deref();
    let (resource_name, name, subresource) = (
        path.resource.as_str(),
        path.name.as_str(),
        path.subresource.as_str(),
    );
    // As kube-apiserver's storage keys them: a name or namespace that cannot be one path
    // segment is a bad request, whatever the verb.
    for (what, value) in [("Namespace", namespace.unwrap_or("")), ("Name", name)] {
        if let Some(why) = apimachinery::meta::NameRule::PathSegment
            .check(value, false)
            .into_iter()
            .next()
        {
            let error = ApiError::BadRequest(format!("{what} parameter invalid: {value:?}: {why}"));
            return error_response(&error, &Subject::default(), &[]);
        }
    }
    let method = request.method().clone();
    let watching = method == Method::GET && name.is_empty() && query.flag("watch");
    let verb = Verb::of(&method, !name.is_empty(), watching);
    *measured = Some(server.metrics.request(
        &catalog,
        verb.map(Verb::as_str),
        group,
        version,
        resource_name,
        subresource,
    ));
    // Authorized before the resource is resolved, as kube-apiserver's filter does.
    let attributes = authorization_attributes(group, &path, verb, &method, &query);
    if let Err(reason) = server.authorizer.authorize(&user, &attributes) {
        let error = ApiError::Forbidden(forbidden_message(&user, &attributes, &reason));
        let subject = Subject {
            group: group.into(),
            resource: resource_name.into(),
            kind: String::new(),
            name: attributes.name.clone(),
        };
        return error_response(&error, &subject, &[]);
    }
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
    let Some(verb) = verb.filter(|v| kind.computed.is_none() || *v == Verb::Create) else {
        return Refusal::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))
        .response(&subject);
    };
    let creating = kind.create_subresource(subresource).is_some();
    if creating && verb != Verb::Create {
        return Refusal::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({method}); {resource_name}/{subresource} takes only POST"
        ))
        .response(&subject);
    }
    let sub_ok = match subresource {
        "" => true,
        "status" => kind.status.is_some(),
        "scale" => kind.scale.is_some(),
        "finalize" => kind.finalize.is_some() && verb == Verb::Update,
        _ => creating,
    };
    if !sub_ok
        || (!subresource.is_empty()
            && !creating
            && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch))
    {
        return not_found();
    }
    let protobuf = kind.native
        && subresource != "scale"
        && protobuf::supports(&kind.api_version(), &kind.kind);
    let output = match negotiate::output(&accept, protobuf) {
        Ok(output) => output,
        Err(refusal) => return refusal.response(&subject),
    };
    let user_agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let call = Call {
        server,
        user,
        user_agent,
        kind,
        namespace: namespace.unwrap_or("").to_string(),
        name: name.to_string(),
        subresource: subresource.to_string(),
        query,
        output,
        subject,
    };
    let media_type = negotiate::media_type(request.headers());
    let result = if verb == Verb::Watch {
        return call.watch(shutdown).await;
    } else if verb.writes() {
        match read_body(request).await {
            Err(e) => Err(e.into()),
            Ok(body) => match verb {
                Verb::Create => call.create(&media_type, body).await,
                Verb::Update => call.update(&media_type, body).await,
                Verb::Patch => call.patch(&media_type, body).await,
                Verb::Delete => call.delete(body).await,
                _ => call.delete_collection(body).await,
            },
        }
    } else if verb == Verb::List {
        call.list().await
    } else {
        call.get().await
    };
    match result {
        Ok(response) => response,
        Err(refusal) => refusal.response(&call.subject),
    }
}

/// What the authorizer is asked, as kube-apiserver's `RequestInfo` has it: a Namespace's own
/// requests are in that namespace, and a list or watch selecting one name by
/// `fieldSelector=metadata.name=NAME` is about that name.
fn authorization_attributes(
    group: &str,
    path: &ResourcePath,
    verb: Option<Verb>,
    method: &Method,
    query: &Query,
) -> Attributes {
    let mut namespace = path.namespace.clone().unwrap_or_default();
    if namespace.is_empty() && group.is_empty() && path.resource == "namespaces" {
        namespace = path.name.clone();
    }
    let mut name = path.name.clone();
    if matches!(verb, Some(Verb::List | Verb::Watch))
        && let Some(selector) = query.get("fieldSelector")
        && let Ok(selector) = apimachinery::fields::Selector::parse(selector)
        && let Some(term) = selector
            .terms()
            .iter()
            .find(|t| t.field == "metadata.name" && t.equal)
    {
        name = term.value.clone();
    }
    Attributes {
        verb: verb.map_or_else(|| method.as_str().to_lowercase(), |v| v.as_str().into()),
        resource_request: true,
        group: group.into(),
        resource: path.resource.clone(),
        subresource: path.subresource.clone(),
        namespace,
        name,
        path: String::new(),
    }
}

async fn read_body<B: RequestBody>(request: Request<B>) -> Result<Bytes, ApiError> {
    let reading = Limited::new(request.into_body(), MAX_BODY).collect();
    let Ok(read) = tokio::time::timeout(super::BODY_DEADLINE, reading).await else {
        return Err(ApiError::BadRequest(format!(
            "the request body did not arrive within {} s",
            super::BODY_DEADLINE.as_secs()
        )));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge(format!(
            "Request entity too large: limit is {MAX_BODY}"
        ))),
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

/// How to treat unknown fields (`fieldValidation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}
impl Call {
    pub(crate) fn wants_table(&self) -> bool {
        self.output == Output::Table
    }
    pub(crate) fn include(&self) -> Result<Include, (ApiError, Vec<String>)> {
        Include::parse(self.query.get("includeObject"))
            .map_err(|e| (ApiError::BadRequest(e), Vec::new()))
    }
    pub(crate) fn dry_run(&self) -> Result<bool, (ApiError, Vec<String>)> {
        match self.query.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => fail(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }
    pub(crate) fn field_validation(&self) -> Result<FieldValidation, (ApiError, Vec<String>)> {
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
    pub(crate) fn served(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), self.kind.api_version().into());
            map.insert("kind".into(), self.kind.kind.clone().into());
        }
        object
    }
    /// The object as sent to this client: [`Call::served`], or only its metadata when the
    /// client asked for PartialObjectMetadata.
    pub(crate) fn shown(&self, object: Value) -> Value {
        let object = self.served(object);
        if self.output == Output::Metadata {
            return metadata_only(object);
        }
        object
    }
    /// The kind and version of what this call serves: the resource's, or PartialObjectMetadata.
    pub(crate) fn served_kind(&self) -> (String, String) {
        if self.output == Output::Metadata {
            return ("PartialObjectMetadata".into(), "meta.k8s.io/v1".into());
        }
        (self.kind.kind.clone(), self.kind.api_version())
    }
    /// The object as stored (custom resources at their storage version).
    pub(crate) fn stored(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                group_version(&self.kind.group, &self.kind.storage_version).into(),
            );
            map.insert("kind".into(), self.kind.kind.clone().into());
        }
        object
    }
    pub(crate) fn registry_resource(&self) -> &registry::Resource {
        match self.subresource.as_str() {
            "status" => self.kind.status.as_ref().unwrap_or(&self.kind.main),
            "finalize" => self.kind.finalize.as_ref().unwrap_or(&self.kind.main),
            _ => &self.kind.main,
        }
    }
    pub(crate) fn cannot_handle(&self, detail: &str) -> ApiError {
        let kind = &self.kind.kind;
        ApiError::BadRequest(format!(
            "{kind} in version \"{}\" cannot be handled as a {kind}: {detail}",
            self.kind.version
        ))
    }
    /// Parses a request body (JSON, or protobuf for native kinds) and checks its type fields.
    pub(crate) fn decode(&self, media_type: &str, body: &[u8]) -> Result<Value, Refusal> {
        let (api_version, kind, own) = self.body_type();
        let protobuf = self.kind.native
            && self.subresource != "scale"
            && protobuf::supports(&api_version, &kind);
        let object: Value = match negotiate::body_format(media_type, protobuf)? {
            BodyFormat::Json => serde_json::from_slice(body).map_err(|e| {
                ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
            })?,
            BodyFormat::Protobuf => protobuf::decode(body).map_err(|e| {
                self.cannot_handle(&format!("the protobuf body cannot be decoded: {e}"))
            })?,
        };
        if !object.is_object() {
            return Err(ApiError::BadRequest(format!(
                "couldn't get version/kind; json parse error: the body is not a JSON object: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
            .into());
        }
        self.check_type(&object)?;
        let mut object = object;
        if !own {
            object = self.served(object);
        }
        Ok(object)
    }

    /// The type of the body the request takes (apiVersion, kind), and whether it is the
    /// subresource's own (`Scale`, a create-only subresource's) rather than the kind's.
    fn body_type(&self) -> (String, String, bool) {
        if self.subresource == "scale" {
            return ("autoscaling/v1".into(), "Scale".into(), true);
        }
        if let Some(subresource) = self.kind.create_subresource(&self.subresource) {
            let (group, version, kind) = subresource.kind();
            return (group_version(group, version), kind.into(), true);
        }
        (self.kind.api_version(), self.kind.kind.clone(), false)
    }

    pub(crate) fn check_type(&self, object: &Value) -> Result<(), (ApiError, Vec<String>)> {
        let (expected_version, expected_kind, _) = self.body_type();
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
    pub(crate) fn normalize(
        &self,
        object: &mut Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        self.prune_unknown(object, validation, warnings)?;
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

    /// Drops the fields the schema does not know: refused under Strict, warned about under
    /// Warn.
    pub(crate) fn prune_unknown(
        &self,
        object: &mut Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let unknown = self.kind.schema.prune(object);
        let described: Vec<String> = unknown
            .iter()
            .map(|path| {
                let path = path.trim_start_matches('.');
                match native::unknown_field_hint(&self.kind.group, &self.kind.kind, path) {
                    Some(hint) => format!("unknown field \"{path}\" ({hint})"),
                    None => format!("unknown field \"{path}\""),
                }
            })
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
        Ok(())
    }
    pub(crate) fn write_options(
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
    pub(crate) async fn check_namespace(&self, name: &str) -> Result<(), ApiError> {
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
    pub(crate) async fn after_write(&self, object: &Value) {
        crate::rbac::after_write(&self.server, &self.kind, object).await;
        if self.kind.settles_catalog
            && let Err(e) = self.server.reconcile_written_crd(object).await
        {
            tracing::warn!(error = %e, "establishing a CRD failed");
        }
    }
    /// The answer to a create, update or patch: the object (at the requested version), with
    /// the warnings of field validation and admission. A dry-run create has no version yet.
    pub(crate) async fn answer(
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
        Ok(self.object_response(code, &self.served(object), &warnings))
    }

    /// The field manager of a write: `fieldManager`, or the client's name from its
    /// `User-Agent`.
    pub(crate) fn field_manager(&self) -> Result<String, Refusal> {
        let manager = match self.query.get("fieldManager") {
            Some(manager) if !manager.is_empty() => manager.to_string(),
            _ => apply::manager_from_user_agent(&self.user_agent),
        };
        apply::check_manager(&manager)?;
        Ok(manager)
    }

    /// Who writes with `manager`, for field ownership.
    pub(crate) fn writer<'a>(&'a self, manager: &'a str) -> apply::Writer<'a> {
        apply::Writer {
            schema: &self.kind.schema,
            manager,
            api_version: self.kind.api_version(),
            subresource: &self.subresource,
            status_apart: self.kind.status.is_some(),
        }
    }

    /// Records in `new`'s `managedFields` what this write changed (not for subresources,
    /// whose strategies keep the rest of the object as it was).
    pub(crate) fn track(
        &self,
        manager: &str,
        old: Option<&Value>,
        new: &mut Value,
    ) -> Result<(), ApiError> {
        // A scale write changes one field through the Scale object: not tracked.
        if self.subresource == "scale" {
            return Ok(());
        }
        self.writer(manager).track_update(old, new)
    }

    /// An object (or list, or Status) in the negotiated form: protobuf when the client asked for
    /// it and the object has a protobuf form, JSON otherwise.
    pub(crate) fn object_response(
        &self,
        code: u16,
        object: &Value,
        warnings: &[String],
    ) -> Response<Body> {
        if self.output == Output::Protobuf
            && let Ok(bytes) = protobuf::encode(object)
        {
            return respond(code, negotiate::PROTOBUF, bytes, warnings);
        }
        if self.output == Output::Metadata && object["kind"] != "Status" {
            let list = object["kind"].as_str().is_some_and(|k| k.ends_with("List"))
                && object["items"].is_array();
            let (media, body) = if list {
                let mut list = object.clone();
                list["kind"] = "PartialObjectMetadataList".into();
                list["apiVersion"] = "meta.k8s.io/v1".into();
                if let Some(items) = list["items"].as_array_mut() {
                    for item in items {
                        *item = metadata_only(std::mem::take(item));
                    }
                }
                (negotiate::METADATA_LIST, list)
            } else {
                (negotiate::METADATA, metadata_only(object.clone()))
            };
            let bytes = serde_json::to_vec(&body).expect("JSON serializes");
            return respond(code, media, bytes, warnings);
        }
        json_response(code, object, warnings)
    }
}

/// An object as a `meta.k8s.io/v1` PartialObjectMetadata: its metadata only.
pub(crate) fn metadata_only(mut object: Value) -> Value {
    if object["kind"] == "PartialObjectMetadata" {
        return object;
    }
    let metadata = object
        .as_object_mut()
        .and_then(|map| map.remove("metadata"))
        .unwrap_or_else(|| Value::Object(Default::default()));
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    })
}
