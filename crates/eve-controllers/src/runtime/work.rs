//! What a namespace's reconcile has to look at: the applications that changed since it last
//! ran, or every unbound one (a Device changed: one may fit now), or all of them (after a
//! re-list, or a change to what applications name or are placed by). The handlers note it, the
//! reconcile takes it, and gives it back when it fails, so that a burst of changes costs work
//! in proportion to the changes, not to the namespace's size times the changes. The standalone
//! applications waiting for a device are kept by name, so that a Device's change looks at
//! them, not at the whole namespace.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// One namespace's work.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Work {
    /// Every application of the namespace.
    pub(super) all: bool,
    /// Every unbound standalone application.
    pub(super) unbound: bool,
    /// The applications that changed, by name.
    pub(super) apps: HashSet<String>,
}

impl Work {
    fn merge(&mut self, other: Work) {
        self.all |= other.all;
        self.unbound |= other.unbound;
        if self.all {
            // All of them are looked at: the names would only take memory.
            self.apps.clear();
        } else {
            self.apps.extend(other.apps);
        }
    }
}

/// Every namespace's work, and its standalone applications waiting for a device. Their sizes
/// are bounded by the applications in the caches (a name each at most) and the namespaces.
#[derive(Debug, Default)]
pub(super) struct NamespaceWork {
    by_namespace: Mutex<HashMap<String, Work>>,
    waiting: Mutex<HashMap<String, HashSet<String>>>,
}

impl NamespaceWork {
    fn add(&self, namespace: &str, work: Work) {
        self.by_namespace
            .lock()
            .expect("not poisoned")
            .entry(namespace.to_owned())
            .or_default()
            .merge(work);
    }

    /// The application `name` of `namespace` changed.
    pub(super) fn app(&self, namespace: &str, name: &str) {
        let mut by = self.by_namespace.lock().expect("not poisoned");
        let work = by.entry(namespace.to_owned()).or_default();
        if !work.all {
            work.apps.insert(name.to_owned());
        }
    }

    /// Every unbound standalone application of `namespace` is to be looked at.
    pub(super) fn unbound(&self, namespace: &str) {
        self.add(
            namespace,
            Work {
                unbound: true,
                ..Work::default()
            },
        );
    }

    /// Every application of `namespace` is to be looked at.
    pub(super) fn all(&self, namespace: &str) {
        self.add(
            namespace,
            Work {
                all: true,
                ..Work::default()
            },
        );
    }

    /// `namespace`'s work, now the reconcile's.
    pub(super) fn take(&self, namespace: &str) -> Work {
        self.by_namespace
            .lock()
            .expect("not poisoned")
            .remove(namespace)
            .unwrap_or_default()
    }

    /// Gives back work a reconcile took and did not finish.
    pub(super) fn restore(&self, namespace: &str, work: Work) {
        self.add(namespace, work);
    }

    /// Whether the application `name` of `namespace`, as it is now, waits for a device (a
    /// standalone one not bound yet, not being deleted); `false` once it is gone.
    pub(super) fn waits(&self, namespace: &str, name: &str, waits: bool) {
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if waits {
            waiting
                .entry(namespace.to_owned())
                .or_default()
                .insert(name.to_owned());
        } else if let Some(names) = waiting.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
                waiting.remove(namespace);
            }
        }
    }

    /// The applications of `namespace` waiting for a device, by name.
    pub(super) fn waiting(&self, namespace: &str) -> Vec<String> {
        let waiting = self.waiting.lock().expect("not poisoned");
        waiting
            .get(namespace)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Those of `namespace` waiting for a device are `names`, and only those (a reconcile that
    /// looked at every application of it says so, after a re-list).
    pub(super) fn all_waiting(&self, namespace: &str, names: HashSet<String>) {
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if names.is_empty() {
            waiting.remove(namespace);
        } else {
            waiting.insert(namespace.to_owned(), names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(work: &Work) -> Vec<&str> {
        let mut names: Vec<&str> = work.apps.iter().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn work_is_noted_by_namespace_taken_once_and_given_back_on_failure() {
        let work = NamespaceWork::default();
        work.app("a", "x");
        work.app("a", "y");
        work.app("a", "x");
        work.unbound("b");
        let a = work.take("a");
        assert_eq!(
            (a.all, a.unbound, names(&a)),
            (false, false, vec!["x", "y"])
        );
        assert_eq!(work.take("a"), Work::default(), "taken once");
        // A failed reconcile gives its work back, merged with what came meanwhile.
        work.app("a", "z");
        work.restore("a", a);
        assert_eq!(names(&work.take("a")), ["x", "y", "z"]);
        let b = work.take("b");
        assert!(b.unbound && !b.all && b.apps.is_empty());
    }

    #[test]
    fn the_applications_waiting_for_a_device_are_kept_by_namespace() {
        let work = NamespaceWork::default();
        work.waits("a", "x", true);
        work.waits("a", "y", true);
        work.waits("b", "z", true);
        work.waits("a", "x", false);
        work.waits("b", "z", false);
        assert_eq!(work.waiting("a"), ["y"]);
        assert!(work.waiting("b").is_empty());
        assert!(
            !work.waiting.lock().unwrap().contains_key("b"),
            "no empty sets kept"
        );
        // A look at every application replaces what was kept (names gone during a re-list).
        work.all_waiting("a", HashSet::from(["w".to_string()]));
        assert_eq!(work.waiting("a"), ["w"]);
        work.all_waiting("a", HashSet::new());
        assert!(work.waiting.lock().unwrap().is_empty());
    }

    #[test]
    fn all_of_a_namespace_keeps_no_names() {
        let work = NamespaceWork::default();
        work.app("a", "x");
        work.all("a");
        work.app("a", "y");
        let a = work.take("a");
        assert!(a.all);
        assert!(a.apps.is_empty(), "{:?}", a.apps);
    }
}
