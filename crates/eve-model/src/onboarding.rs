//! The onboarding policy kinds: OnboardCertificate, OnboardCertificateAuthority and
//! DeviceCertificateAuthority. Each holds one certificate.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one certificate of an onboarding policy object.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "OnboardCertificate",
    namespaced,
    shortname = "obc",
    category = "eve",
    doc = "An onboarding certificate that is allowed to register devices: a device presenting it on `register` may onboard (and, if no Device claims it, self-register into this namespace). EVE API: the `register` request's onboarding certificate.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
pub struct CertificateSpec {
    /// The certificate: a PEM-encoded X.509 certificate, base64-encoded (`base64 -w0 cert.pem`).
    pub certificate: String,
}

/// An onboarding CA: a device whose onboarding certificate this CA signed may register.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "OnboardCertificateAuthority",
    namespaced,
    shortname = "obca",
    category = "eve",
    doc = "A certificate authority for onboarding certificates: a device presenting an onboarding certificate signed by it may register (self-registering into this namespace if no Device claims it). EVE API: checked on `register`.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
pub struct OnboardCaSpec {
    /// The CA certificate: a PEM-encoded X.509 CA certificate (basic constraints `CA:TRUE`),
    /// base64-encoded.
    pub certificate: String,
}

/// A device CA: a device whose device certificate this CA signed may register.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "DeviceCertificateAuthority",
    namespaced,
    shortname = "dca",
    category = "eve",
    doc = "A certificate authority for device certificates: a device presenting a device certificate signed by it may register (self-registering into this namespace if no Device claims it). EVE API: checked on `register` and on every request's client certificate.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
pub struct DeviceCaSpec {
    /// The CA certificate: a PEM-encoded X.509 CA certificate (basic constraints `CA:TRUE`),
    /// base64-encoded.
    pub certificate: String,
}
