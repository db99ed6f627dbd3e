//! What the structural schema says about how fields combine (maps granular or atomic; lists
//! atomic, sets, or maps keyed by fields, from `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type` and the patch merge keys), and what
//! follows from it: the field set an object specifies, the fields two objects differ in, and
//! the merge of an apply configuration into a live object.

use serde_json::{Map, Value};

use super::fieldset::{Element, FieldSet, MAX_DEPTH};
use crate::schema::Schema;

/// How a list combines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum List {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars.
    Set,
    /// Items identified by these fields.
    Map(Vec<String>),
}

/// A position in an object, with its schema (if the schema describes it).
#[derive(Clone, Copy)]
pub(crate) struct Shape<'a> {
    schema: &'a Schema,
    node: Option<&'a Value>,
}

impl<'a> Shape<'a> {
    /// The shape of a whole object.
    pub(crate) fn root(schema: &'a Schema) -> Shape<'a> {
        Shape {
            schema,
            node: Some(schema.resolve(&schema.root)),
        }
    }

    fn at(&self, node: Option<&'a Value>) -> Shape<'a> {
        Shape {
            schema: self.schema,
            node: node.map(|n| self.schema.resolve(n)),
        }
    }

    fn extension(&self, name: &str) -> Option<&'a Value> {
        self.node?.get(name)
    }

    /// The shape of a field of an object.
    fn field(&self, name: &str) -> Shape<'a> {
        let node = self.node.and_then(|n| {
            n.get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
        });
        self.at(node)
    }

    /// The shape of a list's items.
    fn items(&self) -> Shape<'a> {
        self.at(self.node.and_then(|n| n.get("items")))
    }

    /// Whether this is a map of arbitrary keys (rather than a struct of named fields): its
    /// own path is recorded along with its keys', as `FieldsV1` does.
    fn is_free_map(&self) -> bool {
        self.node.is_some_and(|n| {
            n.get("properties").is_none() && n.get("additionalProperties").is_some()
        })
    }

    fn atomic_map(&self) -> bool {
        self.extension("x-kubernetes-map-type")
            .and_then(Value::as_str)
            == Some("atomic")
    }

    fn list(&self) -> List {
        let text = |name: &str| self.extension(name).and_then(Value::as_str);
        let keys: Vec<String> = self
            .extension("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let merge_key = text("x-kubernetes-patch-merge-key").map(str::to_string);
        match text("x-kubernetes-list-type") {
            Some("atomic") => List::Atomic,
            Some("set") => List::Set,
            Some("map") if !keys.is_empty() => List::Map(keys),
            Some("map") => merge_key.map_or(List::Atomic, |k| List::Map(vec![k])),
            _ => match (merge_key, text("x-kubernetes-patch-strategy")) {
                (Some(key), _) => List::Map(vec![key]),
                (None, Some(strategy)) if strategy.split(',').any(|s| s == "merge") => List::Set,
                _ => List::Atomic,
            },
        }
    }

    /// The path element of a list item, or `None` for items an atomic list holds.
    fn item_element(&self, list: &List, item: &Value) -> Option<String> {
        match list {
            List::Atomic => None,
            List::Set => Some(Element::Value(item.clone()).render()),
            List::Map(keys) => {
                let mut values = Map::new();
                for key in keys {
                    if let Some(v) = item.get(key) {
                        values.insert(key.clone(), v.clone());
                    }
                }
                (!values.is_empty()).then(|| Element::Key(values).render())
            }
        }
    }
}

/// Fields of every object that no manager owns (identity and system metadata).
fn ignored(path: &[String]) -> bool {
    match path {
        [one] => matches!(one.as_str(), "f:apiVersion" | "f:kind"),
        [meta, field] if meta == "f:metadata" => matches!(
            field.as_str(),
            "f:name"
                | "f:namespace"
                | "f:uid"
                | "f:resourceVersion"
                | "f:generation"
                | "f:creationTimestamp"
                | "f:deletionTimestamp"
                | "f:deletionGracePeriodSeconds"
                | "f:selfLink"
                | "f:managedFields"
        ),
        _ => false,
    }
}

/// The field set an object specifies: its leaves, the items of its keyed lists and sets, and
/// its free-form maps.
pub(crate) fn field_set(object: &Value, shape: Shape<'_>) -> FieldSet {
    let mut set = FieldSet::default();
    field_set_at(object, shape, &mut Vec::new(), &mut set);
    set
}

/// Adds to `set` the field set `value` specifies at `path`.
fn field_set_at(value: &Value, shape: Shape<'_>, path: &mut Vec<String>, set: &mut FieldSet) {
    walk(value, shape, path, set);
    fn walk(value: &Value, shape: Shape<'_>, path: &mut Vec<String>, set: &mut FieldSet) {
        if path.len() > MAX_DEPTH || ignored(path) {
            return;
        }
        match value {
            Value::Object(map) if !map.is_empty() && !shape.atomic_map() => {
                if shape.is_free_map() && !path.is_empty() {
                    set.insert(path);
                }
                for (key, child) in map {
                    path.push(Element::Field(key.clone()).render());
                    walk(child, shape.field(key), path, set);
                    path.pop();
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let list = shape.list();
                if list == List::Atomic {
                    set.insert(path);
                    return;
                }
                for item in items {
                    let Some(element) = shape.item_element(&list, item) else {
                        continue;
                    };
                    path.push(element);
                    set.insert(path);
                    if let (List::Map(_), Value::Object(fields)) = (&list, item) {
                        for (key, child) in fields {
                            path.push(Element::Field(key.clone()).render());
                            walk(child, shape.items().field(key), path, set);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            _ if path.is_empty() => {}
            _ => set.insert(path),
        }
    }
}

/// The paths of `new`'s field set whose values differ from `old`'s (added or modified), and
/// the paths of `old`'s field set gone from `new` (removed).
///
/// Maps present on both sides are walked key by key and equal values skipped, so a write that
/// changes one field of a large object looks at the path to it, not at every field; anything
/// else (lists, leaves, a map on one side only) is compared through its field sets.
pub(crate) fn differences(old: &Value, new: &Value, shape: Shape<'_>) -> (FieldSet, FieldSet) {
    let mut found = Differences {
        old,
        new,
        changed: FieldSet::default(),
        removed: FieldSet::default(),
    };
    found.at(Some(old), Some(new), shape, &mut Vec::new());
    (found.changed, found.removed)
}

/// The differences found so far between two whole objects.
struct Differences<'v> {
    old: &'v Value,
    new: &'v Value,
    changed: FieldSet,
    removed: FieldSet,
}

impl Differences<'_> {
    /// Adds the differences at `path`, where `old` holds `a` and `new` holds `b` (`None`:
    /// absent), which differ.
    fn at(
        &mut self,
        a: Option<&Value>,
        b: Option<&Value>,
        shape: Shape<'_>,
        path: &mut Vec<String>,
    ) {
        use super::fieldset::get;
        if path.len() > MAX_DEPTH || ignored(path) {
            return;
        }
        let granular = |map: &Map<String, Value>| !map.is_empty() && !shape.atomic_map();
        if let (Some(Value::Object(x)), Some(Value::Object(y))) = (a, b)
            && granular(x)
            && granular(y)
        {
            // The map's own path (a free map's) is in both field sets: neither changed nor
            // removed.
            for (key, b_child) in y {
                let a_child = x.get(key);
                if a_child != Some(b_child) {
                    path.push(Element::Field(key.clone()).render());
                    self.at(a_child, Some(b_child), shape.field(key), path);
                    path.pop();
                }
            }
            for (key, a_child) in x {
                if !y.contains_key(key) {
                    path.push(Element::Field(key.clone()).render());
                    self.at(Some(a_child), None, shape.field(key), path);
                    path.pop();
                }
            }
            return;
        }
        let mut new_set = FieldSet::default();
        if let Some(b) = b {
            field_set_at(b, shape, path, &mut new_set);
        }
        self.changed.union(&new_set.differing(self.old, self.new));
        // A path of `old` missing from `new` is not in `new`'s set; only the paths left after
        // taking that set away are looked up in `new` (each lookup walks from the root and
        // parses its path), rather than every path of `old`.
        let mut candidates = FieldSet::default();
        if let Some(a) = a {
            field_set_at(a, shape, path, &mut candidates);
        }
        candidates.subtract(&new_set);
        for path in candidates.paths() {
            if get(self.new, &path).is_none() {
                self.removed.insert(&path);
            }
        }
    }
}

/// `config` merged into `live`: its values win, maps merge key by key, keyed lists and sets
/// item by item, atomic lists and maps are replaced; `null` removes a field.
pub(crate) fn merge(live: &Value, config: &Value, shape: Shape<'_>, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return config.clone();
    }
    match (live, config) {
        (Value::Object(live), Value::Object(config)) if !shape.atomic_map() => {
            let mut result = live.clone();
            for (key, value) in config {
                if value.is_null() {
                    result.remove(key);
                    continue;
                }
                let merged = match live.get(key) {
                    Some(current) => merge(current, value, shape.field(key), depth + 1),
                    None => value.clone(),
                };
                result.insert(key.clone(), merged);
            }
            Value::Object(result)
        }
        (Value::Array(live), Value::Array(config)) => {
            let list = shape.list();
            if list == List::Atomic {
                return Value::Array(config.clone());
            }
            let mut result = live.clone();
            for item in config {
                let element = shape.item_element(&list, item);
                let position = element.as_ref().and_then(|e| {
                    live.iter()
                        .position(|l| shape.item_element(&list, l).as_ref() == Some(e))
                });
                match position {
                    Some(i) => {
                        result[i] = merge(&live[i], item, shape.items(), depth + 1);
                    }
                    None => result.push(item.clone()),
                }
            }
            Value::Array(result)
        }
        _ => config.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        let mut components = crate::native::components();
        components.insert(
            "test.Thing".into(),
            json!({
                "type": "object",
                "properties": {
                    "metadata": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                    "data": {"type": "object", "additionalProperties": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                              "items": {"type": "object", "properties": {"port": {"type": "integer"}, "protocol": {"type": "string"}, "name": {"type": "string"}}}},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
                },
            }),
        );
        Schema::new(
            json!({"$ref": "#/components/schemas/test.Thing"}),
            Arc::new(components),
            false,
        )
    }

    /// The differences of two objects as their whole field sets compared: the model the
    /// walk that skips equal values must agree with.
    fn differences_whole(old: &Value, new: &Value, shape: Shape<'_>) -> (FieldSet, FieldSet) {
        let new_set = field_set(new, shape);
        let changed = new_set.differing(old, new);
        let mut removed = field_set(old, shape);
        removed.subtract(&new_set);
        let removed_paths = removed.paths();
        let mut removed = FieldSet::default();
        for path in removed_paths {
            if super::super::fieldset::get(new, &path).is_none() {
                removed.insert(&path);
            }
        }
        (changed, removed)
    }

    /// Objects of the test schema's fields (and fields it does not describe), small enough
    /// that two of them often share parts.
    fn thing() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            Just(Value::Null),
            (0..3i64).prop_map(Value::from),
            prop::sample::select(vec!["a", "b", "TCP"]).prop_map(Value::from),
        ];
        let value = scalar.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map(
                    prop::sample::select(vec!["port", "protocol", "name", "app", "k"]),
                    inner,
                    0..4,
                )
                .prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        });
        let fields = vec![
            "metadata",
            "data",
            "ports",
            "tags",
            "args",
            "selector",
            "other",
            "apiVersion",
        ];
        prop::collection::btree_map(prop::sample::select(fields), value, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    /// `value` with what `steps` lead to (a key or an item chosen by each step, until the
    /// steps or the nesting end) replaced by `by`, or removed when `by` is `None`.
    fn edit(value: &mut Value, steps: &[usize], by: Option<Value>) {
        let Some((step, rest)) = steps.split_first() else {
            if let Some(by) = by {
                *value = by;
            }
            return;
        };
        let nested = |v: &Value| !rest.is_empty() && (v.is_object() || v.is_array());
        match value {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(step % map.len()).unwrap().clone();
                if nested(&map[&key]) {
                    edit(map.get_mut(&key).unwrap(), rest, by);
                } else if let Some(by) = by {
                    map.insert(key, by);
                } else {
                    map.remove(&key);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let i = step % items.len();
                if nested(&items[i]) {
                    edit(&mut items[i], rest, by);
                } else if let Some(by) = by {
                    items[i] = by;
                } else {
                    items.remove(i);
                }
            }
            other => {
                if let Some(by) = by {
                    *other = by;
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn differences_skipping_equal_values_are_those_of_the_whole_objects(
            old in thing(),
            edits in proptest::collection::vec(
                (
                    proptest::collection::vec(0..8usize, 1..5),
                    proptest::option::of(thing()),
                ),
                1..4,
            ),
        ) {
            let schema = schema();
            let shape = Shape::root(&schema);
            // `new` is `old` with a few values, at any depth, replaced or removed.
            let mut new = old.clone();
            for (steps, by) in edits {
                edit(&mut new, &steps, by);
            }
            let (changed, removed) = differences(&old, &new, shape);
            let (changed_whole, removed_whole) = differences_whole(&old, &new, shape);
            proptest::prop_assert_eq!(changed.to_fields_v1(), changed_whole.to_fields_v1());
            proptest::prop_assert_eq!(removed.to_fields_v1(), removed_whole.to_fields_v1());
        }
    }

    #[test]
    fn field_sets_follow_the_schema() {
        let schema = schema();
        let object = json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "t", "labels": {"a": "b"}, "finalizers": ["x"]},
            "data": {"k": "v"},
            "ports": [{"port": 80, "protocol": "TCP", "name": "http"}],
            "tags": ["one"], "args": ["-v"], "selector": {"app": "x"},
        });
        let set = field_set(&object, Shape::root(&schema));
        expect_test::expect![[r#"{"f:args":{},"f:data":{".":{},"f:k":{}},"f:metadata":{"f:finalizers":{"v:\"x\"":{}},"f:labels":{".":{},"f:a":{}}},"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{}}},"f:selector":{},"f:tags":{"v:\"one\"":{}}}"#]]
            .assert_eq(&set.to_fields_v1().to_string());
    }

    #[test]
    fn merges_follow_the_schema() {
        let schema = schema();
        let live = json!({
            "data": {"k": "v", "other": "o"},
            "ports": [{"port": 80, "protocol": "TCP", "name": "http"}],
            "tags": ["one"], "args": ["-v"], "selector": {"app": "x", "tier": "y"},
        });
        let config = json!({
            "data": {"k": "w", "other": null},
            "ports": [{"port": 80, "protocol": "TCP", "name": "web"}, {"port": 443, "protocol": "TCP"}],
            "tags": ["two"], "args": ["-q"], "selector": {"app": "z"},
        });
        assert_eq!(
            merge(&live, &config, Shape::root(&schema), 0),
            json!({
                "data": {"k": "w"},
                "ports": [{"port": 80, "protocol": "TCP", "name": "web"}, {"port": 443, "protocol": "TCP"}],
                "tags": ["one", "two"], "args": ["-q"], "selector": {"app": "z"},
            })
        );
        let merged = merge(&live, &config, Shape::root(&schema), 0);
        let (changed, removed) = differences(&live, &merged, Shape::root(&schema));
        let changed: Vec<String> = changed
            .paths()
            .iter()
            .map(|p| super::super::fieldset::display(p))
            .collect();
        assert!(changed.contains(&".data.k".to_string()), "{changed:?}");
        assert!(changed.contains(&".args".to_string()), "{changed:?}");
        assert!(
            !changed.contains(&".ports[port=80,protocol=\"TCP\"].port".to_string()),
            "{changed:?}"
        );
        let removed: Vec<String> = removed
            .paths()
            .iter()
            .map(|p| super::super::fieldset::display(p))
            .collect();
        assert!(removed.contains(&".data.other".to_string()), "{removed:?}");
        assert!(
            !removed.contains(&".tags[=\"one\"]".to_string()),
            "sets merge: {removed:?}"
        );
        assert!(
            !changed.contains(&".data".to_string()),
            "a map changes by its keys: {changed:?}"
        );
    }
}
