//! Cluster mode's telemetry service: the `/edgenode/...` endpoints on their own HTTPS port
//! (`adamant controller --telemetry-listen`), for callers that reach it directly (a Service, a
//! port-forward, `kubectl eve --telemetry-url`). The caller's bearer token is authenticated by
//! the cluster (a TokenReview) and every read authorized by it (a SubjectAccessReview: `get` on
//! the Device's `log`, `info` or `metrics` subresource), as kubelets and metrics-server do; the
//! controller needs `system:auth-delegator` for it.

use std::sync::Arc;

use device_api::DeviceApi;
use device_api::telemetry::query::{Access, Body, refusal};
use http::StatusCode;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The longest bearer token looked at (kube-apiserver's OIDC tokens stay well under it).
const MAX_TOKEN: usize = 16 * 1024;
/// Reviews in flight to the API server at once: a flood of requests with made-up tokens waits
/// here instead of flooding the API server.
const REVIEWS_AT_ONCE: usize = 32;

/// The telemetry endpoints, authenticated and authorized by the cluster.
pub(crate) struct TelemetryService {
    api: Arc<DeviceApi>,
    client: kube::Client,
    reviews: Semaphore,
}

impl TelemetryService {
    pub(crate) fn new(api: Arc<DeviceApi>, client: kube::Client) -> Arc<TelemetryService> {
        Arc::new(TelemetryService {
            api,
            client,
            reviews: Semaphore::new(REVIEWS_AT_ONCE),
        })
    }

    /// Serves `listener` until `stop`.
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        stop: watch::Receiver<bool>,
    ) {
        https::serve(listener, tls, stop, move |_peer| {
            let service = self.clone();
            move |request| {
                let service = service.clone();
                async move { service.handle(request).await }
            }
        })
        .await;
    }

    async fn handle<B>(&self, request: http::Request<B>) -> http::Response<Body> {
        let (parts, _) = request.into_parts();
        let request = http::Request::from_parts(parts, ());
        let path = request.uri().path().to_string();
        let Some(rest) = path.strip_prefix("/edgenode/") else {
            return refusal(
                StatusCode::NOT_FOUND,
                format!("{path} is not here: the telemetry service serves /edgenode/..."),
            );
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let token = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN)
            .map(str::to_string);
        let Some(token) = token else {
            return refusal(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send a bearer token the cluster knows (Authorization: Bearer TOKEN, e.g. from kubectl create token)",
            );
        };
        let user = match self.authenticate(token).await {
            Ok(user) => user,
            Err((code, message)) => return refusal(code, message),
        };
        let client = self.client.clone();
        self.api
            .serve_telemetry(request, &segments, move |access| {
                Box::pin(authorize(client, user, access))
            })
            .await
    }

    /// Who `token` is, by the cluster's TokenReview.
    async fn authenticate(&self, token: String) -> Result<UserInfo, (StatusCode, String)> {
        let _turn = self.reviews.acquire().await.map_err(|_| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the telemetry service is stopping".to_string(),
            )
        })?;
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "a TokenReview failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot check the token with the API server now; retry".to_string(),
                )
            })?;
        let status = answer.status.unwrap_or_default();
        match (status.authenticated, status.user) {
            (Some(true), Some(user)) => Ok(user),
            _ => Err((
                StatusCode::UNAUTHORIZED,
                "Unauthorized: the cluster does not accept this token".to_string(),
            )),
        }
    }
}

/// Whether `user` may read what `access` names, by the cluster's SubjectAccessReview.
async fn authorize(
    client: kube::Client,
    user: UserInfo,
    access: Access,
) -> Result<(), (StatusCode, String)> {
    let name = user.username.clone().unwrap_or_default();
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            resource_attributes: Some(ResourceAttributes {
                verb: Some("get".into()),
                group: Some(eve_model::GROUP.into()),
                resource: Some("devices".into()),
                subresource: Some(access.subresource.into()),
                namespace: Some(access.namespace.clone()),
                name: Some(access.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "a SubjectAccessReview failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot ask the API server who may read this now; retry".to_string(),
            )
        })?;
    if answer.status.is_some_and(|s| s.allowed) {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        format!(
            "devices.{} \"{}\" is forbidden: User \"{name}\" cannot get resource \"devices/{}\" in API group \"{}\" in the namespace \"{}\"",
            eve_model::GROUP,
            access.name,
            access.subresource,
            eve_model::GROUP,
            access.namespace
        ),
    ))
}
