//! The generic store: the lifecycle of objects of any kind over a [`storage::Store`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apimachinery::meta::{
    NameRule, validate_annotations, validate_labels, validate_name, validate_namespace,
};
use apimachinery::{FieldError, fields, labels};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use storage::{ListRequest, Revision, StorageError, Store};

use crate::error::{ApiError, MODIFIED};
use crate::object::{self, finalizers, meta_map, meta_mut, meta_str, spec_part};

/// What differs between kinds. Every hook has the behaviour of a plain custom resource by
/// default.
pub trait Strategy: Send + Sync {
    /// What names must look like.
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1123Subdomain
    }

    /// Normalises a new object before validation (for instance, drops its status).
    fn prepare_for_create(&self, _object: &mut Value) {}

    /// What is wrong with a new object, beyond its metadata.
    fn validate(&self, _object: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Normalises an updated object before validation (for instance, keeps the old status).
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// What is wrong with an update, beyond its metadata (for instance, changed immutable
    /// fields).
    fn validate_update(&self, _new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Whether a deleted object must wait for more than its `metadata.finalizers` (a Namespace
    /// waits for its `spec.finalizers`).
    fn holds_deletion(&self, _object: &Value) -> bool {
        false
    }

    /// Changes an object whose deletion waits, as it is marked (a Namespace turns
    /// `Terminating`).
    fn prepare_for_delete(&self, _object: &mut Value) {}

    /// Why an object may never be deleted (a system namespace), answered 403; `None` to allow.
    fn refuse_delete(&self, _object: &Value) -> Option<String> {
        None
    }

    /// The fields other than `metadata.name` and `metadata.namespace` that field selectors may
    /// name.
    fn selectable_fields(&self) -> Vec<String> {
        Vec::new()
    }

    /// The value of one of the [`selectable_fields`](Strategy::selectable_fields) of an object.
    fn field(&self, _object: &Value, _field: &str) -> Option<String> {
        None
    }

    /// What is wrong with a new object that only creation checks (run after
    /// [`validate`](Strategy::validate), which also runs on updates).
    fn validate_create(&self, _object: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// The group whose keys hold the objects, when they are another group's objects served in
    /// another form (`events.k8s.io` Events are core Events); `None` for the resource's own.
    fn storage_group(&self) -> Option<&str> {
        None
    }

    /// The stored form of an object as this resource serves it (unchanged by default). Every
    /// other hook but [`convert_from_storage`](Strategy::convert_from_storage) sees the served
    /// form.
    fn convert_for_storage(&self, object: Value) -> Value {
        object
    }

    /// The served form of a stored object (unchanged by default).
    fn convert_from_storage(&self, object: Value) -> Value {
        object
    }

    /// How long an object lives after each write (`None`: until it is deleted). The registry's
    /// [`set_ttl`](Registry::set_ttl) overrides it.
    fn ttl(&self) -> Option<Duration> {
        None
    }
}

/// The strategy of a kind with no rules of its own.
pub struct DefaultStrategy;

impl Strategy for DefaultStrategy {}

/// A resource the registry serves: where its objects live and the rules they follow.
#[derive(Clone)]
pub struct Resource {
    /// The API group ("" for the core group).
    pub group: String,
    /// The plural resource name (`configmaps`).
    pub resource: String,
    /// The kind (`ConfigMap`).
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The kind's rules.
    pub strategy: Arc<dyn Strategy>,
}

impl Resource {
    /// The resource as messages name it (`configmaps`, `widgets.example.com`).
    pub fn qualified(&self) -> String {
        qualify(&self.resource, &self.group)
    }

    fn qualified_kind(&self) -> String {
        qualify(&self.kind, &self.group)
    }

    /// The key prefix of the resource's objects, in one namespace or in all.
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        let group = match self.strategy.storage_group().unwrap_or(&self.group) {
            "" => "core",
            group => group,
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("/registry/{group}/{}/{ns}/", self.resource),
            None => format!("/registry/{group}/{}/", self.resource),
        }
    }

    /// The key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        let ns = Some(namespace).filter(|ns| !ns.is_empty());
        format!("{}{name}", self.prefix(ns))
    }
}

fn qualify(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

/// Options of a write.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// Check and prepare everything, store nothing (`dryRun=All`).
    pub dry_run: bool,
    /// The admission chain the write passes through.
    pub admission: Option<Arc<dyn Admit>>,
}

/// What a deletion asks beyond its [`WriteOptions`]: preconditions, and the finalizers it
/// changes (kube-apiserver's `DeleteOptions`, as the registry sees them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deletion {
    /// Only at this revision (409 otherwise); a stale read is then not retried.
    pub resource_version: Option<Revision>,
    /// Only the object of this UID (409 otherwise), not another of the same name.
    pub uid: Option<String>,
    /// Finalizers taken off the object before it is deleted (or marked).
    pub remove_finalizers: Vec<String>,
    /// Finalizers put on the object (at the end, once) before it is deleted (or marked).
    pub add_finalizers: Vec<String>,
}

impl Deletion {
    /// The object's finalizers as this deletion leaves them, and whether that changes them.
    fn finalizers_of(&self, object: &Value) -> (Vec<String>, bool) {
        let old = finalizers(object);
        let mut new: Vec<String> = old
            .iter()
            .filter(|f| !self.remove_finalizers.contains(f))
            .cloned()
            .collect();
        for f in &self.add_finalizers {
            if !new.contains(f) {
                new.push(f.clone());
            }
        }
        let changed = {
            let mut a = old.clone();
            let mut b = new.clone();
            a.sort();
            b.sort();
            a != b
        };
        (if changed { new } else { old }, changed)
    }
}

/// Admission: the checks and changes of plug-ins outside the kind's strategy. Both hooks run
/// inside the write, on every retry, with the object as stored before the write (`None` on
/// create).
#[async_trait::async_trait]
pub trait Admit: Send + Sync {
    /// Changes the object before the strategy prepares and validates it (mutating admission).
    async fn mutate(&self, _new: &mut Value, _old: Option<&Value>) -> Result<(), ApiError> {
        Ok(())
    }

    /// Accepts or refuses the prepared, valid object (validating admission).
    async fn validate(&self, _new: &Value, _old: Option<&Value>) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Only objects whose labels match.
    pub labels: labels::Selector,
    /// Only objects whose fields match.
    pub fields: fields::Selector,
    /// At most this many objects; 0 for all.
    pub limit: usize,
    /// Where the previous page ended.
    pub continue_token: Option<String>,
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct ListResult {
    /// The objects, in key order.
    pub items: Vec<Value>,
    /// The revision the list was read at.
    pub resource_version: Revision,
    /// The token of the next page, if there is one.
    pub continue_token: Option<String>,
}

/// The generic store. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    /// Times to live set with [`Registry::set_ttl`], by key prefix.
    ttls: Arc<RwLock<BTreeMap<String, Duration>>>,
}

const GENERATED_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const GENERATED_LENGTH: usize = 5;

fn decode(bytes: &[u8], revision: Revision) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("a stored object cannot be decoded: {e}")))?;
    meta_mut(&mut object).insert("resourceVersion".into(), revision.to_string().into());
    Ok(object)
}

/// A stored object in the form `resource` serves.
pub(crate) fn decode_as(
    resource: &Resource,
    bytes: &[u8],
    revision: Revision,
) -> Result<Value, ApiError> {
    decode(bytes, revision).map(|object| resource.strategy.convert_from_storage(object))
}

/// The stored form: the object without its resource version, which the store keeps.
fn encode(resource: &Resource, object: &Value) -> Bytes {
    let mut object = resource.strategy.convert_for_storage(object.clone());
    meta_mut(&mut object).remove("resourceVersion");
    Bytes::from(serde_json::to_vec(&object).expect("JSON values serialize"))
}

/// Refuses a body that is not an object named as the URL says.
fn check_body(object: &Value, name: &str) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let given_name = object::name(object);
    if given_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({given_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

fn parse_resource_version(object: &Value) -> Result<Option<Revision>, ApiError> {
    match meta_str(object, "resourceVersion") {
        "" => Ok(None),
        rv => rv.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid resourceVersion {rv:?}: it must be a decimal number"
            ))
        }),
    }
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: Arc<dyn Store>) -> Registry {
        Registry {
            store,
            ttls: Arc::default(),
        }
    }

    /// Makes every object stored where `resource`'s are expire `ttl` after its last write,
    /// whatever its strategy says (kube-apiserver's `--event-ttl`).
    pub fn set_ttl(&self, resource: &Resource, ttl: Duration) {
        self.ttls
            .write()
            .expect("not poisoned")
            .insert(resource.prefix(None), ttl);
    }

    /// The options of a write of `resource`: its time to live.
    fn write_options(&self, resource: &Resource) -> storage::WriteOptions {
        let set = self
            .ttls
            .read()
            .expect("not poisoned")
            .get(&resource.prefix(None))
            .copied();
        storage::WriteOptions {
            ttl: set.or_else(|| resource.strategy.ttl()),
        }
    }

    fn invalid(resource: &Resource, name: &str, causes: Vec<FieldError>) -> ApiError {
        ApiError::Invalid {
            kind: resource.qualified_kind(),
            name: name.to_string(),
            causes,
        }
    }

    fn validate_meta(resource: &Resource, object: &Value) -> Vec<FieldError> {
        let mut causes = validate_name(
            object::name(object),
            meta_str(object, "generateName"),
            resource.strategy.name_rule(),
            "metadata",
        );
        causes.extend(validate_namespace(
            object::namespace(object),
            resource.namespaced,
            "metadata",
        ));
        causes.extend(validate_labels(
            &meta_map(object, "labels"),
            "metadata.labels",
        ));
        causes.extend(validate_annotations(
            &meta_map(object, "annotations"),
            "metadata.annotations",
        ));
        causes
    }

    /// Creates an object in `namespace` (ignored for cluster-scoped resources).
    pub async fn create(
        &self,
        resource: &Resource,
        namespace: &str,
        mut object: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        }
        let given = object::namespace(&object).to_string();
        let meta = meta_mut(&mut object);
        if resource.namespaced {
            if !given.is_empty() && !namespace.is_empty() && given != namespace {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            if given.is_empty() && !namespace.is_empty() {
                meta.insert("namespace".into(), namespace.into());
            }
        }
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && !generate.is_empty()
        {
            let random = uuid::Uuid::new_v4();
            let suffix: String = random.as_bytes()[..GENERATED_LENGTH]
                .iter()
                .map(|b| GENERATED_ALPHABET[usize::from(*b) % GENERATED_ALPHABET.len()] as char)
                .collect();
            meta.insert("name".into(), format!("{generate}{suffix}").into());
        }
        for system in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(system);
        }
        meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        meta.insert("creationTimestamp".into(), object::now().into());
        meta.insert("generation".into(), 1.into());
        if let Some(admission) = &options.admission {
            admission.mutate(&mut object, None).await?;
        }
        resource.strategy.prepare_for_create(&mut object);
        let name = object::name(&object).to_string();
        let mut causes = Self::validate_meta(resource, &object);
        causes.extend(resource.strategy.validate(&object));
        causes.extend(resource.strategy.validate_create(&object));
        if !causes.is_empty() {
            return Err(Self::invalid(resource, &name, causes));
        }
        if let Some(admission) = &options.admission {
            admission.validate(&object, None).await?;
        }
        let key = resource.key(object::namespace(&object), &name);
        if options.dry_run {
            return match self.store.get(key.as_bytes(), None).await {
                Ok(got) if got.kv.is_some() => Err(ApiError::AlreadyExists {
                    resource: resource.qualified(),
                    name,
                }),
                Ok(_) => Ok(object),
                Err(e) => Err(ApiError::from_storage(e, &resource.qualified(), &name)),
            };
        }
        let kv = self
            .store
            .create(
                Bytes::from(key),
                encode(resource, &object),
                self.write_options(resource),
            )
            .await
            .map_err(|e| ApiError::from_storage(e, &resource.qualified(), &name))?;
        meta_mut(&mut object).insert("resourceVersion".into(), kv.mod_revision.to_string().into());
        Ok(object)
    }

    /// Reads one object.
    pub async fn get(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let (object, _) = self.read(resource, namespace, name).await?;
        Ok(object)
    }

    async fn read(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<(Value, Revision), ApiError> {
        let qualified = resource.qualified();
        if name.is_empty() {
            return Err(ApiError::NotFound {
                resource: qualified,
                name: name.into(),
            });
        }
        let key = resource.key(namespace, name);
        let got = self
            .store
            .get(key.as_bytes(), None)
            .await
            .map_err(|e| ApiError::from_storage(e, &qualified, name))?;
        let kv = got.kv.ok_or_else(|| ApiError::NotFound {
            resource: qualified,
            name: name.into(),
        })?;
        Ok((
            decode_as(resource, &kv.value, kv.mod_revision)?,
            kv.mod_revision,
        ))
    }

    /// Replaces an object. With a `resourceVersion` the update happens only at that version
    /// (409 otherwise); without, it applies to whatever is current. An update that changes
    /// nothing stores nothing and returns the object as it is.
    pub async fn update(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        object: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        check_body(&object, name)?;
        self.update_with(resource, namespace, name, options, |_| Ok(object.clone()))
            .await
    }

    /// Updates an object to what `change` makes of the current one, retrying on concurrent
    /// writes (`change` runs again on the newer object). A `resourceVersion` in the result is a
    /// precondition: it must be the current one (409 otherwise). An update that changes nothing
    /// stores nothing and returns the object as it is.
    pub async fn update_with(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        options: &WriteOptions,
        mut change: impl FnMut(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        loop {
            let (old, revision) = self.read(resource, namespace, name).await?;
            let object = change(&old)?;
            check_body(&object, name)?;
            let expected = parse_resource_version(&object)?;
            if expected.is_some_and(|e| e != revision) {
                return Err(self.conflict(resource, name));
            }
            let mut new = object;
            let meta = meta_mut(&mut new);
            for system in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old.get("metadata").and_then(|m| m.get(system)) {
                    Some(value) => meta.insert(system.into(), value.clone()),
                    None => meta.remove(system),
                };
            }
            if resource.namespaced {
                meta.insert("namespace".into(), object::namespace(&old).into());
            }
            meta.insert("resourceVersion".into(), revision.to_string().into());
            if let Some(admission) = &options.admission {
                admission.mutate(&mut new, Some(&old)).await?;
            }
            resource.strategy.prepare_for_update(&mut new, &old);
            if spec_part(&new) != spec_part(&old) {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                meta_mut(&mut new).insert("generation".into(), generation.into());
            }
            let mut causes = Self::validate_meta(resource, &new);
            causes.extend(resource.strategy.validate(&new));
            causes.extend(resource.strategy.validate_update(&new, &old));
            if !causes.is_empty() {
                return Err(Self::invalid(resource, name, causes));
            }
            if new == old {
                return Ok(new);
            }
            if let Some(admission) = &options.admission {
                admission.validate(&new, Some(&old)).await?;
            }
            if options.dry_run {
                return Ok(new);
            }
            let key = Bytes::from(resource.key(namespace, name));
            // The last finalizer of an object being deleted is gone: the object goes too.
            let result = if !meta_str(&new, "deletionTimestamp").is_empty()
                && finalizers(&new).is_empty()
                && !resource.strategy.holds_deletion(&new)
            {
                self.store
                    .delete(key, Some(revision))
                    .await
                    .map(|d| d.revision)
            } else {
                self.store
                    .update(
                        key,
                        encode(resource, &new),
                        revision,
                        self.write_options(resource),
                    )
                    .await
                    .map(|kv| kv.mod_revision)
            };
            match result {
                Ok(written) => {
                    meta_mut(&mut new).insert("resourceVersion".into(), written.to_string().into());
                    return Ok(new);
                }
                // Someone else wrote in between: try again on what they wrote (a precondition
                // in the result then fails as it should).
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_storage(e, &resource.qualified(), name)),
            }
        }
    }

    fn conflict(&self, resource: &Resource, name: &str) -> ApiError {
        ApiError::Conflict {
            resource: resource.qualified(),
            name: name.into(),
            reason: MODIFIED.into(),
        }
    }

    /// Deletes an object, if `resource_version` is given only at that version. An object with
    /// finalizers is only marked (`deletionTimestamp`) and returned; it goes when the last
    /// finalizer does. Returns the object as it was last.
    pub async fn delete(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        resource_version: Option<Revision>,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let deletion = Deletion {
            resource_version,
            ..Deletion::default()
        };
        self.delete_with(resource, namespace, name, &deletion, options)
            .await
    }

    /// Deletes an object as `deletion` says: with its preconditions (409 when they fail), and
    /// with its finalizers changed first (the garbage collector's `orphan` and
    /// `foregroundDeletion`, from a propagation policy), also on an object already being
    /// deleted. An object left with finalizers is only marked (`deletionTimestamp`) and
    /// returned; one left without goes now. `options.admission` validates the deletion (no
    /// object, the stored one as the old one). Returns the object as it was last.
    pub async fn delete_with(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        deletion: &Deletion,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        loop {
            let (mut object, revision) = self.read(resource, namespace, name).await?;
            if let Some(reason) = resource.strategy.refuse_delete(&object) {
                return Err(ApiError::Forbidden(format!(
                    "{} \"{name}\" is forbidden: {reason}",
                    resource.qualified()
                )));
            }
            if deletion.resource_version.is_some_and(|rv| rv != revision) {
                return Err(self.conflict(resource, name));
            }
            if let Some(uid) = &deletion.uid {
                let actual = meta_str(&object, "uid");
                if actual != uid {
                    return Err(ApiError::Conflict {
                        resource: resource.qualified(),
                        name: name.into(),
                        reason: format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                        ),
                    });
                }
            }
            // Validating admission sees a deletion as kube-apiserver shows it: no object, the
            // stored one as the old one.
            if let Some(admission) = &options.admission {
                admission.validate(&Value::Null, Some(&object)).await?;
            }
            let retry = deletion.resource_version.is_none();
            let key = Bytes::from(resource.key(namespace, name));
            let (finals, changed) = deletion.finalizers_of(&object);
            if changed {
                let list = finals.iter().cloned().map(Value::from).collect::<Vec<_>>();
                meta_mut(&mut object).insert("finalizers".into(), Value::Array(list));
            }
            if !finals.is_empty() || resource.strategy.holds_deletion(&object) {
                let marked = !meta_str(&object, "deletionTimestamp").is_empty();
                if (marked && !changed) || options.dry_run {
                    return Ok(object);
                }
                if !marked {
                    let meta = meta_mut(&mut object);
                    meta.insert("deletionTimestamp".into(), object::now().into());
                    meta.insert("deletionGracePeriodSeconds".into(), 0.into());
                    resource.strategy.prepare_for_delete(&mut object);
                }
                match self
                    .store
                    .update(
                        key,
                        encode(resource, &object),
                        revision,
                        self.write_options(resource),
                    )
                    .await
                {
                    Ok(kv) => {
                        meta_mut(&mut object)
                            .insert("resourceVersion".into(), kv.mod_revision.to_string().into());
                        return Ok(object);
                    }
                    Err(StorageError::Conflict { .. }) if retry => continue,
                    Err(e) => return Err(ApiError::from_storage(e, &resource.qualified(), name)),
                }
            }
            if options.dry_run {
                return Ok(object);
            }
            match self.store.delete(key, Some(revision)).await {
                Ok(_) => return Ok(object),
                Err(StorageError::Conflict { .. }) if retry => continue,
                Err(e) => return Err(ApiError::from_storage(e, &resource.qualified(), name)),
            }
        }
    }

    /// Lists objects in `namespace` (all namespaces for `None`), filtered by selectors, a page at
    /// a time. Every page of one list comes from the snapshot of its first page.
    pub async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        let prefix = resource.prefix(namespace);
        self.check_selectors(resource, options)?;
        let (mut revision, mut start_after) = match &options.continue_token {
            Some(token) => {
                let (revision, after) = decode_continue(token)?;
                (
                    Some(revision),
                    Some(Bytes::from(format!("{prefix}{after}"))),
                )
            }
            None => (None, None),
        };
        let mut items = Vec::new();
        loop {
            let request = ListRequest {
                prefix: Bytes::from(prefix.clone()),
                start_after: start_after.clone(),
                limit: options.limit,
                revision,
            };
            let page = self.store.list(request).await.map_err(|e| match e {
                StorageError::Compacted { .. } if options.continue_token.is_some() => ApiError::Gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ),
                e => ApiError::from_storage(e, &resource.qualified(), ""),
            })?;
            revision = Some(page.revision);
            for kv in &page.kvs {
                let object = decode_as(resource, &kv.value, kv.mod_revision)?;
                if self.selected(resource, &object, options) {
                    items.push(object);
                }
                start_after = Some(kv.key.clone());
                if options.limit != 0 && items.len() == options.limit {
                    let more = page.more || kv.key != page.kvs.last().expect("non-empty").key;
                    let continue_token = more.then(|| {
                        let after = &kv.key[prefix.len()..];
                        encode_continue(page.revision, &String::from_utf8_lossy(after))
                    });
                    return Ok(ListResult {
                        items,
                        resource_version: page.revision,
                        continue_token,
                    });
                }
            }
            if !page.more {
                return Ok(ListResult {
                    items,
                    resource_version: page.revision,
                    continue_token: None,
                });
            }
        }
    }

    /// Refuses field selectors on fields the kind does not offer.
    pub(crate) fn check_selectors(
        &self,
        resource: &Resource,
        options: &ListOptions,
    ) -> Result<(), ApiError> {
        let mut selectable = vec![
            "metadata.name".to_string(),
            "metadata.namespace".to_string(),
        ];
        selectable.extend(resource.strategy.selectable_fields());
        for term in options.fields.terms() {
            if !selectable.contains(&term.field) {
                let known: Vec<String> = selectable.iter().map(|f| format!("{f:?}")).collect();
                return Err(ApiError::BadRequest(format!(
                    "{:?} is not a known field selector: only {}",
                    term.field,
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn selected(
        &self,
        resource: &Resource,
        object: &Value,
        options: &ListOptions,
    ) -> bool {
        let labels = meta_map(object, "labels");
        options.labels.matches_map(&labels)
            && options.fields.terms().iter().all(|term| {
                let value = match term.field.as_str() {
                    "metadata.name" => object::name(object).to_string(),
                    "metadata.namespace" => object::namespace(object).to_string(),
                    field => resource.strategy.field(object, field).unwrap_or_default(),
                };
                (value == term.value) == term.equal
            })
    }
}

/// A continue token, as kube-apiserver makes them: base64 of
/// `{"v":"meta.k8s.io/v1","rv":REVISION,"start":"KEY-AFTER-PREFIX\u0000"}`.
fn encode_continue(revision: Revision, after: &str) -> String {
    let json = serde_json::json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{after}\u{0}")});
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if json["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let revision = json["rv"].as_i64().filter(|rv| *rv > 0).ok_or_else(bad)?;
    let start = json["start"].as_str().ok_or_else(bad)?;
    let after = start.strip_suffix('\u{0}').unwrap_or(start);
    Ok((revision, after.to_string()))
}
