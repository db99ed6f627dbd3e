//! Uploads: `info` (applied to Device and Application status, then kept), `metrics` (the
//! heartbeat and usage figures, then kept), `hardwarehealth`, `flowlog`, and the `newlogs`
//! files of the device and its applications, kept as telemetry records.

use bytes::Bytes;
use eve_api::Message;
use http::StatusCode;

use crate::fleet::Known;
use crate::routes::{Answer, Refused, status};
use crate::telemetry::ingest;
use crate::{DeviceApi, metrics, usage};

impl DeviceApi {
    /// An upload to `action` of the device `known`, whose UUID is `uuid`.
    pub(crate) async fn upload(
        &self,
        known: &Known,
        uuid: &str,
        action: &[&str],
        payload: Bytes,
    ) -> Answer {
        let received = ingest::now_millis();
        let kind = match action {
            ["info"] => Some(::telemetry::Kind::Info),
            ["metrics"] => Some(::telemetry::Kind::Metrics),
            ["flowlog"] => Some(::telemetry::Kind::FlowLog),
            _ => None,
        };
        let unreadable = |e: eve_api::DecodeError| {
            if let Some(kind) = kind {
                self.metrics.refused(kind, metrics::reason::UNREADABLE);
            }
            Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        };
        let kept = |result: Result<(), Refused>| result.map(|()| status(StatusCode::CREATED));
        match action {
            ["info"] => {
                let info = eve_api::info::ZInfoMsg::decode(payload.as_ref()).map_err(unreadable)?;
                let record = ingest::info_record(&info, received);
                if let Some(device) = self.fleet.device(known) {
                    self.reporter.info(&self.fleet, &device, info).await?;
                }
                kept(
                    self.telemetry
                        .keep(uuid, ::telemetry::Kind::Info, vec![record])
                        .await,
                )
            }
            ["metrics"] => {
                let metrics =
                    eve_api::telemetry::ZMetricMsg::decode(payload.as_ref()).map_err(unreadable)?;
                if let Some(device) = self.fleet.device(known) {
                    self.reporter.seen(&device);
                }
                let record = ingest::raw_record(metrics.at_time_stamp.as_ref(), &payload, received);
                self.telemetry
                    .keep(uuid, ::telemetry::Kind::Metrics, vec![record])
                    .await?;
                if let Some(usage) = usage::Usage::of(&metrics) {
                    self.usages.record(uuid, usage);
                }
                Ok(status(StatusCode::CREATED))
            }
            // Accepted, not kept: the telemetry store has no kind for it yet.
            ["hardwarehealth"] => Ok(status(StatusCode::CREATED)),
            ["flowlog"] => {
                eve_api::telemetry::FlowMessage::decode(payload.as_ref()).map_err(unreadable)?;
                let record = ingest::raw_record(None, &payload, received);
                kept(
                    self.telemetry
                        .keep(uuid, ::telemetry::Kind::FlowLog, vec![record])
                        .await,
                )
            }
            ["newlogs"] => self.logs(uuid, None, &payload, received).await,
            ["apps", "instanceid", app, "newlogs"] => {
                self.logs(uuid, Some(app), &payload, received).await
            }
            _ => Err(Refused::new(StatusCode::NOT_FOUND, "no such endpoint")),
        }
    }

    /// A `newlogs` upload: read (bounded), each entry a record, kept.
    pub(crate) async fn logs(
        &self,
        uuid: &str,
        app: Option<&str>,
        payload: &[u8],
        received: u64,
    ) -> Answer {
        let kind = match app {
            Some(_) => ::telemetry::Kind::AppLog,
            None => ::telemetry::Kind::Log,
        };
        let bundle = eve_api::newlogs::parse(payload).map_err(|e| {
            let (code, reason) = match e {
                eve_api::newlogs::LogError::TooLarge => {
                    (StatusCode::PAYLOAD_TOO_LARGE, metrics::reason::TOO_LARGE)
                }
                eve_api::newlogs::LogError::NotGzip(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    metrics::reason::UNREADABLE,
                ),
            };
            self.metrics.refused(kind, reason);
            Refused::new(code, e.to_string())
        })?;
        let records = bundle
            .entries
            .iter()
            .map(|entry| ingest::log_record(entry, app, received))
            .collect();
        self.telemetry.keep(uuid, kind, records).await?;
        Ok(status(StatusCode::CREATED))
    }
}
