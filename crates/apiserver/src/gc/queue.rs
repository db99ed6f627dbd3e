//! The collector's work queue: de-duplicating, one worker per item at a time, with back-off.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::Uid;

/// What a worker does with an item after processing it.
pub(super) enum Outcome {
    /// Done.
    Forget,
    /// Failed: again later, backing off.
    Retry,
    /// Not yet: again after this long.
    After(Duration),
}

/// A de-duplicating work queue of UIDs: an item queued twice is processed once, never by two
/// workers at once, and again if it was queued while being processed.
#[derive(Default)]
pub(super) struct WorkQueue {
    pub(super) state: Mutex<QueueState>,
    pub(super) ready: Notify,
}

#[derive(Default)]
pub(super) struct QueueState {
    pub(super) order: VecDeque<Uid>,
    pub(super) queued: HashSet<Uid>,
    pub(super) active: HashSet<Uid>,
    pub(super) again: HashSet<Uid>,
    pub(super) failures: HashMap<Uid, u32>,
}

impl WorkQueue {
    pub(super) fn add(&self, uid: Uid) {
        let mut state = self.state.lock().expect("not poisoned");
        if state.active.contains(&uid) {
            state.again.insert(uid);
            return;
        }
        if state.queued.insert(uid.clone()) {
            state.order.push_back(uid);
            drop(state);
            self.ready.notify_one();
        }
    }

    pub(super) async fn next(&self) -> Uid {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("not poisoned");
                if let Some(uid) = state.order.pop_front() {
                    state.queued.remove(&uid);
                    state.active.insert(uid.clone());
                    let more = !state.order.is_empty();
                    drop(state);
                    if more {
                        self.ready.notify_one();
                    }
                    return uid;
                }
            }
            notified.await;
        }
    }

    pub(super) fn done(self: &Arc<Self>, uid: Uid, outcome: Outcome) {
        let mut state = self.state.lock().expect("not poisoned");
        state.active.remove(&uid);
        let again = state.again.remove(&uid);
        let delay = match outcome {
            Outcome::Forget => {
                state.failures.remove(&uid);
                None
            }
            Outcome::Retry => {
                let failures = state.failures.entry(uid.clone()).or_default();
                *failures = failures.saturating_add(1);
                let exponent = (*failures).min(14);
                Some(Duration::from_millis(5 << exponent).min(Duration::from_secs(60)))
            }
            Outcome::After(delay) => Some(delay),
        };
        drop(state);
        if again {
            self.add(uid);
        } else if let Some(delay) = delay {
            let queue = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue.add(uid);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_runs_an_item_once_at_a_time() {
        let queue = Arc::new(WorkQueue::default());
        queue.add("a".into());
        queue.add("a".into());
        queue.add("b".into());
        let first = queue.next().await;
        assert_eq!(&*first, "a");
        // Queued again while active: comes back once it is done.
        queue.add("a".into());
        let second = queue.next().await;
        assert_eq!(&*second, "b");
        queue.done(first, Outcome::Forget);
        let again = queue.next().await;
        assert_eq!(&*again, "a");
    }
}
