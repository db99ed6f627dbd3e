//! The authorizer's cache of the four RBAC kinds, fed by registry watches (listed once at
//! start, then watched from the list's revision; listed again when a watch ends) and indexed
//! for decisions: bindings by subject (users, service accounts as their user names, groups)
//! and namespace, roles by namespace and name. Requests read it under a read lock; nothing
//! reads the store per request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use registry::{ApiError, ListOptions, Registry};
use serde_json::Value;
use storage::Revision;
use tokio::sync::watch;

use super::kinds::Which;
use super::rules::{PolicyRule, rules_of};
use super::selector::{LabelSelector, aggregation_selectors};
use crate::follow::{Followed, follow_from};

/// A binding's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub(crate) kind: String,
    /// The name.
    pub(crate) name: String,
    /// A service account's namespace (the binding's when empty, for RoleBindings).
    pub(crate) namespace: String,
}

/// A RoleBinding (namespace set) or ClusterRoleBinding (namespace empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The namespace; empty for ClusterRoleBindings.
    pub(crate) namespace: String,
    /// The name.
    pub(crate) name: String,
    /// `Role` or `ClusterRole`.
    pub(crate) role_kind: String,
    /// The role's name.
    pub(crate) role_name: String,
    /// Who it grants the role to.
    pub(crate) subjects: Vec<Subject>,
}

impl Binding {
    fn from_object(object: &Value) -> Binding {
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        Binding {
            namespace: registry::object::namespace(object).to_string(),
            name: registry::object::name(object).to_string(),
            role_kind: text(&object["roleRef"]["kind"]),
            role_name: text(&object["roleRef"]["name"]),
            subjects: object["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Subject {
                    kind: text(&s["kind"]),
                    name: text(&s["name"]),
                    namespace: text(&s["namespace"]),
                })
                .collect(),
        }
    }

    /// The user name a subject stands for (a service account's is
    /// `system:serviceaccount:NS:NAME`), or the group; `None` for what matches nobody.
    pub(crate) fn subject_key(&self, subject: &Subject) -> Option<(bool, String)> {
        match subject.kind.as_str() {
            "User" => Some((true, subject.name.clone())),
            "Group" => Some((false, subject.name.clone())),
            "ServiceAccount" => {
                let namespace = match subject.namespace.as_str() {
                    "" => self.namespace.as_str(),
                    ns => ns,
                };
                (!namespace.is_empty()).then(|| {
                    (
                        true,
                        format!("system:serviceaccount:{namespace}:{}", subject.name),
                    )
                })
            }
            _ => None,
        }
    }
}

/// A ClusterRole as aggregation and decisions need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClusterRole {
    /// Its rules.
    pub(crate) rules: Arc<Vec<PolicyRule>>,
    /// Its labels (what aggregation selects by).
    pub(crate) labels: BTreeMap<String, String>,
    /// Its `aggregationRule` selectors, if it has one.
    pub(crate) selectors: Option<Vec<LabelSelector>>,
}

/// Bindings by subject, then namespace ("" for ClusterRoleBindings), then name.
impl ClusterRole {
    /// The ClusterRole of an object.
    pub(crate) fn from_object(object: &Value) -> ClusterRole {
        ClusterRole {
            rules: Arc::new(rules_of(object)),
            labels: registry::object::meta_map(object, "labels"),
            selectors: aggregation_selectors(object),
        }
    }
}

/// Bindings by subject, then namespace ("" for ClusterRoleBindings), then name.
pub(crate) type Index = HashMap<String, HashMap<String, BTreeMap<String, Arc<Binding>>>>;

/// Everything the authorizer knows.
#[derive(Default)]
pub(crate) struct State {
    /// Roles by (namespace, name).
    pub(crate) roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    /// ClusterRoles by name.
    pub(crate) cluster_roles: HashMap<String, Arc<ClusterRole>>,
    /// Bindings by (namespace, name); ClusterRoleBindings under "".
    pub(crate) bindings: HashMap<(String, String), Arc<Binding>>,
    /// Bindings by user name.
    pub(crate) by_user: Index,
    /// Bindings by group.
    pub(crate) by_group: Index,
}

impl State {
    fn index(&mut self, binding: &Arc<Binding>, add: bool) {
        for subject in &binding.subjects {
            let Some((user, key)) = binding.subject_key(subject) else {
                continue;
            };
            let index = if user {
                &mut self.by_user
            } else {
                &mut self.by_group
            };
            if add {
                index
                    .entry(key)
                    .or_default()
                    .entry(binding.namespace.clone())
                    .or_default()
                    .insert(binding.name.clone(), binding.clone());
            } else if let Some(namespaces) = index.get_mut(&key) {
                if let Some(names) = namespaces.get_mut(&binding.namespace) {
                    names.remove(&binding.name);
                    if names.is_empty() {
                        namespaces.remove(&binding.namespace);
                    }
                }
                if namespaces.is_empty() {
                    index.remove(&key);
                }
            }
        }
    }

    fn remove_binding(&mut self, key: &(String, String)) {
        if let Some(old) = self.bindings.remove(key) {
            self.index(&old, false);
        }
    }

    /// Adds or replaces an object.
    pub(crate) fn put(&mut self, which: Which, object: &Value) {
        let key = (
            registry::object::namespace(object).to_string(),
            registry::object::name(object).to_string(),
        );
        match which {
            Which::Role => {
                self.roles.insert(key, Arc::new(rules_of(object)));
            }
            Which::ClusterRole => {
                let role = ClusterRole::from_object(object);
                self.cluster_roles.insert(key.1, Arc::new(role));
            }
            Which::RoleBinding | Which::ClusterRoleBinding => {
                self.remove_binding(&key);
                let binding = Arc::new(Binding::from_object(object));
                self.index(&binding, true);
                self.bindings.insert(key, binding);
            }
        }
    }

    fn delete(&mut self, which: Which, object: &Value) {
        let key = (
            registry::object::namespace(object).to_string(),
            registry::object::name(object).to_string(),
        );
        match which {
            Which::Role => {
                self.roles.remove(&key);
            }
            Which::ClusterRole => {
                self.cluster_roles.remove(&key.1);
            }
            _ => self.remove_binding(&key),
        }
    }

    fn clear(&mut self, which: Which) {
        match which {
            Which::Role => self.roles.clear(),
            Which::ClusterRole => self.cluster_roles.clear(),
            _ => {
                let cluster = which == Which::ClusterRoleBinding;
                let keys: Vec<(String, String)> = self
                    .bindings
                    .keys()
                    .filter(|(ns, _)| ns.is_empty() == cluster)
                    .cloned()
                    .collect();
                for key in keys {
                    self.remove_binding(&key);
                }
            }
        }
    }
}

/// The cache: the state, and the revision each kind's feed has reached.
pub(crate) struct Cache {
    state: RwLock<State>,
    revisions: HashMap<Which, watch::Sender<Revision>>,
    cluster_roles_changed: watch::Sender<u64>,
}

fn revision_of(object: &Value) -> Revision {
    registry::object::revision(object).unwrap_or(0)
}

impl Cache {
    fn new() -> Cache {
        Cache {
            state: RwLock::new(State::default()),
            revisions: Which::ALL
                .into_iter()
                .map(|w| (w, watch::channel(0).0))
                .collect(),
            cluster_roles_changed: watch::channel(0).0,
        }
    }

    /// Lists the four kinds into a new cache, then follows them (from the current Tokio
    /// runtime) until `stop`'s sender is dropped.
    pub(crate) async fn start(
        registry: &Registry,
        stop: watch::Receiver<()>,
    ) -> Result<Arc<Cache>, ApiError> {
        let cache = Arc::new(Cache::new());
        for which in Which::ALL {
            let list = registry
                .list(&which.resource(), None, &ListOptions::default())
                .await?;
            cache.replace(which, &list.items, list.resource_version);
            // Watched from the list's revision; listed again whenever a watch ends.
            let (cache, registry, stop) = (cache.clone(), registry.clone(), stop.clone());
            tokio::spawn(async move {
                let resource = which.resource();
                let after = Some(list.resource_version);
                let all = ListOptions::default();
                follow_from(&registry, &resource, &all, after, stop, |followed| {
                    cache.apply(which, followed)
                })
                .await;
            });
        }
        Ok(cache)
    }

    /// Reads the state.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().expect("not poisoned"))
    }

    fn write(&self, which: Which, revision: Revision, f: impl FnOnce(&mut State)) {
        f(&mut self.state.write().expect("not poisoned"));
        if let Some(seen) = self.revisions.get(&which) {
            seen.send_if_modified(|r| {
                let newer = revision > *r;
                *r = (*r).max(revision);
                newer
            });
        }
        if which == Which::ClusterRole {
            self.cluster_roles_changed.send_modify(|n| *n += 1);
        }
    }

    fn replace(&self, which: Which, items: &[Value], revision: Revision) {
        self.write(which, revision, |state| {
            state.clear(which);
            for object in items {
                state.put(which, object);
            }
        });
    }

    fn apply(&self, which: Which, followed: Followed) {
        match followed {
            Followed::Listed { objects, revision } => self.replace(which, &objects, revision),
            Followed::Applied(object) => {
                self.write(which, revision_of(&object), |s| s.put(which, &object));
            }
            Followed::Deleted(object) => {
                self.write(which, revision_of(&object), |s| s.delete(which, &object));
            }
            Followed::Progress(revision) => self.write(which, revision, |_| {}),
        }
    }

    /// A receiver told of every change of ClusterRoles.
    pub(crate) fn cluster_role_changes(&self) -> watch::Receiver<u64> {
        self.cluster_roles_changed.subscribe()
    }

    /// Waits (up to 5 s) until the cache of `which` has seen `revision`.
    pub(crate) async fn caught_up(&self, which: Which, revision: Revision) {
        let Some(seen) = self.revisions.get(&which) else {
            return;
        };
        let mut seen = seen.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), seen.wait_for(|r| *r >= revision)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::WriteOptions;
    use serde_json::json;

    #[tokio::test]
    async fn the_cache_follows_the_store_and_indexes_subjects() {
        let registry = Registry::new(Arc::new(storage::MemoryStore::new()));
        let binding = |name: &str, subjects: Value| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": "ns"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": subjects})
        };
        let resource = Which::RoleBinding.resource();
        let options = WriteOptions::default();
        registry
            .create(
                &resource,
                "ns",
                binding(
                    "a",
                    json!([{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}]),
                ),
                &options,
            )
            .await
            .unwrap();
        let (_keep, stop) = watch::channel(());
        let cache = Cache::start(&registry, stop).await.unwrap();
        let names = |cache: &Cache, user: bool, key: &str| {
            cache.read(|s| {
                let index = if user { &s.by_user } else { &s.by_group };
                index
                    .get(key)
                    .and_then(|n| n.get("ns"))
                    .cloned()
                    .unwrap_or_default()
            })
        };
        assert_eq!(names(&cache, true, "u").len(), 1);
        let created = registry
            .create(&resource, "ns", binding("b", json!([{"kind": "ServiceAccount", "name": "robot"}, {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}])), &options)
            .await
            .unwrap();
        cache
            .caught_up(Which::RoleBinding, revision_of(&created))
            .await;
        assert_eq!(
            names(&cache, true, "system:serviceaccount:ns:robot").len(),
            1
        );
        assert_eq!(names(&cache, false, "g").len(), 1);
        let deleted = registry
            .delete(&resource, "ns", "a", None, &options)
            .await
            .unwrap();
        let gone = revision_of(&deleted).max(revision_of(&created) + 1);
        cache.caught_up(Which::RoleBinding, gone).await;
        assert!(names(&cache, true, "u").is_empty());
        assert!(cache.read(|s| !s.by_user.contains_key("u")));
    }
}
