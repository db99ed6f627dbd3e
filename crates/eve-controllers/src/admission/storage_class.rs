//! StorageClass (a native kind): an EVE data store (`provisioner: eve`) has a known type, a URL
//! unless blank, and a credentials Secret that exists, with its namespace.

use apimachinery::FieldError;
use eve_model::data_store::{
    CREDENTIAL_KEYS, CredentialsError, CredentialsSecret, credentials_secret,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;

use super::Refusal;
use super::check::Check;
use super::references::unavailable;
use super::table::Rules;

/// The types of EVE data store.
const TYPES: &[&str] = &[
    "blank",
    "container",
    "http",
    "https",
    "ftp",
    "sftp",
    "s3",
    "azure",
];

impl Rules for StorageClass {
    async fn validate(
        check: &mut Check<'_>,
        object: &Self,
        _: Option<&Self>,
    ) -> Result<(), Refusal> {
        if object.provisioner != "eve" {
            return Ok(());
        }
        let parameter = |name: &str| {
            object
                .parameters
                .as_ref()
                .and_then(|p| p.get(name))
                .map(String::as_str)
        };
        let kind = parameter("type").unwrap_or("");
        if !TYPES.contains(&kind) {
            check
                .errors
                .push(FieldError::not_supported("parameters.type", kind, TYPES));
        }
        if kind == "ftp" {
            check.warnings.push(
                "parameters.type: EVE devices cannot fetch over FTP (their data stores are HTTP(S), SFTP, S3, Azure Blob and container registries); images in this store download only once it is also served over one of those".into(),
            );
        }
        if kind != "blank" && !kind.is_empty() && parameter("URL").is_none_or(str::is_empty) {
            check.errors.push(FieldError::required(
                "parameters.URL",
                format!("a {kind} data store needs its URL"),
            ));
        }
        let reference = match credentials_secret(&object.parameters.clone().unwrap_or_default()) {
            Ok(reference) => reference,
            Err(e) => {
                check.errors.push(match &e {
                    CredentialsError::Malformed(value) => {
                        FieldError::invalid("parameters.credentialsRef", value, e.to_string())
                    }
                    CredentialsError::NoNamespace => {
                        FieldError::required("parameters.credentialsSecretNamespace", e.to_string())
                    }
                });
                None
            }
        };
        if let Some(CredentialsSecret {
            path,
            namespace,
            name,
        }) = reference
        {
            let api: Api<Secret> = Api::namespaced(check.admission.client.clone(), &namespace);
            match api.get_opt(&name).await.map_err(unavailable)? {
                None => check.missing.push(FieldError::not_found(
                    path,
                    &name,
                    format!("Secret {namespace}/{name} does not exist; create it first"),
                )),
                Some(secret) => {
                    let data = secret.data.unwrap_or_default();
                    if !CREDENTIAL_KEYS.iter().any(|key| data.contains_key(*key)) {
                        check.errors.push(FieldError::invalid(
                            path,
                            &name,
                            format!(
                                "Secret {namespace}/{name} has none of the keys {}: a data store's credentials are username (or apiKey) and password",
                                CREDENTIAL_KEYS.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::cases;

    #[test]
    fn storage_classes() {
        let class = |rest: &str| format!("kind: StorageClass\nmetadata: {{name: store}}\n{rest}");
        cases(
            &[
                "kind: Secret\nmetadata: {name: creds, namespace: stores}\ndata: {username: cm9ib3Q=, password: cHc=}",
                "kind: Secret\nmetadata: {name: empty, namespace: stores}\ndata: {token: eA==}",
            ],
            &[
                (
                    class("provisioner: eve\nparameters: {type: blank}"),
                    expect!["accepted"],
                ),
                (
                    class(
                        "provisioner: eve\nparameters: {type: https, URL: 'https://x', credentialsSecret: creds, credentialsSecretNamespace: stores}",
                    ),
                    expect!["accepted"],
                ),
                (
                    class("provisioner: eve\nparameters: {type: nfs}"),
                    expect![[r#"
                        invalid:
                          parameters.type: Unsupported value: "nfs": supported values: "blank", "container", "http", "https", "ftp", "sftp", "s3", "azure"
                          parameters.URL: Required value: a nfs data store needs its URL"#]],
                ),
                (
                    class("provisioner: eve"),
                    expect![[r#"
                    invalid:
                      parameters.type: Unsupported value: "": supported values: "blank", "container", "http", "https", "ftp", "sftp", "s3", "azure""#]],
                ),
                (
                    class("provisioner: eve\nparameters: {type: ftp, URL: 'ftp://x'}"),
                    expect![[r#"
                        accepted
                        warning: parameters.type: EVE devices cannot fetch over FTP (their data stores are HTTP(S), SFTP, S3, Azure Blob and container registries); images in this store download only once it is also served over one of those"#]],
                ),
                (
                    class("provisioner: eve\nparameters: {type: s3}"),
                    expect![[r#"
                        invalid:
                          parameters.URL: Required value: a s3 data store needs its URL"#]],
                ),
                (
                    class(
                        "provisioner: eve\nparameters: {type: https, URL: 'https://x', credentialsSecret: creds}",
                    ),
                    expect![[r#"
                        invalid:
                          parameters.credentialsSecretNamespace: Required value: a StorageClass has no namespace: name the credentials Secret's namespace too"#]],
                ),
                (
                    class(
                        "provisioner: eve\nparameters: {type: https, URL: 'https://x', credentialsSecret: other, credentialsSecretNamespace: stores}",
                    ),
                    expect![[r#"
                        invalid:
                          parameters.credentialsSecret: Not found: "other": Secret stores/other does not exist; create it first"#]],
                ),
                (
                    class(
                        "provisioner: eve\nparameters: {type: container, URL: 'https://quay.io', credentialsRef: stores/creds}",
                    ),
                    expect!["accepted"],
                ),
                (
                    class(
                        "provisioner: eve\nparameters: {type: container, URL: 'https://quay.io', credentialsRef: creds}",
                    ),
                    expect![[r#"
                        invalid:
                          parameters.credentialsRef: Invalid value: "creds": write NAMESPACE/NAME: a StorageClass has no namespace, so the credentials Secret's must be named"#]],
                ),
                (
                    class(
                        "provisioner: eve\nparameters: {type: container, URL: 'https://quay.io', credentialsRef: stores/empty}",
                    ),
                    expect![[r#"
                        invalid:
                          parameters.credentialsRef: Invalid value: "empty": Secret stores/empty has none of the keys username, apiKey, password: a data store's credentials are username (or apiKey) and password"#]],
                ),
                (
                    class("provisioner: rancher.io/local-path\nparameters: {type: nfs}"),
                    expect!["accepted"],
                ),
            ],
        );
    }
}
