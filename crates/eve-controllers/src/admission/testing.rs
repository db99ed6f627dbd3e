//! For the rules' unit tests: an API of fixed objects behind a kube-rs client, and a harness
//! that admits an object written as short YAML and shows the verdict as text for `expect-test`.

use std::convert::Infallible;

use expect_test::Expect;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::client::Body;
use serde_json::{Value, json};

use super::{Admission, Operation, References, Refusal, Review};

/// An example certificate of `examples/keys`, base64-encoded as the kinds hold them.
pub(crate) fn example_certificate(file: &str) -> String {
    use base64::Engine;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/keys")
        .join(file);
    let pem = std::fs::read(path).expect("the example keys are in examples/keys");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// The API version and plural of a kind the tests write, and whether it is namespaced.
fn kind_of(kind: &str) -> (String, String, bool) {
    if let Some(k) = eve_model::KINDS.iter().find(|k| k.kind == kind) {
        return (eve_model::API_VERSION.to_owned(), k.plural.to_owned(), true);
    }
    fn native<K: Resource<DynamicType = ()>>(namespaced: bool) -> (String, String, String, bool) {
        (
            K::kind(&()).into_owned(),
            K::api_version(&()).into_owned(),
            K::plural(&()).into_owned(),
            namespaced,
        )
    }
    [
        native::<PersistentVolumeClaim>(true),
        native::<Secret>(true),
        native::<k8s_openapi::api::core::v1::ConfigMap>(true),
        native::<Namespace>(false),
        native::<StorageClass>(false),
        native::<CustomResourceDefinition>(false),
    ]
    .into_iter()
    .find(|(k, ..)| k == kind)
    .map(|(_, api_version, plural, namespaced)| (api_version, plural, namespaced))
    .unwrap_or_else(|| panic!("the tests know no kind {kind}"))
}

/// A whole object from short YAML: `kind` given; `apiVersion` from it, `metadata.name` `x`
/// and `metadata.namespace` `ns` (for namespaced kinds) unless given.
fn object(yaml: &str) -> Value {
    let mut object: Value = serde_yaml::from_str(yaml).expect("the test's YAML reads");
    let kind = object["kind"].as_str().expect("a kind").to_owned();
    let (api_version, _, namespaced) = kind_of(&kind);
    object["apiVersion"] = api_version.into();
    let metadata = object
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    metadata
        .as_object_mut()
        .expect("metadata is an object")
        .entry("name")
        .or_insert_with(|| "x".into());
    if namespaced {
        metadata
            .as_object_mut()
            .expect("metadata is an object")
            .entry("namespace")
            .or_insert_with(|| "ns".into());
    }
    object
}

/// The API path segments of an object: `(namespace, plural, name)`.
fn address(object: &Value) -> (String, String, String) {
    let (_, plural, _) = kind_of(object["kind"].as_str().unwrap_or(""));
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    (
        text(&object["metadata"]["namespace"]),
        plural,
        text(&object["metadata"]["name"]),
    )
}

/// The answer of an API holding `objects` to a GET of `path`: the object, a list, or 404.
fn answer(objects: &[Value], path: &str) -> http::Response<Body> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/... or /apis/group/version/...
    let rest = match segments.first() {
        Some(&"api") => &segments[2..],
        _ => &segments[3..],
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", name] => ("", "namespaces", Some(*name)),
        ["namespaces", namespace, plural] => (*namespace, *plural, None),
        ["namespaces", namespace, plural, name] => (*namespace, *plural, Some(*name)),
        [plural] => ("", *plural, None),
        [plural, name] => ("", *plural, Some(*name)),
        _ => panic!("the test API has no {path}"),
    };
    let matching = objects.iter().filter(|o| {
        let (ns, p, _) = address(o);
        p == plural && (namespace.is_empty() || ns == namespace)
    });
    let (status, body) = match name {
        None => (
            200,
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": matching.collect::<Vec<_>>()}),
        ),
        Some(name) => match matching.into_iter().find(|o| address(o).2 == name) {
            Some(found) => (200, found.clone()),
            None => (
                404,
                json!({
                    "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                    "message": format!("{plural} \"{name}\" not found"), "reason": "NotFound",
                    "code": 404,
                }),
            ),
        },
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).expect("JSON")))
        .expect("a response")
}

/// Admission with a client of an API holding fixed objects.
pub(super) struct Harness {
    runtime: tokio::runtime::Runtime,
    admission: Admission,
}

impl Harness {
    /// Admission over an API holding `objects` (short YAML, as [`Harness::admit`] takes).
    pub(super) fn new(objects: &[&str]) -> Harness {
        let objects: Vec<Value> = objects.iter().map(|o| object(o)).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let service = tower::service_fn(move |request: http::Request<Body>| {
            let response = answer(&objects, request.uri().path());
            async move { Ok::<_, Infallible>(response) }
        });
        let client = {
            let _entered = runtime.enter();
            kube::Client::new(service, "default")
        };
        Harness {
            runtime,
            admission: Admission::new(client, References::Refuse, None),
        }
    }

    /// This harness's admission reading `cached` first for existence.
    pub(super) fn reading(mut self, cached: super::Cached) -> Harness {
        self.admission = self.admission.reading(cached);
        self
    }

    /// The verdict on creating `yaml` (short YAML: see [`object`]).
    pub(super) fn admit(&self, yaml: &str) -> String {
        self.admit_with(yaml, None, false)
    }

    /// The verdict on writing `yaml` over `old` (an update when given), as the API server asks
    /// (mutation, then validation): the JSON patch of the mutation if any, then `accepted` with
    /// the warnings, or the refusal.
    pub(super) fn admit_with(&self, yaml: &str, old: Option<&str>, dry_run: bool) -> String {
        let original = object(yaml);
        let old = old.map(object);
        let (namespace, resource, name) = address(&original);
        let api_version = original["apiVersion"].as_str().unwrap_or("");
        let review = Review {
            operation: if old.is_some() {
                Operation::Update
            } else {
                Operation::Create
            },
            group: api_version
                .rsplit_once('/')
                .map_or("", |(g, _)| g)
                .to_owned(),
            resource,
            subresource: String::new(),
            kind: original["kind"].as_str().unwrap_or("").to_owned(),
            namespace,
            name,
            dry_run,
        };
        let mut out = String::new();
        let mut object = original.clone();
        let verdict = match self.admission.mutate(&review, &mut object) {
            Ok(_) => {
                let patch = json_patch::diff(&original, &object);
                if !patch.0.is_empty() {
                    out += &format!("patch: {}\n", serde_json::to_string(&patch).expect("JSON"));
                }
                self.runtime
                    .block_on(self.admission.validate(&review, &object, old.as_ref()))
            }
            Err(refusal) => Err(refusal),
        };
        match verdict {
            Ok(warnings) => {
                out += "accepted";
                for warning in warnings {
                    out += &format!("\nwarning: {warning}");
                }
            }
            Err(Refusal::Invalid(errors)) => {
                out += "invalid:";
                for error in errors {
                    out += &format!("\n  {error}");
                }
            }
            Err(Refusal::Forbidden(message)) => out += &format!("forbidden: {message}"),
            Err(Refusal::Unavailable(message)) => out += &format!("unavailable: {message}"),
        }
        out
    }
}

/// Each case's verdict (an object created over an API holding `objects`, a fresh admission
/// each) against its snapshot.
pub(super) fn cases(objects: &[&str], cases: &[(String, Expect)]) {
    for (yaml, expected) in cases {
        expected.assert_eq(&Harness::new(objects).admit(yaml));
    }
}
