//! Token buckets by key (a device, a source address): each key may spend `rate` a second
//! sustained, with `burst` at once; beyond it, how long until it may. The table is bounded:
//! when full, keys whose buckets are full again (idle ones) go first, and a key that finds no
//! room is refused rather than remembered.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
pub struct Buckets<K> {
    rate: f64,
    burst: f64,
    most: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> std::fmt::Debug for Buckets<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// `rate` a second with `burst` at once, for at most `most` keys.
    pub fn new(rate: f64, burst: f64, most: usize) -> Buckets<K> {
        Buckets {
            rate: rate.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            most: most.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `amount` from `key`'s bucket, or says when to come back.
    pub fn spend(&self, key: &K, amount: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.most {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= self.most {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate)
            .min(self.burst);
        bucket.at = now;
        if amount <= bucket.tokens {
            bucket.tokens -= amount;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((amount - bucket.tokens) / self.rate).clamp(1.0, 3600.0),
            ))
        }
    }

    /// Forgets `key`.
    pub fn forget(&self, key: &K) {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_spends_its_burst_then_waits_and_others_are_apart() {
        let buckets = Buckets::new(1.0, 3.0, 10);
        for _ in 0..3 {
            buckets.spend(&"a", 1.0).unwrap();
        }
        let wait = buckets.spend(&"a", 1.0).unwrap_err();
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        buckets.spend(&"b", 3.0).unwrap();
        buckets.forget(&"a");
        buckets.spend(&"a", 1.0).unwrap();
    }

    #[test]
    fn the_table_is_bounded_and_busy_keys_keep_their_place() {
        let buckets = Buckets::new(0.001, 2.0, 2);
        buckets.spend(&1, 1.0).unwrap();
        buckets.spend(&2, 1.0).unwrap();
        // Both are spending (not full again): a third key finds no room.
        assert!(buckets.spend(&3, 1.0).is_err());
        // An idle key makes room.
        let idle = Buckets::new(1000.0, 2.0, 2);
        idle.spend(&1, 1.0).unwrap();
        idle.spend(&2, 1.0).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        idle.spend(&3, 1.0).unwrap();
    }
}
