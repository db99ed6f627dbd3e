//! The memory backend passes the conformance suite.

use std::sync::Arc;

use telemetry::MemoryTelemetry;
use telemetry::testing::Subject;

async fn fresh() -> Subject {
    Subject {
        store: Arc::new(MemoryTelemetry::new()),
        guard: Box::new(()),
    }
}

telemetry::conformance_tests!(fresh);
