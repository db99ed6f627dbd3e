//! The Events of the device API, for people looking at Devices (`kubectl describe device`,
//! `kubectl events --for device/NAME`): a device onboarded (and under which policy), a
//! registration refused (and why), a configuration delivered (its hash, only when it differs
//! from the one last delivered to the device). Recording only queues: the events are published
//! off the request path by [`eve_controllers::events::Events`], paced and bounded there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use eve_controllers::events::{Events, Record, reference};
use eve_model::Device;

use crate::report::digest;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use tokio::sync::watch;

/// The device API's name on its events.
pub const CONTROLLER: &str = "eve.lfedge.org/device-api";
/// At most this many refusals of devices no Device or policy names are recorded per
/// [`STRANGERS_PER`] (anyone can make onboarding certificates and serials).
const STRANGERS: u32 = 10;
/// The period of [`STRANGERS`].
const STRANGERS_PER: Duration = Duration::from_secs(60);

/// How a device was admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Its Device holds its device certificate (provisioned in advance, or registered before).
    DeviceCertificate,
    /// Its Device names its onboarding certificate and serial number.
    WaitingDevice,
    /// Its Device names its onboarding certificate only (no serial).
    WaitingOnboardOnly,
    /// An OnboardCertificate object (its name) holds its onboarding certificate.
    OnboardCertificate(String),
    /// An OnboardCertificateAuthority object (its name) signed its onboarding certificate.
    OnboardAuthority(String),
    /// A DeviceCertificateAuthority object (its name) signed its device certificate.
    DeviceAuthority(String),
    /// Open registration (`--open-registration`).
    Open,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::DeviceCertificate => f.write_str("its device certificate, held by the Device"),
            Policy::WaitingDevice => {
                f.write_str("its onboarding certificate and serial number, named by the Device")
            }
            Policy::WaitingOnboardOnly => {
                f.write_str("its onboarding certificate, named by the Device (without a serial)")
            }
            Policy::OnboardCertificate(name) => write!(f, "OnboardCertificate {name}"),
            Policy::OnboardAuthority(name) => write!(f, "OnboardCertificateAuthority {name}"),
            Policy::DeviceAuthority(name) => write!(f, "DeviceCertificateAuthority {name}"),
            Policy::Open => f.write_str("open registration"),
        }
    }
}

/// The device API's events, and the configuration hash each device was last given.
pub struct DeviceEvents {
    events: Events,
    /// A digest of the configuration hash each device (by a digest of its Device's UID) was
    /// last given; forgotten with the Device.
    delivered: Mutex<HashMap<u64, u64>>,
    /// The start of the current period of refusals of strangers, and how many were recorded.
    strangers: Mutex<(Instant, u32)>,
}

impl DeviceEvents {
    /// Starts publishing through `client` until `stop`.
    pub fn start(client: Client, stop: watch::Receiver<bool>) -> DeviceEvents {
        DeviceEvents {
            events: Events::start(client, CONTROLLER, stop),
            delivered: Mutex::new(HashMap::new()),
            strangers: Mutex::new((Instant::now(), 0)),
        }
    }

    /// `device` registered, admitted by `policy`.
    pub fn onboarded(&self, device: &Device, policy: &Policy) {
        self.events.record(Record::normal(
            reference(device),
            "Onboarded",
            "Register",
            format!("the device registered, admitted by {policy}"),
        ));
    }

    /// A registration was refused: of `device`, or of the Device `name` that would have been
    /// made in `namespace` (`default` when no policy names one; at most ten of those
    /// a minute).
    pub fn refused(&self, device: Refused<'_>, why: &str) {
        let regarding = match device {
            Refused::Device(device) => reference(device),
            Refused::Named { namespace, name } => {
                let mut strangers = self.strangers.lock().expect("not poisoned");
                if strangers.0.elapsed() >= STRANGERS_PER {
                    *strangers = (Instant::now(), 0);
                }
                if strangers.1 >= STRANGERS {
                    return;
                }
                strangers.1 += 1;
                ObjectReference {
                    api_version: Some("eve.lfedge.org/v1beta1".into()),
                    kind: Some("Device".into()),
                    namespace: Some(namespace.into()),
                    name: Some(name.into()),
                    ..Default::default()
                }
            }
        };
        self.events.record(Record::warning(
            regarding,
            "RegistrationRefused",
            "Register",
            format!("a registration was refused: {why}"),
        ));
    }

    /// `device` attested: let through or not, with the outcome's `note`.
    pub fn attested(&self, device: &Device, accepted: bool, failed: bool, note: String) {
        let record = if accepted && !failed {
            Record::normal(reference(device), "Attested", "Attest", note)
        } else if accepted {
            Record::warning(reference(device), "AttestationFailed", "Attest", note)
        } else {
            Record::warning(reference(device), "AttestationRefused", "Attest", note)
        };
        self.events.record(record);
    }

    /// The ECDH certificate `device` uploaded is not used: `why`.
    pub fn ecdh_refused(&self, device: &Device, why: &str) {
        self.events.record(Record::warning(
            reference(device),
            "ECDHCertificateRefused",
            "Attest",
            format!("the device's ECDH certificate is not used ({why}): credentials go to it in the clear fields"),
        ));
    }

    /// Forgets the Device of `uid` (deleted).
    pub fn forget(&self, uid: &str) {
        self.delivered
            .lock()
            .expect("not poisoned")
            .remove(&digest(uid));
    }

    /// `device` was given the configuration of `hash`: recorded when the hash is not the one it
    /// was given last, with a Warning for what the objects asked that it could not carry.
    pub fn delivered(&self, device: &Device, hash: &str, problems: &[String]) {
        let uid = digest(device.metadata.uid.as_deref().unwrap_or_default());
        let given = digest(hash);
        let before = self
            .delivered
            .lock()
            .expect("not poisoned")
            .insert(uid, given);
        if before == Some(given) {
            return;
        }
        self.events.record(Record::normal(
            reference(device),
            "ConfigDelivered",
            "DeliverConfig",
            format!("the device fetched its configuration {hash}"),
        ));
        if !problems.is_empty() {
            self.events.record(Record::warning(
                reference(device),
                "ConfigIncomplete",
                "DeliverConfig",
                problems.join("; "),
            ));
        }
    }
}

/// Whose registration was refused.
pub enum Refused<'a> {
    /// A Device's.
    Device(&'a Device),
    /// The one of the Device that would have been made.
    Named {
        /// Its namespace.
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
}
