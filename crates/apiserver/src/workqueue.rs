//! The API server's work queue, as client-go's: de-duplicating, one worker per item at a time,
//! with per-item back-off. The garbage collector (UIDs) and the CRD and namespace controllers
//! (names) run on it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// An item's first retry after a failure comes after this (then 2×, 4×... with each failure
/// in a row) ...
const FIRST_RETRY: Duration = Duration::from_millis(10);
/// ... at most this long.
const RETRY_CAP: Duration = Duration::from_secs(60);

/// The pause before retrying after `failures` failures in a row (1 or more): `first`, doubled
/// with each further failure, at most `cap`. The one back-off of the API server's loops.
pub(crate) fn backoff(first: Duration, failures: u32, cap: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    first.saturating_mul(1 << doublings).min(cap)
}

/// What a worker does with an item after processing it.
pub(crate) enum Outcome {
    /// Done.
    Forget,
    /// Failed: again later, backing off.
    Retry,
    /// Not yet: again after this long.
    After(Duration),
}

/// A de-duplicating work queue: an item queued twice is processed once, never by two workers at
/// once, and again if it was queued while being processed.
pub(crate) struct WorkQueue<T> {
    state: Mutex<QueueState<T>>,
    ready: Notify,
}

struct QueueState<T> {
    order: VecDeque<T>,
    queued: HashSet<T>,
    active: HashSet<T>,
    again: HashSet<T>,
    /// Items whose delayed re-queue is pending (one timer each, however often they are put
    /// off meanwhile).
    waiting: HashSet<T>,
    failures: HashMap<T, u32>,
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue {
            state: Mutex::new(QueueState {
                order: VecDeque::new(),
                queued: HashSet::new(),
                active: HashSet::new(),
                again: HashSet::new(),
                waiting: HashSet::new(),
                failures: HashMap::new(),
            }),
            ready: Notify::new(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// Queues `uid` (once, however often it is queued before a worker takes it).
    pub(crate) fn add(&self, uid: T) {
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

    /// The next item, once there is one; the caller reports with [`WorkQueue::done`].
    pub(crate) async fn next(&self) -> T {
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

    /// Reports on `uid`: forgotten, retried after a back-off (10 ms doubling to 60 s), or queued
    /// again after a delay; queued at once if it was queued while being processed.
    pub(crate) fn done(self: &Arc<Self>, uid: T, outcome: Outcome) {
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
                Some(backoff(FIRST_RETRY, *failures, RETRY_CAP))
            }
            Outcome::After(delay) => Some(delay),
        };
        // One timer per item: one already pending brings it back soon enough.
        let delay = delay.filter(|_| !again && state.waiting.insert(uid.clone()));
        drop(state);
        if again {
            self.add(uid);
        } else if let Some(delay) = delay {
            let queue = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue
                    .state
                    .lock()
                    .expect("not poisoned")
                    .waiting
                    .remove(&uid);
                queue.add(uid);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_its_first_delay_up_to_its_cap() {
        let ms = Duration::from_millis;
        let delays: Vec<Duration> = (1..=6).map(|n| backoff(ms(250), n, ms(4000))).collect();
        assert_eq!(
            delays,
            [ms(250), ms(500), ms(1000), ms(2000), ms(4000), ms(4000)]
        );
        assert_eq!(backoff(ms(10), u32::MAX, ms(60_000)), ms(60_000));
        assert_eq!(backoff(ms(10), 0, ms(60_000)), ms(10));
    }

    #[tokio::test]
    async fn the_queue_runs_an_item_once_at_a_time() {
        let queue = Arc::new(WorkQueue::<Arc<str>>::default());
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

    #[tokio::test(start_paused = true)]
    async fn an_item_put_off_again_while_it_waits_has_one_timer() {
        let queue = Arc::new(WorkQueue::<Arc<str>>::default());
        let later = Duration::from_secs(10);
        let second = Duration::from_secs(1);
        queue.add("a".into());
        let item = queue.next().await;
        queue.done(item, Outcome::After(later));
        // Five seconds on, an event queues it and it is put off again: no second timer.
        tokio::time::sleep(second * 5).await;
        queue.add("a".into());
        let item = queue.next().await;
        queue.done(item, Outcome::After(later));
        // The first timer brings it back at ten seconds; done with it then.
        tokio::time::sleep(second * 6).await;
        let item = queue.next().await;
        queue.done(item, Outcome::Forget);
        // Nothing brings it back at fifteen.
        tokio::time::sleep(second * 5).await;
        let state = queue.state.lock().unwrap();
        assert!(state.order.is_empty(), "{:?}", state.order);
    }
}
