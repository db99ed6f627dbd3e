//! The conformance suite on the embedded backend, on disk.

use storage::testing::Subject;
use storage_embedded::{EmbeddedStore, Options};

async fn make() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("store.redb"), Options::default()).unwrap();
    Subject {
        store: std::sync::Arc::new(store),
        guard: Box::new(dir),
    }
}

storage::conformance_tests!(make);
