//! The native kinds Adamant reuses: Namespace, ConfigMap, Secret, ServiceAccount,
//! PersistentVolumeClaim and StorageClass, with kube-apiserver's validation rules written out, their printers, and their
//! schemas (the shapes come from `k8s-openapi`). Events and Leases are registered here from
//! their own modules ([`crate::events`], [`crate::coordination`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::FieldError;
use apimachinery::meta::NameRule;
use apimachinery::validation::{is_dns1123_subdomain, is_qualified_name};
use base64::Engine;
use registry::{Resource, Strategy};
use serde_json::{Map, Value, json};

use crate::catalog::{Column, CreateSubresource, Kind, Printer};
use crate::schema::{Components, Schema};

/// The largest ConfigMap or Secret payload (kube's `MaxSecretSize`).
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// The component schemas of the native kinds and the meta types, from `k8s-openapi`.
pub fn components() -> Components {
    use k8s_openapi::api::autoscaling::v1::Scale;
    use k8s_openapi::api::core::v1::{
        ConfigMap, Namespace, PersistentVolumeClaim, Secret, ServiceAccount,
    };
    use k8s_openapi::api::storage::v1::StorageClass;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Status};

    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<ConfigMap>();
    generator.subschema_for::<Secret>();
    generator.subschema_for::<Namespace>();
    generator.subschema_for::<ServiceAccount>();
    generator.subschema_for::<PersistentVolumeClaim>();
    generator.subschema_for::<StorageClass>();
    generator.subschema_for::<k8s_openapi::api::core::v1::Event>();
    generator.subschema_for::<k8s_openapi::api::events::v1::Event>();
    generator.subschema_for::<k8s_openapi::api::coordination::v1::Lease>();
    generator.subschema_for::<CustomResourceDefinition>();
    generator.subschema_for::<Scale>();
    generator.subschema_for::<ListMeta>();
    generator.subschema_for::<Status>();
    generator.subschema_for::<DeleteOptions>();
    let mut components: Components = generator.take_definitions(true).into_iter().collect();
    // `FieldsV1` (managedFields) is a free-form set of field paths.
    if let Some(fields) = components.get_mut("io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1") {
        *fields = json!({
            "description": fields["description"].clone(),
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        });
    }
    // `JSON` (defaults, enums and examples in CRD schemas) takes any JSON value.
    if let Some(json) =
        components.get_mut("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON")
    {
        *json = json!({
            "description": json["description"].clone(),
            "x-kubernetes-preserve-unknown-fields": true,
        });
    }
    for (group, version, kind) in [
        ("", "v1", "ConfigMap"),
        ("", "v1", "Secret"),
        ("", "v1", "Namespace"),
        ("", "v1", "ServiceAccount"),
        ("", "v1", "PersistentVolumeClaim"),
        ("storage.k8s.io", "v1", "StorageClass"),
        ("", "v1", "Event"),
        ("events.k8s.io", "v1", "Event"),
        ("coordination.k8s.io", "v1", "Lease"),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ("autoscaling", "v1", "Scale"),
        ("", "v1", "Status"),
        ("", "v1", "DeleteOptions"),
    ] {
        let name = native_schema_name(group, version, kind);
        if let Some(Value::Object(schema)) = components.get_mut(&name) {
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": kind}]),
            );
        }
    }
    crate::webhooks::add_components(&mut components);
    crate::rbac::add_components(&mut components);
    crate::strategic::annotate(&mut components);
    components
}

/// The component name of a native kind (`io.k8s.api.core.v1.ConfigMap`).
pub fn native_schema_name(group: &str, version: &str, kind: &str) -> String {
    match (group, kind) {
        ("", "Status" | "DeleteOptions") => format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}"),
        ("", _) => format!("io.k8s.api.core.{version}.{kind}"),
        ("apiextensions.k8s.io", _) => {
            format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}")
        }
        ("rbac.authorization.k8s.io", _) => format!("io.k8s.api.rbac.{version}.{kind}"),
        (group, _) => {
            let short = group.strip_suffix(".k8s.io").unwrap_or(group);
            format!("io.k8s.api.{short}.{version}.{kind}")
        }
    }
}

pub(crate) fn age(object: &Value) -> Value {
    object["metadata"]["creationTimestamp"].clone()
}

pub(crate) fn count(value: &Value) -> usize {
    value.as_object().map_or(0, Map::len)
}

pub(crate) fn str_at<'a>(object: &'a Value, path: &[&str]) -> &'a str {
    let mut node = object;
    for part in path {
        node = &node[*part];
    }
    node.as_str().unwrap_or("")
}

/// Describes a native kind to the catalog.
#[allow(clippy::too_many_arguments)]
pub(crate) fn kind(
    components: &Arc<Components>,
    group: &str,
    resource: &str,
    kind: &str,
    short_names: &[&str],
    namespaced: bool,
    strategy: Arc<dyn Strategy>,
    status: Option<Arc<dyn Strategy>>,
    columns: Vec<Column>,
    cells: fn(&Value) -> Vec<Value>,
    selectable: &[&str],
) -> Kind {
    let name = native_schema_name(group, "v1", kind);
    let main = Resource {
        group: group.into(),
        resource: resource.into(),
        kind: kind.into(),
        namespaced,
        strategy,
    };
    let status = status.map(|strategy| Resource {
        strategy,
        ..main.clone()
    });
    Kind {
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        kind: kind.into(),
        singular: kind.to_lowercase(),
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        namespaced,
        storage_version: "v1".into(),
        main,
        status,
        scale: None,
        printer: Printer::Native { columns, cells },
        schema: Schema::new(
            json!({"$ref": format!("#/components/schemas/{name}")}),
            components.clone(),
            false,
        ),
        schema_name: name,
        native: true,
        selectable_fields: selectable.iter().map(|s| s.to_string()).collect(),
        computed: None,
        create_subresources: Vec::new(),
        terminating: false,
        finalize: None,
        settles_catalog: false,
    }
}

/// The native kinds, over `components` (which must hold [`components`]).
pub fn kinds(components: &Arc<Components>) -> Vec<Kind> {
    let age_column = || {
        Column::new(
            "Age",
            "date",
            0,
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        )
    };
    vec![
        Kind {
            finalize: Some(namespace_finalize_resource()),
            ..kind(
                components,
                "",
                "namespaces",
                "Namespace",
                &["ns"],
                false,
                Arc::new(NamespaceStrategy),
                Some(Arc::new(StatusOnly)),
                vec![
                    Column::new("Status", "string", 0, "The status of the namespace"),
                    age_column(),
                ],
                |o| vec![json!(str_at(o, &["status", "phase"])), age(o)],
                &["status.phase"],
            )
        },
        kind(
            components,
            "",
            "configmaps",
            "ConfigMap",
            &["cm"],
            true,
            Arc::new(ConfigMapStrategy),
            None,
            vec![
                Column::new("Data", "integer", 0, "Number of data entries"),
                age_column(),
            ],
            |o| vec![json!(count(&o["data"]) + count(&o["binaryData"])), age(o)],
            &[],
        ),
        kind(
            components,
            "",
            "secrets",
            "Secret",
            &[],
            true,
            Arc::new(SecretStrategy),
            None,
            vec![
                Column::new("Type", "string", 0, "The type of the secret"),
                Column::new("Data", "integer", 0, "Number of data entries"),
                age_column(),
            ],
            |o| {
                let type_ = match str_at(o, &["type"]) {
                    "" => "Opaque",
                    t => t,
                };
                vec![json!(type_), json!(count(&o["data"])), age(o)]
            },
            &["type"],
        ),
        Kind {
            create_subresources: vec![(
                "token",
                Arc::new(crate::serviceaccounts::TokenRequests) as Arc<dyn CreateSubresource>,
            )],
            ..kind(
                components,
                "",
                "serviceaccounts",
                "ServiceAccount",
                &["sa"],
                true,
                Arc::new(ServiceAccountStrategy),
                None,
                vec![
                    Column::new("Secrets", "integer", 0, "Number of secrets"),
                    age_column(),
                ],
                |o| {
                    let secrets = o["secrets"].as_array().map_or(0, Vec::len);
                    vec![json!(secrets), age(o)]
                },
                &[],
            )
        },
        kind(
            components,
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            &["pvc"],
            true,
            Arc::new(ClaimStrategy),
            Some(Arc::new(StatusOnly)),
            vec![
                Column::new("Status", "string", 0, "The phase of the claim"),
                Column::new("Volume", "string", 0, "The bound volume"),
                Column::new("Capacity", "string", 0, "The capacity of the bound volume"),
                Column::new("Access Modes", "string", 0, "The access modes"),
                Column::new("StorageClass", "string", 0, "The storage class"),
                Column::new(
                    "VolumeAttributesClass",
                    "string",
                    0,
                    "The volume attributes class",
                ),
                age_column(),
                Column::new("VolumeMode", "string", 1, "The volume mode"),
            ],
            |o| {
                let modes: Vec<&str> = o["spec"]["accessModes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|m| match m {
                        "ReadWriteOnce" => "RWO",
                        "ReadOnlyMany" => "ROX",
                        "ReadWriteMany" => "RWX",
                        "ReadWriteOncePod" => "RWOP",
                        other => other,
                    })
                    .collect();
                let class = str_at(o, &["spec", "volumeAttributesClassName"]);
                vec![
                    json!(str_at(o, &["status", "phase"])),
                    json!(str_at(o, &["spec", "volumeName"])),
                    json!(str_at(o, &["status", "capacity", "storage"])),
                    json!(modes.join(",")),
                    json!(str_at(o, &["spec", "storageClassName"])),
                    json!(if class.is_empty() { "<unset>" } else { class }),
                    age(o),
                    json!(str_at(o, &["spec", "volumeMode"])),
                ]
            },
            &[],
        ),
        kind(
            components,
            "storage.k8s.io",
            "storageclasses",
            "StorageClass",
            &["sc"],
            false,
            Arc::new(StorageClassStrategy),
            None,
            vec![
                Column::new("Provisioner", "string", 0, "The provisioner"),
                Column::new(
                    "ReclaimPolicy",
                    "string",
                    0,
                    "What happens to released volumes",
                ),
                Column::new("VolumeBindingMode", "string", 0, "When volumes are bound"),
                Column::new(
                    "AllowVolumeExpansion",
                    "boolean",
                    0,
                    "Whether volumes may grow",
                ),
                age_column(),
            ],
            |o| {
                vec![
                    json!(str_at(o, &["provisioner"])),
                    json!(str_at(o, &["reclaimPolicy"])),
                    json!(str_at(o, &["volumeBindingMode"])),
                    json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false)),
                    age(o),
                ]
            },
            &[],
        ),
        crate::events::core_kind(components),
        crate::events::events_kind(components),
        crate::coordination::lease_kind(components),
    ]
    .into_iter()
    .chain(crate::webhooks::kinds(components))
    .chain(crate::rbac::kinds(components))
    .collect()
}

/// The name shown in a StorageClass row: with `(default)` for the default class.
pub fn storage_class_display_name(object: &Value) -> Option<String> {
    let default = object["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        .as_str()
        == Some("true");
    default.then(|| format!("{} (default)", registry::object::name(object)))
}

/// The `status` subresource of a native kind: only `status` changes.
pub struct StatusOnly;

impl Strategy for StatusOnly {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let status = new.get("status").cloned();
        // The field managers the HTTP layer recorded for this status write.
        let managed = new["metadata"].get("managedFields").cloned();
        *new = old.clone();
        match status {
            Some(status) => new["status"] = status,
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
        if let Some(managed) = managed {
            registry::object::meta_mut(new).insert("managedFields".into(), managed);
        }
    }
}

/// The `finalize` subresource of Namespaces: only `spec.finalizers` changes.
pub struct NamespaceFinalize;

impl Strategy for NamespaceFinalize {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn holds_deletion(&self, object: &Value) -> bool {
        NamespaceStrategy.holds_deletion(object)
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let finalizers = new["spec"]["finalizers"].clone();
        *new = old.clone();
        new["spec"]["finalizers"] = if finalizers.is_null() {
            json!([])
        } else {
            finalizers
        };
    }
}

/// The registry resource of the `finalize` subresource of Namespaces.
pub fn namespace_finalize_resource() -> Resource {
    plain(
        "",
        "namespaces",
        "Namespace",
        false,
        Arc::new(NamespaceFinalize),
    )
}

/// Copies the old status into an update of the main resource.
pub fn keep_status(new: &mut Value, old: &Value) {
    if let Some(map) = new.as_object_mut() {
        match old.get("status") {
            Some(status) => {
                map.insert("status".into(), status.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
}

/// The Namespace strategy.
pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1123Label
    }

    fn prepare_for_create(&self, object: &mut Value) {
        let name = registry::object::name(object).to_string();
        let map = object.as_object_mut().expect("an object");
        map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        map.insert("status".into(), json!({"phase": "Active"}));
        let meta = registry::object::meta_mut(object);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), name.into());
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        new["spec"] = old["spec"].clone();
        let name = registry::object::name(old).to_string();
        let meta = registry::object::meta_mut(new);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), name.into());
        }
    }

    fn holds_deletion(&self, object: &Value) -> bool {
        object["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    }

    fn prepare_for_delete(&self, object: &mut Value) {
        object["status"]["phase"] = "Terminating".into();
    }

    fn refuse_delete(&self, object: &Value) -> Option<String> {
        crate::server::SYSTEM_NAMESPACES
            .contains(&registry::object::name(object))
            .then(|| "this namespace may not be deleted".into())
    }

    fn selectable_fields(&self) -> Vec<String> {
        vec!["status.phase".into()]
    }

    fn field(&self, object: &Value, field: &str) -> Option<String> {
        (field == "status.phase").then(|| str_at(object, &["status", "phase"]).to_string())
    }
}

/// kube-apiserver's rule for ConfigMap and Secret keys.
fn check_key(path: &str, key: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let valid_chars = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let at = format!("{path}[{key}]");
    if key.len() > 253 {
        errors.push(FieldError::invalid(
            &at,
            key,
            "must be no more than 253 characters",
        ));
    }
    if !valid_chars {
        errors.push(FieldError::invalid(&at, key, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
    }
    if key == "." {
        errors.push(FieldError::invalid(&at, key, "must not be '.'"));
    } else if key == ".." {
        errors.push(FieldError::invalid(&at, key, "must not be '..'"));
    } else if key.starts_with("..") {
        errors.push(FieldError::invalid(&at, key, "must not start with '..'"));
    }
    errors
}

fn keys(object: &Value, field: &str) -> Vec<String> {
    object[field]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn immutable_payload(new: &Value, old: &Value, fields: &[&str]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old["immutable"] == json!(true) {
        if new["immutable"] != json!(true) {
            errors.push(FieldError::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for field in fields {
            if new.get(*field) != old.get(*field) {
                errors.push(FieldError::forbidden(
                    *field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errors
}

/// The ServiceAccount strategy: a name and the fields of the object, nothing more.
pub struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {}

/// The ConfigMap strategy.
pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut size = 0;
        let binary = keys(object, "binaryData");
        for key in keys(object, "data") {
            errors.extend(check_key("data", &key));
            if binary.contains(&key) {
                errors.push(FieldError::invalid(
                    format!("data[{key}]"),
                    &key,
                    "duplicate of key present in binaryData",
                ));
            }
            size += key.len() + object["data"][&key].as_str().map_or(0, str::len);
        }
        for key in &binary {
            errors.extend(check_key("binaryData", key));
            let value = object["binaryData"][key].as_str().unwrap_or("");
            size += key.len()
                + base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .map_or(value.len(), |v| v.len());
        }
        if size > MAX_PAYLOAD {
            errors.push(FieldError::too_long("", MAX_PAYLOAD));
        }
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        immutable_payload(new, old, &["data", "binaryData"])
    }
}

/// The Secret types and the keys each requires.
const SECRET_TYPES: &[(&str, &[&str])] = &[
    ("Opaque", &[]),
    ("kubernetes.io/dockercfg", &[".dockercfg"]),
    ("kubernetes.io/dockerconfigjson", &[".dockerconfigjson"]),
    ("kubernetes.io/ssh-auth", &["ssh-privatekey"]),
    ("kubernetes.io/tls", &["tls.crt", "tls.key"]),
];

/// The Secret strategy.
pub struct SecretStrategy;

impl SecretStrategy {
    /// Folds `stringData` into `data` (base64) and fills in the default type.
    fn normalize(object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        if let Some(Value::Object(strings)) = map.remove("stringData") {
            let data = map.entry("data").or_insert_with(|| json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            for (key, value) in strings {
                let text = value.as_str().unwrap_or("").to_string();
                data[&key] = base64::engine::general_purpose::STANDARD
                    .encode(text)
                    .into();
            }
        }
        if map
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            map.insert("type".into(), "Opaque".into());
        }
    }
}

impl Strategy for SecretStrategy {
    fn prepare_for_create(&self, object: &mut Value) {
        Self::normalize(object);
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        Self::normalize(new);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut size = 0;
        let data = keys(object, "data");
        for key in &data {
            errors.extend(check_key("data", key));
            let value = object["data"][key].as_str().unwrap_or("");
            size += base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_or(value.len(), |v| v.len());
        }
        if size > MAX_PAYLOAD {
            errors.push(FieldError::too_long("data", MAX_PAYLOAD));
        }
        let type_ = str_at(object, &["type"]);
        match type_ {
            "kubernetes.io/service-account-token" => {
                if registry::object::meta_map(object, "annotations")
                    .get("kubernetes.io/service-account.name")
                    .is_none_or(String::is_empty)
                {
                    errors.push(FieldError::required(
                        "metadata.annotations[kubernetes.io/service-account.name]",
                        "",
                    ));
                }
            }
            "kubernetes.io/basic-auth" => {
                if !data.iter().any(|k| k == "username" || k == "password") {
                    errors.push(FieldError::required("data[username]", ""));
                    errors.push(FieldError::required("data[password]", ""));
                }
            }
            "bootstrap.kubernetes.io/token" => {}
            _ => {
                if let Some((_, required)) = SECRET_TYPES.iter().find(|(t, _)| *t == type_) {
                    for key in *required {
                        if !data.iter().any(|k| k == key) {
                            errors.push(FieldError::required(format!("data[{key}]"), ""));
                        }
                    }
                } else if !is_qualified_name(type_).is_empty() {
                    for message in is_qualified_name(type_) {
                        errors.push(FieldError::invalid("type", type_, message));
                    }
                }
            }
        }
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = immutable_payload(new, old, &["data"]);
        if new["type"] != old["type"] {
            errors.push(FieldError::invalid(
                "type",
                str_at(new, &["type"]),
                "field is immutable",
            ));
        }
        errors
    }

    fn selectable_fields(&self) -> Vec<String> {
        vec!["type".into()]
    }

    fn field(&self, object: &Value, field: &str) -> Option<String> {
        (field == "type").then(|| str_at(object, &["type"]).to_string())
    }
}

/// What to write instead of an unknown field that the EVE specification's text spells: its
/// PersistentVolumeClaims name an Image's group as `group: eve.lfedge.org/v1beta1`, which is not a
/// field of a data source (`apiGroup` is, without a version).
pub(crate) fn unknown_field_hint(group: &str, kind: &str, path: &str) -> Option<&'static str> {
    match (group, kind, path) {
        ("", "PersistentVolumeClaim", "spec.dataSourceRef.group" | "spec.dataSource.group") => {
            Some(
                "a data source names its group in apiGroup, without a version: write apiGroup: eve.lfedge.org for an Image",
            )
        }
        _ => None,
    }
}

/// The PersistentVolumeClaim strategy.
pub struct ClaimStrategy;

const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

impl Strategy for ClaimStrategy {
    fn prepare_for_create(&self, object: &mut Value) {
        object["status"] = json!({"phase": "Pending"});
        if object["spec"].is_object() && object["spec"]["volumeMode"].is_null() {
            object["spec"]["volumeMode"] = "Filesystem".into();
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        if new["spec"].is_object() && new["spec"]["volumeMode"].is_null() {
            new["spec"]["volumeMode"] = old["spec"]["volumeMode"].clone();
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let spec = &object["spec"];
        let modes = spec["accessModes"].as_array().cloned().unwrap_or_default();
        if modes.is_empty() {
            errors.push(FieldError::required(
                "spec.accessModes",
                "at least 1 access mode is required",
            ));
        }
        for mode in &modes {
            let mode = mode.as_str().unwrap_or("");
            if !ACCESS_MODES.contains(&mode) {
                errors.push(FieldError::not_supported(
                    "spec.accessModes",
                    mode,
                    ACCESS_MODES,
                ));
            }
        }
        if modes.iter().any(|m| m == "ReadWriteOncePod") && modes.len() > 1 {
            errors.push(FieldError::forbidden(
                "spec.accessModes",
                "may not use ReadWriteOncePod with other access modes",
            ));
        }
        match &spec["resources"]["requests"]["storage"] {
            Value::Null => errors.push(FieldError::required("spec.resources[storage]", "")),
            quantity => {
                let text = match quantity {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match apimachinery::quantity::Quantity::parse(&text) {
                    Err(e) => errors.push(FieldError::invalid(
                        "spec.resources.requests[storage]",
                        &text,
                        e.to_string(),
                    )),
                    Ok(q) if !q.is_positive() => errors.push(FieldError::invalid(
                        "spec.resources[storage]",
                        &text,
                        "must be greater than zero",
                    )),
                    Ok(_) => {}
                }
            }
        }
        if let Some(mode) = spec["volumeMode"].as_str()
            && !["Filesystem", "Block"].contains(&mode)
        {
            errors.push(FieldError::not_supported(
                "spec.volumeMode",
                mode,
                &["Block", "Filesystem"],
            ));
        }
        if let Some(class) = spec["storageClassName"].as_str()
            && !class.is_empty()
        {
            for message in is_dns1123_subdomain(class) {
                errors.push(FieldError::invalid("spec.storageClassName", class, message));
            }
        }
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let strip = |o: &Value| {
            let mut spec = o["spec"].clone();
            if let Some(r) = spec["resources"].as_object_mut() {
                r.remove("requests");
            }
            if let Some(s) = spec.as_object_mut() {
                s.remove("volumeAttributesClassName");
            }
            spec
        };
        if strip(new) != strip(old) {
            return vec![FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            )];
        }
        Vec::new()
    }
}

/// The StorageClass strategy.
pub struct StorageClassStrategy;

impl Strategy for StorageClassStrategy {
    fn prepare_for_create(&self, object: &mut Value) {
        if object["reclaimPolicy"].is_null() {
            object["reclaimPolicy"] = "Delete".into();
        }
        if object["volumeBindingMode"].is_null() {
            object["volumeBindingMode"] = "Immediate".into();
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        for field in ["reclaimPolicy", "volumeBindingMode"] {
            if new[field].is_null() {
                new[field] = old[field].clone();
            }
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match object["provisioner"].as_str().unwrap_or("") {
            "" => errors.push(FieldError::required("provisioner", "")),
            provisioner => {
                if provisioner.len() > 63 {
                    errors.push(FieldError::too_long("provisioner", 63));
                }
                for message in is_qualified_name(&provisioner.to_lowercase()) {
                    errors.push(FieldError::invalid("provisioner", provisioner, message));
                }
            }
        }
        let parameters: BTreeMap<String, Value> = object["parameters"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        if parameters.len() > 512 {
            errors.push(FieldError {
                path: "parameters".into(),
                kind: apimachinery::FieldErrorKind::TooMany,
                detail: "must have at most 512 items".into(),
            });
        }
        let size: usize = parameters
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > 256 * 1024 {
            errors.push(FieldError::too_long("parameters", 256 * 1024));
        }
        if parameters.keys().any(String::is_empty) {
            errors.push(FieldError::invalid(
                "parameters",
                "",
                "key may not be empty",
            ));
        }
        if let Some(policy) = object["reclaimPolicy"].as_str()
            && !["Delete", "Retain"].contains(&policy)
        {
            errors.push(FieldError::not_supported(
                "reclaimPolicy",
                policy,
                &["Delete", "Retain"],
            ));
        }
        if let Some(mode) = object["volumeBindingMode"].as_str()
            && !["Immediate", "WaitForFirstConsumer"].contains(&mode)
        {
            errors.push(FieldError::not_supported(
                "volumeBindingMode",
                mode,
                &["Immediate", "WaitForFirstConsumer"],
            ));
        }
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if new["provisioner"] != old["provisioner"] {
            errors.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        let parameters = |o: &Value| o["parameters"].as_object().cloned().unwrap_or_default();
        if parameters(new) != parameters(old) {
            errors.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if new["reclaimPolicy"] != old["reclaimPolicy"] {
            errors.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        if new["volumeBindingMode"] != old["volumeBindingMode"] {
            errors.push(FieldError::forbidden(
                "volumeBindingMode",
                "field is immutable",
            ));
        }
        errors
    }
}

pub(crate) fn plain(
    group: &str,
    resource: &str,
    kind: &str,
    namespaced: bool,
    strategy: Arc<dyn Strategy>,
) -> Resource {
    Resource {
        group: group.into(),
        resource: resource.into(),
        kind: kind.into(),
        namespaced,
        strategy,
    }
}

/// The registry resource of Secrets.
pub fn secret_resource() -> Resource {
    plain("", "secrets", "Secret", true, Arc::new(SecretStrategy))
}

/// The registry resource of Namespaces.
pub fn namespace_resource() -> Resource {
    plain(
        "",
        "namespaces",
        "Namespace",
        false,
        Arc::new(NamespaceStrategy),
    )
}

/// The registry resource of ServiceAccounts.
pub fn service_account_resource() -> Resource {
    plain(
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        Arc::new(ServiceAccountStrategy),
    )
}

/// The registry resource of ConfigMaps.
pub fn config_map_resource() -> Resource {
    plain(
        "",
        "configmaps",
        "ConfigMap",
        true,
        Arc::new(ConfigMapStrategy),
    )
}
