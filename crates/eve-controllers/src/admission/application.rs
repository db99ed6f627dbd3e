//! Application: its binding does not change; its networks, Device, Images, claims and
//! ephemeral volumes' StorageClasses exist; names of containers and volumes are unique and
//! mounts name a volume. [`spec`] is shared with the templates of deployments and daemon sets.

use std::collections::HashSet;

use apimachinery::FieldError;
use eve_model::{Application, ApplicationSpec, Device, Image, annotations, quantity};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use kube::ResourceExt;
use kube::api::Api;
use serde_json::Value;

use super::Refusal;
use super::check::Check;
use super::references::unavailable;
use super::table::Rules;

impl Rules for Application {
    const COMPARES_WITH_OLD: bool = true;

    fn normalize(object: &mut Value) -> Vec<quantity::Invalid> {
        quantity::normalize_application(object)
    }

    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        old: Option<&Self>,
    ) -> Result<(), Refusal> {
        let node = object.spec.node_name.as_deref().filter(|n| !n.is_empty());
        if let Some(before) = old
            .and_then(|o| o.spec.node_name.as_deref())
            .filter(|n| !n.is_empty())
            && Some(before) != node
        {
            check.errors.push(FieldError::forbidden(
                "spec.nodeName",
                format!(
                    "the application is bound to Device {before}; the binding cannot change (delete the application to move it)"
                ),
            ));
        }
        check
            .networks("metadata.annotations", object.annotations())
            .await?;
        if let Some(device) = node {
            // Whether the Device exists, or, for the adapters it asks for, what it says.
            let wanted = eve_model::device_model::wanted(object.annotations());
            if wanted.is_empty() {
                check.exists::<Device>("spec.nodeName", device).await?;
            } else if let Some(found) = check.fetch::<Device>("spec.nodeName", device).await? {
                adapters(check, wanted, &found).await?;
            }
        }
        spec(check, &object.spec, "spec", node).await
    }
}

/// The adapters an Application bound to `device` asks for (`wanted`) are assignment groups of
/// the device's model.
async fn adapters(
    check: &mut Check<'_>,
    wanted: Vec<String>,
    device: &Device,
) -> Result<(), Refusal> {
    let path = format!("metadata.annotations[{}]", annotations::ADAPTERS);
    let Some(model) = device.annotations().get(annotations::MODEL) else {
        check.errors.push(FieldError::invalid(
            &path,
            wanted.join(","),
            format!(
                "Device {} names no device model (annotation {}): it has no adapters to give",
                device.name_any(),
                annotations::MODEL
            ),
        ));
        return Ok(());
    };
    let api: Api<ConfigMap> = Api::namespaced(check.admission.client.clone(), check.namespace());
    let groups = api
        .get_opt(eve_model::device_model::MODELS)
        .await
        .map_err(unavailable)?
        .and_then(|m| eve_model::device_model::read(&m.data.unwrap_or_default(), model).ok())
        .map(|entries| eve_model::device_model::groups(&entries))
        .unwrap_or_default();
    for group in wanted {
        if !groups.contains_key(&group) {
            check.errors.push(FieldError::invalid(
                &path,
                &group,
                format!(
                    "Device {}'s model {model} has no assignment group {group} (it has: {}): name one of those",
                    device.name_any(),
                    groups.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The rules of an application's spec at `path`, bound to the Device `node` if any.
pub(super) async fn spec(
    check: &mut Check<'_>,
    spec: &ApplicationSpec,
    path: &str,
    node: Option<&str>,
) -> Result<(), Refusal> {
    check.affinity(spec.affinity.as_ref(), &format!("{path}.affinity"));
    let mut names = HashSet::new();
    for (i, container) in spec.containers.iter().enumerate() {
        if !names.insert(container.name.as_str()) {
            check.errors.push(FieldError::duplicate(
                format!("{path}.containers[{i}].name"),
                &container.name,
            ));
        }
        check
            .exists::<Image>(&format!("{path}.containers[{i}].image"), &container.image)
            .await?;
        if container.working_dir.is_some() {
            check.warnings.push(format!(
                "{path}.containers[{i}].workingDir: not sent: EVE has no working directory for an application; the image's is used"
            ));
        }
        for (m, mount) in container.volume_mounts.iter().enumerate() {
            if mount.read_only == Some(true) {
                check.warnings.push(format!(
                    "{path}.containers[{i}].volumeMounts[{m}].readOnly: not sent: EVE makes a volume read-only, not a mount; give the claim accessModes [ReadOnlyMany]"
                ));
            }
        }
    }
    let mut volumes = HashSet::new();
    for (i, volume) in spec.volumes.iter().enumerate() {
        let at = format!("{path}.volumes[{i}]");
        if !volumes.insert(volume.name.as_str()) {
            check
                .errors
                .push(FieldError::duplicate(format!("{at}.name"), &volume.name));
        }
        match (&volume.persistent_volume_claim, &volume.ephemeral) {
            (Some(claim), None) => {
                claimed(
                    check,
                    &format!("{at}.persistentVolumeClaim.claimName"),
                    &claim.claim_name,
                    node,
                )
                .await?;
            }
            (None, Some(ephemeral)) => {
                let class_path =
                    format!("{at}.ephemeral.volumeClaimTemplate.spec.storageClassName");
                match &ephemeral.volume_claim_template.spec.storage_class_name {
                    Some(class) => {
                        check.eve_storage_class(&class_path, class).await?;
                    }
                    None => check.errors.push(FieldError::required(
                        class_path,
                        "an ephemeral volume names its StorageClass (provisioner: eve)",
                    )),
                }
            }
            (Some(_), Some(_)) => check.errors.push(FieldError::forbidden(
                at,
                "may not specify more than 1 volume type (persistentVolumeClaim, ephemeral)",
            )),
            (None, None) => check.errors.push(FieldError::required(
                at,
                "must specify a volume type: persistentVolumeClaim or ephemeral",
            )),
        }
    }
    for (i, container) in spec.containers.iter().enumerate() {
        let lists: [(&str, Vec<&str>); 2] = [
            (
                "volumeMounts",
                container
                    .volume_mounts
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect(),
            ),
            (
                "volumeDevices",
                container
                    .volume_devices
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect(),
            ),
        ];
        for (list, names) in lists {
            for (j, name) in names.into_iter().enumerate() {
                if !volumes.contains(name) {
                    check.errors.push(FieldError::not_found(
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

/// The PersistentVolumeClaim `claim` (at `path`) exists and, if bound to a Device, to `node`.
async fn claimed(
    check: &mut Check<'_>,
    path: &str,
    claim: &str,
    node: Option<&str>,
) -> Result<(), Refusal> {
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(check.admission.client.clone(), check.namespace());
    match api.get_opt(claim).await.map_err(unavailable)? {
        None => check.missing.push(FieldError::not_found(
            path,
            claim,
            format!(
                "PersistentVolumeClaim {}/{claim} does not exist; create it first",
                check.namespace()
            ),
        )),
        Some(pvc) => {
            if let (Some(bound), Some(node)) =
                (pvc.annotations().get(annotations::BOUND_DEVICE), node)
                && bound != node
            {
                check.errors.push(FieldError::forbidden(
                    path,
                    format!(
                        "PersistentVolumeClaim {claim} is bound to Device {bound}; an application on Device {node} cannot use it"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::{Harness, cases};

    const WORLD: &[&str] = &[
        "kind: Device\nmetadata: {name: d1}\nspec: {}",
        "kind: Device\nmetadata: {name: nuc1, annotations: {eve.lfedge.org/model: nuc}}\nspec: {}",
        "kind: ConfigMap\nmetadata: {name: adamant-device-models}\ndata:\n  nuc: '[{ptype: PhyIoUSB, phylabel: USB1, logicallabel: usb1, assigngrp: USB}]'",
        "kind: Device\nmetadata: {name: nuc1, annotations: {eve.lfedge.org/model: nuc}}\nspec: {}",
        "kind: ConfigMap\nmetadata: {name: nuc, labels: {eve.lfedge.org/device-model: ''}}\ndata:\n  physicalIO: '[{ptype: PhyIoUSB, phylabel: USB1, logicallabel: usb1, assigngrp: USB}]'",
        "kind: Image\nmetadata: {name: ubuntu}\nspec: {ref: ubuntu.qcow2, storageClass: eve-images}",
        "kind: DeviceNetwork\nmetadata: {name: lan}\nspec: {networkConfig: lan}",
        "kind: StorageClass\nmetadata: {name: eve-blank}\nprovisioner: eve\nparameters: {type: blank}",
        "kind: StorageClass\nmetadata: {name: local}\nprovisioner: rancher.io/local-path",
        "kind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {storageClassName: eve-blank}",
        "kind: PersistentVolumeClaim\nmetadata: {name: elsewhere, annotations: {eve.lfedge.org/bound-device: d2}}\nspec: {storageClassName: eve-blank}",
    ];

    #[test]
    fn applications() {
        cases(
            WORLD,
            &[
                (
                    "kind: Application\nmetadata: {annotations: {eve.lfedge.org/adapters: USB}}\nspec:\n  nodeName: nuc1\n  containers: [{name: a, image: ubuntu}]".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: Application\nmetadata: {annotations: {eve.lfedge.org/adapters: 'USB, GPU'}}\nspec:\n  nodeName: nuc1\n  containers: [{name: a, image: ubuntu}]".into(),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/adapters]: Invalid value: "GPU": Device nuc1's model nuc has no assignment group GPU (it has: USB): name one of those"#]],
                ),
                (
                    "kind: Application\nmetadata: {annotations: {eve.lfedge.org/adapters: USB}}\nspec:\n  nodeName: d1\n  containers: [{name: a, image: ubuntu}]".into(),
                    expect![[r#"
                        invalid:
                          metadata.annotations[eve.lfedge.org/adapters]: Invalid value: "USB": Device d1 names no device model (annotation eve.lfedge.org/model): it has no adapters to give"#]],
                ),
                (
                    "kind: Application\nmetadata: {annotations: {eve.lfedge.org/adapters: GPU}}\nspec:\n  containers: [{name: a, image: ubuntu}]".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: Application\nspec:\n  containers: [{name: a, image: ubuntu, workingDir: /srv, volumeMounts: [{name: v, mountPath: /v, readOnly: true}]}]\n  volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]".into(),
                    expect![[r#"
                        accepted
                        warning: spec.containers[0].workingDir: not sent: EVE has no working directory for an application; the image's is used
                        warning: spec.containers[0].volumeMounts[0].readOnly: not sent: EVE makes a volume read-only, not a mount; give the claim accessModes [ReadOnlyMany]"#]],
                ),
                (
                    "kind: Application\nmetadata: {annotations: {k8s.v1.cni.cncf.io/networks: lan}}\nspec:\n  nodeName: d1\n  containers: [{name: a, image: ubuntu, volumeMounts: [{name: v, mountPath: /v}]}]\n  volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: Application\nmetadata: {annotations: {k8s.v1.cni.cncf.io/networks: 'lan,nonet'}}\nspec:\n  nodeName: d9\n  containers: [{name: a, image: noimage}]".into(),
                    expect![[r#"
                        invalid:
                          metadata.annotations[k8s.v1.cni.cncf.io/networks]: Not found: "nonet": DeviceNetwork ns/nonet does not exist; create it first
                          spec.nodeName: Not found: "d9": Device ns/d9 does not exist; create it first
                          spec.containers[0].image: Not found: "noimage": Image ns/noimage does not exist; create it first"#]],
                ),
                (
                    "kind: Application\nspec:\n  containers: [{name: a, image: ubuntu, resources: {requests: {cpu: 1.0, memory: 256M}}}]".into(),
                    expect![[r#"
                        patch: [{"op":"replace","path":"/spec/containers/0/resources/requests/cpu","value":"1"}]
                        accepted"#]],
                ),
                (
                    "kind: Application\nspec:\n  containers: [{name: a, image: ubuntu, resources: {requests: {cpu: lots}}}]".into(),
                    expect![[r#"
                        invalid:
                          spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#]],
                ),
                (
                    "kind: Application\nspec:\n  containers:\n  - {name: a, image: ubuntu, volumeMounts: [{name: v, mountPath: /v}, {name: w, mountPath: /w}], volumeDevices: [{name: z, devicePath: /dev/sdb}]}\n  - {name: a, image: ubuntu}\n  volumes:\n  - {name: v, persistentVolumeClaim: {claimName: noclaim}}\n  - {name: v, ephemeral: {volumeClaimTemplate: {spec: {storageClassName: local}}}}\n  - {name: e, ephemeral: {volumeClaimTemplate: {spec: {}}}}\n  - {name: both, persistentVolumeClaim: {claimName: data}, ephemeral: {volumeClaimTemplate: {spec: {storageClassName: eve-blank}}}}\n  - {name: neither}".into(),
                    expect![[r#"
                        invalid:
                          spec.containers[1].name: Duplicate value: "a"
                          spec.volumes[1].name: Duplicate value: "v"
                          spec.volumes[1].ephemeral.volumeClaimTemplate.spec.storageClassName: Invalid value: "local": StorageClass local has provisioner "rancher.io/local-path"; EVE data stores need provisioner "eve"
                          spec.volumes[2].ephemeral.volumeClaimTemplate.spec.storageClassName: Required value: an ephemeral volume names its StorageClass (provisioner: eve)
                          spec.volumes[3]: Forbidden: may not specify more than 1 volume type (persistentVolumeClaim, ephemeral)
                          spec.volumes[4]: Required value: must specify a volume type: persistentVolumeClaim or ephemeral
                          spec.containers[0].volumeMounts[1].name: Not found: "w": no volume of that name in spec.volumes
                          spec.containers[0].volumeDevices[0].name: Not found: "z": no volume of that name in spec.volumes
                          spec.volumes[0].persistentVolumeClaim.claimName: Not found: "noclaim": PersistentVolumeClaim ns/noclaim does not exist; create it first"#]],
                ),
                (
                    "kind: Application\nspec:\n  nodeName: d1\n  containers: [{name: a, image: ubuntu}]\n  volumes: [{name: v, persistentVolumeClaim: {claimName: elsewhere}}]".into(),
                    expect![[r#"
                        invalid:
                          spec.volumes[0].persistentVolumeClaim.claimName: Forbidden: PersistentVolumeClaim elsewhere is bound to Device d2; an application on Device d1 cannot use it"#]],
                ),
                (
                    "kind: Application\nspec:\n  containers: [{name: a, image: ubuntu}]\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms: [{matchFields: [{key: metadata.labels, operator: In, values: [a]}]}]".into(),
                    expect![[r#"
                        invalid:
                          spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key: Invalid value: "": Invalid value: "metadata.labels": not a valid field selector key; supported: "metadata.name""#]],
                ),
            ],
        );
    }

    #[test]
    fn the_binding_does_not_change() {
        let harness = Harness::new(WORLD);
        let bound = |node: &str| {
            format!(
                "kind: Application\nspec:\n  nodeName: {node}\n  containers: [{{name: a, image: ubuntu}}]"
            )
        };
        let unbound = "kind: Application\nspec:\n  containers: [{name: a, image: ubuntu}]";
        let mut out = String::new();
        for (old, new, what) in [
            (unbound.to_owned(), bound("d1"), "bound"),
            (bound("d1"), bound("d1"), "unchanged"),
            (bound("d1"), bound("d2"), "moved"),
            (bound("d1"), unbound.to_owned(), "unbound"),
        ] {
            out += &format!("{what}: {}\n", harness.admit_with(&new, Some(&old), false));
        }
        expect![[r#"
            bound: accepted
            unchanged: accepted
            moved: invalid:
              spec.nodeName: Forbidden: the application is bound to Device d1; the binding cannot change (delete the application to move it)
              spec.nodeName: Not found: "d2": Device ns/d2 does not exist; create it first
            unbound: invalid:
              spec.nodeName: Forbidden: the application is bound to Device d1; the binding cannot change (delete the application to move it)
        "#]].assert_eq(&out);
    }
}
