//! ApplicationDeployment and ApplicationDaemonSet: Deployment and DaemonSet semantics over
//! devices, with an Application as the template.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Condition;
use crate::application::ApplicationSpec;

/// Replicas of an application spread over the eligible devices.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "ApplicationDeployment",
    namespaced,
    status = "ApplicationDeploymentStatus",
    shortname = "appdeploy",
    shortname = "adeploy",
    category = "eve",
    doc = "A Deployment of Applications: spec.replicas Applications made from spec.template, each bound to a different eligible Device where possible, replaced when their device goes away or stops matching, and rolled to a new template within maxUnavailable and maxSurge.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.readyText",
        description = "Available of wanted replicas"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.template.spec.containers[0].image",
        priority = 1
    ),
    printcolumn(
        name = "Selector",
        type_ = "string",
        json_path = ".status.selector",
        priority = 1
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDeploymentSpec {
    /// How many Applications to run (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Which Applications are this deployment's; must match the template's labels.
    pub selector: LabelSelector,
    /// The Application each replica is made from.
    pub template: ApplicationTemplate,
    /// How a new template replaces the old: `RollingUpdate` (the default) or `Recreate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// How many past templates to remember in `status.history` (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: Option<i32>,
    /// Seconds an Application must be running before it counts as available (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// Whether changes to the template wait (the rollout is paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// The Application of a deployment or daemon set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct ApplicationTemplate {
    /// Labels and annotations of the Applications (the networks annotation among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// The Applications' spec.
    pub spec: ApplicationSpec,
}

/// Labels and annotations for made objects.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct TemplateMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// How a deployment replaces Applications.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStrategy {
    /// `RollingUpdate` or `Recreate` (all old Applications go before new ones come).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["RollingUpdate", "Recreate"]))]
    pub type_: Option<String>,
    /// The limits of a rolling update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

/// The limits of a rolling update.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdate {
    /// How many of the wanted Applications may be unavailable during the update: a number or a
    /// percentage (rounded down). Default 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// How many Applications may exist beyond the wanted number: a number or a percentage
    /// (rounded up). Default 25% (0 for a daemon set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
}

/// What the controller reports of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDeploymentStatus {
    /// The generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Applications that exist (not being deleted).
    #[serde(default)]
    pub replicas: i32,
    /// Applications made from the current template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Applications bound to a device.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Applications running on their device for at least minReadySeconds.
    #[serde(default)]
    pub available_replicas: i32,
    /// Wanted replicas that are not available.
    #[serde(default)]
    pub unavailable_replicas: i32,
    /// `available/wanted`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_text: Option<String>,
    /// The selector as a string (for the scale subresource and `kubectl scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The current template's revision number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Past and current templates, newest last (at most revisionHistoryLimit + 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Revision>,
    /// `Available`, `Progressing`, `ReplicaFailure`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A template that was rolled out.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Its number, counting from 1.
    pub revision: i64,
    /// The hash of the template, the value of the `eve.lfedge.org/template-hash` label of its
    /// Applications.
    pub template_hash: String,
    /// When it was first rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Time>,
    /// The deployment's `kubernetes.io/change-cause` annotation at the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_cause: Option<String>,
}

/// One Application on every eligible device.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "eve.lfedge.org",
    version = "v1beta1",
    kind = "ApplicationDaemonSet",
    namespaced,
    status = "ApplicationDaemonSetStatus",
    shortname = "appds",
    shortname = "ads",
    category = "eve",
    doc = "A DaemonSet of Applications: one Application made from spec.template on every Device of the namespace that is eligible for it, following new devices and label changes, and rolled to a new template within maxUnavailable.",
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desiredNumberScheduled"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.currentNumberScheduled"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedNumberScheduled"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.numberAvailable"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.template.spec.containers[0].image",
        priority = 1
    )
)]
#[kube(derive = "Default", derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDaemonSetSpec {
    /// Which Applications are this daemon set's; must match the template's labels.
    pub selector: LabelSelector,
    /// The Application made for each device.
    pub template: ApplicationTemplate,
    /// How a new template replaces the old: `RollingUpdate` (the default) or `OnDelete` (only
    /// when you delete an old Application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<DaemonSetUpdateStrategy>,
    /// How many past templates to remember in `status.history` (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: Option<i32>,
    /// Seconds an Application must be running before it counts as available (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
}

/// How a daemon set replaces Applications.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetUpdateStrategy {
    /// `RollingUpdate` or `OnDelete`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["RollingUpdate", "OnDelete"]))]
    pub type_: Option<String>,
    /// The limits of a rolling update (maxUnavailable, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

/// What the controller reports of a daemon set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDaemonSetStatus {
    /// The generation the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Devices that should run the application.
    #[serde(default)]
    pub desired_number_scheduled: i32,
    /// Eligible devices that have an Application of this daemon set.
    #[serde(default)]
    pub current_number_scheduled: i32,
    /// Devices whose Application is made from the current template.
    #[serde(default)]
    pub updated_number_scheduled: i32,
    /// Devices whose Application is available.
    #[serde(default)]
    pub number_available: i32,
    /// Eligible devices whose Application is missing or not available.
    #[serde(default)]
    pub number_unavailable: i32,
    /// Devices that run an Application of this daemon set but should not.
    #[serde(default)]
    pub number_misscheduled: i32,
    /// The current template's revision number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Past and current templates, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Revision>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
