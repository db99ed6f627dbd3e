//! What a namespace's reconcile has to look at: the applications that changed since it last
//! ran, or every unbound one (a Device changed: one may fit now), or all of them (after a
//! re-list, or a change to what applications name or are placed by). The handlers note it, the
//! reconcile takes it, and gives it back when it fails, so that a burst of changes costs work
//! in proportion to the changes, not to the namespace's size times the changes.

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

/// Every namespace's work. Its size is bounded by the applications in the caches (a name each
/// at most) and the namespaces.
#[derive(Debug, Default)]
pub(super) struct NamespaceWork {
    by_namespace: Mutex<HashMap<String, Work>>,
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
