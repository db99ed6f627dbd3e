//! Random operations on the embedded store and on a simple model of the contract give the same
//! results, including across reopening the store.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use storage::{KeyValue, ListRequest, Result, Revision, StorageError, Store, WriteOptions};
use storage_embedded::{EmbeddedStore, Options};

const KEYS: [&str; 6] = ["a", "ab", "b", "b/c", "b/d", "c"];
const PREFIXES: [&str; 5] = ["", "a", "b", "b/", "z"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize, u8),
    /// Update with the right expected revision, or a wrong one.
    Update(usize, u8, bool),
    /// Delete unconditionally, or with the right or a wrong expected revision.
    Delete(usize, Option<bool>),
    /// Get, at the current revision or this many revisions back.
    Get(usize, Option<i64>),
    List(usize, usize, Option<i64>, Option<usize>),
    /// Compact to this many revisions back.
    Compact(i64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        4 => (key.clone(), any::<u8>(), prop::bool::weighted(0.8)).prop_map(|(k, v, ok)| Op::Update(k, v, ok)),
        2 => (key.clone(), prop::option::of(prop::bool::weighted(0.8))).prop_map(|(k, c)| Op::Delete(k, c)),
        2 => (key.clone(), prop::option::of(0..6i64)).prop_map(|(k, back)| Op::Get(k, back)),
        3 => (0..PREFIXES.len(), 0..4usize, prop::option::of(0..6i64), prop::option::of(0..KEYS.len()))
            .prop_map(|(p, limit, back, after)| Op::List(p, limit, back, after)),
        1 => (0..8i64).prop_map(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// The contract, as plainly as it can be written: a map, and a copy of it at every revision.
struct Model {
    revision: Revision,
    compacted: Revision,
    kvs: BTreeMap<Bytes, KeyValue>,
    snapshots: BTreeMap<Revision, BTreeMap<Bytes, KeyValue>>,
}

impl Model {
    fn new() -> Model {
        Model {
            revision: 1,
            compacted: 0,
            kvs: BTreeMap::new(),
            snapshots: BTreeMap::from([(1, BTreeMap::new())]),
        }
    }

    fn commit(&mut self) -> Revision {
        self.revision += 1;
        self.snapshots.insert(self.revision, self.kvs.clone());
        self.revision
    }

    fn at(&self, revision: Revision) -> Result<&BTreeMap<Bytes, KeyValue>> {
        if revision > self.revision {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        if revision < self.compacted {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        static EMPTY: BTreeMap<Bytes, KeyValue> = BTreeMap::new();
        // Revision 0, before the first, is as empty as revision 1.
        Ok(self
            .snapshots
            .range(..=revision)
            .next_back()
            .map_or(&EMPTY, |(_, kvs)| kvs))
    }

    fn mod_revision(&self, key: &Bytes) -> Revision {
        self.kvs.get(key).map_or(1, |kv| kv.mod_revision)
    }

    fn create(&mut self, key: Bytes, value: Bytes) -> Result<KeyValue> {
        if self.kvs.contains_key(&key) {
            return Err(StorageError::AlreadyExists { key: key.to_vec() });
        }
        let revision = self.revision + 1;
        let kv = KeyValue {
            key: key.clone(),
            value,
            create_revision: revision,
            mod_revision: revision,
            version: 1,
        };
        self.kvs.insert(key, kv.clone());
        self.commit();
        Ok(kv)
    }

    fn update(&mut self, key: Bytes, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let old = self
            .kvs
            .get(&key)
            .ok_or_else(|| StorageError::NotFound { key: key.to_vec() })?;
        if old.mod_revision != expected {
            return Err(StorageError::Conflict {
                key: key.to_vec(),
                expected,
                actual: old.mod_revision,
            });
        }
        let kv = KeyValue {
            key: key.clone(),
            value,
            create_revision: old.create_revision,
            mod_revision: self.revision + 1,
            version: old.version + 1,
        };
        self.kvs.insert(key, kv.clone());
        self.commit();
        Ok(kv)
    }

    fn delete(&mut self, key: Bytes, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let old = self
            .kvs
            .get(&key)
            .ok_or_else(|| StorageError::NotFound { key: key.to_vec() })?;
        if let Some(expected) = expected.filter(|e| *e != old.mod_revision) {
            return Err(StorageError::Conflict {
                key: key.to_vec(),
                expected,
                actual: old.mod_revision,
            });
        }
        let prev = self.kvs.remove(&key).expect("present");
        Ok((self.commit(), prev))
    }

    fn list(&self, request: &ListRequest) -> Result<(Revision, Vec<KeyValue>, bool)> {
        let revision = request.revision.unwrap_or(self.revision);
        let kvs: Vec<KeyValue> = self
            .at(revision)?
            .values()
            .filter(|kv| kv.key.starts_with(&request.prefix))
            .filter(|kv| request.start_after.as_ref().is_none_or(|a| kv.key > *a))
            .cloned()
            .collect();
        let more = request.limit != 0 && kvs.len() > request.limit;
        let kvs = if more {
            kvs[..request.limit].to_vec()
        } else {
            kvs
        };
        Ok((revision, kvs, more))
    }

    fn compact(&mut self, revision: Revision) -> Result<()> {
        if revision > self.revision {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        self.compacted = self.compacted.max(revision);
        Ok(())
    }
}

fn run(ops: Vec<Op>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let open = || EmbeddedStore::open(&path, Options::default()).unwrap();
        let mut store = open();
        let mut model = Model::new();
        let none = WriteOptions::default();
        for (step, op) in ops.into_iter().enumerate() {
            let context = format!("step {step}: {op:?}");
            match op {
                Op::Create(k, v) => {
                    let key = Bytes::from_static(KEYS[k].as_bytes());
                    let value = Bytes::from(vec![v; usize::from(v % 7)]);
                    let got = store.create(key.clone(), value.clone(), none).await;
                    assert_eq!(got, model.create(key, value), "{context}");
                }
                Op::Update(k, v, right) => {
                    let key = Bytes::from_static(KEYS[k].as_bytes());
                    let value = Bytes::from(vec![v; 3]);
                    let expected = model.mod_revision(&key) - i64::from(!right);
                    let got = store
                        .update(key.clone(), value.clone(), expected, none)
                        .await;
                    assert_eq!(got, model.update(key, value, expected), "{context}");
                }
                Op::Delete(k, condition) => {
                    let key = Bytes::from_static(KEYS[k].as_bytes());
                    let expected =
                        condition.map(|right| model.mod_revision(&key) - i64::from(!right));
                    let got = store
                        .delete(key.clone(), expected)
                        .await
                        .map(|d| (d.revision, d.prev));
                    assert_eq!(got, model.delete(key, expected), "{context}");
                }
                Op::Get(k, back) => {
                    let revision = back.map(|b| model.revision - b);
                    let got = store
                        .get(KEYS[k].as_bytes(), revision)
                        .await
                        .map(|g| (g.revision, g.kv));
                    let want = model.at(revision.unwrap_or(model.revision)).map(|kvs| {
                        (
                            revision.unwrap_or(model.revision),
                            kvs.get(KEYS[k].as_bytes()).cloned(),
                        )
                    });
                    assert_eq!(got, want, "{context}");
                }
                Op::List(p, limit, back, after) => {
                    let request = ListRequest {
                        prefix: Bytes::from_static(PREFIXES[p].as_bytes()),
                        start_after: after.map(|a| Bytes::from_static(KEYS[a].as_bytes())),
                        limit,
                        revision: back.map(|b| model.revision - b),
                    };
                    let got = store
                        .list(request.clone())
                        .await
                        .map(|l| (l.revision, l.kvs, l.more));
                    assert_eq!(got, model.list(&request), "{context}");
                }
                Op::Compact(back) => {
                    let revision = model.revision - back + 2;
                    assert_eq!(
                        store.compact(revision).await,
                        model.compact(revision),
                        "{context}"
                    );
                }
                Op::Reopen => {
                    store.close();
                    store = open();
                }
            }
            assert_eq!(
                store.current_revision().await.unwrap(),
                model.revision,
                "{context}"
            );
        }
        assert_eq!(store.check_consistency().unwrap(), model.revision);
        store.close();
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_embedded_store_behaves_like_the_model(ops in prop::collection::vec(op(), 1..100)) {
        run(ops);
    }
}
