//! CustomResourceDefinitions: their own rules, and the served resources they define.

use std::collections::BTreeSet;
use std::sync::Arc;

use apimachinery::FieldError;
use apimachinery::meta::NameRule;
use apimachinery::validation::{is_dns1123_label, is_dns1123_subdomain};
use registry::{Resource, Strategy};
use serde_json::{Value, json};

use crate::catalog::{API_VERSION_DOC, Column, KIND_DOC, Kind, Printer, ScalePaths, schema_name};
use crate::native::keep_status;
use crate::schema::{Components, Schema};

/// The finalizer that holds a deleted CRD until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

const OBJECT_META: &str = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The strategy of the CustomResourceDefinition kind itself.
pub struct CrdStrategy;

fn str_of<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut node = value;
    for p in path {
        node = &node[*p];
    }
    node.as_str().unwrap_or("")
}

impl CrdStrategy {
    fn default_fields(object: &mut Value) {
        let spec = &mut object["spec"];
        if !spec.is_object() {
            return;
        }
        let kind = str_of(spec, &["names", "kind"]).to_string();
        if spec["names"].is_object() {
            if str_of(spec, &["names", "singular"]).is_empty() {
                spec["names"]["singular"] = kind.to_lowercase().into();
            }
            if str_of(spec, &["names", "listKind"]).is_empty() && !kind.is_empty() {
                spec["names"]["listKind"] = format!("{kind}List").into();
            }
        }
        if spec["conversion"].is_null() {
            spec["conversion"] = json!({"strategy": "None"});
        }
    }
}

impl Strategy for CrdStrategy {
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        Self::default_fields(object);
        let meta = registry::object::meta_mut(object);
        let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f == CLEANUP_FINALIZER)
        {
            list.push(CLEANUP_FINALIZER.into());
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        Self::default_fields(new);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        validate_crd(object)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (path, field) in [("spec.scope", "scope"), ("spec.group", "group")] {
            if new["spec"][field] != old["spec"][field] {
                errors.push(FieldError::invalid(
                    path,
                    str_of(new, &["spec", field]),
                    "field is immutable",
                ));
            }
        }
        errors
    }
}

/// The `status` subresource of CRDs.
pub struct CrdStatusStrategy;

impl Strategy for CrdStatusStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        crate::native::StatusOnly.prepare_for_update(new, old);
    }
}

fn validate_crd(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = &object["spec"];
    let group = str_of(spec, &["group"]);
    let plural = str_of(spec, &["names", "plural"]);
    let kind = str_of(spec, &["names", "kind"]);
    let name = registry::object::name(object);
    if group.is_empty() {
        errors.push(FieldError::required("spec.group", ""));
    } else {
        for message in is_dns1123_subdomain(group) {
            errors.push(FieldError::invalid("spec.group", group, message));
        }
        if !group.contains('.') {
            errors.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    if plural.is_empty() {
        errors.push(FieldError::required("spec.names.plural", ""));
    } else {
        for message in is_dns1123_label(plural) {
            errors.push(FieldError::invalid("spec.names.plural", plural, message));
        }
    }
    let singular = str_of(spec, &["names", "singular"]);
    for message in is_dns1123_label(singular) {
        errors.push(FieldError::invalid(
            "spec.names.singular",
            singular,
            message,
        ));
    }
    if kind.is_empty() {
        errors.push(FieldError::required("spec.names.kind", ""));
    } else if !kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        || !kind.chars().all(|c| c.is_ascii_alphanumeric())
    {
        errors.push(FieldError::invalid(
            "spec.names.kind",
            kind,
            "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
        ));
    }
    for (i, short) in spec["names"]["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let short = short.as_str().unwrap_or("");
        for message in is_dns1123_label(short) {
            errors.push(FieldError::invalid(
                format!("spec.names.shortNames[{i}]"),
                short,
                message,
            ));
        }
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = str_of(spec, &["scope"]);
    if !["Namespaced", "Cluster"].contains(&scope) {
        if scope.is_empty() {
            errors.push(FieldError::required("spec.scope", ""));
        } else {
            errors.push(FieldError::not_supported(
                "spec.scope",
                scope,
                &["Cluster", "Namespaced"],
            ));
        }
    }
    let strategy = str_of(spec, &["conversion", "strategy"]);
    if strategy != "None" {
        errors.push(FieldError::not_supported(
            "spec.conversion.strategy",
            strategy,
            &["None"],
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errors.push(FieldError::invalid(
            "spec.versions",
            "null",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errors.push(FieldError::invalid(
            "spec.versions",
            format!("{} versions marked as storage", storage),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions.is_empty() && !versions.iter().any(|v| v["served"] == json!(true)) {
        errors.push(FieldError::invalid(
            "spec.versions",
            "no served versions",
            "must have at least one served version",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, version) in versions.iter().enumerate() {
        let at = format!("spec.versions[{i}]");
        let name = str_of(version, &["name"]);
        for message in is_dns1123_label(name) {
            errors.push(FieldError::invalid(format!("{at}.name"), name, message));
        }
        if !seen.insert(name.to_string()) {
            errors.push(FieldError::duplicate(format!("{at}.name"), name));
        }
        let schema = &version["schema"]["openAPIV3Schema"];
        if schema.is_null() {
            errors.push(FieldError::required(
                format!("{at}.schema.openAPIV3Schema"),
                "schemas are required",
            ));
        } else {
            structural(
                schema,
                &format!("{at}.schema.openAPIV3Schema"),
                true,
                &mut errors,
            );
        }
        for (j, column) in version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{at}.additionalPrinterColumns[{j}]");
            if str_of(column, &["name"]).is_empty() {
                errors.push(FieldError::required(format!("{at}.name"), ""));
            }
            let type_ = str_of(column, &["type"]);
            let types = ["integer", "number", "string", "boolean", "date"];
            if !types.contains(&type_) {
                errors.push(FieldError::not_supported(
                    format!("{at}.type"),
                    type_,
                    &types,
                ));
            }
            if str_of(column, &["jsonPath"]).is_empty() {
                errors.push(FieldError::required(format!("{at}.jsonPath"), ""));
            }
        }
        let selectable = version["selectableFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if selectable.len() > 8 {
            errors.push(FieldError {
                path: format!("{at}.selectableFields"),
                kind: apimachinery::FieldErrorKind::TooMany,
                detail: "must have at most 8 items".into(),
            });
        }
        for (j, field) in selectable.iter().enumerate() {
            let path = str_of(field, &["jsonPath"]);
            let probe = Schema::new(schema.clone(), Arc::new(Components::new()), true);
            let type_ = probe
                .at_path(path)
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !["string", "integer", "boolean"].contains(&type_) {
                errors.push(FieldError::invalid(
                    format!("{at}.selectableFields[{j}].jsonPath"),
                    path,
                    "must point to a field of type string, boolean or integer in the schema",
                ));
            }
        }
    }
    errors
}

/// The structural-schema rules that matter for serving: every node has a type (unless it is
/// int-or-string or keeps unknown fields), and `properties` and `additionalProperties` exclude
/// each other.
fn structural(schema: &Value, path: &str, root: bool, errors: &mut Vec<FieldError>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    let typed = map
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&json!(true));
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if !typed && !int_or_string && !preserve {
        errors.push(FieldError::required(
            format!("{path}.type"),
            "must not be empty for specified object fields",
        ));
    }
    if root
        && map
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "object")
    {
        errors.push(FieldError::invalid(
            format!("{path}.type"),
            map["type"].as_str().unwrap_or(""),
            "must be object at the root",
        ));
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        errors.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            if root && name == "metadata" {
                continue;
            }
            structural(sub, &format!("{path}.properties[{name}]"), false, errors);
        }
    }
    if let Some(items) = map.get("items") {
        structural(items, &format!("{path}.items"), false, errors);
    }
    if let Some(additional) = map.get("additionalProperties").filter(|a| a.is_object()) {
        structural(
            additional,
            &format!("{path}.additionalProperties"),
            false,
            errors,
        );
    }
}

/// The strategy of a custom resource (main resource or `status`).
pub struct CustomStrategy {
    schema: Schema,
    status_subresource: bool,
    status_only: bool,
    selectable: Vec<String>,
}

impl Strategy for CustomStrategy {
    fn name_rule(&self) -> NameRule {
        if self.status_only {
            NameRule::PathSegment
        } else {
            NameRule::Dns1123Subdomain
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        if self.status_subresource
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if self.status_only {
            crate::native::StatusOnly.prepare_for_update(new, old);
        } else if self.status_subresource {
            keep_status(new, old);
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        self.schema.validate(object)
    }

    fn selectable_fields(&self) -> Vec<String> {
        self.selectable.clone()
    }

    fn field(&self, object: &Value, field: &str) -> Option<String> {
        let mut node = object;
        for part in field.trim_start_matches('.').split('.') {
            node = node.get(part)?;
        }
        Some(match node {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// The kind schema a CRD version publishes: its `openAPIV3Schema` with `metadata` as
/// ObjectMeta, the type fields described, and the GVK extension.
fn published_schema(version_schema: &Value, group: &str, version: &str, kind: &str) -> Value {
    let mut schema = version_schema.clone();
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    let properties = &mut schema["properties"];
    properties["metadata"] = json!({"allOf": [{"$ref": OBJECT_META}], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
    for (field, doc) in [("apiVersion", API_VERSION_DOC), ("kind", KIND_DOC)] {
        if !properties[field].is_object() {
            properties[field] = json!({"type": "string"});
        }
        if properties[field]["description"].is_null() {
            properties[field]["description"] = doc.into();
        }
    }
    schema["x-kubernetes-group-version-kind"] =
        json!([{"group": group, "version": version, "kind": kind}]);
    schema
}

/// The served resources a CRD defines, their schemas resolving in `components` (which must
/// hold the CRD's [`components`] and the meta schemas).
pub fn kinds(crd: &Value, components: &Arc<Components>) -> Vec<Kind> {
    let mut kinds = Vec::new();
    let spec = &crd["spec"];
    let group = str_of(spec, &["group"]).to_string();
    let plural = str_of(spec, &["names", "plural"]).to_string();
    let kind_name = str_of(spec, &["names", "kind"]).to_string();
    let namespaced = str_of(spec, &["scope"]) == "Namespaced";
    let terminating = !registry::object::meta_str(crd, "deletionTimestamp").is_empty();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == json!(true))
        .map(|v| str_of(v, &["name"]).to_string())
        .unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    for version in versions.iter().filter(|v| v["served"] == json!(true)) {
        let name = str_of(version, &["name"]).to_string();
        let component = schema_name(&group, &name, &kind_name);
        let schema = Schema::new(
            json!({"$ref": format!("#/components/schemas/{component}")}),
            components.clone(),
            true,
        );
        let status_subresource = version["subresources"]["status"].is_object();
        let selectable: Vec<String> = version["selectableFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["jsonPath"].as_str())
            .map(|p| p.trim_start_matches('.').to_string())
            .collect();
        let strategy = |status_only| -> Arc<dyn Strategy> {
            Arc::new(CustomStrategy {
                schema: schema.clone(),
                status_subresource,
                status_only,
                selectable: selectable.clone(),
            })
        };
        let main = Resource {
            group: group.clone(),
            resource: plural.clone(),
            kind: kind_name.clone(),
            namespaced,
            strategy: strategy(false),
        };
        let status = status_subresource.then(|| Resource {
            strategy: strategy(true),
            ..main.clone()
        });
        let scale = version["subresources"]["scale"]
            .as_object()
            .map(|scale| ScalePaths {
                spec_replicas: scale
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .into(),
                status_replicas: scale
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .into(),
                label_selector: scale
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        let mut columns = Vec::new();
        let mut paths = Vec::new();
        for column in version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            columns.push(Column {
                name: str_of(column, &["name"]).into(),
                type_: str_of(column, &["type"]).into(),
                format: str_of(column, &["format"]).into(),
                description: str_of(column, &["description"]).into(),
                priority: column["priority"].as_i64().unwrap_or(0),
            });
            paths.push(str_of(column, &["jsonPath"]).into());
        }
        if columns.is_empty() {
            columns.push(Column::new(
                "Age",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ));
            paths.push(".metadata.creationTimestamp".into());
        }
        kinds.push(Kind {
            group: group.clone(),
            version: name.clone(),
            resource: plural.clone(),
            kind: kind_name.clone(),
            singular: str_of(spec, &["names", "singular"]).to_string(),
            short_names: strings(&spec["names"]["shortNames"]),
            categories: strings(&spec["names"]["categories"]),
            namespaced,
            storage_version: storage_version.clone(),
            main,
            status,
            scale,
            printer: Printer::Paths { columns, paths },
            schema_name: component,
            schema,
            native: false,
            selectable_fields: selectable,
            computed: None,
            create_subresources: Vec::new(),
            terminating,
            finalize: None,
            settles_catalog: false,
        });
    }
    kinds
}

/// The component schemas a CRD publishes: one per served version.
pub fn components(crd: &Value) -> Components {
    let spec = &crd["spec"];
    let group = str_of(spec, &["group"]);
    let kind = str_of(spec, &["names", "kind"]);
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"] == json!(true))
        .map(|version| {
            let name = str_of(version, &["name"]);
            (
                schema_name(group, name, kind),
                published_schema(&version["schema"]["openAPIV3Schema"], group, name, kind),
            )
        })
        .collect()
}

/// The status an accepted CRD has: names accepted, established, stored versions.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let spec = &crd["spec"];
    let storage: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == json!(true))
        .map(|v| v["name"].clone())
        .collect();
    let mut stored: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for version in storage {
        if !stored.contains(&version) {
            stored.push(version);
        }
    }
    let condition = |type_: &str, reason: &str, message: &str| {
        let previous = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_ && c["status"] == "True")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_string();
        json!({"type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": previous})
    };
    json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": spec["names"],
        "storedVersions": stored,
    })
}
