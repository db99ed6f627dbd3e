//! Device (readable certificates; its device certificate, and its serial with its onboarding
//! certificate, unique among Devices) and DeviceConfig (its Device exists).

use std::collections::HashSet;

use apimachinery::FieldError;
use eve_model::{Device, DeviceConfig, quantity};
use serde_json::Value;

use super::Refusal;
use super::check::Check;
use super::table::Rules;
use super::uniqueness::unique_keys;

impl Rules for Device {
    fn normalize(object: &mut Value) -> Vec<quantity::Invalid> {
        quantity::normalize_device(object)
    }

    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        unique(check, object);
        Ok(())
    }
}

fn unique(check: &mut Check<'_>, device: &Device) {
    if let Some(certificate) = &device.spec.certificate {
        check.certificate("spec.certificate", certificate, false);
    }
    if let Some(onboard) = &device.spec.onboard {
        check.certificate("spec.onboard", onboard, false);
    }
    if !check.errors.is_empty() {
        return;
    }
    let review = check.review;
    let me = format!("{}/{}", review.namespace, review.name);
    let mut conflicts: Vec<(&'static str, &'static str, String)> = Vec::new();
    for key in unique_keys(&device.spec) {
        if let Some(devices) = &check.admission.devices {
            for other in devices.keys.holders(&devices.store, &key) {
                let them = format!(
                    "{}/{}",
                    other.namespace.clone().unwrap_or_default(),
                    other.name
                );
                if them != me {
                    conflicts.push((key.path(), key.what(), them));
                }
            }
        }
        let recent = format!("{}:{:016x}", key.path(), key.short());
        if let Some(other) = check.admission.claim_recent(recent, &me, !review.dry_run) {
            conflicts.push((key.path(), key.what(), other));
        }
    }
    let mut seen = HashSet::new();
    let here = format!("{}/", review.namespace);
    for (path, what, other) in conflicts {
        if seen.insert((path, other.clone())) {
            // Another tenant's Device is not named to this one.
            let detail = match other.strip_prefix(&here) {
                Some(name) => {
                    format!("the {what} is already Device {name}'s; a device must be unique")
                }
                None => format!(
                    "the {what} is already claimed in another namespace; a device belongs to one namespace"
                ),
            };
            check.errors.push(FieldError::duplicate(path, detail));
        }
    }
}

impl Rules for DeviceConfig {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        check
            .exists::<Device>("spec.device", &object.spec.device)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::{Harness, cases, example_certificate};

    #[test]
    fn devices() {
        let device = example_certificate("device.pem");
        let onboard = example_certificate("onboard.pem");
        cases(
            &[],
            &[
                (
                    "kind: Device\nspec: {certificate: bm90IGEgY2VydGlmaWNhdGU=}".into(),
                    expect![[r#"
                        invalid:
                          spec.certificate: Invalid value: "bm90IGEgY2VydGlmaWNhdGU=": must be a base64-encoded PEM certificate: the decoded text has no -----BEGIN CERTIFICATE----- block"#]],
                ),
                (
                    "kind: Device\nspec: {onboard: aGVsbG8=, serial: s1}".into(),
                    expect![[r#"
                        invalid:
                          spec.onboard: Invalid value: "aGVsbG8=": must be a base64-encoded PEM certificate: the decoded text has no -----BEGIN CERTIFICATE----- block"#]],
                ),
                (
                    format!(
                        "kind: Device\nspec: {{certificate: {device}, serial: s1, onboard: {onboard}}}"
                    ),
                    expect!["accepted"],
                ),
                (
                    "kind: Device\nstatus: {capacity: {memory: 1.5, cpu: lots}}".into(),
                    expect![[r#"
                        invalid:
                          status.capacity[cpu]: Invalid value: "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#]],
                ),
            ],
        );
    }

    #[test]
    fn a_device_is_unique_and_a_dry_run_claims_nothing() {
        let device = example_certificate("device.pem");
        let onboard = example_certificate("onboard.pem");
        let harness = Harness::new(&[]);
        let named = |name: &str, spec: &str| {
            format!("kind: Device\nmetadata: {{name: {name}}}\nspec: {spec}")
        };
        let by_certificate = format!("{{certificate: {device}}}");
        let by_serial = format!("{{serial: s1, onboard: {onboard}}}");
        let mut out = String::new();
        for (name, spec, dry_run) in [
            ("dry", &by_certificate, true),
            ("a", &by_certificate, false),
            ("a", &by_certificate, false),
            ("b", &by_certificate, true),
            ("c", &by_serial, false),
            ("d", &by_serial, false),
        ] {
            out += &format!(
                "{name} (dry run {dry_run}): {}\n",
                harness.admit_with(&named(name, spec), None, dry_run)
            );
        }
        expect![[r#"
            dry (dry run true): accepted
            a (dry run false): accepted
            a (dry run false): accepted
            b (dry run true): invalid:
              spec.certificate: Duplicate value: "the device certificate is already Device a's; a device must be unique"
            c (dry run false): accepted
            d (dry run false): invalid:
              spec.serial: Duplicate value: "the serial and onboarding certificate is already Device c's; a device must be unique"
        "#]].assert_eq(&out);
    }

    #[test]
    fn device_configs() {
        cases(
            &["kind: Device\nmetadata: {name: d1}\nspec: {}"],
            &[
                (
                    "kind: DeviceConfig\nspec: {device: d1}".into(),
                    expect!["accepted"],
                ),
                (
                    "kind: DeviceConfig\nspec: {device: d2}".into(),
                    expect![[r#"
                        invalid:
                          spec.device: Not found: "d2": Device ns/d2 does not exist; create it first"#]],
                ),
            ],
        );
    }
}
