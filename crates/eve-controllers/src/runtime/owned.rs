//! What deployments and daemon sets share: the Applications an owner controls, their standing
//! as plan members, making and deleting them (recording expectations), revision history, and
//! the scaling event.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use eve_model::{Application, ApplicationSpec, ApplicationTemplate, Device, Revision, annotations};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};

use super::context::{Ctx, Error, Owner, controller_of, now};
use super::expectations::Expected;
use crate::events::{Record, reference};
use crate::scheduling::{self, Context, Member};

/// How many Application writes an owner's reconcile has in flight at once.
pub(super) const WRITES_IN_FLIGHT: usize = 32;

impl Ctx {
    /// The Applications `owner` (its `kind`) controls now, by UID, from the cache.
    pub(super) fn controlled<K: Resource>(&self, kind: &str, owner: &K) -> Vec<Arc<Application>> {
        let ns = owner.meta().namespace.as_deref().unwrap_or_default();
        let name = owner.meta().name.as_deref().unwrap_or_default();
        self.apps_in(ns)
            .into_iter()
            .filter(|a| {
                controller_of(a).is_some_and(|o| {
                    o.kind == kind && o.name == name && Some(&o.uid) == owner.meta().uid.as_ref()
                })
            })
            .collect()
    }

    /// Deletes the Applications `names` of `ns`, expecting (as `owner`) to see them go.
    pub(super) async fn delete_apps(
        &self,
        owner: &Owner,
        ns: &str,
        names: &[String],
    ) -> Result<(), Error> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), ns);
        let results: Vec<(String, Result<(), kube::Error>)> =
            futures::stream::iter(names.iter().cloned())
                .map(|name| {
                    let api = api.clone();
                    async move {
                        let result = match api.delete(&name, &DeleteParams::default()).await {
                            Ok(_) => Ok(()),
                            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                            Err(e) => Err(e),
                        };
                        (name, result)
                    }
                })
                .buffer_unordered(WRITES_IN_FLIGHT)
                .collect()
                .await;
        let at = Instant::now();
        let mut failure = None;
        for (name, result) in results {
            match result {
                Ok(()) => self.expectations.expect(owner, &name, Expected::Gone, at),
                Err(e) => failure = Some(e),
            }
        }
        self.expectations.settle(owner, |n| self.observed(ns, n));
        failure.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Creates `apps` in `ns` (those that exist already are left), expecting (as `owner`) to see
    /// those it made.
    pub(super) async fn create_apps(
        &self,
        owner: &Owner,
        ns: &str,
        apps: Vec<Application>,
    ) -> Result<(), Error> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), ns);
        let created: Vec<Result<Option<String>, kube::Error>> = futures::stream::iter(apps)
            .map(|app| {
                let api = api.clone();
                async move {
                    match api.create(&PostParams::default(), &app).await {
                        Ok(made) => Ok(Some(made.name_any())),
                        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        let at = Instant::now();
        let mut failure = None;
        for c in created {
            match c {
                Ok(Some(name)) => self
                    .expectations
                    .expect(owner, &name, Expected::Present, at),
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
        }
        self.expectations.settle(owner, |n| self.observed(ns, n));
        failure.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Records that `owner` created and deleted applications on its way to template `hash`.
    pub(super) fn record_scaling<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        created: usize,
        deleted: &[String],
        hash: &str,
    ) {
        if created == 0 && deleted.is_empty() {
            return;
        }
        let mut note = format!("created {created} application(s) of template {hash}");
        if !deleted.is_empty() {
            note.push_str(&format!("; deleted {}", deleted.join(", ")));
        }
        self.events.record(Record::normal(
            reference(owner),
            "ScalingApplications",
            "Rollout",
            note,
        ));
    }
}

/// Whether `app` has run on its device for `min_ready_seconds`.
fn available(app: &Application, min_ready_seconds: i32) -> bool {
    let Some(status) = &app.status else {
        return false;
    };
    if status.state.as_deref() != Some("RUNNING") || app.spec.node_name.is_none() {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = status
        .statuses
        .iter()
        .rev()
        .find(|s| s.state == "RUNNING")
        .map(|s| s.timestamp.0);
    since.is_some_and(|t| {
        jiff::Timestamp::now().duration_since(t).as_secs() >= i64::from(min_ready_seconds)
    })
}

/// `apps` (those not being deleted) as plan members: their device, whether it still fits them,
/// their template, whether they are available.
pub(super) fn members(
    apps: &[Arc<Application>],
    devices: &[Arc<Device>],
    context: &Context<'_>,
    min_ready: i32,
) -> Vec<Member> {
    let by_name: HashMap<String, &Arc<Device>> =
        devices.iter().map(|d| (d.name_any(), d)).collect();
    apps.iter()
        .filter(|a| a.metadata.deletion_timestamp.is_none())
        .map(|a| {
            let device = a.spec.node_name.clone();
            let placed = device
                .as_ref()
                .and_then(|d| by_name.get(d))
                .is_some_and(|d| scheduling::fits(&a.spec, a.annotations(), d, context).is_ok());
            Member {
                name: a.name_any(),
                hash: a
                    .labels()
                    .get(annotations::TEMPLATE_HASH)
                    .cloned()
                    .unwrap_or_default(),
                device,
                placed,
                available: available(a, min_ready),
            }
        })
        .collect()
}

/// An Application of `owner` from `template` (of hash `hash`) on `device`: named `name`, or
/// generated from the owner's name and the hash.
pub(super) fn made_from(
    owner: &impl Resource<DynamicType = ()>,
    template: &ApplicationTemplate,
    hash: &str,
    name: Option<String>,
    device: String,
) -> Application {
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(annotations::TEMPLATE_HASH.into(), hash.into());
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let mut spec: ApplicationSpec = template.spec.clone();
    spec.node_name = Some(device);
    let mut app = Application::new("", spec);
    app.metadata.name = name;
    if app.metadata.name.is_none() {
        app.metadata.generate_name = Some(format!("{owner_name}-{hash}-"));
    }
    app.metadata.labels = Some(labels);
    app.metadata.annotations = template
        .metadata
        .as_ref()
        .map(|m| m.annotations.clone())
        .filter(|a| !a.is_empty());
    app.metadata.owner_references = owner.controller_owner_ref(&()).map(|mut o| {
        o.block_owner_deletion = Some(true);
        vec![o]
    });
    app
}

/// `history` with template `hash` as its newest revision (a new one if it is not already),
/// keeping `limit` past revisions.
pub(super) fn history(
    mut history: Vec<Revision>,
    hash: &str,
    cause: Option<&String>,
    limit: i32,
) -> Vec<Revision> {
    if history.last().is_none_or(|r| r.template_hash != hash) {
        let revision = history.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        history.retain(|r| r.template_hash != hash);
        history.push(Revision {
            revision,
            template_hash: hash.into(),
            created: Some(now()),
            change_cause: cause.cloned(),
        });
    }
    let keep = limit.max(0) as usize + 1;
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
    history
}

/// The name of a daemon set's application on a device: `<daemon set>-<device>`, shortened with
/// a hash when too long for a name.
pub fn daemon_app_name(daemon_set: &str, device: &str) -> String {
    let name = format!("{daemon_set}-{device}");
    if name.len() <= 253 {
        return name;
    }
    let hash = scheduling::template_hash(&name);
    format!("{}-{hash}", &name[..242].trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(n: i64, hash: &str) -> Revision {
        Revision {
            revision: n,
            template_hash: hash.into(),
            created: None,
            change_cause: None,
        }
    }

    #[test]
    fn history_adds_a_revision_per_new_template_and_keeps_the_limit() {
        let h = history(Vec::new(), "a", None, 10);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].revision, h[0].template_hash.as_str()), (1, "a"));
        // The current template again: unchanged.
        assert_eq!(history(h.clone(), "a", None, 10), h);
        // Back to an older template: it moves to the end with a new number.
        let h = history(vec![revision(1, "a"), revision(2, "b")], "a", None, 10);
        let seen: Vec<(i64, &str)> = h
            .iter()
            .map(|r| (r.revision, r.template_hash.as_str()))
            .collect();
        assert_eq!(seen, [(2, "b"), (3, "a")]);
        // revisionHistoryLimit 1: the current and one past.
        let h = history(vec![revision(1, "a"), revision(2, "b")], "c", None, 1);
        let seen: Vec<i64> = h.iter().map(|r| r.revision).collect();
        assert_eq!(seen, [2, 3]);
    }

    #[test]
    fn daemon_application_names_fit_a_name() {
        assert_eq!(daemon_app_name("agent", "dev-1"), "agent-dev-1");
        let long = daemon_app_name(&"a".repeat(200), &"d".repeat(100));
        assert!(long.len() <= 253, "{}", long.len());
        assert_ne!(long, daemon_app_name(&"a".repeat(200), &"e".repeat(100)));
    }
}
