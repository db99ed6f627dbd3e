//! Strategic merge patch (`application/strategic-merge-patch+json`), as kube-apiserver applies it
//! to native kinds: a JSON merge patch whose lists merge by key, or as sets, where the schema says
//! so, with the directives `$patch`, `$retainKeys`, `$setElementOrder/…` and
//! `$deleteFromPrimitiveList/…`.
//!
//! The patch metadata kube reads from Go struct tags is read here from the schema of each list:
//! `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` first, else
//! `x-kubernetes-list-type` (`map` merges by `x-kubernetes-list-map-keys`, `set` as a set of
//! primitives). [`annotate`] writes it into the native component schemas, whose `k8s-openapi`
//! shapes lack it. Where the schema does not describe a field, maps merge and lists are replaced.
//!
//! Merged lists are ordered as kube orders them: the items the patch names in the patch's order,
//! interleaved with the others in their original order, an item the original lacks coming before
//! the original items not yet placed (so an item added alone comes first); `$setElementOrder`
//! then orders the items it names the same way. Directives never survive in the result.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::schema::{Components, Schema};

/// How deeply maps and lists may nest in a patch.
pub const MAX_DEPTH: usize = 100;

/// Why a strategic merge patch cannot be applied; each names the field path it is about first
/// (`spec.containers[2]`, `<root>`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch, or the object patched (`patch`, `patched object`), is not a JSON object but
    /// the JSON type given.
    #[error("the {0} must be a JSON object, not {1}")]
    NotAnObject(&'static str, &'static str),
    /// A `$` key that is no directive, in the map at the path.
    #[error("{0}: unknown patch directive {1:?}")]
    UnknownDirective(String, String),
    /// A directive (`$patch`, `$setElementOrder/containers`) of the map or list item at the path
    /// with a value it cannot take, and what is wrong.
    #[error("{0}: invalid {1}: {2}")]
    InvalidDirective(String, String, String),
    /// The item at the path, of a list merged by key, lacks the key given.
    #[error("{0}: the item has no merge key {1:?}")]
    MissingMergeKey(String, String),
    /// The patch value at the path is not of the schema's JSON type (a list patched with an
    /// object): expected and found.
    #[error("{0} must be of type {1} in the patch, not {2}")]
    TypeMismatch(String, String, &'static str),
    /// The list at the path cannot be merged: lists of lists, mixed items, objects without a key.
    #[error("{0}: {1}")]
    InvalidList(String, &'static str),
    /// The patch nests deeper than [`MAX_DEPTH`] at the path.
    #[error("{0}: the patch nests deeper than {MAX_DEPTH} levels")]
    TooDeep(String),
}

/// Applies a strategic merge `patch` to `original`, an object of the kind `schema` describes.
pub fn apply(original: &Value, patch: &Value, schema: &Schema) -> Result<Value, PatchError> {
    let not_an_object = |what, value| PatchError::NotAnObject(what, json_type(value));
    let Value::Object(patch) = patch else {
        return Err(not_an_object("patch", patch));
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        other => return Err(not_an_object("patched object", other)),
    };
    let root = Some(schema.resolve(&schema.root));
    let merged = Patcher { schema }.map(Some(original), patch, root, "", 0)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// Writes the patch metadata of the native kinds' list fields (kube's `patchStrategy`,
/// `patchMergeKey` and `+listType` tags) into their component schemas; absent components and
/// fields are skipped.
pub fn annotate(components: &mut Components) {
    let by = |key: &str| {
        json!({
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": key,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": [key],
        })
    };
    let set = json!({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"});
    let atomic = json!({"x-kubernetes-list-type": "atomic"});
    let by_name =
        json!({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"});
    #[rustfmt::skip]
    let fields = [
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", set),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", by("uid")),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "managedFields", atomic.clone()),
        ("io.k8s.api.core.v1.NamespaceStatus", "conditions", by("type")),
        ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "conditions", by("type")),
        ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "accessModes", atomic),
        ("io.k8s.api.core.v1.ServiceAccount", "secrets", by_name),
    ];
    for (component, field, metadata) in fields {
        let field = components
            .get_mut(component)
            .and_then(|c| c.get_mut("properties")?.get_mut(field));
        if let (Some(Value::Object(field)), Value::Object(metadata)) = (field, metadata) {
            field.extend(metadata);
        }
    }
}

/// A merged item with its index in the original list and in the patch's list.
type Placed = (Value, Option<usize>, Option<usize>);

struct Patcher<'a> {
    schema: &'a Schema,
}

impl<'a> Patcher<'a> {
    /// The resolved schema of `key` in the resolved object schema `node`.
    fn field(&self, node: Option<&'a Value>, key: &str) -> Option<&'a Value> {
        let node = node?;
        let sub = node.get("properties").and_then(|p| p.get(key));
        let sub = sub.or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
        sub.map(|s| self.schema.resolve(s))
    }

    /// `patch` merged into `original`, or `None` when the value goes.
    fn value(
        &self,
        original: Option<Value>,
        patch: &Value,
        node: Option<&'a Value>,
        path: &str,
        depth: usize,
    ) -> Result<Option<Value>, PatchError> {
        check_type(patch, node, path)?;
        Ok(match (original, patch) {
            (Some(Value::Object(original)), Value::Object(patch))
                if !strategies(node).contains(&"replace") =>
            {
                self.map(Some(original), patch, node, path, depth)?
                    .map(Value::Object)
            }
            (_, Value::Object(patch)) => {
                self.map(None, patch, node, path, depth)?.map(Value::Object)
            }
            (original, Value::Array(patch)) => {
                let original = match original {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                Some(Value::Array(self.list(original, patch, node, path, depth)?))
            }
            (_, other) => Some(other.clone()),
        })
    }

    fn map(
        &self,
        original: Option<Map<String, Value>>,
        patch: &Map<String, Value>,
        node: Option<&'a Value>,
        path: &str,
        depth: usize,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        if depth > MAX_DEPTH {
            return Err(PatchError::TooDeep(shown(path)));
        }
        let mut result = original.unwrap_or_default();
        match patch.get("$patch").map(|d| (d, d.as_str())) {
            None | Some((_, Some("merge"))) => {}
            Some((_, Some("replace"))) => result.clear(),
            Some((_, Some("delete"))) => return Ok(None),
            Some((other, _)) => return Err(unknown_patch_type(path, other)),
        }
        if let Some(retain) = patch.get("$retainKeys") {
            let keys: Option<HashSet<&str>> = retain
                .as_array()
                .and_then(|keys| keys.iter().map(Value::as_str).collect());
            let Some(keys) = keys else {
                return Err(invalid(
                    path,
                    "$retainKeys",
                    "must be a list of field names",
                ));
            };
            let unlisted = |(k, v): &(&String, &Value)| {
                !v.is_null() && !k.starts_with('$') && !keys.contains(k.as_str())
            };
            if let Some((key, _)) = patch.iter().find(unlisted) {
                let detail = format!("does not list the patched field {key:?}");
                return Err(invalid(path, "$retainKeys", detail));
            }
            result.retain(|k, _| keys.contains(k.as_str()));
        }
        // Directives first, so that an unknown one fails before any work.
        let (mut orders, mut deletions) = (Vec::new(), Vec::new());
        for (key, value) in patch {
            let order = key.strip_prefix("$setElementOrder/");
            let deletion = key.strip_prefix("$deleteFromPrimitiveList/");
            if order.is_some() || deletion.is_some() {
                let Value::Array(list) = value else {
                    return Err(invalid(path, key, "must be a list"));
                };
                if let Some(field) = order {
                    orders.push((field, key, list, result.get(field).cloned()));
                }
                deletions.extend(deletion.map(|field| (field, list)));
            } else if key.starts_with('$') && key != "$patch" && key != "$retainKeys" {
                return Err(PatchError::UnknownDirective(shown(path), key.clone()));
            }
        }
        for (key, value) in patch.iter().filter(|(k, _)| !k.starts_with('$')) {
            let existing = result.get_mut(key).map(Value::take);
            let merged = match value {
                Value::Null => None,
                value => {
                    let node = self.field(node, key);
                    self.value(existing, value, node, &child(path, key), depth + 1)?
                }
            };
            match merged {
                Some(merged) => result.insert(key.clone(), merged),
                None => result.remove(key),
            };
        }
        for (field, key, order, before) in orders {
            let (_, keys) = list_strategy(self.field(node, field));
            for (i, item) in order.iter().enumerate() {
                if identity(item, &keys).is_none() {
                    return Err(missing(&index(&child(path, key), i), &keys, item));
                }
            }
            if let Some(Value::Array(patched)) = patch.get(field) {
                check_order(patched, order, &keys, (path, field, key))?;
            }
            if let Some(Value::Array(list)) = result.get_mut(field) {
                let before = match before {
                    Some(Value::Array(before)) => before,
                    _ => Vec::new(),
                };
                *list = reorder(std::mem::take(list), order, &before, &keys);
            }
        }
        for (field, values) in deletions {
            if let Some(Value::Array(list)) = result.get_mut(field) {
                list.retain(|item| !values.contains(item));
            }
        }
        Ok(Some(result))
    }

    fn list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        node: Option<&'a Value>,
        path: &str,
        depth: usize,
    ) -> Result<Vec<Value>, PatchError> {
        if depth > MAX_DEPTH {
            return Err(PatchError::TooDeep(shown(path)));
        }
        let (merge, keys) = list_strategy(node);
        let item_node = node
            .and_then(|n| n.get("items"))
            .map(|s| self.schema.resolve(s));
        if !merge {
            let mut items = Vec::with_capacity(patch.len());
            for (i, item) in patch.iter().enumerate() {
                items.extend(self.value(None, item, item_node, &index(path, i), depth + 1)?);
            }
            return Ok(items);
        }
        for (i, item) in patch.iter().enumerate() {
            check_type(item, item_node, &index(path, i))?;
        }
        let mut objects = None;
        for item in original.iter().chain(patch) {
            let detail = if item.is_array() {
                "lists of lists are not supported"
            } else if *objects.get_or_insert(item.is_object()) != item.is_object() {
                "the items of the list are not all of one type"
            } else {
                continue;
            };
            return Err(PatchError::InvalidList(shown(path), detail));
        }
        match objects {
            None => Ok(original),
            Some(false) => Ok(settle(place(original, patch))),
            Some(true) if keys.is_empty() => {
                let detail = "a list of objects cannot be merged without a merge key";
                Err(PatchError::InvalidList(shown(path), detail))
            }
            Some(true) => self.merge_by_key(original, patch, &keys, item_node, path, depth + 1),
        }
    }

    fn merge_by_key(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        keys: &[String],
        item_node: Option<&'a Value>,
        path: &str,
        depth: usize,
    ) -> Result<Vec<Value>, PatchError> {
        let (mut plain, mut deleted, mut replace) = (Vec::new(), HashSet::new(), false);
        for (i, item) in patch.iter().enumerate() {
            let Value::Object(map) = item else { continue };
            let item_path = index(path, i);
            let id = identity(item, keys).ok_or_else(|| missing(&item_path, keys, item));
            match map.get("$patch").map(|d| (d, d.as_str())) {
                None => plain.push((id?, map, item_path)),
                Some((_, Some("delete"))) => _ = deleted.insert(id?),
                Some((_, Some("replace"))) => replace = true,
                Some((_, Some("merge"))) => {
                    let detail = "a list cannot be merged by a directive: merging is the default";
                    return Err(invalid(&item_path, "$patch", detail));
                }
                Some((other, _)) => return Err(unknown_patch_type(&item_path, other)),
            }
        }
        let merge =
            |existing, map: &Map<String, Value>, item_path: &str| -> Result<_, PatchError> {
                let merged = self.map(existing, map, item_node, item_path, depth)?;
                Ok(Value::Object(merged.unwrap_or_default()))
            };
        if replace {
            let items = plain
                .into_iter()
                .map(|(_, map, item_path)| merge(None, map, &item_path));
            return items.collect();
        }
        let mut merged: Vec<Placed> = Vec::with_capacity(original.len() + plain.len());
        let mut at = HashMap::new();
        for (i, item) in original.into_iter().enumerate() {
            let id = identity(&item, keys);
            if id.as_ref().is_some_and(|id| deleted.contains(id)) {
                continue;
            }
            if let Some(id) = id {
                at.entry(id).or_insert(merged.len());
            }
            merged.push((item, Some(i), None));
        }
        for (n, (id, map, item_path)) in plain.into_iter().enumerate() {
            if let Some(&slot) = at.get(&id) {
                let (value, _, in_patch) = &mut merged[slot];
                let existing = match value.take() {
                    Value::Object(existing) => Some(existing),
                    _ => None,
                };
                *value = merge(existing, map, &item_path)?;
                in_patch.get_or_insert(n);
            } else {
                at.insert(id, merged.len());
                merged.push((merge(None, map, &item_path)?, None, Some(n)));
            }
        }
        Ok(settle(merged))
    }
}

fn extension<'v>(node: Option<&'v Value>, name: &str) -> Option<&'v Value> {
    node.and_then(|n| n.get(name))
}

/// The comma-separated `x-kubernetes-patch-strategy` of a resolved schema.
fn strategies(node: Option<&Value>) -> Vec<&str> {
    let strategy = extension(node, "x-kubernetes-patch-strategy").and_then(Value::as_str);
    strategy
        .map(|s| s.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// Whether a list merges, and by which keys (none: as a set of primitives).
fn list_strategy(node: Option<&Value>) -> (bool, Vec<String>) {
    let strategies = strategies(node);
    let list_type = extension(node, "x-kubernetes-list-type").and_then(Value::as_str);
    let merge = if strategies.iter().any(|s| *s == "merge" || *s == "replace") {
        strategies.contains(&"merge")
    } else {
        matches!(list_type, Some("map" | "set"))
    };
    let keys = match extension(node, "x-kubernetes-patch-merge-key").and_then(Value::as_str) {
        Some(key) => vec![key.to_string()],
        None if list_type == Some("map") => {
            let keys = extension(node, "x-kubernetes-list-map-keys").and_then(Value::as_array);
            let keys = keys.into_iter().flatten().filter_map(Value::as_str);
            keys.map(String::from).collect()
        }
        None => Vec::new(),
    };
    (merge, keys)
}

/// What identifies an item in a merged list: its merge key values, or itself without keys.
fn identity(item: &Value, keys: &[String]) -> Option<String> {
    if keys.is_empty() {
        return Some(item.to_string());
    }
    let values: Option<Vec<&Value>> = keys.iter().map(|k| item.get(k)).collect();
    Some(json!(values?).to_string())
}

/// Index of each item's identity in `list` (the first of equal ones).
fn positions(list: &[Value], keys: &[String]) -> HashMap<String, usize> {
    let mut positions = HashMap::new();
    for (i, item) in list.iter().enumerate() {
        if let Some(id) = identity(item, keys) {
            positions.entry(id).or_insert(i);
        }
    }
    positions
}

/// The primitives of `original` and then `patch`, each once, placed.
fn place(original: Vec<Value>, patch: &[Value]) -> Vec<Placed> {
    let mut merged: Vec<Placed> = Vec::with_capacity(original.len() + patch.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    let items = original
        .into_iter()
        .enumerate()
        .map(|(i, item)| (item, Some(i), None));
    let added = patch
        .iter()
        .cloned()
        .enumerate()
        .map(|(n, item)| (item, None, Some(n)));
    for (item, in_original, in_patch) in items.chain(added) {
        let id = item.to_string();
        if let Some(&slot) = at.get(&id) {
            merged[slot].2 = merged[slot].2.or(in_patch);
        } else {
            at.insert(id, merged.len());
            merged.push((item, in_original, in_patch));
        }
    }
    merged
}

/// Kube's order of a merged list: the patch's items in the patch's order, interleaved with the
/// original's others in their order.
fn settle(merged: Vec<Placed>) -> Vec<Value> {
    let (mut patched, server): (Vec<Placed>, Vec<Placed>) = merged
        .into_iter()
        .partition(|(_, _, in_patch)| in_patch.is_some());
    patched.sort_by_key(|(_, _, in_patch)| *in_patch);
    let merged = interleave(server, patched, |(_, in_original, _)| *in_original);
    merged.into_iter().map(|(item, ..)| item).collect()
}

/// Kube's `mergeSortedSlice`: takes from `server` while its next item comes before `patched`'s
/// next in the original order, else from `patched`.
fn interleave<T>(server: Vec<T>, patched: Vec<T>, at: impl Fn(&T) -> Option<usize>) -> Vec<T> {
    let mut out = Vec::with_capacity(server.len() + patched.len());
    let mut server = server.into_iter().peekable();
    let mut patched = patched.into_iter().peekable();
    while let (Some(s), Some(p)) = (server.peek(), patched.peek()) {
        let server_first = matches!((at(s), at(p)), (Some(a), Some(b)) if a < b);
        let next = if server_first {
            &mut server
        } else {
            &mut patched
        };
        out.extend(next.next());
    }
    out.extend(server);
    out.extend(patched);
    out
}

/// `list` ordered by `$setElementOrder`: the items it names in its order, interleaved with the
/// others in their order in `before` (the field before the patch).
fn reorder(list: Vec<Value>, order: &[Value], before: &[Value], keys: &[String]) -> Vec<Value> {
    let (in_order, in_before) = (positions(order, keys), positions(before, keys));
    let at = |map: &HashMap<String, usize>, item: &Value| {
        identity(item, keys).and_then(|id| map.get(&id).copied())
    };
    let (mut named, mut others): (Vec<Value>, Vec<Value>) = list
        .into_iter()
        .partition(|item| at(&in_order, item).is_some());
    named.sort_by_key(|item| at(&in_order, item));
    others.sort_by_key(|item| at(&in_before, item).unwrap_or(usize::MAX));
    interleave(others, named, |item| at(&in_before, item))
}

/// Kube's check that `$setElementOrder/<field>` (`directive`) names the items of the patch's
/// list in their order.
fn check_order(
    patched: &[Value],
    order: &[Value],
    keys: &[String],
    (path, field, directive): (&str, &str, &str),
) -> Result<(), PatchError> {
    if order.is_empty() {
        return Ok(());
    }
    let mut named = order.iter().map(|item| identity(item, keys));
    for (i, item) in patched.iter().enumerate() {
        if item.get("$patch").is_some() {
            continue;
        }
        let id = identity(item, keys)
            .ok_or_else(|| missing(&index(&child(path, field), i), keys, item))?;
        if !named.any(|named| named.as_ref() == Some(&id)) {
            let detail = "does not name every item of the list in the patch, in its order";
            return Err(invalid(path, directive, detail));
        }
    }
    Ok(())
}

/// A patch value whose JSON type is not the schema's, where either is a map or a list.
fn check_type(patch: &Value, node: Option<&Value>, path: &str) -> Result<(), PatchError> {
    let Some(expected) = extension(node, "type").and_then(Value::as_str) else {
        return Ok(());
    };
    let found = json_type(patch);
    let container = |t: &str| t == "object" || t == "array";
    if found != "null" && found != expected && (container(found) || container(expected)) {
        let (path, expected) = (shown(path), expected.into());
        return Err(PatchError::TypeMismatch(path, expected, found));
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() { "<root>" } else { path }.into()
}

fn child(path: &str, key: &str) -> String {
    format!("{path}{}{key}", if path.is_empty() { "" } else { "." })
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn invalid(path: &str, directive: &str, detail: impl Into<String>) -> PatchError {
    PatchError::InvalidDirective(shown(path), directive.into(), detail.into())
}

fn unknown_patch_type(path: &str, value: &Value) -> PatchError {
    invalid(path, "$patch", format!("unknown patch type {value}"))
}

fn missing(path: &str, keys: &[String], item: &Value) -> PatchError {
    let key = keys
        .iter()
        .find(|k| item.get(k.as_str()).is_none())
        .or(keys.first());
    PatchError::MissingMergeKey(shown(path), key.cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, LazyLock};

    use expect_test::expect;

    use super::*;

    /// The native components and `test.Pod`, with every kind of list.
    static COMPONENTS: LazyLock<Arc<Components>> = LazyLock::new(|| {
        let mut components = crate::native::components();
        let by = |key: &str, items: Value| json!({"type": "array", "items": items, "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": key});
        let spec = json!({"type": "object", "properties": {
            "containers": by("name", json!({"$ref": "#/components/schemas/test.Container"})),
            "volumes": {"type": "array", "items": {"type": "object"}, "x-kubernetes-patch-strategy": "merge,retainKeys", "x-kubernetes-patch-merge-key": "name"},
            "ports": {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"]},
            "tolerations": {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "atomic"},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "anything": {"type": "array", "x-kubernetes-list-type": "set"},
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-patch-strategy": "replace"},
            "free": {"type": "object"},
        }});
        let pod = json!({"type": "object", "properties": {"spec": spec,
            "metadata": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}}});
        let container = json!({"type": "object", "properties": {"name": {"type": "string"},
            "args": {"type": "array", "items": {"type": "string"}}, "env": by("name", json!({"type": "object"}))}});
        components.insert("test.Pod".into(), pod);
        components.insert("test.Container".into(), container);
        annotate(&mut components);
        Arc::new(components)
    });

    fn schema(kind: &str) -> Schema {
        let root = json!({"$ref": format!("#/components/schemas/{kind}")});
        Schema::new(root, COMPONENTS.clone(), false)
    }

    /// Applies each `[name, original, patch, expected]` case to an object of `kind`.
    #[track_caller]
    fn check(kind: &str, cases: Value) {
        let schema = schema(kind);
        for case in cases.as_array().into_iter().flatten() {
            let Some([name, original, patch, expected]) = case.as_array().map(Vec::as_slice) else {
                panic!("not a case: {case}");
            };
            let result = apply(original, patch, &schema).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&result, expected, "{name}");
            assert!(
                !result.to_string().contains("\"$"),
                "{name}: a directive in {result}"
            );
        }
    }

    #[test]
    fn maps_and_primitive_lists() {
        let data = json!({"data": {"a": "1", "b": "2"}});
        let fin = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        check(
            "io.k8s.api.core.v1.ConfigMap",
            json!([
                ["merge; null deletes", data, {"data": {"a": null, "b": "3", "c": "4", "z": null}}, {"data": {"b": "3", "c": "4"}}],
                ["$patch: replace", data, {"data": {"$patch": "replace", "c": "4"}}, {"data": {"c": "4"}}],
                ["$patch: delete", data, {"data": {"$patch": "delete"}}, {}],
                ["$patch: merge", data, {"data": {"$patch": "merge", "c": "4"}}, {"data": {"a": "1", "b": "2", "c": "4"}}],
                ["$patch: replace at the root", data, {"$patch": "replace", "binaryData": {}}, {"binaryData": {}}],
                ["$retainKeys", data, {"data": {"$retainKeys": ["a", "c"], "c": "3"}}, {"data": {"a": "1", "c": "3"}}],
                ["directives in a new map", {}, {"metadata": {"labels": {"$patch": "replace", "a": "1", "b": null}}}, {"metadata": {"labels": {"a": "1"}}}],
                ["set union", fin, {"metadata": {"finalizers": ["b", "d"]}}, {"metadata": {"finalizers": ["a", "b", "d", "c"]}}],
                ["an addition comes first, as in kube", fin, {"metadata": {"finalizers": ["z"]}}, {"metadata": {"finalizers": ["z", "a", "b", "c"]}}],
                ["the patch's order", fin, {"metadata": {"finalizers": ["c", "a"]}}, {"metadata": {"finalizers": ["b", "c", "a"]}}],
                ["$deleteFromPrimitiveList", fin, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}, {"metadata": {"finalizers": ["a", "c"]}}],
                ["$setElementOrder", fin, {"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}, {"metadata": {"finalizers": ["c", "a", "b"]}}],
                ["$setElementOrder of some", fin, {"metadata": {"$setElementOrder/finalizers": ["c", "x", "a"]}}, {"metadata": {"finalizers": ["b", "c", "a"]}}],
                ["$setElementOrder, an addition and a deletion", fin, {"metadata": {"$setElementOrder/finalizers": ["a", "b", "d"],
                    "$deleteFromPrimitiveList/finalizers": ["c"], "finalizers": ["d"]}}, {"metadata": {"finalizers": ["a", "b", "d"]}}],
                ["atomic list", {"metadata": {"managedFields": [{"manager": "a"}]}}, {"metadata": {"managedFields": [{"manager": "b"}]}},
                    {"metadata": {"managedFields": [{"manager": "b"}]}}],
            ]),
        );
    }

    #[test]
    fn native_lists_merged_by_key() {
        let owners = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}});
        check(
            "io.k8s.api.core.v1.Secret",
            json!([
                ["merge an item", owners, {"metadata": {"ownerReferences": [{"uid": "2", "name": "z"}]}},
                    {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "z"}]}}],
                ["add an item", owners, {"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "3"}]}},
                    {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "3"}, {"uid": "2", "name": "b"}]}}],
                ["delete an item", owners, {"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}},
                    {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}],
                ["replace the list", owners, {"metadata": {"ownerReferences": [{"$patch": "replace"}, {"uid": "9"}]}},
                    {"metadata": {"ownerReferences": [{"uid": "9"}]}}],
                ["null in an item", owners, {"metadata": {"ownerReferences": [{"uid": "1", "name": null}]}},
                    {"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2", "name": "b"}]}}],
                ["a new list", {}, {"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}, {"uid": "2"}]}},
                    {"metadata": {"ownerReferences": [{"uid": "2"}]}}],
            ]),
        );
        let conditions = json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}});
        check(
            "io.k8s.api.core.v1.Namespace",
            json!([
                ["conditions by type", conditions, {"status": {"conditions": [{"type": "B", "status": "True"}, {"type": "C"}]}},
                    {"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}, {"type": "C"}]}}],
                ["$setElementOrder by key", conditions, {"status": {"$setElementOrder/conditions": [{"type": "B"}, {"type": "A"}]}},
                    {"status": {"conditions": [{"type": "B", "status": "False"}, {"type": "A", "status": "True"}]}}],
                ["an unannotated list is replaced", {"spec": {"finalizers": ["kubernetes"]}}, {"spec": {"finalizers": ["x"]}}, {"spec": {"finalizers": ["x"]}}],
            ]),
        );
        check(
            "io.k8s.api.core.v1.PersistentVolumeClaim",
            json!([
                ["delete a condition", {"status": {"conditions": [{"type": "Resizing"}, {"type": "X"}], "phase": "Bound"}},
                    {"status": {"conditions": [{"type": "Resizing", "$patch": "delete"}]}}, {"status": {"conditions": [{"type": "X"}], "phase": "Bound"}}],
                ["maps merge", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}, {"spec": {"resources": {"limits": {"storage": "2Gi"}}}},
                    {"spec": {"resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}}}}],
            ]),
        );
        check(
            "io.k8s.api.core.v1.ServiceAccount",
            json!([
                ["secrets by name", {"secrets": [{"name": "a"}, {"name": "b"}]}, {"secrets": [{"name": "b", "namespace": "n"}, {"name": "c"}]},
                    {"secrets": [{"name": "a"}, {"name": "b", "namespace": "n"}, {"name": "c"}]}],
            ]),
        );
    }

    #[test]
    fn every_list_strategy() {
        let (a, b) = (
            json!({"name": "a", "args": ["x"], "env": [{"name": "X", "value": "1"}]}),
            json!({"name": "b"}),
        );
        let containers = |c: Value| json!({"spec": {"containers": c}});
        let pod = containers(json!([a, b]));
        check(
            "test.Pod",
            json!([
                ["merge an item", pod, containers(json!([{"name": "b", "args": ["y"]}])), containers(json!([a, {"name": "b", "args": ["y"]}]))],
                ["add an item: first, as in kube", pod, containers(json!([{"name": "c"}])), containers(json!([{"name": "c"}, a, b]))],
                ["delete an item", pod, containers(json!([{"name": "a", "$patch": "delete"}])), containers(json!([b]))],
                ["replace the list", pod, containers(json!([{"$patch": "replace"}, {"name": "z"}])), containers(json!([{"name": "z"}]))],
                ["nested lists", pod, containers(json!([{"name": "a", "args": ["z"], "env": [{"name": "X", "value": "2"}, {"name": "Y"}]}])),
                    containers(json!([{"name": "a", "args": ["z"], "env": [{"name": "X", "value": "2"}, {"name": "Y"}]}, b]))],
                ["$setElementOrder with an addition", pod, {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "c"}]}}, containers(json!([{"name": "c"}, b, a]))],
                ["kube's merge of lists of maps", containers(json!([{"name": "1"}, {"name": "2", "args": []}])),
                    {"spec": {"$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}], "containers": [{"name": "4"}, {"name": "3"}]}},
                    containers(json!([{"name": "4"}, {"name": "1"}, {"name": "2", "args": []}, {"name": "3"}]))],
                ["$retainKeys in an item", {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
                    {"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}, "$retainKeys": ["name", "hostPath"]}]}},
                    {"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}}],
                ["list map keys", {"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}, {"port": 80, "protocol": "UDP"}]}},
                    {"spec": {"ports": [{"port": 80, "protocol": "UDP", "name": "dns"}]}},
                    {"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}, {"port": 80, "protocol": "UDP", "name": "dns"}]}}],
                ["list-type set", {"spec": {"tags": ["a", "b"]}}, {"spec": {"tags": ["b", "c"]}}, {"spec": {"tags": ["a", "b", "c"]}}],
                ["atomic list", {"spec": {"tolerations": [{"key": "a"}]}}, {"spec": {"tolerations": [{"key": "b"}]}}, {"spec": {"tolerations": [{"key": "b"}]}}],
                ["replace strategy map", {"spec": {"nodeSelector": {"a": "1"}}}, {"spec": {"nodeSelector": {"b": "2"}}}, {"spec": {"nodeSelector": {"b": "2"}}}],
                ["free-form: maps merge, lists replaced", {"spec": {"free": {"m": {"x": 1, "y": 2}, "l": [1, 2]}}},
                    {"spec": {"free": {"m": {"y": 3}, "l": [3]}}}, {"spec": {"free": {"m": {"x": 1, "y": 3}, "l": [3]}}}],
                ["unknown fields too", {"other": {"x": 1}, "list": [1]}, {"other": {"y": 2}, "list": [2]}, {"other": {"x": 1, "y": 2}, "list": [2]}],
            ]),
        );
    }

    #[test]
    fn errors() {
        let deep = |levels| (0..levels).fold(json!(1), |inner, _| json!({"x": inner}));
        let (pod, shallow) = (
            schema("test.Pod"),
            json!({"spec": {"free": deep(MAX_DEPTH - 5)}}),
        );
        assert!(apply(&json!({}), &shallow, &pod).is_ok());
        let cases = json!([
            ["test.Pod", []],
            ["test.Pod", {"$foo": 1}],
            ["test.Pod", {"spec": {"$setElementOrder": []}}],
            ["io.k8s.api.core.v1.ConfigMap", {"data": {"$patch": "nope"}}],
            ["io.k8s.api.core.v1.ConfigMap", {"data": {"$patch": 1}}],
            ["test.Pod", {"spec": {"containers": [{"name": "a", "$patch": "explode"}]}}],
            ["test.Pod", {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}],
            ["test.Pod", {"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"image": "x"}]}}],
            ["test.Pod", {"spec": {"containers": [{"$patch": "delete"}]}}],
            ["test.Pod", {"spec": {"ports": [{"port": 80}]}}],
            ["test.Pod", {"spec": {"containers": {"name": "a"}}}],
            ["io.k8s.api.core.v1.ConfigMap", {"data": ["a"]}],
            ["io.k8s.api.core.v1.ConfigMap", {"metadata": {"finalizers": [{"a": 1}]}}],
            ["io.k8s.api.core.v1.ConfigMap", {"metadata": {"labels": "x"}}],
            ["io.k8s.api.core.v1.ConfigMap", {"data": {"$retainKeys": "a"}}],
            ["io.k8s.api.core.v1.ConfigMap", {"data": {"$retainKeys": ["a"], "b": "2"}}],
            ["io.k8s.api.core.v1.ConfigMap", {"metadata": {"$setElementOrder/finalizers": "a"}}],
            ["io.k8s.api.core.v1.ConfigMap", {"metadata": {"$setElementOrder/finalizers": ["b", "a"], "finalizers": ["a", "b"]}}],
            ["test.Pod", {"spec": {"$setElementOrder/containers": [{"image": "x"}]}}],
            ["io.k8s.api.core.v1.ConfigMap", {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}],
            ["test.Pod", {"spec": {"anything": [["a"]]}}],
            ["test.Pod", {"spec": {"anything": ["a", {"b": 1}]}}],
            ["test.Pod", {"spec": {"anything": [{"b": 1}]}}],
            ["test.Pod", {"spec": {"free": deep(MAX_DEPTH + 5)}}],
        ]);
        let errors = cases.as_array().into_iter().flatten().map(|case| {
            let schema = schema(case[0].as_str().unwrap_or_default());
            match apply(&json!({}), &case[1], &schema) {
                Ok(v) => format!("unexpected success: {v}"),
                Err(e) => e.to_string().replace(&"x.".repeat(MAX_DEPTH - 2), "x.(…)."),
            }
        });
        expect![[r#"
            the patch must be a JSON object, not array
            <root>: unknown patch directive "$foo"
            spec: unknown patch directive "$setElementOrder"
            data: invalid $patch: unknown patch type "nope"
            data: invalid $patch: unknown patch type 1
            spec.containers[0]: invalid $patch: unknown patch type "explode"
            spec.containers[0]: invalid $patch: a list cannot be merged by a directive: merging is the default
            spec.containers[2]: the item has no merge key "name"
            spec.containers[0]: the item has no merge key "name"
            spec.ports[0]: the item has no merge key "protocol"
            spec.containers must be of type array in the patch, not object
            data must be of type object in the patch, not array
            metadata.finalizers[0] must be of type string in the patch, not object
            metadata.labels must be of type object in the patch, not string
            data: invalid $retainKeys: must be a list of field names
            data: invalid $retainKeys: does not list the patched field "b"
            metadata: invalid $setElementOrder/finalizers: must be a list
            metadata: invalid $setElementOrder/finalizers: does not name every item of the list in the patch, in its order
            spec.$setElementOrder/containers[0]: the item has no merge key "name"
            metadata: invalid $deleteFromPrimitiveList/finalizers: must be a list
            spec.anything: lists of lists are not supported
            spec.anything: the items of the list are not all of one type
            spec.anything: a list of objects cannot be merged without a merge key
            spec.free.x.(…).x: the patch nests deeper than 100 levels"#]].assert_eq(&errors.collect::<Vec<_>>().join("\n"));
        let error = apply(&json!([]), &json!({}), &pod).unwrap_err();
        expect!["the patched object must be a JSON object, not array"]
            .assert_eq(&error.to_string());
    }
}
