//! `AdmissionReview` (`admission.k8s.io/v1`): the request a webhook gets, the checks of its
//! answer (kube-apiserver's `VerifyAdmissionResponse`), and a refusal as the error the client
//! sees (`ToStatusErr`).

use base64::Engine;
use registry::ApiError;
use serde_json::{Value, json};

use crate::admission::{Operation, Request};

/// The review's API version.
const API_VERSION: &str = "admission.k8s.io/v1";

/// `group/version`, or `version` for the core group.
pub(crate) fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// An object as a webhook sees it at `version` (conversion is by `apiVersion` only here).
pub(crate) fn at_version(object: &Value, group: &str, version: &str) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), api_version(group, version).into());
    }
    object
}

/// The `AdmissionReview` of `request` for a webhook that matched it at `version`, with the
/// objects already at that version.
pub(crate) fn review(
    uid: &str,
    request: &Request,
    version: &str,
    object: &Value,
    old: Option<&Value>,
) -> Value {
    let (operation, options) = match request.operation {
        Operation::Create => ("CREATE", "CreateOptions"),
        Operation::Update => ("UPDATE", "UpdateOptions"),
        Operation::Delete => ("DELETE", "DeleteOptions"),
    };
    let mut options = json!({"kind": options, "apiVersion": "meta.k8s.io/v1"});
    if request.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let group = &request.group;
    let mut body = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": request.kind},
        "resource": {"group": group, "version": version, "resource": request.resource},
        "requestKind": {"group": group, "version": request.version, "kind": request.kind},
        "requestResource": {"group": group, "version": request.version, "resource": request.resource},
        "operation": operation,
        "userInfo": request.user.info(),
        "object": object,
        "oldObject": old,
        "dryRun": request.dry_run,
        "options": options,
    });
    if !request.subresource.is_empty() {
        body["subResource"] = request.subresource.clone().into();
        body["requestSubResource"] = request.subresource.clone().into();
    }
    let name = match request.name.as_str() {
        "" => registry::object::name(object),
        name => name,
    };
    if !name.is_empty() {
        body["name"] = name.into();
    }
    if !request.namespace.is_empty() {
        body["namespace"] = request.namespace.clone().into();
    }
    json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": body})
}

/// A webhook's answer, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Answer {
    /// Whether the request may go on.
    pub(crate) allowed: bool,
    /// The `status` of a refusal (`{}` when none).
    pub(crate) status: Value,
    /// The JSON Patch (decoded from base64), if any.
    pub(crate) patch: Option<Vec<u8>>,
    /// Warnings for the client.
    pub(crate) warnings: Vec<String>,
}

/// Reads a webhook's response to the review `uid`. The error is the reason the call failed,
/// in kube-apiserver's words.
pub(crate) fn answer(uid: &str, mutating: bool, body: &[u8]) -> Result<Answer, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| {
        format!("failed to call webhook: the response is not an AdmissionReview: {e}")
    })?;
    if !review.is_object() {
        return Err(
            "failed to call webhook: the response is not an AdmissionReview: not a JSON object"
                .into(),
        );
    }
    let invalid = |why: String| format!("received invalid webhook response: {why}");
    let response = match review.get("response") {
        Some(response) if response.is_object() => response,
        _ => return Err(invalid("webhook response was absent".into())),
    };
    let given_uid = response["uid"].as_str().unwrap_or("");
    if given_uid != uid {
        return Err(invalid(format!(
            "expected response.uid={uid:?}, got {given_uid:?}"
        )));
    }
    let (api_version, kind) = (
        review["apiVersion"].as_str().unwrap_or(""),
        review["kind"].as_str().unwrap_or(""),
    );
    if api_version != API_VERSION || kind != "AdmissionReview" {
        return Err(invalid(format!(
            "expected webhook response of {API_VERSION}, Kind=AdmissionReview, got {api_version}, Kind={kind}"
        )));
    }
    let allowed = match &response["allowed"] {
        Value::Bool(allowed) => *allowed,
        Value::Null => false,
        other => {
            return Err(format!(
                "failed to call webhook: response.allowed is not a boolean: {other}"
            ));
        }
    };
    let patch = match &response["patch"] {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    format!("failed to call webhook: response.patch is not base64: {e}")
                })?,
        ),
        _ => return Err("failed to call webhook: response.patch is not a string".into()),
    };
    let patch_type = response.get("patchType").filter(|t| !t.is_null());
    if mutating {
        match (&patch, patch_type) {
            (Some(_), None) => {
                return Err(invalid(
                    "webhook returned response.patch but not response.patchType".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "webhook returned response.patchType but not response.patch".into(),
                ));
            }
            (Some(_), Some(kind)) if kind != "JSONPatch" => {
                return Err(format!(
                    "unsupported patch type {}",
                    serde_json::to_string(kind).unwrap_or_default()
                ));
            }
            _ => {}
        }
    } else {
        if patch.is_some() {
            return Err(invalid(
                "validating webhook may not return response.patch".into(),
            ));
        }
        if patch_type.is_some() {
            return Err(invalid(
                "validating webhook may not return response.patchType".into(),
            ));
        }
    }
    let warnings = response["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    Ok(Answer {
        allowed,
        status: response
            .get("status")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| json!({})),
        patch,
        warnings,
    })
}

/// A webhook's refusal as the client sees it: `admission webhook "NAME" denied the request:
/// MESSAGE`, with the webhook's code where the API's errors can carry it: 400, 403, 410, 413,
/// 500 (`Internal error occurred: ` before the message), 503. Other 4xx codes answer 400,
/// other 5xx codes 500; codes below 400 answer 400 as in kube-apiserver.
pub(crate) fn refusal(webhook: &str, status: &Value) -> ApiError {
    let denied = format!("admission webhook {webhook:?} denied the request");
    let text = |field: &str| status[field].as_str().filter(|s| !s.is_empty());
    let message = match (text("message"), text("reason")) {
        (Some(message), _) => format!("{denied}: {message}"),
        (None, Some(reason)) => format!("{denied}: {reason}"),
        (None, None) => format!("{denied} without explanation"),
    };
    match status["code"].as_i64().unwrap_or(0) {
        403 => ApiError::Forbidden(message),
        410 => ApiError::Gone(message),
        413 => ApiError::TooLarge(message),
        503 => ApiError::Unavailable(message),
        code if code >= 500 => ApiError::Internal(message),
        _ => ApiError::BadRequest(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::User;

    fn request(operation: Operation, dry_run: bool) -> Request {
        Request {
            operation,
            group: "example.com".into(),
            version: "v2".into(),
            resource: "widgets".into(),
            subresource: String::new(),
            kind: "Widget".into(),
            namespace: "default".into(),
            name: String::new(),
            user: User {
                name: "alice".into(),
                groups: vec!["devs".into()],
                ..User::default()
            },
            dry_run,
        }
    }

    #[test]
    fn reviews_carry_the_request() {
        let object =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        let sent = at_version(&object, "example.com", "v1");
        let sent_review = review("u-1", &request(Operation::Create, true), "v1", &sent, None);
        assert_eq!(
            sent_review,
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u-1",
                    "kind": {"group": "example.com", "version": "v1", "kind": "Widget"},
                    "resource": {"group": "example.com", "version": "v1", "resource": "widgets"},
                    "requestKind": {"group": "example.com", "version": "v2", "kind": "Widget"},
                    "requestResource": {"group": "example.com", "version": "v2", "resource": "widgets"},
                    "name": "w",
                    "namespace": "default",
                    "operation": "CREATE",
                    "userInfo": {"username": "alice", "groups": ["devs"]},
                    "object": sent,
                    "oldObject": null,
                    "dryRun": true,
                    "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]},
                },
            })
        );
        let mut update = request(Operation::Update, false);
        update.subresource = "status".into();
        let updated = review("u-2", &update, "v2", &object, Some(&object));
        assert_eq!(updated["request"]["subResource"], "status");
        assert_eq!(updated["request"]["requestSubResource"], "status");
        assert_eq!(updated["request"]["options"]["kind"], "UpdateOptions");
        assert_eq!(updated["request"]["oldObject"], object);
    }

    fn response(body: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": body})).unwrap()
    }

    #[test]
    fn answers_are_checked() {
        let patch = base64::engine::general_purpose::STANDARD.encode(b"[]");
        let cases: Vec<(bool, Vec<u8>, Result<&str, &str>)> = vec![
            (false, response(json!({"uid": "u", "allowed": true})), Ok("allowed")),
            (false, response(json!({"uid": "u", "allowed": false, "status": {"code": 403, "message": "no"}})), Ok("denied")),
            (true, response(json!({"uid": "u", "allowed": true, "patch": patch, "patchType": "JSONPatch"})), Ok("allowed")),
            (false, b"garbage".to_vec(), Err("failed to call webhook: the response is not an AdmissionReview: expected value at line 1 column 1")),
            (false, b"[1]".to_vec(), Err("failed to call webhook: the response is not an AdmissionReview: not a JSON object")),
            (false, br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#.to_vec(), Err("received invalid webhook response: webhook response was absent")),
            (false, response(json!({"uid": "other", "allowed": true})), Err("received invalid webhook response: expected response.uid=\"u\", got \"other\"")),
            (false, serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": true}})).unwrap(), Err("received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview")),
            (false, response(json!({"uid": "u", "allowed": "yes"})), Err("failed to call webhook: response.allowed is not a boolean: \"yes\"")),
            (true, response(json!({"uid": "u", "allowed": true, "patch": patch})), Err("received invalid webhook response: webhook returned response.patch but not response.patchType")),
            (true, response(json!({"uid": "u", "allowed": true, "patchType": "JSONPatch"})), Err("received invalid webhook response: webhook returned response.patchType but not response.patch")),
            (true, response(json!({"uid": "u", "allowed": true, "patch": patch, "patchType": "MergePatch"})), Err("unsupported patch type \"MergePatch\"")),
            (true, response(json!({"uid": "u", "allowed": true, "patch": "%%", "patchType": "JSONPatch"})), Err("failed to call webhook: response.patch is not base64: Invalid symbol 37, offset 0.")),
            (false, response(json!({"uid": "u", "allowed": true, "patch": patch, "patchType": "JSONPatch"})), Err("received invalid webhook response: validating webhook may not return response.patch")),
        ];
        for (mutating, body, expected) in cases {
            let found =
                answer("u", mutating, &body).map(|a| if a.allowed { "allowed" } else { "denied" });
            assert_eq!(
                found,
                expected.map_err(str::to_string),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        let answered = answer("u", true, &response(json!({"uid": "u", "allowed": true, "warnings": ["careful"], "auditAnnotations": {"a": "b"}}))).unwrap();
        assert_eq!(answered.warnings, ["careful"]);
        assert_eq!(answered.patch, None);
    }

    #[test]
    fn refusals_keep_the_webhook_s_code_and_message() {
        let cases = [
            (
                json!({"code": 403, "message": "no labels like that"}),
                403,
                "admission webhook \"w.example.com\" denied the request: no labels like that",
            ),
            (
                json!({"message": "plain"}),
                400,
                "admission webhook \"w.example.com\" denied the request: plain",
            ),
            (
                json!({"code": 200, "reason": "Because"}),
                400,
                "admission webhook \"w.example.com\" denied the request: Because",
            ),
            (
                json!({}),
                400,
                "admission webhook \"w.example.com\" denied the request without explanation",
            ),
            (
                json!({"code": 503, "message": "later"}),
                503,
                "admission webhook \"w.example.com\" denied the request: later",
            ),
            (
                json!({"code": 422, "message": "bad"}),
                400,
                "admission webhook \"w.example.com\" denied the request: bad",
            ),
            (
                json!({"code": 500, "message": "oops"}),
                500,
                "Internal error occurred: admission webhook \"w.example.com\" denied the request: oops",
            ),
        ];
        for (status, code, message) in cases {
            let error = refusal("w.example.com", &status);
            assert_eq!(crate::status::code_and_reason(&error).0, code, "{status}");
            assert_eq!(error.to_string(), message);
        }
    }
}
