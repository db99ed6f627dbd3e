//! PATCH: JSON patch, JSON merge patch and strategic merge patch (native kinds), applied to
//! the current object inside the registry's optimistic update.

use apimachinery::FieldError;
use bytes::Bytes;
use registry::ApiError;
use serde_json::Value;

use super::negotiate::{self, PatchFormat};
use super::resource::Call;
use super::respond::{Outcome, Refusal};
use crate::admission::Operation;
use crate::strategic;

/// The most operations a JSON patch may have (kube-apiserver's limit).
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The most bytes a JSON patch's `copy` operations may copy in all: `copy` is the one operation
/// that makes an object larger than the patch that asks for it (40 copies of the whole object
/// double it 40 times), so it is bounded as kube-apiserver bounds it, by the largest body.
const MAX_COPIED: usize = super::MAX_BODY;

/// Bytes of `value` as JSON.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Applies `operations` to `target` one by one, refusing once their copies exceed
/// [`MAX_COPIED`] (the target is the caller's copy: a refusal leaves nothing half-applied).
fn json_patch_bounded(
    target: &mut Value,
    operations: &json_patch::Patch,
    invalid: &dyn Fn(String) -> ApiError,
) -> Result<(), ApiError> {
    let mut copied = 0usize;
    for operation in &operations.0 {
        if let json_patch::PatchOperation::Copy(copy) = operation {
            copied += target.pointer(copy.from.as_str()).map_or(0, json_len);
            if copied > MAX_COPIED {
                return Err(ApiError::TooLarge(format!(
                    "The JSON patch's copy operations would copy more than {MAX_COPIED} bytes"
                )));
            }
        }
        json_patch::patch(target, std::slice::from_ref(operation))
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(())
}

impl Call {
    pub(crate) async fn patch(&self, media_type: &str, body: Bytes) -> Outcome {
        enum Kind {
            Json(json_patch::Patch),
            Merge(Value),
            Strategic(Value),
        }
        let invalid = |what: &str, e: serde_json::Error| {
            Refusal::from(ApiError::BadRequest(format!(
                "the {what} is not valid: {e}"
            )))
        };
        let patch = match negotiate::patch_format(media_type, self.kind.native)? {
            PatchFormat::Json => {
                let operations: json_patch::Patch =
                    serde_json::from_slice(&body).map_err(|e| invalid("JSON patch", e))?;
                if operations.0.len() > MAX_JSON_PATCH_OPERATIONS {
                    return Err(Refusal::from(ApiError::TooLarge(format!(
                        "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                        operations.0.len()
                    ))));
                }
                Kind::Json(operations)
            }
            PatchFormat::Merge => {
                Kind::Merge(serde_json::from_slice(&body).map_err(|e| invalid("merge patch", e))?)
            }
            PatchFormat::Strategic => Kind::Strategic(
                serde_json::from_slice(&body).map_err(|e| invalid("strategic merge patch", e))?,
            ),
            PatchFormat::Apply => return self.apply(&body).await,
        };
        let schema = self.kind.schema.clone();
        // A patch that cannot apply: 422 naming the object, the patch (shortened) and why.
        let shown = {
            let text = String::from_utf8_lossy(&body);
            let cut = text.char_indices().nth(256).map_or(text.len(), |(i, _)| i);
            text[..cut].to_string()
        };
        let (kind, name) = (self.kind.kind.clone(), self.name.clone());
        let invalid = move |detail: String| ApiError::Invalid {
            kind: kind.clone(),
            name: name.clone(),
            causes: vec![FieldError::invalid("patch", shown.clone(), detail)],
        };
        let apply = move |target: &mut Value| -> Result<(), ApiError> {
            match &patch {
                Kind::Json(operations) => json_patch_bounded(target, operations, &invalid),
                Kind::Merge(merge) => {
                    json_patch::merge(target, merge);
                    Ok(())
                }
                Kind::Strategic(patch) => {
                    *target = strategic::apply(target, patch, &schema)
                        .map_err(|e| invalid(e.to_string()))?;
                    Ok(())
                }
            }
        };
        if self.subresource == "scale" {
            return self
                .write_scale(move |current| {
                    let mut scale = current.clone();
                    apply(&mut scale)?;
                    Ok(scale)
                })
                .await;
        }
        let dry_run = self.dry_run()?;
        let validation = self.field_validation()?;
        let manager = self.field_manager()?;
        let (options, chain) = self.write_options(Operation::Update, &self.name, dry_run);
        let mut warnings = Vec::new();
        let patched = self
            .server
            .registry
            .update_with(
                self.registry_resource(),
                &self.namespace,
                &self.name,
                &options,
                |current| {
                    let mut object = self.served(current.clone());
                    apply(&mut object)?;
                    if !object.is_object() {
                        return Err(ApiError::BadRequest(
                            "the patch made the object something other than a JSON object".into(),
                        ));
                    }
                    if super::depth(&object) > super::MAX_DEPTH {
                        return Err(ApiError::BadRequest(format!(
                            "the patched object nests deeper than {} levels",
                            super::MAX_DEPTH
                        )));
                    }
                    if let Err((e, _)) = self.check_type(&object) {
                        return Err(e);
                    }
                    warnings.clear();
                    self.normalize(&mut object, validation, &mut warnings)?;
                    let mut object = self.stored(object);
                    self.track(&manager, Some(current), &mut object)?;
                    Ok(object)
                },
            )
            .await;
        self.answer(200, patched, warnings, &chain, dry_run).await
    }
}
