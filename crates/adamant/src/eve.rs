//! The joints between the two halves: the in-process Kubernetes client (no socket), the EVE
//! admission rules as an API-server admission plug-in, and installing the CRDs.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use apiserver::ApiServer;
use apiserver::admission::{self, Operation};
use apiserver::auth::User;
use eve_controllers::admission::{Admission, Refusal, Review};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use registry::ApiError;
use serde_json::Value;
use tokio::sync::watch;

/// The user the in-process controllers act as.
pub(crate) fn controller_user() -> User {
    User {
        name: "system:adamant-controller".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..User::default()
    }
}

/// A Kubernetes client served by `server` in process.
pub(crate) fn local_client(
    server: Arc<ApiServer>,
    shutdown: watch::Receiver<bool>,
) -> kube::Client {
    let user = controller_user();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let server = server.clone();
        let user = user.clone();
        let shutdown = shutdown.clone();
        async move { Ok::<_, std::convert::Infallible>(server.call(user, request, shutdown).await) }
    });
    kube::Client::new(service, "default")
}

/// The EVE admission rules as a plug-in of the API server's chain; inactive until
/// [`EveAdmission::activate`] (while the server starts).
#[derive(Default, Clone)]
pub(crate) struct EveAdmission {
    rules: Arc<OnceLock<Arc<Admission>>>,
}

impl EveAdmission {
    /// Turns the rules on.
    pub(crate) fn activate(&self, rules: Admission) {
        let _ = self.rules.set(Arc::new(rules));
    }
}

fn review(request: &admission::Request) -> Review {
    Review {
        operation: match request.operation {
            Operation::Create => eve_controllers::admission::Operation::Create,
            // Deletions never reach the EVE rules (see the plug-in below).
            Operation::Update | Operation::Delete => eve_controllers::admission::Operation::Update,
        },
        group: request.group.clone(),
        resource: request.resource.clone(),
        subresource: request.subresource.clone(),
        kind: request.kind.clone(),
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        dry_run: request.dry_run,
    }
}

fn refused(request: &admission::Request, object: &Value, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Invalid(causes) => ApiError::Invalid {
            kind: if request.group.is_empty() {
                request.kind.clone()
            } else {
                format!("{}.{}", request.kind, request.group)
            },
            name: object["metadata"]["name"]
                .as_str()
                .unwrap_or(&request.name)
                .to_string(),
            causes,
        },
        Refusal::Forbidden(message) => ApiError::Forbidden(message),
        Refusal::Unavailable(message) => ApiError::Unavailable(message),
    }
}

#[async_trait::async_trait]
impl admission::Plugin for EveAdmission {
    fn name(&self) -> &str {
        "EVE"
    }

    async fn mutate(
        &self,
        request: &admission::Request,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let Some(rules) = self.rules.get() else {
            return Ok(Vec::new());
        };
        if request.operation == Operation::Delete {
            return Ok(Vec::new());
        }
        let snapshot = object.clone();
        rules
            .mutate(&review(request), object)
            .map_err(|r| refused(request, &snapshot, r))
    }

    async fn validate(
        &self,
        request: &admission::Request,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let Some(rules) = self.rules.get() else {
            return Ok(Vec::new());
        };
        if request.operation == Operation::Delete {
            return Ok(Vec::new());
        }
        rules
            .validate(&review(request), object, old)
            .await
            .map_err(|r| refused(request, object, r))
    }
}

/// Installs the EVE CRDs, or upgrades those a binary with an older [`eve_model::CRD_REVISION`]
/// installed. Returns once every CRD is established.
pub(crate) async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let revision = |crd: &CustomResourceDefinition| {
        crd.annotations()
            .get(eve_model::CRD_REVISION_ANNOTATION)
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap_or(0)
    };
    for crd in eve_model::crds() {
        let name = crd.name_any();
        match api
            .get_opt(&name)
            .await
            .with_context(|| format!("cannot read CRD {name}"))?
        {
            None => {
                api.create(&PostParams::default(), &crd)
                    .await
                    .with_context(|| format!("cannot install CRD {name}"))?;
                tracing::info!(crd = %name, "installed");
            }
            Some(installed) if revision(&installed) < eve_model::CRD_REVISION => {
                let mut crd = crd.clone();
                crd.metadata.resource_version = installed.resource_version();
                api.replace(&name, &PostParams::default(), &crd)
                    .await
                    .with_context(|| format!("cannot upgrade CRD {name}"))?;
                tracing::info!(crd = %name, from = revision(&installed), to = eve_model::CRD_REVISION, "upgraded");
            }
            Some(installed) if revision(&installed) > eve_model::CRD_REVISION => {
                tracing::warn!(
                    crd = %name,
                    installed = revision(&installed),
                    ours = eve_model::CRD_REVISION,
                    "a newer Adamant installed this CRD; leaving it as it is"
                );
            }
            Some(_) => {}
        }
    }
    let established = |crd: &CustomResourceDefinition| {
        crd.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    for crd in eve_model::crds() {
        let name = crd.name_any();
        loop {
            if api.get_opt(&name).await?.as_ref().is_some_and(established) {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "CRD {name} was not established within a minute"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// The CRDs and ClusterRoles (the EVE roles included), then what `adamant controller` runs as
/// in cluster mode (`roles::controller_access`), as a YAML stream.
pub(crate) fn crds_yaml() -> anyhow::Result<String> {
    let mut out = String::new();
    for document in eve_model::crds_yaml() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&document)?);
    }
    for role in crate::roles::eve_roles() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&role)?);
    }
    for document in crate::roles::controller_access()? {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&document)?);
    }
    Ok(out)
}
