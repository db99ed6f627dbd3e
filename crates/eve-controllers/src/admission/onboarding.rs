//! The onboarding policy kinds (OnboardCertificate, OnboardCertificateAuthority,
//! DeviceCertificateAuthority): a readable certificate (a CA's for the authorities), claimed by
//! one namespace only.

use apimachinery::FieldError;
use eve_model::{
    DeviceCertificateAuthority, OnboardCertificate, OnboardCertificateAuthority, certs,
};
use k8s_openapi::NamespaceResourceScope;
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};

use super::Refusal;
use super::check::Check;
use super::references::unavailable;
use super::table::Rules;

/// A policy kind: the one certificate it holds, and whether it is a CA's.
trait Policy:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    const CA: bool;
    fn certificate(&self) -> &str;
}

/// Each policy kind: its certificate (`spec.certificate`), whether it is a CA's, and its rules.
macro_rules! policy_kind {
    ($($kind:ty => $ca:expr),* $(,)?) => {$(
        impl Policy for $kind {
            const CA: bool = $ca;
            fn certificate(&self) -> &str {
                &self.spec.certificate
            }
        }

        impl Rules for $kind {
            async fn validate(
                check: &mut Check<'_>,
                object: &Self,
                _: Option<&Self>,
            ) -> Result<(), Refusal> {
                policy(check, object).await
            }
        }
    )*};
}

policy_kind! {
    OnboardCertificate => false,
    OnboardCertificateAuthority => true,
    DeviceCertificateAuthority => true,
}

async fn policy<P: Policy>(check: &mut Check<'_>, object: &P) -> Result<(), Refusal> {
    check.certificate("spec.certificate", object.certificate(), P::CA);
    claimed_once(check, object.certificate()).await
}

/// An onboarding certificate or CA belongs to one namespace: the same certificate in a policy
/// of another namespace (of any of the three kinds) is refused, without naming it.
async fn claimed_once(check: &mut Check<'_>, certificate: &str) -> Result<(), Refusal> {
    let Ok(mine) = certs::decode(certificate) else {
        return Ok(());
    };
    let client = &check.admission.client;
    let mut claims = certificates::<OnboardCertificate>(client).await?;
    claims.extend(certificates::<OnboardCertificateAuthority>(client).await?);
    claims.extend(certificates::<DeviceCertificateAuthority>(client).await?);
    let taken = claims.iter().any(|(namespace, certificate)| {
        namespace != check.namespace()
            && certs::decode(certificate).is_ok_and(|c| c.der == mine.der)
    });
    if taken {
        check.errors.push(FieldError::duplicate(
            "spec.certificate",
            "the certificate is already claimed in another namespace; an onboarding certificate or CA belongs to one namespace",
        ));
    }
    Ok(())
}

/// The namespace and certificate of every `P` in the cluster.
async fn certificates<P: Policy>(client: &Client) -> Result<Vec<(String, String)>, Refusal> {
    let list = Api::<P>::all(client.clone())
        .list(&Default::default())
        .await
        .map_err(unavailable)?;
    Ok(list
        .items
        .iter()
        .map(|o| {
            (
                o.namespace().unwrap_or_default(),
                o.certificate().to_owned(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::admission::testing::{cases, example_certificate};

    #[test]
    fn policies() {
        let leaf = example_certificate("onboard.pem");
        let ca = example_certificate("onboard-ca.pem");
        let elsewhere = format!(
            "kind: OnboardCertificate\nmetadata: {{name: theirs, namespace: other}}\nspec: {{certificate: {leaf}}}"
        );
        let mine = format!(
            "kind: DeviceCertificateAuthority\nmetadata: {{name: mine}}\nspec: {{certificate: {ca}}}"
        );
        cases(
            &[&elsewhere, &mine],
            &[
                (
                    "kind: OnboardCertificate\nspec: {certificate: not-base64!}".into(),
                    expect![[r#"
                        invalid:
                          spec.certificate: Invalid value: "not-base64!": must be a base64-encoded PEM certificate (encode the PEM file with `base64 -w0`): Invalid symbol 45, offset 3."#]],
                ),
                (
                    format!("kind: OnboardCertificateAuthority\nspec: {{certificate: {leaf}}}"),
                    expect![[r#"
                        invalid:
                          spec.certificate: Invalid value: "LS0tLS1CRUdJTiBDRVJU...": must be a CA certificate (basic constraints CA:TRUE); CN=onboard-25 is not a CA
                          spec.certificate: Duplicate value: "the certificate is already claimed in another namespace; an onboarding certificate or CA belongs to one namespace""#]],
                ),
                (
                    format!("kind: OnboardCertificateAuthority\nspec: {{certificate: {ca}}}"),
                    expect!["accepted"],
                ),
                (
                    format!("kind: OnboardCertificate\nspec: {{certificate: {leaf}}}"),
                    expect![[r#"
                        invalid:
                          spec.certificate: Duplicate value: "the certificate is already claimed in another namespace; an onboarding certificate or CA belongs to one namespace""#]],
                ),
                (
                    format!(
                        "kind: OnboardCertificate\nmetadata: {{namespace: other}}\nspec: {{certificate: {leaf}}}"
                    ),
                    expect!["accepted"],
                ),
            ],
        );
    }
}
