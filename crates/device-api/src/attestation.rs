//! Attestation: certificates, nonces, quotes answered with an integrity token and the escrowed
//! keys, and the keys a device escrows, kept in a Secret per device.

use eve_api::Message;
use eve_api::attest::{
    AttestStorageKeysResp, AttestStorageKeysResponseCode, AttestVolumeKey, ZAttestNonceResp,
    ZAttestQuoteResp, ZAttestReq, ZAttestReqType, ZAttestRespType, ZAttestResponse,
    ZAttestResponseCode,
};
use http::StatusCode;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

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
                response.resp_type = ZAttestRespType::AttestRespCert as i32;
            }
            Ok(ZAttestReqType::AttestReqNonce) => {
                let nonce = self.integrity.nonce(&known.uuid, ingest::now_millis());
                response.resp_type = ZAttestRespType::AttestRespNonce as i32;
                response.nonce = Some(ZAttestNonceResp { nonce });
            }
            Ok(ZAttestReqType::AttestReqQuote) => {
                // A deactivated device gets nothing, keys least of all.
                self.active(known)?;
                response.resp_type = ZAttestRespType::AttestRespQuoteResp as i32;
                // The quote must answer a nonce issued to this device, once. (The TPM's
                // signature and PCRs are not verified yet; a device without a TPM sends none.)
                let attest_data = request.quote.map(|q| q.attest_data).unwrap_or_default();
                if let Err(why) =
                    self.integrity
                        .answer_quote(&known.uuid, &attest_data, ingest::now_millis())
                {
                    tracing::info!(uuid = %known.uuid, %why, "a quote that answers no nonce");
                    response.quote_resp = Some(ZAttestQuoteResp {
                        response: ZAttestResponseCode::NonceMismatch as i32,
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
