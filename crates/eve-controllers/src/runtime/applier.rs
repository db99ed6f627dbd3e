//! Running a reconciler: kube-runtime's `applier` over a cache and a queue of references, with
//! an error policy of exponential back-off per object. The controllers here and the device
//! API's DeviceConfig writer run on it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use kube::Resource;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

/// Reconciles of one kind that may run at once (never two of one object), by default.
pub const CONCURRENCY: u16 = 4;
/// The first retry's delay after a failure, doubled on each further failure...
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// ... up to this.
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// The delay before retrying an object that failed `failures` times in a row (1 or more).
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE * 2u32.pow(doublings)).min(BACKOFF_CAP)
}

/// Consecutive failures per object.
struct Failures<K: Resource> {
    counts: Mutex<HashMap<ObjectRef<K>, u32>>,
}

impl<K> Failures<K>
where
    K: Resource,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    fn fail(&self, object: &K) -> u32 {
        let mut counts = self.counts.lock().expect("not poisoned");
        let n = counts.entry(ObjectRef::from_obj(object)).or_default();
        *n += 1;
        *n
    }

    fn succeed(&self, object: &K) {
        self.counts
            .lock()
            .expect("not poisoned")
            .remove(&ObjectRef::from_obj(object));
    }
}

/// Runs `reconcile` on each `K` of `store` that `queue` names (and that the store holds),
/// `concurrency` at once, until `stop` turns true; what it returns is logged under `what`.
#[allow(clippy::too_many_arguments)]
pub fn spawn<K, C, E, F, Fut>(
    what: &'static str,
    store: Store<K>,
    queue: mpsc::UnboundedReceiver<ObjectRef<K>>,
    ctx: Arc<C>,
    concurrency: u16,
    reconcile: F,
    mut stop: watch::Receiver<bool>,
) where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let failures = Arc::new(Failures::<K> {
        counts: Mutex::default(),
    });
    let succeeded = failures.clone();
    let reconcile = move |object: Arc<K>, ctx: Arc<C>| {
        let failures = succeeded.clone();
        reconcile(object.clone(), ctx)
            .inspect(move |result| {
                if result.is_ok() {
                    failures.succeed(&object);
                }
            })
            .boxed()
    };
    let error_policy = move |object: Arc<K>, error: &E, _: Arc<C>| {
        let delay = backoff(failures.fail(&object));
        tracing::warn!(
            kind = what,
            object = %ObjectRef::from_obj(object.as_ref()),
            %error,
            ?delay,
            "reconcile failed; retrying"
        );
        Action::requeue(delay)
    };
    let queue = queue.map(Ok::<_, std::convert::Infallible>);
    let results = controller::applier(
        reconcile,
        error_policy,
        ctx,
        store,
        queue,
        controller::Config::default().concurrency(concurrency),
    );
    tokio::spawn(async move {
        let mut results = std::pin::pin!(results.take_until(stop.changed()));
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                // A reference to an object no longer (or not yet) in the cache.
                Err(controller::Error::ObjectNotFound(object)) => {
                    tracing::trace!(kind = what, %object, "not in the cache")
                }
                Err(e) => tracing::warn!(kind = what, error = %e, "controller error"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        let delays: Vec<u64> = (1..=9).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
        assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
    }
}
