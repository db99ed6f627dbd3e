//! What a PersistentVolumeClaim's data source makes of its volume: an Image's content, a blank
//! volume, or something EVE cannot fill a volume from. Admission and the composer read claims
//! through this one function, so what admission accepts (and warns about) is what the device
//! gets.

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;

use crate::{API_VERSION, GROUP};

/// The source of a claim's volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// No data source: a blank volume.
    Blank,
    /// The Image `name`, in the claim's namespace.
    Image {
        /// The field it was read from: `dataSourceRef` or `dataSource`.
        field: &'static str,
        /// The Image's name.
        name: String,
        /// What the reference says in another form than the canonical
        /// `{apiGroup: eve.lfedge.org, kind: Image}`; empty when canonical.
        forms: Vec<String>,
    },
    /// A source that is not an Image (another group or kind).
    Unknown {
        /// The field it was read from: `dataSourceRef` or `dataSource`.
        field: &'static str,
        /// Its `apiGroup`, empty for the core group.
        api_group: String,
        /// Its `kind`.
        kind: String,
    },
}

/// Whether `api_group` is the EVE group (with or without its version).
pub fn is_eve_group(api_group: &str) -> bool {
    api_group == GROUP || api_group == API_VERSION
}

/// The source of a claim: its `dataSourceRef`, or its `dataSource` when only that is set.
///
/// An Image is read in the canonical form `{apiGroup: eve.lfedge.org, kind: Image}` and in the
/// specification's: `kind: image` (any case), an `apiGroup` with the version
/// (`eve.lfedge.org/v1beta1`), or no `apiGroup` at all (the specification's `group:` field is not
/// a field of a data source and is dropped when unknown fields are not refused). Each departure
/// from the canonical form is listed in `forms`, for admission to warn about.
pub fn data_source(spec: &PersistentVolumeClaimSpec) -> DataSource {
    let (field, api_group, kind, name) = match (&spec.data_source_ref, &spec.data_source) {
        (Some(r), _) => ("dataSourceRef", r.api_group.as_deref(), &r.kind, &r.name),
        (None, Some(r)) => ("dataSource", r.api_group.as_deref(), &r.kind, &r.name),
        (None, None) => return DataSource::Blank,
    };
    let api_group = api_group.unwrap_or("");
    let image_kind = kind.eq_ignore_ascii_case("Image");
    if !image_kind || !(api_group.is_empty() || is_eve_group(api_group)) {
        return DataSource::Unknown {
            field,
            api_group: api_group.to_owned(),
            kind: kind.clone(),
        };
    }
    let mut forms = Vec::new();
    if kind != "Image" {
        forms.push(format!("kind: {kind} is written kind: Image"));
    }
    if api_group.is_empty() {
        forms.push(format!(
            "apiGroup: {GROUP} is missing (a data source names its group in apiGroup; the specification's group: {API_VERSION} is not a field of it)"
        ));
    } else if api_group != GROUP {
        forms.push(format!(
            "apiGroup: {api_group} is written apiGroup: {GROUP} (the group, without its version)"
        ));
    }
    DataSource::Image {
        field,
        name: name.clone(),
        forms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: serde_json::Value) -> PersistentVolumeClaimSpec {
        serde_json::from_value(serde_json::json!({ "dataSourceRef": source })).unwrap()
    }

    #[test]
    fn images_in_every_accepted_form_and_what_is_not_one() {
        let canonical = data_source(&spec(
            serde_json::json!({"apiGroup": "eve.lfedge.org", "kind": "Image", "name": "a"}),
        ));
        assert_eq!(
            canonical,
            DataSource::Image {
                field: "dataSourceRef",
                name: "a".into(),
                forms: vec![]
            }
        );
        // The specification's spelling: understood, with what to write instead.
        let lower = data_source(&spec(
            serde_json::json!({"apiGroup": "eve.lfedge.org", "kind": "image", "name": "a"}),
        ));
        let DataSource::Image { name, forms, .. } = lower else {
            panic!("{lower:?}")
        };
        assert_eq!(name, "a");
        assert_eq!(forms, ["kind: image is written kind: Image"]);
        let versioned = data_source(&spec(
            serde_json::json!({"apiGroup": "eve.lfedge.org/v1beta1", "kind": "Image", "name": "a"}),
        ));
        assert!(
            matches!(&versioned, DataSource::Image { forms, .. } if forms.len() == 1 && forms[0].contains("apiGroup: eve.lfedge.org (the group, without its version)")),
            "{versioned:?}"
        );
        let dropped = data_source(&spec(serde_json::json!({"kind": "image", "name": "a"})));
        assert!(
            matches!(&dropped, DataSource::Image { forms, .. } if forms.len() == 2 && forms[1].contains("apiGroup: eve.lfedge.org is missing")),
            "{dropped:?}"
        );
        // Not Images.
        for other in [
            serde_json::json!({"apiGroup": "eve.lfedge.org", "kind": "Imagery", "name": "a"}),
            serde_json::json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "a"}),
            serde_json::json!({"kind": "PersistentVolumeClaim", "name": "a"}),
            serde_json::json!({"apiGroup": "example.com", "kind": "Image", "name": "a"}),
        ] {
            assert!(
                matches!(
                    data_source(&spec(other.clone())),
                    DataSource::Unknown { .. }
                ),
                "{other}"
            );
        }
        // No source: blank; only the older dataSource: read the same way.
        assert_eq!(
            data_source(&PersistentVolumeClaimSpec::default()),
            DataSource::Blank
        );
        let old: PersistentVolumeClaimSpec = serde_json::from_value(serde_json::json!({
            "dataSource": {"apiGroup": "eve.lfedge.org", "kind": "Image", "name": "b"}
        }))
        .unwrap();
        assert!(matches!(
            data_source(&old),
            DataSource::Image {
                field: "dataSource",
                ..
            }
        ));
    }
}
