//! The admission rules of the EVE kinds (and of the native kinds they use): quantities
//! normalised, certificates checked, references resolved, uniqueness kept, the group and
//! annotations guarded. Served in process by `adamant serve` and as a webhook in cluster mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apimachinery::FieldError;
use eve_model::{GROUP, annotations, certs, quantity};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::Value;

/// Whether a write creates or changes the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A changed object.
    Update,
}

/// What admission knows of a write.
#[derive(Clone, Debug)]
pub struct Review {
    /// Create or update.
    pub operation: Operation,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The plural resource.
    pub resource: String,
    /// The subresource (`status`, `scale`) or empty.
    pub subresource: String,
    /// The kind.
    pub kind: String,
    /// The namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// Whether nothing will be stored (a dry run): admission then leaves no trace, claiming
    /// nothing for the object.
    pub dry_run: bool,
}

/// Why a write is refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// Fields are wrong (422).
    Invalid(Vec<FieldError>),
    /// The write is not allowed (403).
    Forbidden(String),
    /// Admission could not decide (the API was unreachable).
    Unavailable(String),
}

/// How missing references are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum References {
    /// Refused, naming every missing object (the default).
    #[default]
    Refuse,
    /// Accepted with a warning; the controllers report a `ReferencesResolved=False` condition.
    Warn,
}

impl std::str::FromStr for References {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(References::Refuse),
            "warn" => Ok(References::Warn),
            other => Err(format!(
                "unknown reference-check mode {other:?}: use \"refuse\" or \"warn\""
            )),
        }
    }
}

/// A key that must be unique among Devices: the device certificate, or the (serial,
/// onboarding certificate) pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum UniqueKey {
    Certificate(Vec<u8>),
    Serial(String, Vec<u8>),
}

impl UniqueKey {
    fn path(&self) -> &'static str {
        match self {
            UniqueKey::Certificate(_) => "spec.certificate",
            UniqueKey::Serial(..) => "spec.serial",
        }
    }

    fn what(&self) -> &'static str {
        match self {
            UniqueKey::Certificate(_) => "device certificate",
            UniqueKey::Serial(..) => "serial and onboarding certificate",
        }
    }

    fn short(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// The unique keys of a Device's spec.
fn unique_keys(spec: &Value) -> Vec<UniqueKey> {
    let decode = |field: &str| spec[field].as_str().and_then(|c| certs::decode(c).ok());
    let mut keys = Vec::new();
    if let Some(cert) = decode("certificate") {
        keys.push(UniqueKey::Certificate(cert.der));
    }
    if let (Some(serial), Some(onboard)) = (
        spec["serial"].as_str().filter(|s| !s.is_empty()),
        decode("onboard"),
    ) {
        keys.push(UniqueKey::Serial(serial.to_owned(), onboard.der));
    }
    keys
}

fn device_keys(device: &eve_model::Device) -> Vec<UniqueKey> {
    serde_json::to_value(&device.spec)
        .map(|spec| unique_keys(&spec))
        .unwrap_or_default()
}

/// Devices by a short hash of their unique keys, fed by the device watch. Entries are hints:
/// a lookup checks each candidate against the cache and drops those that no longer hold, so a
/// Device changed or deleted while the watch was re-listing leaves nothing wrong behind.
#[derive(Default)]
pub struct DeviceKeys {
    map: Mutex<HashMap<u64, Vec<ObjectRef<eve_model::Device>>>>,
}

impl DeviceKeys {
    /// Records the keys of a Device the watch delivered.
    pub fn observe(&self, device: &eve_model::Device) {
        let reference = ObjectRef::from_obj(device);
        let mut map = self.map.lock().expect("not poisoned");
        for key in device_keys(device) {
            let owners = map.entry(key.short()).or_default();
            if !owners.contains(&reference) {
                owners.push(reference.clone());
            }
        }
    }

    /// The Devices in `store` that hold `key`.
    fn holders(
        &self,
        store: &Store<eve_model::Device>,
        key: &UniqueKey,
    ) -> Vec<ObjectRef<eve_model::Device>> {
        let short = key.short();
        let candidates = self
            .map
            .lock()
            .expect("not poisoned")
            .get(&short)
            .cloned()
            .unwrap_or_default();
        let (holders, stale): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|r| store.get(r).is_some_and(|d| device_keys(&d).contains(key)));
        if !stale.is_empty() {
            let mut map = self.map.lock().expect("not poisoned");
            if let Some(owners) = map.get_mut(&short) {
                owners.retain(|r| !stale.contains(r));
                if owners.is_empty() {
                    map.remove(&short);
                }
            }
        }
        holders
    }
}

/// The device cache admission consults for uniqueness.
#[derive(Clone)]
pub struct DeviceLookup {
    /// The Devices.
    pub store: Store<eve_model::Device>,
    /// Their unique keys.
    pub keys: Arc<DeviceKeys>,
}

/// The admission rules, with what they need to look things up.
pub struct Admission {
    client: Client,
    references: References,
    devices: Option<DeviceLookup>,
    recent: Mutex<HashMap<String, (String, Instant)>>,
}

/// The outcome of admission: warnings, or a refusal.
pub type Verdict = Result<Vec<String>, Refusal>;

const RECENT: Duration = Duration::from_secs(30);

impl Admission {
    /// Rules that look objects up through `client`; `devices` (a reflector's store with an
    /// index) makes the uniqueness checks of Devices cheap.
    pub fn new(client: Client, references: References, devices: Option<DeviceLookup>) -> Admission {
        Admission {
            client,
            references,
            devices,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Changes an object before it is validated: quantities in canonical form. Returns the
    /// refusal for quantities that are not.
    pub fn mutate(&self, review: &Review, object: &mut Value) -> Verdict {
        if review.group != GROUP {
            return Ok(Vec::new());
        }
        let invalid = quantity::normalize(&review.kind, object);
        if invalid.is_empty() {
            return Ok(Vec::new());
        }
        Err(Refusal::Invalid(
            invalid
                .into_iter()
                .map(|i| FieldError::invalid(i.path, display(&i.value), i.reason))
                .collect(),
        ))
    }

    /// Accepts or refuses the object a write would store.
    pub async fn validate(&self, review: &Review, object: &Value, old: Option<&Value>) -> Verdict {
        let mut warnings = Vec::new();
        if !review.subresource.is_empty() {
            return Ok(warnings);
        }
        if let Some(map) = object["metadata"]["annotations"].as_object() {
            for key in map.keys().filter(|k| annotations::is_unknown(k)) {
                warnings.push(format!(
                    "metadata.annotations[{key}]: unknown eve.lfedge.org/ annotation; it has no effect (see docs/resources.md for the known ones)"
                ));
            }
        }
        let mut check = Check {
            admission: self,
            namespace: &review.namespace,
            errors: Vec::new(),
            missing: Vec::new(),
            warnings: Vec::new(),
        };
        match (review.group.as_str(), review.kind.as_str()) {
            (GROUP, "OnboardCertificate") => {
                check.certificate(object, "spec.certificate", false);
                check.policy_claim(review, object).await?;
            }
            (GROUP, "OnboardCertificateAuthority" | "DeviceCertificateAuthority") => {
                check.certificate(object, "spec.certificate", true);
                check.policy_claim(review, object).await?;
            }
            (GROUP, "Device") => check.device(review, object),
            (GROUP, "NetworkConfig") => check.network_config(object),
            (GROUP, "DeviceNetwork") => check.device_network(object).await?,
            (GROUP, "Image") => check.image(object).await?,
            (GROUP, "Application") => {
                check.application(object, old).await?;
            }
            (GROUP, "ApplicationDeployment" | "ApplicationDaemonSet") => {
                check.workload(object).await?
            }
            (GROUP, "DeviceConfig") => {
                if let Some(device) = object["spec"]["device"].as_str() {
                    check
                        .exists::<eve_model::Device>("spec.device", device, "Device")
                        .await?;
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => check.crd(object)?,
            ("", "PersistentVolumeClaim") => check.claim(object).await?,
            ("storage.k8s.io", "StorageClass") => check.storage_class(object).await?,
            _ => {}
        }
        warnings.append(&mut check.warnings);
        if !check.missing.is_empty() {
            let warn = self.references == References::Warn
                || object["metadata"]["annotations"][annotations::REFERENCE_CHECKS] == "warn"
                || self.namespace_warns(&review.namespace).await;
            if warn {
                warnings.extend(check.missing.iter().map(|e| {
                    format!(
                        "{e} (accepted: reference checks warn; the object reports ReferencesResolved=False until it exists)"
                    )
                }));
            } else {
                check.errors.append(&mut check.missing);
            }
        }
        if check.errors.is_empty() {
            Ok(warnings)
        } else {
            Err(Refusal::Invalid(check.errors))
        }
    }

    async fn namespace_warns(&self, namespace: &str) -> bool {
        if namespace.is_empty() {
            return false;
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        matches!(api.get_opt(namespace).await, Ok(Some(ns))
            if ns.annotations().get(annotations::REFERENCE_CHECKS).is_some_and(|v| v == "warn"))
    }

    /// Remembers a unique key as taken by `owner` for a while, covering the moment before the
    /// device cache sees a new Device; a dry run (`record` false) only looks, as nothing will
    /// be stored. Returns the other owner if the key is taken.
    fn claim_recent(&self, key: String, owner: &str, record: bool) -> Option<String> {
        let mut recent = self.recent.lock().expect("not poisoned");
        let now = Instant::now();
        recent.retain(|_, (_, at)| now.duration_since(*at) < RECENT);
        match recent.get(&key) {
            Some((other, _)) if other != owner => Some(other.clone()),
            _ => {
                if record {
                    recent.insert(key, (owner.to_owned(), now));
                }
                None
            }
        }
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Check<'a> {
    admission: &'a Admission,
    namespace: &'a str,
    errors: Vec<FieldError>,
    missing: Vec<FieldError>,
    warnings: Vec<String>,
}

fn unavailable(e: kube::Error) -> Refusal {
    Refusal::Unavailable(format!("admission could not look up a reference: {e}"))
}

impl Check<'_> {
    fn certificate(&mut self, object: &Value, path: &str, ca: bool) {
        let pointer = format!("/{}", path.replace('.', "/"));
        let Some(text) = object.pointer(&pointer).and_then(Value::as_str) else {
            return;
        };
        let result = if ca {
            certs::decode_ca(text)
        } else {
            certs::decode(text)
        };
        if let Err(e) = result {
            self.errors
                .push(FieldError::invalid(path, abbreviate(text), e.to_string()));
        }
    }

    fn device(&mut self, review: &Review, object: &Value) {
        self.certificate(object, "spec.certificate", false);
        self.certificate(object, "spec.onboard", false);
        if !self.errors.is_empty() {
            return;
        }
        let me = format!("{}/{}", review.namespace, review.name);
        let mut conflicts: Vec<(&'static str, &'static str, String)> = Vec::new();
        for key in unique_keys(&object["spec"]) {
            if let Some(devices) = &self.admission.devices {
                for other in devices.keys.holders(&devices.store, &key) {
                    let them = format!(
                        "{}/{}",
                        other.namespace.clone().unwrap_or_default(),
                        other.name
                    );
                    if them != me {
                        conflicts.push((key.path(), key.what(), them));
                    }
                }
            }
            let recent = format!("{}:{:016x}", key.path(), key.short());
            if let Some(other) = self.admission.claim_recent(recent, &me, !review.dry_run) {
                conflicts.push((key.path(), key.what(), other));
            }
        }
        let mut seen = HashSet::new();
        let here = format!("{}/", review.namespace);
        for (path, what, other) in conflicts {
            if seen.insert((path, other.clone())) {
                // Another tenant's Device is not named to this one.
                let detail = match other.strip_prefix(&here) {
                    Some(name) => {
                        format!("the {what} is already Device {name}'s; a device must be unique")
                    }
                    None => format!(
                        "the {what} is already claimed in another namespace; a device belongs to one namespace"
                    ),
                };
                self.errors.push(FieldError::duplicate(path, detail));
            }
        }
    }

    /// An onboarding certificate or CA belongs to one namespace: the same certificate in a
    /// policy of another namespace (of any of the three kinds) is refused, without naming it.
    async fn policy_claim(&mut self, review: &Review, object: &Value) -> Result<(), Refusal> {
        let Some(mine) = object["spec"]["certificate"]
            .as_str()
            .and_then(|c| certs::decode(c).ok())
        else {
            return Ok(());
        };
        async fn certificates<K>(client: &Client) -> Result<Vec<(String, String)>, Refusal>
        where
            K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
                + Clone
                + serde::de::DeserializeOwned
                + std::fmt::Debug
                + serde::Serialize,
            K::DynamicType: Default,
        {
            let list = Api::<K>::all(client.clone())
                .list(&Default::default())
                .await
                .map_err(unavailable)?;
            Ok(list
                .items
                .iter()
                .filter_map(|o| {
                    let value = serde_json::to_value(o).ok()?;
                    Some((
                        kube::ResourceExt::namespace(o).unwrap_or_default(),
                        value["spec"]["certificate"].as_str()?.to_string(),
                    ))
                })
                .collect())
        }
        let client = &self.admission.client;
        let mut claims = certificates::<eve_model::OnboardCertificate>(client).await?;
        claims.extend(certificates::<eve_model::OnboardCertificateAuthority>(client).await?);
        claims.extend(certificates::<eve_model::DeviceCertificateAuthority>(client).await?);
        let taken = claims.iter().any(|(namespace, certificate)| {
            *namespace != review.namespace
                && certs::decode(certificate).is_ok_and(|c| c.der == mine.der)
        });
        if taken {
            self.errors.push(FieldError::duplicate(
                "spec.certificate",
                "the certificate is already claimed in another namespace; an onboarding certificate or CA belongs to one namespace",
            ));
        }
        Ok(())
    }

    fn network_config(&mut self, object: &Value) {
        let spec = &object["spec"];
        let ip_ok = |s: &str| s.parse::<std::net::IpAddr>().is_ok();
        let cidr_ok = |s: &str| {
            s.split_once('/').is_some_and(|(ip, bits)| {
                ip.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                    bits.parse::<u8>()
                        .is_ok_and(|b| b <= if ip.is_ipv4() { 32 } else { 128 })
                })
            })
        };
        let mut text = |path: &str, ok: &dyn Fn(&str) -> bool, what: &str| {
            let pointer = format!("/{}", path.replace('.', "/"));
            if let Some(v) = spec.pointer(&pointer).and_then(Value::as_str)
                && !ok(v)
            {
                self.errors.push(FieldError::invalid(
                    format!("spec.{path}"),
                    v,
                    format!("must be {what}"),
                ));
            }
        };
        text(
            "subnet",
            &cidr_ok,
            "a subnet in CIDR notation, like 10.1.0.0/24",
        );
        text("address", &ip_ok, "an IP address");
        text("gateway", &ip_ok, "an IP address");
        text(
            "dhcpRange",
            &|v: &str| {
                v.split_once('-')
                    .is_some_and(|(a, b)| ip_ok(a.trim()) && ip_ok(b.trim()))
            },
            "a range of two addresses, like 10.1.0.10-10.1.0.200",
        );
        for (i, dns) in spec["dns"].as_array().into_iter().flatten().enumerate() {
            if let Some(v) = dns.as_str()
                && !ip_ok(v)
            {
                self.errors.push(FieldError::invalid(
                    format!("spec.dns[{i}]"),
                    v,
                    "must be an IP address",
                ));
            }
        }
        for (i, proxy) in spec["proxies"].as_array().into_iter().flatten().enumerate() {
            if let Some(v) = proxy.as_str() {
                let ok = v.split_once("://").is_some_and(|(scheme, rest)| {
                    matches!(scheme, "http" | "https" | "socks" | "socks5" | "ftp")
                        && !rest.is_empty()
                });
                if !ok {
                    self.errors.push(FieldError::invalid(
                        format!("spec.proxies[{i}]"),
                        v,
                        "must be a proxy URL like https://10.100.100.1:8888 (scheme http, https, socks5 or ftp)",
                    ));
                }
            }
        }
        if spec["ip"] == "static" && spec["subnet"].is_null() {
            self.errors.push(FieldError::required(
                "spec.subnet",
                "a static network needs its subnet",
            ));
        }
    }

    async fn exists<K>(&mut self, path: &str, name: &str, kind: &str) -> Result<bool, Refusal>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.admission.client.clone(), self.namespace);
        match api.get_opt(name).await.map_err(unavailable)? {
            Some(_) => Ok(true),
            None => {
                self.missing.push(FieldError::not_found(
                    path,
                    name,
                    format!(
                        "{kind} {}/{name} does not exist; create it first",
                        self.namespace
                    ),
                ));
                Ok(false)
            }
        }
    }

    async fn eve_storage_class(
        &mut self,
        path: &str,
        name: &str,
    ) -> Result<Option<StorageClass>, Refusal> {
        let api: Api<StorageClass> = Api::all(self.admission.client.clone());
        match api.get_opt(name).await.map_err(unavailable)? {
            Some(class) if class.provisioner == "eve" => Ok(Some(class)),
            Some(class) => {
                self.errors.push(FieldError::invalid(
                    path,
                    name,
                    format!(
                        "StorageClass {name} has provisioner {:?}; EVE data stores need provisioner \"eve\"",
                        class.provisioner
                    ),
                ));
                Ok(None)
            }
            None => {
                self.missing.push(FieldError::not_found(
                    path,
                    name,
                    format!(
                        "StorageClass {name} does not exist; create it (provisioner: eve) first"
                    ),
                ));
                Ok(None)
            }
        }
    }

    async fn device_network(&mut self, object: &Value) -> Result<(), Refusal> {
        if let Some(config) = object["spec"]["networkConfig"].as_str() {
            self.exists::<eve_model::NetworkConfig>("spec.networkConfig", config, "NetworkConfig")
                .await?;
        }
        self.affinity(&object["spec"]["affinity"], "spec.affinity");
        Ok(())
    }

    fn affinity(&mut self, affinity: &Value, path: &str) {
        if let Some(node) = affinity.get("nodeAffinity")
            && let Ok(parsed) = serde_json::from_value(node.clone())
        {
            for (at, message) in
                eve_model::selection::affinity_errors(&parsed, &format!("{path}.nodeAffinity"))
            {
                self.errors.push(FieldError::invalid(at, "", message));
            }
        }
    }

    async fn image(&mut self, object: &Value) -> Result<(), Refusal> {
        if let Some(class) = object["spec"]["storageClass"].as_str() {
            self.eve_storage_class("spec.storageClass", class).await?;
        }
        Ok(())
    }

    async fn application(&mut self, object: &Value, old: Option<&Value>) -> Result<(), Refusal> {
        if let Some(old) = old {
            let before = old["spec"]["nodeName"].as_str().unwrap_or("");
            let after = object["spec"]["nodeName"].as_str().unwrap_or("");
            if !before.is_empty() && before != after {
                self.errors.push(FieldError::forbidden(
                    "spec.nodeName",
                    format!(
                        "the application is bound to Device {before}; the binding cannot change (delete the application to move it)"
                    ),
                ));
            }
        }
        let networks = object["metadata"]["annotations"][annotations::NETWORKS]
            .as_str()
            .map(annotations::networks)
            .unwrap_or_default();
        for network in networks {
            self.exists::<eve_model::DeviceNetwork>(
                &format!("metadata.annotations[{}]", annotations::NETWORKS),
                &network,
                "DeviceNetwork",
            )
            .await?;
        }
        let node = object["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty());
        if let Some(device) = node {
            self.exists::<eve_model::Device>("spec.nodeName", device, "Device")
                .await?;
        }
        self.application_spec(&object["spec"], "spec", node).await
    }

    async fn application_spec(
        &mut self,
        spec: &Value,
        path: &str,
        node: Option<&str>,
    ) -> Result<(), Refusal> {
        self.affinity(&spec["affinity"], &format!("{path}.affinity"));
        let mut names = HashSet::new();
        for (i, container) in spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(name) = container["name"].as_str()
                && !names.insert(name.to_owned())
            {
                self.errors.push(FieldError::duplicate(
                    format!("{path}.containers[{i}].name"),
                    name,
                ));
            }
            if let Some(image) = container["image"].as_str() {
                self.exists::<eve_model::Image>(
                    &format!("{path}.containers[{i}].image"),
                    image,
                    "Image",
                )
                .await?;
            }
        }
        let mut volumes = HashSet::new();
        for (i, volume) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
            let at = format!("{path}.volumes[{i}]");
            if let Some(name) = volume["name"].as_str()
                && !volumes.insert(name.to_owned())
            {
                self.errors
                    .push(FieldError::duplicate(format!("{at}.name"), name));
            }
            let claim = volume["persistentVolumeClaim"]["claimName"].as_str();
            let ephemeral = volume.get("ephemeral").filter(|v| !v.is_null());
            match (claim, ephemeral) {
                (Some(claim), None) => {
                    let api: Api<PersistentVolumeClaim> =
                        Api::namespaced(self.admission.client.clone(), self.namespace);
                    match api.get_opt(claim).await.map_err(unavailable)? {
                        None => self.missing.push(FieldError::not_found(
                            format!("{at}.persistentVolumeClaim.claimName"),
                            claim,
                            format!(
                                "PersistentVolumeClaim {}/{claim} does not exist; create it first",
                                self.namespace
                            ),
                        )),
                        Some(pvc) => {
                            if let (Some(bound), Some(node)) =
                                (pvc.annotations().get(annotations::BOUND_DEVICE), node)
                                && bound != node
                            {
                                self.errors.push(FieldError::forbidden(
                                    format!("{at}.persistentVolumeClaim.claimName"),
                                    format!(
                                        "PersistentVolumeClaim {claim} is bound to Device {bound}; an application on Device {node} cannot use it"
                                    ),
                                ));
                            }
                        }
                    }
                }
                (None, Some(ephemeral)) => {
                    let spec = &ephemeral["volumeClaimTemplate"]["spec"];
                    let class_path =
                        format!("{at}.ephemeral.volumeClaimTemplate.spec.storageClassName");
                    match spec["storageClassName"].as_str() {
                        Some(class) => {
                            self.eve_storage_class(&class_path, class).await?;
                        }
                        None => self.errors.push(FieldError::required(
                            class_path,
                            "an ephemeral volume names its StorageClass (provisioner: eve)",
                        )),
                    }
                }
                (Some(_), Some(_)) => self.errors.push(FieldError::forbidden(
                    at,
                    "may not specify more than 1 volume type (persistentVolumeClaim, ephemeral)",
                )),
                (None, None) => self.errors.push(FieldError::required(
                    at,
                    "must specify a volume type: persistentVolumeClaim or ephemeral",
                )),
            }
        }
        for (i, container) in spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for list in ["volumeMounts", "volumeDevices"] {
                for (j, mount) in container[list].as_array().into_iter().flatten().enumerate() {
                    if let Some(name) = mount["name"].as_str()
                        && !volumes.contains(name)
                    {
                        self.errors.push(FieldError::not_found(
                            format!("{path}.containers[{i}].{list}[{j}].name"),
                            name,
                            "no volume of that name in spec.volumes",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    async fn workload(&mut self, object: &Value) -> Result<(), Refusal> {
        let selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> =
            serde_json::from_value(object["spec"]["selector"].clone()).ok();
        let labels: BTreeMap<String, String> =
            serde_json::from_value(object["spec"]["template"]["metadata"]["labels"].clone())
                .unwrap_or_default();
        match selector {
            Some(selector) if !crate::labels::is_empty(&selector) => {
                if !crate::labels::matches(&selector, &labels) {
                    self.errors.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        format!("{labels:?}"),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            _ => self.errors.push(FieldError::invalid(
                "spec.selector",
                "{}",
                "empty selector is invalid for a deployment or daemon set",
            )),
        }
        let template = &object["spec"]["template"];
        if template["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
        {
            self.errors.push(FieldError::forbidden(
                "spec.template.spec.nodeName",
                "the controller binds each application; select devices with nodeSelector or affinity",
            ));
        }
        let networks = template["metadata"]["annotations"][annotations::NETWORKS]
            .as_str()
            .map(annotations::networks)
            .unwrap_or_default();
        for network in networks {
            self.exists::<eve_model::DeviceNetwork>(
                &format!(
                    "spec.template.metadata.annotations[{}]",
                    annotations::NETWORKS
                ),
                &network,
                "DeviceNetwork",
            )
            .await?;
        }
        self.application_spec(&template["spec"], "spec.template.spec", None)
            .await
    }

    fn crd(&mut self, object: &Value) -> Result<(), Refusal> {
        if object["spec"]["group"] != GROUP {
            return Ok(());
        }
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let ours = eve_model::KINDS
            .iter()
            .any(|k| format!("{}.{GROUP}", k.plural) == name);
        if ours {
            return Ok(());
        }
        Err(Refusal::Forbidden(format!(
            "the API group {GROUP} is reserved for the EVE kinds Adamant defines; define {name} in a group of your own domain (like ctrl.example.com)"
        )))
    }

    async fn claim(&mut self, object: &Value) -> Result<(), Refusal> {
        use eve_model::claims::{DataSource, data_source, is_eve_group};
        let spec = &object["spec"];
        let Ok(parsed) = serde_json::from_value::<
            k8s_openapi::api::core::v1::PersistentVolumeClaimSpec,
        >(spec.clone()) else {
            return Ok(());
        };
        let (field, image) = match data_source(&parsed) {
            DataSource::Blank => return Ok(()),
            DataSource::Unknown {
                field,
                api_group,
                kind,
            } => {
                // Only EVE's claims: another provisioner's claim (cluster mode sends every
                // claim here) may name its own sources.
                let eve = is_eve_group(&api_group)
                    || match spec["storageClassName"].as_str().filter(|c| !c.is_empty()) {
                        Some(class) => {
                            let api: Api<StorageClass> = Api::all(self.admission.client.clone());
                            api.get_opt(class)
                                .await
                                .map_err(unavailable)?
                                .is_some_and(|c| c.provisioner == "eve")
                        }
                        None => false,
                    };
                if eve {
                    let group = if api_group.is_empty() {
                        "the core group".to_owned()
                    } else {
                        format!("group {api_group}")
                    };
                    self.errors.push(FieldError::invalid(
                        format!("spec.{field}.kind"),
                        kind.as_str(),
                        format!(
                            "an EVE volume is made from an Image (spec.{field}: {{apiGroup: {GROUP}, kind: Image, name: <image>}}) or is blank (no {field}); {kind} in {group} is not a source EVE can fill a volume from"
                        ),
                    ));
                }
                return Ok(());
            }
            DataSource::Image { field, name, forms } => {
                if !forms.is_empty() {
                    self.warnings.push(format!(
                        "spec.{field}: read as the Image {name}: {}; the canonical form is {field}: {{apiGroup: {GROUP}, kind: Image, name: {name}}}",
                        forms.join(", ")
                    ));
                }
                (field, name)
            }
        };
        let api: Api<eve_model::Image> =
            Api::namespaced(self.admission.client.clone(), self.namespace);
        match api.get_opt(&image).await.map_err(unavailable)? {
            None => self.missing.push(FieldError::not_found(
                format!("spec.{field}.name"),
                image.as_str(),
                format!(
                    "Image {}/{image} does not exist; create it first (a volume from an Image is never made blank instead)",
                    self.namespace
                ),
            )),
            Some(found) => {
                let class = spec["storageClassName"].as_str().unwrap_or("");
                if class != found.spec.storage_class {
                    self.errors.push(FieldError::invalid(
                        "spec.storageClassName",
                        class,
                        format!(
                            "must be {:?}, the data store of Image {image} (a volume's content comes from its Image's store)",
                            found.spec.storage_class
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn storage_class(&mut self, object: &Value) -> Result<(), Refusal> {
        if object["provisioner"] != "eve" {
            return Ok(());
        }
        let parameters = &object["parameters"];
        let kind = parameters["type"].as_str().unwrap_or("");
        const TYPES: &[&str] = &[
            "blank",
            "container",
            "http",
            "https",
            "ftp",
            "sftp",
            "s3",
            "azure",
        ];
        if !TYPES.contains(&kind) {
            self.errors
                .push(FieldError::not_supported("parameters.type", kind, TYPES));
        }
        if kind == "ftp" {
            self.warnings.push(
                "parameters.type: EVE devices cannot fetch over FTP (their data stores are HTTP(S), SFTP, S3, Azure Blob and container registries); images in this store download only once it is also served over one of those".into(),
            );
        }
        if kind != "blank"
            && !kind.is_empty()
            && parameters["URL"].as_str().is_none_or(str::is_empty)
        {
            self.errors.push(FieldError::required(
                "parameters.URL",
                format!("a {kind} data store needs its URL"),
            ));
        }
        if let Some(secret) = parameters["credentialsSecret"].as_str() {
            let namespace = parameters["credentialsSecretNamespace"]
                .as_str()
                .unwrap_or("");
            if namespace.is_empty() {
                self.errors.push(FieldError::required(
                    "parameters.credentialsSecretNamespace",
                    "a StorageClass has no namespace: name the credentials Secret's namespace too",
                ));
            } else {
                let api: Api<Secret> = Api::namespaced(self.admission.client.clone(), namespace);
                if api.get_opt(secret).await.map_err(unavailable)?.is_none() {
                    self.missing.push(FieldError::not_found(
                        "parameters.credentialsSecret",
                        secret,
                        format!("Secret {namespace}/{secret} does not exist; create it first"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn abbreviate(text: &str) -> String {
    if text.len() > 24 {
        format!(
            "{}...",
            &text[..text.char_indices().nth(20).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};

    fn example_certificate(file: &str) -> String {
        use base64::Engine;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/keys")
            .join(file);
        let pem = std::fs::read(path).expect("the example keys are in examples/keys");
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    fn device(
        name: &str,
        certificate: Option<&str>,
        serial: Option<(&str, &str)>,
    ) -> eve_model::Device {
        let mut d = eve_model::Device::new(name, eve_model::DeviceSpec::default());
        d.metadata.namespace = Some("fleet".into());
        d.spec.certificate = certificate.map(str::to_owned);
        if let Some((serial, onboard)) = serial {
            d.spec.serial = Some(serial.into());
            d.spec.onboard = Some(onboard.into());
        }
        d
    }

    #[test]
    fn device_keys_find_holders_and_forget_what_no_longer_holds() {
        let cert = example_certificate("device.pem");
        let onboard = example_certificate("onboard.pem");
        let (store, mut writer) = reflector::store();
        let keys = DeviceKeys::default();
        let apply = |writer: &mut reflector::store::Writer<eve_model::Device>,
                     d: &eve_model::Device| {
            writer.apply_watcher_event(&watcher::Event::Apply(d.clone()));
            keys.observe(d);
        };
        let a = device("a", Some(&cert), None);
        let b = device("b", None, Some(("s1", &onboard)));
        apply(&mut writer, &a);
        apply(&mut writer, &b);
        let names = |key: &UniqueKey| -> Vec<String> {
            keys.holders(&store, key)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        let by_cert = unique_keys(&serde_json::json!({"certificate": cert}));
        let by_serial = unique_keys(&serde_json::json!({"serial": "s1", "onboard": onboard}));
        let other_serial = unique_keys(&serde_json::json!({"serial": "s2", "onboard": onboard}));
        assert_eq!(names(&by_cert[0]), ["a"]);
        assert_eq!(names(&by_serial[0]), ["b"]);
        assert!(names(&other_serial[0]).is_empty());
        // a changes its certificate away, b is deleted: neither holds its key any more, and
        // the stale hints are dropped on lookup.
        let a2 = device("a", None, None);
        apply(&mut writer, &a2);
        writer.apply_watcher_event(&watcher::Event::Delete(b.clone()));
        assert!(names(&by_cert[0]).is_empty());
        assert!(names(&by_serial[0]).is_empty());
        assert!(keys.map.lock().unwrap().is_empty());
    }
}
