//! POST: creating an object.

use bytes::Bytes;
use registry::ApiError;

use super::negotiate::PROTOBUF;
use super::resource::Call;
use super::respond::{Outcome, Refusal};
use crate::admission::Operation;
use crate::catalog::{Computed, CreateSubresource};

impl Call {
    pub(crate) async fn create(&self, media_type: &str, body: Bytes) -> Outcome {
        if let Some(subresource) = self.kind.create_subresource(&self.subresource).cloned() {
            return self
                .create_subresource(subresource.as_ref(), media_type, &body)
                .await;
        }
        if !self.name.is_empty() {
            return Err(Refusal::MethodNotAllowed(
                "POST is not allowed on a named object; use PUT to replace it".into(),
            ));
        }
        if self.kind.terminating {
            // kube-apiserver's words.
            return Err(Refusal::MethodNotAllowed(
                "create not allowed while custom resource definition is terminating".into(),
            ));
        }
        if let Some(computed) = self.kind.computed.clone() {
            return self
                .create_computed(computed.as_ref(), media_type, &body)
                .await;
        }
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let mut object = self.decode(media_type, &body)?;
        let mut warnings = Vec::new();
        self.normalize(&mut object, validation, &mut warnings)
            .map_err(|e| (e, warnings.clone()))?;
        let name = registry::object::name(&object).to_string();
        if !registry::object::meta_str(&object, "resourceVersion").is_empty() {
            return Err((
                ApiError::BadRequest(
                    "resourceVersion should not be set on objects to be created".into(),
                ),
                warnings,
            )
                .into());
        }
        self.check_namespace(&name)
            .await
            .map_err(|e| (e, warnings.clone()))?;
        let manager = self.field_manager()?;
        let (options, chain) = self.write_options(Operation::Create, &name, dry_run);
        let mut object = self.stored(object);
        self.track(&manager, None, &mut object)
            .map_err(|e| (e, warnings.clone()))?;
        let created = self
            .server
            .registry
            .create(&self.kind.main, &self.namespace, object, &options)
            .await;
        self.answer(201, created, warnings, &chain, dry_run).await
    }

    /// A create on a create-only subresource (`serviceaccounts/token`): the answer computed
    /// from the object it belongs to, nothing stored.
    async fn create_subresource(
        &self,
        subresource: &dyn CreateSubresource,
        media_type: &str,
        body: &[u8],
    ) -> Outcome {
        let object = self.decode(media_type, body)?;
        let answer = subresource
            .create(
                &self.server,
                &self.user,
                &self.namespace,
                &self.name,
                object,
            )
            .await?;
        Ok(self.object_response(201, &answer, &[]))
    }

    /// A create of a virtual resource: the computed answer, nothing stored.
    async fn create_computed(
        &self,
        computed: &dyn Computed,
        media_type: &str,
        body: &[u8],
    ) -> Outcome {
        let decoded = if media_type == PROTOBUF {
            computed.decode_protobuf(body)
        } else {
            None
        };
        let object = match decoded {
            Some(decoded) => {
                let object = decoded.map_err(|e| {
                    self.cannot_handle(&format!("the protobuf body cannot be decoded: {e}"))
                })?;
                self.check_type(&object)?;
                self.served(object)
            }
            None => self.decode(media_type, body)?,
        };
        let answer = computed
            .create(&self.server, &self.user, &self.namespace, object)
            .await?;
        Ok(self.object_response(201, &self.served(answer), &[]))
    }
}
