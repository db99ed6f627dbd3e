//! The informers' caches admission may read before asking the API whether a named object
//! exists: found there, it exists (an object deleted a moment ago is the same race as one
//! deleted just after an API read); not found, the API is asked, since an object created a
//! moment ago may not have reached the cache yet. Only existence is read here: what an object
//! says is always read from the API, so no rule acts on a stale copy.

use std::any::Any;
use std::sync::Arc;

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

/// Stores by kind (type-erased, so one list holds stores of every kind).
#[derive(Clone, Default)]
pub struct Cached {
    stores: Vec<Arc<dyn Any + Send + Sync>>,
}

impl Cached {
    /// These caches and `store`.
    pub fn with<K>(mut self, store: Store<K>) -> Cached
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        self.stores.push(Arc::new(store));
        self
    }

    /// Whether a cache of `K` holds `name` in `namespace`; `false` when it does not, or when no
    /// cache of `K` is here.
    pub(super) fn holds<K>(&self, namespace: &str, name: &str) -> bool
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        self.stores
            .iter()
            .find_map(|s| s.downcast_ref::<Store<K>>())
            .is_some_and(|store| store.get(&ObjectRef::new(name).within(namespace)).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::testing::Harness;
    use kube::runtime::{reflector, watcher};

    /// A cache holding `objects` (named, in the harness's namespace `ns`).
    fn cache_of<K>(objects: Vec<K>) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        let (store, mut writer) = reflector::store::<K>();
        for mut o in objects {
            o.meta_mut().namespace = Some("ns".into());
            writer.apply_watcher_event(&watcher::Event::Apply(o));
        }
        store
    }

    #[test]
    fn admission_reads_existence_from_the_caches_then_from_the_api() {
        let app = "kind: Application\nspec:\n  nodeName: d1\n  containers: [{name: c, image: web}]";
        // The API holds the Image only: found there when the cache misses it.
        let api = ["kind: Image\nmetadata: {name: web}\nspec: {ref: 'web:1', storageClass: hub}"];
        let cached = Cached::default()
            .with(cache_of(vec![eve_model::Device::new(
                "d1",
                Default::default(),
            )]))
            .with(cache_of(Vec::<eve_model::Image>::new()));
        assert_eq!(Harness::new(&api).reading(cached).admit(app), "accepted");
        // Without the cache, the Device is looked for in the API, which does not hold it.
        let refused = Harness::new(&api).admit(app);
        assert!(refused.contains("spec.nodeName"), "{refused}");
    }

    #[test]
    fn holds_what_its_caches_hold_by_kind_and_namespace() {
        let (store, mut writer) = reflector::store::<eve_model::Image>();
        let mut image = eve_model::Image::new("web", Default::default());
        image.metadata.namespace = Some("fleet".into());
        writer.apply_watcher_event(&watcher::Event::Apply(image));
        let cached = Cached::default().with(store);
        assert!(cached.holds::<eve_model::Image>("fleet", "web"));
        assert!(!cached.holds::<eve_model::Image>("other", "web"));
        assert!(!cached.holds::<eve_model::Image>("fleet", "db"));
        assert!(
            !cached.holds::<eve_model::Device>("fleet", "web"),
            "no cache of the kind"
        );
    }
}
