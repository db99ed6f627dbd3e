//! PATCH with `application/apply-patch+yaml`: server-side apply. The configuration (YAML or
//! JSON) is merged into the live object by `crate::apply` with field ownership; a missing
//! object is created; a no-op apply writes nothing.

use registry::ApiError;
use serde_json::Value;

use super::resource::Call;
use super::respond::Outcome;
use crate::admission::Operation;
use crate::apply;

use super::{MAX_DEPTH as MAX_YAML_DEPTH, depth};

impl Call {
    /// Parses and checks an apply configuration.
    fn apply_configuration(&self, body: &[u8]) -> Result<Value, ApiError> {
        let config: Value = serde_yaml::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "error decoding the apply configuration (YAML or JSON): {e}"
            ))
        })?;
        if !config.is_object() {
            return Err(ApiError::BadRequest(
                "the apply configuration must be an object with apiVersion, kind and metadata.name"
                    .into(),
            ));
        }
        if depth(&config) > MAX_YAML_DEPTH {
            return Err(ApiError::BadRequest(format!(
                "the apply configuration nests deeper than {MAX_YAML_DEPTH} levels"
            )));
        }
        for field in ["apiVersion", "kind"] {
            if config[field].as_str().unwrap_or("").is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "{field} must be set in an apply configuration"
                )));
            }
        }
        self.check_type(&config).map_err(|(e, _)| e)?;
        let name = config["metadata"]["name"].as_str().unwrap_or("");
        if name != self.name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                self.name
            )));
        }
        let namespace = config["metadata"]["namespace"].as_str().unwrap_or("");
        if self.kind.namespaced && !namespace.is_empty() && namespace != self.namespace {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        Ok(self.served(config))
    }

    pub(crate) async fn apply(&self, body: &[u8]) -> Outcome {
        let manager = match self.query.get("fieldManager") {
            Some(manager) if !manager.is_empty() => manager.to_string(),
            _ => {
                return Err(ApiError::BadRequest(
                    "fieldManager: Required value: is required for apply patch: set the query parameter fieldManager (kubectl sets it with --field-manager)".into(),
                )
                .into());
            }
        };
        apply::check_manager(&manager)?;
        let force = self.query.flag("force");
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let mut warnings = Vec::new();
        let mut config = self.apply_configuration(body)?;
        self.prune_unknown(&mut config, validation, &mut warnings)
            .map_err(|e| (e, warnings.clone()))?;
        let writer = self.writer(&manager);
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let mut merge_warnings = Vec::new();
        let updated = self
            .server
            .registry
            .update_with(
                self.registry_resource(),
                &self.namespace,
                &self.name,
                &options,
                |current| {
                    let live = self.served(current.clone());
                    let mut merged = writer.apply(Some(&live), &config, force)?;
                    merge_warnings.clear();
                    self.normalize(&mut merged, validation, &mut merge_warnings)?;
                    Ok(self.stored(merged))
                },
            )
            .await;
        match updated {
            Err(ApiError::NotFound { .. }) if self.subresource.is_empty() => {}
            updated => return self.answer(200, updated, warnings, &chain, dry_run).await,
        }
        // Nothing to apply to: the configuration is created.
        let mut object = writer
            .apply(None, &config, force)
            .map_err(|e| (e, warnings.clone()))?;
        self.normalize(&mut object, validation, &mut warnings)
            .map_err(|e| (e, warnings.clone()))?;
        self.check_namespace(&self.name)
            .await
            .map_err(|e| (e, warnings.clone()))?;
        let (options, chain) = self.write_options(Operation::Create, &self.name, dry_run);
        let created = self
            .server
            .registry
            .create(
                &self.kind.main,
                &self.namespace,
                self.stored(object),
                &options,
            )
            .await;
        self.answer(201, created, warnings, &chain, dry_run).await
    }
}
