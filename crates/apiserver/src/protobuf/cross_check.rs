//! Cross-checks against k8s-pb: prost structs generated from the upstream `.proto` files by
//! another project, so that a wrong field number or type in our own files shows. Each object is
//! the shared fixture of its kind (see [`fixture`]) built a second time as k8s-pb structs, less
//! the few fields k8s-pb's older messages lack. The core and meta kinds are here, those of the
//! named API groups in [`groups`].

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{Value, json};

use super::fixtures::{fixture, typed};
use super::{MAGIC, decode, encode, encode_watch_event};

mod groups;

/// [`super::fixtures::TEN`] in seconds.
const TEN_SECONDS: i64 = 1_795_946_400;
/// [`super::fixtures::ELEVEN`] in seconds.
const ELEVEN_SECONDS: i64 = 1_795_950_000;

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn map<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: None,
    })
}

/// A `MicroTime` as we write it: no nanoseconds when there are none.
fn micro(seconds: i64, nanos: i32) -> Option<meta::MicroTime> {
    Some(meta::MicroTime {
        seconds: Some(seconds),
        nanos: (nanos != 0).then_some(nanos),
    })
}

fn quantity(text: &str) -> Quantity {
    Quantity { string: s(text) }
}

/// The shared fixture of `key` as an object of this apiVersion and kind.
fn expected(api_version: &str, kind: &str, key: &str) -> Value {
    typed(api_version, kind, fixture(key).unwrap())
}

/// The shared fixture of `kind` less the field at `pointer` (a JSON pointer), which k8s-pb's
/// message of the kind, older than ours, lacks.
fn expected_without(api_version: &str, kind: &str, pointer: &str) -> Value {
    let mut expected = expected(api_version, kind, kind);
    let (parent, field) = pointer.rsplit_once('/').unwrap();
    expected
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove(field);
    expected
}

/// The envelope as Go writes it: the content fields present but empty.
fn go_body(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        content_encoding: s(""),
        content_type: s(""),
    };
    [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
}

/// k8s-pb's bytes decode to `expected`, and our encoding of `expected` decodes with k8s-pb to
/// the same struct.
fn check<M: Message + Default + PartialEq + Debug>(message: &M, expected: Value) {
    let api_version = expected["apiVersion"].as_str().unwrap();
    let kind = expected["kind"].as_str().unwrap();
    let body = go_body(api_version, kind, message.encode_to_vec());
    assert_eq!(decode(&body).unwrap(), expected, "decoding {kind}");
    let ours = encode(&expected).unwrap();
    let unknown = Unknown::decode(&ours[MAGIC.len()..]).unwrap();
    let type_meta = unknown.type_meta.unwrap();
    assert_eq!(type_meta.api_version.as_deref(), Some(api_version));
    assert_eq!(type_meta.kind.as_deref(), Some(kind));
    assert_eq!(unknown.content_encoding, None);
    let back = M::decode(unknown.raw.unwrap_or_default().as_slice()).unwrap();
    assert_eq!(&back, message, "re-encoding {kind}");
}

/// [`super::fixtures::meta`] as k8s-pb's `ObjectMeta`.
fn object_meta(name: &str, namespace: Option<&str>) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s("gen-"),
        namespace: namespace.map(str::to_owned),
        uid: s("6c1b8e1e-4b1e-4a55-9d5c-0d5a2e1f9c11"),
        resource_version: s("42"),
        generation: Some(3),
        creation_timestamp: time(TEN_SECONDS),
        deletion_timestamp: time(ELEVEN_SECONDS),
        deletion_grace_period_seconds: Some(0),
        labels: map(&[("app", "demo".to_owned()), ("empty", String::new())]),
        annotations: map(&[("example.com/note", "a \"quoted\" note".to_owned())]),
        owner_references: vec![meta::OwnerReference {
            api_version: s("v1"),
            kind: s("ConfigMap"),
            name: s("owner"),
            uid: s("u-1"),
            controller: Some(true),
            block_owner_deletion: Some(false),
        }],
        finalizers: strings(&["example.com/keep"]),
        managed_fields: vec![meta::ManagedFieldsEntry {
            manager: s("kubectl"),
            operation: s("Apply"),
            api_version: s("v1"),
            time: time(TEN_SECONDS),
            fields_type: s("FieldsV1"),
            fields_v1: Some(meta::FieldsV1 {
                raw: Some(br#"{"f:data":{"f:key":{}},"f:metadata":{".":{}}}"#.to_vec()),
            }),
            subresource: s("status"),
        }],
        ..Default::default()
    })
}

/// [`super::fixtures::selector`] as k8s-pb's `LabelSelector`.
fn label_selector() -> Option<meta::LabelSelector> {
    Some(meta::LabelSelector {
        match_labels: map(&[("app", "demo".to_owned())]),
        match_expressions: vec![meta::LabelSelectorRequirement {
            key: s("tier"),
            operator: s("In"),
            values: strings(&["a", "b"]),
        }],
    })
}

/// [`super::fixtures::reference`] as k8s-pb's `ObjectReference`.
fn object_reference() -> Option<core::ObjectReference> {
    Some(core::ObjectReference {
        kind: s("Pod"),
        namespace: s("default"),
        name: s("web-0"),
        uid: s("u-2"),
        api_version: s("v1"),
        resource_version: s("7"),
        field_path: s("spec.containers{web}"),
    })
}

#[test]
fn config_map() {
    let message = core::ConfigMap {
        metadata: object_meta("settings", Some("default")),
        immutable: Some(false),
        data: map(&[
            ("key", "value".to_owned()),
            ("multi", "line\nline".to_owned()),
        ]),
        binary_data: map(&[("blob", vec![0u8, 1, 2, 255])]),
    };
    check(&message, expected("v1", "ConfigMap", "ConfigMap"));
}

#[test]
fn a_body_as_client_go_writes_it_reads_as_kubectl_json() {
    // Go writes every non-pointer field, zero or not, and an empty message for a zero
    // time: the JSON must leave them out, as kubectl's JSON does.
    let message = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("settings"),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        data: map(&[("key", "value".to_owned())]),
        ..Default::default()
    };
    let body = go_body("v1", "ConfigMap", message.encode_to_vec());
    assert_eq!(
        decode(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"key": "value"}})
    );
}

#[test]
fn secret_bytes() {
    let message = core::Secret {
        metadata: object_meta("creds", Some("default")),
        immutable: Some(true),
        data: map(&[("password", b"s3cr3t".to_vec()), ("empty", Vec::new())]),
        string_data: map(&[("user", "admin".to_owned())]),
        r#type: s("Opaque"),
    };
    check(&message, expected("v1", "Secret", "Secret"));
}

#[test]
fn namespace() {
    let message = core::Namespace {
        metadata: object_meta("team-a", None),
        spec: Some(core::NamespaceSpec {
            finalizers: strings(&["kubernetes"]),
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Terminating"),
            conditions: vec![core::NamespaceCondition {
                r#type: s("NamespaceDeletionContentFailure"),
                status: s("True"),
                last_transition_time: time(TEN_SECONDS),
                reason: s("ContentDeletionFailed"),
                message: s("failed"),
            }],
        }),
    };
    check(&message, expected("v1", "Namespace", "Namespace"));
}

#[test]
fn service_account() {
    let message = core::ServiceAccount {
        metadata: object_meta("robot", Some("default")),
        secrets: vec![core::ObjectReference {
            name: s("robot-token"),
            ..Default::default()
        }],
        image_pull_secrets: vec![core::LocalObjectReference {
            name: s("registry"),
        }],
        automount_service_account_token: Some(false),
    };
    check(&message, expected("v1", "ServiceAccount", "ServiceAccount"));
}

#[test]
fn persistent_volume_claim() {
    let message = core::PersistentVolumeClaim {
        metadata: object_meta("data", Some("default")),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: strings(&["ReadWriteOnce"]),
            selector: label_selector(),
            resources: Some(core::VolumeResourceRequirements {
                limits: map(&[("storage", quantity("20Gi"))]),
                requests: map(&[("storage", quantity("10Gi"))]),
            }),
            volume_name: s("pv-1"),
            storage_class_name: s(""),
            volume_mode: s("Filesystem"),
            data_source: Some(core::TypedLocalObjectReference {
                api_group: s("snapshot.storage.k8s.io"),
                kind: s("VolumeSnapshot"),
                name: s("snap"),
            }),
            data_source_ref: Some(core::TypedObjectReference {
                api_group: s("snapshot.storage.k8s.io"),
                kind: s("VolumeSnapshot"),
                name: s("snap"),
                namespace: s("other"),
            }),
            volume_attributes_class_name: s("fast"),
        }),
        status: Some(core::PersistentVolumeClaimStatus {
            phase: s("Bound"),
            access_modes: strings(&["ReadWriteOnce"]),
            capacity: map(&[("storage", quantity("10Gi"))]),
            conditions: vec![core::PersistentVolumeClaimCondition {
                r#type: s("Resizing"),
                status: s("True"),
                last_probe_time: time(TEN_SECONDS),
                last_transition_time: time(ELEVEN_SECONDS),
                reason: s("Expanding"),
                message: s("growing"),
            }],
            allocated_resources: map(&[("storage", quantity("12Gi"))]),
            allocated_resource_statuses: map(&[(
                "storage",
                "ControllerResizeInProgress".to_owned(),
            )]),
            current_volume_attributes_class_name: s("slow"),
            modify_volume_status: Some(core::ModifyVolumeStatus {
                target_volume_attributes_class_name: s("fast"),
                status: s("InProgress"),
            }),
        }),
    };
    check(
        &message,
        expected_without("v1", "PersistentVolumeClaim", "/status/healthStatus"),
    );
}

#[test]
fn core_event() {
    let message = core::Event {
        metadata: object_meta("web-0.1", Some("default")),
        involved_object: object_reference(),
        reason: s("BackOff"),
        message: s("Back-off restarting"),
        source: Some(core::EventSource {
            component: s("kubelet"),
            host: s("node-1"),
        }),
        first_timestamp: time(TEN_SECONDS),
        last_timestamp: time(ELEVEN_SECONDS),
        count: Some(3),
        r#type: s("Warning"),
        event_time: micro(TEN_SECONDS, 123_456_000),
        series: Some(core::EventSeries {
            count: Some(2),
            last_observed_time: micro(TEN_SECONDS + 1_800, 1_000),
        }),
        action: s("Restarting"),
        related: object_reference(),
        reporting_component: s("kubelet"),
        reporting_instance: s("node-1"),
    };
    check(&message, expected("v1", "Event", "Event"));
}

#[test]
fn status_delete_options_and_lists() {
    let status = meta::Status {
        metadata: Some(meta::ListMeta {
            resource_version: s("9"),
            r#continue: s("token"),
            remaining_item_count: Some(0),
            ..Default::default()
        }),
        status: s("Failure"),
        message: s("configmaps \"x\" not found"),
        reason: s("NotFound"),
        details: Some(meta::StatusDetails {
            name: s("x"),
            group: s("apps"),
            kind: s("configmaps"),
            uid: s("u-4"),
            causes: vec![meta::StatusCause {
                reason: s("FieldValueInvalid"),
                message: s("bad"),
                field: s("data"),
            }],
            retry_after_seconds: Some(5),
        }),
        code: Some(404),
    };
    check(&status, expected("v1", "Status", "Status"));
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("u-5"),
            resource_version: s(""),
        }),
        orphan_dependents: Some(false),
        propagation_policy: s("Foreground"),
        dry_run: strings(&["All"]),
        ignore_store_read_error_with_cluster_breaking_potential: Some(true),
    };
    check(
        &options,
        expected("meta.k8s.io/v1", "DeleteOptions", "DeleteOptions"),
    );
    let list = core::ConfigMapList {
        metadata: Some(meta::ListMeta {
            resource_version: s("10"),
            ..Default::default()
        }),
        items: vec![
            core::ConfigMap {
                metadata: Some(meta::ObjectMeta {
                    name: s("a"),
                    ..Default::default()
                }),
                ..Default::default()
            },
            core::ConfigMap {
                data: map(&[("k", "v".to_owned())]),
                ..Default::default()
            },
        ],
    };
    check(
        &list,
        json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "10"},
            "items": [{"metadata": {"name": "a"}}, {"data": {"k": "v"}}],
        }),
    );
}

#[test]
fn watch_event_frames_read_with_k8s_pb() {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    let frame = encode_watch_event("ADDED", &object).unwrap();
    let event = meta::WatchEvent::decode(&frame[4..]).unwrap();
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let raw = event.object.unwrap().raw.unwrap();
    let unknown = Unknown::decode(&raw[MAGIC.len()..]).unwrap();
    assert_eq!(
        unknown.type_meta.unwrap().kind.as_deref(),
        Some("ConfigMap")
    );
    let config_map = core::ConfigMap::decode(unknown.raw.unwrap().as_slice()).unwrap();
    assert_eq!(config_map.metadata.unwrap().name.as_deref(), Some("cm"));
}
