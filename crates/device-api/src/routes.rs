//! Routing and request authentication: the paths devices call, request bodies read within
//! bounds, the signer of each body verified and charged to its budget, and the answers (the
//! proto content type always, a refusal's status code).

use std::sync::Arc;

use bytes::Bytes;
use eve_api::Message;
use eve_api::envelope::Opened;
use eve_model::{Device, annotations};
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use kube::ResourceExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::fleet::Known;
use crate::telemetry::ingest;
use crate::{DeviceApi, Options, PREFIX, PROTO, budget, metrics};

/// Bytes of request bodies held at once before their signatures are checked (64 bodies of the
/// largest size; a device's usual request is a few kilobytes).
pub(crate) const UNVERIFIED_BYTES: usize = 64 * 1024 * 1024;
/// How long a device's request body may take to arrive.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The most devices or addresses whose budgets are remembered at once.
const BUDGETS: usize = 1 << 20;

/// The per-device and per-address request budgets.
#[derive(Debug)]
pub(crate) struct Budgets {
    requests: budget::Buckets<String>,
    bytes: budget::Buckets<String>,
    strangers: budget::Buckets<std::net::IpAddr>,
}

impl Budgets {
    pub(crate) fn new(options: &Options) -> Budgets {
        let per_second = |per_minute: f64| per_minute.max(1.0) / 60.0;
        let requests = f64::from(options.requests_per_minute);
        let bytes = options.bytes_per_minute as f64;
        let strangers = f64::from(options.stranger_requests_per_minute);
        Budgets {
            requests: budget::Buckets::new(per_second(requests), requests, BUDGETS),
            bytes: budget::Buckets::new(per_second(bytes), bytes, BUDGETS),
            strangers: budget::Buckets::new(per_second(strangers), strangers, BUDGETS),
        }
    }

    /// Charges a device's request of `bytes`.
    fn device(&self, uuid: &str, bytes: usize) -> Result<(), Refused> {
        let key = uuid.to_string();
        self.requests
            .spend(&key, 1.0)
            .and_then(|()| self.bytes.spend(&key, bytes as f64))
            .map_err(|wait| {
                Refused::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "this device is over its request budget; retry in {} s",
                        wait.as_secs()
                    ),
                )
            })
    }

    /// Charges a request from `address` that no known device signed.
    fn stranger(&self, address: Option<std::net::IpAddr>) -> Result<(), Refused> {
        let Some(address) = address else {
            return Ok(());
        };
        self.strangers.spend(&address, 1.0).map_err(|wait| {
            Refused::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many requests from {address}; retry in {} s",
                    wait.as_secs()
                ),
            )
        })
    }

    pub(crate) fn forget(&self, uuid: &str) {
        self.requests.forget(&uuid.to_string());
        self.bytes.forget(&uuid.to_string());
    }
}

/// A response: status and body, always with the proto content type.
pub(crate) fn answer(status: StatusCode, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(PROTO),
    );
    response
}

pub(crate) fn status(code: StatusCode) -> http::Response<Full<Bytes>> {
    answer(code, Bytes::new())
}

/// Why a request is refused: the status code EVE acts on, and why (logged).
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub String);

impl Refused {
    pub(crate) fn new(code: StatusCode, why: impl Into<String>) -> Refused {
        Refused(code, why.into())
    }
}

pub(crate) type Answer = Result<http::Response<Full<Bytes>>, Refused>;

impl DeviceApi {
    /// Serves devices on `listener` within `limits` until `stop`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        limits: https::Limits,
        stop: watch::Receiver<bool>,
    ) {
        https::serve_with(listener, tls, limits, stop, move |peer| {
            let api = self.clone();
            let address = peer.address.ip();
            move |request| {
                let api = api.clone();
                async move { api.handle_from(Some(address), request).await }
            }
        })
        .await;
    }

    /// Answers one request (from no known address: budgets by address do not apply).
    pub async fn handle<B>(
        self: Arc<Self>,
        request: http::Request<B>,
    ) -> http::Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.handle_from(None, request).await
    }

    /// Answers one request from `address`.
    pub async fn handle_from<B>(
        self: Arc<Self>,
        address: Option<std::net::IpAddr>,
        request: http::Request<B>,
    ) -> http::Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return status(StatusCode::NOT_FOUND);
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let endpoint = metrics::endpoint(method == http::Method::GET, &parts);
        let started = std::time::Instant::now();
        let response = self.route(address, request, &path, &method, &parts).await;
        self.metrics
            .request(endpoint, response.status().as_u16(), started.elapsed());
        response
    }

    /// Answers one request to `parts`, the segments of `path` after the prefix.
    async fn route<B>(
        &self,
        address: Option<std::net::IpAddr>,
        request: http::Request<B>,
        path: &str,
        method: &http::Method,
        parts: &[&str],
    ) -> http::Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if method == http::Method::GET {
            return match parts {
                ["ping"] => status(StatusCode::OK),
                ["certs"] => answer(StatusCode::OK, self.certs.certs_body.clone()),
                _ => status(StatusCode::NOT_FOUND),
            };
        }
        if method != http::Method::POST {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        // The envelope names its signer after its payload, so a body is whole before anyone is
        // known: what is declared too long is refused unread, and the bodies held before their
        // signatures are checked are bounded in all.
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|length| length > eve_api::envelope::MAX_BODY) {
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let limit = declared.unwrap_or(eve_api::envelope::MAX_BODY);
        let places = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        let Ok(Ok(_held)) = tokio::time::timeout(
            BODY_DEADLINE,
            self.unverified.clone().acquire_many_owned(places),
        )
        .await
        else {
            tracing::debug!(%path, "too many request bodies at once");
            return status(StatusCode::SERVICE_UNAVAILABLE);
        };
        let reading = Limited::new(request.into_body(), limit).collect();
        let Ok(read) = tokio::time::timeout(BODY_DEADLINE, reading).await else {
            tracing::debug!(%path, "device request body too slow");
            return status(StatusCode::REQUEST_TIMEOUT);
        };
        let body = match read {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                tracing::debug!(%path, error = %e, "device request body refused");
                return status(StatusCode::PAYLOAD_TOO_LARGE);
            }
        };
        let result = match parts {
            ["register"] => match self.budgets.stranger(address) {
                Ok(()) => self.register(&body).await,
                Err(refused) => Err(refused),
            },
            ["uuid"] | ["id", ..] | ["apps", "instanceid", _, "newlogs"] => {
                match self.signed(address, &body) {
                    Ok((known, opened)) => match parts {
                        ["uuid"] => self.uuid(&known),
                        ["id", uuid, rest @ ..] => {
                            self.device_call(&known, opened, uuid, rest).await
                        }
                        [.., app, _] => {
                            let received = ingest::now_millis();
                            self.logs(&known.uuid, Some(app), &opened.payload, received)
                                .await
                        }
                        _ => Err(Refused::new(StatusCode::NOT_FOUND, "no such endpoint")),
                    },
                    Err(refused) => Err(refused),
                }
            }
            _ => Err(Refused::new(StatusCode::NOT_FOUND, "no such endpoint")),
        };
        match result {
            Ok(response) => response,
            Err(Refused(code, why)) => {
                tracing::debug!(%path, code = code.as_u16(), %why, "device request refused");
                status(code)
            }
        }
    }

    /// The device that signed `body` from `address`, within its budget; a body no known
    /// device signed is charged to the address.
    fn signed(
        &self,
        address: Option<std::net::IpAddr>,
        body: &[u8],
    ) -> Result<(Known, Opened), Refused> {
        match self.authenticate(body) {
            Ok((known, opened)) => {
                self.budgets.device(&known.uuid, body.len())?;
                Ok((known, opened))
            }
            Err(refused) => {
                self.budgets.stranger(address)?;
                Err(refused)
            }
        }
    }

    /// The device that signed `body`, verified.
    fn authenticate(&self, body: &[u8]) -> Result<(Known, Opened), Refused> {
        let opened = Opened::decode(body)
            .map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let known = self
            .fleet
            .by_hash(&opened.sender_hash)
            .ok_or_else(|| Refused::new(StatusCode::UNAUTHORIZED, "unknown device certificate"))?;
        opened
            .verify(&known.public_key)
            .map_err(|e| Refused::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
        Ok((known, opened))
    }

    pub(crate) fn active(&self, known: &Known) -> Result<std::sync::Arc<Device>, Refused> {
        let device = self
            .fleet
            .device(known)
            .ok_or_else(|| Refused::new(StatusCode::UNAUTHORIZED, "the Device is gone"))?;
        if device
            .annotations()
            .get(annotations::ACTIVATE)
            .map(String::as_str)
            == Some("false")
        {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "the Device is not activated",
            ));
        }
        Ok(device)
    }

    pub(crate) fn seal(&self, message: &impl Message) -> Bytes {
        self.certs.signer.seal(message.encode_to_vec()).into()
    }

    /// A call of a device on its own UUID's endpoints: `config`, `attest`, or an upload.
    async fn device_call(
        &self,
        known: &Known,
        opened: Opened,
        uuid: &str,
        action: &[&str],
    ) -> Answer {
        if known.uuid != uuid {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "a device may only call its own UUID's endpoints",
            ));
        }
        let payload = Bytes::from(opened.payload);
        match action {
            ["config"] => self.config(known, &payload),
            ["attest"] => self.attest(known, &payload).await,
            _ => self.upload(known, uuid, action, payload).await,
        }
    }
}
