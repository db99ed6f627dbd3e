//! Image: its StorageClass is an EVE data store.

use eve_model::Image;

use super::Refusal;
use super::check::Check;
use super::table::Rules;

impl Rules for Image {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        check
            .eve_storage_class("spec.storageClass", &object.spec.storage_class)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::cases;

    #[test]
    fn images() {
        cases(
            &[
                "kind: StorageClass\nmetadata: {name: eve-images}\nprovisioner: eve\nparameters: {type: https, URL: 'https://images.example.com'}",
                "kind: StorageClass\nmetadata: {name: local}\nprovisioner: rancher.io/local-path",
            ],
            &[
                (
                    "kind: Image\nspec: {ref: ubuntu.qcow2, storageClass: eve-images}".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: Image\nspec: {ref: ubuntu.qcow2, storageClass: local}".into(),
                    expect![[r#"
                        invalid:
                          spec.storageClass: Invalid value: "local": StorageClass local has provisioner "rancher.io/local-path"; EVE data stores need provisioner "eve""#]],
                ),
                (
                    "kind: Image\nspec: {ref: ubuntu.qcow2, storageClass: nowhere}".into(),
                    expect![[r#"
                        invalid:
                          spec.storageClass: Not found: "nowhere": StorageClass nowhere does not exist; create it (provisioner: eve) first"#]],
                ),
                (
                    "kind: Image\nspec: {ref: ubuntu.qcow2}".into(),
                    expect![[r#"
                        invalid:
                          <nil>: Invalid value: "": the object does not read as Image: missing field `storageClass`"#]],
                ),
            ],
        );
    }
}
