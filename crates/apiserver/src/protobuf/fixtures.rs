//! Test fixtures shared by the tests of every part: an object of each kind with every field
//! set.

use serde_json::{Value, json};

use super::{MAGIC, decode, encode, supported_kinds};

/// A time, whole seconds.
pub(super) const TEN: &str = "2026-11-29T10:00:00Z";
/// An hour after [`TEN`].
pub(super) const ELEVEN: &str = "2026-11-29T11:00:00Z";

/// `object` with this apiVersion and kind.
pub(super) fn typed(api_version: &str, kind: &str, mut object: Value) -> Value {
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    object
}

/// Encoding `object` and decoding the body gives `object` back.
pub(super) fn round_trip(object: &Value) {
    let body = encode(object).unwrap_or_else(|e| panic!("encoding {object}: {e}"));
    assert!(body.starts_with(&MAGIC));
    let back = decode(&body).unwrap_or_else(|e| panic!("decoding {object}: {e}"));
    assert_eq!(&back, object);
}

/// Object metadata exercising every field, times, maps, owner references, FieldsV1.
pub(super) fn meta(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "generateName": "gen-",
        "uid": "6c1b8e1e-4b1e-4a55-9d5c-0d5a2e1f9c11",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": TEN,
        "deletionTimestamp": ELEVEN,
        "deletionGracePeriodSeconds": 0,
        "labels": {"app": "demo", "empty": ""},
        "annotations": {"example.com/note": "a \"quoted\" note"},
        "ownerReferences": [{
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "owner",
            "uid": "u-1",
            "controller": true,
            "blockOwnerDeletion": false,
        }],
        "finalizers": ["example.com/keep"],
        "managedFields": [{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": TEN,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {".": {}}},
            "subresource": "status",
        }],
    });
    if let Some(namespace) = namespace {
        meta["namespace"] = json!(namespace);
    }
    meta
}

/// A label selector with labels and expressions.
pub(super) fn selector() -> Value {
    json!({
        "matchLabels": {"app": "demo"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    })
}

/// An object reference with every field set.
pub(super) fn reference() -> Value {
    json!({
        "kind": "Pod",
        "namespace": "default",
        "name": "web-0",
        "uid": "u-2",
        "apiVersion": "v1",
        "resourceVersion": "7",
        "fieldPath": "spec.containers{web}",
    })
}

/// A webhook with every field set (a mutating one with a URL and a reinvocation policy).
pub(super) fn webhook(mutating: bool) -> Value {
    let mut webhook = json!({
        "name": "check.example.com",
        "clientConfig": {
            "service": {"namespace": "system", "name": "hook", "path": "/check", "port": 8443},
            "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
        },
        "rules": [{
            "operations": ["CREATE", "UPDATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["configmaps"],
            "scope": "Namespaced",
        }],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "namespaceSelector": selector(),
        "objectSelector": {"matchLabels": {"checked": "true"}},
        "sideEffects": "None",
        "timeoutSeconds": 0,
        "admissionReviewVersions": ["v1"],
        "matchConditions": [{"name": "not-system", "expression": "request.userInfo.username != 'system'"}],
    });
    if mutating {
        webhook["reinvocationPolicy"] = json!("IfNeeded");
        webhook["clientConfig"] = json!({"url": "https://hook.example.com/mutate"});
    }
    webhook
}

/// An object of each kind (without apiVersion and kind), every field set.
pub(super) fn fixture(kind: &str) -> Option<Value> {
    Some(match kind {
        "Namespace" => json!({
            "metadata": meta("team-a", None),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {
                "phase": "Terminating",
                "conditions": [{
                    "type": "NamespaceDeletionContentFailure",
                    "status": "True",
                    "lastTransitionTime": TEN,
                    "reason": "ContentDeletionFailed",
                    "message": "failed",
                }],
            },
        }),
        "ConfigMap" => json!({
            "metadata": meta("settings", Some("default")),
            "data": {"key": "value", "multi": "line\nline"},
            "binaryData": {"blob": "AAEC/w=="},
            "immutable": false,
        }),
        "Secret" => json!({
            "metadata": meta("creds", Some("default")),
            "data": {"password": "czNjcjN0", "empty": ""},
            "stringData": {"user": "admin"},
            "type": "Opaque",
            "immutable": true,
        }),
        "ServiceAccount" => json!({
            "metadata": meta("robot", Some("default")),
            "secrets": [{"name": "robot-token"}],
            "imagePullSecrets": [{"name": "registry"}],
            "automountServiceAccountToken": false,
        }),
        "PersistentVolumeClaim" => json!({
            "metadata": meta("data", Some("default")),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "selector": selector(),
                "resources": {"requests": {"storage": "10Gi"}, "limits": {"storage": "20Gi"}},
                "volumeName": "pv-1",
                "storageClassName": "",
                "volumeMode": "Filesystem",
                "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
                "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap", "namespace": "other"},
                "volumeAttributesClassName": "fast",
            },
            "status": {
                "phase": "Bound",
                "accessModes": ["ReadWriteOnce"],
                "capacity": {"storage": "10Gi"},
                "conditions": [{
                    "type": "Resizing",
                    "status": "True",
                    "lastProbeTime": TEN,
                    "lastTransitionTime": ELEVEN,
                    "reason": "Expanding",
                    "message": "growing",
                }],
                "allocatedResources": {"storage": "12Gi"},
                "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
                "currentVolumeAttributesClassName": "slow",
                "modifyVolumeStatus": {"targetVolumeAttributesClassName": "fast", "status": "InProgress"},
                "healthStatus": {
                    "healthConditions": [{"status": "Inaccessible", "reason": "Gone", "message": "lost"}],
                    "lastTransitionTime": TEN,
                },
            },
        }),
        "Event" => json!({
            "metadata": meta("web-0.1", Some("default")),
            "involvedObject": reference(),
            "reason": "BackOff",
            "message": "Back-off restarting",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": TEN,
            "lastTimestamp": ELEVEN,
            "count": 3,
            "type": "Warning",
            "eventTime": "2026-11-29T10:00:00.123456Z",
            "series": {"count": 2, "lastObservedTime": "2026-11-29T10:30:00.000001Z"},
            "action": "Restarting",
            "related": reference(),
            "reportingComponent": "kubelet",
            "reportingInstance": "node-1",
        }),
        "events.k8s.io/Event" => json!({
            "metadata": meta("web-0.2", Some("default")),
            "eventTime": "2026-11-29T10:00:00.000000Z",
            "series": {"count": 5, "lastObservedTime": "2026-11-29T10:30:00.500000Z"},
            "reportingController": "example.com/controller",
            "reportingInstance": "controller-0",
            "action": "Reconcile",
            "reason": "Synced",
            "regarding": reference(),
            "related": reference(),
            "note": "synced",
            "type": "Normal",
            "deprecatedSource": {"component": "c", "host": "h"},
            "deprecatedFirstTimestamp": TEN,
            "deprecatedLastTimestamp": ELEVEN,
            "deprecatedCount": 9,
        }),
        "Lease" => json!({
            "metadata": meta("leader", Some("kube-system")),
            "spec": {
                "holderIdentity": "node-1",
                "leaseDurationSeconds": 0,
                "acquireTime": "2026-11-29T10:00:00.250000Z",
                "renewTime": "2026-11-29T10:00:15.000007Z",
                "leaseTransitions": 4,
                "strategy": "OldestEmulationVersion",
                "preferredHolder": "node-2",
            },
        }),
        "StorageClass" => json!({
            "metadata": meta("local", None),
            "provisioner": "example.com/local",
            "parameters": {"fsType": "ext4"},
            "reclaimPolicy": "Retain",
            "mountOptions": ["noatime"],
            "allowVolumeExpansion": true,
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowedTopologies": [{
                "matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}],
            }],
        }),
        "Scale" => json!({
            "metadata": meta("web", Some("default")),
            "spec": {"replicas": 3},
            "status": {"replicas": 2, "selector": "app=web"},
        }),
        "Role" => json!({
            "metadata": meta("reader", Some("default")),
            "rules": [{
                "verbs": ["get", "list"],
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["settings"],
            }],
        }),
        "ClusterRole" => json!({
            "metadata": meta("aggregate", None),
            "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            "aggregationRule": {"clusterRoleSelectors": [selector()]},
        }),
        "RoleBinding" | "ClusterRoleBinding" => json!({
            "metadata": meta("bind", (kind == "RoleBinding").then_some("default")),
            "subjects": [
                {"kind": "ServiceAccount", "name": "robot", "namespace": "default"},
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        }),
        "TokenRequest" => json!({
            "metadata": meta("robot", Some("default")),
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": 3600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "u-3"},
                "attestations": {"example.com/claim": ["a", "b"]},
            },
            "status": {"token": "eyJhbGciOi.x.y", "expirationTimestamp": ELEVEN},
        }),
        "ValidatingWebhookConfiguration" => json!({
            "metadata": meta("checks", None),
            "webhooks": [webhook(false)],
        }),
        "MutatingWebhookConfiguration" => json!({
            "metadata": meta("defaults", None),
            "webhooks": [webhook(true)],
        }),
        "Status" => json!({
            "metadata": {"resourceVersion": "9", "continue": "token", "remainingItemCount": 0},
            "status": "Failure",
            "message": "configmaps \"x\" not found",
            "reason": "NotFound",
            "details": {
                "name": "x",
                "group": "apps",
                "kind": "configmaps",
                "uid": "u-4",
                "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "data"}],
                "retryAfterSeconds": 5,
            },
            "code": 404,
        }),
        "DeleteOptions" => json!({
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-5", "resourceVersion": ""},
            "orphanDependents": false,
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
            "ignoreStoreReadErrorWithClusterBreakingPotential": true,
        }),
        _ => return None,
    })
}

/// Every supported kind as a full object: lists hold two items of their kind.
pub(super) fn every_kind() -> Vec<Value> {
    supported_kinds()
        .map(|(api_version, kind)| {
            let key = |k: &str| {
                if api_version == "events.k8s.io/v1" {
                    format!("events.k8s.io/{k}")
                } else {
                    k.to_owned()
                }
            };
            let object = match kind.strip_suffix("List").and_then(|k| fixture(&key(k))) {
                Some(item) => json!({
                    "metadata": {"resourceVersion": "7", "continue": "abc", "remainingItemCount": 0},
                    "items": [item.clone(), item],
                }),
                None => fixture(&key(kind))
                    .unwrap_or_else(|| panic!("no fixture for {api_version} {kind}")),
            };
            typed(api_version, kind, object)
        })
        .collect()
}
