//! Where applications go: which devices fit an application, which one to choose, and the plans
//! of deployments and daemon sets. Plain functions over snapshots; the controllers act on them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use eve_model::selection::{self, Target};
use eve_model::{ApplicationSpec, Device, DeviceNetwork, annotations};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

/// What a namespace holds that placement depends on, besides devices.
#[derive(Default)]
pub struct Context<'a> {
    /// DeviceNetworks by name.
    pub networks: HashMap<String, &'a DeviceNetwork>,
    /// PersistentVolumeClaims bound to a device: claim name → device name.
    pub bound_claims: HashMap<String, String>,
    /// Device models by name: their assignment groups.
    pub adapters: HashMap<String, BTreeSet<String>>,
}

/// Why a device does not fit an application.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unfit {
    /// The device is being deleted.
    Deleting,
    /// The device is deactivated (`eve.lfedge.org/activate: "false"`).
    Inactive,
    /// nodeSelector does not match.
    Selector,
    /// Node affinity does not match.
    Affinity,
    /// A network is not on the device (or does not exist).
    Network(String),
    /// A claim is bound to another device.
    Claim(String),
    /// The device's model has no such adapter (assignment group).
    Adapter(String),
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::Deleting => write!(f, "being deleted"),
            Unfit::Inactive => write!(f, "deactivated"),
            Unfit::Selector => write!(f, "didn't match nodeSelector"),
            Unfit::Affinity => write!(f, "didn't match node affinity"),
            Unfit::Network(n) => write!(f, "lack network {n}"),
            Unfit::Claim(c) => write!(f, "can't use claim {c} (bound to another device)"),
            Unfit::Adapter(a) => write!(f, "lack adapter {a}"),
        }
    }
}

/// The networks an application's annotations name.
pub fn networks_of(annotations: &BTreeMap<String, String>) -> Vec<String> {
    annotations
        .get(annotations::NETWORKS)
        .map(|v| annotations::networks(v))
        .unwrap_or_default()
}

/// Whether a DeviceNetwork exists on a device.
pub fn network_on(network: &DeviceNetwork, device: &Device) -> bool {
    let name = device.name_any();
    let target = Target {
        name: &name,
        labels: device.labels(),
    };
    selection::matches_affinity(
        network
            .spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref()),
        target,
    )
}

/// Whether `device` fits an application with `spec` and `annotations`.
pub fn fits(
    spec: &ApplicationSpec,
    app_annotations: &BTreeMap<String, String>,
    device: &Device,
    context: &Context<'_>,
) -> Result<(), Unfit> {
    if device.metadata.deletion_timestamp.is_some() {
        return Err(Unfit::Deleting);
    }
    if device
        .annotations()
        .get(annotations::ACTIVATE)
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        return Err(Unfit::Inactive);
    }
    let name = device.name_any();
    let target = Target {
        name: &name,
        labels: device.labels(),
    };
    if !selection::matches_selector(&spec.node_selector, target) {
        return Err(Unfit::Selector);
    }
    let affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref());
    if !selection::matches_affinity(affinity, target) {
        return Err(Unfit::Affinity);
    }
    for network in networks_of(app_annotations) {
        match context.networks.get(&network) {
            Some(n) if network_on(n, device) => {}
            _ => return Err(Unfit::Network(network)),
        }
    }
    let wanted = eve_model::device_model::wanted(app_annotations);
    if !wanted.is_empty() {
        let groups = device
            .annotations()
            .get(annotations::MODEL)
            .and_then(|model| context.adapters.get(model));
        for group in wanted {
            if !groups.is_some_and(|g| g.contains(&group)) {
                return Err(Unfit::Adapter(group));
            }
        }
    }
    for volume in &spec.volumes {
        if let Some(claim) = &volume.persistent_volume_claim
            && let Some(bound) = context.bound_claims.get(&claim.claim_name)
            && *bound != name
        {
            return Err(Unfit::Claim(claim.claim_name.clone()));
        }
    }
    Ok(())
}

/// How many applications each device has: of the owner being placed, and in all.
#[derive(Clone, Debug, Default)]
pub struct Load {
    /// device → applications of the same owner.
    pub own: HashMap<String, u32>,
    /// device → all applications.
    pub total: HashMap<String, u32>,
}

impl Load {
    /// Counts one more application on `device`.
    pub fn add(&mut self, device: &str) {
        *self.own.entry(device.to_owned()).or_default() += 1;
        *self.total.entry(device.to_owned()).or_default() += 1;
    }
}

/// Chooses a device for an application: among those that fit, the one with the fewest
/// applications of the same owner (spreading replicas), then the highest preferred-affinity
/// score, then the fewest applications, then by name. The error says why none fits, as the
/// Kubernetes scheduler does ("0/10 devices are available: ...").
pub fn choose(
    spec: &ApplicationSpec,
    app_annotations: &BTreeMap<String, String>,
    devices: &[&Device],
    context: &Context<'_>,
    load: &Load,
) -> Result<String, String> {
    let mut reasons: BTreeMap<Unfit, usize> = BTreeMap::new();
    let affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref());
    let mut best: Option<((u32, i64, u32), String)> = None;
    for device in devices {
        match fits(spec, app_annotations, device, context) {
            Ok(()) => {
                let name = device.name_any();
                let target = Target {
                    name: &name,
                    labels: device.labels(),
                };
                let key = (
                    load.own.get(&name).copied().unwrap_or(0),
                    -selection::preference(affinity, target),
                    load.total.get(&name).copied().unwrap_or(0),
                );
                if best.as_ref().is_none_or(|(k, n)| (key, &name) < (*k, n)) {
                    best = Some((key, name));
                }
            }
            Err(why) => *reasons.entry(why).or_default() += 1,
        }
    }
    best.map(|(_, name)| name).ok_or_else(|| {
        let why: Vec<String> = reasons
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        let mut message = format!("0/{} devices are available", devices.len());
        if !why.is_empty() {
            message.push_str(": ");
            message.push_str(&why.join(", "));
        }
        message
    })
}

/// [`choose`] for one application after another, each counted once placed, over devices kept
/// ordered by load: an application without preferred affinity gets the first device in that
/// order that fits, without going over every device. Placing N applications on M devices costs
/// about N × log M where it cost N × M (a burst of standalone applications, a deployment's
/// replicas). The choice is the one [`choose`] makes.
pub struct Spread<'a> {
    devices: &'a [&'a Device],
    by_name: HashMap<&'a str, &'a Device>,
    load: Load,
    /// Whether a placed application counts in `own` (replicas of one owner), or only in `total`
    /// (standalone applications, which have no owner).
    owned: bool,
    /// Devices by (`own`, `total`, name), made on first use.
    order: Option<BTreeSet<(u32, u32, &'a str)>>,
}

impl<'a> Spread<'a> {
    /// Choosing among `devices` with `load` already on them; `owned` as in [`Spread::owned`].
    pub fn new(devices: &'a [&'a Device], load: Load, owned: bool) -> Spread<'a> {
        let by_name = devices
            .iter()
            .map(|d| (d.metadata.name.as_deref().unwrap_or_default(), *d))
            .collect();
        Spread {
            devices,
            by_name,
            load,
            owned,
            order: None,
        }
    }

    fn key(&self, name: &'a str) -> (u32, u32, &'a str) {
        let count = |m: &HashMap<String, u32>| m.get(name).copied().unwrap_or(0);
        (count(&self.load.own), count(&self.load.total), name)
    }

    /// The device [`choose`] would choose for the application, with the load counted so far.
    pub fn choose(
        &mut self,
        spec: &ApplicationSpec,
        app_annotations: &BTreeMap<String, String>,
        context: &Context<'_>,
    ) -> Result<String, String> {
        let preferred = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|p| !p.is_empty());
        if !preferred {
            if self.order.is_none() {
                let order = self.by_name.keys().map(|name| self.key(name)).collect();
                self.order = Some(order);
            }
            let order = self.order.as_ref().expect("made above");
            for (_, _, name) in order {
                if fits(spec, app_annotations, self.by_name[name], context).is_ok() {
                    return Ok((*name).to_owned());
                }
            }
        }
        // Preferences weigh in, or nothing fits (every device's reason is told).
        choose(spec, app_annotations, self.devices, context, &self.load)
    }

    /// Counts one more application on `device`.
    pub fn add(&mut self, device: &str) {
        let name = self.by_name.get_key_value(device).map(|(name, _)| *name);
        let before = name.map(|n| self.key(n));
        if self.owned {
            self.load.add(device);
        } else {
            *self.load.total.entry(device.to_owned()).or_default() += 1;
        }
        let after = name.map(|n| self.key(n));
        if let (Some(order), Some(before), Some(after)) = (self.order.as_mut(), before, after) {
            order.remove(&before);
            order.insert(after);
        }
    }
}

/// A stable hash of a template, for the `eve.lfedge.org/template-hash` label: FNV-1a over its
/// JSON (field order is fixed by the types), written in Kubernetes' safe alphabet.
pub fn template_hash(template: &impl serde::Serialize) -> String {
    let bytes = serde_json::to_vec(template).expect("a template serializes");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    for _ in 0..10 {
        out.push(ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char);
        hash /= ALPHABET.len() as u64;
    }
    out
}

/// Resolves a maxSurge/maxUnavailable against `total` (percentages round up for surge, down for
/// unavailable).
pub fn resolve(value: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    let value = value
        .cloned()
        .unwrap_or_else(|| IntOrString::String(default.into()));
    match value {
        IntOrString::Int(n) => n.max(0),
        IntOrString::String(s) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return s.parse::<i32>().unwrap_or(0).max(0);
            };
            let scaled = i64::from(total) * percent;
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            n.clamp(0, i64::from(i32::MAX)) as i32
        }
    }
}

/// What a controller knows of one of its applications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The application's name.
    pub name: String,
    /// Its template hash.
    pub hash: String,
    /// The device it is bound to.
    pub device: Option<String>,
    /// Whether its device exists and still fits it.
    pub placed: bool,
    /// Whether it runs (and has for minReadySeconds).
    pub available: bool,
}

/// What a deployment should do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// How many new applications to make (from the current template).
    pub create: usize,
    /// Which applications to delete.
    pub delete: Vec<String>,
}

/// A deployment's limits.
#[derive(Clone, Copy, Debug)]
pub struct Rollout {
    /// Wanted replicas.
    pub replicas: i32,
    /// Whether old applications all go before new ones come.
    pub recreate: bool,
    /// maxSurge, resolved.
    pub max_surge: i32,
    /// maxUnavailable, resolved.
    pub max_unavailable: i32,
}

/// Plans one step of a deployment: replace applications whose device went away or stopped
/// fitting, scale to `replicas`, and roll old-template applications to the current template
/// keeping at least `replicas - maxUnavailable` available and at most `replicas + maxSurge` in
/// all.
pub fn plan_deployment(rollout: Rollout, hash: &str, members: &[Member]) -> Plan {
    let mut plan = Plan::default();
    let replicas = rollout.replicas.max(0) as usize;
    let (misplaced, placed): (Vec<&Member>, Vec<&Member>) = members.iter().partition(|m| !m.placed);
    plan.delete.extend(misplaced.iter().map(|m| m.name.clone()));
    let (new, old): (Vec<&Member>, Vec<&Member>) = placed.iter().partition(|m| m.hash == hash);
    if rollout.recreate && !old.is_empty() {
        plan.delete.extend(old.iter().map(|m| m.name.clone()));
        return plan;
    }
    if old.is_empty() {
        if new.len() < replicas {
            plan.create = replicas - new.len();
        } else {
            // Scale down: unavailable ones first, then the newest names last.
            let mut surplus: Vec<&&Member> = new.iter().collect();
            surplus.sort_by_key(|m| (m.available, std::cmp::Reverse(m.name.clone())));
            plan.delete.extend(
                surplus
                    .iter()
                    .take(new.len() - replicas)
                    .map(|m| m.name.clone()),
            );
        }
        return plan;
    }
    let (max_surge, mut max_unavailable) = (rollout.max_surge, rollout.max_unavailable);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let total = (new.len() + old.len()) as i64;
    let want = replicas as i64;
    let room = want + i64::from(max_surge) - total;
    plan.create = (want - new.len() as i64).min(room).max(0) as usize;
    let min_available = want - i64::from(max_unavailable);
    let new_unavailable = new.iter().filter(|m| !m.available).count() as i64;
    let mut budget = total - min_available - new_unavailable;
    // Old applications that are not available cost nothing to remove.
    let mut old_sorted: Vec<&&Member> = old.iter().collect();
    old_sorted.sort_by_key(|m| (m.available, m.name.clone()));
    let mut available_now = members.iter().filter(|m| m.placed && m.available).count() as i64;
    for m in old_sorted {
        if !m.available {
            plan.delete.push(m.name.clone());
            budget -= 1;
        } else if budget > 0 && available_now > min_available {
            plan.delete.push(m.name.clone());
            budget -= 1;
            available_now -= 1;
        }
    }
    plan
}

/// What a daemon set should do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonPlan {
    /// Devices to make an application for.
    pub create_on: Vec<String>,
    /// Applications to delete.
    pub delete: Vec<String>,
}

/// Plans one step of a daemon set: one current application on every eligible device, none
/// elsewhere, old-template applications replaced at most `max_unavailable` devices at a time
/// (never, with `on_delete`).
pub fn plan_daemon_set(
    eligible: &[String],
    hash: &str,
    members: &[Member],
    max_unavailable: i32,
    on_delete: bool,
) -> DaemonPlan {
    let mut plan = DaemonPlan::default();
    let mut by_device: HashMap<&str, Vec<&Member>> = HashMap::new();
    let eligible_set: std::collections::HashSet<&str> =
        eligible.iter().map(String::as_str).collect();
    for m in members {
        match &m.device {
            Some(d) if m.placed && eligible_set.contains(d.as_str()) => {
                by_device.entry(d.as_str()).or_default().push(m)
            }
            _ => plan.delete.push(m.name.clone()),
        }
    }
    let mut unavailable = 0i64;
    let mut outdated: Vec<&Member> = Vec::new();
    for device in eligible {
        let Some(list) = by_device.get_mut(device.as_str()) else {
            plan.create_on.push(device.clone());
            unavailable += 1;
            continue;
        };
        // Keep one: current template first, then available.
        list.sort_by_key(|m| (m.hash != hash, !m.available, m.name.clone()));
        plan.delete
            .extend(list.iter().skip(1).map(|m| m.name.clone()));
        let kept = list[0];
        if !kept.available {
            unavailable += 1;
        }
        if kept.hash != hash {
            outdated.push(kept);
        }
    }
    if on_delete {
        return plan;
    }
    let budget = i64::from(max_unavailable.max(1));
    outdated.sort_by_key(|m| (m.available, m.name.clone()));
    for m in outdated {
        if !m.available {
            plan.delete.push(m.name.clone());
        } else if unavailable < budget {
            plan.delete.push(m.name.clone());
            unavailable += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, hash: &str, available: bool) -> Member {
        Member {
            name: name.into(),
            hash: hash.into(),
            device: Some(format!("d-{name}")),
            placed: true,
            available,
        }
    }

    fn rollout(replicas: i32, surge: i32, unavailable: i32) -> Rollout {
        Rollout {
            replicas,
            recreate: false,
            max_surge: surge,
            max_unavailable: unavailable,
        }
    }

    #[test]
    fn deployments_scale_and_roll_within_limits() {
        // Scale up from nothing.
        assert_eq!(plan_deployment(rollout(3, 1, 0), "h", &[]).create, 3);
        // A misplaced application is replaced.
        let mut gone = member("a", "h", true);
        gone.placed = false;
        let plan = plan_deployment(rollout(2, 1, 0), "h", &[gone, member("b", "h", true)]);
        assert_eq!((plan.create, plan.delete), (1, vec!["a".to_string()]));
        // Rolling with maxSurge 1, maxUnavailable 0: one new first, no old deleted yet.
        let old = [
            member("a", "o", true),
            member("b", "o", true),
            member("c", "o", true),
        ];
        let plan = plan_deployment(rollout(3, 1, 0), "h", &old);
        assert_eq!((plan.create, plan.delete.len()), (1, 0));
        // Once the new one is available, one old one goes.
        let mut step = old.to_vec();
        step.push(member("n1", "h", true));
        let plan = plan_deployment(rollout(3, 1, 0), "h", &step);
        assert_eq!((plan.create, plan.delete), (0, vec!["a".to_string()]));
        // maxUnavailable 1, maxSurge 0: one old goes first.
        let plan = plan_deployment(rollout(3, 0, 1), "h", &old);
        assert_eq!((plan.create, plan.delete.len()), (0, 1));
        // Scale down keeps available ones.
        let plan = plan_deployment(
            rollout(1, 1, 0),
            "h",
            &[member("a", "h", true), member("b", "h", false)],
        );
        assert_eq!(plan.delete, vec!["b".to_string()]);
    }

    #[test]
    fn daemon_sets_follow_devices_and_roll_one_at_a_time() {
        let eligible = vec!["d-a".to_string(), "d-b".to_string(), "d-new".to_string()];
        let members = [
            member("a", "o", true),
            member("b", "o", true),
            member("x", "h", true), // on a device that no longer fits
        ];
        let plan = plan_daemon_set(&eligible, "h", &members, 1, false);
        assert_eq!(plan.create_on, vec!["d-new".to_string()]);
        assert_eq!(plan.delete, vec!["x".to_string()]); // d-new counts as unavailable
        let plan = plan_daemon_set(&eligible, "h", &members, 2, false);
        assert_eq!(plan.delete, vec!["x".to_string(), "a".to_string()]);
        let plan = plan_daemon_set(&eligible, "h", &members, 2, true);
        assert_eq!(plan.delete, vec!["x".to_string()]);
    }

    #[test]
    fn an_application_asking_for_adapters_fits_only_a_device_whose_model_has_them() {
        let device = |name: &str, model: Option<&str>| {
            let mut d = Device::new(name, Default::default());
            if let Some(model) = model {
                d.metadata.annotations =
                    Some([(annotations::MODEL.to_string(), model.to_string())].into());
            }
            d
        };
        let mut context = Context::default();
        context
            .adapters
            .insert("nuc".into(), ["USB".to_string(), "COM1".to_string()].into());
        let wants = |groups: &str| -> BTreeMap<String, String> {
            [(annotations::ADAPTERS.to_string(), groups.to_string())].into()
        };
        let spec = ApplicationSpec::default();
        let fit = |d: &Device, groups: &str| fits(&spec, &wants(groups), d, &context);
        assert_eq!(fit(&device("a", Some("nuc")), "USB, COM1"), Ok(()));
        assert_eq!(
            fit(&device("a", Some("nuc")), "USB, GPU"),
            Err(Unfit::Adapter("GPU".into()))
        );
        assert_eq!(
            fit(&device("b", None), "USB"),
            Err(Unfit::Adapter("USB".into()))
        );
        assert_eq!(
            fit(&device("c", Some("other")), "USB"),
            Err(Unfit::Adapter("USB".into()))
        );
        assert_eq!(
            fits(&spec, &BTreeMap::new(), &device("b", None), &context),
            Ok(())
        );
        assert_eq!(Unfit::Adapter("GPU".into()).to_string(), "lack adapter GPU");
    }

    mod spread {
        use super::*;
        use proptest::prelude::*;

        /// A device: its site label (none, or one of three), whether it is inactive.
        fn device(i: usize, site: Option<u8>, inactive: bool) -> Device {
            let mut d = Device::new(&format!("d{i:02}"), Default::default());
            if let Some(site) = site {
                d.metadata.labels = Some([("site".to_string(), format!("s{site}"))].into());
            }
            if inactive {
                d.metadata.annotations =
                    Some([(annotations::ACTIVATE.to_string(), "false".to_string())].into());
            }
            d
        }

        /// An application: a nodeSelector on a site or none, a preferred site or none.
        fn spec(selector: Option<u8>, preferred: Option<u8>) -> ApplicationSpec {
            let mut spec = serde_json::json!({"containers": [{"name": "c", "image": "i"}]});
            if let Some(s) = selector {
                spec["nodeSelector"] = serde_json::json!({"site": format!("s{s}")});
            }
            if let Some(s) = preferred {
                spec["affinity"] = serde_json::json!({"nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10,
                        "preference": {"matchExpressions": [
                            {"key": "site", "operator": "In", "values": [format!("s{s}")]}]}}]}});
            }
            serde_json::from_value(spec).unwrap()
        }

        proptest! {
            /// One application after another, `Spread` chooses what `choose` chooses, and fails
            /// with the same reasons.
            #[test]
            fn chooses_as_choose_does(
                devices in prop::collection::vec((prop::option::of(0u8..3), prop::bool::weighted(0.1)), 0..24),
                loads in prop::collection::vec((0usize..24, 0u32..3, 0u32..3), 0..12),
                apps in prop::collection::vec((prop::option::of(0u8..4), prop::option::of(0u8..3)), 1..32),
                owned: bool,
            ) {
                let devices: Vec<Device> = devices
                    .iter()
                    .enumerate()
                    .map(|(i, (site, inactive))| device(i, *site, *inactive))
                    .collect();
                let refs: Vec<&Device> = devices.iter().collect();
                let mut load = Load::default();
                for (i, own, total) in loads {
                    let name = format!("d{i:02}");
                    if owned {
                        load.own.insert(name.clone(), own);
                    }
                    load.total.insert(name, own + total);
                }
                let context = Context::default();
                let mut model = load.clone();
                let mut spread = Spread::new(&refs, load, owned);
                for (selector, preferred) in apps {
                    let spec = spec(selector, preferred);
                    let expected = choose(&spec, &BTreeMap::new(), &refs, &context, &model);
                    let got = spread.choose(&spec, &BTreeMap::new(), &context);
                    prop_assert_eq!(&got, &expected);
                    if let Ok(device) = got {
                        spread.add(&device);
                        if owned {
                            model.add(&device);
                        } else {
                            *model.total.entry(device).or_default() += 1;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn percentages() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve(Some(&p("25%")), "25%", 3, true), 1);
        assert_eq!(resolve(Some(&p("25%")), "25%", 3, false), 0);
        assert_eq!(resolve(None, "25%", 10, false), 2);
        assert_eq!(resolve(Some(&IntOrString::Int(2)), "25%", 10, false), 2);
    }
}
