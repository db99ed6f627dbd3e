//! The installation's keys: kept out of every API request's reach (a root kept as a Secret by an
//! earlier version moves into the vault), and client certificates authenticate only when the
//! client CA issued them for client authentication and they have not expired.

use crate::common;

use std::sync::Arc;

use base64::Engine;
use pki::names;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_root_kept_as_a_secret_by_an_earlier_version_moves_out_of_the_apis_reach() {
    let h = common::harness().await;
    let old = pki::Authority::generate("an earlier root").unwrap();
    let (status, _) = h
        .send_json(
            "POST",
            "/api/v1/namespaces/kube-system/secrets",
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": names::ROOT},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": b64(&old.certificate_pem), "tls.key": b64(&old.key_pem())},
            }),
        )
        .await;
    assert_eq!(status, 201);
    let vault = h.server.vault();
    let kept = vault.get(names::ROOT).await.unwrap().expect("the root");
    assert_eq!(kept.certificate_pem, old.certificate_pem, "the same root");
    let (status, _) = h
        .send_json(
            "GET",
            &format!("/api/v1/namespaces/kube-system/secrets/{}", names::ROOT),
            json!(null),
        )
        .await;
    assert_eq!(status, 404, "the Secret is gone");
    // The authorities the API serves with come from the vault, and no Secret holds them.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        advertise_address: None,
        extra_hosts: Vec::new(),
    };
    h.server
        .prepare_tls(&config, listener.local_addr().unwrap())
        .await
        .unwrap();
    let exported = std::fs::read_to_string(dir.path().join("pki/root-certificate.pem")).unwrap();
    assert_eq!(exported, old.certificate_pem);
    let secrets = h.get("/api/v1/secrets").await;
    assert_eq!(secrets["items"], json!([]), "{secrets}");
}

/// A kube client of the server at `url` with the client certificate `client`.
async fn client_with(url: &str, ca_pem: &str, client: &pki::Issued) -> kube::Client {
    let text = apiserver::pki::kubeconfig(url, ca_pem, "someone", client, "default");
    let kubeconfig: kube::config::Kubeconfig = serde_yaml::from_str(&text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn namespaces(client: &kube::Client) -> Result<String, kube::Error> {
    client
        .request_text(
            http::Request::get("/api/v1/namespaces")
                .body(Vec::new())
                .unwrap(),
        )
        .await
}

#[tokio::test]
async fn only_client_ca_certificates_for_client_authentication_authenticate() {
    let h = common::harness().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let config = apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        advertise_address: None,
        extra_hosts: Vec::new(),
    };
    let tls = h.server.prepare_tls(&config, local).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving =
        tokio::spawn(Arc::clone(&h.server).serve(listener, tls, https::Limits::default(), stopped));
    let url = format!("https://{local}");
    let vault = h.server.vault();
    let pair = |name| {
        let vault = vault.clone();
        async move {
            let pair = vault.get(name).await.unwrap().unwrap();
            pki::Authority::from_pem(&pair.certificate_pem, &pair.key_pem).unwrap()
        }
    };
    let root = pair(names::ROOT).await;
    let client_ca = pair(names::CLIENT_CA).await;
    assert_ne!(root.certificate_pem, client_ca.certificate_pem);
    let masters = ["system:masters"];
    let hour = std::time::Duration::from_secs(3600);

    let good = client_ca.issue_client("alice", &masters, hour).unwrap();
    let from_root = root.issue_client("mallory", &masters, hour).unwrap();
    let serving_kind = client_ca
        .issue_server("mallory", &["localhost".to_string()])
        .unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mallory");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = client_ca.issue(params).unwrap();

    let ca = &root.certificate_pem;
    assert!(
        namespaces(&client_with(&url, ca, &good).await)
            .await
            .is_ok(),
        "the client CA's client certificate"
    );
    for (what, refused) in [
        (
            "a client certificate from the device-facing root",
            &from_root,
        ),
        (
            "a serving certificate (no clientAuth) from the client CA",
            &serving_kind,
        ),
        ("an expired client certificate", &expired),
    ] {
        let result = namespaces(&client_with(&url, ca, refused).await).await;
        assert!(result.is_err(), "{what}: {result:?}");
    }
    // The admin kubeconfig is renewed at every start, from the client CA, for a bounded time.
    let admin = std::fs::read_to_string(dir.path().join("pki/admin.crt")).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(admin.as_bytes()).unwrap();
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        certificate.issuer().to_string(),
        "CN=adamant-client-ca",
        "the admin's issuer"
    );
    let validity = certificate.validity();
    assert!(validity.not_after.timestamp() - validity.not_before.timestamp() <= 366 * 24 * 3600);
    let _ = stop.send(true);
    let _ = serving.await;
}
