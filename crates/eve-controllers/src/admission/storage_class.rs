//! StorageClass (a native kind): an EVE data store (`provisioner: eve`) has a known type, a URL
//! unless blank, and a credentials Secret that exists, with its namespace.

use apimachinery::FieldError;
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
        if let Some(secret) = parameter("credentialsSecret") {
            let namespace = parameter("credentialsSecretNamespace").unwrap_or("");
            if namespace.is_empty() {
                check.errors.push(FieldError::required(
                    "parameters.credentialsSecretNamespace",
                    "a StorageClass has no namespace: name the credentials Secret's namespace too",
                ));
            } else {
                let api: Api<Secret> = Api::namespaced(check.admission.client.clone(), namespace);
                if api.get_opt(secret).await.map_err(unavailable)?.is_none() {
                    check.missing.push(FieldError::not_found(
                        "parameters.credentialsSecret",
                        secret,
                        format!("Secret {namespace}/{secret} does not exist; create it first"),
                    ));
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
            &["kind: Secret\nmetadata: {name: creds, namespace: stores}"],
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
                    class("provisioner: rancher.io/local-path\nparameters: {type: nfs}"),
                    expect!["accepted"],
                ),
            ],
        );
    }
}
