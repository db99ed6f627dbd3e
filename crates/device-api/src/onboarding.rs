//! Onboarding: `register` (a device admitted by a Device waiting for it or by an onboarding
//! policy, its certificate written or its Device made) and `uuid`.

use base64::Engine;
use eve_api::Message;
use eve_api::envelope::{Opened, pem_to_der, public_key, sha256};
use eve_api::register::ZRegisterMsg;
use eve_api::uuid::UuidResponse;
use eve_model::{Device, annotations};
use http::StatusCode;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::DeviceApi;
use crate::events::{Policy, Refused as Whose};
use crate::fleet::{Known, certificate_der};
use crate::routes::{Answer, Refused, answer, status};

/// The registration rules of `ZRegisterMsg` (upstream's protoc-gen-validate rules).
fn check_registration(message: &ZRegisterMsg) -> Result<(), String> {
    if !(100..=10240).contains(&message.pem_cert.len()) {
        return Err(format!(
            "pemCert is {} bytes; a certificate is 100 to 10240",
            message.pem_cert.len()
        ));
    }
    if message.serial.len() > 256 || message.soft_serial.len() > 256 {
        return Err("serial and softSerial are at most 256 characters".into());
    }
    if !message
        .soft_serial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("softSerial may only hold letters, digits, '_' and '-'".into());
    }
    Ok(())
}

/// A Device name from a serial: a DNS-1123 subdomain.
fn device_name(serial: &str, der: &[u8]) -> String {
    let mut name: String = serial
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    name.truncate(200);
    if name.is_empty() {
        let hash = sha256(der);
        name = format!(
            "device-{}",
            hash[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    name
}

/// Whether `certificate` (DER) is signed by the CA in `ca_base64_pem`.
fn signed_by(certificate: &[u8], ca_base64_pem: &str) -> bool {
    let Some(ca) = certificate_der(ca_base64_pem) else {
        return false;
    };
    let (Ok((_, ca)), Ok((_, leaf))) = (
        x509_parser::parse_x509_certificate(&ca),
        x509_parser::parse_x509_certificate(certificate),
    ) else {
        return false;
    };
    leaf.verify_signature(Some(ca.public_key())).is_ok()
}

impl DeviceApi {
    pub(crate) async fn register(&self, body: &[u8]) -> Answer {
        let unprocessable = |e: String| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e);
        let unauthorized = |e: String| Refused::new(StatusCode::UNAUTHORIZED, e);
        let opened = Opened::decode(body).map_err(|e| unprocessable(e.to_string()))?;
        let onboard_pem = opened
            .sender_cert_pem
            .clone()
            .ok_or_else(|| unauthorized("register must carry the onboarding certificate".into()))?;
        let onboard_der = pem_to_der(&onboard_pem).map_err(|e| unauthorized(e.to_string()))?;
        let key = public_key(&onboard_der).map_err(|e| unauthorized(e.to_string()))?;
        if !opened.names(&sha256(&onboard_der)) {
            return Err(unauthorized(
                "senderCertHash does not name senderCert".into(),
            ));
        }
        opened
            .verify(&key)
            .map_err(|e| unauthorized(e.to_string()))?;
        let message = ZRegisterMsg::decode(opened.payload.as_slice())
            .map_err(|e| unprocessable(e.to_string()))?;
        check_registration(&message).map_err(unprocessable)?;
        let device_pem = base64::engine::general_purpose::STANDARD
            .decode(&message.pem_cert)
            .map_err(|e| unprocessable(format!("pemCert is not base64: {e}")))?;
        let device_der = pem_to_der(&device_pem).map_err(|e| unprocessable(e.to_string()))?;
        public_key(&device_der).map_err(|e| unprocessable(e.to_string()))?;
        let serial = if message.serial.is_empty() {
            message.soft_serial.clone()
        } else {
            message.serial.clone()
        };
        let device_b64 = base64::engine::general_purpose::STANDARD.encode(&device_pem);

        // Registered before with this certificate: nothing to do.
        if let Some(known) = self.fleet.by_hash(&sha256(&device_der)) {
            let device = self.active(&known).inspect_err(|refused| {
                if let Some(device) = self.fleet.device(&known) {
                    self.events.refused(Whose::Device(&device), &refused.1);
                }
            })?;
            self.events.onboarded(&device, &Policy::DeviceCertificate);
            return Ok(status(StatusCode::OK));
        }
        // A Device waiting for this (onboarding certificate, serial) pair.
        let onboard_hash = sha256(&onboard_der);
        let waiting = self
            .fleet
            .by_onboard(&onboard_hash, &message.serial)
            .or_else(|| match message.soft_serial.as_str() {
                "" => None,
                soft => self.fleet.by_onboard(&onboard_hash, soft),
            })
            .map(|device| (device, Policy::WaitingDevice));
        // A Device waiting for any device with this onboarding certificate (no serial): unless
        // a policy of another namespace admits the device too, as a policy of two namespaces
        // would not.
        let waiting = match waiting {
            Some(found) => Some(found),
            None => match self.fleet.by_onboard_only(&onboard_hash) {
                Some(device) => {
                    let mine = device.namespace().unwrap_or_default();
                    if let Some((other, _)) = self
                        .admitting(&onboard_der, &device_der)
                        .into_iter()
                        .find(|(namespace, _)| *namespace != mine)
                    {
                        let why = "an onboarding policy of another namespace also admits this device; the Device naming only its onboarding certificate does not claim it";
                        self.events.refused(
                            Whose::Device(&device),
                            &format!("{why} (serial {serial:?}; namespace {other})"),
                        );
                        return Err(Refused::new(StatusCode::FORBIDDEN, why));
                    }
                    Some((device, Policy::WaitingOnboardOnly))
                }
                None => None,
            },
        };
        if let Some((device, policy)) = waiting {
            let refuse = |code, why: &str| {
                self.events.refused(Whose::Device(&device), why);
                Err(Refused::new(code, why))
            };
            if device
                .spec
                .certificate
                .as_deref()
                .is_some_and(|c| !c.is_empty())
            {
                return refuse(
                    StatusCode::CONFLICT,
                    "this onboarding certificate and serial are registered with another device certificate",
                );
            }
            if device
                .annotations()
                .get(annotations::ACTIVATE)
                .map(String::as_str)
                == Some("false")
            {
                return refuse(StatusCode::FORBIDDEN, "the Device is not activated");
            }
            let api: Api<Device> =
                Api::namespaced(self.client.clone(), &device.namespace().unwrap_or_default());
            let patch = serde_json::json!({"spec": {"certificate": device_b64}});
            let updated = api
                .patch(
                    &device.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| Refused::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            self.fleet.learn(&updated);
            self.events.onboarded(&updated, &policy);
            return Ok(status(StatusCode::CREATED));
        }
        // Self-registration under a policy object.
        let name = device_name(&serial, &device_der);
        // Every policy that admits the device; they must all be of one namespace, or a tenant
        // could capture another's devices with a policy that also matches them.
        let admitted = self.admitting(&onboard_der, &device_der);
        let namespaces: std::collections::BTreeSet<&str> =
            admitted.iter().map(|(n, _)| n.as_str()).collect();
        if namespaces.len() > 1 {
            let why = "onboarding policies of more than one namespace admit this device; it is refused until only one does";
            self.events.refused(
                Whose::Named {
                    namespace: "default",
                    name: &name,
                },
                &format!("{why} (serial {serial:?}; namespaces {namespaces:?})"),
            );
            return Err(Refused::new(StatusCode::FORBIDDEN, why));
        }
        let (namespace, policy) = admitted
            .into_iter()
            .next()
            .or_else(|| {
                let namespace = self.options.open_registration.clone()?;
                Some((namespace, Policy::Open))
            })
            .ok_or_else(|| {
                let why = "no Device or onboarding policy admits this device";
                self.events.refused(
                    Whose::Named {
                        namespace: "default",
                        name: &name,
                    },
                    &format!("{why} (serial {serial:?})"),
                );
                Refused::new(StatusCode::FORBIDDEN, why)
            })?;
        let device: Device = serde_json::from_value(serde_json::json!({
            "apiVersion": "eve.lfedge.org/v1beta1",
            "kind": "Device",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "certificate": device_b64,
                "serial": serial,
                "onboard": base64::engine::general_purpose::STANDARD.encode(&onboard_pem),
            },
        }))
        .map_err(|e| unprocessable(e.to_string()))?;
        let api: Api<Device> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &device).await {
            Ok(created) => {
                self.fleet.learn(&created);
                tracing::info!(device = %created.name_any(), %namespace, "device self-registered");
                self.events.onboarded(&created, &policy);
                Ok(status(StatusCode::CREATED))
            }
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 422 => {
                let why = format!("the Device cannot be made: {}", e.message);
                let whose = Whose::Named {
                    namespace: &namespace,
                    name: &name,
                };
                self.events.refused(whose, &why);
                Err(Refused::new(StatusCode::CONFLICT, why))
            }
            Err(e) => Err(Refused::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        }
    }

    /// Every onboarding policy that admits a device with these onboarding and device
    /// certificates (DER), with its namespace.
    fn admitting(&self, onboard_der: &[u8], device_der: &[u8]) -> Vec<(String, Policy)> {
        let mut admitted: Vec<(String, Policy)> = Vec::new();
        for o in self.fleet.onboard_certificates.state().iter() {
            if certificate_der(&o.spec.certificate).as_deref() == Some(onboard_der)
                && let Some(namespace) = o.namespace()
            {
                admitted.push((namespace, Policy::OnboardCertificate(o.name_any())));
            }
        }
        for a in self.fleet.onboard_authorities.state().iter() {
            if signed_by(onboard_der, &a.spec.certificate)
                && let Some(namespace) = a.namespace()
            {
                admitted.push((namespace, Policy::OnboardAuthority(a.name_any())));
            }
        }
        for a in self.fleet.device_authorities.state().iter() {
            if signed_by(device_der, &a.spec.certificate)
                && let Some(namespace) = a.namespace()
            {
                admitted.push((namespace, Policy::DeviceAuthority(a.name_any())));
            }
        }
        admitted
    }

    pub(crate) fn uuid(&self, known: &Known) -> Answer {
        self.active(known)?;
        Ok(answer(
            StatusCode::OK,
            self.seal(&UuidResponse {
                uuid: known.uuid.clone(),
                manufacturer: String::new(),
                product_name: String::new(),
            }),
        ))
    }
}
