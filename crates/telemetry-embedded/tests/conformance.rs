//! The telemetry conformance suite on the embedded backend, on disk.

use telemetry::testing::Subject;
use telemetry_embedded::{EmbeddedTelemetry, Options};

async fn make() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store =
        EmbeddedTelemetry::open(dir.path().join("telemetry.redb"), Options::default()).unwrap();
    Subject {
        store: std::sync::Arc::new(store),
        guard: Box::new(dir),
    }
}

telemetry::conformance_tests!(make);
