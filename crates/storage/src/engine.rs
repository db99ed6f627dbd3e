//! The write semantics shared by the in-process backends (memory and embedded).
//!
//! A backend provides a [`Tx`] over its own medium (a `BTreeMap`, a redb write transaction); the
//! rules of create, compare-and-swap update, conditional delete and expiry are written once, in
//! [`apply`], so the two cannot drift apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::{Deleted, Event, KeyValue, Result, Revision, StorageError, check_key, check_write};

/// A key as a backend keeps it: its [`KeyValue`] and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The key and its value.
    pub kv: KeyValue,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// A write, as queued to a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Create an absent key.
    Create {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// Its time to live.
        ttl: Option<Duration>,
    },
    /// Replace a key's value if its modification revision is `expected`.
    Update {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// The modification revision the caller read.
        expected: Revision,
        /// Its time to live.
        ttl: Option<Duration>,
    },
    /// Delete a key, if `expected` is given only at that modification revision.
    Delete {
        /// The key.
        key: Bytes,
        /// The modification revision the caller read.
        expected: Option<Revision>,
    },
    /// Delete a key whose time to live has run out, unless it was written since.
    Expire {
        /// The key.
        key: Bytes,
        /// Its modification revision when it was found expired.
        mod_revision: Revision,
    },
}

impl WriteOp {
    /// Checks the op against the limits every backend shares.
    pub fn check(&self) -> Result<()> {
        match self {
            WriteOp::Create { key, value, .. } | WriteOp::Update { key, value, .. } => {
                check_write(key, value)
            }
            WriteOp::Delete { key, .. } | WriteOp::Expire { key, .. } => check_key(key),
        }
    }

    /// An estimate of the op's size, for batching.
    pub fn size(&self) -> usize {
        match self {
            WriteOp::Create { key, value, .. } | WriteOp::Update { key, value, .. } => {
                key.len() + value.len()
            }
            WriteOp::Delete { key, .. } | WriteOp::Expire { key, .. } => key.len(),
        }
    }
}

/// The answer to a create or an update, from the event it made.
pub fn written(event: Event) -> KeyValue {
    match event {
        Event::Put { kv, .. } => kv,
        Event::Delete { .. } => unreachable!("creates and updates make puts"),
    }
}

/// The answer to a delete, from the event it made.
pub fn deleted(event: Event) -> Deleted {
    match event {
        Event::Delete { revision, prev, .. } => Deleted { revision, prev },
        Event::Put { .. } => unreachable!("deletes make deletes"),
    }
}

/// Checks that a read at `revision` is possible in a store at `current` whose history starts
/// after `compacted`.
pub fn check_read(revision: Revision, current: Revision, compacted: Revision) -> Result<()> {
    if revision > current {
        return Err(StorageError::FutureRevision {
            requested: revision,
            current,
        });
    }
    if revision < compacted {
        return Err(StorageError::Compacted {
            requested: revision,
            compacted,
        });
    }
    Ok(())
}

/// A backend's view of one write transaction.
pub trait Tx {
    /// The key's current state.
    fn read(&mut self, key: &[u8]) -> Result<Option<Stored>>;
    /// Stores `new`, replacing `old` (whose expiry index entry, if any, must go).
    fn write(&mut self, new: &Stored, old: Option<&Stored>) -> Result<()>;
    /// Removes `old`.
    fn remove(&mut self, old: &Stored) -> Result<()>;
    /// Appends a committed event to the history.
    fn append(&mut self, event: &Event) -> Result<()>;
}

/// Milliseconds since the Unix epoch, the clock expiry times are kept in (so they survive a
/// restart).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn expiry(ttl: Option<Duration>, now: u64) -> Option<u64> {
    ttl.map(|ttl| now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
}

/// Applies `op` as revision `revision` (the store's revision plus one) and returns its event.
/// On error nothing was changed and the revision is not used.
pub fn apply(tx: &mut impl Tx, revision: Revision, op: WriteOp, now: u64) -> Result<Event> {
    op.check()?;
    let event = match op {
        WriteOp::Create { key, value, ttl } => {
            if tx.read(&key)?.is_some() {
                return Err(StorageError::AlreadyExists { key: key.to_vec() });
            }
            let new = Stored {
                kv: KeyValue {
                    key,
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                    version: 1,
                },
                expires_at: expiry(ttl, now),
            };
            tx.write(&new, None)?;
            Event::Put {
                kv: new.kv,
                prev: None,
            }
        }
        WriteOp::Update {
            key,
            value,
            expected,
            ttl,
        } => {
            let old = tx
                .read(&key)?
                .ok_or_else(|| StorageError::NotFound { key: key.to_vec() })?;
            if old.kv.mod_revision != expected {
                return Err(StorageError::Conflict {
                    key: key.to_vec(),
                    expected,
                    actual: old.kv.mod_revision,
                });
            }
            let new = Stored {
                kv: KeyValue {
                    key,
                    value,
                    create_revision: old.kv.create_revision,
                    mod_revision: revision,
                    version: old.kv.version + 1,
                },
                expires_at: expiry(ttl, now),
            };
            tx.write(&new, Some(&old))?;
            Event::Put {
                kv: new.kv,
                prev: Some(old.kv),
            }
        }
        WriteOp::Delete { key, expected } => remove(tx, key, revision, expected, |_| true)?,
        // Only if not written since it was found expired, and expired indeed.
        WriteOp::Expire { key, mod_revision } => {
            remove(tx, key, revision, Some(mod_revision), |old| {
                old.expires_at.is_some_and(|at| at <= now)
            })?
        }
    };
    tx.append(&event)?;
    Ok(event)
}

/// Removes `key` if its mod revision is `expected` (when given) and `due` holds of it.
fn remove(
    tx: &mut impl Tx,
    key: Bytes,
    revision: Revision,
    expected: Option<Revision>,
    due: impl FnOnce(&Stored) -> bool,
) -> Result<Event> {
    let old = tx
        .read(&key)?
        .ok_or_else(|| StorageError::NotFound { key: key.to_vec() })?;
    let actual = old.kv.mod_revision;
    if expected.is_some_and(|e| e != actual) || !due(&old) {
        return Err(StorageError::Conflict {
            key: key.to_vec(),
            expected: expected.unwrap_or(actual),
            actual,
        });
    }
    tx.remove(&old)?;
    Ok(Event::Delete {
        key,
        revision,
        prev: old.kv,
    })
}
