//! Attestation: certificates (kept, and what they say recorded on the Device), nonces, quotes
//! judged under the attestation policy ([`judge`]) and answered with an integrity token and the
//! escrowed keys when let through, and the keys a device escrows, kept in a Secret per device.

pub mod certs;
pub mod judge;

use eve_api::Message;
use eve_api::attest::{
    AttestStorageKeysResp, AttestStorageKeysResponseCode, AttestVolumeKey, ZAttestNonceResp,
    ZAttestQuoteResp, ZAttestReq, ZAttestReqType, ZAttestRespType, ZAttestResponse,
    ZAttestResponseCode,
};
use eve_model::{Device, DeviceAttestation, annotations};
use http::StatusCode;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use self::certs::Uploaded;
use self::judge::{Outcome, Policy};

use crate::DeviceApi;
use crate::fleet::Known;
use crate::routes::{Answer, Refused, answer};
use crate::telemetry::ingest;

/// Attestation state of one device: the escrowed keys (kept in a Secret; nonces and tokens
/// are `integrity`'s).
#[derive(Default)]
pub(crate) struct Attestation {
    /// The escrowed keys, once read or written (`None`: look in the Secret).
    keys: Option<Vec<AttestVolumeKey>>,
    /// What the certificates it uploaded say (`None`: look in the telemetry store).
    uploaded: Option<Uploaded>,
}

/// The type of the Secrets that keep devices' escrowed keys.
pub const ESCROW_TYPE: &str = "eve.lfedge.org/key-escrow";
/// Their label naming the Device.
pub const ESCROW_LABEL: &str = "eve.lfedge.org/device";
/// Their data key.
const ESCROW_KEY: &str = "keys";

impl DeviceApi {
    pub(crate) async fn attest(&self, known: &Known, payload: &[u8]) -> Answer {
        let request = ZAttestReq::decode(payload)
            .map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let mut response = ZAttestResponse::default();
        match ZAttestReqType::try_from(request.req_type) {
            Ok(ZAttestReqType::AttestReqCert) => {
                let record = ingest::certs_record(&request.certs, ingest::now_millis());
                self.telemetry
                    .keep(&known.uuid, ::telemetry::Kind::Certs, vec![record])
                    .await?;
                self.learn(known, certs::read(&request.certs, &known.public_key))
                    .await;
                response.resp_type = ZAttestRespType::AttestRespCert as i32;
            }
            Ok(ZAttestReqType::AttestReqNonce) => {
                let nonce = self.integrity.nonce(&known.uuid, ingest::now_millis());
                response.resp_type = ZAttestRespType::AttestRespNonce as i32;
                response.nonce = Some(ZAttestNonceResp { nonce });
            }
            Ok(ZAttestReqType::AttestReqQuote) => {
                // A deactivated device gets nothing, keys least of all.
                let device = self.active(known)?;
                response.resp_type = ZAttestRespType::AttestRespQuoteResp as i32;
                let quote = request.quote.unwrap_or_default();
                let (outcome, policy) = self.judge(known, &device, &quote).await;
                let accepted = policy.admits(&outcome);
                self.record_attestation(&device, &outcome, policy, accepted)
                    .await;
                if !accepted {
                    tracing::info!(uuid = %known.uuid, outcome = outcome.name(), "attestation refused");
                    response.quote_resp = Some(ZAttestQuoteResp {
                        response: judge::refusal_code(&outcome) as i32,
                        ..ZAttestQuoteResp::default()
                    });
                    return Ok(answer(StatusCode::CREATED, self.seal(&response)));
                }
                let keys = self.escrowed(known).await?;
                response.quote_resp = Some(ZAttestQuoteResp {
                    response: ZAttestResponseCode::Success as i32,
                    integrity_token: self.integrity.token(&known.uuid, ingest::now_millis()),
                    keys,
                });
            }
            Ok(ZAttestReqType::StoreKeys) => {
                self.active(known)?;
                let keys = request.storage_keys.unwrap_or_default();
                let held = self.integrity.check_token(
                    &known.uuid,
                    &keys.integrity_token,
                    ingest::now_millis(),
                );
                let code = if held.is_ok() {
                    self.escrow(known, keys.keys).await?;
                    AttestStorageKeysResponseCode::Success
                } else {
                    AttestStorageKeysResponseCode::ItokenMismatch
                };
                response.resp_type = ZAttestRespType::StoreKeys as i32;
                response.storage_keys_resp = Some(AttestStorageKeysResp {
                    response: code as i32,
                });
            }
            _ => {
                return Err(Refused::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown attestation request type",
                ));
            }
        }
        Ok(answer(StatusCode::CREATED, self.seal(&response)))
    }

    /// Keeps what a device's uploaded certificates say, and records its ECDH certificate on its
    /// Device (credentials are then encrypted for it).
    async fn learn(&self, known: &Known, uploaded: Uploaded) {
        let device = self.fleet.device(known);
        if let (Some(device), Some(why)) = (&device, &uploaded.ecdh_refused) {
            self.events.ecdh_refused(device, why);
        }
        let recorded = device
            .as_ref()
            .and_then(|d| d.status.as_ref()?.ecdh_certificate.clone());
        if let Some(device) = &device
            && uploaded.ecdh.is_some()
            && uploaded.ecdh != recorded
        {
            let patch = json!({"status": {"ecdhCertificate": uploaded.ecdh}});
            self.patch_status(device, &patch).await;
        }
        self.attestations
            .lock()
            .expect("not poisoned")
            .entry(known.uuid.clone())
            .or_default()
            .uploaded = Some(uploaded);
    }

    /// What a device's uploaded certificates say: from memory, else from the telemetry store.
    async fn uploaded(&self, known: &Known) -> Uploaded {
        if let Some(uploaded) = self
            .attestations
            .lock()
            .expect("not poisoned")
            .get(&known.uuid)
            .and_then(|a| a.uploaded.clone())
        {
            return uploaded;
        }
        let stream = ::telemetry::StreamKey::new(&known.uuid, ::telemetry::Kind::Certs);
        let range = ::telemetry::Range {
            limit: 1,
            tail: true,
            ..::telemetry::Range::default()
        };
        let certs: Vec<eve_api::certs::ZCert> = match self
            .telemetry
            .store()
            .read(&stream, &range)
            .await
        {
            Ok(records) => records
                .last()
                .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                .and_then(|body| serde_json::from_value(body["certs"].clone()).ok())
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(uuid = %known.uuid, error = %e, "cannot read the device's uploaded certificates");
                Vec::new()
            }
        };
        let uploaded = certs::read(&certs, &known.public_key);
        self.attestations
            .lock()
            .expect("not poisoned")
            .entry(known.uuid.clone())
            .or_default()
            .uploaded = Some(uploaded.clone());
        uploaded
    }

    /// The policy of `device` (its annotation, else its namespace's, else `record`) and the
    /// outcome of `quote`.
    async fn judge(
        &self,
        known: &Known,
        device: &Device,
        quote: &eve_api::attest::ZAttestQuote,
    ) -> (Outcome, Policy) {
        let namespace = device.namespace().unwrap_or_default();
        let mut notes = Vec::new();
        let mut policy_of = |value: &str, whose: &str| {
            Policy::parse(value).unwrap_or_else(|| {
                notes.push(format!(
                    "{whose} annotation {}: {value:?} is none of record, enforce, require-tpm: enforced",
                    annotations::ATTESTATION
                ));
                Policy::Enforce
            })
        };
        let policy = match device.annotations().get(annotations::ATTESTATION) {
            Some(value) => policy_of(value, "the Device's"),
            None => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                match api.get_opt(&namespace).await {
                    Ok(found) => match found
                        .as_ref()
                        .and_then(|n| n.annotations().get(annotations::ATTESTATION))
                    {
                        Some(value) => policy_of(value, "the namespace's"),
                        None => Policy::Record,
                    },
                    Err(e) => {
                        // Not knowing the policy, judge strictly.
                        notes.push(format!(
                            "the namespace's policy cannot be read ({e}): enforced"
                        ));
                        Policy::Enforce
                    }
                }
            }
        };
        let nonce = self
            .integrity
            .answer_quote(&known.uuid, &quote.attest_data, ingest::now_millis())
            .map(|()| crate::integrity::extra_data(&quote.attest_data).unwrap_or_default())
            .map_err(|e| e.to_string());
        let uploaded = self.uploaded(known).await;
        let templates = if crate::quote::is_empty(quote) {
            Vec::new()
        } else {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &namespace);
            match api.get_opt(judge::TEMPLATES).await {
                Ok(found) => {
                    let (read, broken) =
                        judge::templates(&found.and_then(|c| c.data).unwrap_or_default());
                    notes.extend(broken);
                    read
                }
                Err(e) => {
                    notes.push(format!("the PCR templates cannot be read ({e})"));
                    Vec::new()
                }
            }
        };
        let key = match (&uploaded.attestation_key, &uploaded.attestation_key_refused) {
            (Some(key), _) => Ok(key.as_slice()),
            (None, Some(why)) => Err(why.as_str()),
            (None, None) => Err("the device has not uploaded it (it does on its next start)"),
        };
        let mut outcome = judge::judge(quote, nonce, key, uploaded.tpm, &templates);
        if !notes.is_empty() {
            match &mut outcome {
                Outcome::Failed { message, .. } => {
                    message.push_str(&format!("; {}", notes.join("; ")))
                }
                Outcome::Verified { mismatch, .. } => {
                    let text = mismatch.get_or_insert_with(String::new);
                    if !text.is_empty() {
                        text.push_str("; ");
                    }
                    text.push_str(&notes.join("; "));
                }
                Outcome::NoTpm => {}
            }
        }
        (outcome, policy)
    }

    /// Writes `outcome` to the Device's `status.attestation`, with an Event.
    async fn record_attestation(
        &self,
        device: &Device,
        outcome: &Outcome,
        policy: Policy,
        accepted: bool,
    ) {
        let mut record = DeviceAttestation {
            outcome: outcome.name().into(),
            accepted,
            policy: policy.name().into(),
            time: Some(Time(jiff::Timestamp::now())),
            ..DeviceAttestation::default()
        };
        match outcome {
            Outcome::Verified {
                verified,
                template,
                mismatch,
            } => {
                record.template = template.clone();
                record.message = mismatch.clone();
                record.eve_version = verified.eve_version.clone();
                record.firmware_version = verified.firmware_version.clone();
                record.pcrs = verified
                    .pcrs
                    .iter()
                    .map(|(i, v)| (i.to_string(), crate::hex::encode(v)))
                    .collect();
            }
            Outcome::NoTpm => {}
            Outcome::Failed { message, .. } => record.message = Some(message.clone()),
        }
        let note = format!(
            "{} under policy {}: {}{}",
            record.outcome,
            record.policy,
            if accepted { "let through" } else { "refused" },
            record
                .message
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        let failed = !matches!(
            outcome,
            Outcome::Verified {
                template: Some(_),
                ..
            } | Outcome::NoTpm
        );
        self.events.attested(device, accepted, failed, note);
        // The whole record replaces the last one (null clears what it lacks).
        let mut value = serde_json::to_value(&record).unwrap_or_default();
        for field in [
            "message",
            "template",
            "eveVersion",
            "firmwareVersion",
            "pcrs",
        ] {
            value
                .as_object_mut()
                .map(|o| o.entry(field).or_insert(serde_json::Value::Null));
        }
        self.patch_status(device, &json!({"status": {"attestation": value}}))
            .await;
    }

    /// A merge patch of `device`'s status; failures are logged (the device is answered
    /// anyway).
    async fn patch_status(&self, device: &Device, patch: &serde_json::Value) {
        let api: Api<Device> =
            Api::namespaced(self.client.clone(), &device.namespace().unwrap_or_default());
        if let Err(e) = api
            .patch_status(
                &device.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            tracing::warn!(device = %device.name_any(), error = %e, "cannot record attestation on the Device");
        }
    }

    /// The Secret that keeps a device's escrowed keys: in its namespace, named by its UUID.
    fn escrow_secret(&self, known: &Known) -> (Api<Secret>, String) {
        let namespace = known.reference.namespace.clone().unwrap_or_default();
        (
            Api::namespaced(self.client.clone(), &namespace),
            format!("eve-escrow-{}", known.uuid),
        )
    }

    /// Keeps the keys a device escrowed, in memory and in a Secret (so they survive restarts
    /// and every replica has them). The keys are encrypted by the device.
    async fn escrow(&self, known: &Known, keys: Vec<AttestVolumeKey>) -> Result<(), Refused> {
        let (api, name) = self.escrow_secret(known);
        let encoded = eve_api::attest::AttestStorageKeys {
            integrity_token: Vec::new(),
            keys: keys.clone(),
        }
        .encode_to_vec();
        let mut secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(ESCROW_LABEL.to_string(), known.reference.name.clone())].into()),
                ..Default::default()
            },
            type_: Some(ESCROW_TYPE.into()),
            data: Some([(ESCROW_KEY.to_string(), k8s_openapi::ByteString(encoded))].into()),
            ..Default::default()
        };
        let unavailable = |e: kube::Error| {
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot keep the escrowed keys: {e}"),
            )
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let current = api.get(&name).await.map_err(unavailable)?;
                secret.metadata.resource_version = current.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &secret)
                    .await
                    .map_err(unavailable)?;
            }
            Err(e) => return Err(unavailable(e)),
        }
        self.attestations
            .lock()
            .expect("not poisoned")
            .entry(known.uuid.clone())
            .or_default()
            .keys = Some(keys);
        Ok(())
    }

    /// The keys a device escrowed: from memory, else from its Secret.
    async fn escrowed(&self, known: &Known) -> Result<Vec<AttestVolumeKey>, Refused> {
        if let Some(keys) = self
            .attestations
            .lock()
            .expect("not poisoned")
            .get(&known.uuid)
            .and_then(|a| a.keys.clone())
        {
            return Ok(keys);
        }
        let (api, name) = self.escrow_secret(known);
        let secret = api.get_opt(&name).await.map_err(|e| {
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the escrowed keys: {e}"),
            )
        })?;
        let keys = secret
            .and_then(|s| s.data?.remove(ESCROW_KEY))
            .and_then(|b| eve_api::attest::AttestStorageKeys::decode(b.0.as_slice()).ok())
            .map(|k| k.keys)
            .unwrap_or_default();
        self.attestations
            .lock()
            .expect("not poisoned")
            .entry(known.uuid.clone())
            .or_default()
            .keys = Some(keys.clone());
        Ok(keys)
    }
}
