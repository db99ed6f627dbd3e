//! Sets of field paths, as `managedFields` records them (`FieldsV1`): a trie whose edges are
//! path elements (`f:name` a field, `k:{"name":"x"}` an item of a list keyed by fields,
//! `v:"x"` an item of a set) and whose nodes say whether the path itself is in the set (`.`).
//! Also the values at those paths in objects: reading, comparing and removing them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The deepest field path read from `FieldsV1` or walked in an object.
pub(crate) const MAX_DEPTH: usize = 64;

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    /// Whether the path of this node is in the set.
    pub(crate) member: bool,
    /// The paths below, by path element.
    pub(crate) children: BTreeMap<String, FieldSet>,
}

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Element {
    /// A field of an object.
    Field(String),
    /// The item of a list whose key fields have these values.
    Key(Map<String, Value>),
    /// The item of a set with this value.
    Value(Value),
}

impl Element {
    /// Parses `f:…`, `k:{…}` or `v:…`.
    pub(crate) fn parse(text: &str) -> Option<Element> {
        let (kind, rest) = text.split_at_checked(2)?;
        match kind {
            "f:" => Some(Element::Field(rest.to_string())),
            "k:" => match serde_json::from_str(rest).ok()? {
                Value::Object(keys) => Some(Element::Key(keys)),
                _ => None,
            },
            "v:" => serde_json::from_str(rest).ok().map(Element::Value),
            _ => None,
        }
    }

    /// As `FieldsV1` writes it.
    pub(crate) fn render(&self) -> String {
        match self {
            Element::Field(name) => format!("f:{name}"),
            Element::Key(keys) => format!("k:{}", Value::Object(keys.clone())),
            Element::Value(value) => format!("v:{value}"),
        }
    }

    /// As a conflict message writes it (`.data.key`, `[name="x"]`, `[="v"]`).
    fn display(&self) -> String {
        match self {
            Element::Field(name) => format!(".{name}"),
            Element::Key(keys) => {
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Element::Value(value) => format!("[={value}]"),
        }
    }
}

/// A path as conflict messages show it.
pub(crate) fn display(path: &[String]) -> String {
    path.iter()
        .map(|e| Element::parse(e).map_or_else(|| e.clone(), |e| e.display()))
        .collect()
}

impl FieldSet {
    /// Reads a `FieldsV1` value; `None` when it is not one (or nests deeper than
    /// [`MAX_DEPTH`]).
    pub(crate) fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        fn read(value: &Value, depth: usize) -> Option<FieldSet> {
            if depth > MAX_DEPTH {
                return None;
            }
            let map = value.as_object()?;
            let mut set = FieldSet::default();
            for (key, child) in map {
                if key == "." {
                    set.member = true;
                } else {
                    Element::parse(key)?;
                    let child = read(child, depth + 1)?;
                    set.children.insert(key.clone(), child);
                }
            }
            if set.children.is_empty() && !map.contains_key(".") {
                set.member = true;
            }
            Some(set)
        }
        read(value, 0)
    }

    /// As `FieldsV1`.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (key, child) in &self.children {
            if !child.is_empty() {
                map.insert(key.clone(), child.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    /// Whether no path is in the set.
    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// The node at `path`, made if missing.
    pub(crate) fn node_mut(&mut self, path: &[String]) -> &mut FieldSet {
        let mut node = self;
        for element in path {
            node = node.children.entry(element.clone()).or_default();
        }
        node
    }

    /// Adds a path.
    pub(crate) fn insert(&mut self, path: &[String]) {
        self.node_mut(path).member = true;
    }

    /// Whether a path is in the set.
    pub(crate) fn contains(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| n.member)
    }

    /// Whether the set holds the path or any path below it.
    pub(crate) fn touches(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    fn node(&self, path: &[String]) -> Option<&FieldSet> {
        let mut node = self;
        for element in path {
            node = node.children.get(element)?;
        }
        Some(node)
    }

    /// Adds every path of `other`.
    pub(crate) fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (key, child) in &other.children {
            self.children.entry(key.clone()).or_default().union(child);
        }
    }

    /// Removes every path of `other`.
    pub(crate) fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (key, child) in &other.children {
            if let Some(mine) = self.children.get_mut(key) {
                mine.subtract(child);
            }
        }
        self.prune();
    }

    /// Drops empty branches.
    fn prune(&mut self) {
        for child in self.children.values_mut() {
            child.prune();
        }
        self.children.retain(|_, child| !child.is_empty());
    }

    /// The paths whose values differ between two objects: a leaf when its value differs, a
    /// path with paths below it (a map, a list item) when it exists in one only.
    pub(crate) fn differing(&self, a: &Value, b: &Value) -> FieldSet {
        fn walk(
            set: &FieldSet,
            a: &Value,
            b: &Value,
            prefix: &mut Vec<String>,
            out: &mut FieldSet,
        ) {
            if set.member {
                let (x, y) = (get(a, prefix), get(b, prefix));
                let differs = if set.children.is_empty() {
                    x != y
                } else {
                    x.is_some() != y.is_some()
                };
                if differs {
                    out.insert(prefix);
                }
            }
            for (key, child) in &set.children {
                prefix.push(key.clone());
                walk(child, a, b, prefix, out);
                prefix.pop();
            }
        }
        let mut out = FieldSet::default();
        walk(self, a, b, &mut Vec::new(), &mut out);
        out
    }

    /// Every path in the set.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        fn walk(set: &FieldSet, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            if set.member {
                out.push(prefix.clone());
            }
            for (key, child) in &set.children {
                prefix.push(key.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }
}

/// The item of `list` an element names.
fn find_item(list: &[Value], element: &Element) -> Option<usize> {
    list.iter().position(|item| match element {
        Element::Key(keys) => keys.iter().all(|(k, v)| item.get(k) == Some(v)),
        Element::Value(value) => item == value,
        Element::Field(_) => false,
    })
}

/// The value at `path` in `object`.
pub(crate) fn get<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = object;
    for text in path {
        node = match (Element::parse(text)?, node) {
            (Element::Field(name), Value::Object(map)) => map.get(&name)?,
            (element, Value::Array(list)) => &list[find_item(list, &element)?],
            _ => return None,
        };
    }
    Some(node)
}

/// Removes the value at `path` from `object` (a field, or a list item).
pub(crate) fn remove(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for text in parents {
        let next = match (Element::parse(text), node) {
            (Some(Element::Field(name)), Value::Object(map)) => map.get_mut(&name),
            (Some(element), Value::Array(list)) => match find_item(list, &element) {
                Some(i) => list.get_mut(i),
                None => None,
            },
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    match (Element::parse(last), node) {
        (Some(Element::Field(name)), Value::Object(map)) => {
            map.remove(&name);
        }
        (Some(element), Value::Array(list)) => {
            if let Some(i) = find_item(list, &element) {
                list.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_and_sets_combine() {
        let fields = json!({
            "f:data": {".": {}, "f:a": {}, "f:b": {}},
            "f:spec": {"f:containers": {"k:{\"name\":\"x\"}": {".": {}, "f:image": {}, "f:name": {}}}},
            "f:metadata": {"f:finalizers": {"v:\"keep\"": {}}},
        });
        let set = FieldSet::from_fields_v1(&fields).unwrap();
        assert_eq!(set.to_fields_v1(), fields);
        assert!(set.contains(&["f:data".into(), "f:a".into()]));
        assert!(set.contains(&["f:data".into()]));
        assert!(!set.contains(&["f:spec".into()]));
        assert!(set.touches(&["f:spec".into()]));
        assert_eq!(set.paths().len(), 7);
        let mut less = set.clone();
        less.subtract(&FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}}})).unwrap());
        assert!(!less.contains(&["f:data".into(), "f:a".into()]));
        assert!(less.contains(&["f:data".into(), "f:b".into()]));
        let mut more = less.clone();
        more.union(&set);
        assert_eq!(more, set);
        assert!(FieldSet::from_fields_v1(&json!({"x:bad": {}})).is_none());
        assert!(FieldSet::from_fields_v1(&json!([])).is_none());
        let object = json!({"spec": {"containers": [{"name": "y", "image": "b"}, {"name": "x", "image": "a"}]}, "metadata": {"finalizers": ["keep", "other"]}});
        let image = vec![
            "f:spec".to_string(),
            "f:containers".into(),
            "k:{\"name\":\"x\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(get(&object, &image), Some(&json!("a")));
        assert_eq!(display(&image), ".spec.containers[name=\"x\"].image");
        let mut changed = object.clone();
        remove(&mut changed, &image[..3]);
        remove(
            &mut changed,
            &[
                "f:metadata".into(),
                "f:finalizers".into(),
                "v:\"keep\"".into(),
            ],
        );
        assert_eq!(
            changed,
            json!({"spec": {"containers": [{"name": "y", "image": "b"}]}, "metadata": {"finalizers": ["other"]}})
        );
    }
}
