//! An API server in process on the memory store, driven through `ApiServer::call`.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use apiserver::ApiServer;
use apiserver::auth::User;
use http_body_util::BodyExt;
use storage::{MemoryStore, Store};

/// A server and the shutdown signal its watches end with.
pub struct Harness {
    pub server: Arc<ApiServer>,
    pub stop: tokio::sync::watch::Receiver<bool>,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// A server on a new memory store.
pub async fn harness() -> Harness {
    let store = Arc::new(MemoryStore::new());
    let server = ApiServer::new(store as Arc<dyn Store>, Vec::new())
        .await
        .unwrap();
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    Harness {
        server,
        stop,
        _stop: stop_sender,
    }
}

/// An administrator.
pub fn admin() -> User {
    User {
        name: "admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    }
}

impl Harness {
    /// A request; returns the status, the content type and the body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Vec<u8>,
    ) -> (u16, String, Vec<u8>) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("accept", accept)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let response = self
            .server
            .clone()
            .call(admin(), request, self.stop.clone())
            .await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, body.to_vec())
    }
}
