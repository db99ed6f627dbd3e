//! The one list of EVE kinds: [`for_each_kind!`](crate::for_each_kind) names every kind's type;
//! [`KINDS`], the CustomResourceDefinitions and the admission table of `eve-controllers` are
//! made from it.

use std::borrow::Cow;
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResourceExt, Resource};

/// Calls the macro `$callback` with the type of every EVE kind, comma-separated, in the order a
/// manifest would create them. The one place a kind is listed.
#[macro_export]
macro_rules! for_each_kind {
    ($callback:ident) => {
        $callback! {
            $crate::OnboardCertificate,
            $crate::OnboardCertificateAuthority,
            $crate::DeviceCertificateAuthority,
            $crate::Device,
            $crate::NetworkConfig,
            $crate::DeviceNetwork,
            $crate::Image,
            $crate::Application,
            $crate::ApplicationDeployment,
            $crate::ApplicationDaemonSet,
            $crate::DeviceConfig,
        }
    };
}

/// A kind of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// `Device`.
    pub kind: &'static str,
    /// `devices`.
    pub plural: &'static str,
}

impl Kind {
    /// The kind and plural of `K`, as its `kube::Resource` names them.
    pub fn of<K: Resource<DynamicType = ()>>() -> Kind {
        Kind {
            kind: leak(K::kind(&())),
            plural: leak(K::plural(&())),
        }
    }
}

/// A name of a kind as `&'static str` (kube-derive's are borrowed; an owned one is kept).
fn leak(name: Cow<'static, str>) -> &'static str {
    match name {
        Cow::Borrowed(name) => name,
        Cow::Owned(name) => name.leak(),
    }
}

macro_rules! kinds {
    ($($kind:ty),* $(,)?) => {
        vec![$(Kind::of::<$kind>()),*]
    };
}

/// Every kind of the model, in the order a manifest would create them.
pub static KINDS: LazyLock<Vec<Kind>> = LazyLock::new(|| crate::for_each_kind!(kinds));

macro_rules! definitions {
    ($($kind:ty),* $(,)?) => {
        vec![$(<$kind as CustomResourceExt>::crd()),*]
    };
}

/// The CustomResourceDefinition of every kind, in the order of [`KINDS`], as kube-derive makes
/// them.
pub(crate) fn definitions() -> Vec<CustomResourceDefinition> {
    crate::for_each_kind!(definitions)
}
