//! GET of one object: JSON, protobuf or a Table.

use serde_json::json;

use super::negotiate;
use super::resource::Call;
use super::respond::{Outcome, json_response, respond};
use crate::table;

impl Call {
    pub(crate) async fn get(&self) -> Outcome {
        let object = self
            .server
            .registry
            .get(&self.kind.main, &self.namespace, &self.name)
            .await
            .map_err(|e| (e, Vec::new()))?;
        if self.subresource == "scale" {
            return Ok(json_response(200, &self.scale_of(&object)?, &[]));
        }
        let object = self.served(object);
        if self.wants_table() {
            let include = self.include()?;
            let table = table::table(
                &self.kind,
                std::slice::from_ref(&object),
                json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
                include,
                true,
            );
            return Ok(respond(
                200,
                negotiate::TABLE,
                serde_json::to_vec(&table).expect("JSON"),
                &[],
            ));
        }
        Ok(self.object_response(200, &object, &[]))
    }
}
