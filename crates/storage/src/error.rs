//! The closed set of errors a store can return.

use crate::Revision;

/// Everything that can go wrong in a store operation.
///
/// The set is closed on purpose: callers (the registry, the API server) map each variant to one
/// protocol answer (404, 409, 410, 413, 503, ...), so a backend must never invent a new one. A
/// backend's own failures (I/O, gRPC) become [`StorageError::Unavailable`] or
/// [`StorageError::Corrupt`] with the cause in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (update or delete of a missing key).
    #[error("key {} not found", show_key(.key))]
    NotFound {
        /// The key asked for.
        key: Vec<u8>,
    },
    /// A create found the key already present.
    #[error("key {} already exists", show_key(.key))]
    AlreadyExists {
        /// The key asked for.
        key: Vec<u8>,
    },
    /// A compare-and-swap found another modification revision than the one expected.
    #[error(
        "key {} was modified at revision {actual}, not {expected}: read it again and retry",
        show_key(.key)
    )]
    Conflict {
        /// The key asked for.
        key: Vec<u8>,
        /// The modification revision the caller expected.
        expected: Revision,
        /// The key's modification revision now.
        actual: Revision,
    },
    /// The revision asked for is older than the retained history.
    #[error(
        "revision {requested} has been compacted (history starts after {compacted}): list again at the current revision"
    )]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The newest compacted revision.
        compacted: Revision,
    },
    /// The revision asked for is newer than the store's current revision.
    #[error("revision {requested} is in the future (the store is at {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A watcher did not keep up with the events for its prefix and was ended.
    #[error(
        "watcher fell too far behind after revision {last_delivered} and was ended: watch again from that revision, or list again if it has been compacted"
    )]
    WatcherTooSlow {
        /// The revision of the last event delivered before the watcher was ended.
        last_delivered: Revision,
    },
    /// A key or value is larger than the store accepts.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// "key" or "value".
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The key is empty, which no backend can store.
    #[error("the key is empty: every stored object needs a non-empty key")]
    EmptyKey,
    /// The store cannot be reached or has failed; nothing was changed by this call, or (for a
    /// write whose outcome is unknown) the caller must read back before retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Keys are usually readable paths; show them as text when they are, as bytes otherwise.
fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => format!("{key:02x?}"),
    }
}
