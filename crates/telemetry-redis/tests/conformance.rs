//! The telemetry conformance suite on the Redis backend, each case against its own private
//! `redis-server` (append-only file, fsync at every write) on a free loopback port.

use telemetry::testing::Subject;
use telemetry_redis::RedisTelemetry;
use telemetry_redis::server::RedisServer;

async fn make() -> Subject {
    let server = RedisServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start a private Redis: {e}"));
    let store = RedisTelemetry::connect(&server.url())
        .await
        .expect("connect");
    Subject {
        store: std::sync::Arc::new(store),
        guard: Box::new(server),
    }
}

telemetry::conformance_tests!(make);
