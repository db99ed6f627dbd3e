//! An API server in process on the memory store, driven through `ApiServer::call`.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use apiserver::ApiServer;
use apiserver::auth::User;
use http_body_util::BodyExt;
use serde_json::{Value, json};
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
        ..User::default()
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
        self.send_as(admin(), method, path, content_type, accept, body)
            .await
    }

    /// A JSON request by `user` answered in JSON.
    pub async fn send_json_as(
        &self,
        user: &User,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        self.call_as(
            user.clone(),
            method,
            path,
            "application/json",
            "application/json",
            body,
        )
        .await
    }

    /// A request by `user`; returns the status, the content type and the body.
    pub async fn send_as(
        &self,
        user: User,
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
            .call(user, request, self.stop.clone())
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

    /// A request with a JSON body (none for `null`); returns the status and the JSON answer
    /// (`{"raw": TEXT}` when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Value,
    ) -> (u16, Value) {
        self.call_as(admin(), method, path, content_type, accept, body)
            .await
    }

    /// [`Harness::call`] by `user`.
    pub async fn call_as(
        &self,
        user: User,
        method: &str,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Value,
    ) -> (u16, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let (code, _, answer) = self
            .send_as(user, method, path, content_type, accept, bytes)
            .await;
        (code, json(&answer))
    }

    /// A JSON request answered in JSON.
    pub async fn send_json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, "application/json", "application/json", body)
            .await
    }

    /// GET, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (code, body) = self.send_json("GET", path, Value::Null).await;
        assert_eq!(code, 200, "GET {path}: {body}");
        body
    }

    /// The sorted names of a list.
    pub async fn names(&self, path: &str) -> Vec<String> {
        let list = self.get(path).await;
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// Creates a namespace.
    pub async fn namespace(&self, name: &str) {
        let (code, body) = self
            .send_json(
                "POST",
                "/api/v1/namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }
}

/// A body as JSON (`{"raw": TEXT}` when it is not JSON).
pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(body)}))
}
