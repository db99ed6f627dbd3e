//! The quantities of the EVE kinds (`apimachinery::quantity` parses them): an Application's
//! resources and a Device's capacity rewritten to their canonical form before the schema is
//! checked, and read as thousandths.

pub use apimachinery::quantity::{Quantity, QuantityError};
use serde_json::Value;

/// A Kubernetes `Quantity` field's value in thousandths (millicores for cpu), saturating;
/// `None` when it is not a quantity.
pub fn milli_of(
    quantity: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Option<i128> {
    Quantity::parse(&quantity.0).ok().map(|q| q.milli())
}

/// The canonical text of a quantity given as a JSON string or number.
pub fn canonical(value: &Value) -> Result<String, QuantityError> {
    match value {
        Value::String(s) => Ok(Quantity::parse(s)?.canonical()),
        Value::Number(n) => Ok(Quantity::parse(&n.to_string())?.canonical()),
        _ => Err(QuantityError::Syntax),
    }
}

/// A quantity that could not be normalized: where, what, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The field path, `spec.containers[0].resources.requests[cpu]`.
    pub path: String,
    /// The value as given.
    pub value: Value,
    /// Why it is not a quantity.
    pub reason: String,
}

/// Rewrites every quantity of an Application (its containers' resources, its ephemeral volumes'
/// claims) to its canonical string (numbers become strings), and reports those that are not
/// quantities or are negative. Works on the JSON as written, before the schema is checked.
pub fn normalize_application(object: &mut Value) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    if let Some(spec) = object.get_mut("spec") {
        application_spec(spec, "spec", &mut invalid);
    }
    invalid
}

/// [`normalize_application`] for the template of an ApplicationDeployment or
/// ApplicationDaemonSet (`spec.template.spec`).
pub fn normalize_template(object: &mut Value) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        application_spec(spec, "spec.template.spec", &mut invalid);
    }
    invalid
}

/// [`normalize_application`] for a Device's `status.capacity` and `status.allocatable`.
pub fn normalize_device(object: &mut Value) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    for list in ["capacity", "allocatable"] {
        if let Some(map) = object.pointer_mut(&format!("/status/{list}")) {
            quantities(map, &format!("status.{list}"), &mut invalid);
        }
    }
    invalid
}

fn application_spec(spec: &mut Value, path: &str, invalid: &mut Vec<Invalid>) {
    if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for (i, container) in containers.iter_mut().enumerate() {
            for list in ["requests", "limits"] {
                if let Some(map) = container.pointer_mut(&format!("/resources/{list}")) {
                    quantities(
                        map,
                        &format!("{path}.containers[{i}].resources.{list}"),
                        invalid,
                    );
                }
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for (i, volume) in volumes.iter_mut().enumerate() {
            for list in ["requests", "limits"] {
                let pointer = format!("/ephemeral/volumeClaimTemplate/spec/resources/{list}");
                if let Some(map) = volume.pointer_mut(&pointer) {
                    quantities(
                        map,
                        &format!(
                            "{path}.volumes[{i}].ephemeral.volumeClaimTemplate.spec.resources.{list}"
                        ),
                        invalid,
                    );
                }
            }
        }
    }
}

fn quantities(map: &mut Value, path: &str, invalid: &mut Vec<Invalid>) {
    let Some(map) = map.as_object_mut() else {
        return;
    };
    for (name, value) in map.iter_mut() {
        let path = format!("{path}[{name}]");
        match value {
            Value::String(_) | Value::Number(_) => {}
            _ => continue, // the schema reports the wrong type
        }
        match canonical(value) {
            Ok(text) if text.starts_with('-') => invalid.push(Invalid {
                path,
                value: value.clone(),
                reason: "must be greater than or equal to 0".into(),
            }),
            Ok(text) => *value = Value::String(text),
            Err(e) => invalid.push(Invalid {
                path,
                value: value.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_application_resources() {
        let mut app = serde_json::json!({"spec": {"containers": [
            {"name": "a", "image": "i", "resources": {"requests": {"cpu": 1.0, "memory": "256M", "storage": 0.5}}},
            {"name": "b", "image": "i", "resources": {"limits": {"cpu": "x", "memory": "-1"}}}
        ]}});
        let invalid = normalize_application(&mut app);
        assert_eq!(
            app["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert_eq!(
            app["spec"]["containers"][0]["resources"]["requests"]["storage"],
            "500m"
        );
        let paths: Vec<_> = invalid.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.containers[1].resources.limits[cpu]",
                "spec.containers[1].resources.limits[memory]"
            ]
        );
    }
}
