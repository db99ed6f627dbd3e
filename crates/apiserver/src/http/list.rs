//! GET of a collection: list options (selectors, pages, resource versions) and the list.

use apimachinery::{FieldError, fields, labels};
use registry::{ApiError, ListOptions};
use serde_json::{Value, json};

use super::negotiate;
use super::resource::Call;
use super::respond::{Outcome, fail, respond};
use crate::table;

impl Call {
    pub(crate) fn list_options(&self) -> Result<ListOptions, (ApiError, Vec<String>)> {
        let labels = labels::Selector::parse(self.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| (ApiError::BadRequest(e.to_string()), Vec::new()))?;
        let fields = fields::Selector::parse(self.query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| (ApiError::BadRequest(e.to_string()), Vec::new()))?;
        let limit = match self.query.get("limit") {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| {
                    (
                        ApiError::BadRequest(format!(
                            "limit: Invalid value: {text:?}: must be an integer"
                        )),
                        Vec::new(),
                    )
                })?
                .max(0) as usize,
        };
        let continue_token = self
            .query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let rv = self.query.get("resourceVersion").unwrap_or("");
        let rv_match = self.query.get("resourceVersionMatch").unwrap_or("");
        let mut causes = Vec::new();
        if !rv_match.is_empty() {
            if rv.is_empty() {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continue_token.is_some() {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if !["NotOlderThan", "Exact"].contains(&rv_match) {
                causes.push(FieldError::not_supported(
                    "resourceVersionMatch",
                    rv_match,
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if rv_match == "Exact" && rv == "0" {
                causes.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if !rv.is_empty() && rv.parse::<u64>().is_err() {
            causes.push(FieldError::invalid(
                "resourceVersion",
                rv,
                "must be a decimal number",
            ));
        }
        if self.query.get("sendInitialEvents").is_some() && !self.query.flag("watch") {
            causes.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
        if !causes.is_empty() {
            return fail(ApiError::Invalid {
                kind: "ListOptions.meta.k8s.io".into(),
                name: String::new(),
                causes,
            });
        }
        Ok(ListOptions {
            labels,
            fields,
            limit,
            continue_token,
        })
    }
    pub(crate) fn list_namespace(&self) -> Option<&str> {
        Some(self.namespace.as_str()).filter(|ns| !ns.is_empty() && self.kind.namespaced)
    }
    pub(crate) async fn list(&self) -> Outcome {
        let options = self.list_options()?;
        let list = self
            .server
            .registry
            .list(&self.kind.main, self.list_namespace(), &options)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let mut metadata = json!({"resourceVersion": list.resource_version.to_string()});
        if let Some(token) = &list.continue_token {
            metadata["continue"] = token.clone().into();
        }
        let items: Vec<Value> = list.items.into_iter().map(|o| self.served(o)).collect();
        if self.wants_table() {
            let table = table::table(&self.kind, &items, metadata, self.include()?, true);
            return Ok(respond(
                200,
                negotiate::TABLE,
                serde_json::to_vec(&table).expect("JSON"),
                &[],
            ));
        }
        let body = json!({
            "kind": format!("{}List", self.kind.kind),
            "apiVersion": self.kind.api_version(),
            "metadata": metadata,
            "items": items,
        });
        Ok(self.object_response(200, &body, &[]))
    }
}
