//! DELETE of one object (with preconditions, finalizers, propagation and dry run) and of a
//! collection. `DeleteOptions` come from the body (JSON or protobuf) or, without one, from the
//! query; `propagationPolicy` (or the legacy `orphanDependents`) sets the garbage collector's
//! finalizers on the object as kube-apiserver does (`Foreground`: `foregroundDeletion`,
//! `Orphan`: `orphan`, `Background`: neither; none given: the object's own stay).

use apimachinery::FieldError;
use bytes::Bytes;
use registry::{ApiError, Deletion};
use serde_json::{Value, json};

use super::resource::Call;
use super::respond::Outcome;
use crate::admission::Operation;
use crate::gc::Propagation;
use crate::protobuf;

/// What a DELETE asks.
pub(crate) struct DeleteRequest {
    /// Preconditions and the collector's finalizers.
    pub(crate) deletion: Deletion,
    /// `dryRun=All`.
    pub(crate) dry_run: bool,
    /// `orphanDependents: false`: an object left waiting is answered 202, as kube-apiserver
    /// does.
    pub(crate) accepted: bool,
}

fn bad(message: String) -> (ApiError, Vec<String>) {
    (ApiError::BadRequest(message), Vec::new())
}

impl Call {
    /// The `DeleteOptions` of a request: its body, or its query when it has none.
    fn delete_options_value(&self, body: &[u8]) -> Result<Value, (ApiError, Vec<String>)> {
        if body.starts_with(&protobuf::MAGIC) {
            return protobuf::decode(body)
                .map_err(|e| bad(format!("the DeleteOptions body cannot be decoded: {e}")));
        }
        if !body.is_empty() {
            return serde_json::from_slice(body)
                .map_err(|e| bad(format!("the DeleteOptions body is not valid JSON: {e}")));
        }
        let mut options = json!({});
        if let Some(policy) = self.query.get("propagationPolicy") {
            options["propagationPolicy"] = policy.into();
        }
        match self.query.get("orphanDependents") {
            None => {}
            Some("true" | "1") => options["orphanDependents"] = true.into(),
            Some("false" | "0") => options["orphanDependents"] = false.into(),
            Some(other) => {
                return Err(bad(format!(
                    "orphanDependents: invalid boolean value {other:?}"
                )));
            }
        }
        Ok(options)
    }

    pub(crate) fn delete_options(
        &self,
        body: &[u8],
    ) -> Result<DeleteRequest, (ApiError, Vec<String>)> {
        let mut dry_run = self.dry_run()?;
        let options = self.delete_options_value(body)?;
        let mut deletion = Deletion::default();
        if let Some(rv) = options["preconditions"]["resourceVersion"]
            .as_str()
            .filter(|rv| !rv.is_empty())
        {
            deletion.resource_version = Some(rv.parse::<i64>().map_err(|_| {
                bad(format!(
                    "preconditions.resourceVersion {rv:?} is not a resource version"
                ))
            })?);
        }
        if let Some(uid) = options["preconditions"]["uid"]
            .as_str()
            .filter(|uid| !uid.is_empty())
        {
            deletion.uid = Some(uid.to_string());
        }
        if options["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"))
        {
            dry_run = true;
        }
        // kube-apiserver's ValidateDeleteOptions.
        let policy = options["propagationPolicy"].as_str();
        let orphan = options["orphanDependents"].as_bool();
        let mut causes = Vec::new();
        if let (Some(policy), Some(_)) = (policy, orphan) {
            causes.push(FieldError::invalid(
                "propagationPolicy",
                policy,
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        let parsed = policy.map(|p| (p, Propagation::parse(p)));
        if let Some((policy, None)) = parsed {
            causes.push(FieldError::not_supported(
                "propagationPolicy",
                policy,
                &["Foreground", "Background", "Orphan", "nil"],
            ));
        }
        if !causes.is_empty() {
            return Err((
                ApiError::Invalid {
                    kind: "DeleteOptions.meta.k8s.io".into(),
                    name: String::new(),
                    causes,
                },
                Vec::new(),
            ));
        }
        let propagation = match (orphan, parsed) {
            (Some(true), _) => Some(Propagation::Orphan),
            (Some(false), _) => Some(Propagation::Background),
            (None, Some((_, policy))) => policy,
            (None, None) => None,
        };
        if let Some(propagation) = propagation {
            propagation.apply(&mut deletion);
        }
        Ok(DeleteRequest {
            deletion,
            dry_run,
            accepted: orphan == Some(false),
        })
    }

    pub(crate) async fn delete_one(
        &self,
        name: &str,
        deletion: &Deletion,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        // Validating admission (webhooks among it) sees what is deleted, in the registry's read.
        let (options, _) = self.write_options(Operation::Delete, name, dry_run);
        let deleted = self
            .server
            .registry
            .delete_with(&self.kind.main, &self.namespace, name, deletion, &options)
            .await?;
        let pending = !registry::object::meta_str(&deleted, "deletionTimestamp").is_empty();
        Ok((deleted, pending))
    }

    pub(crate) async fn delete(&self, body: Bytes) -> Outcome {
        let request = self.delete_options(&body)?;
        let (object, pending) = self
            .delete_one(&self.name, &request.deletion, request.dry_run)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if !request.dry_run {
            self.after_write(&object).await;
        }
        if pending || !self.kind.native {
            let code = if pending && request.accepted {
                202
            } else {
                200
            };
            return Ok(self.object_response(code, &self.served(object), &[]));
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
        let request = self.delete_options(&body)?;
        // Preconditions name one object; each object of the collection is deleted as it is.
        let deletion = Deletion {
            resource_version: None,
            uid: None,
            ..request.deletion
        };
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
            match call.delete_one(&name, &deletion, request.dry_run).await {
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
