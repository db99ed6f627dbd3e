//! The admission rules of the EVE kinds (and of the native kinds they use): quantities
//! normalised, certificates checked, references resolved, uniqueness kept, the group and
//! annotations guarded. Served in process by `adamant serve` and as a webhook in cluster mode.
//!
//! One module per kind (or family of kinds) implements [`table::Rules`] on the kind's type; the
//! [`table`] picks a write's rules by the types' own group and kind, and decodes the object into
//! the type once before the rules see it.

mod application;
mod cached;
mod check;
mod claims;
mod crd;
mod device;
mod fleet;
mod image;
mod network;
mod onboarding;
mod references;
mod storage_class;
mod table;
#[cfg(test)]
mod testing;
mod uniqueness;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apimachinery::FieldError;
use eve_model::annotations;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::Value;

pub use cached::Cached;
use check::Check;
pub use table::native_resources;
pub use uniqueness::{DeviceKeys, DeviceLookup};

/// Whether a write creates or changes the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A changed object.
    Update,
}

/// What admission knows of a write.
#[derive(Clone, Debug)]
pub struct Review {
    /// Create or update.
    pub operation: Operation,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The plural resource.
    pub resource: String,
    /// The subresource (`status`, `scale`) or empty.
    pub subresource: String,
    /// The kind.
    pub kind: String,
    /// The namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// Whether nothing will be stored (a dry run): admission then leaves no trace, claiming
    /// nothing for the object.
    pub dry_run: bool,
}

/// Why a write is refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// Fields are wrong (422).
    Invalid(Vec<FieldError>),
    /// The write is not allowed (403).
    Forbidden(String),
    /// Admission could not decide (the API was unreachable).
    Unavailable(String),
}

/// How missing references are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum References {
    /// Refused, naming every missing object (the default).
    #[default]
    Refuse,
    /// Accepted with a warning; the controllers report a `ReferencesResolved=False` condition.
    Warn,
}

impl std::str::FromStr for References {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(References::Refuse),
            "warn" => Ok(References::Warn),
            other => Err(format!(
                "unknown reference-check mode {other:?}: use \"refuse\" or \"warn\""
            )),
        }
    }
}

/// The admission rules, with what they need to look things up.
pub struct Admission {
    client: Client,
    references: References,
    devices: Option<DeviceLookup>,
    cached: Cached,
    recent: Mutex<HashMap<String, (String, Instant)>>,
    table: table::Table,
}

/// The outcome of admission: warnings, or a refusal.
pub type Verdict = Result<Vec<String>, Refusal>;

const RECENT: Duration = Duration::from_secs(30);

impl Admission {
    /// Rules that look objects up through `client`; `devices` (a reflector's store with an
    /// index) makes the uniqueness checks of Devices cheap.
    pub fn new(client: Client, references: References, devices: Option<DeviceLookup>) -> Admission {
        Admission {
            client,
            references,
            devices,
            cached: Cached::default(),
            recent: Mutex::new(HashMap::new()),
            table: table::Table::new(),
        }
    }

    /// These rules, reading `cached` first when they ask whether a named object exists.
    pub fn reading(mut self, cached: Cached) -> Admission {
        self.cached = cached;
        self
    }

    /// Changes an object before it is validated: quantities in canonical form. Returns the
    /// refusal for quantities that are not.
    pub fn mutate(&self, review: &Review, object: &mut Value) -> Verdict {
        let Some(rules) = self.table.get(&review.group, &review.kind) else {
            return Ok(Vec::new());
        };
        let invalid = (rules.normalize)(object);
        if invalid.is_empty() {
            return Ok(Vec::new());
        }
        Err(Refusal::Invalid(
            invalid
                .into_iter()
                .map(|i| FieldError::invalid(i.path, display(&i.value), i.reason))
                .collect(),
        ))
    }

    /// Accepts or refuses the object a write would store.
    pub async fn validate(&self, review: &Review, object: &Value, old: Option<&Value>) -> Verdict {
        let mut warnings = Vec::new();
        if !review.subresource.is_empty() {
            return Ok(warnings);
        }
        let annotations = object
            .get("metadata")
            .and_then(|m| ObjectMeta::deserialize(m).ok())
            .and_then(|m| m.annotations)
            .unwrap_or_default();
        for key in annotations.keys().filter(|k| annotations::is_unknown(k)) {
            warnings.push(format!(
                "metadata.annotations[{key}]: unknown eve.lfedge.org/ annotation; it has no effect (see docs/resources.md for the known ones)"
            ));
        }
        let mut check = Check::new(self, review);
        if let Some(rules) = self.table.get(&review.group, &review.kind) {
            (rules.validate)(&mut check, object, old).await?;
        }
        let Check {
            mut errors,
            missing,
            warnings: mut more,
            ..
        } = check;
        warnings.append(&mut more);
        if !missing.is_empty() {
            let warn = self.references == References::Warn
                || annotations
                    .get(annotations::REFERENCE_CHECKS)
                    .is_some_and(|v| v == "warn")
                || self.namespace_warns(&review.namespace).await;
            if warn {
                warnings.extend(missing.iter().map(|e| {
                    format!(
                        "{e} (accepted: reference checks warn; the object reports ReferencesResolved=False until it exists)"
                    )
                }));
            } else {
                errors.extend(missing);
            }
        }
        if errors.is_empty() {
            Ok(warnings)
        } else {
            Err(Refusal::Invalid(errors))
        }
    }

    async fn namespace_warns(&self, namespace: &str) -> bool {
        if namespace.is_empty() {
            return false;
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        matches!(api.get_opt(namespace).await, Ok(Some(ns))
            if ns.annotations().get(annotations::REFERENCE_CHECKS).is_some_and(|v| v == "warn"))
    }

    /// Remembers a unique key as taken by `owner` for a while, covering the moment before the
    /// device cache sees a new Device; a dry run (`record` false) only looks, as nothing will
    /// be stored. Returns the other owner if the key is taken.
    fn claim_recent(&self, key: String, owner: &str, record: bool) -> Option<String> {
        let mut recent = self.recent.lock().expect("not poisoned");
        let now = Instant::now();
        recent.retain(|_, (_, at)| now.duration_since(*at) < RECENT);
        match recent.get(&key) {
            Some((other, _)) if other != owner => Some(other.clone()),
            _ => {
                if record {
                    recent.insert(key, (owner.to_owned(), now));
                }
                None
            }
        }
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::testing::cases;

    #[test]
    fn missing_references_refused_or_warned_and_unknown_annotations_warned() {
        let network = |metadata: &str| {
            format!("kind: DeviceNetwork\nmetadata: {metadata}\nspec: {{networkConfig: nowhere}}")
        };
        cases(
            &[
                "kind: Namespace\nmetadata: {name: gitops, annotations: {eve.lfedge.org/reference-checks: warn}}",
            ],
            &[
                (
                    network("{}"),
                    expect![[r#"
                    invalid:
                      spec.networkConfig: Not found: "nowhere": NetworkConfig ns/nowhere does not exist; create it first"#]],
                ),
                (
                    network("{annotations: {eve.lfedge.org/reference-checks: warn}}"),
                    expect![[r#"
                        accepted
                        warning: spec.networkConfig: Not found: "nowhere": NetworkConfig ns/nowhere does not exist; create it first (accepted: reference checks warn; the object reports ReferencesResolved=False until it exists)"#]],
                ),
                (
                    network("{namespace: gitops}"),
                    expect![[r#"
                    accepted
                    warning: spec.networkConfig: Not found: "nowhere": NetworkConfig gitops/nowhere does not exist; create it first (accepted: reference checks warn; the object reports ReferencesResolved=False until it exists)"#]],
                ),
                (
                    network(
                        "{annotations: {eve.lfedge.org/colour: blue, eve.lfedge.org/reference-checks: warn}}",
                    ),
                    expect![[r#"
                        accepted
                        warning: metadata.annotations[eve.lfedge.org/colour]: unknown eve.lfedge.org/ annotation; it has no effect (see docs/resources.md for the known ones)
                        warning: spec.networkConfig: Not found: "nowhere": NetworkConfig ns/nowhere does not exist; create it first (accepted: reference checks warn; the object reports ReferencesResolved=False until it exists)"#]],
                ),
            ],
        );
    }
}
