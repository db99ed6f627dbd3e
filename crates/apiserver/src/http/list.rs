//! GET of a collection: list options (selectors, pages, resource versions) and the list.

use apimachinery::{FieldError, fields, labels};
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use registry::{ApiError, ListOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Body;
use super::negotiate::{self, Output};
use super::resource::Call;
use super::respond::{Outcome, fail, respond};
use crate::table;

/// Objects per page of a streamed list.
const STREAM_PAGE: usize = 500;

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
        let mut options = self.list_options()?;
        // An unpaged JSON list is read and sent a page at a time (one pinned revision), so the
        // server never holds the whole collection.
        let stream = options.limit == 0
            && options.continue_token.is_none()
            && matches!(self.output, Output::Json | Output::Metadata);
        if stream {
            options.limit = STREAM_PAGE;
        }
        let list = self
            .server
            .registry
            .list(&self.kind.main, self.list_namespace(), &options)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if stream && list.continue_token.is_some() {
            return Ok(self.stream_list(list, options));
        }
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

    /// Streams a list whose first page is `first`: the list's head, then each page's items as
    /// they are read, through a small bounded channel (the client's pace bounds the memory).
    fn stream_list(&self, first: registry::ListResult, mut options: ListOptions) -> Response<Body> {
        let (kind, api_version) = self.served_kind();
        let head = format!(
            "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[",
            json!(format!("{kind}List")),
            json!(api_version),
            first.resource_version
        );
        let media = if self.output == Output::Metadata {
            negotiate::METADATA_LIST
        } else {
            negotiate::JSON
        };
        let (sender, receiver) = mpsc::channel::<Bytes>(2);
        let call = self.clone();
        tokio::spawn(async move {
            if sender.send(Bytes::from(head)).await.is_err() {
                return;
            }
            let mut page = first;
            let mut first_item = true;
            loop {
                let mut chunk = Vec::with_capacity(64 * 1024);
                for item in page.items {
                    if !first_item {
                        chunk.push(b',');
                    }
                    first_item = false;
                    if serde_json::to_writer(&mut chunk, &call.shown(item)).is_err() {
                        return;
                    }
                }
                if sender.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
                let Some(token) = page.continue_token else {
                    break;
                };
                options.continue_token = Some(token);
                page = match call
                    .server
                    .registry
                    .list(&call.kind.main, call.list_namespace(), &options)
                    .await
                {
                    Ok(page) => page,
                    Err(e) => {
                        // The status is sent: ending the body early makes the JSON invalid,
                        // which the client reports.
                        tracing::warn!(error = %e, "a streamed list failed part way");
                        return;
                    }
                };
            }
            let _ = sender.send(Bytes::from_static(b"]}")).await;
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver
                .recv()
                .await
                .map(|bytes| (Ok::<_, std::io::Error>(Frame::data(bytes)), receiver))
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        response
    }
}
