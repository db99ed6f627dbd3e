//! `ReferencesResolved` on applications that name missing Images, DeviceNetworks or claims
//! (admitted in warning mode), cleared once they exist.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use eve_model::{Application, ApplicationStatus, conditions};
use kube::ResourceExt;

use super::context::{Ctx, Error, now};
use crate::scheduling;

/// What exists in a namespace that applications may name.
struct Named {
    images: HashSet<String>,
    networks: HashSet<String>,
    /// Each claim, with what is missing for its volume: the Image it is made from.
    claims: HashMap<String, Option<String>>,
}

/// Brings `apps`' `ReferencesResolved` condition up to date with what `ns` holds.
pub(super) async fn reconcile(ctx: &Ctx, ns: &str, apps: &[Arc<Application>]) -> Result<(), Error> {
    let images: HashSet<String> = ctx
        .caches
        .images
        .state_filter(|i| i.metadata.namespace.as_deref() == Some(ns))
        .iter()
        .map(|i| i.name_any())
        .collect();
    let networks = ctx.networks_in(ns).iter().map(|n| n.name_any()).collect();
    let claims = ctx
        .caches
        .claims
        .state_filter(|c| c.metadata.namespace.as_deref() == Some(ns))
        .iter()
        .map(|c| {
            let spec = c.spec.clone().unwrap_or_default();
            let missing = match eve_model::claims::data_source(&spec) {
                eve_model::claims::DataSource::Image { name, .. } if !images.contains(&name) => {
                    Some(format!(
                        "Image {name} (of PersistentVolumeClaim {})",
                        c.name_any()
                    ))
                }
                _ => None,
            };
            (c.name_any(), missing)
        })
        .collect();
    let named = Named {
        images,
        networks,
        claims,
    };
    for app in apps {
        if let Some(status) = resolved_status(app, &missing(app, &named)) {
            ctx.write_status::<Application, _>(ns, &app.name_any(), &status)
                .await?;
        }
    }
    Ok(())
}

/// What `app` names that does not exist.
fn missing(app: &Application, named: &Named) -> Vec<String> {
    let mut missing = Vec::new();
    for c in &app.spec.containers {
        if !named.images.contains(&c.image) {
            missing.push(format!("Image {}", c.image));
        }
    }
    for n in scheduling::networks_of(app.annotations()) {
        if !named.networks.contains(&n) {
            missing.push(format!("DeviceNetwork {n}"));
        }
    }
    for v in &app.spec.volumes {
        if let Some(c) = &v.persistent_volume_claim {
            match named.claims.get(&c.claim_name) {
                None => missing.push(format!("PersistentVolumeClaim {}", c.claim_name)),
                Some(Some(image)) => missing.push(image.clone()),
                Some(None) => {}
            }
        }
    }
    missing
}

/// The status (conditions only) to write on `app` with `missing` what it names that does not
/// exist; `None` if its condition already says so, or all is well and it never said otherwise.
fn resolved_status(app: &Application, missing: &[String]) -> Option<ApplicationStatus> {
    let old = app.status.as_ref();
    let ok = missing.is_empty();
    let message = if ok {
        "every object the application names exists".to_string()
    } else {
        format!("missing: {}", missing.join(", "))
    };
    let found = old.and_then(|o| conditions::find(&o.conditions, "ReferencesResolved"));
    let unchanged = match found {
        Some(p) => p.status == if ok { "True" } else { "False" } && p.message == message,
        None => ok,
    };
    if unchanged {
        return None;
    }
    let mut conditions = old.map(|o| o.conditions.clone()).unwrap_or_default();
    conditions::set(
        &mut conditions,
        "ReferencesResolved",
        ok,
        if ok { "Resolved" } else { "MissingReferences" },
        &message,
        now(),
    );
    Some(ApplicationStatus {
        conditions,
        ..ApplicationStatus::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve_model::{ApplicationSpec, Container};

    fn app(image: &str) -> Application {
        Application::new(
            "a",
            ApplicationSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: image.into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
    }

    #[test]
    fn missing_references_are_reported_then_cleared() {
        let mut named = Named {
            images: HashSet::new(),
            networks: HashSet::new(),
            claims: HashMap::new(),
        };
        let mut a = app("web");
        // Nothing to report while all is well.
        named.images.insert("web".into());
        assert!(resolved_status(&a, &missing(&a, &named)).is_none());
        named.images.clear();
        let gone = missing(&a, &named);
        assert_eq!(gone, ["Image web"]);
        let status = resolved_status(&a, &gone).unwrap();
        let c = conditions::find(&status.conditions, "ReferencesResolved").unwrap();
        assert_eq!(
            (c.status.as_str(), c.message.as_str()),
            ("False", "missing: Image web")
        );
        a.status = Some(status);
        assert!(resolved_status(&a, &gone).is_none());
        let cleared = resolved_status(&a, &[]).unwrap();
        let c = conditions::find(&cleared.conditions, "ReferencesResolved").unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Resolved"));
    }
}
