//! CustomResourceDefinition (a native kind): the EVE group is reserved for the EVE kinds.

use eve_model::{GROUP, KINDS};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::Refusal;
use super::check::Check;
use super::table::Rules;

impl Rules for CustomResourceDefinition {
    async fn validate(_: &mut Check<'_>, object: &Self, _: Option<&Self>) -> Result<(), Refusal> {
        if object.spec.group != GROUP {
            return Ok(());
        }
        let name = object.metadata.name.as_deref().unwrap_or("");
        if KINDS
            .iter()
            .any(|k| format!("{}.{GROUP}", k.plural) == name)
        {
            return Ok(());
        }
        Err(Refusal::Forbidden(format!(
            "the API group {GROUP} is reserved for the EVE kinds Adamant defines; define {name} in a group of your own domain (like ctrl.example.com)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::cases;

    #[test]
    fn the_eve_group_is_reserved() {
        let crd = |name: &str, group: &str, plural: &str| {
            format!(
                "kind: CustomResourceDefinition\nmetadata: {{name: {name}}}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: {plural}, kind: Gadget}}\n  versions: [{{name: v1, served: true, storage: true}}]"
            )
        };
        cases(
            &[],
            &[
                (
                    crd("gadgets.eve.lfedge.org", "eve.lfedge.org", "gadgets"),
                    expect![
                        "forbidden: the API group eve.lfedge.org is reserved for the EVE kinds Adamant defines; define gadgets.eve.lfedge.org in a group of your own domain (like ctrl.example.com)"
                    ],
                ),
                (
                    crd("devices.eve.lfedge.org", "eve.lfedge.org", "devices"),
                    expect!["accepted"],
                ),
                (
                    crd("gadgets.ctrl.example.com", "ctrl.example.com", "gadgets"),
                    expect!["accepted"],
                ),
            ],
        );
    }
}
