//! The validation messages, each as kube-apiserver words it.

use serde_json::json;

use super::*;
use crate::webhooks::config::tests::{hook, messages};

#[test]
fn kube_apiserver_rules_are_checked() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "short.name"}),
            "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots",
        ),
        (json!({"name": ""}), "webhooks[0].name: Required value"),
        (
            json!({"sideEffects": null}),
            "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
        ),
        (
            json!({"sideEffects": "Some"}),
            "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
        ),
        (
            json!({"sideEffects": "Unknown"}),
            "webhooks[0].sideEffects: Unsupported value: \"Unknown\": supported values: \"None\", \"NoneOnDryRun\"",
        ),
        (
            json!({"admissionReviewVersions": []}),
            "webhooks[0].admissionReviewVersions: Required value: must specify one of v1",
        ),
        (
            json!({"admissionReviewVersions": ["v1beta1"]}),
            "webhooks[0].admissionReviewVersions: Invalid value: \"[\\\"v1beta1\\\"]\": must include at least one of v1",
        ),
        (
            json!({"admissionReviewVersions": ["v1", "v1"]}),
            "webhooks[0].admissionReviewVersions[1]: Invalid value: \"v1\": duplicate version",
        ),
        (
            json!({"timeoutSeconds": 31}),
            "webhooks[0].timeoutSeconds: Invalid value: \"31\": the timeout value must be between 1 and 30 seconds",
        ),
        (
            json!({"timeoutSeconds": 0}),
            "webhooks[0].timeoutSeconds: Invalid value: \"0\": the timeout value must be between 1 and 30 seconds",
        ),
        (
            json!({"failurePolicy": "Sometimes"}),
            "webhooks[0].failurePolicy: Unsupported value: \"Sometimes\": supported values: \"Fail\", \"Ignore\"",
        ),
        (
            json!({"matchPolicy": "Close"}),
            "webhooks[0].matchPolicy: Unsupported value: \"Close\": supported values: \"Equivalent\", \"Exact\"",
        ),
        (
            json!({"clientConfig": {"url": null}}),
            "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
        ),
        (
            json!({"clientConfig": {"service": {"name": "s", "namespace": "n"}}}),
            "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
        ),
        (
            json!({"clientConfig": {"url": "http://example.com/x"}}),
            "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
        ),
        (
            json!({"clientConfig": {"url": "https://example.com/x#part"}}),
            "webhooks[0].clientConfig.url: Invalid value: \"part\": fragments are not permitted in the URL",
        ),
        (
            json!({"clientConfig": {"url": "https://example.com/x?a=b"}}),
            "webhooks[0].clientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
        ),
        (
            json!({"clientConfig": {"url": "https://me@example.com/x"}}),
            "webhooks[0].clientConfig.url: Invalid value: \"me\": user information is not permitted in the URL",
        ),
        (
            json!({"clientConfig": {"url": "https:///x"}}),
            "webhooks[0].clientConfig.url: Invalid value: \"\": host must be specified; desired format: https://host[/path]",
        ),
        (
            json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n", "port": 70000}}}),
            "webhooks[0].clientConfig.service.port: Invalid value: \"70000\": port is not valid: must be between 1 and 65535, inclusive",
        ),
        (
            json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n", "path": "no-slash"}}}),
            "webhooks[0].clientConfig.service.path: Invalid value: \"no-slash\": must start with a '/'",
        ),
        (
            json!({"clientConfig": {"url": null, "service": {"name": "s", "namespace": "n", "path": "/a//b"}}}),
            "webhooks[0].clientConfig.service.path: Invalid value: \"/a//b\": segment[1] may not be empty",
        ),
        (
            json!({"clientConfig": {"url": null, "service": {"namespace": "n"}}}),
            "webhooks[0].clientConfig.service.name: Required value: service name is required",
        ),
        (
            json!({"clientConfig": {"caBundle": "%%%"}}),
            "webhooks[0].clientConfig.caBundle: Invalid value: \"<bytes>\": must be base64-encoded PEM certificates: Invalid symbol 37, offset 0.",
        ),
        (
            json!({"rules": [{"operations": [], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"]}]}),
            "webhooks[0].rules[0].operations: Required value",
        ),
        (
            json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"]}]}),
            "webhooks[0].rules[0].operations: Invalid value: \"[\\\"*\\\",\\\"CREATE\\\"]\": if '*' is present, must not specify other operations",
        ),
        (
            json!({"rules": [{"operations": ["PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"]}]}),
            "webhooks[0].rules[0].operations[0]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": ["*", "apps"], "apiVersions": ["v1"], "resources": ["x"]}]}),
            "webhooks[0].rules[0].apiGroups: Invalid value: \"[\\\"*\\\",\\\"apps\\\"]\": if '*' is present, must not specify other API groups",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": [], "resources": ["x"]}]}),
            "webhooks[0].rules[0].apiVersions: Required value",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": []}]}),
            "webhooks[0].rules[0].resources: Required value",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*/*", "pods"]}]}),
            "webhooks[0].rules[0].resources: Invalid value: \"[\\\"*/*\\\",\\\"pods\\\"]\": if '*/*' is present, must not specify other resources",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*", "pods"]}]}),
            "webhooks[0].rules[0].resources: Invalid value: \"[\\\"*\\\",\\\"pods\\\"]\": if '*' is present, must not specify other resources without subresources",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"]}]}),
            "webhooks[0].rules[0].resources[1]: Invalid value: \"pods/status\": if 'pods/*' is present, must not specify pods/status",
        ),
        (
            json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["x"], "scope": "Galaxy"}]}),
            "webhooks[0].rules[0].scope: Unsupported value: \"Galaxy\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
        ),
        (
            json!({"matchConditions": [{"name": "c", "expression": "true"}]}),
            "webhooks[0].matchConditions: Forbidden: matchConditions are not supported by this server (they are CEL expressions, which it does not evaluate): choose requests with rules, namespaceSelector and objectSelector",
        ),
    ];
    for (changes, expected) in cases {
        let found = messages(Flavor::Validating, vec![hook(changes.clone())]);
        assert_eq!(found, [expected], "{changes}");
    }
    assert_eq!(
        messages(
            Flavor::Mutating,
            vec![hook(json!({"reinvocationPolicy": "Always"}))]
        ),
        [
            "webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\""
        ]
    );
    assert_eq!(
        messages(Flavor::Validating, vec![hook(json!({})), hook(json!({}))]),
        ["webhooks[1].name: Duplicate value: \"check.example.com\""]
    );
    // A trailing dot is allowed; an empty matchConditions list is not a condition.
    assert!(
        messages(
            Flavor::Validating,
            vec![hook(json!({"name": "a.b.c.", "matchConditions": []}))]
        )
        .is_empty()
    );
}
