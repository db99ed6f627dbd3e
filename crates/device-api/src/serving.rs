//! Config serving: `config` answers with the configuration kept in `configs` (304 when the
//! device has its hash), composed anew when none is kept, or a paused DeviceConfig's as written.

use std::sync::Arc;

use eve_api::Message;
use eve_api::config::{ConfigRequest, ConfigResponse};
use eve_model::Device;
use http::StatusCode;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::configs::{Served, Source};
use crate::fleet::Known;
use crate::routes::{Answer, Refused, answer, status};
use crate::telemetry::ingest;
use crate::{DeviceApi, compose, configs};

impl DeviceApi {
    pub(crate) fn config(&self, known: &Known, payload: &[u8]) -> Answer {
        let device = self.active(known)?;
        let request = ConfigRequest::decode(payload)
            .map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        if let Err(why) =
            self.integrity
                .check_token(&known.uuid, &request.integrity_token, ingest::now_millis())
        {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                format!("no valid integrity token ({why}): attest again"),
            ));
        }
        self.reporter.polled(&device);
        let served = self.served(&device, &known.uuid);
        if served.hash == request.config_hash {
            return Ok(status(StatusCode::NOT_MODIFIED));
        }
        self.events
            .delivered(&device, &served.hash, &served.problems);
        Ok(answer(StatusCode::OK, served.sealed.clone()))
    }

    /// The configuration `device` gets: the one kept, or one composed now (and kept).
    pub fn served(&self, device: &Device, uuid: &str) -> Arc<Served> {
        let key = eve_controllers::informers::key(device);
        let tracker = &self.fleet.configs;
        if let Some(served) = tracker.kept(&key) {
            return served;
        }
        let at = tracker.now();
        let (served, reads) = self.serve_now(device, uuid);
        let served = Arc::new(served);
        tracker.keep(key, at, served.clone(), reads);
        served
    }

    /// The configuration `device` is to be served now, and what composing it read of the
    /// shared objects (nothing for a paused DeviceConfig served as written).
    fn serve_now(&self, device: &Device, uuid: &str) -> (Served, Box<[u64]>) {
        let mut reads: Box<[u64]> = Box::new([]);
        let mut composed = || {
            let recording = compose::Recording::new(&self.fleet);
            let composed = compose::compose(
                &recording,
                &self.certs.sealer,
                device,
                uuid,
                &self.certs.confighash,
            );
            reads = recording.reads();
            composed
        };
        let written = self.fleet.device_configs.get(
            &ObjectRef::new(&device.name_any()).within(&device.namespace().unwrap_or_default()),
        );
        let (config, hash, source, problems) = match written.filter(|c| c.spec.is_paused()) {
            Some(c) => {
                match configs::from_json(c.spec.config.as_ref(), uuid, &self.certs.confighash) {
                    Ok((config, hash)) => (config, hash, Source::Paused, Vec::new()),
                    Err(why) => {
                        let c = composed();
                        (c.config, c.hash, Source::Invalid(why), c.problems)
                    }
                }
            }
            None => {
                let c = composed();
                (c.config, c.hash, Source::Composed, c.problems)
            }
        };
        let sealed = self.seal(&ConfigResponse {
            config: Some(config),
            config_hash: hash.clone(),
        });
        let served = Served {
            hash,
            sealed,
            source,
            problems,
        };
        (served, reads)
    }
}
