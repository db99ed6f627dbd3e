//! The protobuf form of the review requests kubectl sends (`auth can-i`, `auth whoami`):
//! SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectRulesReview, SelfSubjectReview and TokenReview in the `k8s\0` envelope, read into the same
//! JSON as their JSON bodies. Only what the reviews use is read (field numbers of
//! `k8s.io/api/authorization/v1` and `authentication/v1`); answers are JSON.

use prost::Message;
use serde_json::{Map, Value, json};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
    #[prost(string, tag = "3")]
    content_encoding: String,
    #[prost(string, tag = "4")]
    content_type: String,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "3")]
    namespace: String,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceAttributes {
    #[prost(string, tag = "1")]
    namespace: String,
    #[prost(string, tag = "2")]
    verb: String,
    #[prost(string, tag = "3")]
    group: String,
    #[prost(string, tag = "4")]
    version: String,
    #[prost(string, tag = "5")]
    resource: String,
    #[prost(string, tag = "6")]
    subresource: String,
    #[prost(string, tag = "7")]
    name: String,
}

#[derive(Clone, PartialEq, Message)]
struct NonResourceAttributes {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(string, tag = "2")]
    verb: String,
}

#[derive(Clone, PartialEq, Message)]
struct ExtraValue {
    #[prost(string, repeated, tag = "1")]
    items: Vec<String>,
}

/// The spec of every access review (the self review uses the first two fields only).
#[derive(Clone, PartialEq, Message)]
struct AccessReviewSpec {
    #[prost(message, optional, tag = "1")]
    resource_attributes: Option<ResourceAttributes>,
    #[prost(message, optional, tag = "2")]
    non_resource_attributes: Option<NonResourceAttributes>,
    #[prost(string, tag = "3")]
    user: String,
    #[prost(string, repeated, tag = "4")]
    groups: Vec<String>,
    #[prost(btree_map = "string, message", tag = "5")]
    extra: std::collections::BTreeMap<String, ExtraValue>,
    #[prost(string, tag = "6")]
    uid: String,
}

#[derive(Clone, PartialEq, Message)]
struct RulesReviewSpec {
    #[prost(string, tag = "1")]
    namespace: String,
}

/// An access review: metadata (1) and spec (2); the status (3) of a request is ignored.
#[derive(Clone, PartialEq, Message)]
struct AccessReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<AccessReviewSpec>,
}

/// A rules review.
#[derive(Clone, PartialEq, Message)]
struct RulesReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<RulesReviewSpec>,
}

/// A self review: its metadata (its field 2, the status, is the answer's).
#[derive(Clone, PartialEq, Message)]
struct SelfReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
}

#[derive(Clone, PartialEq, Message)]
struct TokenReviewSpec {
    #[prost(string, tag = "1")]
    token: String,
    #[prost(string, repeated, tag = "2")]
    audiences: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TokenReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<TokenReviewSpec>,
}

fn metadata(meta: Option<ObjectMeta>) -> Value {
    let mut map = Map::new();
    if let Some(meta) = meta {
        for (field, value) in [
            ("name", meta.name),
            ("generateName", meta.generate_name),
            ("namespace", meta.namespace),
        ] {
            if !value.is_empty() {
                map.insert(field.into(), value.into());
            }
        }
    }
    Value::Object(map)
}

fn access_spec(spec: AccessReviewSpec) -> Value {
    let mut map = Map::new();
    if let Some(r) = spec.resource_attributes {
        map.insert(
            "resourceAttributes".into(),
            json!({"namespace": r.namespace, "verb": r.verb, "group": r.group, "version": r.version,
                "resource": r.resource, "subresource": r.subresource, "name": r.name}),
        );
    }
    if let Some(n) = spec.non_resource_attributes {
        map.insert(
            "nonResourceAttributes".into(),
            json!({"path": n.path, "verb": n.verb}),
        );
    }
    if !spec.user.is_empty() {
        map.insert("user".into(), spec.user.into());
    }
    if !spec.groups.is_empty() {
        map.insert("groups".into(), spec.groups.into());
    }
    if !spec.uid.is_empty() {
        map.insert("uid".into(), spec.uid.into());
    }
    if !spec.extra.is_empty() {
        let extra: Map<String, Value> = spec
            .extra
            .into_iter()
            .map(|(k, v)| (k, v.items.into()))
            .collect();
        map.insert("extra".into(), Value::Object(extra));
    }
    Value::Object(map)
}

/// Reads a protobuf review request as its JSON object; an error says what is wrong.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the protobuf envelope's magic bytes")?;
    let unknown = Unknown::decode(inner).map_err(|e| e.to_string())?;
    if !unknown.content_encoding.is_empty() {
        return Err(format!(
            "unsupported content encoding {:?}",
            unknown.content_encoding
        ));
    }
    let type_meta = unknown.type_meta.unwrap_or_default();
    let raw = unknown.raw.as_slice();
    let (metadata, spec) = match type_meta.kind.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let review = AccessReview::decode(raw).map_err(|e| e.to_string())?;
            (review.metadata, review.spec.map(access_spec))
        }
        "SelfSubjectRulesReview" => {
            let review = RulesReview::decode(raw).map_err(|e| e.to_string())?;
            let spec = review.spec.map(|s| json!({"namespace": s.namespace}));
            (review.metadata, spec)
        }
        "SelfSubjectReview" => {
            let metadata = SelfReview::decode(raw).map_err(|e| e.to_string())?.metadata;
            (metadata, None)
        }
        "TokenReview" => {
            let review = TokenReview::decode(raw).map_err(|e| e.to_string())?;
            let spec = review
                .spec
                .map(|s| json!({"token": s.token, "audiences": s.audiences}));
            (review.metadata, spec)
        }
        other => return Err(format!("no protobuf form here for kind {other:?}")),
    };
    let mut object = json!({
        "apiVersion": type_meta.api_version,
        "kind": type_meta.kind,
        "metadata": self::metadata(metadata),
    });
    if let Some(spec) = spec {
        object["spec"] = spec;
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::authorization::v1 as pb;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &unknown.encode_to_vec()].concat()
    }

    #[test]
    fn reviews_decode_as_kubectl_sends_them() {
        let review = pb::SelfSubjectAccessReview {
            spec: Some(pb::SelfSubjectAccessReviewSpec {
                resource_attributes: Some(pb::ResourceAttributes {
                    namespace: Some("ns".into()),
                    verb: Some("get".into()),
                    resource: Some("devices".into()),
                    group: Some("eve.lfedge.org".into()),
                    subresource: Some("status".into()),
                    name: Some("d".into()),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            }),
            ..Default::default()
        };
        let body = envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            review.encode_to_vec(),
        );
        let object = decode(&body).unwrap();
        assert_eq!(object["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            object["spec"]["resourceAttributes"]["subresource"],
            "status"
        );
        assert_eq!(
            object["spec"]["resourceAttributes"]["group"],
            "eve.lfedge.org"
        );
        assert!(object["spec"].get("nonResourceAttributes").is_none());

        let review = pb::SubjectAccessReview {
            spec: Some(pb::SubjectAccessReviewSpec {
                non_resource_attributes: Some(pb::NonResourceAttributes {
                    path: Some("/healthz".into()),
                    verb: Some("get".into()),
                }),
                user: Some("u".into()),
                groups: vec!["g".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = envelope(
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
            review.encode_to_vec(),
        );
        let object = decode(&body).unwrap();
        assert_eq!(object["spec"]["nonResourceAttributes"]["path"], "/healthz");
        assert_eq!(object["spec"]["user"], "u");
        assert_eq!(object["spec"]["groups"], json!(["g"]));

        let review = pb::SelfSubjectRulesReview {
            spec: Some(pb::SelfSubjectRulesReviewSpec {
                namespace: Some("team".into()),
            }),
            ..Default::default()
        };
        let body = envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectRulesReview",
            review.encode_to_vec(),
        );
        assert_eq!(decode(&body).unwrap()["spec"]["namespace"], "team");
        assert!(decode(b"nope").is_err());
        assert!(decode(&envelope("v1", "ConfigMap", Vec::new())).is_err());
    }

    #[test]
    fn token_reviews_decode_as_client_go_sends_them() {
        use k8s_pb::api::authentication::v1 as authn;
        let review = authn::TokenReview {
            spec: Some(authn::TokenReviewSpec {
                token: Some("abc.def".into()),
                audiences: vec!["api".into()],
            }),
            ..Default::default()
        };
        let body = envelope(
            "authentication.k8s.io/v1",
            "TokenReview",
            review.encode_to_vec(),
        );
        let decoded = decode(&body).unwrap();
        assert_eq!(decoded["kind"], "TokenReview");
        assert_eq!(decoded["spec"]["token"], "abc.def");
        assert_eq!(decoded["spec"]["audiences"], json!(["api"]));
    }
}
