//! The `scale` subresource: an `autoscaling/v1` Scale read from and written to the paths a
//! CustomResourceDefinition names.

use apimachinery::FieldError;
use registry::ApiError;
use serde_json::{Value, json};

use super::resource::Call;
use super::respond::{Outcome, json_response};
use crate::admission::Operation;
use crate::table;

impl Call {
    pub(crate) fn scale_paths(&self) -> &crate::catalog::ScalePaths {
        self.kind.scale.as_ref().expect("checked before")
    }
    pub(crate) fn scale_of(&self, object: &Value) -> Result<Value, (ApiError, Vec<String>)> {
        let paths = self.scale_paths();
        let first = |path: &str| table::jsonpath(object, path).into_iter().next();
        let mut scale = json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": object["metadata"]["name"],
                "uid": object["metadata"]["uid"],
                "resourceVersion": object["metadata"]["resourceVersion"],
                "creationTimestamp": object["metadata"]["creationTimestamp"],
            },
            "spec": {"replicas": first(&paths.spec_replicas).unwrap_or(json!(0))},
            "status": {"replicas": first(&paths.status_replicas).unwrap_or(json!(0))},
        });
        if self.kind.namespaced {
            scale["metadata"]["namespace"] = object["metadata"]["namespace"].clone();
        }
        if let Some(selector) = paths.label_selector.as_deref().and_then(first) {
            scale["status"]["selector"] = selector;
        }
        Ok(scale)
    }
    pub(crate) async fn write_scale(
        &self,
        change: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Outcome {
        let dry_run = self.dry_run()?;
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let paths = self.scale_paths().clone();
        let written =
            self.server
                .registry
                .update_with(
                    &self.kind.main,
                    &self.namespace,
                    &self.name,
                    &options,
                    |current| {
                        let scale = self.scale_of(current).map_err(|(e, _)| e)?;
                        let wanted = change(&scale)?;
                        let replicas = wanted["spec"]["replicas"].as_i64().ok_or_else(|| {
                            ApiError::Invalid {
                                kind: "Scale.autoscaling".into(),
                                name: self.name.clone(),
                                causes: vec![FieldError::required("spec.replicas", "")],
                            }
                        })?;
                        if replicas < 0 {
                            return Err(ApiError::Invalid {
                                kind: "Scale.autoscaling".into(),
                                name: self.name.clone(),
                                causes: vec![FieldError::invalid(
                                    "spec.replicas",
                                    replicas.to_string(),
                                    "must be greater than or equal to 0",
                                )],
                            });
                        }
                        let mut next = current.clone();
                        let mut node = &mut next;
                        for part in paths.spec_replicas.trim_start_matches('.').split('.') {
                            if !node[part].is_object()
                                && part != paths.spec_replicas.rsplit('.').next().unwrap_or("")
                            {
                                node[part] = json!({});
                            }
                            node = &mut node[part];
                        }
                        *node = json!(replicas);
                        let rv = wanted["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        registry::object::meta_mut(&mut next)
                            .insert("resourceVersion".into(), rv.into());
                        Ok(next)
                    },
                )
                .await;
        let warnings = chain.warnings();
        let written = written.map_err(|e| (e, warnings.clone()))?;
        Ok(json_response(200, &self.scale_of(&written)?, &warnings))
    }
}
