//! OpenAPI: `/openapi/v3` (an index, and one document per group-version with hash URLs) and
//! `/openapi/v2` (Swagger 2.0, JSON), generated from the catalog's schemas.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, Kind, list_schema, reachable};

/// One group-version document with its hash.
#[derive(Clone, Debug)]
pub struct Document {
    /// The hash in the document's URL (also its ETag).
    pub hash: String,
    /// The document, serialized.
    pub body: bytes::Bytes,
}

/// The path of a group-version in the index (`api/v1`, `apis/example.com/v1`).
pub fn index_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A content hash (hex), stable across runs.
pub fn hash(bytes: &[u8]) -> String {
    let mut parts = String::new();
    for seed in [0u64, 0x9e37_79b9_7f4a_7c15] {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut hasher);
        bytes.hash(&mut hasher);
        parts.push_str(&format!("{:016X}", hasher.finish()));
    }
    parts
}

fn parameter(name: &str, description: &str, type_: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": true}})
}

fn list_parameters() -> Vec<Value> {
    vec![
        parameter(
            "allowWatchBookmarks",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
            "boolean",
        ),
        parameter(
            "continue",
            "The continue option should be set when retrieving more results from the server.",
            "string",
        ),
        parameter(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
            "string",
        ),
        parameter(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
            "string",
        ),
        parameter(
            "limit",
            "limit is a maximum number of responses to return for a list call.",
            "integer",
        ),
        parameter(
            "resourceVersion",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
            "string",
        ),
        parameter(
            "resourceVersionMatch",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
            "string",
        ),
        parameter(
            "sendInitialEvents",
            "`sendInitialEvents=true` may be set together with `watch=true`.",
            "boolean",
        ),
        parameter(
            "timeoutSeconds",
            "Timeout for the list/watch call.",
            "integer",
        ),
        parameter(
            "watch",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            "boolean",
        ),
    ]
}

fn write_parameters(patch: bool) -> Vec<Value> {
    let mut parameters = vec![
        parameter(
            "dryRun",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
            "string",
        ),
        parameter(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
            "string",
        ),
        parameter(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
            "string",
        ),
    ];
    if patch {
        parameters.push(parameter(
            "force",
            "Force is going to \"force\" Apply requests.",
            "boolean",
        ));
    }
    parameters
}

fn content(schema: &str) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{schema}")});
    json!({
        "application/json": {"schema": reference},
        "application/yaml": {"schema": reference},
    })
}

fn operation(
    kind: &Kind,
    action: &str,
    operation_id: String,
    response_schema: &str,
    parameters: Vec<Value>,
    request: Option<Value>,
    gvk: Option<Value>,
) -> Value {
    let mut op = json!({
        "description": format!("{action} {}", kind.kind),
        "operationId": operation_id,
        "tags": [kind.api_version().replace(['/', '.'], "_")],
        "responses": {
            "200": {"description": "OK", "content": content(response_schema)},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk.unwrap_or_else(|| json!({"group": kind.group, "version": kind.version, "kind": kind.kind})),
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(request) = request {
        op["requestBody"] = request;
    }
    op
}

fn patch_body(native: bool) -> Value {
    let patch = json!({"schema": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}});
    let mut content = Map::new();
    content.insert("application/json-patch+json".into(), patch.clone());
    content.insert("application/merge-patch+json".into(), patch.clone());
    content.insert("application/apply-patch+yaml".into(), patch.clone());
    if native {
        content.insert("application/strategic-merge-patch+json".into(), patch);
    }
    json!({"content": content, "required": true})
}

fn paths_of(kind: &Kind, paths: &mut Map<String, Value>) {
    let prefix = if kind.group.is_empty() {
        format!("/api/{}", kind.version)
    } else {
        format!("/apis/{}/{}", kind.group, kind.version)
    };
    let scope = if kind.namespaced { "Namespaced" } else { "" };
    let id = |verb: &str, suffix: &str| {
        let version: String = kind
            .version
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        let group: String = kind
            .group
            .split(['.', '-'])
            .next()
            .map(|g| {
                let mut g: Vec<char> = g.chars().collect();
                if let Some(first) = g.first_mut() {
                    *first = first.to_ascii_uppercase();
                }
                g.into_iter().collect()
            })
            .unwrap_or_default();
        format!(
            "{verb}{}{version}{scope}{}{suffix}",
            if kind.group.is_empty() {
                "Core".to_string()
            } else {
                group
            },
            kind.kind
        )
    };
    let list_name = format!("{}List", kind.schema_name);
    let body = json!({"content": content(&kind.schema_name), "required": true});
    let namespace_parameter = json!({"name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": true}});
    let name_parameter = json!({"name": "name", "in": "path", "required": true, "description": format!("name of the {}", kind.kind), "schema": {"type": "string", "uniqueItems": true}});
    let collection = if kind.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", kind.resource)
    } else {
        format!("{prefix}/{}", kind.resource)
    };
    let mut common = vec![parameter(
        "pretty",
        "If 'true', then the output is pretty printed.",
        "string",
    )];
    if kind.namespaced {
        common.push(namespace_parameter.clone());
        paths.insert(
            format!("{prefix}/{}", kind.resource),
            json!({
                "get": operation(kind, "list", format!("list{}ForAllNamespaces", kind.kind), &list_name, list_parameters(), None, None),
                "parameters": [parameter("pretty", "If 'true', then the output is pretty printed.", "string")],
            }),
        );
    }
    let list_id = id("list", "");
    paths.insert(
        collection.clone(),
        json!({
            "get": operation(kind, "list", list_id, &list_name, list_parameters(), None, None),
            "post": operation(kind, "post", id("create", ""), &kind.schema_name, write_parameters(false), Some(body.clone()), None),
            "delete": operation(kind, "deletecollection", id("deleteCollection", ""), "io.k8s.apimachinery.pkg.apis.meta.v1.Status", list_parameters(), None, None),
            "parameters": common.clone(),
        }),
    );
    let mut item_common = common.clone();
    item_common.push(name_parameter);
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "get": operation(kind, "get", id("read", ""), &kind.schema_name, vec![parameter("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from.", "string")], None, None),
            "put": operation(kind, "put", id("replace", ""), &kind.schema_name, write_parameters(false), Some(body.clone()), None),
            "patch": operation(kind, "patch", id("patch", ""), &kind.schema_name, write_parameters(true), Some(patch_body(kind.native)), None),
            "delete": operation(kind, "delete", id("delete", ""), "io.k8s.apimachinery.pkg.apis.meta.v1.Status", vec![parameter("dryRun", "When present, indicates that modifications should not be persisted.", "string"), parameter("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"), parameter("propagationPolicy", "Whether and how garbage collection will be performed.", "string")], None, None),
            "parameters": item_common.clone(),
        }),
    );
    if kind.status.is_some() {
        paths.insert(
            format!("{collection}/{{name}}/status"),
            json!({
                "get": operation(kind, "get", id("read", "Status"), &kind.schema_name, Vec::new(), None, None),
                "put": operation(kind, "put", id("replace", "Status"), &kind.schema_name, write_parameters(false), Some(body.clone()), None),
                "patch": operation(kind, "patch", id("patch", "Status"), &kind.schema_name, write_parameters(true), Some(patch_body(kind.native)), None),
                "parameters": item_common.clone(),
            }),
        );
    }
    if kind.scale.is_some() {
        let gvk = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        let scale = "io.k8s.api.autoscaling.v1.Scale";
        let scale_body = json!({"content": content(scale), "required": true});
        paths.insert(
            format!("{collection}/{{name}}/scale"),
            json!({
                "get": operation(kind, "get", id("read", "Scale"), scale, Vec::new(), None, Some(gvk.clone())),
                "put": operation(kind, "put", id("replace", "Scale"), scale, write_parameters(false), Some(scale_body), Some(gvk.clone())),
                "patch": operation(kind, "patch", id("patch", "Scale"), scale, write_parameters(true), Some(patch_body(kind.native)), Some(gvk)),
                "parameters": item_common,
            }),
        );
    }
}

/// The OpenAPI v3 document of one group-version.
pub fn group_version_document(catalog: &Catalog, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut roots = vec![
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".to_string(),
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".to_string(),
    ];
    let mut lists = BTreeMap::new();
    for kind in catalog.in_group_version(group, version) {
        paths_of(kind, &mut paths);
        roots.push(kind.schema_name.clone());
        if kind.scale.is_some() {
            roots.push("io.k8s.api.autoscaling.v1.Scale".into());
        }
        lists.insert(format!("{}List", kind.schema_name), list_schema(kind));
    }
    let mut schemas: Map<String, Value> = reachable(&catalog.components, &roots)
        .into_iter()
        .filter_map(|name| catalog.components.get(&name).map(|s| (name, s.clone())))
        .collect();
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}),
    );
    for name in reachable(
        &catalog.components,
        &["io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta".into()],
    ) {
        if let Some(schema) = catalog.components.get(&name) {
            schemas.insert(name, schema.clone());
        }
    }
    schemas.extend(lists);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Every group-version document, by index key.
pub fn documents(catalog: &Catalog) -> BTreeMap<String, Document> {
    let mut documents = BTreeMap::new();
    for (group, versions) in &catalog.groups {
        for version in versions {
            let body = serde_json::to_vec(&group_version_document(catalog, group, version))
                .expect("JSON serializes");
            documents.insert(
                index_key(group, version),
                Document {
                    hash: hash(&body),
                    body: body.into(),
                },
            );
        }
    }
    documents
}

/// The `/openapi/v3` index.
pub fn index(documents: &BTreeMap<String, Document>) -> Value {
    let paths: Map<String, Value> = documents
        .iter()
        .map(|(key, doc)| {
            (
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash)}),
            )
        })
        .collect();
    json!({"paths": paths})
}

fn to_v2(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                *r = r.replace("#/components/schemas/", "#/definitions/");
            }
            map.remove("nullable");
            map.remove("oneOf");
            map.remove("anyOf");
            map.remove("not");
            if map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
                map.remove("type");
            }
            map.values_mut().for_each(to_v2);
        }
        Value::Array(items) => items.iter_mut().for_each(to_v2),
        _ => {}
    }
}

/// `/openapi/v2`: Swagger 2.0 with the same schemas as definitions.
pub fn swagger(catalog: &Catalog) -> Value {
    let mut definitions = Map::new();
    for (name, schema) in catalog.components.iter() {
        let mut schema = schema.clone();
        to_v2(&mut schema);
        definitions.insert(name.clone(), schema);
    }
    for kind in &catalog.kinds {
        let mut list = list_schema(kind);
        to_v2(&mut list);
        definitions.insert(format!("{}List", kind.schema_name), list);
    }
    let mut paths = Map::new();
    for kind in &catalog.kinds {
        let collection = if kind.group.is_empty() {
            format!("/api/{}", kind.version)
        } else {
            format!("/apis/{}/{}", kind.group, kind.version)
        };
        let collection = if kind.namespaced {
            format!("{collection}/namespaces/{{namespace}}/{}", kind.resource)
        } else {
            format!("{collection}/{}", kind.resource)
        };
        let gvk = json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
        let op = |action: &str| {
            json!({
                "responses": {"200": {"description": "OK", "schema": {"$ref": format!("#/definitions/{}", kind.schema_name)}}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(
            collection.clone(),
            json!({"get": op("list"), "post": op("post")}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "definitions": definitions,
    })
}
