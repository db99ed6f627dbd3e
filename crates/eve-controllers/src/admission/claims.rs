//! PersistentVolumeClaim (a native kind): an EVE claim is made from an Image that exists, in the
//! Image's data store, or is blank; the specification's other forms of the reference are read
//! with a warning.

use apimachinery::FieldError;
use eve_model::GROUP;
use eve_model::claims::{DataSource, data_source, is_eve_group};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;

use super::Refusal;
use super::check::Check;
use super::references::unavailable;
use super::table::Rules;

impl Rules for PersistentVolumeClaim {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        let Some(spec) = &object.spec else {
            return Ok(());
        };
        let class = spec.storage_class_name.as_deref();
        let (field, image) = match data_source(spec) {
            DataSource::Blank => return Ok(()),
            DataSource::Unknown {
                field,
                api_group,
                kind,
            } => {
                // Only EVE's claims: another provisioner's claim (cluster mode sends every
                // claim here) may name its own sources.
                let eve = is_eve_group(&api_group) || eve_class(check, class).await?;
                if eve {
                    let group = if api_group.is_empty() {
                        "the core group".to_owned()
                    } else {
                        format!("group {api_group}")
                    };
                    check.errors.push(FieldError::invalid(
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
                    check.warnings.push(format!(
                        "spec.{field}: read as the Image {name}: {}; the canonical form is {field}: {{apiGroup: {GROUP}, kind: Image, name: {name}}}",
                        forms.join(", ")
                    ));
                }
                (field, name)
            }
        };
        let namespace = check.namespace();
        let api: Api<eve_model::Image> = Api::namespaced(check.admission.client.clone(), namespace);
        match api.get_opt(&image).await.map_err(unavailable)? {
            None => check.missing.push(FieldError::not_found(
                format!("spec.{field}.name"),
                image.as_str(),
                format!(
                    "Image {namespace}/{image} does not exist; create it first (a volume from an Image is never made blank instead)"
                ),
            )),
            Some(found) => {
                let class = class.unwrap_or("");
                if class != found.spec.storage_class {
                    check.errors.push(FieldError::invalid(
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
}

/// Whether the StorageClass `class` is an EVE data store (`provisioner: eve`).
async fn eve_class(check: &Check<'_>, class: Option<&str>) -> Result<bool, Refusal> {
    let Some(class) = class.filter(|c| !c.is_empty()) else {
        return Ok(false);
    };
    let api: Api<StorageClass> = Api::all(check.admission.client.clone());
    Ok(api
        .get_opt(class)
        .await
        .map_err(unavailable)?
        .is_some_and(|c| c.provisioner == "eve"))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::cases;

    #[test]
    fn claims() {
        let claim = |spec: &str| format!("kind: PersistentVolumeClaim\nspec: {spec}");
        cases(
            &[
                "kind: Image\nmetadata: {name: golden}\nspec: {ref: golden.qcow2, storageClass: eve-image}",
                "kind: StorageClass\nmetadata: {name: eve-blank}\nprovisioner: eve\nparameters: {type: blank}",
                "kind: StorageClass\nmetadata: {name: local}\nprovisioner: rancher.io/local-path",
            ],
            &[
                (claim("{storageClassName: eve-blank}"), expect!["accepted"]),
                (
                    claim(
                        "{storageClassName: eve-image, dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: golden}}",
                    ),
                    expect!["accepted"],
                ),
                (
                    claim(
                        "{storageClassName: eve-blank, dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: golden}}",
                    ),
                    expect![[r#"
                        invalid:
                          spec.storageClassName: Invalid value: "eve-blank": must be "eve-image", the data store of Image golden (a volume's content comes from its Image's store)"#]],
                ),
                (
                    claim("{storageClassName: eve-image, dataSource: {kind: image, name: golden}}"),
                    expect![[r#"
                        accepted
                        warning: spec.dataSource: read as the Image golden: kind: image is written kind: Image, apiGroup: eve.lfedge.org is missing (a data source names its group in apiGroup; the specification's group: eve.lfedge.org/v1beta1 is not a field of it); the canonical form is dataSource: {apiGroup: eve.lfedge.org, kind: Image, name: golden}"#]],
                ),
                (
                    claim(
                        "{storageClassName: eve-image, dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: nothing}}",
                    ),
                    expect![[r#"
                        invalid:
                          spec.dataSourceRef.name: Not found: "nothing": Image ns/nothing does not exist; create it first (a volume from an Image is never made blank instead)"#]],
                ),
                (
                    claim(
                        "{storageClassName: eve-blank, dataSourceRef: {apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: s}}",
                    ),
                    expect![[r#"
                        invalid:
                          spec.dataSourceRef.kind: Invalid value: "VolumeSnapshot": an EVE volume is made from an Image (spec.dataSourceRef: {apiGroup: eve.lfedge.org, kind: Image, name: <image>}) or is blank (no dataSourceRef); VolumeSnapshot in group snapshot.storage.k8s.io is not a source EVE can fill a volume from"#]],
                ),
                (
                    claim(
                        "{storageClassName: local, dataSourceRef: {apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: s}}",
                    ),
                    expect!["accepted"],
                ),
            ],
        );
    }
}
