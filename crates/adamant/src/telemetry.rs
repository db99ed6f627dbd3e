//! The telemetry endpoints (`/edgenode/...`, served by the device API's half) mounted on the
//! Kubernetes API's port: a request is authenticated by the API server, then authorized as `get`
//! on the Device's `log`, `info` or `metrics` subresource, as `pods/log` is.

use std::sync::Arc;

use apiserver::auth::{Attributes, Authorize, Mounted, User};

/// The device API's telemetry, mounted at `/edgenode/`.
pub(crate) struct TelemetryEndpoints(pub(crate) Arc<device_api::DeviceApi>);

#[async_trait::async_trait]
impl Mounted for TelemetryEndpoints {
    async fn serve(
        &self,
        _user: &User,
        authorize: &Authorize,
        request: http::Request<()>,
        segments: Vec<String>,
    ) -> http::Response<apiserver::ResponseBody> {
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        self.0
            .serve_telemetry(request, &segments, |access| {
                let attributes = Attributes {
                    verb: "get".into(),
                    resource_request: true,
                    group: eve_model::GROUP.into(),
                    resource: "devices".into(),
                    subresource: access.subresource.into(),
                    namespace: access.namespace.clone(),
                    name: access.name.clone(),
                    path: String::new(),
                };
                let decision = authorize(&attributes)
                    .map_err(|message| (http::StatusCode::FORBIDDEN, message));
                Box::pin(std::future::ready(decision))
            })
            .await
    }
}
