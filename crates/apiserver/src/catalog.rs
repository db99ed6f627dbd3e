//! The catalog: every resource the server serves, native or defined by a
//! CustomResourceDefinition, with what discovery, OpenAPI, tables and validation need of it.
//! A catalog is immutable; the server swaps in a new one when CRDs change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::schema::{Components, Schema};

/// A column of a kind's table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// `name` for the name column, or a format hint.
    pub format: String,
    /// What the column shows.
    pub description: String,
    /// 0 is shown by default, more only with `-o wide`.
    pub priority: i64,
}

impl Column {
    /// A column.
    pub fn new(name: &str, type_: &str, priority: i64, description: &str) -> Column {
        Column {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: description.into(),
            priority,
        }
    }
}

/// How a kind's table rows are made.
#[derive(Clone)]
pub enum Printer {
    /// Columns computed by a native kind's printer (after the name column).
    Native {
        /// The columns after `Name`.
        columns: Vec<Column>,
        /// The cells of one object for those columns.
        cells: fn(&Value) -> Vec<Value>,
    },
    /// A CustomResourceDefinition's `additionalPrinterColumns`: JSONPaths into the object.
    Paths {
        /// The columns after `Name`.
        columns: Vec<Column>,
        /// One JSONPath per column.
        paths: Vec<String>,
    },
}

impl Printer {
    /// The columns after `Name`.
    pub fn columns(&self) -> &[Column] {
        match self {
            Printer::Native { columns, .. } | Printer::Paths { columns, .. } => columns,
        }
    }
}

/// The paths a `scale` subresource maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// Where the desired replicas are (`.spec.replicas`).
    pub spec_replicas: String,
    /// Where the observed replicas are (`.status.replicas`).
    pub status_replicas: String,
    /// Where the label selector (as a string) is, if anywhere.
    pub label_selector: Option<String>,
}

/// One served resource at one version.
#[derive(Clone)]
pub struct Kind {
    /// The API group ("" for core).
    pub group: String,
    /// The version served.
    pub version: String,
    /// The plural resource name.
    pub resource: String,
    /// The kind.
    pub kind: String,
    /// The singular resource name.
    pub singular: String,
    /// Short names (`cm`).
    pub short_names: Vec<String>,
    /// Categories (`all`, `eve`).
    pub categories: Vec<String>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The version objects are stored at (custom resources are converted by `apiVersion` only).
    pub storage_version: String,
    /// The registry resource of the main resource.
    pub main: registry::Resource,
    /// The registry resource of the `status` subresource, if the kind has one.
    pub status: Option<registry::Resource>,
    /// The `scale` subresource, if the kind has one.
    pub scale: Option<ScalePaths>,
    /// The registry resource of the `finalize` subresource (Namespaces), if the kind has one.
    pub finalize: Option<registry::Resource>,
    /// Whether a write returns only once the catalog has caught up with it (the served kinds
    /// change with it: CustomResourceDefinitions).
    pub settles_catalog: bool,
    /// The table printer.
    pub printer: Printer,
    /// The name of the kind's schema among the components.
    pub schema_name: String,
    /// The schema, for pruning, defaulting and strict field validation.
    pub schema: Schema,
    /// Whether the kind is native (strategic merge patch is on offer; type errors are decoding
    /// errors).
    pub native: bool,
    /// Field selectors beyond `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// For a virtual resource (the review APIs): how a create is answered. Create is then its
    /// only verb, and nothing is stored.
    pub computed: Option<Arc<dyn Computed>>,
    /// Subresources whose only verb is create, answered from the object they belong to with
    /// nothing stored (ServiceAccounts' `token`).
    pub create_subresources: Vec<(&'static str, Arc<dyn CreateSubresource>)>,
    /// Whether the kind's CRD is being deleted: its objects are still read, changed and deleted
    /// (finalizers must be able to let them go), none created.
    pub terminating: bool,
}

/// A subresource whose only verb is create: an answer computed from the object it belongs to
/// and the request, nothing stored (kube-apiserver's `serviceaccounts/token`).
#[async_trait::async_trait]
pub trait CreateSubresource: Send + Sync {
    /// What is posted and answered: (group, version, kind).
    fn kind(&self) -> (&'static str, &'static str, &'static str);

    /// The answer to a create of `object` on the object `name` in `namespace` by `user`.
    async fn create(
        &self,
        server: &crate::ApiServer,
        user: &crate::auth::User,
        namespace: &str,
        name: &str,
        object: Value,
    ) -> Result<Value, registry::ApiError>;
}

/// A virtual resource's answer to a create: an object computed from the request, nothing
/// stored (kube-apiserver's create-only REST storages such as SubjectAccessReview).
#[async_trait::async_trait]
pub trait Computed: Send + Sync {
    /// Reads a protobuf request body the generic codec has no form for; `None` when the kind
    /// takes JSON only.
    fn decode_protobuf(&self, _body: &[u8]) -> Option<Result<Value, String>> {
        None
    }

    /// The answer to a create of `object` (at the served version) in `namespace` (empty for
    /// cluster-scoped kinds) by `user`.
    async fn create(
        &self,
        server: &crate::ApiServer,
        user: &crate::auth::User,
        namespace: &str,
        object: Value,
    ) -> Result<Value, registry::ApiError>;
}

impl Kind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        group_version(&self.group, &self.version)
    }

    /// The create-only subresource `name`, if the kind has it.
    pub fn create_subresource(&self, name: &str) -> Option<&Arc<dyn CreateSubresource>> {
        self.create_subresources
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// The verbs the resource offers.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.computed.is_some() {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// The kind's name as messages qualify it (`Widget.example.com`).
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// `group/version`, or `version` for the core group.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Every served resource.
#[derive(Default)]
pub struct Catalog {
    /// The resources, natives first, then custom resources by group.
    pub kinds: Vec<Arc<Kind>>,
    /// The groups and their versions, preferred version first.
    pub groups: Vec<(String, Vec<String>)>,
    /// The component schemas of every group-version.
    pub components: Arc<Components>,
    /// The OpenAPI v3 documents, made on first use.
    pub openapi: std::sync::OnceLock<BTreeMap<String, crate::openapi::Document>>,
    /// The OpenAPI v2 document, made on first use.
    pub swagger: std::sync::OnceLock<bytes::Bytes>,
    /// The OpenAPI v2 document as protobuf ([`crate::openapi_proto`]), made on first use.
    pub swagger_protobuf:
        std::sync::OnceLock<Result<bytes::Bytes, crate::openapi_proto::OpenApiProtoError>>,
}

impl Catalog {
    /// A catalog of `kinds`, with `version_order` giving each group's versions in preference
    /// order.
    pub fn new(kinds: Vec<Kind>, components: Arc<Components>) -> Catalog {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for kind in &kinds {
            match groups.iter_mut().find(|(g, _)| *g == kind.group) {
                Some((_, versions)) => {
                    if !versions.contains(&kind.version) {
                        versions.push(kind.version.clone());
                    }
                }
                None => groups.push((kind.group.clone(), vec![kind.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        Catalog {
            kinds: kinds.into_iter().map(Arc::new).collect(),
            groups,
            components,
            openapi: Default::default(),
            swagger: Default::default(),
            swagger_protobuf: Default::default(),
        }
    }

    /// The resource served at `group`/`version` under `resource`.
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<&Arc<Kind>> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.resource == resource)
    }

    /// The resources of one group-version.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Kind>> + 'a {
        self.kinds
            .iter()
            .filter(move |k| k.group == group && k.version == version)
    }

    /// Whether the group-version is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.groups
            .iter()
            .any(|(g, vs)| g == group && vs.iter().any(|v| v == version))
    }

    /// Every namespaced resource once (at its storage version), for emptying namespaces.
    pub fn namespaced_storage(&self) -> Vec<Arc<Kind>> {
        let mut seen = BTreeSet::new();
        self.kinds
            .iter()
            .filter(|k| k.namespaced && k.version == k.storage_version && k.computed.is_none())
            .filter(|k| seen.insert((k.group.clone(), k.resource.clone())))
            .cloned()
            .collect()
    }
}

/// Kubernetes' version priority: GA over beta over alpha, higher numbers first, then anything
/// else in lexical order.
pub fn version_priority(version: &str) -> (u8, u64, u64, std::cmp::Reverse<String>) {
    let parse = |v: &str| -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let rest = &rest[digits.len()..];
        if rest.is_empty() {
            return Some((3, major, 0));
        }
        for (label, rank) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(minor) = rest.strip_prefix(label) {
                return Some((rank, major, minor.parse().ok()?));
            }
        }
        None
    };
    match parse(version) {
        Some((rank, major, minor)) => (rank, major, minor, std::cmp::Reverse(String::new())),
        None => (0, 0, 0, std::cmp::Reverse(version.to_string())),
    }
}

/// The component name of a kind's schema, as kube-apiserver names them: the reversed group
/// (`com.example`), the version and the kind.
pub fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The names of the components `roots` need, following `$ref`s.
pub fn reachable(components: &Components, roots: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.to_vec();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.get(&name) {
            collect_refs(schema, &mut todo);
        }
    }
    seen
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str)
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The schema of a kind's list, over the kind's schema.
pub fn list_schema(kind: &Kind) -> Value {
    json!({
        "description": format!("{}List is a list of {}", kind.kind, kind.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DOC},
            "kind": {"type": "string", "description": KIND_DOC},
            "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"}], "description": "Standard list metadata."},
            "items": {"type": "array", "description": format!("List of {}.", kind.resource), "items": {"$ref": format!("#/components/schemas/{}", kind.schema_name)}},
        },
        "x-kubernetes-group-version-kind": [{"group": kind.group, "version": kind.version, "kind": format!("{}List", kind.kind)}],
    })
}

/// The description of `apiVersion`.
pub const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
/// The description of `kind`.
pub const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Component schemas from several sources, merged.
pub fn merge_components(parts: impl IntoIterator<Item = Components>) -> Components {
    let mut all = BTreeMap::new();
    for part in parts {
        all.extend(part);
    }
    all
}
