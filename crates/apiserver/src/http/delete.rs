//! DELETE of one object (with preconditions, finalizers and dry run) and of a collection.

use bytes::Bytes;
use registry::{ApiError, WriteOptions};
use serde_json::{Value, json};

use super::resource::Call;
use super::respond::Outcome;
use crate::server::SYSTEM_NAMESPACES;

impl Call {
    pub(crate) fn delete_options(
        &self,
        body: &[u8],
    ) -> Result<(Option<i64>, bool), (ApiError, Vec<String>)> {
        let mut dry_run = self.dry_run()?;
        let mut precondition = None;
        if !body.is_empty() {
            let options: Value = serde_json::from_slice(body).map_err(|e| {
                (
                    ApiError::BadRequest(format!("the DeleteOptions body is not valid JSON: {e}")),
                    Vec::new(),
                )
            })?;
            if let Some(rv) = options["preconditions"]["resourceVersion"].as_str() {
                precondition = Some(rv.parse::<i64>().map_err(|_| {
                    (
                        ApiError::BadRequest(format!(
                            "preconditions.resourceVersion {rv:?} is not a resource version"
                        )),
                        Vec::new(),
                    )
                })?);
            }
            if options["dryRun"]
                .as_array()
                .is_some_and(|d| d.iter().any(|v| v == "All"))
            {
                dry_run = true;
            }
        }
        Ok((precondition, dry_run))
    }
    pub(crate) async fn delete_one(
        &self,
        name: &str,
        precondition: Option<i64>,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let options = WriteOptions {
            dry_run,
            admission: None,
        };
        if self.kind.group.is_empty()
            && self.kind.resource == "namespaces"
            && SYSTEM_NAMESPACES.contains(&name)
        {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let deleted = self
            .server
            .registry
            .delete(
                &self.kind.main,
                &self.namespace,
                name,
                precondition,
                &options,
            )
            .await?;
        let pending = !registry::object::meta_str(&deleted, "deletionTimestamp").is_empty();
        Ok((deleted, pending))
    }
    pub(crate) async fn delete(&self, body: Bytes) -> Outcome {
        let (precondition, dry_run) = self.delete_options(&body)?;
        let (object, pending) = self
            .delete_one(&self.name, precondition, dry_run)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if !dry_run {
            self.after_write(&object).await;
        }
        if pending || !self.kind.native {
            return Ok(self.object_response(200, &self.served(object), &[]));
        }
        let mut details = json!({"name": self.name, "kind": self.kind.resource, "uid": object["metadata"]["uid"]});
        if !self.kind.group.is_empty() {
            details["group"] = self.kind.group.clone().into();
        }
        Ok(self.object_response(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            &[],
        ))
    }
    pub(crate) async fn delete_collection(&self, body: Bytes) -> Outcome {
        let (_, dry_run) = self.delete_options(&body)?;
        let mut options = self.list_options()?;
        options.limit = 0;
        options.continue_token = None;
        let list = self
            .server
            .registry
            .list(&self.kind.main, self.list_namespace(), &options)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let mut items = Vec::new();
        for object in list.items {
            let name = registry::object::name(&object).to_string();
            let namespace = registry::object::namespace(&object).to_string();
            let call = Call {
                namespace,
                ..self.clone_shallow()
            };
            match call.delete_one(&name, None, dry_run).await {
                Ok((deleted, _)) => items.push(self.served(deleted)),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let body = json!({
            "kind": format!("{}List", self.kind.kind),
            "apiVersion": self.kind.api_version(),
            "metadata": {"resourceVersion": list.resource_version.to_string()},
            "items": items,
        });
        Ok(self.object_response(200, &body, &[]))
    }
    pub(crate) fn clone_shallow(&self) -> Call {
        self.clone()
    }
}
