//! The admission table: for every EVE kind (from `eve_model::for_each_kind!`) and every native
//! kind the rules look at, its rules, found by the group and kind its type names
//! (`kube::Resource`). The object is decoded into the type once, here.

use std::collections::HashMap;
use std::future::Future;

use apimachinery::FieldError;
use eve_model::quantity::Invalid;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Refusal;
use super::check::Check;

/// The rules of one kind, implemented on its type.
pub(super) trait Rules: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync {
    /// Rewrites the object as written, before its schema is checked (quantities in canonical
    /// form); returns what could not be rewritten. Nothing by default.
    fn normalize(_object: &mut Value) -> Vec<Invalid> {
        Vec::new()
    }

    /// Whether [`Rules::validate`] looks at the stored object an update replaces; when not,
    /// it is not decoded (and `old` is `None`).
    const COMPARES_WITH_OLD: bool = false;

    /// Checks the object a write would store; `old` is the stored one an update replaces, if
    /// [`Rules::COMPARES_WITH_OLD`].
    fn validate(
        check: &mut Check<'_>,
        object: &Self,
        old: Option<&Self>,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
}

type Validate = for<'a, 'b> fn(
    &'a mut Check<'b>,
    &'a Value,
    Option<&'a Value>,
) -> BoxFuture<'a, Result<(), Refusal>>;

/// One kind's rules, on JSON objects.
pub(super) struct Entry {
    /// [`Rules::normalize`].
    pub(super) normalize: fn(&mut Value) -> Vec<Invalid>,
    /// The object decoded, then [`Rules::validate`].
    pub(super) validate: Validate,
}

/// The rules by group, then kind.
pub(super) struct Table(HashMap<String, HashMap<String, Entry>>);

fn entry<K: Rules>() -> ((String, String), Entry) {
    (
        (K::group(&()).into_owned(), K::kind(&()).into_owned()),
        Entry {
            normalize: K::normalize,
            validate: validate::<K>,
        },
    )
}

fn validate<'a, 'b, K: Rules>(
    check: &'a mut Check<'b>,
    object: &'a Value,
    old: Option<&'a Value>,
) -> BoxFuture<'a, Result<(), Refusal>> {
    Box::pin(async move {
        let object = K::deserialize(object).map_err(|e| {
            Refusal::Invalid(vec![FieldError::invalid(
                "",
                "",
                format!("the object does not read as {}: {e}", K::kind(&())),
            )])
        })?;
        // The stored object was admitted; should it no longer read, the rules that compare
        // with it see none.
        let old = old
            .filter(|_| K::COMPARES_WITH_OLD)
            .and_then(|o| K::deserialize(o).ok());
        K::validate(check, &object, old.as_ref()).await
    })
}

macro_rules! eve_entries {
    ($($kind:ty),* $(,)?) => {
        [$(entry::<$kind>()),*]
    };
}

/// The native kinds with rules, in the order the webhook configuration lists them.
macro_rules! native_entries {
    ($callback:ident) => {
        $callback!(
            PersistentVolumeClaim,
            StorageClass,
            CustomResourceDefinition
        )
    };
}

macro_rules! native_rows {
    ($($kind:ty),* $(,)?) => {
        [$(entry::<$kind>()),*]
    };
}

macro_rules! native_resource_list {
    ($($kind:ty),* $(,)?) => {
        vec![$((<$kind>::group(&()).into_owned(), <$kind>::plural(&()).into_owned())),*]
    };
}

impl Table {
    pub(super) fn new() -> Table {
        let eve = eve_model::for_each_kind!(eve_entries);
        let native = native_entries!(native_rows);
        let mut table: HashMap<String, HashMap<String, Entry>> = HashMap::new();
        for ((group, kind), entry) in eve.into_iter().chain(native) {
            table.entry(group).or_default().insert(kind, entry);
        }
        Table(table)
    }

    /// The rules of `kind` in `group`, if it has any.
    pub(super) fn get(&self, group: &str, kind: &str) -> Option<&Entry> {
        self.0.get(group)?.get(kind)
    }
}

/// The (group, plural resource) of every native kind the rules look at, for the webhook
/// configuration of cluster mode.
pub fn native_resources() -> Vec<(String, String)> {
    native_entries!(native_resource_list)
}
