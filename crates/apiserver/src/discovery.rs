//! Discovery: `/api`, `/apis`, per group and group-version (legacy), and the aggregated
//! `apidiscovery.k8s.io/v2` form of `/api` and `/apis`.

use serde_json::{Value, json};

use crate::catalog::{Catalog, Kind, group_version};

/// The Content-Type of aggregated discovery responses (clients pick the parser from it).
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery (v2).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

/// `/apis`.
pub fn api_group_list(catalog: &Catalog) -> Value {
    let groups: Vec<Value> = catalog
        .groups
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn api_group(catalog: &Catalog, group: &str) -> Option<Value> {
    let (_, versions) = catalog
        .groups
        .iter()
        .find(|(g, _)| g == group && !g.is_empty())?;
    let mut entry = group_entry(group, versions);
    entry["kind"] = "APIGroup".into();
    entry["apiVersion"] = "v1".into();
    Some(entry)
}

fn resource_entries(kind: &Kind) -> Vec<Value> {
    let mut main = json!({
        "name": kind.resource,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": kind.verbs(),
    });
    if !kind.short_names.is_empty() {
        main["shortNames"] = json!(kind.short_names);
    }
    if !kind.categories.is_empty() {
        main["categories"] = json!(kind.categories);
    }
    let mut entries = vec![main];
    if kind.status.is_some() {
        entries.push(json!({
            "name": format!("{}/status", kind.resource),
            "singularName": "",
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    if kind.scale.is_some() {
        entries.push(json!({
            "name": format!("{}/scale", kind.resource),
            "singularName": "",
            "namespaced": kind.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }));
    }
    for (name, subresource) in &kind.create_subresources {
        let (group, version, sub_kind) = subresource.kind();
        entries.push(json!({
            "name": format!("{}/{name}", kind.resource),
            "singularName": "",
            "namespaced": kind.namespaced,
            "group": group,
            "version": version,
            "kind": sub_kind,
            "verbs": ["create"],
        }));
    }
    entries
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(catalog: &Catalog, group: &str, version: &str) -> Option<Value> {
    if !catalog.has_group_version(group, version) {
        return None;
    }
    let resources: Vec<Value> = catalog
        .in_group_version(group, version)
        .flat_map(|k| resource_entries(k))
        .collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

fn discovery_resource(kind: &Kind) -> Value {
    let mut subresources = Vec::new();
    if kind.status.is_some() {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
            "verbs": ["get", "patch", "update"],
        }));
    }
    if kind.scale.is_some() {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"],
        }));
    }
    for (name, subresource) in &kind.create_subresources {
        let (group, version, sub_kind) = subresource.kind();
        subresources.push(json!({
            "subresource": name,
            "responseKind": {"group": group, "version": version, "kind": sub_kind},
            "verbs": ["create"],
        }));
    }
    let mut resource = json!({
        "resource": kind.resource,
        "responseKind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
        "scope": if kind.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": kind.singular,
        "verbs": kind.verbs(),
    });
    if !kind.short_names.is_empty() {
        resource["shortNames"] = json!(kind.short_names);
    }
    if !kind.categories.is_empty() {
        resource["categories"] = json!(kind.categories);
    }
    if !subresources.is_empty() {
        resource["subresources"] = Value::Array(subresources);
    }
    resource
}

/// Aggregated discovery of the core group (`core` true, for `/api`) or of the named groups
/// (`/apis`).
pub fn aggregated(catalog: &Catalog, core: bool) -> Value {
    let items: Vec<Value> = catalog
        .groups
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = catalog
                        .in_group_version(group, version)
                        .map(|k| discovery_resource(k))
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
