//! The conformance suite on the etcd backend, each case against its own fresh etcd.

use storage::testing::Subject;
use storage_etcd::EtcdStore;
use storage_etcd::server::EtcdServer;

async fn make() -> Subject {
    let server = EtcdServer::start().await.expect("start etcd");
    let store = EtcdStore::connect(&[server.endpoint().to_string()])
        .await
        .expect("connect");
    Subject {
        store: std::sync::Arc::new(store),
        guard: Box::new(server),
    }
}

storage::conformance_tests!(make);
