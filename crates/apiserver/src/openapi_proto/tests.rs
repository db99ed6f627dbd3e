//! Encoding documents: a small document exercising each shape, read back field by field, and
//! the document this server serves.

use std::sync::Arc;

use prost_reflect::{DynamicMessage, ReflectMessage as _, Value as Field};
use serde_json::json;

use super::*;

fn decode(bytes: &[u8]) -> DynamicMessage {
    let descriptor = pool().unwrap().get_message_by_name(DOCUMENT).unwrap();
    DynamicMessage::decode(descriptor, bytes).unwrap()
}

/// A field of `message` (a default when absent).
fn get(message: &DynamicMessage, name: &str) -> Field {
    message.get_field_by_name(name).unwrap().into_owned()
}

fn child(message: &DynamicMessage, name: &str) -> DynamicMessage {
    assert!(message.has_field_by_name(name), "{name} is set");
    get(message, name).as_message().unwrap().clone()
}

fn text(message: &DynamicMessage, name: &str) -> String {
    get(message, name).as_str().unwrap().to_string()
}

fn list(message: &DynamicMessage, name: &str) -> Vec<Field> {
    get(message, name).as_list().unwrap().to_vec()
}

/// The value of the `Named*` pair called `key` in the list `name`.
fn entry(message: &DynamicMessage, name: &str, key: &str) -> DynamicMessage {
    list(message, name)
        .iter()
        .map(|v| v.as_message().unwrap().clone())
        .find(|pair| text(pair, "name") == key)
        .map(|pair| child(&pair, "value"))
        .unwrap_or_else(|| panic!("no {key} in {name}"))
}

fn names(message: &DynamicMessage, name: &str) -> Vec<String> {
    list(message, name)
        .iter()
        .map(|v| text(v.as_message().unwrap(), "name"))
        .collect()
}

fn strings(message: &DynamicMessage, name: &str) -> Vec<String> {
    list(message, name)
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn small() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": {
            "/api/v1/namespaces/{namespace}/configmaps/{name}": {
                "parameters": [
                    {"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true},
                    {"$ref": "#/parameters/pretty"}
                ],
                "get": {
                    "operationId": "readCoreV1NamespacedConfigMap",
                    "consumes": ["*/*"],
                    "tags": ["core_v1"],
                    "parameters": [
                        {"name": "limit", "in": "query", "type": "integer", "default": 500},
                        {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}}
                    ],
                    "responses": {
                        "200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}},
                        "401": {"description": "Unauthorized"}
                    },
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"}
                }
            }
        },
        "definitions": {
            "io.k8s.api.core.v1.ConfigMap": {
                "description": "ConfigMap holds configuration data for pods to consume.",
                "type": "object",
                "required": ["metadata"],
                "properties": {
                    "data": {"type": "object", "additionalProperties": {"type": "string"}},
                    "immutable": {"type": "boolean"},
                    "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "default": {}},
                    "finalizers": {
                        "type": "array",
                        "items": {"type": "string", "default": ""},
                        "x-kubernetes-list-type": "set",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "phase": {"type": "string", "enum": ["Active", "Terminating"]}
                },
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]
            },
            "io.k8s.apimachinery.pkg.runtime.RawExtension": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "additionalProperties": false
            }
        },
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}]
    })
}

#[test]
fn a_document_reads_back_as_the_reference_reader_would_build_it() {
    let document = decode(&encode(&small()).unwrap());
    assert_eq!(text(&document, "swagger"), "2.0");
    assert_eq!(text(&child(&document, "info"), "title"), "Kubernetes");

    let definitions = child(&document, "definitions");
    assert_eq!(
        names(&definitions, "additional_properties"),
        [
            "io.k8s.api.core.v1.ConfigMap",
            "io.k8s.apimachinery.pkg.runtime.RawExtension"
        ]
    );
    let config_map = entry(
        &definitions,
        "additional_properties",
        "io.k8s.api.core.v1.ConfigMap",
    );
    assert_eq!(strings(&child(&config_map, "type"), "value"), ["object"]);
    assert_eq!(strings(&config_map, "required"), ["metadata"]);
    assert_eq!(
        entry(
            &config_map,
            "vendor_extension",
            "x-kubernetes-group-version-kind"
        )
        .get_field_by_name("yaml")
        .unwrap()
        .as_str(),
        Some("- group: \"\"\n  kind: ConfigMap\n  version: v1\n")
    );

    let properties = child(&config_map, "properties");
    assert_eq!(
        names(&properties, "additional_properties"),
        ["data", "finalizers", "immutable", "metadata", "phase"]
    );
    let data = entry(&properties, "additional_properties", "data");
    let values = child(&child(&data, "additional_properties"), "schema");
    assert_eq!(strings(&child(&values, "type"), "value"), ["string"]);
    let metadata = entry(&properties, "additional_properties", "metadata");
    assert_eq!(
        text(&metadata, "_ref"),
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(text(&child(&metadata, "default"), "yaml"), "{}\n");
    let finalizers = entry(&properties, "additional_properties", "finalizers");
    let items = list(&child(&finalizers, "items"), "schema");
    assert_eq!(items.len(), 1);
    let item = items[0].as_message().unwrap();
    assert_eq!(strings(&child(item, "type"), "value"), ["string"]);
    assert_eq!(text(&child(item, "default"), "yaml"), "\"\"\n");
    assert_eq!(
        names(&finalizers, "vendor_extension"),
        ["x-kubernetes-list-type", "x-kubernetes-patch-strategy"]
    );
    assert_eq!(
        text(
            &entry(
                &finalizers,
                "vendor_extension",
                "x-kubernetes-patch-strategy"
            ),
            "yaml"
        ),
        "merge\n"
    );
    let phase = entry(&properties, "additional_properties", "phase");
    let values: Vec<String> = list(&phase, "enum")
        .iter()
        .map(|v| text(v.as_message().unwrap(), "yaml"))
        .collect();
    assert_eq!(values, ["Active\n", "Terminating\n"]);

    let raw = entry(
        &definitions,
        "additional_properties",
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
    );
    assert_eq!(
        get(&child(&raw, "additional_properties"), "boolean").as_bool(),
        Some(false)
    );
    assert!(!raw.has_field_by_name("properties"));
    assert_eq!(
        text(
            &entry(
                &raw,
                "vendor_extension",
                "x-kubernetes-preserve-unknown-fields"
            ),
            "yaml"
        ),
        "true\n"
    );

    let security = child(&document, "security_definitions");
    let bearer = entry(&security, "additional_properties", "BearerToken");
    assert_eq!(text(&child(&bearer, "api_key_security"), "in"), "header");
    let requirement = list(&document, "security");
    assert_eq!(
        names(
            requirement[0].as_message().unwrap(),
            "additional_properties"
        ),
        ["BearerToken"]
    );
}

#[test]
fn paths_carry_operations_parameters_and_responses() {
    let document = decode(&encode(&small()).unwrap());
    let paths = child(&document, "paths");
    assert_eq!(
        names(&paths, "path"),
        ["/api/v1/namespaces/{namespace}/configmaps/{name}"]
    );
    let item = entry(
        &paths,
        "path",
        "/api/v1/namespaces/{namespace}/configmaps/{name}",
    );
    let common = list(&item, "parameters");
    let name = child(
        &child(common[0].as_message().unwrap(), "parameter"),
        "non_body_parameter",
    );
    let name = child(&name, "path_parameter_sub_schema");
    assert_eq!(text(&name, "name"), "name");
    assert_eq!(get(&name, "required").as_bool(), Some(true));
    assert_eq!(get(&name, "unique_items").as_bool(), Some(true));
    let reference = child(common[1].as_message().unwrap(), "json_reference");
    assert_eq!(text(&reference, "_ref"), "#/parameters/pretty");

    let get_op = child(&item, "get");
    assert!(!item.has_field_by_name("put"));
    assert_eq!(
        text(&get_op, "operation_id"),
        "readCoreV1NamespacedConfigMap"
    );
    assert_eq!(strings(&get_op, "consumes"), ["*/*"]);
    assert_eq!(strings(&get_op, "tags"), ["core_v1"]);
    let parameters = list(&get_op, "parameters");
    let limit = child(
        &child(
            &child(parameters[0].as_message().unwrap(), "parameter"),
            "non_body_parameter",
        ),
        "query_parameter_sub_schema",
    );
    assert_eq!(text(&limit, "type"), "integer");
    assert_eq!(text(&child(&limit, "default"), "yaml"), "500\n");
    let body = child(
        &child(parameters[1].as_message().unwrap(), "parameter"),
        "body_parameter",
    );
    assert_eq!(
        text(&child(&body, "schema"), "_ref"),
        "#/definitions/io.k8s.api.core.v1.ConfigMap"
    );

    let responses = child(&get_op, "responses");
    assert_eq!(names(&responses, "response_code"), ["200", "401"]);
    let ok = child(&entry(&responses, "response_code", "200"), "response");
    assert_eq!(text(&ok, "description"), "OK");
    assert_eq!(
        text(&child(&child(&ok, "schema"), "schema"), "_ref"),
        "#/definitions/io.k8s.api.core.v1.ConfigMap"
    );
    assert_eq!(
        names(&get_op, "vendor_extension"),
        ["x-kubernetes-action", "x-kubernetes-group-version-kind"]
    );
    assert_eq!(
        text(
            &entry(
                &get_op,
                "vendor_extension",
                "x-kubernetes-group-version-kind"
            ),
            "yaml"
        ),
        yaml(&json!({"group": "", "version": "v1", "kind": "ConfigMap"}))
    );
}

#[test]
fn wrong_types_are_errors_with_their_path() {
    let mut document = small();
    document["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["data"]["type"] =
        json!(3);
    assert_eq!(
        encode(&document),
        Err(OpenApiProtoError::Unexpected {
            path: "/definitions/io.k8s.api.core.v1.ConfigMap/properties/data/type".into(),
            expected: "a string or an array of strings",
        })
    );
    let mut document = small();
    document["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["parameters"][0]["in"] =
        json!("cookie");
    assert!(matches!(
        encode(&document),
        Err(OpenApiProtoError::Unexpected { path, .. })
            if path == "/paths/~1api~1v1~1namespaces~1{namespace}~1configmaps~1{name}/parameters/0"
    ));
    assert!(encode(&json!([])).is_err());
}

#[test]
fn the_served_swagger_document_encodes() {
    let components = Arc::new(crate::native::components());
    let kinds = crate::native::kinds(&components);
    let catalog = crate::catalog::Catalog::new(kinds, components);
    let swagger = crate::openapi::swagger(&catalog);
    let document = decode(&encode(&swagger).unwrap());
    let definitions = child(&document, "definitions");
    assert_eq!(
        names(&definitions, "additional_properties").len(),
        swagger["definitions"].as_object().unwrap().len()
    );
    let config_map = entry(
        &definitions,
        "additional_properties",
        "io.k8s.api.core.v1.ConfigMap",
    );
    let data = entry(
        &child(&config_map, "properties"),
        "additional_properties",
        "data",
    );
    assert!(child(&child(&data, "additional_properties"), "schema").has_field_by_name("type"));
    assert!(
        names(&config_map, "vendor_extension")
            .contains(&"x-kubernetes-group-version-kind".to_string())
    );
    assert_eq!(
        names(&child(&document, "paths"), "path").len(),
        swagger["paths"].as_object().unwrap().len()
    );
    assert_eq!(document.descriptor().full_name(), DOCUMENT);
}
