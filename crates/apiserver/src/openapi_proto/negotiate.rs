//! Which form of `/openapi/v2` a request's `Accept` header asks for.

use super::{CONTENT_TYPE, MEDIA_TYPE};

/// What `/openapi/v2` answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The JSON document.
    Json,
    /// The `openapi.v2.Document` protobuf ([`MEDIA_TYPE`], served as [`CONTENT_TYPE`]).
    Protobuf,
}

/// The format of the most preferred type of `accept` the server produces (by quality, then
/// order): JSON for `application/json`, `application/*`, `*/*` or an empty header, protobuf for
/// [`MEDIA_TYPE`] or [`CONTENT_TYPE`]; `None` (406) when there is none.
pub fn negotiate(accept: &str) -> Option<Format> {
    if accept.trim().is_empty() {
        return Some(Format::Json);
    }
    let mut best: Option<(f32, Format)> = None;
    for entry in accept.split(',') {
        let mut params = entry.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let quality = params
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "application/json" | "application/*" | "*/*" => Format::Json,
            MEDIA_TYPE | CONTENT_TYPE => Format::Protobuf,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_most_preferred_type_served() {
        assert_eq!(negotiate(""), Some(Format::Json));
        assert_eq!(negotiate(MEDIA_TYPE), Some(Format::Protobuf));
        assert_eq!(negotiate(CONTENT_TYPE), Some(Format::Protobuf));
        assert_eq!(
            negotiate(&format!("{MEDIA_TYPE}, application/json")),
            Some(Format::Protobuf)
        );
        assert_eq!(
            negotiate(&format!("application/json, {MEDIA_TYPE}")),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(&format!("application/json;q=0.5, {MEDIA_TYPE}")),
            Some(Format::Protobuf)
        );
        assert_eq!(negotiate("*/*"), Some(Format::Json));
        assert_eq!(negotiate("application/json;q=0"), None);
        assert_eq!(negotiate("application/vnd.kubernetes.protobuf"), None);
        assert_eq!(negotiate("text/html"), None);
    }
}
