//! PUT: replacing an object, its status, or its scale.

use bytes::Bytes;
use registry::ApiError;

use super::resource::Call;
use super::respond::Outcome;
use crate::admission::Operation;

impl Call {
    pub(crate) async fn update(&self, media_type: &str, body: Bytes) -> Outcome {
        if self.subresource == "scale" {
            let scale = self.decode(media_type, &body)?;
            return self.write_scale(move |_| Ok(scale.clone())).await;
        }
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let mut object = self.decode(media_type, &body)?;
        let mut warnings = Vec::new();
        self.normalize(&mut object, validation, &mut warnings)
            .map_err(|e| (e, warnings.clone()))?;
        if self.kind.namespaced {
            let given = registry::object::namespace(&object);
            if !given.is_empty() && given != self.namespace {
                return Err((ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into()), warnings).into());
            }
        }
        let manager = self.field_manager()?;
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let object = self.stored(object);
        let updated = self
            .server
            .registry
            .update_with(
                self.registry_resource(),
                &self.namespace,
                &self.name,
                &options,
                |current| {
                    let mut new = object.clone();
                    self.track(&manager, Some(current), &mut new)?;
                    Ok(new)
                },
            )
            .await;
        self.answer(200, updated, warnings, &chain, dry_run).await
    }
}
