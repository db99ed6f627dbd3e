//! Expectations, as kube-controller-manager's `ControllerExpectations`: a reconciler that has
//! just written Applications records, per owner, what it expects the Application cache to show
//! of them; the Application informer's handler marks each observed; until all are, or they
//! expire, the owner's reconciler does not act on a cache that does not show its own writes.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a reconciler expects to see of an Application it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expected {
    /// It was created: the cache has it.
    Present,
    /// It was deleted: the cache no longer has it, or has it being deleted.
    Gone,
    /// It was bound to a device: the cache has it with `spec.nodeName`.
    Bound,
}

/// How the cache shows an Application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Observed {
    /// Absent, or being deleted.
    Gone,
    /// Present, without a device.
    Unbound,
    /// Present, with a device.
    Bound,
}

impl Expected {
    fn met_by(self, observed: Observed) -> bool {
        match self {
            Expected::Present => observed != Observed::Gone,
            Expected::Gone => observed == Observed::Gone,
            Expected::Bound => observed == Observed::Bound,
        }
    }
}

/// An owner's unmet expectations: by Application name, and when they expire.
struct Pending {
    names: HashMap<String, Expected>,
    deadline: Instant,
}

/// The unmet expectations of every owner `O`.
pub(super) struct Expectations<O> {
    pending: Mutex<HashMap<O, Pending>>,
    ttl: Duration,
}

impl<O: Clone + Eq + Hash + std::fmt::Debug> Expectations<O> {
    /// Expectations that expire `ttl` after they were last recorded.
    pub(super) fn new(ttl: Duration) -> Expectations<O> {
        Expectations {
            pending: Mutex::default(),
            ttl,
        }
    }

    /// Records that `owner` expects to see `expected` of the Application `name`.
    pub(super) fn expect(&self, owner: &O, name: &str, expected: Expected, now: Instant) {
        let mut pending = self.pending.lock().expect("not poisoned");
        let entry = pending.entry(owner.clone()).or_insert_with(|| Pending {
            names: HashMap::new(),
            deadline: now,
        });
        entry.names.insert(name.to_owned(), expected);
        entry.deadline = now + self.ttl;
    }

    /// Marks what the cache now shows of the Application `name` of `owner`.
    pub(super) fn observe(&self, owner: &O, name: &str, observed: Observed) {
        let mut pending = self.pending.lock().expect("not poisoned");
        let Some(entry) = pending.get_mut(owner) else {
            return;
        };
        if entry.names.get(name).is_some_and(|e| e.met_by(observed)) {
            entry.names.remove(name);
        }
        if entry.names.is_empty() {
            pending.remove(owner);
        }
    }

    /// Marks every expectation of `owner` against the cache as `look` reads it. Called after
    /// recording them: an event the informer delivered before they were recorded is in the
    /// cache, every later one reaches [`Expectations::observe`].
    pub(super) fn settle(&self, owner: &O, look: impl Fn(&str) -> Observed) {
        let mut pending = self.pending.lock().expect("not poisoned");
        let Some(entry) = pending.get_mut(owner) else {
            return;
        };
        entry
            .names
            .retain(|name, expected| !expected.met_by(look(name)));
        if entry.names.is_empty() {
            pending.remove(owner);
        }
    }

    /// How long `owner`'s unmet expectations may still be waited for; `None` when all are met
    /// or they expired (then they are dropped).
    pub(super) fn pending(&self, owner: &O, now: Instant) -> Option<Duration> {
        let mut pending = self.pending.lock().expect("not poisoned");
        let entry = pending.get(owner)?;
        if now >= entry.deadline {
            tracing::warn!(
                ?owner,
                unmet = entry.names.len(),
                "the application cache did not show the controller's writes in time; going on"
            );
            pending.remove(owner);
            return None;
        }
        Some(entry.deadline - now)
    }

    /// Drops `owner`'s expectations (it is gone).
    pub(super) fn forget(&self, owner: &O) {
        self.pending.lock().expect("not poisoned").remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn met_once_every_write_is_observed() {
        let e = Expectations::new(TTL);
        let now = Instant::now();
        assert_eq!(e.pending(&"web", now), None);
        e.expect(&"web", "web-1", Expected::Present, now);
        e.expect(&"web", "web-0", Expected::Gone, now);
        assert_eq!(e.pending(&"web", now), Some(TTL));
        // Events that do not meet an expectation leave it.
        e.observe(&"web", "web-1", Observed::Gone);
        e.observe(&"web", "web-0", Observed::Unbound);
        e.observe(&"web", "other", Observed::Unbound);
        assert!(e.pending(&"web", now).is_some());
        e.observe(&"web", "web-1", Observed::Bound);
        assert!(e.pending(&"web", now).is_some());
        e.observe(&"web", "web-0", Observed::Gone);
        assert_eq!(e.pending(&"web", now), None);
    }

    #[test]
    fn owners_are_apart() {
        let e = Expectations::new(TTL);
        let now = Instant::now();
        e.expect(&"a", "x", Expected::Present, now);
        e.observe(&"b", "x", Observed::Unbound);
        assert!(e.pending(&"a", now).is_some());
        assert_eq!(e.pending(&"b", now), None);
        e.forget(&"a");
        assert_eq!(e.pending(&"a", now), None);
    }

    #[test]
    fn a_binding_is_met_only_with_a_device() {
        let e = Expectations::new(TTL);
        let now = Instant::now();
        e.expect(&"ns", "app", Expected::Bound, now);
        e.observe(&"ns", "app", Observed::Unbound);
        assert!(e.pending(&"ns", now).is_some());
        e.observe(&"ns", "app", Observed::Bound);
        assert_eq!(e.pending(&"ns", now), None);
    }

    #[test]
    fn settling_against_the_cache_meets_what_it_already_shows() {
        let e = Expectations::new(TTL);
        let now = Instant::now();
        e.expect(&"web", "seen", Expected::Present, now);
        e.expect(&"web", "unseen", Expected::Present, now);
        e.settle(&"web", |name| {
            if name == "seen" {
                Observed::Unbound
            } else {
                Observed::Gone
            }
        });
        assert!(e.pending(&"web", now).is_some());
        e.settle(&"web", |_| Observed::Bound);
        assert_eq!(e.pending(&"web", now), None);
    }

    #[test]
    fn unmet_expectations_expire() {
        let e = Expectations::new(TTL);
        let now = Instant::now();
        e.expect(&"web", "web-1", Expected::Present, now);
        let later = now + Duration::from_secs(4);
        assert_eq!(e.pending(&"web", later), Some(Duration::from_secs(6)));
        // Recording more extends the deadline.
        e.expect(&"web", "web-2", Expected::Present, later);
        assert_eq!(e.pending(&"web", now + TTL), Some(Duration::from_secs(4)));
        assert_eq!(e.pending(&"web", later + TTL), None);
        // Expired ones are dropped: a late event finds nothing.
        e.observe(&"web", "web-1", Observed::Unbound);
        assert_eq!(e.pending(&"web", now), None);
    }
}
