//! Content negotiation in one place: what a request body is (`Content-Type`), and what the
//! client takes back (`Accept`), as kube-apiserver negotiates them.

use http::{HeaderMap, header};

use super::respond::Refusal;

/// JSON.
pub(crate) const JSON: &str = "application/json";
/// Kubernetes' protobuf envelope.
pub(crate) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// A `meta.k8s.io/v1` Table, as JSON.
pub(crate) const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// Objects as `meta.k8s.io/v1` PartialObjectMetadata, as JSON.
pub(crate) const METADATA: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
/// Lists as `meta.k8s.io/v1` PartialObjectMetadataList, as JSON.
pub(crate) const METADATA_LIST: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// The media type of the request body: lower case, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase()
}

/// The format of an object in a create or update body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFormat {
    /// `application/json` (or no type).
    Json,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

/// The format of a create or update body, or 415.
pub(crate) fn body_format(media_type: &str, protobuf: bool) -> Result<BodyFormat, Refusal> {
    match media_type {
        "" | JSON | "*/*" => Ok(BodyFormat::Json),
        PROTOBUF if protobuf => Ok(BodyFormat::Protobuf),
        _ => Err(Refusal::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            if protobuf {
                "application/json, application/yaml, application/vnd.kubernetes.protobuf"
            } else {
                "application/json, application/yaml"
            }
        ))),
    }
}

/// The kind of a patch body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchFormat {
    /// RFC 6902 JSON patch.
    Json,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// Strategic merge patch (native kinds only).
    Strategic,
    /// Server-side apply.
    Apply,
}

/// The kind of a patch body, or 415 (a strategic merge patch of a custom resource too, as
/// kube-apiserver answers).
pub(crate) fn patch_format(media_type: &str, native: bool) -> Result<PatchFormat, Refusal> {
    let format = match media_type {
        "application/json-patch+json" => PatchFormat::Json,
        "application/merge-patch+json" => PatchFormat::Merge,
        "application/strategic-merge-patch+json" if native => PatchFormat::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchFormat::Apply,
        _ => {
            let accepted = if native {
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
            } else {
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            };
            return Err(Refusal::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            )));
        }
    };
    Ok(format)
}

/// What a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// JSON.
    Json,
    /// A Table (for get, list and watch).
    Table,
    /// Protobuf (native kinds).
    Protobuf,
    /// Objects' metadata only, as `meta.k8s.io/v1` PartialObjectMetadata (and
    /// PartialObjectMetadataList), JSON: what metadata informers ask for.
    Metadata,
}

/// The first type of `accept` the server can produce: a Table, objects' metadata, JSON, or
/// protobuf where the kind has a protobuf form; 406 if none.
pub(crate) fn output(accept: &str, protobuf: bool) -> Result<Output, Refusal> {
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let media = params[0].to_lowercase();
        if params.contains(&"as=Table") {
            if params.contains(&"g=meta.k8s.io") && media == JSON {
                return Ok(Output::Table);
            }
            continue;
        }
        let metadata = params.contains(&"as=PartialObjectMetadata")
            || params.contains(&"as=PartialObjectMetadataList");
        if metadata && params.contains(&"g=meta.k8s.io") && params.contains(&"v=v1") {
            if media == JSON {
                return Ok(Output::Metadata);
            }
            continue; // Their protobuf form is not served.
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue; // Other versions and kinds: not served.
        }
        match media.as_str() {
            JSON | "*/*" | "application/*" => return Ok(Output::Json),
            PROTOBUF if protobuf => return Ok(Output::Protobuf),
            _ => {}
        }
    }
    Err(Refusal::NotAcceptable(format!(
        "the server could not produce a response of any of the types {accept:?}: it serves {}",
        if protobuf {
            "application/json, application/vnd.kubernetes.protobuf, Tables and \
             PartialObjectMetadata (meta.k8s.io/v1, JSON)"
        } else {
            "application/json, Tables and PartialObjectMetadata (meta.k8s.io/v1, JSON)"
        }
    )))
}

/// Whether an `Accept` header takes JSON (an empty one takes anything).
pub(crate) fn accepts_json(accept: &str) -> bool {
    accept.is_empty()
        || accept.split(',').any(|a| {
            let a = a.split(';').next().unwrap_or("").trim();
            matches!(a, JSON | "*/*" | "application/*")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_acceptable_type_wins() {
        let check = |accept: &str, protobuf: bool, expected: Option<Output>| {
            assert_eq!(output(accept, protobuf).ok(), expected, "{accept}");
        };
        check("", false, Some(Output::Json));
        check("application/json", true, Some(Output::Json));
        check(&format!("{PROTOBUF}, {JSON}"), true, Some(Output::Protobuf));
        check(&format!("{PROTOBUF}, {JSON}"), false, Some(Output::Json));
        check(PROTOBUF, false, None);
        check(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            true,
            Some(Output::Table),
        );
        check(
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json",
            true,
            Some(Output::Metadata),
        );
        // kube-rs's list_metadata, and client-go's metadata client (protobuf first).
        check(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            false,
            Some(Output::Metadata),
        );
        check(
            &format!("{PROTOBUF};as=PartialObjectMetadata;g=meta.k8s.io;v=v1,{METADATA},{JSON}"),
            true,
            Some(Output::Metadata),
        );
        check(
            "application/json;as=PartialObjectMetadata;v=v1beta1;g=meta.k8s.io,application/json",
            true,
            Some(Output::Json),
        );
        check(
            "application/json;as=PartialObjectMetadata;v=v1beta1;g=meta.k8s.io",
            true,
            None,
        );
        check("text/html", true, None);
        check("*/*", false, Some(Output::Json));
        assert!(matches!(
            patch_format("application/strategic-merge-patch+json", false),
            Err(Refusal::UnsupportedMediaType(_))
        ));
        assert_eq!(
            patch_format("application/strategic-merge-patch+json", true).ok(),
            Some(PatchFormat::Strategic)
        );
        assert!(matches!(
            body_format(PROTOBUF, false),
            Err(Refusal::UnsupportedMediaType(_))
        ));
    }
}
