//! Field ownership and server-side apply, as kube-apiserver's field manager keeps them: every
//! write records which manager set which fields in `metadata.managedFields` (one entry per
//! manager, operation and subresource, as `FieldsV1`); an apply merges a manager's
//! configuration into the object over the structural schema, refuses to change fields another
//! manager owns unless forced (409 naming field and manager), and removes the fields the
//! manager stops applying when no one else owns them.

mod fieldset;
mod shape;

use registry::ApiError;
use serde_json::{Map, Value, json};

use crate::schema::Schema;
use fieldset::FieldSet;
use shape::Shape;

/// The manager that owns what an object held before its first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The longest manager name kube-apiserver takes.
const MAX_MANAGER: usize = 128;

/// Who writes, how, and against which schema.
pub(crate) struct Writer<'a> {
    /// The kind's schema.
    pub(crate) schema: &'a Schema,
    /// The field manager.
    pub(crate) manager: &'a str,
    /// The API version written (`v1`, `eve.lfedge.org/v1beta1`).
    pub(crate) api_version: String,
    /// The subresource written (`status`), or empty.
    pub(crate) subresource: &'a str,
    /// Whether `status` belongs to the `status` subresource (not owned through the object).
    pub(crate) status_apart: bool,
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn read(value: &Value) -> Option<Entry> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or("");
        if value.get("fieldsType").is_some_and(|t| t != "FieldsV1") {
            return None;
        }
        let fields = match value.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?,
            None => FieldSet::default(),
        };
        Some(Entry {
            manager: text("manager").into(),
            operation: text("operation").into(),
            api_version: text("apiVersion").into(),
            time: text("time").into(),
            subresource: text("subresource").into(),
            fields,
        })
    }

    fn write(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if !self.subresource.is_empty() {
            entry["subresource"] = self.subresource.clone().into();
        }
        entry
    }

    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The entries of a stored object (entries it cannot read are dropped).
fn entries_of(object: &Value) -> Vec<Entry> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|list| list.iter().filter_map(Entry::read).collect())
        .unwrap_or_default()
}

fn set_entries(object: &mut Value, entries: &[Entry]) {
    let meta = registry::object::meta_mut(object);
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::write)
        .collect();
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// The object without what field ownership does not cover, for comparing contents.
fn content(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    copy
}

fn invalid_manager(detail: &str) -> ApiError {
    ApiError::BadRequest(format!("fieldManager: Invalid value: {detail}"))
}

/// Checks a `fieldManager` (at most 128 printable characters).
pub(crate) fn check_manager(manager: &str) -> Result<(), ApiError> {
    if manager.len() > MAX_MANAGER {
        return Err(invalid_manager(&format!(
            "must be no more than {MAX_MANAGER} characters"
        )));
    }
    if manager.chars().any(|c| c.is_control()) {
        return Err(invalid_manager("must contain only printable characters"));
    }
    Ok(())
}

/// The manager of a write without `fieldManager`: the client's name from its `User-Agent`, as
/// kube-apiserver derives it (`kubectl/v1.32.0 (linux/amd64)` is `kubectl`).
pub(crate) fn manager_from_user_agent(user_agent: &str) -> String {
    let name = user_agent.split('/').next().unwrap_or("").trim();
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MANAGER)
        .collect();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

impl Writer<'_> {
    fn shape(&self) -> Shape<'_> {
        Shape::root(self.schema)
    }

    /// The field set of an object as this writer may own it.
    /// Keeps of `set` what this writer's resource covers: not `status` through the main
    /// resource of a kind with a status subresource; only `status` through that subresource.
    fn scope(&self, set: &mut FieldSet) {
        if self.status_apart && self.subresource.is_empty() {
            set.children.remove("f:status");
        } else if self.subresource == "status" {
            set.children.retain(|key, _| key == "f:status");
        }
    }

    fn owned(&self, object: &Value) -> FieldSet {
        let mut set = shape::field_set(object, self.shape());
        self.scope(&mut set);
        set
    }

    fn changes(&self, old: &Value, new: &Value) -> (FieldSet, FieldSet) {
        let (mut changed, mut removed) = shape::differences(old, new, self.shape());
        self.scope(&mut changed);
        self.scope(&mut removed);
        (changed, removed)
    }

    /// Records an update (create, update or patch) of `old` into `new` in `new`'s
    /// `managedFields`: this manager owns what it changed; others lose it. Entries sent with
    /// the object replace the stored ones (`[{}]` clears them); an update that changes nothing
    /// leaves them as they were.
    pub(crate) fn track_update(
        &self,
        old: Option<&Value>,
        new: &mut Value,
    ) -> Result<(), ApiError> {
        let sent = registry::object::meta_mut(new).remove("managedFields");
        let mut entries = match &sent {
            Some(Value::Array(list)) if list.len() == 1 && list[0] == json!({}) => Vec::new(),
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|e| {
                    Entry::read(e).ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "metadata.managedFields: Invalid value: {e}: entries need a manager, an operation and fieldsV1 of fieldsType FieldsV1"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => old.map(entries_of).unwrap_or_default(),
        };
        let empty = Value::Object(Map::new());
        let old_object = old.unwrap_or(&empty);
        if sent.is_none()
            && let Some(old) = old
            && content(old) == content(new)
        {
            set_entries(new, &entries);
            return Ok(());
        }
        let (changed, removed) = self.changes(old_object, new);
        for entry in &mut entries {
            entry.fields.subtract(&changed);
            entry.fields.subtract(&removed);
        }
        if !changed.is_empty() {
            match entries
                .iter_mut()
                .find(|e| e.is(self.manager, "Update", self.subresource))
            {
                Some(entry) => {
                    entry.fields.union(&changed);
                    entry.time = now();
                    entry.api_version = self.api_version.clone();
                }
                None => entries.push(Entry {
                    manager: self.manager.into(),
                    operation: "Update".into(),
                    api_version: self.api_version.clone(),
                    time: now(),
                    subresource: self.subresource.into(),
                    fields: changed,
                }),
            }
        }
        set_entries(new, &entries);
        Ok(())
    }

    /// Applies `config` (this manager's whole intent) to `live` (none: the object is created),
    /// returning the object to store.
    pub(crate) fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        let mut config = config.clone();
        registry::object::meta_mut(&mut config).remove("managedFields");
        let applied = self.owned(&config);
        let empty = json!({});
        let live_object = live.unwrap_or(&empty);
        let mut entries = live.map(entries_of).unwrap_or_default();
        if let Some(live) = live
            && entries.is_empty()
        {
            let fields = self.owned(live);
            if !fields.is_empty() {
                entries.push(Entry {
                    manager: BEFORE_FIRST_APPLY.into(),
                    operation: "Update".into(),
                    api_version: self.api_version.clone(),
                    time: now(),
                    subresource: self.subresource.into(),
                    fields,
                });
            }
        }
        let mut merged = shape::merge(live_object, &config, self.shape(), 0);
        // Fields whose values this apply changes.
        let changing = applied.differing(live_object, &merged);
        let mine = |e: &Entry| e.is(self.manager, "Apply", self.subresource);
        let mut conflicts = Vec::new();
        for entry in entries.iter().filter(|e| !mine(e)) {
            for path in changing.paths() {
                if entry.fields.contains(&path) {
                    conflicts.push((
                        fieldset::display(&path),
                        entry.manager.clone(),
                        entry.api_version.clone(),
                    ));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(conflict_error(conflicts));
        }
        for entry in entries.iter_mut().filter(|e| !mine(e)) {
            entry.fields.subtract(&changing);
        }
        // What this manager applied before and no longer does goes, unless someone else owns it.
        let previous = entries
            .iter()
            .find(|e| mine(e))
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        let mut dropped = previous.clone();
        dropped.subtract(&applied);
        let mut paths = dropped.paths();
        paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for path in paths {
            let shared = entries
                .iter()
                .filter(|e| !mine(e))
                .any(|e| e.fields.touches(&path))
                || applied.touches(&path);
            if !shared {
                fieldset::remove(&mut merged, &path);
            }
        }
        // Fields gone from the object are no one's.
        let (_, removed) = self.changes(live_object, &merged);
        for entry in entries.iter_mut() {
            entry.fields.subtract(&removed);
        }
        let unchanged = live.is_some_and(|l| content(l) == content(&merged)) && previous == applied;
        match entries.iter_mut().find(|e| mine(e)) {
            Some(entry) => {
                if !unchanged {
                    entry.time = now();
                }
                entry.fields = applied;
                entry.api_version = self.api_version.clone();
            }
            None => entries.push(Entry {
                manager: self.manager.into(),
                operation: "Apply".into(),
                api_version: self.api_version.clone(),
                time: now(),
                subresource: self.subresource.into(),
                fields: applied,
            }),
        }
        if unchanged && let Some(live) = live {
            let mut same = live.clone();
            registry::object::meta_mut(&mut same).remove("resourceVersion");
            return Ok(same);
        }
        set_entries(&mut merged, &entries);
        Ok(merged)
    }
}

/// The 409 of an apply that would change fields other managers own.
fn conflict_error(conflicts: Vec<(String, String, String)>) -> ApiError {
    let message = match conflicts.as_slice() {
        [(field, manager, version)] => {
            format!(
                "Apply failed with 1 conflict: conflict with {manager:?} using {version}: {field}"
            )
        }
        _ => {
            let mut by_manager: Vec<(String, String, Vec<String>)> = Vec::new();
            for (field, manager, version) in &conflicts {
                match by_manager
                    .iter_mut()
                    .find(|(m, v, _)| m == manager && v == version)
                {
                    Some((_, _, fields)) => fields.push(field.clone()),
                    None => {
                        by_manager.push((manager.clone(), version.clone(), vec![field.clone()]))
                    }
                }
            }
            let parts: Vec<String> = by_manager
                .iter()
                .map(|(manager, version, fields)| {
                    let lines: Vec<String> = fields.iter().map(|f| format!("- {f}")).collect();
                    format!(
                        "conflicts with {manager:?} using {version}:\n{}",
                        lines.join("\n")
                    )
                })
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                parts.join("\n")
            )
        }
    };
    ApiError::FieldManagerConflict {
        message,
        conflicts: conflicts
            .into_iter()
            .map(|(field, manager, _)| (field, manager))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn schema() -> Schema {
        Schema::new(
            json!({"$ref": "#/components/schemas/io.k8s.api.core.v1.ConfigMap"}),
            Arc::new(crate::native::components()),
            false,
        )
    }

    fn writer<'a>(schema: &'a Schema, manager: &'a str) -> Writer<'a> {
        Writer {
            schema,
            manager,
            api_version: "v1".into(),
            subresource: "",
            status_apart: false,
        }
    }

    fn managers(object: &Value) -> Vec<(String, String, String)> {
        entries_of(object)
            .iter()
            .map(|e| {
                (
                    e.manager.clone(),
                    e.operation.clone(),
                    e.fields.to_fields_v1().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn two_appliers_share_conflict_force_and_drop_fields() {
        let schema = schema();
        let a = writer(&schema, "a");
        let b = writer(&schema, "b");
        let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
        let one = a
            .apply(None, &cm(json!({"x": "1", "y": "2"})), false)
            .unwrap();
        assert_eq!(one["data"], json!({"x": "1", "y": "2"}));
        // The same value from another manager: shared, no conflict.
        let two = b.apply(Some(&one), &cm(json!({"x": "1"})), false).unwrap();
        // A different value: a conflict naming the field and the manager.
        let error = b
            .apply(Some(&two), &cm(json!({"y": "3"})), false)
            .unwrap_err();
        expect_test::expect![[
            r#"Apply failed with 1 conflict: conflict with "a" using v1: .data.y"#
        ]]
        .assert_eq(&error.to_string());
        // Forced: b takes y from a.
        let three = b
            .apply(Some(&two), &cm(json!({"x": "1", "y": "3"})), true)
            .unwrap();
        assert_eq!(three["data"], json!({"x": "1", "y": "3"}));
        // a stops applying x: b still owns it, so it stays; then b drops it too: it goes.
        let four = a.apply(Some(&three), &cm(json!({})), false).unwrap();
        assert_eq!(four["data"]["x"], "1");
        let five = b.apply(Some(&four), &cm(json!({"y": "3"})), false).unwrap();
        assert_eq!(five["data"], json!({"y": "3"}));
        // Applying the same again changes nothing, not even times.
        let six = b.apply(Some(&five), &cm(json!({"y": "3"})), false).unwrap();
        assert_eq!(content(&six), content(&five));
        assert_eq!(
            six["metadata"]["managedFields"],
            five["metadata"]["managedFields"]
        );
    }

    #[test]
    fn updates_take_the_fields_they_change() {
        let schema = schema();
        let applier = writer(&schema, "applier");
        let editor = writer(&schema, "kubectl-edit");
        let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
        let applied = applier
            .apply(None, &cm(json!({"x": "1", "y": "2"})), false)
            .unwrap();
        let mut edited = applied.clone();
        edited["data"]["x"] = "changed".into();
        editor.track_update(Some(&applied), &mut edited).unwrap();
        assert_eq!(
            managers(&edited),
            [
                (
                    "applier".to_string(),
                    "Apply".to_string(),
                    r#"{"f:data":{".":{},"f:y":{}}}"#.to_string()
                ),
                (
                    "kubectl-edit".to_string(),
                    "Update".to_string(),
                    r#"{"f:data":{"f:x":{}}}"#.to_string()
                ),
            ]
        );
        // The applier now conflicts with the editor on x.
        let error = applier
            .apply(Some(&edited), &cm(json!({"x": "1", "y": "2"})), false)
            .unwrap_err();
        assert!(error.to_string().contains("\"kubectl-edit\""), "{error}");
        // An update changing nothing keeps the entries; [{}] clears them.
        let mut same = edited.clone();
        registry::object::meta_mut(&mut same).remove("managedFields");
        editor.track_update(Some(&edited), &mut same).unwrap();
        assert_eq!(
            same["metadata"]["managedFields"],
            edited["metadata"]["managedFields"]
        );
        let mut cleared = edited.clone();
        cleared["metadata"]["managedFields"] = json!([{}]);
        editor.track_update(Some(&edited), &mut cleared).unwrap();
        assert!(
            cleared["metadata"].get("managedFields").is_none(),
            "{cleared}"
        );
        // An object never applied: its first apply meets before-first-apply's fields.
        let plain = cm(json!({"x": "1"}));
        let error = applier
            .apply(Some(&plain), &cm(json!({"x": "2"})), false)
            .unwrap_err();
        assert!(error.to_string().contains(BEFORE_FIRST_APPLY), "{error}");
        assert_eq!(
            manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
        assert!(check_manager(&"m".repeat(129)).is_err());
    }
}
