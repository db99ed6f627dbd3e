//! ApplicationDeployment and ApplicationDaemonSet: a selector that is not empty and matches the
//! template's labels, no `nodeName` in the template, its networks exist, and the template's
//! spec passes the Application's rules.

use apimachinery::FieldError;
use eve_model::{
    ApplicationDaemonSet, ApplicationDeployment, ApplicationTemplate, TemplateMetadata, quantity,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::Refusal;
use super::application;
use super::check::Check;
use super::table::Rules;

/// The two workload kinds share their rules: both have `spec.selector` and `spec.template`.
macro_rules! workload_kind {
    ($($kind:ty),*) => {$(
        impl Rules for $kind {
            fn normalize(object: &mut Value) -> Vec<quantity::Invalid> {
                quantity::normalize_template(object)
            }

            async fn validate(
                check: &mut Check<'_>,
                object: &Self,
                _: Option<&Self>,
            ) -> Result<(), Refusal> {
                workload(check, &object.spec.selector, &object.spec.template).await
            }
        }
    )*};
}

workload_kind!(ApplicationDeployment, ApplicationDaemonSet);

async fn workload(
    check: &mut Check<'_>,
    selector: &LabelSelector,
    template: &ApplicationTemplate,
) -> Result<(), Refusal> {
    let none = TemplateMetadata::default();
    let metadata = template.metadata.as_ref().unwrap_or(&none);
    if crate::labels::is_empty(selector) {
        check.errors.push(FieldError::invalid(
            "spec.selector",
            "{}",
            "empty selector is invalid for a deployment or daemon set",
        ));
    } else if !crate::labels::matches(selector, &metadata.labels) {
        check.errors.push(FieldError::invalid(
            "spec.template.metadata.labels",
            format!("{:?}", metadata.labels),
            "`selector` does not match template `labels`",
        ));
    }
    if template
        .spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty())
    {
        check.errors.push(FieldError::forbidden(
            "spec.template.spec.nodeName",
            "the controller binds each application; select devices with nodeSelector or affinity",
        ));
    }
    check
        .networks("spec.template.metadata.annotations", &metadata.annotations)
        .await?;
    application::spec(check, &template.spec, "spec.template.spec", None).await
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::cases;

    #[test]
    fn deployments_and_daemon_sets() {
        let template = "template:\n    metadata: {labels: {app: x}, annotations: {k8s.v1.cni.cncf.io/networks: nonet}}\n    spec: {nodeName: d1, containers: [{name: a, image: ubuntu, resources: {limits: {memory: 0.5Gi}}}]}";
        cases(
            &["kind: Image\nmetadata: {name: ubuntu}\nspec: {ref: ubuntu.qcow2, storageClass: eve-images}"],
            &[
                (
                    "kind: ApplicationDeployment\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec: {containers: [{name: a, image: ubuntu}]}".into(),
                    expect!["accepted"],
                ),
                (
                    format!("kind: ApplicationDeployment\nspec:\n  selector: {{matchLabels: {{app: other}}}}\n  {template}"),
                    expect![[r#"
                        patch: [{"op":"replace","path":"/spec/template/spec/containers/0/resources/limits/memory","value":"512Mi"}]
                        invalid:
                          spec.template.metadata.labels: Invalid value: "{\"app\": \"x\"}": `selector` does not match template `labels`
                          spec.template.spec.nodeName: Forbidden: the controller binds each application; select devices with nodeSelector or affinity
                          spec.template.metadata.annotations[k8s.v1.cni.cncf.io/networks]: Not found: "nonet": DeviceNetwork ns/nonet does not exist; create it first"#]],
                ),
                (
                    format!("kind: ApplicationDaemonSet\nspec:\n  selector: {{}}\n  {template}"),
                    expect![[r#"
                        patch: [{"op":"replace","path":"/spec/template/spec/containers/0/resources/limits/memory","value":"512Mi"}]
                        invalid:
                          spec.selector: Invalid value: "{}": empty selector is invalid for a deployment or daemon set
                          spec.template.spec.nodeName: Forbidden: the controller binds each application; select devices with nodeSelector or affinity
                          spec.template.metadata.annotations[k8s.v1.cni.cncf.io/networks]: Not found: "nonet": DeviceNetwork ns/nonet does not exist; create it first"#]],
                ),
                (
                    "kind: ApplicationDaemonSet\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec: {containers: [{name: a, image: ubuntu, resources: {requests: {cpu: -1}}}]}".into(),
                    expect![[r#"
                        invalid:
                          spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0"#]],
                ),
            ],
        );
    }
}
