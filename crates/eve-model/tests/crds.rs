//! The generated CustomResourceDefinitions: every kind in the `eve` category with a status, and
//! a description on every field (what `kubectl explain` shows).

use serde_json::Value;

fn undescribed(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, field) in properties {
            let at = format!("{path}.{name}");
            if field["description"].as_str().is_none_or(str::is_empty)
                && !matches!(name.as_str(), "apiVersion" | "kind" | "metadata")
            {
                out.push(at.clone());
            }
            undescribed(field, &at, out);
        }
    }
    if schema["items"].is_object() {
        undescribed(&schema["items"], &format!("{path}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        undescribed(&schema["additionalProperties"], &format!("{path}{{}}"), out);
    }
}

#[test]
fn every_kind_is_in_the_category_and_every_field_is_described() {
    let crds: Vec<Value> = eve_model::crds()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(crds.len(), eve_model::KINDS.len());
    for (crd, kind) in crds.iter().zip(eve_model::KINDS.iter()) {
        let names = &crd["spec"]["names"];
        assert_eq!(names["kind"], kind.kind);
        assert_eq!(names["plural"], kind.plural);
        assert_eq!(
            names["categories"],
            serde_json::json!(["eve"]),
            "{}",
            kind.kind
        );
        assert!(
            names["shortNames"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
        let version = &crd["spec"]["versions"][0];
        let mut missing = Vec::new();
        undescribed(
            &version["schema"]["openAPIV3Schema"],
            kind.kind,
            &mut missing,
        );
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
        if !matches!(
            kind.kind,
            "OnboardCertificate"
                | "OnboardCertificateAuthority"
                | "DeviceCertificateAuthority"
                | "NetworkConfig"
        ) {
            assert!(
                version["subresources"]["status"].is_object(),
                "{}",
                kind.kind
            );
        }
    }
    let deployment = &crds[8]["spec"]["versions"][0]["subresources"]["scale"];
    assert_eq!(deployment["specReplicasPath"], ".spec.replicas");
}
